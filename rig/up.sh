#!/usr/bin/env bash
# Bring the test rig up (idempotent): libvirtd + QEMU (TCG) guests, sshd on 127.0.0.1:2222,
# bridge pllbr0. Writes $RIG_DIR/rig.env. See rig/README.md.
#
#   rig/up.sh [--only NAME]...
#
# --only NAME (repeatable) brings up only those guests: no other guest, no Debian image build (unless
# NAME is a Debian guest), no namespace hosts. The demo uses it; without it everything comes up.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

PACKAGES="libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
  openssh-server openssh-client busybox-static iproute2 cpio kmod sudo e2fsprogs debootstrap"
# Guest modules; their dependencies are resolved from modules.dep. Load order = this order.
GUEST_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  virtio_balloon virtio_blk failover net_failover virtio_net scsi_common scsi_mod virtio_scsi
  sd_mod cdrom sr_mod libata ata_piix button evdev"

only=
while [ $# -gt 0 ]; do
  case $1 in
    --only) [ $# -ge 2 ] || die "--only needs a guest name"
      [[ " $RIG_GUESTS $RIG_GROW_GUESTS $RIG_DEBIAN_GUESTS $RIG_NOOS " == *" $2 "* ]] || die "--only $2: not a rig guest"
      only="$only $2"; shift 2 ;;
    *) die "usage: $0 [--only NAME]..." ;;
  esac
done
# The names of a guest list that this run brings up.
wanted() { local n; for n in "$@"; do { [ -z "$only" ] || [[ " $only " == *" $n "* ]]; } && echo "$n"; done; return 0; }
GUESTS=$(wanted $RIG_GUESTS) GROW_GUESTS=$(wanted $RIG_GROW_GUESTS) DEBIAN_GUESTS=$(wanted $RIG_DEBIAN_GUESTS) NOOS=$(wanted $RIG_NOOS)

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$RIG_DIR" "$RIG_DIR/images"
exec 9>"$RIG_DIR/.up.lock"
flock -w 600 9 || die "another rig/up.sh holds $RIG_DIR/.up.lock"
log "rig dir $RIG_DIR"

apt_updated=
apt_update_once() {
  [ -n "$apt_updated" ] && return 0
  log "apt-get update"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt_updated=1
}

# ---------------------------------------------------------------- packages
missing=
for p in $PACKAGES; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt_update_once
  log "installing:$missing"
  # No init system here: keep package scripts from starting a system sshd on port 22.
  policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >"$RIG_DIR/apt-install.log" 2>&1 \
    || { [ -z "$made_policy" ] || rm -f "$policy"; die "apt-get install failed, see $RIG_DIR/apt-install.log"; }
  [ -z "$made_policy" ] || rm -f "$policy"
fi
log "packages ok"

# ---------------------------------------------------------------- Debian guest image
# Built in the background (debootstrap: about 2 minutes on a new machine, cached after) while the
# daemons start and the other guests boot; the Debian guests start once it is done.
debian_build_pid=
if [ -n "$DEBIAN_GUESTS" ]; then
  export RIG_T0
  bash "$HERE/debian-image.sh" 9>&- &
  debian_build_pid=$!
fi

# ---------------------------------------------------------------- guest kernel
KROOT=$RIG_DIR/kernel
if [ -s "$KROOT/current" ] && [ -e "$KROOT/$(cat "$KROOT/current")/.extracted" ]; then
  KVER=$(cat "$KROOT/current")
