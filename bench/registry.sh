#!/usr/bin/env bash
# Registry benchmark of berth against Docker (Debian's docker.io) on this machine, on loopback:
#  1. push of a ~62 MB image (busybox + 40 MiB random + 20 MiB text: one layer of ~41 MiB gzipped)
#     to a distribution registry (Debian's docker-registry, 2.8): `berth push` (or, while the CLI has
#     no push, the API: POST /images/NAME/push) against `docker push`. Target: berth <= 400 ms.
#     1b. the same for the image as pulled in 2.: berth sends the registry's gzip layer as it keeps
#     it, dockerd compresses again.
#  2. pull of the image Docker pushed (its gzip layer) from that registry: `berth pull` against
#     `docker pull`, with the floor: `gunzip -c LAYER | sha256sum` on the layer blob in the
#     registry's storage (target: berth <= 1.3x it), and `sha256sum LAYER` (the compressed blob is
#     verified too; the ratio to the sum of both is printed as well).
#  3. the servers under the same client: `docker push` and `docker pull` against berth's
#     `berth-registry serve` and against distribution. Target: berth-registry <= 1.0x distribution.
# Every push goes to a fresh repository (127.0.0.1:PORT/bench/<row>-<run>), with dockerd's record
# of what it pushed where removed first, so no layer is skipped or mounted from another repository;
# before every pull all images are removed from the pulling engine, so no layer is present locally.
# Commands of the two columns alternate, one warm-up each, then N runs each; medians and means.
#
# Usage: bash bench/registry.sh [iterations]    (as root; iterations default 10; SKIP_BUILD=1 uses
#        the release binaries already built, berth-registry among them)
#
# Like bench/run.sh (the setup and cleanup are bench/lib.sh's), everything of the private berthd,
# containerd + dockerd and both registries lives under one temp dir; the engines run without a
# default bridge (berthd --bridge none, dockerd --bridge none --iptables=false) and the registries
# listen on free ports of 127.0.0.1. The script refuses to run while berth's nftables table exists
# (BENCH_SHARE_NFT=1 overrides), and puts back net.ipv4.ip_forward, as run.sh does. On exit it stops
# the registries and the daemons it started (by PID, shims by the temp dir in their command line),
# unmounts, removes its cgroups and the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}

bash scripts/deps.sh
. bench/lib.sh
bench_release_binaries
command -v docker-registry >/dev/null 2>&1 || { echo "registry.sh: docker-registry missing (package docker-registry)" >&2; exit 1; }
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox)

bench_check_nft registry.sh
bench_init breg
BBRIDGE=   # berthd runs with --bridge none
DIST_PID= BREG_PID=
cleanup() {
  set +e
  [ -n "$DIST_PID" ] && stop_pid "$DIST_PID" 5
  [ -n "$BREG_PID" ] && stop_pid "$BREG_PID" 5
  bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r DPORT RPORT <<<"$(free_ports 2 15000 15999 | tr '\n' ' ')"
[ -n "$RPORT" ] || { echo "no free ports on 127.0.0.1" >&2; exit 1; }
DIST=127.0.0.1:$DPORT   # distribution
BREG=127.0.0.1:$RPORT   # berth-registry

# --- the registries: distribution with a config of its own, berth-registry with its root.
mkdir -p "$WORK/dist" "$WORK/breg"
cat >"$WORK/dist.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/dist
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $DIST
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
DIST_PID=$!
wait_for 30 curl -sf "http://$DIST/v2/" || { echo "docker-registry did not start:" >&2; cat "$WORK/dist.log" >&2; exit 1; }
breg_note=
if [ -x "$BIN/berth-registry" ]; then
  "$BIN/berth-registry" serve --addr "$BREG" --root "$WORK/breg" >"$WORK/breg.log" 2>&1 &
  BREG_PID=$!
  wait_for 30 curl -sf "http://$BREG/v2/" || { breg_note="berth-registry did not start: $(head -c 300 "$WORK/breg.log" | tr '\n' ' ')"; stop_pid "$BREG_PID" 5; BREG_PID=; }
else
  breg_note="no $BIN/berth-registry"
fi

# --- the engines, without a default bridge.
start_berthd --bridge none
start_containerd
start_dockerd "" --bridge none --iptables=false --ip-forward=false --ip-masq=false

# --- the image: busybox (as scripts/busybox-image.sh makes it), 40 MiB random, 20 MiB text.
R=$WORK/rootfs
mkdir -p "$R"/{bin,etc,tmp,root,proc,sys,dev,data}
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
head -c 40M /dev/urandom >"$R/data/random.bin"
awk 'BEGIN {for (i = 1; n < 20971520; i++) {
  l = sprintf("%08d The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet, consectetur adipiscing elit.\n", i)
  if (n + length(l) > 20971520) l = substr(l, 1, 20971520 - n); printf "%s", l; n += length(l) }}' >"$R/data/text.txt"
