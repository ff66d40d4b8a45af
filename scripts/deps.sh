#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian 12 machine (run as root).
set -euo pipefail
need=()
for p in busybox-static libseccomp-dev pkg-config iproute2 util-linux curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
  # The end-to-end tests drive the real docker CLI (client only) against berthd.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-cli >/dev/null 2>&1 \
    || apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
