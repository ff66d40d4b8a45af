#!/usr/bin/env bash
# Build benchmark of berth against Docker (Debian's docker.io) on this machine: a two-stage build of
# 200 small files (stage one copies them from the context and runs a step over them, stage two
# takes them with COPY --from), cold (--no-cache) and fully cached (the same build again), with
# `berth build` against `docker build` with the classic builder (DOCKER_BUILDKIT=0) and, where
# dockerd has it, BuildKit (DOCKER_BUILDKIT=1). Targets: berth cold <= 250 ms, cached <= 25 ms.
#
# Usage: bash bench/build.sh [iterations]    (as root; default 10; SKIP_BUILD=1 uses the release
#        binaries already built)
#
# The daemons, their data and the context live in one temp dir (bench/lib.sh); both engines run
# without a default bridge (berthd --bridge none, dockerd --bridge none --iptables=false). The
# commands of the two columns alternate, one warm-up each, then N runs each; medians and means.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}

bash scripts/deps.sh
. bench/lib.sh
bench_release_binaries

bench_check_nft build.sh
bench_init bbuild
BBRIDGE=
cleanup() { set +e; bench_cleanup; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_berthd --bridge none
BERTH_HOST=unix://$BERTH_SOCK bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null
start_containerd
start_dockerd "" --bridge none --iptables=false --ip-forward=false --ip-masq=false
berth save -o "$WORK/bb.tar" bb:latest
dock load -q -i "$WORK/bb.tar" >/dev/null

CTX=$WORK/context
mkdir -p "$CTX/files"
for i in $(seq 1 200); do printf 'file %s\n%s\n' "$i" "$(head -c 200 /dev/urandom | base64 -w0)" >"$CTX/files/f$i.txt"; done
cat >"$CTX/Dockerfile" <<'DF'
FROM bb AS stage1
COPY files /src/
RUN cat /src/*.txt | wc -l > /src/count
FROM bb
COPY --from=stage1 /src /app/
CMD ["cat", "/app/count"]
DF

echo "berth $("$BIN/berth" --version | head -1) vs dockerd $(dockerd --version | sed 's/Docker version //'); $(nproc) CPUs, $(uname -r)"
echo "two-stage build of 200 small files (COPY, RUN, COPY --from); times in ms over $N runs each, alternating after one warm-up"
printf "$FMT" "operation" "berth med" "berth mean" "docker med" "dock mean" "ratio"
B=(berth build --no-cache -q -t b:cold "$CTX") K=(env DOCKER_BUILDKIT=0 "$DOCKER" -H "unix://$DOCKER_SOCK" build --no-cache -q -t b:cold "$CTX")
pair "cold build (--no-cache), docker's classic builder"
B=(berth build -q -t b:cached "$CTX") K=(env DOCKER_BUILDKIT=0 "$DOCKER" -H "unix://$DOCKER_SOCK" build -q -t b:cached "$CTX")
pair "cached build, docker's classic builder"
if DOCKER_BUILDKIT=1 "$DOCKER" -H "unix://$DOCKER_SOCK" build -q -t b:probe "$CTX" >/dev/null 2>&1; then
  B=(berth build --no-cache -q -t b:cold "$CTX") K=(env DOCKER_BUILDKIT=1 "$DOCKER" -H "unix://$DOCKER_SOCK" build --no-cache -q -t b:cold "$CTX")
  pair "cold build (--no-cache), docker with BuildKit"
  B=(berth build -q -t b:cached "$CTX") K=(env DOCKER_BUILDKIT=1 "$DOCKER" -H "unix://$DOCKER_SOCK" build -q -t b:cached "$CTX")
  pair "cached build, docker with BuildKit"
else
  echo "(dockerd here has no BuildKit: its rows are left out)"
fi
echo "the result runs: berth $(berth run --rm b:cold) lines, docker $(dock run --rm b:cold) lines"
