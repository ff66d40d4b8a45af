# Shared setup of the benchmarks that run berth beside Docker (bench/run.sh, bench/net.sh,
# bench/registry.sh); sourced, not run. It holds the private daemons' start and the cleanup, so that
# every script keeps the same safety rules:
#  - everything of the private berthd and containerd + dockerd lives under one temp dir (data and
#    exec roots, sockets, pid file, dockerd's trust key, containerd's root/state/plugins, a cgroup
#    parent named after the dir), and the cleanup stops what it started by PID, or by the temp dir in
#    the command line (shims);
#  - the daemons run in sessions of their own (setsid), as a service manager starts them: with the
#    kernel's autogroup scheduling (sched_autogroup_enabled=1) a session is a CPU scheduling group,
#    and a daemon left in the benchmark's session would share the load tool's group (cheaper
#    wake-ups between them than any installed daemon gets: dockerd's docker-proxy relays every
#    request of bench/net.sh);
#  - bridges have unique names (a prefix + the temp dir's suffix: 8 characters, fits IFNAMSIZ) on an
#    unused 10.213.x.0/24, so nothing collides with the host's networks;
#  - berthd's kernel NAT lives in the nftables table `inet berth`, one per host (per network
#    namespace), not per daemon: each berthd replaces the whole table when it starts. So the scripts
#    refuse to run while the table exists (bench_check_nft; BENCH_SHARE_NFT=1 overrides), and the
#    cleanup deletes it only when nothing but the bench's berthd's rules are in it (the fixed ones,
#    comment "berth", and those naming its bridge); otherwise the next berthd to start resets it;
#  - berthd sets net.ipv4.ip_forward=1; the cleanup puts back the value found at bench_init unless
#    another berthd started meanwhile.
#
# Use (after `set -euo pipefail` and `cd` to the repository root):
#   BIN=...                        the release directory with berth, berthd (the caller builds)
#   bench_check_nft SCRIPT-NAME    before anything is started
#   bench_init PREFIX              makes WORK=/tmp/PREFIX.XXXXXX and sets the globals below
#   cleanup() { set +e; bench_cleanup; }; trap cleanup EXIT; trap 'exit 130' INT TERM
#   (a script with more to undo runs bench_cleanup_containers, bench_cleanup_daemons and
#   bench_cleanup_rest itself, its own steps between them)
#   start_berthd [berthd args]...  e.g. --bridge "$BBRIDGE" --bip 10.213.x.1/24, or --bridge none
#   start_containerd; start_dockerd '<extra daemon.json members>' [dockerd args]...
#
# Globals set by bench_init: WORK (the temp dir), NAME (its base name), SUFFIX (the part after
# PREFIX.), BERTH_SOCK, DOCKER_SOCK, CTD (containerd's dir), IP_FORWARD (the value found), DOCKER
# (Debian's docker client). Set by the callers: BBRIDGE (berthd's default bridge, a unique name; empty
# with --bridge none), KBRIDGE (dockerd's bridge, when make_bridge made it). Set by the start_*
# functions and read by the cleanup: BERTHD_PID, BERTHD_START, STARTED_BERTHD, CONTAINERD_PID,
# DOCKERD_PID, MADE_KBRIDGE.

# bench_release_binaries: builds the release binaries (unless SKIP_BUILD=1: the ones already built)
# and sets BIN to their directory.
bench_release_binaries() {
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --bins -q
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
  [ -x "$BIN/berthd" ] || { echo "no $BIN/berthd after the build" >&2; exit 1; }
}

BERTHD_PID= BERTHD_START= STARTED_BERTHD= CONTAINERD_PID= DOCKERD_PID= MADE_KBRIDGE=
BBRIDGE= KBRIDGE=

# bench_check_nft SCRIPT-NAME: refuses to go on while berth's nftables table exists (see above).
bench_check_nft() {
  if [ -z "${BENCH_SHARE_NFT:-}" ] && command -v nft >/dev/null 2>&1 && nft list table inet berth >/dev/null 2>&1; then
    echo "$1: nftables table 'inet berth' exists: another berthd may be using it, and the bench's" >&2
    echo "  berthd would replace it. Stop that berthd (or 'nft delete table inet berth' if it is stale)," >&2
    echo "  or set BENCH_SHARE_NFT=1 to go on anyway." >&2
    exit 1
  fi
}

