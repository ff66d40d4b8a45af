#!/usr/bin/env bash
# A/B of two berth builds on this machine: both daemons up side by side, single
# `berth run --rm --network none bb true` calls alternating between them, so machine noise hits both
# alike. Prints each build's median and quartiles. (bench/run.sh compares berth with Docker.)
#
# Usage: bash bench/ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [calls]    (as root)
#   e.g. git worktree add /tmp/old <rev> && (cd /tmp/old && cargo build --release --bins)
#        bash bench/ab.sh /tmp/old/target/release target/release 80
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bash bench/ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [calls]" >&2; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2") N=${3:-60}
export BERTH_NO_AUTOSTART=1
WORK=$(mktemp -d /tmp/bab.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for t in old new; do umount "$WORK/$t/run" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bin() { [ "$1" = old ] && echo "$OLD" || echo "$NEW"; }
for t in old new; do
  mkdir -p "$WORK/$t"
  "$(bin $t)/berthd" --host "unix://$WORK/$t/s.sock" --data-root "$WORK/$t/data" --exec-root "$WORK/$t/run" \
    >"$WORK/$t/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do BERTH_HOST=unix://$WORK/$t/s.sock "$(bin $t)/berth" ps >/dev/null 2>&1 && break; sleep 0.05; done
  BERTH_HOST=unix://$WORK/$t/s.sock bash scripts/busybox-image.sh "$(bin $t)/berth" >/dev/null
done
for _ in $(seq "$N"); do
  for t in old new; do
    s=$(date +%s%N)
    BERTH_HOST=unix://$WORK/$t/s.sock "$(bin $t)/berth" run --rm --network none bb true
    e=$(date +%s%N)
    echo $(((e - s) / 10000)) >>"$WORK/$t.times"
  done
done
for t in old new; do
  sort -n "$WORK/$t.times" | awk -v t="$t" '{a[NR]=$1} END {
    printf "%s run --rm: median %.2f ms (p25 %.2f, p75 %.2f, %d calls)\n", t, a[int((NR+1)/2)]/100, a[int(NR/4)]/100, a[int(3*NR/4)]/100, NR }'
done
