#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target in fuzz/ for SECONDS each (default 20).
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs a nightly toolchain (libFuzzer + AddressSanitizer); installs cargo-fuzz if it is
# missing. Each target starts from the committed seeds (fuzz/seeds/<target>) and the inputs of
# earlier findings (crates/image/tests/fuzz-regressions/<target>); new corpus entries go to
# fuzz/corpus/<target> (ignored by git). On a crash, a leak or a timeout the script prints the
# failing input and how to reproduce it, keeps going with the other targets, and exits 1.
# Exit 2: the tooling is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
case "$seconds" in
    '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

command -v cargo >/dev/null || { echo "fuzz: cargo (rustup) is required" >&2; exit 2; }
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the $toolchain toolchain"
    rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
start=$(date +%s)
echo "fuzz: building the targets (cargo +$toolchain fuzz build)"
cargo "+$toolchain" fuzz build
built=$(date +%s)
echo "fuzz: built in $((built - start)) s"

failed=()
for target in $(cargo "+$toolchain" fuzz list); do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "seeds/$target" ] && dirs+=("seeds/$target")
    [ -d "../crates/image/tests/fuzz-regressions/$target" ] &&
        dirs+=("../crates/image/tests/fuzz-regressions/$target")
    log="$(mktemp -t "fuzz-$target.XXXXXX.log")"
    echo "fuzz: running $target for $seconds s"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GiB is a memory bomb.
    if cargo "+$toolchain" fuzz run "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        echo "fuzz: $target ok (${runs:-?} runs)"
        rm -f "$log"
    else
        echo "fuzz: *** $target FAILED: a crash, timeout or leak was found ***" >&2
        grep -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$log" >&2 || true
        grep -A1 -E "^Failing input:" "$log" >&2 || true
        echo "fuzz: full log: $log" >&2
        echo "fuzz: reproduce with: (cd fuzz && cargo +$toolchain fuzz run $target artifacts/$target/<input>)" >&2
        echo "fuzz: then add the input to crates/image/tests/fuzz-regressions/$target/ and fix it" >&2
        failed+=("$target")
    fi
done

echo "fuzz: done in $(($(date +%s) - start)) s (build $((built - start)) s)"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all targets passed"
