#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (the JSON/YAML/protobuf body
# decoders and the patch engines of apimachinery) for a bounded time each:
#   bash scripts/fuzz.sh [seconds-per-target]     (default 20)
# Works on a stable toolchain: RUSTC_BOOTSTRAP=1 lets it accept the -Z
# flags cargo-fuzz passes. Builds under ~/.cache/rustkube/fuzz-target so
# later runs reuse the build; inputs found interesting are kept in
# ~/.cache/rustkube/fuzz-corpus/<target> (the seeds in fuzz/corpus/ are
# only read). Prints one line per target and closes with
# "fuzz: N passed, M failed"; exits non-zero when a target fails, naming
# the input that made it fail (under fuzz/artifacts/<target>/).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
root=$PWD
cache=${RUSTKUBE_CACHE:-$HOME/.cache/rustkube}
target_dir=$cache/fuzz-target
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$target_dir

targets=()
for f in fuzz/fuzz_targets/*.rs; do
    t=${f##*/}
    targets+=("${t%.rs}")
done

# Every target failed (the tools could not be installed or built).
fail_all() {
    echo "fuzz: $1" >&2
    for t in "${targets[@]}"; do echo "fuzz $t: FAILED ($1)"; done
    echo "fuzz: 0 passed, ${#targets[@]} failed"
    exit 1
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz || fail_all "cargo install cargo-fuzz failed"
fi

# AddressSanitizer when the toolchain has it, else plain libFuzzer (Rust
# without unsafe code gains little from ASan; panics are caught either way).
started=$SECONDS
sanitizer=address
if ! (cd fuzz && cargo fuzz build -O -a --sanitizer address --target-dir "$target_dir"); then
    echo "fuzz: build with AddressSanitizer failed; building without a sanitizer"
    sanitizer=none
    (cd fuzz && cargo fuzz build -O -a --sanitizer none --target-dir "$target_dir") ||
        fail_all "cargo fuzz build failed"
fi
echo "fuzz: built ${#targets[@]} targets (sanitizer $sanitizer) in $((SECONDS - started))s"

host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$target_dir/$host/release
passed=0
failed=0
for t in "${targets[@]}"; do
    corpus=$cache/fuzz-corpus/$t
    artifacts=$root/fuzz/artifacts/$t
    log=$cache/fuzz-logs/$t.log
    # The kept corpus only grows; start it over when it gets large.
    if [ -d "$corpus" ] && [ "$(find "$corpus" -type f | wc -l)" -gt 20000 ]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$artifacts" "${log%/*}"
    # New inputs go to the first corpus directory, so the seeds stay as
    # committed. A single input taking 10s is a hang, reported as a failure.
    "$bin_dir/$t" "$corpus" "$root/fuzz/corpus/$t" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz $t: ok, ${runs:-0} runs in ${seconds}s"
    else
        failed=$((failed + 1))
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        tail -n 40 "$log"
        echo "fuzz $t: FAILED (exit $status) after ${runs:-?} runs; input: ${input:-see $log}"
        echo "  reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t ${input:-}"
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
