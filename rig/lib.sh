# Shared by up.sh, reset-guest.sh and down.sh: paths, logging, waits. Sourced, not run.

RIG_DIR=${RIG_DIR:-/var/tmp/pll-rig}
RIG_URI=qemu:///system
RIG_BRIDGE=pllbr0
RIG_SSH_PORT=2222
# pll-guest1/2: provider (rig) tests; pll-e2e1/2: engine tests and the demo, so suites never share a guest.
# pll-net1..4: the guests of the namespace hosts pll-hv1..4 (jump-host tests, netns-lib.sh).
RIG_GUESTS="pll-guest1 pll-guest2 pll-e2e1 pll-e2e2 pll-demo pll-fault1 pll-fault2 pll-fault3 pll-fault4 pll-net1 pll-net2 pll-net3 pll-net4"
# pll-grow1/2: growth tests (issue 9): vCPU overcommit, disk size and I/O limits; pll-grow2 has a
# virtio-mem device (memory past the boot maximum). Their own initramfs.
RIG_GROW_GUESTS="pll-grow1 pll-grow2"
# pll-deb1/2: a real Debian 12 (systemd + udev) guest from rig/debian-image.sh, each booting its own
# copy of the image; pll-deb1 has the qemu-guest-agent channel, pll-deb2 has none.
RIG_DEBIAN_AGENT_GUEST=pll-deb1
RIG_DEBIAN_NOAGENT_GUEST=pll-deb2
RIG_DEBIAN_GUESTS="$RIG_DEBIAN_AGENT_GUEST $RIG_DEBIAN_NOAGENT_GUEST"
RIG_DEBIAN_DIR=$RIG_DIR/debian
RIG_NOOS=pll-noos
RIG_READY_MARK=PLL-GUEST-READY
RIG_BASE_MEM_KIB=262144
RIG_T0=${RIG_T0:-${EPOCHREALTIME/,/.}}

log() {
  local now=${EPOCHREALTIME/,/.}
  printf '[rig %6.1fs] %s\n' "$(awk -v a="$RIG_T0" -v b="$now" 'BEGIN{print b-a}')" "$*" >&2
}
die() { log "ERROR: $*"; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || log "FAILED (exit $rc) at line $LINENO: $BASH_COMMAND"' ERR

virsh_q() { virsh -q -c "$RIG_URI" "$@"; }

# True once PID has exited. PID 1 here reaps orphans only every ~2 s: a zombie counts as gone.
proc_gone() {
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -z "$st" ] || [ "$st" = Z ]
}

