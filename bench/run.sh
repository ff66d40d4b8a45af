#!/usr/bin/env bash
# Side-by-side benchmark of berth and Docker (Debian's docker.io) on this machine: container start
# and exec times and engine memory per running container, with berth/Docker ratios.
#
# Usage: bash bench/run.sh [iterations]      (as root; NCONT=<n> sets the containers of the memory row,
#                                              SKIP_BUILD=1 uses the release binaries already built)
#
# It builds berth in release mode (honouring CARGO_TARGET_DIR), then starts a private berthd and a
# private containerd + dockerd pair, everything of theirs under one temp dir (data and exec roots,
# sockets, pid file, dockerd's trust key, containerd's root/state/plugins, a cgroup parent named after
# the dir). Both engines' default network is a bridge, and each gets one of its own, with a unique
# name on an unused /24, so nothing collides with the host's networks: the script makes dockerd's (no
# iptables, no forwarding) instead of letting it make docker0; berthd makes its own from --bridge and
# --bip instead of berth0.
# berthd's kernel NAT lives in the nftables table `inet berth`, one per host, not per daemon: another
# berthd on the host with networking would share it, and each berthd replaces the whole table when it
# starts. So the script refuses to run while the table exists (BENCH_SHARE_NFT=1 overrides), and at
# the end deletes it only when nothing but its berthd's rules are in it (else the next berthd resets
# it); berthd also sets net.ipv4.ip_forward=1, which the script puts back unless another berthd
# started meanwhile. (bench/net.sh measures the networking.)
# On exit it removes its containers, stops the daemons and shims it started (by PID, or by the temp
# dir in their command line), unmounts, removes its cgroups, both bridges and the temp dir.
# (The setup and cleanup shared with the other benchmarks are in bench/lib.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
NCONT=${NCONT:-20}

bash scripts/deps.sh
. bench/lib.sh
bench_release_binaries
# The bench's berthd would replace another berthd's NAT table at its start (see above).
bench_check_nft run.sh

