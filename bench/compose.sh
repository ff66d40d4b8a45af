#!/usr/bin/env bash
# Compose benchmark of berth against Docker (Debian's docker.io) on this machine: `compose up -d`
# then `compose down` of a 5-service stack (busybox services on one network, a health-check chain
# db -> cache -> api -> web, and a worker), timed as one command:
#   1. `berth compose` on berthd against Docker Compose v2 on dockerd (target: <= 0.2x Docker's time);
#   2. Docker Compose v2 on berthd against Docker Compose v2 on dockerd (the engine alone).
# The same compose file for every run; its network gets a /24 of its own per engine (the file
# interpolates SUBNET). The health checks probe every 100ms (`interval`; both engines wait one
# interval before the first probe, as Docker does), so the chain costs both the same ~4 intervals.
# No `start_interval`: Compose v2 refuses it on Debian's dockerd 20.10 (it needs Engine v25).
#
# Usage: bash bench/compose.sh [iterations]    (as root; default 5; SKIP_BUILD=1 uses the release
#        binaries already built)
#
# The daemons, their data and the project live in one temp dir (bench/lib.sh); both engines run
# without a default bridge (berthd --bridge none, dockerd --bridge none --iptables=false); the
# stack's own network is a bridge on an unused 10.213.x.0/24 per engine. The commands of the two
# columns alternate, one warm-up each, then N runs each; medians and means.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}

bash scripts/deps.sh
. bench/lib.sh
bench_release_binaries
COMPOSE_V2=/usr/local/lib/docker/cli-plugins/docker-compose
[ -x "$COMPOSE_V2" ] || { echo "no Docker Compose v2 at $COMPOSE_V2 (scripts/deps.sh installs it)" >&2; exit 1; }

bench_check_nft compose.sh
bench_init bcomp
BBRIDGE=
PROJ=$WORK/project
down_all() {
  [ -n "$BERTHD_PID" ] && SUBNET=$BNET berth compose -f "$PROJ/compose.yaml" -p bench down -t 0 >/dev/null 2>&1
  [ -n "$DOCKERD_PID" ] && SUBNET=$KNET DOCKER_HOST=unix://$DOCKER_SOCK "$COMPOSE_V2" -f "$PROJ/compose.yaml" -p bench down -t 0 >/dev/null 2>&1
  return 0
}
cleanup() { set +e; down_all; bench_cleanup; }
trap cleanup EXIT
trap 'exit 130' INT TERM

KNET=$(free_24) || { echo "no free /24 for the benchmark networks" >&2; exit 1; }
BNET=$(free_24 "$KNET") || { echo "no free /24 for the benchmark networks" >&2; exit 1; }
export KNET BNET

start_berthd --bridge none
BERTH_HOST=unix://$BERTH_SOCK bash scripts/busybox-image.sh "$BIN/berth" bb:latest >/dev/null
start_containerd
start_dockerd "" --bridge none --iptables=false --ip-forward=false --ip-masq=false
berth save -o "$WORK/bb.tar" bb:latest
dock load -q -i "$WORK/bb.tar" >/dev/null

mkdir -p "$PROJ"
cat >"$PROJ/compose.yaml" <<'YAML'
x-svc: &svc
  image: bb:latest
  command: ["sh", "-c", "touch /tmp/ready; exec sleep 100000"]
  stop_signal: SIGKILL
  healthcheck: &hc
    test: ["CMD", "test", "-f", "/tmp/ready"]
    interval: 100ms
services:
  db: *svc
  cache:
    <<: *svc
    depends_on: {db: {condition: service_healthy}}
  api:
    <<: *svc
    depends_on: {cache: {condition: service_healthy}}
  web:
    <<: *svc
    depends_on: {api: {condition: service_healthy}}
  worker:
    <<: *svc
    depends_on: {web: {condition: service_started}}
networks:
  default:
    ipam:
      config: [{subnet: "${SUBNET}0/24"}]
YAML

export BERTH_HOST=unix://$BERTH_SOCK
cycle_berth() { SUBNET=$BNET "$BIN/berth" compose --progress quiet -f "$PROJ/compose.yaml" -p bench up -d && SUBNET=$BNET "$BIN/berth" compose --progress quiet -f "$PROJ/compose.yaml" -p bench down -t 0; }
cycle_v2_berthd() { SUBNET=$BNET DOCKER_HOST=unix://$BERTH_SOCK "$COMPOSE_V2" --progress quiet -f "$PROJ/compose.yaml" -p bench up -d && SUBNET=$BNET DOCKER_HOST=unix://$BERTH_SOCK "$COMPOSE_V2" --progress quiet -f "$PROJ/compose.yaml" -p bench down -t 0; }
cycle_v2_dockerd() { SUBNET=$KNET DOCKER_HOST=unix://$DOCKER_SOCK "$COMPOSE_V2" --progress quiet -f "$PROJ/compose.yaml" -p bench up -d && SUBNET=$KNET DOCKER_HOST=unix://$DOCKER_SOCK "$COMPOSE_V2" --progress quiet -f "$PROJ/compose.yaml" -p bench down -t 0; }
export -f cycle_berth cycle_v2_berthd cycle_v2_dockerd
export BIN PROJ BERTH_SOCK DOCKER_SOCK COMPOSE_V2

echo "berth $("$BIN/berth" --version | head -1) vs dockerd $(dockerd --version | sed 's/Docker version //'), $("$COMPOSE_V2" version); $(nproc) CPUs, $(uname -r)"
echo "compose up -d + down of 5 services (health-check chain db->cache->api->web, a worker); times in ms over $N runs each, alternating after one warm-up"
printf "$FMT" "operation" "berth med" "berth mean" "docker med" "dock mean" "ratio"
B=(bash -c cycle_berth) K=(bash -c cycle_v2_dockerd)
pair "berth compose on berthd | Compose v2 on dockerd"
B=(bash -c cycle_v2_berthd) K=(bash -c cycle_v2_dockerd)
pair "Compose v2 on berthd | Compose v2 on dockerd"
if [ -s "$WORK/errors" ]; then
  echo
  echo "failures:"
  sed 's/^/  /' "$WORK/errors"
  exit 1
fi
