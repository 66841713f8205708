#!/usr/bin/env bash
# The README's test command: set up, then run every test (unit, integration, e2e) with tap.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# types of the tests and benches too (tsx runs them without checking), and lint
npm run --silent typecheck
npm run --silent lint
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
npx tap "$@" 2>&1 | tee "$log" || status=$?
# tap closes with `# { total: N, pass: P, fail: F, ... }`; say it in the plain form CI reads
node -e '
  const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/.exec(require("fs").readFileSync(process.argv[1], "utf8"))
  if (m) console.log(`tests: ${m[2]} passed, ${m[3] ?? 0} failed` + (m[4] ? `, ${m[4]} skipped` : ""))
' "$log"
exit "$status"