else
  apt_update_once
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ && !k {k=$2} END {print k}')
  [ -n "$KPKG" ] || die "cannot resolve the kernel package that linux-image-amd64 depends on"
  KVER=${KPKG#linux-image-}
  log "downloading $KPKG"
  rm -rf "$KROOT/dl" && mkdir -p "$KROOT/dl"
  (cd "$KROOT/dl" && apt-get download -qq -o APT::Sandbox::User=root "$KPKG") || die "apt-get download $KPKG failed"
  rm -rf "${KROOT:?}/$KVER" && mkdir -p "$KROOT/$KVER"
  dpkg -x "$KROOT"/dl/*.deb "$KROOT/$KVER"
  # The package ships no modules.dep (made at install time): make it for the extracted tree.
  depmod -b "$KROOT/$KVER" "$KVER"
  touch "$KROOT/$KVER/.extracted"
  rm -rf "$KROOT/dl"
  echo "$KVER" >"$KROOT/current"
  log "kernel $KVER extracted"
fi
KTREE=$KROOT/$KVER
VMLINUZ=$KTREE/boot/vmlinuz-$KVER
[ -r "$VMLINUZ" ] || die "missing $VMLINUZ"
log "kernel $KVER"

# ---------------------------------------------------------------- libvirtd
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null \
  || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

getent group libvirt >/dev/null || groupadd -r libvirt

conf_changed=
write_conf() { # FILE CONTENT: write a libvirt config file, backing up the original once
  local file=$1 content="# Written by pulumi-libvirt-live rig/up.sh (original kept as $(basename "$1").pll-orig)
$2"
  [ "$(cat "$file" 2>/dev/null)" != "$content" ] || return 0
  if [ ! -e "$file.pll-orig" ] && [ ! -e "$file.pll-absent" ]; then
    if [ -e "$file" ]; then cp -p "$file" "$file.pll-orig"; else touch "$file.pll-absent"; fi
  fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file"
  conf_changed=1
  log "wrote $file"
}
write_conf /etc/libvirt/qemu.conf 'user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ "cpu", "cpuacct", "cpuset", "memory", "blkio" ]
namespaces = [ ]
security_driver = "none"'
# No D-Bus, so no polkit: without this a non-root user (pllpass) gets "Unable to get system bus
# connection". Members of group libvirt may use the read-write socket, as on a usual host.
write_conf /etc/libvirt/libvirtd.conf 'unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"'
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt /run/sshd

# PID 1 on this machine reaps orphans only every ~2 s, and libvirt waits for a destroyed QEMU
# (daemonized, so an orphan) to vanish: `virsh destroy` took 1.8 s. A child subreaper around
# libvirtd makes the QEMUs its children and reaps them at once.
SUBREAPER='syscall(157, 36, 1, 0, 0, 0) == 0 or die "prctl(PR_SET_CHILD_SUBREAPER): $!";
my ($pidfile, @cmd) = @ARGV;
my $pid = fork() // die "fork: $!";
if (!$pid) { exec { $cmd[0] } @cmd; die "exec $cmd[0]: $!" }
open(my $fh, ">", $pidfile) or die "$pidfile: $!"; print $fh "$pid\n"; close $fh;
while (1) { last if waitpid(-1, 0) == -1 && !$!{EINTR} }'
start_daemon() { # NAME: start it detached, record its pid in RIG_DIR
  local name=$1 i
  rm -f "$RIG_DIR/$name.pid"
  # 9>&-: a daemon must not inherit (and so hold forever) the up.sh lock.
  if [ "$name" = libvirtd ]; then
    setsid perl -e "$SUBREAPER" "$RIG_DIR/$name.pid" "/usr/sbin/$name" </dev/null >>"$RIG_DIR/$name.log" 2>&1 9>&- &
    for i in $(seq 50); do [ -s "$RIG_DIR/$name.pid" ] && break; sleep 0.05; done
  else
    setsid "/usr/sbin/$name" </dev/null >>"$RIG_DIR/$name.log" 2>&1 9>&- &
    echo $! >"$RIG_DIR/$name.pid"
  fi
}

if [ -n "$conf_changed" ]; then
  if pid_alive "$RIG_DIR/libvirtd.pid" libvirtd; then
    log "libvirt config changed: restarting the rig's libvirtd"
    stop_pidfile "$RIG_DIR/libvirtd.pid" libvirtd
  elif live_proc_named libvirtd; then
    log "WARNING: libvirt config changed but libvirtd was not started by the rig: restart it yourself"
  fi
fi
# virtlogd first: without it a domain start fails ("Failed to connect socket to '/run/libvirt/virtlogd-sock'").
if ! pid_alive "$RIG_DIR/virtlogd.pid" virtlogd && ! live_proc_named virtlogd; then
  rm -f /run/libvirt/virtlogd-sock   # left by a virtlogd that died
  log "starting virtlogd"
  start_daemon virtlogd
  for i in $(seq 50); do [ -S /run/libvirt/virtlogd-sock ] && break; sleep 0.1; done
  [ -S /run/libvirt/virtlogd-sock ] || die "virtlogd made no socket; see $RIG_DIR/virtlogd.log"
fi
if ! libvirt_answers; then
  if ! pid_alive "$RIG_DIR/libvirtd.pid" libvirtd && ! live_proc_named libvirtd; then
    log "starting libvirtd"
    start_daemon libvirtd
  fi
  for i in $(seq 60); do libvirt_answers && break; sleep 0.5; done
  libvirt_answers || die "libvirtd does not answer 'virsh -c $RIG_URI list' after 30s; see $RIG_DIR/libvirtd.log: $(tail -n 5 "$RIG_DIR/libvirtd.log" 2>/dev/null)"
fi
log "libvirtd answers on $RIG_URI"

# ---------------------------------------------------------------- sshd on 127.0.0.1:2222
SSHD_CONFIG=$RIG_DIR/sshd_config
HOSTKEY=$RIG_DIR/ssh_host_ed25519_key
KEY=$RIG_DIR/id_ed25519
KEY_ENC=$RIG_DIR/id_ed25519_enc
KNOWN_HOSTS=$RIG_DIR/known_hosts
PASSWORD_FILE=$RIG_DIR/pllpass.password
SSHD_PID=$RIG_DIR/sshd.pid

random_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 20; }
[ -s "$HOSTKEY" ] || ssh-keygen -q -t ed25519 -N '' -C pll-rig-host -f "$HOSTKEY"
[ -s "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C pll-rig-client -f "$KEY"
[ -s "$KEY_ENC.passphrase" ] || { random_secret >"$KEY_ENC.passphrase"; rm -f "$KEY_ENC" "$KEY_ENC.pub"; }
[ -s "$KEY_ENC" ] || ssh-keygen -q -t ed25519 -N "$(cat "$KEY_ENC.passphrase")" -C pll-rig-client-enc -f "$KEY_ENC"
[ -s "$PASSWORD_FILE" ] || random_secret >"$PASSWORD_FILE"
chmod 600 "$HOSTKEY" "$KEY" "$KEY_ENC" "$KEY_ENC.passphrase" "$PASSWORD_FILE"
# Written aside and renamed: a login while `>` had truncated the file was refused (suites run up.sh concurrently).
cat "$KEY.pub" "$KEY_ENC.pub" >"$RIG_DIR/authorized_keys.new" && mv "$RIG_DIR/authorized_keys.new" "$RIG_DIR/authorized_keys"
echo "[127.0.0.1]:$RIG_SSH_PORT $(cut -d' ' -f1,2 "$HOSTKEY.pub")" >"$KNOWN_HOSTS.new" && mv "$KNOWN_HOSTS.new" "$KNOWN_HOSTS"
FINGERPRINT=$(ssh-keygen -lf "$HOSTKEY.pub" | awk '{print $2}')

getent passwd pllpass >/dev/null || useradd -m -s /bin/sh -G libvirt pllpass
id -nG pllpass | grep -qw libvirt || usermod -aG libvirt pllpass
echo "pllpass:$(cat "$PASSWORD_FILE")" | chpasswd

{
cat <<EOF
# pulumi-libvirt-live test rig: loopback only
Port $RIG_SSH_PORT
ListenAddress 127.0.0.1
HostKey $HOSTKEY
PidFile $SSHD_PID
EOF
sshd_key_login_config "$RIG_DIR"
cat <<EOF
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
# pllpass logs in with its password only (the one AuthorizedKeysFile holds root's keys).
Match User pllpass
    PasswordAuthentication yes
    PubkeyAuthentication no
EOF
} >"$SSHD_CONFIG.new"
sshd_config_changed=
cmp -s "$SSHD_CONFIG.new" "$SSHD_CONFIG" || sshd_config_changed=1
mv "$SSHD_CONFIG.new" "$SSHD_CONFIG"
/usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd -t rejects $SSHD_CONFIG"

port_open() { timeout 1 bash -c ">/dev/tcp/127.0.0.1/$RIG_SSH_PORT" 2>/dev/null; }
served_hostkey_ok() {
  local served; served=$(ssh-keyscan -T 3 -p "$RIG_SSH_PORT" -t ed25519 127.0.0.1 2>/dev/null || true)
  [[ "$served" == *"$(cut -d' ' -f2 "$HOSTKEY.pub")"* ]]
}
if pid_alive "$SSHD_PID" sshd && { [ -n "$sshd_config_changed" ] || ! served_hostkey_ok; }; then
  log "sshd config or host key changed: restarting the rig's sshd"
  stop_pidfile "$SSHD_PID" sshd
fi
if ! port_open; then
  log "starting sshd on 127.0.0.1:$RIG_SSH_PORT"
  /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$RIG_DIR/sshd.log" </dev/null >/dev/null 2>&1 9>&- \
    || die "sshd failed to start, see $RIG_DIR/sshd.log"
  for i in $(seq 50); do port_open && break; sleep 0.1; done
  port_open || die "sshd does not listen on 127.0.0.1:$RIG_SSH_PORT; see $RIG_DIR/sshd.log"
fi
served_hostkey_ok || die "127.0.0.1:$RIG_SSH_PORT answers with another host key than $HOSTKEY.pub (a foreign sshd?)"
ssh -q -i "$KEY" -p "$RIG_SSH_PORT" -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5 \
    -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes root@127.0.0.1 true \
  || die "ssh root@127.0.0.1:$RIG_SSH_PORT with $KEY failed; see $RIG_DIR/sshd.log"
log "sshd ok ($FINGERPRINT)"

# ---------------------------------------------------------------- bridge
ip link show "$RIG_BRIDGE" >/dev/null 2>&1 || ip link add "$RIG_BRIDGE" type bridge
ip link set "$RIG_BRIDGE" up
log "bridge $RIG_BRIDGE up"

# ---------------------------------------------------------------- guest initramfs
# Everything that shapes the guest is in these two functions: their text is the cache key.
guest_init() {
  cat <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /var/log /run /tmp
depmod -a
for m in $(cat /etc/pll-modules); do
  modprobe "$m" || echo "PLL-GUEST-MODPROBE-FAILED $m"
done
acpid -d -c /etc/acpi >/var/log/acpid.log 2>&1 &
echo "PLL-GUEST-READY $(uname -r) cpus=$(nproc)"
# The polling loops below use shell builtins only: a fork and exec (a $(...), cat, sleep) costs an
# idle TCG guest ~1% of a host core per second, times 18 guests. fd 3 is a FIFO nobody writes, so
# `read -t 1 <&3` is a sleep without a process (a plain sleep only if fd 3 could not be opened).
mkfifo /run/tick && exec 3<>/run/tick
# Hot-added vCPUs arrive offline (no udev here): bring them online.
while :; do
  for f in /sys/devices/system/cpu/cpu*/online; do
    v=; [ -e "$f" ] && read -r v <"$f"
    [ "$v" = 0 ] && echo 1 >"$f" 2>/dev/null && echo "PLL-GUEST-CPU-ONLINE $f"
  done
  read -r -t 1 <&3 || [ -e /proc/self/fd/3 ] || sleep 1
done
INIT
}
build_initramfs() { # OUT
  local out=$1 st=$RIG_DIR/initramfs.stage mdir mods m
  rm -rf "$st"; mkdir -p "$st"/{bin,dev,proc,sys,tmp,run,var/log,etc/acpi/PWRF,usr}
  cp /bin/busybox "$st/bin/busybox"
  for m in $("$st/bin/busybox" --list); do [ "$m" = busybox ] || ln -s busybox "$st/bin/$m"; done
  ln -s bin "$st/sbin"; ln -s ../bin "$st/usr/bin"; ln -s ../bin "$st/usr/sbin"
  guest_init >"$st/init"; chmod 755 "$st/init"
  printf '#!/bin/sh\npoweroff -f\n' >"$st/etc/acpi/PWRF/00000080"; chmod 755 "$st/etc/acpi/PWRF/00000080"
  echo $GUEST_MODULES >"$st/etc/pll-modules"
  mdir=lib/modules/$KVER
  mkdir -p "$st/$mdir"
  cp "$KTREE/$mdir"/modules.{order,builtin,builtin.modinfo} "$st/$mdir/"
  # Module closure from the full tree's modules.dep.
  mods=$(for m in $GUEST_MODULES; do
      awk -v m="$m" -F: '{n=$1; sub(/.*\//,"",n); sub(/\.ko.*$/,"",n); gsub(/-/,"_",n)} n==m {print $0; f=1} END{exit !f}' \
        "$KTREE/$mdir/modules.dep" || echo "MISSING:$m"
    done | tr ' :' '\n\n' | sed '/^$/d' | sort -u)
  if grep -q '^MISSING:' <<<"$mods"; then die "not modules in $KVER: $(grep '^MISSING:' <<<"$mods" | tr '\n' ' ')"; fi
  for m in $mods; do mkdir -p "$st/$mdir/$(dirname "$m")"; cp "$KTREE/$mdir/$m" "$st/$mdir/$m"; done
  depmod -b "$st" "$KVER"
  (cd "$st" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1) >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$st"
  log "initramfs: $(wc -w <<<"$mods") modules, $(du -k "$out" | cut -f1) KiB"
}
INITRD=$RIG_DIR/initramfs.cpio.gz
initrd_key=$( { declare -f guest_init build_initramfs; echo "$GUEST_MODULES $KVER"; dpkg-query -W -f='${Version}' busybox-static; } | sha256sum | cut -c1-16)
if [ ! -s "$INITRD" ] || [ "$(cat "$INITRD.key" 2>/dev/null)" != "$initrd_key" ]; then
  log "building initramfs"
  build_initramfs "$INITRD"
  echo "$initrd_key" >"$INITRD.key"
