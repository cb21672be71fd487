#!/usr/bin/env bash
# The whole test suite: unit tests, the datastore conformance suite on
# embedded SQLite and on a real etcd, and end-to-end tests driving the real
# rustkube binary with kubectl, curl and the Python client. Installs its own
# dependencies. Ends with one line totalling every test binary's results.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "\nTotal: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
