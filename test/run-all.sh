#!/usr/bin/env bash
# The test command (README, .ci/run): prepares a fresh machine, then runs the unit, rig, engine,
# fault and load suites in one mocha run, the long ones (load, libvirtd restart) included;
# PLL_SKIP_LONG=1 skips those for a quicker run by hand.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(bash scripts/prepare.sh | tail -n 1)
export PATH="$bin:$PATH"
exec npx mocha --node-option expose-gc --reporter ./dist/test/summary-reporter.js --timeout 600000 \
  'dist/test/unit/**/*.test.js' 'dist/test/rig/**/*.test.js' 'dist/test/engine/**/*.test.js' \
  'dist/test/faults/**/*.test.js' 'dist/test/load/**/*.test.js'
