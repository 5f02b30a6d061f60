#!/usr/bin/env bash
# Everything the demo and the tests need on a fresh machine: Node packages, the build, the rig
# (Debian packages, libvirtd, QEMU guests, sshd on 127.0.0.1:2222) and the Pulumi CLI.
# Prints, as its last line, a PATH prefix: the folder holding the pulumi binary and its plugins,
# then the one holding node (Node.js 24 from the cache when the machine's is older than 22).
#
#   scripts/prepare.sh [--demo]
#
# --demo: only what examples/demo.sh uses: of the rig, Debian packages, libvirtd, sshd and the guest
# pll-demo (rig/up.sh --only pll-demo: no other guests, no Debian image, no namespace hosts).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
say() { printf '[prepare %4ss] %s\n' "$((SECONDS - start))" "$*" >&2; }

demo= rig_args=() cli_nice=19 tsconfig=tsconfig.json
for arg in "$@"; do
  case $arg in
    # One guest booting leaves the CPU to the CLI build: no nice.
    --demo) demo=1 rig_args=(--only pll-demo) cli_nice=0 tsconfig=examples/tsconfig.demo.json ;;
    *) say "unknown argument '$arg' (usage: scripts/prepare.sh [--demo])"; exit 2 ;;
  esac
done

# First the CLI build (minutes on a fresh machine: module download, then compile): it overlaps the
# steps below; niced (but for --demo), so the guests booting under TCG keep the CPU they need to meet
# their bounds, until they are up.
cli_out=$(mktemp) cli_log=$(mktemp) node_out=$(mktemp)
trap 'rm -f "$cli_out" "$cli_log" "$node_out"; [ -z "${cli_tail:-}" ] || kill "$cli_tail" 2>/dev/null || true' EXIT
say "pulumi CLI (in the background)"
nice -n "$cli_nice" bash tools/pulumi-cli/build.sh >"$cli_out" 2>"$cli_log" &
cli_pid=$!

# Then Node.js: npm ci, the build, mocha, the CLI's language host and the dynamic provider run on it
# (the CLI build does not, so the toolchain's download overlaps it). Its folder goes to $node_out.
node_chain() {
  node_bin=$(bash scripts/node-toolchain.sh | tail -n 1)
  export PATH="$node_bin:$PATH"
  say "node $(node --version)"

  # --demo skips the dependencies' install scripts: they compile ssh2's and cpu-features' optional
  # native speed-ups (over a minute), without which ssh2 uses its JavaScript code, as in a consumer's
  # install where npm runs no unapproved script. The tests get them: a later full prepare installs again.
  no_scripts=node_modules/.pll-no-install-scripts
  if [ ! -d node_modules/@pulumi/pulumi ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
    || { [ -z "$demo" ] && [ -e "$no_scripts" ]; }; then
    say "npm ci${demo:+ --ignore-scripts}"
    npm ci --no-audit --no-fund ${demo:+--ignore-scripts} >&2
    [ -z "$demo" ] || touch "$no_scripts"
  fi
  # The root Pulumi.yaml (examples/quickstart) imports this package by name, as users do, and the
  # engine's dynamic-provider process require()s `pulumi-libvirt-live/provider` from the project
  # folder: a self-link resolves both to this checkout's build (npm ci removes it, so every run).
  ln -sfn .. node_modules/pulumi-libvirt-live
  # A checkout built already with this config, and not changed since, is not compiled again (tens of
  # seconds): the stamp holds the list of sources it was built from, written after a build; any newer
  # source or config, a source added, renamed or removed, or a missing entry point builds again, into
  # an empty dist/ (tsc never removes the output of a source that is gone: a renamed test would run twice).
  stamp="dist/.built-with-$(basename "$tsconfig" .json)"
  sources=$(find provider sdk examples test bench scripts -name '*.ts' | LC_ALL=C sort | sha256sum)
  if [ -e "$stamp" ] && [ "$(cat "$stamp")" = "$sources" ] && [ -e dist/sdk/index.js ] && [ -e dist/provider/index.js ] \
    && [ -z "$(find provider sdk examples test bench scripts tsconfig.json "$tsconfig" package-lock.json -newer "$stamp" -print -quit)" ]; then
    say "tsc build ($tsconfig): up to date"
  else
    say "tsc build ($tsconfig)"
    rm -rf dist
    npx tsc -p "$tsconfig" >&2
    printf '%s\n' "$sources" >"$stamp"
  fi
  echo "$node_bin" >"$node_out"
}
# The CLI build's progress (a line every 10 s, tools/pulumi-cli/build.sh) as it comes, from the
# moment the rig is up until it ends, beside whatever else is still running; all of it if it failed.
show_cli_progress() { tail -n 2 -f --pid="$cli_pid" "$cli_log" >&2 & cli_tail=$!; }
tree_pids() { local p; echo "$1"; for p in $(pgrep -P "$1"); do tree_pids "$p"; done; }
if [ -n "$demo" ]; then
  # The CLI build is the long pole: the Node.js chain runs beside the rig, niced, so it takes only
  # the CPU the build leaves (minutes of slack); the rig is not niced (its guest must boot in time).
  say "Node.js, npm ci and the build (in the background, niced: the CLI build goes first)"
  ( renice -n 19 -p "$BASHPID" >/dev/null; node_chain ) &
  chain_pid=$!
else
  node_chain
fi
say "rig up"
bash rig/up.sh "${rig_args[@]}" >&2
# The guests are up: a niced build gets the CPU back (the go processes it runs now and later).
renice -n 0 -p $(tree_pids "$cli_pid") >/dev/null 2>&1 || true
show_cli_progress
if [ -n "${chain_pid:-}" ]; then
  wait "$chain_pid" || { say "ERROR: the Node.js toolchain, npm ci or the build failed (its output is above)"; exit 1; }
fi
node_bin=$(cat "$node_out")
say "waiting for the pulumi CLI"
wait "$cli_tail" || true
cli_status=0
wait "$cli_pid" || cli_status=$?
[ "$cli_status" = 0 ] || { cat "$cli_log" >&2; say "ERROR: tools/pulumi-cli/build.sh failed (exit $cli_status); its output is above"; exit 1; }
bin=$(tail -n 1 "$cli_out")
say "ready"
echo "$bin:$node_bin"
