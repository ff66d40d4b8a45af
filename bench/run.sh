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
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
NCONT=${NCONT:-20}

bash scripts/deps.sh
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bins -q   # SKIP_BUILD=1: use the binaries as built
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
[ -x "$BIN/berthd" ] || { echo "no $BIN/berthd after the build" >&2; exit 1; }
# The bench's berthd would replace another berthd's NAT table at its start (see above).
if [ -z "${BENCH_SHARE_NFT:-}" ] && command -v nft >/dev/null 2>&1 && nft list table inet berth >/dev/null 2>&1; then
  echo "run.sh: nftables table 'inet berth' exists: another berthd may be using it, and the bench's" >&2
  echo "  berthd would replace it. Stop that berthd (or 'nft delete table inet berth' if it is stale)," >&2
  echo "  or set BENCH_SHARE_NFT=1 to go on anyway." >&2
  exit 1
fi

# Our berth commands name our berthd; never let them start one elsewhere.
export BERTH_NO_AUTOSTART=1
WORK=$(mktemp -d /tmp/bbench.XXXXXX)
NAME=$(basename "$WORK")
BERTH_SOCK=$WORK/berth.sock
DOCKER_SOCK=$WORK/docker.sock
CTD=$WORK/ctd
BRIDGE=bb${NAME#bbench.}          # dockerd's; 8 characters, fits IFNAMSIZ, unique with the temp dir
BBRIDGE=bt${NAME#bbench.}         # berthd's default bridge
BERTHD_PID= DOCKERD_PID= CONTAINERD_PID= MADE_BRIDGE= STARTED_BERTHD=
IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)

# Debian's docker client with Debian's dockerd (another docker CLI may come first in PATH).
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
berth() { BERTH_HOST=unix://$BERTH_SOCK "$BIN/berth" "$@"; }
dock() { DOCKER_HOST=unix://$DOCKER_SOCK DOCKER_CONFIG=$WORK/docker-config "$DOCKER" "$@"; }
dock_on_berthd() { DOCKER_HOST=unix://$BERTH_SOCK DOCKER_CONFIG=$WORK/docker-config "$DOCKER" "$@"; }

# PIDs whose command line names $WORK/$1 and whose executable is $2 (the shims of one engine).
pids_named() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF "$WORK/$1" || continue
    [ -z "${2:-}" ] || [ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")" = "$2" ] || continue
    echo "$p"
  done
}
# stop_pid PID SECONDS: SIGTERM, then SIGKILL when it outlives the grace period.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 20; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}
# Whether a berthd other than ours started after ours (by its executable's name and start time,
# field 22 of /proc/PID/stat; the command name in field 2 has no spaces here). A berthd already
# running when ours started, with ip_forward still 0, had no bridge then; one that makes a network
# later sets ip_forward again (it writes it at each network's creation), but not if that happens
# while this script runs and before it restores the value: a window this check cannot close.
BERTHD_START=
other_berthd() {
  local p t
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$BERTHD_PID" ] && continue
    case "$(basename "$(readlink "$p/exe" 2>/dev/null)")" in berthd | "berthd (deleted)") ;; *) continue ;; esac
    t=$(awk '{print $22}' "$p/stat" 2>/dev/null) || continue
    [ -n "$BERTHD_START" ] && [ "${t:-0}" -lt "$BERTHD_START" ] && continue
    return 0
  done
  return 1
}
# Whether berth's nftables table holds only what the bench's berthd put there: the fixed rules
# (comment "berth") and rules naming our uniquely named bridge. Another berthd that started
# meanwhile would have replaced the table with rules naming its own bridges.
nft_only_ours() {
  local rules
  rules=$(nft list table inet berth 2>/dev/null) || return 1
  # (No grep -q at the end: its early exit could SIGPIPE the greps before it, a failure under
  # pipefail that would read as "nothing foreign".)
  [ -z "$(grep -vE '^table |^[[:space:]]*(chain |type |}|$)' <<<"$rules" | grep -v 'comment "berth"$' | grep -vF "\"$BBRIDGE\"")" ]
}
rm_all() { local ids; ids=$("$@" ps -aq 2>/dev/null) || return 0; [ -z "$ids" ] || "$@" rm -f $ids >/dev/null 2>&1 || true; }

cleanup() {
  set +e
  [ -n "$BERTHD_PID" ] && rm_all berth
  [ -n "$DOCKERD_PID" ] && rm_all dock
  [ -n "$BERTHD_PID" ] && stop_pid "$BERTHD_PID" 10
  [ -n "$DOCKERD_PID" ] && stop_pid "$DOCKERD_PID" 20
  [ -n "$CONTAINERD_PID" ] && stop_pid "$CONTAINERD_PID" 10
  for p in $(pids_named ""); do kill -9 "$p" 2>/dev/null; done
  grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for c in /sys/fs/cgroup/"$NAME" /sys/fs/cgroup/*/"$NAME"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [ -n "$MADE_BRIDGE" ] && ip link del "$BRIDGE" 2>/dev/null
  # berthd keeps its default bridge when it stops (as dockerd keeps docker0): ours has a unique name.
  [ -n "$STARTED_BERTHD" ] && ip link del "$BBRIDGE" 2>/dev/null
  if [ -n "$STARTED_BERTHD" ] && [ "$IP_FORWARD" = 0 ]; then
    if other_berthd; then echo "note: left net.ipv4.ip_forward=1: another berthd started meanwhile" >&2
    else echo 0 >/proc/sys/net/ipv4/ip_forward; fi
  fi
  # The table did not exist when we started (checked above, unless BENCH_SHARE_NFT): delete it when
  # nothing but our berthd's rules are in it; otherwise the next berthd to start resets it.
  if [ -n "$STARTED_BERTHD" ] && [ -z "${BENCH_SHARE_NFT:-}" ] && command -v nft >/dev/null 2>&1; then
    if nft_only_ours; then nft delete table inet berth 2>/dev/null
    elif nft list table inet berth >/dev/null 2>&1; then echo "note: left nftables table inet berth: rules of another berthd are in it" >&2; fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for SECONDS cmd...: polls until cmd succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# Two unused /24s, one per engine's bridge: no route or address of the host in them.
free_24() { # free_24 TAKEN: prints a prefix "10.213.N." not in use and not TAKEN
  local i s
  for i in $(seq 0 249); do
    s=10.213.$((($$ + i) % 250)).
    [ "$s" = "${1:-}" ] && continue
    if ! ip -4 route | grep -qF "$s" && ! ip -4 addr | grep -qF "$s"; then echo "$s"; return 0; fi
  done
  return 1
}
subnet=$(free_24) || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
bsubnet=$(free_24 "$subnet") || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
for b in "$BRIDGE" "$BBRIDGE"; do
  ! ip link show "$b" >/dev/null 2>&1 || { echo "interface $b exists already" >&2; exit 1; }
done

# --- berth, with its own default bridge on its own subnet.
STARTED_BERTHD=1
"$BIN/berthd" --host "unix://$BERTH_SOCK" --data-root "$WORK/berth-data" --exec-root "$WORK/berth-run" \
  --bridge "$BBRIDGE" --bip "${bsubnet}1/24" >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
BERTHD_START=$(awk '{print $22}' "/proc/$BERTHD_PID/stat" 2>/dev/null || true)
wait_for 30 curl -sf --unix-socket "$BERTH_SOCK" http://berth/_ping || { echo "berthd did not start:" >&2; cat "$WORK/berthd.log" >&2; exit 1; }
BERTH_HOST=unix://$BERTH_SOCK bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null

# --- docker: our own containerd (dockerd would use a system one at /run/containerd if it ran)
mkdir -p "$CTD"
cat >"$CTD/config.toml" <<EOF
version = 2
root = "$CTD/root"
state = "$CTD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CTD/containerd.sock"
[ttrpc]
  address = "$CTD/containerd.sock.ttrpc"
[debug]
  address = "$CTD/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD/opt"
EOF
containerd --config "$CTD/config.toml" >"$WORK/containerd.log" 2>&1 &
CONTAINERD_PID=$!
wait_for 30 test -S "$CTD/containerd.sock" || { echo "containerd did not start:" >&2; cat "$WORK/containerd.log" >&2; exit 1; }

# A bridge of our own for Docker's default network, on the /24 picked above.
ip link add name "$BRIDGE" type bridge
MADE_BRIDGE=1
ip addr add "${subnet}1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up

echo "{\"deprecated-key-path\": \"$WORK/docker-key.json\"}" >"$WORK/daemon.json"
dockerd --config-file "$WORK/daemon.json" --containerd "$CTD/containerd.sock" \
  --host "unix://$DOCKER_SOCK" --data-root "$WORK/docker-data" --exec-root "$WORK/docker-run" \
  --pidfile "$WORK/docker.pid" --cgroup-parent "/$NAME" --storage-driver overlay2 \
  --bridge "$BRIDGE" --iptables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
  >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_for 60 curl -sf --unix-socket "$DOCKER_SOCK" http://docker/_ping || { echo "dockerd did not start:" >&2; cat "$WORK/dockerd.log" >&2; exit 1; }

# The same image in both: berth's `save`, loaded by dockerd (the same image ID); if berth's save is
# broken, the same rootfs imported into dockerd instead.
if berth save -o "$WORK/bb.tar" bb:latest 2>"$WORK/save.err" && dock load -q -i "$WORK/bb.tar" >/dev/null 2>>"$WORK/save.err"; then
  image_note="bb loaded into dockerd from berth save"
else
  image_note="bb imported into dockerd (berth save -> docker load failed: $(head -c 200 "$WORK/save.err"))"
  DOCKER_HOST=unix://$DOCKER_SOCK bash scripts/busybox-image.sh "$DOCKER" bb:latest >/dev/null
fi

# pair LABEL: times the commands in the arrays B (berth) and K (docker), alternating them so that
# drift of the machine hits both alike; one warm-up each, then N runs each. A failing command is
# reported as FAILED, its error kept for the end.
note_error() { echo "$1: $(head -c 300 "$WORK/err" | tr '\n' ' ')" >>"$WORK/errors"; }
timed() { # timed ARRAY-NAME: runs the command, appends "start end" to the array TIMES_<name>
  local -n cmd=$1 times=TIMES_$1
  local t0=$EPOCHREALTIME
  "${cmd[@]}" >/dev/null 2>"$WORK/err" || return 1
  times+=("$t0 $EPOCHREALTIME")
}
stats() { # stats FAILED? "start end"...: "median mean" in ms
  [ -z "$1" ] || { echo FAILED; return; }
  shift
  printf '%s\n' "$@" | awk '{print ($2 - $1) * 1000}' | sort -n |
    awk '{a[NR] = $1; s += $1} END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f %.1f", m, s / NR}'
}
pair() {
  local i bfail= kfail=
  TIMES_B=() TIMES_K=()
  "${B[@]}" >/dev/null 2>"$WORK/err" || { note_error "${B[*]}"; bfail=1; }
  "${K[@]}" >/dev/null 2>"$WORK/err" || { note_error "${K[*]}"; kfail=1; }
  for ((i = 0; i < N; i++)); do
    [ -n "$bfail" ] || timed B || { note_error "${B[*]}"; bfail=1; }
    [ -n "$kfail" ] || timed K || { note_error "${K[*]}"; kfail=1; }
  done
  row "$1" "$(stats "$bfail" "${TIMES_B[@]}")" "$(stats "$kfail" "${TIMES_K[@]}")"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
FMT='%-58s %10s %10s %10s %10s %7s\n'
row() { # row LABEL "berth-median berth-mean" "docker-median docker-mean"
  local bm bavg km kavg
  read -r bm bavg <<<"$2"; read -r km kavg <<<"$3"
  printf "$FMT" "$1" "$bm" "${bavg:--}" "$km" "${kavg:--}" "$(ratio "$bm" "$km")"
}

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
echo "  nftables table, dockerd's $BRIDGE made by this script (no iptables); bench/net.sh measures networking."
if [ -s "$WORK/errors" ]; then
  echo
  echo "failures:"
  sed 's/^/  /' "$WORK/errors"
  exit 1
fi
