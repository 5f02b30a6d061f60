#!/usr/bin/env bash
# The README's first command. On a fresh machine: prepares what it uses (scripts/prepare.sh --demo:
# npm packages, build, libvirtd + the one rig guest pll-demo + sshd on 127.0.0.1:2222, the Pulumi
# CLI), then runs the quickstart (root Pulumi.yaml -> examples/quickstart) through the real Pulumi
# engine in steps against pll-demo, printing the engine's own output and, after each step, the
# guest's devices as virsh sees them. Ends by stopping what it started unless --keep is given: the
# whole rig (rig/down.sh) if no rig guest ran before it and none but pll-demo runs now, else only
# pll-demo (if it started it), so a rig shared with running tests stays up.
#
#   bash examples/demo.sh [--keep] [--no-prepare]
#
# --no-prepare skips scripts/prepare.sh (and its build) on a machine prepared already.
#
# State lives in a temp dir (local file backend, passphrase secrets, no network) and the guest is
# reset first, so every run starts from the same place. Exits non-zero as soon as a step fails.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

keep=0 prepare=1
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    --no-prepare) prepare=0 ;;
    -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

GUEST=pll-demo
STACK=demo
. rig/lib.sh                       # RIG_DIR, RIG_URI, die
# The rig guests running before the demo (none on a fresh machine): the teardown leaves them be.
rig_guests_running() { virsh -q -c "$RIG_URI" list --name 2>/dev/null | grep '^pll-' || true; }
running_before=$(rig_guests_running)
DEMO_T0=$SECONDS
timings=()
current=""
step_t0=$SECONDS

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
banner() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
# Starts a timed step (closing the previous one); the summary at the end lists them all.
step() {
  end_step
  current=$1; step_t0=$SECONDS
  banner "$1"
}
end_step() {
  [ -n "$current" ] && timings+=("$(printf '%4ss  %s' "$((SECONDS - step_t0))" "$current")")
  current=""
}
print_timings() {
  end_step
  banner "timings"
  printf '  %s\n' "${timings[@]}"
  printf '  %4ss  total\n' "$((SECONDS - DEMO_T0))"
}
on_exit() {
  local rc=$? failed=$current
  print_timings
  if [ $rc -ne 0 ]; then
    [ -n "$failed" ] && echo "demo.sh: FAILED in step: $failed (exit $rc)" >&2
    [ -n "${WORK:-}" ] && echo "demo.sh: engine state kept in $WORK (PULUMI_BACKEND_URL=file://$WORK/backend)" >&2
    [ "$keep" -eq 0 ] && echo "demo.sh: rig left running for a look; bash rig/down.sh tears it down" >&2
  elif [ -n "${WORK:-}" ]; then
    rm -rf "$WORK"
  fi
  exit $rc
}
trap on_exit EXIT

if [ "$prepare" -eq 1 ]; then
  step "prepare: npm packages, build, rig (libvirtd, guest $GUEST, sshd on 127.0.0.1), Pulumi CLI"
  PATH="$(bash scripts/prepare.sh --demo | tail -n 1):$PATH"
else
  step "no prepare (--no-prepare): the cached Pulumi CLI and Node.js, the last build"
  PATH="$(bash tools/pulumi-cli/build.sh | tail -n 1):$(bash scripts/node-toolchain.sh | tail -n 1):$PATH"
fi
[ -s "$RIG_DIR/rig.env" ] || die "no $RIG_DIR/rig.env: run without --no-prepare (or bash rig/up.sh)"
. "$RIG_DIR/rig.env"              # PLL_SSH_*, PLL_HOST_KEY_FINGERPRINT, PLL_BRIDGE, PLL_IMAGES…
echo "pulumi $(pulumi version), Node.js $(node --version)"

step "reset guest $GUEST to its baseline (256MiB, 1 vCPU, empty IDE cdrom hdc, no NIC)"
bash rig/reset-guest.sh "$GUEST"
# A restart gives the domain a new id: the same id at the end shows every change was live.
domid() { virsh -q -c "$PLL_LIBVIRT_URI" domid "$GUEST"; }
DOMID=$(domid)
# Host-side files the stack attaches: a raw data disk and two ISOs (any file serves as media).
DATA_DISK=$PLL_IMAGES/$GUEST-data.raw
ISO1=$PLL_IMAGES/$GUEST-tools-1.iso
ISO2=$PLL_IMAGES/$GUEST-tools-2.iso
rm -f "$DATA_DISK" && truncate -s 64M "$DATA_DISK"
for iso in "$ISO1" "$ISO2"; do
  printf 'pulumi-libvirt-live demo media %s\n' "$(basename "$iso")" >"$iso"
  truncate -s 1M "$iso"
