#!/usr/bin/env bash
# The README's test command: install dependencies (with the native build), build, test.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
npx tap
