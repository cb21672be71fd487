#!/usr/bin/env bash
# The whole test suite: unit tests, the datastore conformance suite on
# embedded SQLite and on a real etcd, and end-to-end tests driving the real
# rustkube binary with kubectl and curl. Installs its own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
cargo test --workspace --no-fail-fast "$@"
