#!/usr/bin/env bash
# Networking benchmark of berth against Docker (Debian's docker.io), side by side in one run:
#  1. HTTP throughput and latency (wrk) to busybox httpd serving a 1 KiB file, through a port
#     published on 127.0.0.1: berth (kernel NAT: DNAT in its nftables table, route_localnet on its
#     bridge), Docker (its default for 127.0.0.1: the userland proxy docker-proxy), and the same
#     httpd run straight on the host loopback (the baseline). Targets: berth >= 2x Docker's req/s,
#     berth >= 0.9x the host loopback's. Also the CPU time per request (server + wrk + docker-proxy),
#     which other load on a shared machine moves less than req/s, and p50 at one connection.
#  2. `run --rm bb true` on the default bridge against `--network none` for berth (target: bridge
#     <= 1.3x none), and Docker's `run --rm` on its bridge for reference; medians, interleaved.
#
# Usage: bash bench/net.sh [runs]    (as root; runs of each `run --rm` row, default 20;
#        ROUNDS=<n> wrk rounds per target, default 3; WRK_ARGS, default "-t2 -c32 -d5s";
#        SKIP_BUILD=1 uses the release binaries already built; SETTLE=<s> of quiet before each timed
#        `run --rm`, default 0.1; PERF_DIR=<dir> also profiles one more
#        wrk run per target with `perf record -a` and keeps the CPU share per command there;
#        HOST_CPU_CGROUP=1 puts the host httpd in a cgroup v1 `cpu` group of its own, as a
#        container is, for a CPU weight like the containers' when other load competes for the CPUs)
#
# Like bench/run.sh, everything of the private berthd and containerd + dockerd lives under one temp
# dir. Each engine gets a bridge of its own with a unique name on an unused 10.213.x.0/24, so nothing
# collides with the host's networks: dockerd's is made here (dockerd runs with --iptables=false, so
# it publishes ports only through docker-proxy, its default for 127.0.0.1); berthd makes its own
# from --bridge/--bip. Traffic goes only to 127.0.0.1 and these bridges.
#
# berthd's kernel NAT lives in the nftables table `inet berth`, one per host, not per daemon: a
# second berthd on the host with networking would share it, and each berthd replaces the whole table
# when it starts. So the script refuses to run while the table exists (another berthd may be using
# it; BENCH_SHARE_NFT=1 overrides), and at the end deletes it only when nothing but its berthd's
# rules are in it (the fixed ones and those naming its bridge); otherwise the next berthd to start
# resets it. berthd also sets net.ipv4.ip_forward=1; the script puts back the value it found unless
# another berthd started meanwhile.
# On exit it removes its containers, stops the daemons, shims and httpd it started (by PID, or by the
# temp dir in their command line), unmounts, removes its cgroups, both bridges and the temp dir.
# The host httpd, like the daemons (bench/lib.sh), runs in a session of its own, as a server on a
# host does: in wrk's session it would share wrk's autogroup (a CPU scheduling group), and wake-ups
# between wrk and the server would cost less than between wrk and any container's server, which
# sits in its container's cgroup.
# (The setup and cleanup shared with the other benchmarks are in bench/lib.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
ROUNDS=${ROUNDS:-3}
WRK_ARGS=${WRK_ARGS:--t2 -c32 -d5s}

bash scripts/deps.sh
# wrk is only for this benchmark, so it is installed here rather than by scripts/deps.sh.
if ! command -v wrk >/dev/null 2>&1; then
  { apt-get install -y -qq --no-install-recommends wrk || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk; }; } >/dev/null 2>&1 \
    || { echo "net.sh: installing wrk failed" >&2; exit 1; }
fi
# Docker publishes ports through its userland proxy by default; Debian's docker.io ships it.
DOCKER_PROXY=
for p in /usr/sbin/docker-proxy /usr/bin/docker-proxy /usr/libexec/docker/docker-proxy; do
  [ -x "$p" ] && { DOCKER_PROXY=$p; break; }
done
[ -n "$DOCKER_PROXY" ] || { echo "net.sh: docker-proxy not found (package docker.io)" >&2; exit 1; }
. bench/lib.sh
bench_release_binaries
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox)

# The bench's berthd would replace another berthd's NAT table at its start (see above).
bench_check_nft net.sh

bench_init bnet
KBRIDGE=bk$SUFFIX   # dockerd's bridge; 8 characters, fits IFNAMSIZ, unique with the temp dir
BBRIDGE=bb$SUFFIX   # berthd's default bridge
HTTPD_PID=
# The docker-proxy processes of our dockerd: its children (their command lines do not name $WORK).
proxies() { [ -z "$DOCKERD_PID" ] || pgrep -P "$DOCKERD_PID" -x docker-proxy || true; }