fi
log "initramfs ok ($initrd_key)"

# The grow guests (issue 9) get their own initramfs, so the other guests' definitions never change:
# virtio_mem loaded, and the guest's own view (MemTotal, each virtio disk's size) on the console.
GROW_MODULES="$GUEST_MODULES virtio_mem"
grow_guest_init() {
  local report
  report=$(cat <<'REPORT'
# The guest's own view for tests, printed when it changes: MemTotal (kB), virtio disks (512-byte sectors).
# Builtins only (see the loop after PLL-GUEST-READY); the subshell has fd 3 of its own.
( mkfifo /run/tick-view && exec 3<>/run/tick-view
  last=; while :; do
    now=
    while read -r key kb unit; do [ "$key" = MemTotal: ] && now="MemTotal=$kb" && break; done </proc/meminfo
    for b in /sys/block/vd*; do [ -e "$b/size" ] && read -r sectors <"$b/size" && now="$now ${b##*/}=$sectors"; done
    [ "$now" = "$last" ] || { echo "PLL-GUEST-VIEW $now"; last=$now; }
    read -r -t 1 <&3 || [ -e /proc/self/fd/3 ] || sleep 1
  done ) &
REPORT
)
  guest_init | awk -v r="$report" '/^echo "PLL-GUEST-READY/ {print r} {print}'
}
GROW_INITRD=$RIG_DIR/initramfs-grow.cpio.gz
grow_initrd_key=$( { declare -f guest_init grow_guest_init build_initramfs; echo "$GROW_MODULES $KVER"; dpkg-query -W -f='${Version}' busybox-static; } | sha256sum | cut -c1-16)
if [ ! -s "$GROW_INITRD" ] || [ "$(cat "$GROW_INITRD.key" 2>/dev/null)" != "$grow_initrd_key" ]; then
  log "building the grow guests' initramfs"
  ( grow_init=$(grow_guest_init); GUEST_MODULES=$GROW_MODULES
    guest_init() { printf '%s\n' "$grow_init"; }; build_initramfs "$GROW_INITRD" )
  echo "$grow_initrd_key" >"$GROW_INITRD.key"
