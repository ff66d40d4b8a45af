#!/usr/bin/env bash
# A/B of two berth builds on this machine: both daemons up side by side (each in a network
# namespace of its own, as berthd makes a bridge and nftables rules), single calls alternating
# between them, so machine noise hits both alike. Prints each build's median and quartiles.
# (bench/run.sh compares berth with Docker.)
#
# Usage: bash bench/ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [calls] [mode]    (as root)
#   mode: run (default: `berth run --rm --network none bb true`) or exec (`berth exec cx true` into a
#   running container)
#   e.g. git worktree add /tmp/old <rev> && (cd /tmp/old && cargo build --release --bins)
#        bash bench/ab.sh /tmp/old/target/release target/release 80 exec
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bash bench/ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [calls] [run|exec]" >&2; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2") N=${3:-60} MODE=${4:-run}
case $MODE in run | exec) ;; *) echo "mode: run or exec" >&2; exit 2 ;; esac
export BERTH_NO_AUTOSTART=1
WORK=$(mktemp -d /tmp/bab.XXXXXX)
NS=bab${WORK#/tmp/bab.}
PIDS=()
cleanup() {
  set +e
  for t in old new; do
    [ -S "$WORK/$t/s.sock" ] && BERTH_HOST=unix://$WORK/$t/s.sock "$(bin $t)/berth" rm -f cx >/dev/null 2>&1
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for t in old new; do ip netns del "$NS$t" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bin() { [ "$1" = old ] && echo "$OLD" || echo "$NEW"; }
for t in old new; do
  mkdir -p "$WORK/$t"
  ip netns add "$NS$t"
  nsenter --net="/run/netns/$NS$t" "$(bin $t)/berthd" --host "unix://$WORK/$t/s.sock" --data-root "$WORK/$t/data" \
    --exec-root "$WORK/$t/run" >"$WORK/$t/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do BERTH_HOST=unix://$WORK/$t/s.sock "$(bin $t)/berth" ps >/dev/null 2>&1 && break; sleep 0.05; done
  BERTH_HOST=unix://$WORK/$t/s.sock bash scripts/busybox-image.sh "$(bin $t)/berth" >/dev/null
  if [ "$MODE" = exec ]; then
    BERTH_HOST=unix://$WORK/$t/s.sock "$(bin $t)/berth" run -d --name cx --network none bb sleep 3600 >/dev/null
  fi
done
call() {
  if [ "$MODE" = exec ]; then "$1/berth" exec cx true; else "$1/berth" run --rm --network none bb true; fi
}
for _ in $(seq "$N"); do
  for t in old new; do
    s=$(date +%s%N)
    BERTH_HOST=unix://$WORK/$t/s.sock call "$(bin $t)"
    e=$(date +%s%N)
    echo $(((e - s) / 10000)) >>"$WORK/$t.times"
  done
done
for t in old new; do
  sort -n "$WORK/$t.times" | awk -v t="$t" -v m="$MODE" '{a[NR]=$1} END {
    printf "%s %s: median %.2f ms (p25 %.2f, p75 %.2f, %d calls)\n", t, m, a[int((NR+1)/2)]/100, a[int(NR/4)]/100, a[int(3*NR/4)]/100, NR }'
done