bench_init bbench
KBRIDGE=bb$SUFFIX   # dockerd's; 8 characters, fits IFNAMSIZ, unique with the temp dir
BBRIDGE=bt$SUFFIX   # berthd's default bridge
dock_on_berthd() { DOCKER_HOST=unix://$BERTH_SOCK DOCKER_CONFIG=$WORK/docker-config "$DOCKER" "$@"; }
cleanup() { set +e; bench_cleanup; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two unused /24s, one per engine's bridge.
subnet=$(free_24) || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
bsubnet=$(free_24 "$subnet") || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
bridges_unused "$KBRIDGE" "$BBRIDGE" || exit 1

# --- berth, with its own default bridge on its own subnet.
start_berthd --bridge "$BBRIDGE" --bip "${bsubnet}1/24"
BERTH_HOST=unix://$BERTH_SOCK bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null

# --- docker: our own containerd, and a bridge of our own for Docker's default network, on the /24
# picked above.
start_containerd
make_bridge "$subnet"
start_dockerd "" --bridge "$KBRIDGE" --iptables=false --ip-forward=false --ip-masq=false --userland-proxy=false

# The same image in both: berth's `save`, loaded by dockerd (the same image ID); if berth's save is
# broken, the same rootfs imported into dockerd instead.
if berth save -o "$WORK/bb.tar" bb:latest 2>"$WORK/save.err" && dock load -q -i "$WORK/bb.tar" >/dev/null 2>>"$WORK/save.err"; then
  image_note="bb loaded into dockerd from berth save"
else
  image_note="bb imported into dockerd (berth save -> docker load failed: $(head -c 200 "$WORK/save.err"))"
  DOCKER_HOST=unix://$DOCKER_SOCK bash scripts/busybox-image.sh "$DOCKER" bb:latest >/dev/null
fi

echo "berth $("$BIN/berth" --version 2>/dev/null | head -1) vs dockerd $(dockerd --version | sed 's/Docker version //') + containerd $(containerd --version | awk '{print $3}') (client $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null)); $(nproc) CPUs, $(uname -r); $image_note"
echo "times in ms over $N runs each, berth and docker alternating (after one warm-up); ratio = berth median / docker median"
printf "$FMT" "operation" "berth med" "berth mean" "docker med" "dock mean" "ratio"
B=(berth run --rm --network none bb true) K=(dock run --rm --network none bb true)
pair "run --rm --network none bb true"
B=(berth run --rm bb true) K=(dock run --rm bb true)
pair "run --rm bb true (default network, see note *)"
B=(berth run -d --network none bb true) K=(dock run -d --network none bb true)
pair "run -d --network none bb true"
rm_all berth; rm_all dock
B=(dock_on_berthd run --rm --network none bb true) K=(dock run --rm --network none bb true)
pair "docker CLI for both: run --rm --network none bb true"
# exec into a running container (the issue's target: <= 8 ms for berth).
berth run -d --name bexec --network none bb sleep 600 >/dev/null
dock run -d --name bexec --network none bb sleep 600 >/dev/null
B=(berth exec bexec true) K=(dock exec bexec true)
pair "exec c true"
B=(dock_on_berthd exec bexec true) K=(dock exec bexec true)
pair "docker CLI for both: exec c true"
rm_all berth; rm_all dock
# berth's own runtime against runc, the proven one, under the same engine (both columns are berth).
if command -v runc >/dev/null 2>&1; then
  B=(berth run --rm --network none bb true) K=(berth run --rm --network none --runtime runc bb true)
  pair "berth own runtime vs berth --runtime runc (2nd col)"
fi

# Engine memory per running container: PSS (shared pages split among their users) of the daemons
# and the per-container shims of these private engines only; idle, then NCONT `sleep` containers.
pss_kb() { local t=0 p v; for p in "$@"; do v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); t=$((t + ${v:-0})); done; echo "$t"; }
berth_pids() { echo "$BERTHD_PID"; pids_named berth- berth-shim; }
docker_pids() { echo "$DOCKERD_PID $CONTAINERD_PID"; pids_named ctd/ containerd-shim-runc-v2; }
running() { [ "$("$@" ps -q 2>/dev/null | wc -l)" -ge "$NCONT" ]; }
rm_all berth; rm_all dock
b0=$(pss_kb $(berth_pids)); k0=$(pss_kb $(docker_pids))
bok=1 kok=1
for ((i = 0; i < NCONT; i++)); do
  [ -n "$bok" ] && { berth run -d --network none bb sleep 600 >/dev/null 2>"$WORK/err" || { bok=; note_error "berth run -d bb sleep"; }; }
  [ -n "$kok" ] && { dock run -d --network none bb sleep 600 >/dev/null 2>"$WORK/err" || { kok=; note_error "docker run -d bb sleep"; }; }
done
[ -n "$bok" ] && { wait_for 30 running berth || bok=; }
[ -n "$kok" ] && { wait_for 30 running dock || kok=; }
b1=$(pss_kb $(berth_pids)); k1=$(pss_kb $(docker_pids))
bshims=$(pids_named berth- berth-shim | wc -l); kshims=$(pids_named ctd/ containerd-shim-runc-v2 | wc -l)
per() { [ -n "$1" ] && awk -v a="$2" -v b="$3" -v n="$NCONT" 'BEGIN {printf "%.2f", (b - a) / n / 1024}' || echo FAILED; }
mb() { awk -v a="$1" 'BEGIN {printf "%.1f", a / 1024}'; }
bper=$(per "$bok" "$b0" "$b1"); kper=$(per "$kok" "$k0" "$k1")
echo
echo "engine memory, PSS in MB (berth: berthd + berth-shim; docker: dockerd + containerd + containerd-shim-runc-v2)"
printf '%-58s %10s %10s %7s\n' "" "berth" "docker" "ratio"
printf '%-58s %10s %10s %7s\n' "idle engine" "$(mb "$b0")" "$(mb "$k0")" "$(ratio "$b0" "$k0")"
printf '%-58s %10s %10s %7s\n' "with $NCONT running containers ($bshims / $kshims shims)" "$(mb "$b1")" "$(mb "$k1")" "$(ratio "$b1" "$k1")"
printf '%-58s %10s %10s %7s\n' "per running container" "$bper" "$kper" "$(ratio "$bper" "$kper")"
echo
echo "* both default networks are bridges (veth pair + IPAM + /etc/hosts): berthd's $BBRIDGE with its"
echo "  nftables table, dockerd's $KBRIDGE made by this script (no iptables); bench/net.sh measures networking."
if [ -s "$WORK/errors" ]; then
  echo
  echo "failures:"
  sed 's/^/  /' "$WORK/errors"
  exit 1
fi