fi
log "grow initramfs ok ($grow_initrd_key)"

# ---------------------------------------------------------------- domains
# A fixed UUID per name: re-defining XML without one makes libvirt pick a new UUID and refuse
# ("operation failed: domain 'NAME' already exists with uuid ...").
domain_uuid() { md5sum <<<"pulumi-libvirt-live-rig/$1" | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'; }
domain_xml() { # NAME with_os(yes|no|grow|debian|debian-agent)
  # no_timer_check: skip the IO-APIC timer test that a slow TCG boot can fail (a panic in CI).
  local name=$1 os=$2 kernel=$VMLINUZ initrd=$INITRD cmdline='console=ttyS0 quiet no_timer_check' what="linux guest, initramfs $initrd_key"
  local balloon="<memballoon model='virtio'/>" tcg=
  [ "$os" = no ] && what="no OS: never acknowledges hot-unplug"
  # memhp_default_state=online: memory a virtio-mem device plugs is usable at once (no udev here).
  [ "$os" = grow ] && initrd=$GROW_INITRD cmdline="$cmdline memhp_default_state=online" \
    what="linux guest for growth tests, initramfs $grow_initrd_key"
  # Debian: its own kernel and initrd, root on its own image copy. No memhp_default_state: plugged
  # virtio-mem memory stays offline until the agent onlines it (what its tests are about).
  # Balloon stats make `virsh dommemstat` report 'available' (the guest's MemTotal).
  # norandmaps and a larger TCG code cache: a process translated once stays translated (see the
  # guest-view script in debian-image.sh for the QEMU abort they keep away).
  [[ "$os" == debian* ]] && kernel=$RIG_DEBIAN_DIR/vmlinuz initrd=$RIG_DEBIAN_DIR/initrd.img \
    cmdline='root=/dev/vda rw console=ttyS0 no_timer_check norandmaps' what="Debian 12 guest ($os), image $debian_key" \
    tcg="
    <tcg>
      <tb-cache unit='MiB'>2048</tb-cache>
    </tcg>" \
    balloon="<memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>"
  cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <uuid>$(domain_uuid "$name")</uuid>
  <description>pulumi-libvirt-live test rig ($what)</description>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>$RIG_BASE_MEM_KIB</currentMemory>
  <vcpu placement='static' current='1'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
EOF
  if [ "$os" != no ]; then
    cat <<EOF
    <kernel>$kernel</kernel>
    <initrd>$initrd</initrd>
    <cmdline>$cmdline</cmdline>
EOF
  fi
  cat <<EOF
  </os>
  <features>
    <acpi/>
    <apic/>$tcg
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
EOF
  if [[ "$os" == debian* ]]; then
    cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$(debian_disk "$name")'/>
      <target dev='vda' bus='virtio'/>
    </disk>
EOF
  fi
  if [ "$os" = debian-agent ]; then
    cat <<EOF
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
EOF
  fi
  cat <<EOF
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$(console_log "$name")'/>
      <target port='0'/>
    </serial>
    $balloon
  </devices>
</domain>
EOF
}

# pll-grow2 and the Debian guests: a virtio-mem device (RIG.md "Beyond the seed"): boot maximum 512 MiB
# (the NUMA cell), 1 GiB more in 2 MiB blocks, none plugged at boot; libvirt's <memory> is then 1.5 GiB.
domain_xml_virtio_mem() { # NAME with_os (as domain_xml)
  domain_xml "$1" "$2" | awk '
    /^  <memory unit=/ { print "  <maxMemory slots='"'"'4'"'"' unit='"'"'KiB'"'"'>4194304</maxMemory>" }
    /^  <features>/ { print "  <cpu>\n    <numa>\n      <cell id='"'"'0'"'"' cpus='"'"'0-3'"'"' memory='"'"'524288'"'"' unit='"'"'KiB'"'"'/>\n    </numa>\n  </cpu>" }
    /^  <\/devices>/ { print "    <memory model='"'"'virtio-mem'"'"'>\n      <target>\n        <size unit='"'"'KiB'"'"'>1048576</size>\n        <node>0</node>\n        <block unit='"'"'KiB'"'"'>2048</block>\n        <requested unit='"'"'KiB'"'"'>0</requested>\n      </target>\n    </memory>" }
    { print }'
}

rig_domain_xml() { # NAME
  local name=$1 os=yes
  [ "$name" = "$RIG_NOOS" ] && os=no
  case " $RIG_GROW_GUESTS " in *" $name "*) os=grow ;; esac
  [ "$name" = "$RIG_DEBIAN_AGENT_GUEST" ] && os=debian-agent
  [ "$name" = "$RIG_DEBIAN_NOAGENT_GUEST" ] && os=debian
  if [ "$name" = pll-grow2 ] || is_debian_guest "$name"; then domain_xml_virtio_mem "$name" "$os"; else domain_xml "$name" "$os"; fi
}