# bench_init PREFIX: the temp dir and the names derived from it.
bench_init() {
  # Our berth commands name our berthd; never let them start one elsewhere.
  export BERTH_NO_AUTOSTART=1
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  NAME=$(basename "$WORK")
  SUFFIX=${NAME#"$1".}
  BERTH_SOCK=$WORK/berth.sock
  DOCKER_SOCK=$WORK/docker.sock
  CTD=$WORK/ctd
  IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
  # Debian's docker client with Debian's dockerd (another docker CLI may come first in PATH).
  DOCKER=/usr/bin/docker
  [ -x "$DOCKER" ] || DOCKER=$(command -v docker)
}

berth() { BERTH_HOST=unix://$BERTH_SOCK "$BIN/berth" "$@"; }
dock() { DOCKER_HOST=unix://$DOCKER_SOCK DOCKER_CONFIG=$WORK/docker-config "$DOCKER" "$@"; }

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
# (comment "berth") and rules naming our uniquely named bridge (BBRIDGE; none when it is empty).
# Another berthd that started meanwhile would have replaced the table with rules naming its own
# bridges.
nft_only_ours() {
  local rules
  rules=$(nft list table inet berth 2>/dev/null) || return 1
  # (No grep -q at the end: its early exit could SIGPIPE the greps before it, a failure under
  # pipefail that would read as "nothing foreign".)
  [ -z "$(grep -vE '^table |^[[:space:]]*(chain |type |}|$)' <<<"$rules" | grep -v 'comment "berth"$' |
    if [ -n "$BBRIDGE" ]; then grep -vF "\"$BBRIDGE\""; else cat; fi)" ]
}
rm_all() { local ids; ids=$("$@" ps -aq 2>/dev/null) || return 0; [ -z "$ids" ] || "$@" rm -f $ids >/dev/null 2>&1 || true; }

wait_for() { # wait_for SECONDS cmd...: polls until cmd succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "n/a"; else print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# Unused /24s for the bridges: no route or address of the host in them.
free_24() { # free_24 TAKEN: prints a prefix "10.213.N." not in use and not TAKEN
  local i s
  for i in $(seq 0 249); do
    s=10.213.$((($$ + i) % 250)).
    [ "$s" = "${1:-}" ] && continue
    if ! ip -4 route | grep -qF "$s" && ! ip -4 addr | grep -qF "$s"; then echo "$s"; return 0; fi
  done
  return 1
}
# free_ports COUNT [FIRST LAST]: COUNT TCP ports in FIRST..LAST (default 18080..18999), one a line,
# that nothing listens on or is bound to.
free_ports() {
  local p n=0 used
  used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -u)
  for p in $(seq "${2:-18080}" "${3:-18999}"); do
    grep -qx "$p" <<<"$used" && continue
    echo "$p"; n=$((n + 1)); [ "$n" -lt "$1" ] || return 0
  done
  return 1
}
# Fails when one of these interfaces exists already (bench_init's names are unique per temp dir).
bridges_unused() {
  local b
  for b in "$@"; do
    ! ip link show "$b" >/dev/null 2>&1 || { echo "interface $b exists already" >&2; return 1; }
  done
}
# make_bridge PREFIX: makes KBRIDGE, dockerd's bridge, with PREFIX.1/24 ("10.213.N.").
make_bridge() {
  ip link add name "$KBRIDGE" type bridge
  MADE_KBRIDGE=1
  ip addr add "${1}1/24" dev "$KBRIDGE"
  ip link set "$KBRIDGE" up
}

# start_berthd [ARGS]...: our berthd on BERTH_SOCK with its roots under WORK (ARGS: its network).
start_berthd() {
  STARTED_BERTHD=1
  setsid "$BIN/berthd" --host "unix://$BERTH_SOCK" --data-root "$WORK/berth-data" --exec-root "$WORK/berth-run" \
    "$@" >"$WORK/berthd.log" 2>&1 &
  BERTHD_PID=$!
  BERTHD_START=$(awk '{print $22}' "/proc/$BERTHD_PID/stat" 2>/dev/null || true)
  wait_for 30 curl -sf --unix-socket "$BERTH_SOCK" http://berth/_ping || { echo "berthd did not start:" >&2; cat "$WORK/berthd.log" >&2; exit 1; }
}

# start_containerd: our own containerd (dockerd would use a system one at /run/containerd if it ran).
start_containerd() {
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
  setsid containerd --config "$CTD/config.toml" >"$WORK/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  wait_for 30 test -S "$CTD/containerd.sock" || { echo "containerd did not start:" >&2; cat "$WORK/containerd.log" >&2; exit 1; }
}

# start_dockerd 'EXTRA' [ARGS]...: our dockerd on DOCKER_SOCK over our containerd, its roots under
# WORK, its containers' cgroups under /NAME; EXTRA: more members of daemon.json (', "k": v'), ARGS:
# its network (e.g. --bridge "$KBRIDGE" --iptables=false ...).
start_dockerd() {
  local extra=$1; shift
  echo "{\"deprecated-key-path\": \"$WORK/docker-key.json\"$extra}" >"$WORK/daemon.json"
  setsid dockerd --config-file "$WORK/daemon.json" --containerd "$CTD/containerd.sock" \
    --host "unix://$DOCKER_SOCK" --data-root "$WORK/docker-data" --exec-root "$WORK/docker-run" \
    --pidfile "$WORK/docker.pid" --cgroup-parent "/$NAME" --storage-driver overlay2 \
    "$@" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  wait_for 60 curl -sf --unix-socket "$DOCKER_SOCK" http://docker/_ping || { echo "dockerd did not start:" >&2; cat "$WORK/dockerd.log" >&2; exit 1; }
}

# The cleanup, in three steps (a script's own steps can go between them); run with set +e.
bench_cleanup_containers() {
  [ -n "$BERTHD_PID" ] && rm_all berth
  [ -n "$DOCKERD_PID" ] && rm_all dock
  return 0
}
bench_cleanup_daemons() {
  [ -n "$BERTHD_PID" ] && stop_pid "$BERTHD_PID" 10
  [ -n "$DOCKERD_PID" ] && stop_pid "$DOCKERD_PID" 20
  [ -n "$CONTAINERD_PID" ] && stop_pid "$CONTAINERD_PID" 10
  return 0
}
bench_cleanup_rest() {
  local p c
  # Shims name the temp dir (or a file under it) in their command line.
  for p in $(pids_named ""); do kill -9 "$p" 2>/dev/null; done
  grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for c in /sys/fs/cgroup/"$NAME" /sys/fs/cgroup/*/"$NAME"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [ -n "$MADE_KBRIDGE" ] && ip link del "$KBRIDGE" 2>/dev/null
  # berthd keeps its default bridge when it stops (as dockerd keeps docker0): ours has a unique name.
  [ -n "$STARTED_BERTHD" ] && [ -n "$BBRIDGE" ] && ip link del "$BBRIDGE" 2>/dev/null
  if [ -n "$STARTED_BERTHD" ] && [ "$IP_FORWARD" = 0 ]; then
    if other_berthd; then echo "note: left net.ipv4.ip_forward=1: another berthd started meanwhile" >&2
    else echo 0 >/proc/sys/net/ipv4/ip_forward; fi
  fi
  # The table did not exist when we started (bench_check_nft, unless BENCH_SHARE_NFT): delete it
  # when nothing but our berthd's rules are in it; otherwise the next berthd to start resets it.
  if [ -n "$STARTED_BERTHD" ] && [ -z "${BENCH_SHARE_NFT:-}" ] && command -v nft >/dev/null 2>&1; then
    if nft_only_ours; then nft delete table inet berth 2>/dev/null
    elif nft list table inet berth >/dev/null 2>&1; then echo "note: left nftables table inet berth: rules of another berthd are in it" >&2; fi
  fi
  rm -rf "$WORK"
}
bench_cleanup() { bench_cleanup_containers; bench_cleanup_daemons; bench_cleanup_rest; }

# Timing of paired commands (run.sh, registry.sh). pair LABEL: times the commands in the arrays B
# (berth) and K (docker), alternating them so that drift of the machine hits both alike; one
# warm-up each (unless NO_WARMUP is set), then N runs each. Before each run the commands in the
# arrays BP and KP run untimed when set (e.g. removing what the timed command would find). A
# failing command is reported as FAILED, its error kept for the end ($WORK/errors). The iteration
# number is in ITER for the commands (0-based; -1 in the warm-up). Prints the row with FMT.
# Each timed command starts after SETTLE seconds (default 0.1) of quiet, so work an engine does
# after its command returned (dockerd and containerd finishing an exec, berthd writing state) is
# not timed as part of the other engine's next command; SETTLE=0 times them back to back.
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
untimed() { # untimed ARRAY-NAME: runs the preparation command in it, if any
  local -n cmd=$1
  [ "${#cmd[@]}" -eq 0 ] || "${cmd[@]}" >/dev/null 2>"$WORK/err"
}
settle() { [ "${SETTLE:-0.1}" = 0 ] || sleep "${SETTLE:-0.1}"; }
BP=() KP=()
pair() {
  local bfail= kfail=
  TIMES_B=() TIMES_K=()
  if [ -z "${NO_WARMUP:-}" ]; then
    ITER=-1
    untimed BP && "${B[@]}" >/dev/null 2>"$WORK/err" || { note_error "${B[*]}"; bfail=1; }
    untimed KP && "${K[@]}" >/dev/null 2>"$WORK/err" || { note_error "${K[*]}"; kfail=1; }
  fi
  for ((ITER = 0; ITER < N; ITER++)); do
    [ -n "$bfail" ] || { untimed BP && settle && timed B; } || { note_error "${B[*]}"; bfail=1; }
    [ -n "$kfail" ] || { untimed KP && settle && timed K; } || { note_error "${K[*]}"; kfail=1; }
  done
  row "$1" "$(stats "$bfail" "${TIMES_B[@]}")" "$(stats "$kfail" "${TIMES_K[@]}")"
}
FMT='%-58s %10s %10s %10s %10s %7s\n'
row() { # row LABEL "berth-median berth-mean" "docker-median docker-mean"
  local bm bavg km kavg
  read -r bm bavg <<<"$2"; read -r km kavg <<<"$3"
  printf "$FMT" "$1" "$bm" "${bavg:--}" "$km" "${kavg:--}" "$(ratio "$bm" "$km")"
}
