#!/usr/bin/env bash
# Set up a fresh Debian 12/13 machine (as root) for weft: system packages the
# tests and the demo use, npm dependencies with the native forwarder build,
# and the TypeScript build. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for cmd_pkg in etcd:etcd-server etcdctl:etcd-client dockerd:docker.io iptables-restore:iptables \
  ip:iproute2 busybox:busybox-static iperf3:iperf3 nsenter:util-linux make:make g++:g++ python3:python3 \
  wg:wireguard-tools wireguard-go:wireguard-go strip:binutils openssl:openssl; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need+=("${cmd_pkg#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# the docker CLI is only needed by people poking at the demo by hand (and scripts/image.sh); the engine API is used directly
npm ci --no-audit --no-fund
npm run build
