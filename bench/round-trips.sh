#!/usr/bin/env bash
# The benchmark of issue "one round trip per step": prepares the machine as the tests do (npm
# packages, build, the rig, the Pulumi CLI), then runs dist/bench/round-trips.js with the given
# arguments (--rounds N, --quick, --json PATH). Prints the table and the targets; writes JSON.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATH="$(bash scripts/prepare.sh | tail -n 1):$PATH"
exec node dist/bench/round-trips.js "$@"
