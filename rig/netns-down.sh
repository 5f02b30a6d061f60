#!/usr/bin/env bash
# Tears down what netns-up.sh made: the namespace hosts' sshds and sessions, the namespaces (their
# veths go with them) and the unreachable route. Keys stay (RIG_DIR) unless down.sh --purge.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
. "$HERE/netns-lib.sh"

for ns in $NS_HOSTS; do stop_ns_sshd "$ns"; done
for ns in $NS_HOSTS $NS_ISOLATED; do
  [ -e "/run/netns/$ns" ] || continue
  ip netns del "$ns"
  log "deleted netns $ns"
done
ip link del "$(ns_parent_link pll-bastion)" 2>/dev/null || true
ip route del unreachable "$NS_SUBNET" 2>/dev/null || true
rm -f "$RIG_DIR/netns.env"
log "netns down"
