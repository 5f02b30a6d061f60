#!/usr/bin/env bash
# Start a test's own domain (defined, shut off) at its baseline: restored from the baseline saved for
# its definition, or booted (ready line, balloon) and saved then (rig/lib.sh, "Saved baselines").
# Its console is $RIG_DIR/console-NAME.log. Usage: rig/start-at-baseline.sh NAME XMLFILE
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

name=${1:-} xml=${2:-}
[ -n "$name" ] && [ -s "$xml" ] || die "usage: $0 NAME XMLFILE (the definition NAME was defined from)"
start_or_restore "$name" "$xml"
# A panicked boot is not restarted here: only a rig domain has a definition to restart it from.
[ -n "$RIG_RESTORED" ] || settle_boot "$name" "$xml" 0