debian_key=
debian_image_wait() {
  wait "$debian_build_pid" || die "building the Debian guest image failed (rig/debian-image.sh)"
  debian_key=$(cat "$RIG_DEBIAN_DIR/base.key")
}

started= booted=
ensure_domain() { # NAME: (re)define it if its XML changed, start it if stopped
  local name=$1 defined=
  rig_domain_xml "$name" >"$RIG_DIR/$name.xml.new"
  virsh_q dominfo "$name" >/dev/null 2>&1 && defined=1
  # The config-write fault suite makes this file immutable for a moment; a run cut off there
  # would leave every later define failing.
  if [ -e "/etc/libvirt/qemu/$name.xml" ] && lsattr "/etc/libvirt/qemu/$name.xml" 2>/dev/null | cut -d' ' -f1 | grep -q i; then
    log "$name: clearing the immutable flag a cut-off fault test left on its config"
    chattr -i "/etc/libvirt/qemu/$name.xml"
  fi
  if [ -z "$defined" ] || ! cmp -s "$RIG_DIR/$name.xml.new" "$RIG_DIR/$name.xml"; then
    if [ -n "$defined" ]; then
      log "$name: definition changed: destroy + undefine"
      [ "$(domstate "$name")" = "shut off" ] || virsh_q destroy "$name" >/dev/null
      virsh_q undefine "$name" >/dev/null
    fi
    mv "$RIG_DIR/$name.xml.new" "$RIG_DIR/$name.xml"
  else
    rm -f "$RIG_DIR/$name.xml.new"
  fi
  # A guest started before cgroup_controllers was set keeps no cgroups (schedinfo, memtune and
  # blkiotune then fail: "cgroup CPU controller is not mounted"; schedinfo answers only with them):
  # it is restarted once from the rig's definition, as a reset does.
  if [ "$(domstate "$name")" = running ] && virsh_q schedinfo "$name" 2>&1 >/dev/null | grep -q 'controller is not mounted'; then
    log "$name: runs without cgroups (started before cgroup_controllers was set): restarting it"
    virsh_q destroy "$name" >/dev/null 2>&1 || [ "$(domstate "$name")" = "shut off" ] || die "virsh destroy $name failed"
  fi
  # Tests may pause, stop or reboot their own guest at this moment: act only on a settled state,
  # and accept that the guest is running by the time virsh gets to it.
  case "$(domstate "$name")" in
    paused) log "$name: resuming"; virsh_q resume "$name" >/dev/null 2>&1 || [ "$(domstate "$name")" = running ] \
      || die "virsh resume $name failed" ;;
    # Undefined (domstate prints nothing) or stopped.
    ""|"shut off") log "$name: defining from $RIG_DIR/$name.xml and starting"; start_from_rig_definition "$name"
      started="$started $name"; [ -n "$RIG_RESTORED" ] || booted="$booted $name" ;;
  esac
}
# A suite's background reset (rig/reset-guest.sh) may be booting a guest right now: hold every
# guest's reset lock while guests are checked, started and waited for, so the two never start one
# twice or clear each other's console log. Released before anything long-lived is started.
reset_lock_fds=()
for name in $GUESTS $GROW_GUESTS $DEBIAN_GUESTS $NOOS; do
  exec {fd}>"$RIG_DIR/.reset-$name.lock"
  flock -w 600 "$fd" || die "a reset of $name has held $RIG_DIR/.reset-$name.lock for 10 minutes"
  reset_lock_fds+=("$fd")
