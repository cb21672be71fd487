#!/usr/bin/env bash
# Install what building and testing rustkube needs on Debian (run as root).
# Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v curl >/dev/null || need+=(curl)
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/etcd ] || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  if [ ! -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ] && ! command -v kubectl >/dev/null; then
    need+=(kubernetes-client)
  fi
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's etcd-server package starts a system etcd; the tests run their
# own on ephemeral ports and do not need it.
