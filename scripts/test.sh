#!/usr/bin/env bash
# Runs every test: unit tests of all crates, and the integration and end-to-end tests (root needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --no-fail-fast 2>&1