done
# The Debian guests boot slowest: first when their image is cached (its build is done by now),
# else after the others, once the build has finished.
if [ -n "$debian_build_pid" ] && kill -0 "$debian_build_pid" 2>/dev/null; then
  for name in $GUESTS $GROW_GUESTS $NOOS; do ensure_domain "$name"; done
  log "waiting for the Debian image build"
  debian_image_wait
  for name in $DEBIAN_GUESTS; do ensure_domain "$name"; done
else
  [ -z "$debian_build_pid" ] || debian_image_wait
  for name in $DEBIAN_GUESTS $GUESTS $GROW_GUESTS $NOOS; do ensure_domain "$name"; done
fi
for name in $GUESTS $GROW_GUESTS $DEBIAN_GUESTS; do
  wait_guest_ready "$name"
  log "$name: $(grep -a -m1 "$RIG_READY_MARK" "$(console_log "$name")" | tr -d '\r')"
done
# Only guests started now: a running guest may hold what a test set (setmem); reset-guest.sh restores.
for name in $started; do
  is_linux_guest "$name" || continue
  wait_balloon "$name" "$RIG_BASE_MEM_KIB" 30
  log "$name: balloon at baseline (dommemstat actual $RIG_BASE_MEM_KIB)"
done
# A guest booted now keeps this baseline for its resets (rig/lib.sh "Saved baselines"), four at a
# time: a save is mostly the write of its memory image.
saves=()
for name in $booted; do
  save_baseline "$name" "$RIG_DIR/$name.xml" & saves+=($!)
  (( ${#saves[@]} < 4 )) || { wait "${saves[0]}" || die "saving a baseline failed"; saves=("${saves[@]:1}"); }
done
for pid in "${saves[@]}"; do wait "$pid" || die "saving a baseline failed"; done
[ -z "$booted" ] || log "baselines saved:$booted"
for name in $started; do mark_clean "$name"; done
for fd in "${reset_lock_fds[@]}"; do exec {fd}>&-; done

# ---------------------------------------------------------------- env
cat >"$RIG_DIR/rig.env.new" <<EOF
export PLL_RIG_DIR=$RIG_DIR
export PLL_SSH_HOST=127.0.0.1
export PLL_SSH_PORT=$RIG_SSH_PORT
export PLL_SSH_USER=root
export PLL_SSH_KEY=$KEY
export PLL_SSH_KEY_ENC=$KEY_ENC
export PLL_SSH_KEY_ENC_PASSPHRASE_FILE=$KEY_ENC.passphrase
export PLL_PASSWORD_USER=pllpass
export PLL_PASSWORD_FILE=$PASSWORD_FILE
export PLL_HOST_KEY_FINGERPRINT=$FINGERPRINT
export PLL_HOST_KEY='$(cut -d' ' -f1,2 "$HOSTKEY.pub")'
export PLL_KNOWN_HOSTS=$KNOWN_HOSTS
export PLL_LIBVIRT_URI=$RIG_URI
export PLL_BRIDGE=$RIG_BRIDGE
export PLL_IMAGES=$RIG_DIR/images
export PLL_GUESTS="$RIG_GUESTS"
export PLL_NOOS=$RIG_NOOS
export PLL_DEBIAN_GUESTS="$RIG_DEBIAN_GUESTS"
export PLL_DEBIAN_AGENT_GUEST=$RIG_DEBIAN_AGENT_GUEST
export PLL_DEBIAN_NOAGENT_GUEST=$RIG_DEBIAN_NOAGENT_GUEST
export PLL_SSHD_PIDFILE=$SSHD_PID
EOF
mv "$RIG_DIR/rig.env.new" "$RIG_DIR/rig.env"
# Namespace hosts: a bastion and hypervisors behind it (jump-host tests); writes netns.env.
if [ -z "$only" ]; then
  bash "$HERE/netns-up.sh" 9>&-
  log "rig up; source $RIG_DIR/rig.env"
else
  log "rig up for$only (no other guests, no namespace hosts); source $RIG_DIR/rig.env"
fi
