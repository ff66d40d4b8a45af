#!/usr/bin/env bash
# Side-by-side benchmark of berth and Docker (Debian's docker.io, installed and started here) on this
# machine. Prints per-operation times and engine memory per running container, with berth/Docker ratios.
# Usage: bash bench/run.sh [iterations]   (run as root; builds berth in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
NCONT=${NCONT:-20}
bash scripts/deps.sh
cargo build --release --bins -q
BIN=$PWD/target/release
WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
BERTH_SOCK=$WORK/berth.sock
cleanup() {
  set +e
  DOCKER_HOST=unix://$BERTH_SOCK docker rm -f $(DOCKER_HOST=unix://$BERTH_SOCK docker ps -aq) >/dev/null 2>&1
  [ -n "${BERTHD_PID:-}" ] && kill "$BERTHD_PID" 2>/dev/null && wait "$BERTHD_PID" 2>/dev/null
  if [ -n "${DOCKERD_PID:-}" ]; then
    DOCKER_HOST=unix://$WORK/docker.sock docker rm -f $(DOCKER_HOST=unix://$WORK/docker.sock docker ps -aq) >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null
  fi
  [ -n "${MADE_DOCKER0:-}" ] && ip link del docker0 2>/dev/null
  grep " $WORK" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- berth
"$BIN/berthd" --host "unix://$BERTH_SOCK" --data-root "$WORK/berth-data" --exec-root "$WORK/berth-run" >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 100); do curl -sf --unix-socket "$BERTH_SOCK" http://x/_ping >/dev/null && break; sleep 0.1; done
export BERTH_HOST=unix://$BERTH_SOCK
bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null
"$BIN/berth" save -o "$WORK/bb.tar" bb:latest

# --- docker
if ! command -v dockerd >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
DOCKER_SOCK=$WORK/docker.sock
# dockerd makes its docker0 bridge; remove it afterwards if this run created it.
ip link show docker0 >/dev/null 2>&1 || MADE_DOCKER0=1
dockerd --host "unix://$DOCKER_SOCK" --data-root "$WORK/docker-data" --exec-root "$WORK/docker-run" \
  --pidfile "$WORK/docker.pid" --iptables=false --ip-forward=false >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 200); do DOCKER_HOST=unix://$DOCKER_SOCK docker version >/dev/null 2>&1 && break; sleep 0.1; done
DOCKER_HOST=unix://$DOCKER_SOCK docker load -q -i "$WORK/bb.tar" >/dev/null

now_ms() { date +%s%N | awk '{printf "%.3f", $1/1000000}'; }
# time_cmd N cmd... -> average milliseconds
time_cmd() {
  local n=$1; shift
  "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; echo "nan"; return; }
  local t0 t1
  t0=$(now_ms)
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1; done
  t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN{printf "%.1f", (b-a)/n}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}'; }

berth() { "$BIN/berth" "$@"; }
dock() { DOCKER_HOST=unix://$DOCKER_SOCK docker "$@"; }

printf '%-44s %12s %12s %8s\n' "operation (mean of $N)" "berth ms" "docker ms" "ratio"
row() { printf '%-44s %12s %12s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
b=$(time_cmd "$N" berth run --rm bb true); k=$(time_cmd "$N" dock run --rm --network none bb true)
row "run --rm bb true (no network)" "$b" "$k"
b=$(time_cmd "$N" berth run --rm bb true); k=$(time_cmd "$N" dock run --rm bb true)
row "run --rm bb true (default network*)" "$b" "$k"
b=$(time_cmd "$N" berth run -d bb true); k=$(time_cmd "$N" dock run -d --network none bb true)
row "run -d bb true" "$b" "$k"
berth rm -f $(berth ps -aq) >/dev/null 2>&1 || true
dock rm -f $(dock ps -aq) >/dev/null 2>&1 || true

# Engine memory per running container: PSS of the daemon(s) and shims, idle vs NCONT containers.
pss_kb() { local t=0; for p in "$@"; do v=$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0); t=$((t+${v:-0})); done; echo $t; }
berth_pids() { echo "$BERTHD_PID"; pgrep -f "berth-shim --bundle $WORK/berth-data" || true; }
docker_pids() { echo "$DOCKERD_PID"; pgrep -f "containerd" | while read -r p; do grep -q "$WORK\|containerd" /proc/$p/cmdline 2>/dev/null && echo "$p"; done; }
b0=$(pss_kb $(berth_pids)); k0=$(pss_kb $(docker_pids))
for i in $(seq "$NCONT"); do berth run -d bb sleep 600 >/dev/null; dock run -d --network none bb sleep 600 >/dev/null; done
sleep 1
b1=$(pss_kb $(berth_pids)); k1=$(pss_kb $(docker_pids))
bper=$(awk -v a="$b0" -v b="$b1" -v n="$NCONT" 'BEGIN{printf "%.2f", (b-a)/n/1024}')
kper=$(awk -v a="$k0" -v b="$k1" -v n="$NCONT" 'BEGIN{printf "%.2f", (b-a)/n/1024}')
printf '%-44s %12s %12s %8s\n' "engine PSS per running container (MB)" "$bper" "$kper" "$(ratio "$bper" "$kper")"
shim=$(pgrep -f "berth-shim --bundle $WORK/berth-data" | head -1)
[ -n "$shim" ] && awk '/^(Rss|Pss|Private_Clean|Private_Dirty):/{printf "  one berth-shim %s %s kB\n", $1, $2}' /proc/$shim/smaps_rollup
echo "* berth has no bridge network yet: its default network is loopback-only, Docker's is a bridge."
