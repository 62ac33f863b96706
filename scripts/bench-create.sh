#!/usr/bin/env bash
# Measures what a container's private root costs: `berth create` (which copies the image
# snapshot) and `berth start` (which copies nothing) for images with 0, 10 and 100 MiB of
# files, through a release berthd. Prints hyperfine's table; results go in docs/benchmarks.md.
#   scripts/bench-create.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release --bins --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
./scripts/build-examples.sh >/dev/null
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/berthd" --data-root "$work/state" -H "unix://$work/s.sock" 2>"$work/log" &
pid=$!
export BERTH_HOST="unix://$work/s.sock"
berth="$bin/berth"
for _ in $(seq 50); do $berth version >/dev/null 2>&1 && break; sleep 0.1; done
for mib in 0 10 100; do
    ctx="$work/ctx$mib"
    mkdir -p "$ctx/data"
    cp examples/hello/hello.wasm "$ctx/"
    # 1 MiB files, as an image with many assets would have.
    for i in $(seq "$mib"); do head -c 1048576 /dev/urandom >"$ctx/data/f$i"; done
    printf 'FROM scratch\nCOPY hello.wasm /hello.wasm\nCOPY data/ /data/\nENTRYPOINT ["/hello.wasm"]\n' >"$ctx/Dockerfile"
    $berth build -q -t "img$mib" "$ctx" >/dev/null
    $berth create --name "warm$mib" "img$mib" >/dev/null && $berth rm "warm$mib" >/dev/null
done
hyperfine -N -w 3 -r "$runs" \
    -n "create+rm, 0 MiB image" "sh -c '$berth create --name c0 img0 >/dev/null && $berth rm c0 >/dev/null'" \
    -n "create+rm, 10 MiB image" "sh -c '$berth create --name c10 img10 >/dev/null && $berth rm c10 >/dev/null'" \
    -n "create+rm, 100 MiB image" "sh -c '$berth create --name c100 img100 >/dev/null && $berth rm c100 >/dev/null'" \
    -n "create --read-only +rm, 100 MiB image" "sh -c '$berth create --read-only --name r100 img100 >/dev/null && $berth rm r100 >/dev/null'"
$berth create --name s0 img0 >/dev/null
$berth create --name s100 img100 >/dev/null
hyperfine -N -w 3 -r "$runs" \
    -n "start -a, 0 MiB image" "$berth start -a s0" \
    -n "start -a, 100 MiB image" "$berth start -a s100"
