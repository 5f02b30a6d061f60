#!/usr/bin/env bash
# Tear the rig down: destroy+undefine the pll-* domains, stop the sshd, libvirtd and virtlogd
# that rig/up.sh started, delete the bridge. Caches stay unless --purge.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

purge=
case "${1:-}" in --purge) purge=1 ;; "") ;; *) die "usage: $0 [--purge]" ;; esac

if libvirt_answers; then
  for name in $(virsh_q list --all --name | grep '^pll-' || true); do
    [ "$(domstate "$name")" = "shut off" ] || virsh_q destroy "$name" >/dev/null || true
    virsh_q undefine "$name" >/dev/null 2>&1 || true
    log "removed domain $name"
  done
fi
# The Debian guests' image copies (the cached image itself stays unless --purge).
rm -f "$RIG_DEBIAN_DIR"/disk-*.raw "$RIG_DEBIAN_DIR"/disk-*.raw.new
bash "$HERE/netns-down.sh"
stop_pidfile "$RIG_DIR/sshd.pid" sshd
stop_pidfile "$RIG_DIR/libvirtd.pid" libvirtd
stop_pidfile "$RIG_DIR/virtlogd.pid" virtlogd
# A QEMU left behind by a libvirtd that was not answering.
for f in /run/libvirt/qemu/pll-*.pid; do
  [ -e "$f" ] || continue
  stop_pidfile "$f" qemu-system-x86
done
if ip link show "$RIG_BRIDGE" >/dev/null 2>&1; then ip link del "$RIG_BRIDGE"; log "deleted bridge $RIG_BRIDGE"; fi

if [ -n "$purge" ]; then
  rm -rf "${RIG_DIR:?}"
  log "purged $RIG_DIR"
  for f in /etc/libvirt/qemu.conf /etc/libvirt/libvirtd.conf; do
    if [ -e "$f.pll-orig" ]; then
      mv "$f.pll-orig" "$f"; log "restored $f"
    elif [ -e "$f.pll-absent" ]; then
      rm -f "$f" "$f.pll-absent"; log "removed $f (there was none)"
    fi
  done
fi
log "rig down"
