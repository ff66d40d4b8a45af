#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian 12 machine (run as root).
# Idempotent and quiet: apt runs only when a package is missing.
set -euo pipefail
# docker.io: the real docker CLI for the end-to-end tests, and dockerd + containerd + runc for the
# interop test (tests/dockerd_interop.rs) and the benchmark, which start private daemons of their own.
# python3-docker: the Docker SDK for Python, driven against berthd by tests/cp.rs.
# (Debian's policy-rc.d / a non-systemd init keep the package from starting a system dockerd.)
# python3-docker: the Docker SDK for Python, a real client the end-to-end tests drive.
# docker-registry: Debian's distribution 2.8 registry, run on 127.0.0.1 by berth-distribution's tests.
need=()
for p in busybox-static libseccomp-dev pkg-config iproute2 util-linux curl docker.io tini runc python3-docker docker-registry; do
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