# True if the pid in FILE is alive and runs the program COMM.
pid_alive() {
  local file=$1 comm=$2 pid
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && ! proc_gone "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# True if a live (not zombie) process is named COMM.
live_proc_named() {
  local p
  for p in $(pgrep -x "$1" || true); do proc_gone "$p" || return 0; done
  return 1
}

# Stop the process in FILE if it is COMM (SIGTERM, then SIGKILL after 10 s); remove FILE.
stop_pidfile() {
  local file=$1 comm=$2 pid i
  if pid_alive "$file" "$comm"; then
    pid=$(cat "$file"); kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do proc_gone "$pid" && break; sleep 0.1; done
    proc_gone "$pid" || { log "$comm $pid ignores SIGTERM: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    log "stopped $comm ($pid)"
  fi
  rm -f "$file"
}

libvirt_answers() { timeout 10 virsh -c "$RIG_URI" list >/dev/null 2>&1; }

domstate() { virsh_q domstate "$1" 2>/dev/null | head -n1 || true; }

is_linux_guest() { grep -q '<kernel>' "$RIG_DIR/$1.xml"; }

console_log() { echo "$RIG_DIR/console-$1.log"; }

is_debian_guest() { [[ " $RIG_DEBIAN_GUESTS " == *" $1 "* ]]; }
# Each Debian guest boots its own copy of the image, so nothing a test wrote leaks into the next boot.
debian_disk() { echo "$RIG_DEBIAN_DIR/disk-$1.raw"; }
# systemd under TCG: ~27 s alone, far longer while 16 other guests boot on 2 cores.
guest_ready_limit() { if is_debian_guest "$1"; then echo 240; else echo 90; fi; }

# Wait until the guest's console shows the ready line (the log is cleared before each start).
# Under TCG on a loaded host an early boot can panic ("IO-APIC + timer doesn't work", seen in CI
# with 16 guests booting on 2 cores): such a boot is restarted once, never more.
wait_guest_ready() {
  local name=$1 limit=${2:-$(guest_ready_limit "$1")} restarts=${3:-1} start=$SECONDS next=$((SECONDS + 10))
  local f; f=$(console_log "$name")
  until grep -qa "$RIG_READY_MARK" "$f" 2>/dev/null; do
    # A boot takes 10-90 s under TCG: say every 10 s that it is alive and how far the console got.
    if (( SECONDS >= next )); then
      log "$name: booting, $((SECONDS - start))s of ${limit}s, console $(wc -c <"$f" 2>/dev/null || echo 0) bytes"
      next=$((SECONDS + 10))
    fi
    if grep -qa 'Kernel panic' "$f" 2>/dev/null && (( restarts > 0 )); then
      log "$name: the boot panicked ($(grep -a -m1 'Kernel panic' "$f" | tr -d '\r' | cut -c1-120)); restarting it once"
      virsh_q destroy "$name" >/dev/null 2>&1 || true
      start_from_rig_definition "$name"
      restarts=$((restarts - 1)) start=$SECONDS
      continue
    fi
    [ "$(domstate "$name")" = running ] || die "$name is '$(domstate "$name")' while booting; console: $(tail -c 400 "$f" 2>/dev/null)"
    (( SECONDS - start < limit )) || die "$name printed no $RIG_READY_MARK within ${limit}s; console: $(tail -c 400 "$f" 2>/dev/null)"
    sleep 0.2
  done
  if grep -qa 'PLL-GUEST-MODPROBE-FAILED' "$f"; then
    die "$name could not load a module: $(grep -a 'PLL-GUEST-MODPROBE-FAILED' "$f" | tr '\n' ' ')"
  fi
}

# Wait until the balloon driver in the guest has reached KIB (dommemstat 'actual'), then (up to 10 s
# more, not an error) until the live <currentMemory> follows: it lags, and a mark_clean taken before
# it moved makes the next reset reboot for nothing (seen on the Debian guests: 380928 for a while).
wait_balloon() {
  local name=$1 kib=$2 limit=${3:-30} start=$SECONDS actual= i
  while :; do
    actual=$(virsh_q dommemstat "$name" 2>/dev/null | awk '$1=="actual"{print $2}')
    if [ "$actual" = "$kib" ]; then
      for i in $(seq 50); do
        [ "$(virsh_q dominfo "$name" 2>/dev/null | awk '/^Used memory:/{print $3}')" = "$kib" ] && break
        sleep 0.2
      done
      return 0
    fi
    (( SECONDS - start < limit )) || die "$name: dommemstat actual is '$actual', expected $kib after ${limit}s (balloon driver not running in the guest?)"
    sleep 0.3
  done
}

# What a reset must restore, in one line: state, QEMU run (domid, pid), live and persistent XML
# (vCPUs, the virtio-mem <current>), balloon, and for a Debian guest the online CPUs of its last view
# line (the agent changes them without touching the XML; its MemTotal is left out: it still moves
# for a moment after the balloon reached its target).
guest_fingerprint() {
  local name=$1 view=
  is_debian_guest "$name" && view=$(grep -a 'PLL-GUEST-VIEW' "$(console_log "$name")" 2>/dev/null | tail -n1 | grep -o 'cpus=[^ ]*')
  printf '%s|%s|%s|%s|%s|%s%s\n' "$(domstate "$name")" "$(virsh_q domid "$name")" "$(cat "/run/libvirt/qemu/$name.pid" 2>/dev/null)" \
    "$(virsh_q dumpxml "$name" | sha256sum | cut -c1-16)" "$(virsh_q dumpxml --inactive "$name" | sha256sum | cut -c1-16)" \
    "$(virsh_q dommemstat "$name" 2>/dev/null | awk '$1=="actual"{print $2}')" "${view:+|$view}"
}
clean_marker() { echo "$RIG_DIR/.clean-$1"; }
# Called when a guest is at its baseline: a reset that finds it unchanged can skip the reboot.
mark_clean() { guest_fingerprint "$1" >"$(clean_marker "$1")"; }
is_unchanged_since_clean() { [ "$(guest_fingerprint "$1")" = "$(cat "$(clean_marker "$1")" 2>/dev/null)" ]; }

# Define a stopped (or undefined) domain from the rig's XML, then start it: restored from its saved
# baseline, or booted with a fresh console log (and, for a Debian guest, a fresh copy of the image),
# without waiting (see settle_boot). Always re-defined: a run cut off mid-test (a session that ended, CI on the same machine) can
# leave setmem/setvcpus/attach --config in libvirt's copy.
start_from_rig_definition() {
  local name=$1
  virsh_q define "$RIG_DIR/$name.xml" >/dev/null || die "virsh define $RIG_DIR/$name.xml failed"
  start_or_restore "$name" "$RIG_DIR/$name.xml"
}

# Saved baselines. A guest's TCG boot costs ~10 s of host CPU for busybox, ~31 s for Debian (32 s and
# 81 s of wall time on the loaded 2-core host); restoring the memory image saved once it reached its
# baseline takes 1.1-1.5 s and 0.4-0.7 s of CPU. The image belongs to the domain's definition and the
# QEMU binary, kernel and initrd: any changed, it boots again. Its console log up to then is kept with
# it, and the image's own XML gets append='on' on the console (the domain's definition has none, so
# a boot still starts an empty log that waits can trust): the ready line and the view lines are there;
# a Debian guest's disk is kept with it too (the memory image expects that disk). Not for a domain
# without an OS (nothing to save) or with a disk other than a Debian guest's own image.
saved_baseline() { # NAME XMLFILE: the path prefix of NAME's saved baseline for that definition
  local files
  files=$(sed -n 's%.*<\(kernel\|initrd\)>\([^<]*\)</.*%\2%p' "$2")
  # shellcheck disable=SC2086 # the kernel and initrd paths, one word each
  echo "$RIG_DIR/saved/$1-$( { cat "$2"; stat -L -c '%n %s %Y' "$(command -v qemu-system-x86_64)" $files; } | sha256sum | cut -c1-16)"
}
can_save_baseline() { # NAME XMLFILE
  grep -q '<kernel>' "$2" && { is_debian_guest "$1" || ! grep -q "<disk type='file' device='disk'>" "$2"; }
}
copy_image() { cp --reflink=auto --sparse=always "$1" "$2.new" && mv "$2.new" "$2"; } # FROM TO

# NAME, defined from XMLFILE and shut off, restored from its saved baseline; false (nothing done) when it has none.
restore_baseline() { # NAME XMLFILE
  local name=$1 saved
  can_save_baseline "$1" "$2" || return 1
  saved=$(saved_baseline "$1" "$2")
  [ -s "$saved.save" ] && [ -e "$saved.console" ] || return 1
  if is_debian_guest "$name"; then
    [ -s "$saved.raw" ] || return 1
    copy_image "$saved.raw" "$(debian_disk "$name")" || die "$name: cannot copy $saved.raw"
  fi
  cp "$saved.console" "$(console_log "$name")" || return 1
  virsh_q restore "$saved.save" >/dev/null 2>&1 && return 0
  log "$name: restoring $saved.save failed; it boots instead"
  [ "$(domstate "$name")" = "shut off" ] || virsh_q destroy "$name" >/dev/null 2>&1 || true
  rm -f "$saved".*
  return 1
}

# Keep running NAME's state (at its baseline now) as its saved baseline: saved, then restored at once.
save_baseline() { # NAME XMLFILE
  local name=$1 saved
  can_save_baseline "$1" "$2" || return 0
  saved=$(saved_baseline "$1" "$2")
  mkdir -p "$RIG_DIR/saved"
  rm -f "$RIG_DIR/saved/$name"-*
  virsh_q save "$name" "$saved.save.tmp" >/dev/null || die "$name: virsh save $saved.save.tmp failed"
  local console xml; console=$(console_log "$name")
  xml=$(virsh_q save-image-dumpxml --security-info "$saved.save.tmp") || die "$name: virsh save-image-dumpxml failed"
  xml=${xml//"<source path='$console'/>"/"<source path='$console' append='on'/>"}
  [[ "$xml" == *"<source path='$console' append='on'/>"* ]] || die "$name: the saved image's XML has no console $console"
  virsh_q save-image-define "$saved.save.tmp" <(printf '%s\n' "$xml") >/dev/null || die "$name: virsh save-image-define failed"
  if is_debian_guest "$name"; then copy_image "$(debian_disk "$name")" "$saved.raw" || die "$name: cannot keep its disk as $saved.raw"; fi
  cp "$console" "$saved.console"
  mv "$saved.save.tmp" "$saved.save"
  restore_baseline "$name" "$2" || die "$name: cannot restore the baseline just saved ($saved.save)"
}

# Start NAME (defined from XMLFILE, shut off) without waiting: restored from its saved baseline when
# it has one (RIG_RESTORED=yes then), else booted with an empty console log (console_log NAME) and,
# for a Debian guest, a fresh copy of the image.
start_or_restore() { # NAME XMLFILE
  RIG_RESTORED=
  if restore_baseline "$1" "$2"; then
    RIG_RESTORED=yes
    log "$1: restored from its saved baseline"
    return 0
  fi
  if is_debian_guest "$1"; then copy_image "$RIG_DEBIAN_DIR/base.raw" "$(debian_disk "$1")" || die "$1: cannot copy $RIG_DEBIAN_DIR/base.raw"; fi
  rm -f "$(console_log "$1")"
  virsh_q start "$1" >/dev/null 2>&1 || [ "$(domstate "$1")" = running ] || die "virsh start $1 failed"
}

# After start_or_restore booted NAME: wait for its ready line and balloon, then save that baseline.
# RESTARTS: how often a panicked boot may be restarted (only a rig domain: from its rig definition).
settle_boot() { # NAME XMLFILE RESTARTS
  local name=$1 xml=$2
  grep -q '<kernel>' "$xml" || return 0
  wait_guest_ready "$name" "$(guest_ready_limit "$name")" "$3"
  wait_balloon "$name" "$(sed -n "s/.*<currentMemory unit='KiB'>\([0-9]*\)<.*/\1/p" "$xml")" 30
  save_baseline "$name" "$xml"
}

# What every rig sshd shares: keys only, from the authorized_keys in folder $1, no PAM.
sshd_key_login_config() {
  cat <<EOF
AuthorizedKeysFile $1/authorized_keys
# $1 sits under the world-writable /var/tmp, which StrictModes rejects.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
EOF
}
