#!/usr/bin/env bash
# stop|start the sshd of one namespace host (tests: a bastion that is down, or restarted).
# stop also ends the sessions it forked, as a reboot of the host would; start is netns-up.sh.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
. "$HERE/netns-lib.sh"

action=${1:-} ns=${2:-}
case " $NS_HOSTS " in *" $ns "*) ;; *) die "usage: $0 stop|start NS   (NS one of: $NS_HOSTS)" ;; esac
case $action in
  stop) stop_ns_sshd "$ns" ;;
  start) exec bash "$HERE/netns-up.sh" ;;
  *) die "usage: $0 stop|start NS" ;;
esac