tar -C "$R" -cf "$WORK/rootfs.tar" .
rm -rf "$R"
IMG=regbench:latest
IMPORT_OPTS=(-c 'CMD ["sh"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
import_both() {
  berth import "${IMPORT_OPTS[@]}" - "$IMG" <"$WORK/rootfs.tar" >/dev/null
  dock import "${IMPORT_OPTS[@]}" - "$IMG" <"$WORK/rootfs.tar" >/dev/null
}
import_both

# --- the commands timed. SFX: the run's repository suffix (w for the warm-up).
sfx() { if [ "$ITER" -ge 0 ]; then echo "$ITER"; else echo w; fi; }
# dockerd remembers which registry repositories hold a layer and mounts it from there instead of
# uploading it again: forget that before each push (the store is read from disk at each push).
# berthd keeps the same record (image/distribution/sources.json); it is forgotten the same way.
forget_pushes() { rm -rf "$WORK/docker-data/image/overlay2/distribution"; }
forget_berth_pushes() { rm -f "$WORK/berth-data/image/distribution/sources.json"; }
# A push that mounted a layer from another repository or found it there is not what the rows time.
not_skipped() {
  ! grep -qE 'Mounted from|Layer already exists' <<<"$1" || { echo "a layer was not uploaded: $(tr '\n' ' ' <<<"$1" | head -c 300)" >&2; return 1; }
}
if "$BIN/berth" push --help >/dev/null 2>&1; then
  berth_push() { local out; out=$(berth push "$1:$2") && not_skipped "$out"; }
  push_note="berth push"
else
  # The API as the docker CLI calls it; the answer is a JSON stream whose errors are "error" lines.
  berth_push() { # berth_push NAME TAG
    local out code
    out=$(curl -sS --unix-socket "$BERTH_SOCK" -X POST -H 'X-Registry-Auth: e30=' -w '\n%{http_code}' \
      "http://berth/images/$1/push?tag=$2") || { echo "$out" >&2; return 1; }
    code=${out##*$'\n'} out=${out%$'\n'*}
    if [[ $code != 2* ]] || grep -q '"error"' <<<"$out"; then echo "HTTP $code: $out" >&2; return 1; fi
    not_skipped "$out"
  }
  push_note="berth: POST /images/NAME/push (the CLI has no push)"
fi
# A pull that found a layer already there is not what the rows time either.
not_present() {
  ! grep -q 'Already exists' <<<"$1" || { echo "a layer was already there: $(tr '\n' ' ' <<<"$1" | head -c 300)" >&2; return 1; }
}
berth_pull() { local out; out=$(berth pull "$1") && not_present "$out"; }
no_images() { # no_images ENGINE-FUNCTION: removes all its images, and checks that none is left
  local ids
  ids=$("$1" images -q | sort -u) || return 1
  [ -z "$ids" ] || "$1" rmi -f $ids >/dev/null || return 1
  ids=$("$1" images -aq) || return 1
  [ -z "$ids" ] || { echo "images left in $1: $ids" >&2; return 1; }
}
no_breg() { [ -n "$BREG_PID" ] || { echo "$breg_note" >&2; return 1; }; }

prep_bt_push() { forget_berth_pushes; berth tag "$IMG" "$DIST/bench/bt-$(sfx):latest"; }
prep_dk_push() { forget_pushes; dock tag "$IMG" "$1/bench/$2-$(sfx):latest"; }
bt_push() { berth_push "$DIST/bench/bt-$(sfx)" latest; }
dk_push() { local out; out=$(dock push "$1/bench/$2-$(sfx):latest") && not_skipped "$out"; }
breg_push() { no_breg && dk_push "$BREG" sk; }
bt_pull() { berth_pull "$DIST/bench/dk-$(sfx):latest"; }
dk_pull() { local out; out=$(dock pull "$1/bench/$2-$(sfx):latest") && not_present "$out"; }
breg_pull() { no_breg && dk_pull "$BREG" sk; }

tar_mb=$(awk -v s="$(stat -c %s "$WORK/rootfs.tar")" 'BEGIN {printf "%.1f", s / 1048576}')
echo "berth $("$BIN/berth" --version 2>/dev/null | head -1) vs dockerd $(dockerd --version | sed 's/Docker version //'); $(docker-registry --version 2>/dev/null | awk '{print $NF}' | head -1) as distribution; $(nproc) CPUs, $(uname -r)"
echo "image: one layer, $tar_mb MiB tar (busybox + 40 MiB random + 20 MiB text), imported into both engines; $push_note"
echo "times in ms over $N runs each, the two columns alternating (after one warm-up); ratio = first median / second median"
printf "$FMT" "operation" "berth med" "berth mean" "docker med" "dock mean" "ratio"

# 1. push to distribution.
BP=(prep_bt_push) KP=(prep_dk_push "$DIST" dk) B=(bt_push) K=(dk_push "$DIST" dk)
pair "push to distribution"
bpush=$(stats "" "${TIMES_B[@]:-}" | awk '{print $1}'); [ "${#TIMES_B[@]}" -eq "$N" ] || bpush=FAILED
# 3a. the same docker client pushing to each server (dockerd's image still there).
BP=(prep_dk_push "$BREG" sk) KP=(prep_dk_push "$DIST" sk) B=(breg_push) K=(dk_push "$DIST" sk)
push3=$(pair "docker push: berth-registry vs distribution")

# 2. pull from distribution of what docker pushed in 1., no image left in the pulling engine.
BP=(no_images berth) KP=(no_images dock) B=(bt_pull) K=(dk_pull "$DIST" dk)
pair "pull from distribution (docker's gzip layer)"
bpull=$(stats "" "${TIMES_B[@]:-}" | awk '{print $1}'); [ "${#TIMES_B[@]}" -eq "$N" ] || bpull=FAILED
kpull=$(stats "" "${TIMES_K[@]:-}" | awk '{print $1}'); [ "${#TIMES_K[@]}" -eq "$N" ] || kpull=FAILED

# The floor: what a pull cannot avoid, on the layer blob in distribution's storage (page cache).
manifest=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$DIST/v2/bench/dk-w/manifests/latest" || true)
layer=$(python3 -c 'import json, sys; m = json.load(sys.stdin); print(" ".join(l["digest"] for l in m["layers"]))' <<<"$manifest" 2>/dev/null || true)
floor=FAILED floor2=FAILED
if [ -n "$layer" ] && [ "$(wc -w <<<"$layer")" = 1 ]; then
  d=${layer#sha256:}
  BLOB=$WORK/dist/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data
  gz_mb=$(awk -v s="$(stat -c %s "$BLOB")" 'BEGIN {printf "%.1f", s / 1048576}')
  floor_gunzip() { gunzip -c "$BLOB" | sha256sum; }
  floor_sha() { sha256sum "$BLOB"; }
  F1=(floor_gunzip) F2=(floor_sha) TIMES_F1=() TIMES_F2=()
  floor_gunzip >/dev/null; floor_sha >/dev/null
  for ((ITER = 0; ITER < N; ITER++)); do timed F1 || true; timed F2 || true; done
  f1=$(stats "" "${TIMES_F1[@]}") f2=$(stats "" "${TIMES_F2[@]}")
  printf "$FMT" "floor: gunzip -c layer | sha256sum ($gz_mb MiB gzip)" "${f1% *}" "${f1#* }" "" "" ""
  printf "$FMT" "floor: sha256sum layer (the compressed blob)" "${f2% *}" "${f2#* }" "" "" ""
  floor=${f1% *} floor2=$(awk -v a="${f1% *}" -v b="${f2% *}" 'BEGIN {printf "%.1f", a + b}')
  printf "$FMT" "floor: both, one after the other (sum of the medians)" "$floor2" "" "" "" ""
else
  echo "layer of $DIST/bench/dk-w not found (${#layer} characters of digests): no floor" >>"$WORK/errors"
fi

# 1b. push of the image as pulled in 2. (to a fresh repository, records forgotten): berth keeps the
# registry's gzip layer and sends it as it is; dockerd compresses the layer again.
PULLED="$DIST/bench/dk-$((N - 1)):latest"
prep_bt_repush() { forget_berth_pushes; berth tag "$PULLED" "$DIST/bench/br-$(sfx):latest"; }
prep_dk_repush() { forget_pushes; dock tag "$PULLED" "$DIST/bench/dr-$(sfx):latest"; }
bt_repush() { berth_push "$DIST/bench/br-$(sfx)" latest; }
BP=(prep_bt_repush) KP=(prep_dk_repush) B=(bt_repush) K=(dk_push "$DIST" dr)
pair "push of the image as pulled (its gzip layer)"
brepush=$(stats "" "${TIMES_B[@]:-}" | awk '{print $1}'); [ "${#TIMES_B[@]}" -eq "$N" ] || brepush=FAILED

# 3b. the same docker client pulling from each server.
BP=(no_images dock) KP=(no_images dock) B=(breg_pull) K=(dk_pull "$DIST" sk)
pull3=$(pair "docker pull: berth-registry vs distribution")

# 3c. berth pulling from each server (a client that spends less of the time itself, so the
# servers' part shows more).
bt_pull_from() { berth_pull "$1/bench/sk-$(sfx):latest"; }
BP=(no_images berth) KP=(no_images berth) B=(bt_pull_from "$BREG") K=(bt_pull_from "$DIST")
pull3c=$(pair "berth pull: berth-registry vs distribution")

# 3d. the server alone: the 41 MiB layer blob fetched with curl (to /dev/null) from each.
layer_of() { curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$1/v2/bench/sk-w/manifests/latest" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])'; }
BLAYER=$(layer_of "$BREG" || true) DLAYER=$(layer_of "$DIST" || true)
get_blob() { curl -sf -o /dev/null "http://$1/v2/bench/sk-w/blobs/$2"; }
BP=() KP=() B=(get_blob "$BREG" "$BLAYER") K=(get_blob "$DIST" "$DLAYER")
pull3d=$(pair "blob GET (curl): berth-registry vs distribution")

echo
echo "berth push to distribution: median $bpush ms (target <= 400); of the image as pulled (gzip): $brepush ms"
echo "pull / floor (gunzip | sha256sum): berth $(ratio "$bpull" "$floor") (target <= 1.3), docker $(ratio "$kpull" "$floor");" \
  "pull / both floors: berth $(ratio "$bpull" "$floor2"), docker $(ratio "$kpull" "$floor2")"
echo
echo "3. the same client (docker) against berth-registry and distribution"
printf "$FMT" "operation" "b-reg med" "b-reg mean" "distr med" "distr mean" "ratio"
echo "$push3"
echo "$pull3"
echo "$pull3c"
echo "$pull3d"
echo "berth-registry/distribution: push $(awk '{print $NF}' <<<"$push3"), pull $(awk '{print $NF}' <<<"$pull3"), berth pull $(awk '{print $NF}' <<<"$pull3c"), blob GET $(awk '{print $NF}' <<<"$pull3d") (target <= 1.0)"
if [ -s "$WORK/errors" ]; then
  echo
  echo "failures:"
  sed 's/^/  /' "$WORK/errors"
  exit 1
fi
