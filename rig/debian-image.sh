#!/usr/bin/env bash
# Build the Debian 12 guest image once (RIG.md "A real distribution guest"): debootstrap from Debian
# packages, configured, then an ext4 image straight from the folder plus its kernel and initrd, in
# $RIG_DIR/debian. Cached: rebuilt only when the code below or the package list changes (the key).
# Run by up.sh (in the background, while the other guests boot); safe to run alone.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

MIRROR=http://deb.debian.org/debian
# dbus: systemd-logind (which turns the ACPI power button into a shutdown) does not start without it.
DEB_PACKAGES=systemd-sysv,udev,linux-image-amd64,initramfs-tools,kmod,procps,util-linux,qemu-guest-agent,dbus
IMAGE_SIZE=2G

# The guest's own view for tests, on the serial console: once the ready mark (after boot finished,
# so the agent is up when it has a port), then a line whenever MemTotal, online CPUs or a disk changes.
guest_view_script() {
  cat <<'VIEW'
#!/bin/bash
# Shell builtins only, but for one process at start. Under TCG every new process is translated anew
# (its addresses differ), and a loop of sed | tr every second filled QEMU 7.2's 1 GiB code cache in
# minutes; a vCPU hot-added at that moment found no free code region and QEMU aborted
# (tcg_region_initial_alloc__locked: assertion failed).
timeout 180 systemctl is-system-running --wait >/dev/null 2>&1
read -r cpus </sys/devices/system/cpu/online
echo "PLL-GUEST-READY $(uname -r) cpus=$cpus" >/dev/ttyS0
# A pipe nobody writes to: `read -t 1` on it is a sleep without a process.
exec {tick}<> <(:)
last=
while :; do
  while read -r key value _; do [ "$key" = MemTotal: ] && break; done </proc/meminfo
  read -r cpus </sys/devices/system/cpu/online
  now="MemTotal=$value cpus=$cpus"
  for b in /sys/block/vd*; do [ -e "$b/size" ] && read -r size <"$b/size" && now+=" ${b##*/}=$size"; done
  [ "$now" = "$last" ] || { echo "PLL-GUEST-VIEW $now" >/dev/ttyS0; last=$now; }
  read -r -t 1 -u "$tick" _ || true
done
VIEW
}

configure_tree() { # DIR
  local d=$1 u
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$d/etc/fstab"
  echo pll-deb >"$d/etc/hostname"
  # A fixed machine-id: without one every boot is a "first boot" (systemd-firstboot prompts, preset-all).
  md5sum <<<pll-deb | cut -c1-32 >"$d/etc/machine-id"
  # Nothing logs in; timers only cost boot time under TCG.
  for u in serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service apt-daily.timer \
      apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    ln -sfn /dev/null "$d/etc/systemd/system/$u"
  done
  guest_view_script >"$d/usr/local/sbin/pll-guest-view"; chmod 755 "$d/usr/local/sbin/pll-guest-view"
  cat >"$d/etc/systemd/system/pll-guest-view.service" <<'UNIT'
[Unit]
Description=pulumi-libvirt-live rig: the guest's own view on the serial console
[Service]
ExecStart=/usr/local/sbin/pll-guest-view
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p "$d/etc/systemd/system/multi-user.target.wants"
  ln -sfn /etc/systemd/system/pll-guest-view.service "$d/etc/systemd/system/multi-user.target.wants/pll-guest-view.service"
  rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/cache/apt/*.bin "$d"/var/lib/apt/lists/*
}

build_image() { # OUTDIR
  local out=$1 st=$1/root.stage
  rm -rf "$st"
  log "debian: debootstrap bookworm ($DEB_PACKAGES)"
  debootstrap --variant=minbase --include="$DEB_PACKAGES" bookworm "$st" "$MIRROR" >"$out/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $out/debootstrap.log: $(tail -n 3 "$out/debootstrap.log")"
  configure_tree "$st"
  ls "$st"/boot/vmlinuz-* "$st"/boot/initrd.img-* >/dev/null || die "debian: no kernel or initrd in $st/boot"
  cp "$st"/boot/vmlinuz-* "$out/vmlinuz.new"; cp "$st"/boot/initrd.img-* "$out/initrd.img.new"
  rm -f "$out/base.raw.new"; truncate -s "$IMAGE_SIZE" "$out/base.raw.new"
  mkfs.ext4 -q -F -L pll-deb -d "$st" "$out/base.raw.new" || die "mkfs.ext4 -d $st failed"
  for f in vmlinuz initrd.img base.raw; do mv "$out/$f.new" "$out/$f"; done
  rm -rf "$st"
  log "debian: image $(du -m "$out/base.raw" | cut -f1) MiB used of $IMAGE_SIZE"
}

[ "$(id -u)" = 0 ] || die "must run as root"
command -v debootstrap >/dev/null || die "debootstrap missing (rig/up.sh installs it)"
mkdir -p "$RIG_DEBIAN_DIR"
exec 7>"$RIG_DEBIAN_DIR/.build.lock"
flock -w 900 7 || die "another build of the Debian image holds $RIG_DEBIAN_DIR/.build.lock"
key=$( { declare -f guest_view_script configure_tree build_image; echo "$DEB_PACKAGES $MIRROR $IMAGE_SIZE"; } | sha256sum | cut -c1-16)
if [ ! -s "$RIG_DEBIAN_DIR/base.raw" ] || [ "$(cat "$RIG_DEBIAN_DIR/base.key" 2>/dev/null)" != "$key" ]; then
  t0=$SECONDS
  rm -f "$RIG_DEBIAN_DIR/base.key"
  build_image "$RIG_DEBIAN_DIR"
  echo "$key" >"$RIG_DEBIAN_DIR/base.key"
  log "debian: image built in $((SECONDS - t0)) s"
fi
log "debian image ok ($key)"
