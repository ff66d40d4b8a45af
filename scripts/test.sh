#!/usr/bin/env bash
# Runs every check: formatting, clippy with the workspace lints as errors, then the unit tests of all
# crates and the integration and end-to-end tests (root needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace --no-fail-fast 2>&1
