#!/usr/bin/env bash
# Builds the example guests and puts each .wasm next to its Dockerfile:
#   examples/hello/hello.wasm    (wasm32-wasip2 component)
#   examples/quotes/quotes.wasm  (wasm32-wasip1 module)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || true
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/examples"
build() { # dir target
    CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release \
        --manifest-path "examples/$1/Cargo.toml" --target "$2"
    cp "$target_dir/$2/release/$1.wasm" "examples/$1/$1.wasm"
}
build hello wasm32-wasip2
build quotes wasm32-wasip1
echo "built examples/hello/hello.wasm examples/quotes/quotes.wasm"