done

WORK=$(mktemp -d /tmp/pll-demo.XXXXXX)
export PULUMI_BACKEND_URL="file://$WORK/backend" PULUMI_CONFIG_PASSPHRASE="demo-$RANDOM$RANDOM" \
  PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME="$WORK/home" PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# prepare's tsc has type-checked the quickstart already: the engine's ts-node only transpiles it
# (a type-check of index.ts against @pulumi/pulumi's types costs seconds at each run of a new checkout).
export PULUMI_NODEJS_TRANSPILE_ONLY=true
mkdir -p "$WORK/backend"
# The stack's config file lives in the temp dir too, so the checkout stays clean.
CONFIG=(--config-file "$WORK/Pulumi.$STACK.yaml")
cfg() { pulumi config set "${CONFIG[@]}" "$@"; }
show_guest() { echo; node dist/examples/lib/guest-table.js "$GUEST" "$PLL_LIBVIRT_URI"; }
up() { pulumi up --yes --skip-preview --non-interactive "${CONFIG[@]}"; }

# `stack init` writes the passphrase salt to Pulumi.<stack>.yaml beside Pulumi.yaml (it takes no
# --config-file): move it to the temp dir at once, and never overwrite a file someone left there.
[ ! -e "Pulumi.$STACK.yaml" ] || die "$ROOT/Pulumi.$STACK.yaml exists (another stack's config?): move it away first"
pulumi stack init "$STACK" --non-interactive
mv "Pulumi.$STACK.yaml" "$WORK/Pulumi.$STACK.yaml"
cfg host "$PLL_SSH_HOST"
cfg port "$PLL_SSH_PORT"
cfg user "$PLL_SSH_USER"
cfg hostKey "$PLL_HOST_KEY_FINGERPRINT"
cfg domain "$GUEST"
cfg --secret sshKey <"$PLL_SSH_KEY"
echo "stack '$STACK' in $PULUMI_BACKEND_URL, config: host, port, user, hostKey, domain, sshKey (secret)"
show_guest

step "step 1: memory 256MiB -> 384MiB, vCPUs 1 -> 2 (virsh setmem/setvcpus --live --config)"
cfg memory 384MiB
cfg vcpus 2
up
show_guest

step "step 2: data disk (raw, cache none, io native) + bridged virtio NIC + ISO in IDE drive hdc"
cfg dataDisk "$DATA_DISK"
cfg bridge "$PLL_BRIDGE"
cfg iso "$ISO1"
up
show_guest

step "step 3: ISO swap in hdc (an in-place update, media changed live)"
cfg iso "$ISO2"
up
show_guest

step "step 4: pull-request preview of a reboot-required change: vCPUs 2 -> 1"
cfg vcpus 1
rc=0
bash examples/ci-preview/preview.sh --fail-on-reboot "${CONFIG[@]}" | tee "$WORK/preview.txt" || rc=$?
# The preview must mark the replacement (exit 3 = a reboot-required change was found), change nothing.
[ "$rc" -eq 3 ] || { echo "demo.sh: expected the preview to flag a reboot (exit 3), got $rc" >&2; exit 1; }
grep -q '+-1 to replace' "$WORK/preview.txt" || { echo "demo.sh: the preview shows no replacement" >&2; exit 1; }
show_guest

step "step 5: pulumi destroy (devices detached, ISO ejected; memory and vCPUs stay as they are)"
pulumi destroy --yes --skip-preview --non-interactive "${CONFIG[@]}"
pulumi stack rm "$STACK" --yes --non-interactive --preserve-config
show_guest
[ "$(domid)" = "$DOMID" ] || die "$GUEST restarted during the demo (domain id $DOMID -> $(domid))"
echo "  $GUEST kept domain id $DOMID from the first step to the last: it never restarted"

if [ "$keep" -eq 1 ]; then
  end_step
  echo; echo "rig kept running (--keep); bash rig/down.sh tears it down"
elif [ -z "$running_before" ] && [ -z "$(rig_guests_running | grep -vx "$GUEST")" ]; then
  step "tear down the rig (bash rig/down.sh; --keep leaves it running)"
  bash rig/down.sh
else
  step "stop $GUEST only: other rig guests ran before or run now (bash rig/down.sh tears all down)"
  grep -qx "$GUEST" <<<"$running_before" || virsh -q -c "$RIG_URI" destroy "$GUEST" >/dev/null
fi
