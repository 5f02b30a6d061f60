# Network-namespace hosts of the rig (jump-host tests): names, addresses, paths. Sourced after lib.sh.
#
#   root namespace --10.213.0.0/30-- pll-bastion --10.213.N.0/30-- pll-hvN (N = 1..4)
#                                                                   pll-hv1 --10.213.9.0/30-- pll-deep
#   pll-iso: loopback only (a process in it can reach nothing, so a name lookup fails locally)
#
# Only the bastion is reachable from the root namespace; 10.213.0.0/16 has an `unreachable` route
# there, so a direct attempt at a hypervisor fails at once and no packet takes the default route.
NS_DIR=$RIG_DIR/netns
NS_SUBNET=10.213.0.0/16
NS_HOSTS="pll-bastion pll-hv1 pll-hv2 pll-hv3 pll-hv4 pll-deep"
NS_ISOLATED=pll-iso
# pll-hvN manages guest pll-netN.
NS_GUESTS="pll-net1 pll-net2 pll-net3 pll-net4"

ns_parent() { case $1 in pll-bastion) echo "" ;; pll-deep) echo pll-hv1 ;; *) echo pll-bastion ;; esac; }
ns_subnet_index() { case $1 in pll-bastion) echo 0 ;; pll-deep) echo 9 ;; pll-hv*) echo "${1#pll-hv}" ;; esac; }
# The host's own address (.2) and its parent's end of the link (.1).
ns_addr() { echo "10.213.$(ns_subnet_index "$1").2"; }
ns_parent_addr() { echo "10.213.$(ns_subnet_index "$1").1"; }
# The parent's end of the veth (at most 15 bytes); the host's end is always pv-up.
ns_parent_link() { echo "pv-${1#pll-}"; }
ns_pidfile() { echo "$NS_DIR/$1/sshd.pid"; }

# Runs a command in namespace NS, or in the root namespace for "".
in_ns() { local ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

# Stops the sshd of NS and the sessions it forked (sshd keeps sessions when only the listener ends).
stop_ns_sshd() {
  local ns=$1 file pid child
  file=$(ns_pidfile "$ns")
  if pid_alive "$file" sshd; then
    pid=$(cat "$file")
    for child in $(pgrep -P "$pid" || true); do kill "$child" 2>/dev/null || true; done
  fi
  stop_pidfile "$file" sshd
}
