#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine, as root: install dependencies, build berth, make the
# busybox image and run a container that prints. `berth` starts berthd by itself when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --bins
export PATH="$PWD/target/release:$PATH"
bash scripts/busybox-image.sh berth bb:latest
berth run --rm bb echo "hello from a berth container"
