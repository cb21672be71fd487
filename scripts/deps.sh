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
  # CSRs and client certificates in the certificate tests.
  command -v openssl >/dev/null || need+=(openssl)
  # CronJob time zones.
  [ -d /usr/share/zoneinfo ] || need+=(tzdata)
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
if [ "${1:-}" = "--test" ]; then
  # The PyPI Kubernetes client, for the end-to-end suite in tests/python
  # (33.x is the client generated for Kubernetes 1.33).
  if ! python3 -c 'import kubernetes' 2>/dev/null; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq python3-pip >/dev/null
    fi
    echo "installing: kubernetes==33.1.0 (PyPI)"
    # Debian's own python3 refuses pip installs without the last flag.
    python3 -m pip install --quiet --root-user-action=ignore kubernetes==33.1.0 ||
      python3 -m pip install --quiet --root-user-action=ignore --break-system-packages kubernetes==33.1.0
  fi
fi
# Debian's etcd-server package starts a system etcd; the tests run their
# own on ephemeral ports and do not need it.
