#!/usr/bin/env bash
# What a pull-request job runs: the engine's own preview (the `+-` replace marks and the changed
# properties), then a table that says why each replacement happens (explain-preview.ts), written
# to $GITHUB_STEP_SUMMARY when set. Run it in the Pulumi project folder, stack selected:
#
#   bash examples/ci-preview/preview.sh [--fail-on-reboot] [extra pulumi preview flags…]
#
# Exit status: pulumi's, or 3 with --fail-on-reboot when a running guest would need a reboot.
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
explain="${PLL_EXPLAIN_PREVIEW:-$here/../../dist/examples/ci-preview/explain-preview.js}"
fail=()
if [ "${1:-}" = "--fail-on-reboot" ]; then fail=(--fail-on-reboot); shift; fi

pulumi preview --diff --non-interactive "$@"
json=$(pulumi preview --json --non-interactive "$@")
report=$(node "$explain" "${fail[@]}" <<<"$json") || rc=$?
echo
echo "$report"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then echo "$report" >>"$GITHUB_STEP_SUMMARY"; fi
exit "${rc:-0}"
