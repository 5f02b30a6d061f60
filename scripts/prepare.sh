#!/usr/bin/env bash
# Everything the demo and the tests need on a fresh machine: Node packages, the build, the rig
# (Debian packages, libvirtd, QEMU guests, sshd on 127.0.0.1:2222) and the Pulumi CLI.
# Prints, as its last line, a PATH prefix: the folder holding the pulumi binary and its plugins,
# then the one holding node (Node.js 24 from the cache when the machine's is older than 22).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
say() { printf '[prepare %4ss] %s\n' "$((SECONDS - start))" "$*" >&2; }

# First: npm ci, the build, mocha, the CLI's language host and the dynamic provider all run on it.
node_bin=$(bash scripts/node-toolchain.sh | tail -n 1)
export PATH="$node_bin:$PATH"
say "node $(node --version)"

# The CLI build (minutes on a fresh machine: module download, then compile) overlaps the steps
# below; niced, so the guests booting under TCG keep the CPU they need to meet their bounds.
cli_out=$(mktemp) cli_log=$(mktemp)
trap 'rm -f "$cli_out" "$cli_log"' EXIT
say "pulumi CLI (in the background)"
nice -n 19 bash tools/pulumi-cli/build.sh >"$cli_out" 2>"$cli_log" &
cli_pid=$!

if [ ! -d node_modules/@pulumi/pulumi ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
fi
# The root Pulumi.yaml (examples/quickstart) imports this package by name, as users do, and the
# engine's dynamic-provider process require()s `pulumi-libvirt-live/provider` from the project
# folder: a self-link resolves both to this checkout's build (npm ci removes it, so every run).
ln -sfn .. node_modules/pulumi-libvirt-live
say "tsc build"
npx tsc -p tsconfig.json >&2
say "rig up"
bash rig/up.sh >&2
say "waiting for the pulumi CLI"
cli_status=0
wait "$cli_pid" || cli_status=$?
grep -v '^go: downloading' "$cli_log" >&2 || true
[ "$cli_status" = 0 ] || { say "ERROR: tools/pulumi-cli/build.sh failed (exit $cli_status); its output is above"; exit 1; }
bin=$(tail -n 1 "$cli_out")
say "ready"
echo "$bin:$node_bin"
