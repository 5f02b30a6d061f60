#!/usr/bin/env bash
# Network namespaces as extra hosts (idempotent; run by up.sh after the main sshd): a bastion sshd,
# four "hypervisor" sshds only the bastion reaches, one more behind pll-hv1 (two hops), and an
# isolated namespace. Writes $RIG_DIR/netns.env. Layout in netns-lib.sh; torn down by netns-down.sh.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
. "$HERE/netns-lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$NS_DIR"
exec 8>"$NS_DIR/.lock"
flock -w 300 8 || die "another netns-up.sh holds $NS_DIR/.lock"

ensure_ns() { [ -e "/run/netns/$1" ] || ip netns add "$1"; ip -n "$1" link set lo up; }

# The veth from the host's parent (root namespace for the bastion) into the host, with addresses.
ensure_link() {
  local ns=$1 parent link
  parent=$(ns_parent "$ns") link=$(ns_parent_link "$ns")
  if ! ip -n "$ns" link show pv-up >/dev/null 2>&1; then
    in_ns "$parent" ip link del "$link" 2>/dev/null || true
    in_ns "$parent" ip link add "$link" type veth peer name pv-up netns "$ns"
  fi
  in_ns "$parent" ip addr replace "$(ns_parent_addr "$ns")/30" dev "$link"
  in_ns "$parent" ip link set "$link" up
  ip -n "$ns" addr replace "$(ns_addr "$ns")/30" dev pv-up
  ip -n "$ns" link set pv-up up
}

for ns in $NS_HOSTS $NS_ISOLATED; do ensure_ns "$ns"; done
for ns in $NS_HOSTS; do ensure_link "$ns"; done
# Every other 10.213.x.y is unreachable from here (the bastion's /30 is more specific).
ip route replace unreachable "$NS_SUBNET"
log "netns: $NS_HOSTS $NS_ISOLATED up"

# ---------------------------------------------------------------- keys
AGENT_KEY=$NS_DIR/id_agent_ed25519
KNOWN_HOSTS=$NS_DIR/known_hosts
[ -s "$AGENT_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C pll-rig-agent-only -f "$AGENT_KEY"
chmod 600 "$AGENT_KEY"
# The rig's key and the key the agent tests load; written aside and renamed (logins may run meanwhile).
cat "$RIG_DIR/id_ed25519.pub" "$AGENT_KEY.pub" >"$NS_DIR/authorized_keys.new" && mv "$NS_DIR/authorized_keys.new" "$NS_DIR/authorized_keys"
: >"$KNOWN_HOSTS.new"

# ---------------------------------------------------------------- one sshd per host
serves_key() { # NS: its address answers with its host key
  local ns=$1 served
  served=$(ip netns exec "$ns" ssh-keyscan -T 3 -t ed25519 "$(ns_addr "$ns")" 2>/dev/null || true)
  [[ "$served" == *"$(cut -d' ' -f2 "$NS_DIR/$ns/ssh_host_ed25519_key.pub")"* ]]
}
started=
for ns in $NS_HOSTS; do
  dir=$NS_DIR/$ns addr=$(ns_addr "$ns")
  mkdir -p "$dir"
  [ -s "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$ns-host" -f "$dir/ssh_host_ed25519_key"
  chmod 600 "$dir/ssh_host_ed25519_key"
  echo "$addr $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >>"$KNOWN_HOSTS.new"
  {
  cat <<EOF
# pulumi-libvirt-live test rig: host $ns in its own network namespace
ListenAddress $addr:22
HostKey $dir/ssh_host_ed25519_key
PidFile $(ns_pidfile "$ns")
EOF
  sshd_key_login_config "$NS_DIR"
  cat <<EOF
AllowTcpForwarding yes
# VERBOSE logs one "Accepted publickey" line per login: the tests count handshakes with it.
LogLevel VERBOSE
EOF
  } >"$dir/sshd_config.new"
  changed=
  cmp -s "$dir/sshd_config.new" "$dir/sshd_config" || changed=1
  mv "$dir/sshd_config.new" "$dir/sshd_config"
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd -t rejects $dir/sshd_config"
  if pid_alive "$(ns_pidfile "$ns")" sshd && { [ -n "$changed" ] || ! serves_key "$ns"; }; then
    log "$ns: sshd config or host key changed: restarting its sshd"
    stop_ns_sshd "$ns"
  fi
  if ! pid_alive "$(ns_pidfile "$ns")" sshd; then
    started="$started $ns"
    # nsenter --net, not `ip netns exec` (which mounts the namespace's own /sys): the host shares the
    # rig's libvirtd, so it must see the bridges that libvirtd attaches to (/sys/class/net/BRIDGE).
    nsenter --net="/run/netns/$ns" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null >/dev/null 2>&1 8>&- 9>&- \
      || die "$ns: sshd failed to start, see $dir/sshd.log"
  fi
done
mv "$KNOWN_HOSTS.new" "$KNOWN_HOSTS"
# A running sshd was checked above; only those started now need to come up.
for ns in $started; do
  for i in $(seq 50); do serves_key "$ns" && break; sleep 0.1; done
  serves_key "$ns" || die "$ns: $(ns_addr "$ns"):22 does not answer with its host key; see $NS_DIR/$ns/sshd.log"
done
log "netns: sshd in $NS_HOSTS"

# ---------------------------------------------------------------- env
cat >"$RIG_DIR/netns.env.new" <<EOF
export PLL_NS_DIR=$NS_DIR
export PLL_NS_HOSTS="$NS_HOSTS"
export PLL_NS_BASTION=$(ns_addr pll-bastion)
export PLL_NS_HV_ADDRS="$(for n in 1 2 3 4; do printf '%s ' "$(ns_addr "pll-hv$n")"; done | sed 's/ $//')"
export PLL_NS_DEEP=$(ns_addr pll-deep)
export PLL_NS_HV1_DEEP_SIDE=$(ns_parent_addr pll-deep)
export PLL_NS_GUESTS="$NS_GUESTS"
export PLL_NS_ISOLATED=$NS_ISOLATED
export PLL_NS_SUBNET=$NS_SUBNET
export PLL_NS_KNOWN_HOSTS=$KNOWN_HOSTS
export PLL_NS_AGENT_KEY=$AGENT_KEY
EOF
mv "$RIG_DIR/netns.env.new" "$RIG_DIR/netns.env"
log "netns: ready; source $RIG_DIR/netns.env"
