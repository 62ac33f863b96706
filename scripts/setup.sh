#!/usr/bin/env bash
# Sets up a fresh machine and runs the main job: builds berth and berthd, builds the hello
# example image, and runs it as a container through the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "setup: cargo (rustup) is required" >&2; exit 1; }
rustup target add wasm32-wasip1 wasm32-wasip2
if ! dpkg -s libssl-dev >/dev/null 2>&1; then
    sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq libssl-dev pkg-config
fi
cargo build --release --bins
./scripts/build-examples.sh
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"

state="$PWD/state"
sock="$PWD/berth.sock"
export BERTH_HOST="unix://$sock"
"$bin/berthd" --data-root "$state" -H "$BERTH_HOST" 2>"$PWD/berthd.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$bin/berth" version >/dev/null 2>&1 && break; sleep 0.1; done

"$bin/berth" build -t hello:1 examples/hello
"$bin/berth" run --rm -e NAME=Ada hello:1 x y
