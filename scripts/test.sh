#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, builds the
# example guests and the binaries, then runs every unit, integration and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test: cargo (rustup) is required" >&2; exit 1; }
rustup target add wasm32-wasip1 wasm32-wasip2
./scripts/build-examples.sh
cargo build --bins --quiet
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
fi
