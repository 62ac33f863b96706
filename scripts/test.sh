#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, builds the
# example guests and the binaries, then runs every unit, integration and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test: cargo (rustup) is required" >&2; exit 1; }
rustup target add wasm32-wasip1 wasm32-wasip2
# Real components the tests drive: the CNCF distribution registry, skopeo, htpasswd, curl,
# openssl. The disk-full tests mount a tmpfs, so the suite runs as root (as CI does).
need=()
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)   # certificates for the mutual-TLS tests
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}"
fi
./scripts/build-examples.sh
cargo build --bins --quiet
# The criterion benchmarks are compiled, never run, in CI (timings belong in docs/benchmarks.md).
cargo bench --no-run --quiet
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
    cargo test --workspace --all-targets --no-fail-fast "$@"
fi
# Fuzz targets (cargo-fuzz needs a nightly toolchain): built, then run briefly each. Their
# past findings are replayed on stable by crates/image/tests/fuzz_regressions.rs above.
if [ $# -eq 0 ] && rustup run nightly rustc --version >/dev/null 2>&1; then
    ./scripts/fuzz.sh "${BERTH_FUZZ_SECONDS:-10}"
elif [ $# -eq 0 ]; then
    echo "test: fuzz targets skipped: no nightly toolchain (rustup toolchain install nightly)"
fi
