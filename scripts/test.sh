#!/usr/bin/env bash
# The whole test suite: unit tests, the datastore conformance suite on
# embedded SQLite and on a real etcd, and end-to-end tests driving the real
# rustkube binary with kubectl, curl and the Python client; then the fuzz
# targets for a bounded time. Installs its own dependencies. Ends with one
# line totalling every test binary's results (each fuzz target is one test).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Then every fuzz target for a bounded time (scripts/fuzz.sh); each target
# counts as one test. RUSTKUBE_SKIP_FUZZ=1 leaves them out of a local run.
if [ "${RUSTKUBE_SKIP_FUZZ:-0}" != 1 ]; then
    bash scripts/fuzz.sh 2>&1 | tee -a "$log"
    fuzz_status=${PIPESTATUS[0]}
    [ "$fuzz_status" -eq 0 ] || [ "$status" -ne 0 ] || status=$fuzz_status
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     /^fuzz: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "\nTotal: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
