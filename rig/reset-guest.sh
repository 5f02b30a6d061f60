#!/usr/bin/env bash
# Bring one rig domain back to its baseline: destroy, re-define from $RIG_DIR/NAME.xml, then restore
# its saved baseline (rig/lib.sh) or boot it (a Debian guest from a fresh copy of its image), wait
# for PLL-GUEST-READY and the baseline balloon, and save that baseline. Usage: rig/reset-guest.sh NAME
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

name=${1:-}
[ -n "$name" ] || die "usage: $0 NAME   (one of: $RIG_GUESTS $RIG_GROW_GUESTS $RIG_DEBIAN_GUESTS $RIG_NOOS)"
[ -s "$RIG_DIR/$name.xml" ] || die "no $RIG_DIR/$name.xml: not a rig domain, or run rig/up.sh first"
libvirt_answers || die "libvirtd does not answer on $RIG_URI: run rig/up.sh"
exec 8>"$RIG_DIR/.reset-$name.lock"
flock -w 600 8 || die "another reset of $name has run for 10 minutes"

# Suites reset their guest before and after: the second of two resets in a row finds nothing
# changed since the first and skips the reboot (10-30 s of TCG boot each).
if is_unchanged_since_clean "$name"; then
  log "$name unchanged since its last reset: at baseline"
  exit 0
fi
if virsh_q dominfo "$name" >/dev/null 2>&1 && [ "$(domstate "$name")" != "shut off" ]; then
  virsh_q destroy "$name" >/dev/null
fi
start_from_rig_definition "$name"
[ -n "$RIG_RESTORED" ] || settle_boot "$name" "$RIG_DIR/$name.xml" 1
mark_clean "$name"
log "$name reset to baseline"