cleanup() {
  set +e
  [ -n "$HTTPD_PID" ] && stop_pid "$HTTPD_PID" 5
  if [ -n "${BENCH_CG:-}" ] && [ -d "$BENCH_CG" ]; then # empty once wrk and httpd (and its children) are gone
    for i in 1 2 3 4 5; do rmdir "$BENCH_CG"/* "$BENCH_CG" 2>/dev/null && break; sleep 0.2; done
  fi
  if [ -n "${CPU_CG:-}" ] && [ -d "$CPU_CG" ]; then
    for i in 1 2 3 4 5; do rmdir "$CPU_CG" 2>/dev/null && break; sleep 0.2; done
  fi
  bench_cleanup_containers
  local leftover; leftover=$(proxies)
  bench_cleanup_daemons
  for p in $leftover; do kill -9 "$p" 2>/dev/null; done
  bench_cleanup_rest
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two unused /24s, one per engine's bridge.
KNET=$(free_24) || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
BNET=$(free_24 "$KNET") || { echo "no free /24 for the benchmark bridges" >&2; exit 1; }
bridges_unused "$KBRIDGE" "$BBRIDGE" || exit 1

# Three free TCP ports on 127.0.0.1 (berth, docker, host httpd): nothing listens or is bound there.
read -r BPORT KPORT HPORT <<<"$(free_ports 3 | tr '\n' ' ')"
[ -n "$HPORT" ] || { echo "no free ports on 127.0.0.1" >&2; exit 1; }

# --- berth, with its own default bridge on its own subnet.
start_berthd --bridge "$BBRIDGE" --bip "${BNET}1/24"
BERTH_HOST=unix://$BERTH_SOCK bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null

# --- docker: our own containerd and bridge.
start_containerd
make_bridge "$KNET"
# No --userland-proxy=false here (unlike bench/run.sh): ports published the default way, through
# docker-proxy; --iptables=false keeps dockerd out of the host's rules (the proxy needs none).
start_dockerd ", \"userland-proxy-path\": \"$DOCKER_PROXY\"" --bridge "$KBRIDGE" --iptables=false --ip-forward=false --ip-masq=false

if berth save -o "$WORK/bb.tar" bb:latest 2>/dev/null && dock load -q -i "$WORK/bb.tar" >/dev/null 2>&1; then :; else
  DOCKER_HOST=unix://$DOCKER_SOCK bash scripts/busybox-image.sh "$DOCKER" bb:latest >/dev/null
fi

echo "berth $("$BIN/berth" --version 2>/dev/null | head -1) vs dockerd $(dockerd --version | sed 's/Docker version //') (docker-proxy $DOCKER_PROXY); $(nproc) CPUs, $(uname -r)"

# ---------------------------------------------------------------- 1. HTTP through a published port
# The same 1 KiB file served by busybox httpd (-f: foreground; it forks a child per connection and
# closes each after one response, so every request is a new TCP connection through the path).
mkdir -p "$WORK/www"
head -c 1024 /dev/zero | tr '\0' x >"$WORK/www/index.html"
SERVE='mkdir -p /www && head -c 1024 /dev/zero | tr "\0" x >/www/index.html && exec httpd -f -p 80 -h /www'
berth run -d --name bnet-httpd -p "127.0.0.1:$BPORT:80" bb sh -c "$SERVE" >/dev/null
dock run -d --name bnet-httpd -p "127.0.0.1:$KPORT:80" bb sh -c "$SERVE" >/dev/null
# CPU time per request, so that the load of others on this shared machine does not decide the
# comparison: the CPU of the server's cgroup (the container's, or one made here for the host httpd),
# of wrk (in a cgroup made here) and, for Docker, of its docker-proxy, over the requests served.
# cgroup v1 (cpuacct.usage, ns) or v2 (cpu.stat usage_usec), read in microseconds.
CG_V1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ {print $2; exit}' /proc/mounts)
CG_V2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
cg_of() { # cg_of PID: the cgroup directory that accounts PID's CPU time
  if [ -n "$CG_V1" ]; then echo "$CG_V1$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ {print $3}' "/proc/$1/cgroup")"
  else echo "$CG_V2$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")"; fi
}
cg_us() { if [ -f "$1/cpuacct.usage" ]; then echo $(($(cat "$1/cpuacct.usage") / 1000)); else awk '/^usage_usec/ {print $2}' "$1/cpu.stat"; fi; }
proxy_us() { local t=0 p; for p in $(proxies); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $((t * 1000000 / $(getconf CLK_TCK))); }
BENCH_CG=${CG_V1:-$CG_V2}/$NAME-bench
mkdir -p "$BENCH_CG/wrk" "$BENCH_CG/httpd"
# A container's processes share one CPU weight (its cgroup's, under berth's or dockerd's parent),
# while processes in the root cpu group each weigh as much on their own: with other load on the
# machine the host httpd and its per-connection children get more CPU than a container does.
CPU_CG=
if [ -n "${HOST_CPU_CGROUP:-}" ]; then
  cpu_v1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpu(,|$)/ {print $2; exit}' /proc/mounts)
  [ -n "$cpu_v1" ] || { echo "HOST_CPU_CGROUP=1 needs a cgroup v1 cpu hierarchy" >&2; exit 1; }
  if [ "$cpu_v1" != "$CG_V1" ]; then CPU_CG=$cpu_v1/$NAME-bench-cpu; mkdir -p "$CPU_CG"; fi
fi
( echo "$BASHPID" >"$BENCH_CG/httpd/cgroup.procs"; [ -z "$CPU_CG" ] || echo "$BASHPID" >"$CPU_CG/cgroup.procs"
  exec setsid "$BUSYBOX" httpd -f -p "127.0.0.1:$HPORT" -h "$WORK/www" ) &
HTTPD_PID=$!
declare -A SRV_CG=([host]="$BENCH_CG/httpd")
SRV_CG[berth]=$(cg_of "$(berth inspect -f '{{.State.Pid}}' bnet-httpd)")
SRV_CG[docker]=$(cg_of "$(dock inspect -f '{{.State.Pid}}' bnet-httpd)")
for p in "$BPORT" "$KPORT" "$HPORT"; do
  wait_for 20 curl -sf -o /dev/null "http://127.0.0.1:$p/index.html" || { echo "no HTTP answer on 127.0.0.1:$p" >&2; exit 1; }
done
# Docker really publishes through its proxy here: one docker-proxy process listens on the port.
nproxy=$(proxies | wc -l)

to_ms() { awk '{v = $1 + 0; u = $1; sub(/^[0-9.]+/, "", u); if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.3f\n", v}'; }
# wrk_once TARGET PORT: one wrk run; appends "req/s p50-ms p99-ms errors cpu-us/request" to
# $WORK/wrk.TARGET.
wrk_once() {
  local out rps p50 p99 errs s0 w0 x0 cpu
  s0=$(cg_us "${SRV_CG[$1]}") w0=$(cg_us "$BENCH_CG/wrk") x0=$(proxy_us)
  out=$(echo "$BASHPID" >"$BENCH_CG/wrk/cgroup.procs" && exec wrk $WRK_ARGS --latency "http://127.0.0.1:$2/index.html" 2>&1) || { echo "$out" >&2; return 1; }
  cpu=$(($(cg_us "${SRV_CG[$1]}") - s0 + $(cg_us "$BENCH_CG/wrk") - w0))
  [ "$1" != docker ] || cpu=$((cpu + $(proxy_us) - x0))
  echo "$out" >>"$WORK/wrk.log"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
  # Socket errors and non-2xx answers, summed: a path that drops requests must not look fast.
  errs=$(awk '/Socket errors:/ {gsub(",", ""); s += $4 + $6 + $8 + $10} /Non-2xx/ {s += $NF} END {print s + 0}' <<<"$out")
  cpu=$(awk -v c="$cpu" '/requests in/ {printf "%.1f", c / $1}' <<<"$out")
  echo "$rps $p50 $p99 $errs $cpu" >>"$WORK/wrk.$1"
}
# A short warm-up of each path, then ROUNDS rounds, the three targets in turn in each round, so
# drift of this shared machine hits all three alike.
for t in "host:$HPORT" "berth:$BPORT" "docker:$KPORT"; do
  wrk -t1 -c4 -d1s "http://127.0.0.1:${t#*:}/index.html" >/dev/null 2>&1 || true
done
for ((r = 0; r < ROUNDS; r++)); do
  wrk_once host "$HPORT"; wrk_once berth "$BPORT"; wrk_once docker "$KPORT"
done
# One sequential connection at a time: the latency of the path itself, the machine not saturated.
LAT_ARGS="-t1 -c1 -d3s"
for ((r = 0; r < ROUNDS; r++)); do
  for t in "host:$HPORT" "berth:$BPORT" "docker:$KPORT"; do
    out=$(wrk $LAT_ARGS --latency "http://127.0.0.1:${t#*:}/index.html" 2>&1) || { echo "$out" >&2; exit 1; }
    awk '$1 == "50%" {print $2}' <<<"$out" | to_ms >>"$WORK/lat.${t%%:*}"
  done
done
# Where the CPU goes on each path (optional): the share of samples per command, all CPUs.
if [ -n "${PERF_DIR:-}" ] && command -v perf >/dev/null 2>&1; then
  mkdir -p "$PERF_DIR"
  for t in "host:$HPORT" "berth:$BPORT" "docker:$KPORT"; do
    perf record -q -a -F 999 -o "$WORK/perf.data" -- wrk $WRK_ARGS "http://127.0.0.1:${t#*:}/index.html" >"$PERF_DIR/wrk.${t%%:*}" 2>&1 || true
    perf report -q -i "$WORK/perf.data" --sort comm --stdio 2>/dev/null | head -15 >"$PERF_DIR/comm.${t%%:*}" || true
    perf report -q -i "$WORK/perf.data" --sort sym --stdio 2>/dev/null | head -40 >"$PERF_DIR/sym.${t%%:*}" || true
  done
  rm -f "$WORK/perf.data"
fi
lat() { median <"$WORK/lat.$1"; }
col() { awk -v c="$2" '{print $c}' "$WORK/wrk.$1" | median; }
errsum() { awk '{s += $4} END {print s + 0}' "$WORK/wrk.$1"; }
echo
echo "1. HTTP GET of a 1 KiB file from busybox httpd on 127.0.0.1 (wrk $WRK_ARGS --latency; median of $ROUNDS rounds, targets interleaved)"
printf '%-44s %12s %10s %10s %8s %11s\n' "path" "requests/s" "p50 ms" "p99 ms" "errors" "CPU us/req"
printf '%-44s %12s %10s %10s %8s %11s\n' "host loopback (httpd on the host)" "$(col host 1)" "$(col host 2)" "$(col host 3)" "$(errsum host)" "$(col host 5)"
printf '%-44s %12s %10s %10s %8s %11s\n' "berth -p 127.0.0.1:P:80 (kernel NAT)" "$(col berth 1)" "$(col berth 2)" "$(col berth 3)" "$(errsum berth)" "$(col berth 5)"
printf '%-44s %12s %10s %10s %8s %11s\n' "docker -p 127.0.0.1:P:80 (docker-proxy x$nproxy)" "$(col docker 1)" "$(col docker 2)" "$(col docker 3)" "$(errsum docker)" "$(col docker 5)"
rb=$(col berth 1) rk=$(col docker 1) rh=$(col host 1)
echo "berth/docker req/s: $(ratio "$rb" "$rk") (target >= 2)   berth/host req/s: $(ratio "$rb" "$rh") (target >= 0.9)"
echo "CPU per request (server + wrk + docker-proxy), berth/docker: $(ratio "$(col berth 5)" "$(col docker 5)"), berth/host: $(ratio "$(col berth 5)" "$(col host 5)");" \
  "requests per CPU-second, berth/docker: $(ratio "$(col docker 5)" "$(col berth 5)"), berth/host: $(ratio "$(col host 5)" "$(col berth 5)")"
echo "berth/docker p50 latency: $(ratio "$(col berth 2)" "$(col docker 2)")   berth/host p50 latency: $(ratio "$(col berth 2)" "$(col host 2)")"
echo "one connection at a time (wrk $LAT_ARGS), p50 ms: host $(lat host), berth $(lat berth), docker $(lat docker);" \
  "berth/docker $(ratio "$(lat berth)" "$(lat docker)"), berth/host $(ratio "$(lat berth)" "$(lat host)")"
stop_pid "$HTTPD_PID" 5; HTTPD_PID=
rm_all berth; rm_all dock

# ---------------------------------------------------------------- 2. run --rm: bridge vs none
# One warm-up each, then N runs of each command in turn (interleaved), each after SETTLE seconds of
# quiet (bench/lib.sh, default 0.1); wall time of the CLI call.
declare -A T=()
CMDS=(berth_bridge berth_none docker_bridge)
berth_bridge() { berth run --rm bb true; }
berth_none() { berth run --rm --network none bb true; }
docker_bridge() { dock run --rm bb true; }
for c in "${CMDS[@]}"; do "$c" >/dev/null 2>"$WORK/err" || { echo "$c failed: $(cat "$WORK/err")" >&2; exit 1; }; done
for ((i = 0; i < N; i++)); do
  for c in "${CMDS[@]}"; do
    settle # dockerd and containerd finish a `run --rm` after the CLI returns: not berth's time
    t0=$EPOCHREALTIME
    "$c" >/dev/null 2>"$WORK/err" || { echo "$c failed: $(cat "$WORK/err")" >&2; exit 1; }
    T[$c]+="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", (b - a) * 1000}') "
  done
done
med() { tr ' ' '\n' <<<"${T[$1]}" | grep . | median; }
echo
echo "2. run --rm bb true, wall time in ms (median of $N runs each, the three interleaved, one warm-up each)"
printf '%-44s %10s\n' "berth, default bridge ($BBRIDGE)" "$(med berth_bridge)"
printf '%-44s %10s\n' "berth, --network none" "$(med berth_none)"
printf '%-44s %10s\n' "docker, default bridge ($KBRIDGE)" "$(med docker_bridge)"
echo "berth bridge/none: $(ratio "$(med berth_bridge)" "$(med berth_none)") (target <= 1.3)   berth bridge/docker bridge: $(ratio "$(med berth_bridge)" "$(med docker_bridge)")"
