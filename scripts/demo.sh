#!/usr/bin/env bash
# The main job: set up a fresh Debian machine (as root), then run the demo of
# simulated hosts whose containers talk over weft. Flags go to the demo:
#   bash scripts/demo.sh [--hosts 2] [--backend udp|vxlan|host-gw|wireguard] [--endpoints URL] [--keep]
#   bash scripts/demo.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != down ]; then
  echo "Setting up (apt packages if missing, npm ci with the native build, tsc) ..."
  log=$(mktemp)
  bash scripts/setup.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
  rm -f "$log"
fi
exec node --import tsx demo/main.ts "$@"
