#!/usr/bin/env bash
# Build rustkube if needed and start a server with the default settings.
# Extra arguments go to `rustkube server` (see `rustkube server --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --bin rustkube
bin="${CARGO_TARGET_DIR:-target}/release/rustkube"
kubeconfig=/etc/rustkube/rustkube.yaml
[ "$(id -u)" = 0 ] || kubeconfig="$HOME/.rustkube/rustkube.yaml"
echo "starting rustkube server; once it logs 'ready', in another shell run:"
echo "  kubectl --kubeconfig $kubeconfig get namespaces"
exec "$bin" server "$@"
