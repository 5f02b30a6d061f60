#!/usr/bin/env bash
# The test command (README, .ci/run): prepares a fresh machine, then runs the unit, rig, engine,
# fault and load suites, the long ones (load, libvirtd restart) included; PLL_SKIP_LONG=1 skips
# those for a quicker run by hand.
#
# The suites run in four lanes side by side, each one mocha on guests and ports of its own (most of
# a suite's time is spent waiting on a TCG guest or a remote command), then the suites that must be
# alone on the rig. Lane "main" streams its output; the others write to a log that is printed when
# they end. The end is the whole run's per-suite time table and one "tests:" line.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(bash scripts/prepare.sh | tail -n 1)
export PATH="$bin:$PATH"
node_min=$(bash scripts/node-toolchain.sh 22 | tail -n 1)

# The lanes beside "main" (which runs every other suite, most disk-move suites on domains of their
# own, pll-mv-*, among them): each on guests and ports no other lane uses. A suite's own domains
# (pll-mv-*, pll-tn-*) are copies of a rig guest's definition, never of its config now, so they may
# run in any lane; they are placed to even the lanes out (the longest lane is the run's time).
# beside: pll-fault1 and the namespace hosts, with an own sshd on 2226.
beside=(
  rig/half-missing rig/jump-hosts engine/many-hosts
  faults/bad-input-engine faults/bad-input faults/security-host-keys faults/security-injection
  faults/security-secrets faults/security-sudo faults/through-jump-host faults/faults-libvirt-lock
  load/attach-detach-cycles
)
# apart: pll-fault2..4 and pll-noos, with own sshds on 2223, 2231, 2232 and 2233; the tuning
# suites (pll-tn-*) and two disk-move suites (pll-mv-keeps, pll-mv-hand).
apart=(
  engine/consumer-install rig/domain-tuning engine/domain-tuning rig/disk-move-keeps rig/disk-move-by-hand
  rig/batches faults/transport-trust faults/faults-connect faults/faults-sshd faults/faults-engine
  faults/nic-attach-failures faults/cdrom-replug-failures faults/faults-config-write faults/faults-noos
  faults/faults-cut-off-run load/engine-40-devices engine/round-trips-bench
)
# debian: the Debian guests pll-deb1 and pll-deb2, and the property matrix (its own pll-mx-*
# domains, and pll-deb1 for the guest-agent row).
debian=(
  rig/rule-matrix rig/guest-view rig/debian-seed engine/guest-agent rig/domain-tuning-debian rig/disk-move-guest
)
side_lanes=(beside apart debian)
# libvirtd stopped under everyone's feet, and a check that no other domain changed state.
alone=(faults/faults-libvirtd-restart rig/vanished-domain)

files() { local f; for f in "$@"; do echo "dist/test/$f.test.js"; done; }
listed=("${alone[@]}")
for lane in "${side_lanes[@]}"; do declare -n suites=$lane; listed+=("${suites[@]}"); unset -n suites; done
for f in $(files "${listed[@]}"); do [ -e "$f" ] || { echo "run-all.sh: no $f (a suite was renamed: update the lanes)" >&2; exit 1; }; done
ignored=()
for f in $(files "${listed[@]}"); do ignored+=(--ignore "$f"); done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run_lane() { # LANE FILE-OR-GLOB... : one lane's mocha, its summary to $out/LANE.json
  local lane=$1; shift
  PLL_LANE_SUMMARY="$out/$lane.json" npx mocha --node-option expose-gc --reporter ./dist/test/summary-reporter.js \
    --timeout 600000 "$@"
}

t0=$SECONDS
# The unit suite on the minimum supported Node.js too (seconds), so a break on either shows.
echo "== unit suite on Node.js $("$node_min/node" --version)"
if PATH="$node_min:$PATH" run_lane unit-node22 'dist/test/unit/**/*.test.js' >"$out/unit-node22.log" 2>&1; then
  grep -E '^ +[0-9]+ (passing|pending)' "$out/unit-node22.log" || true
else
  cat "$out/unit-node22.log"
fi
echo "== the lanes on Node.js $(node --version)"
declare -A lane_pid
for lane in "${side_lanes[@]}"; do
  declare -n suites=$lane
  echo "== lane $lane: ${#suites[@]} suites, output when it ends"
  run_lane "$lane" $(files "${suites[@]}") >"$out/$lane.log" 2>&1 &
  lane_pid[$lane]=$!
  unset -n suites
done
echo "== lane main: every other suite"
run_lane main "${ignored[@]}" 'dist/test/unit/**/*.test.js' 'dist/test/rig/**/*.test.js' 'dist/test/engine/**/*.test.js' \
  'dist/test/faults/**/*.test.js' 'dist/test/load/**/*.test.js' || true
echo "== lane main done after $((SECONDS - t0)) s"
for lane in "${side_lanes[@]}"; do
  wait "${lane_pid[$lane]}" || true
  echo "== lane $lane's output"
  cat "$out/$lane.log"
done
echo "== alone on the rig: ${alone[*]}"
run_lane alone $(files "${alone[@]}") || true
echo "== all lanes done after $((SECONDS - t0)) s"
summaries=()
for lane in unit-node22 main "${side_lanes[@]}" alone; do summaries+=("$lane=$out/$lane.json"); done
node dist/test/lane-summary.js "${summaries[@]}"
