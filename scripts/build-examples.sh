#!/usr/bin/env bash
# Builds the example and test guests and puts each .wasm next to its Dockerfile:
#   examples/hello/hello.wasm            (wasm32-wasip2 component)
#   examples/quotes/quotes.wasm          (wasm32-wasip1 module)
#   examples/http-hello/http-hello.wasm  (wasm32-wasip2 wasi:http component, if present)
#   tests/guests/probe/probe.wasm        (wasm32-wasip2 component, the isolation tests' guest)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || true
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/examples"
build() { # dir target
    local dir=$1 target=$2 name
    name=$(basename "$dir")
    CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release \
        --manifest-path "$dir/Cargo.toml" --target "$target"
    # A binary keeps the package name; a library (cdylib) has `-` turned into `_`.
    local out="$target_dir/$target/release/$name.wasm"
    [ -f "$out" ] || out="$target_dir/$target/release/${name//-/_}.wasm"
    cp "$out" "$dir/$name.wasm"
    built+=("$dir/$name.wasm")
}
built=()
build examples/hello wasm32-wasip2
build examples/quotes wasm32-wasip1
if [ -f examples/http-hello/Cargo.toml ]; then
    build examples/http-hello wasm32-wasip2
fi
build tests/guests/probe wasm32-wasip2
echo "built ${built[*]}"
