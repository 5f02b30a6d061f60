#!/usr/bin/env bash
# Builds the Pulumi CLI (pinned below) from the Go module proxy into a cache folder, once, and
# writes beside it the dynamic-provider plugin `pulumi-resource-pulumi-nodejs` and the project's
# Node language host `pulumi-language-nodejs` (tools/pulumi-language-nodejs).
#
#   PATH="$(tools/pulumi-cli/build.sh | tail -1):$PATH"
#
# The last line on stdout is the bin folder; progress goes to stderr. Idempotent: when the binary
# is already in the cache nothing is built. The module graph is pinned by go.mod/go.sum beside this
# script (-mod=readonly), so a clean clone needs only the Go toolchain and the module proxy.
#
# Environment:
#   PLL_CACHE_DIR          cache root (default: $HOME/.cache/pulumi-libvirt-live)
#   PLL_PULUMI_REBUILD=1   build again even if the binary exists
set -euo pipefail

PULUMI_VERSION=v3.274.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${PLL_CACHE_DIR:-$HOME/.cache/pulumi-libvirt-live}"
BIN_DIR="$CACHE_ROOT/pulumi-$PULUMI_VERSION"
START=$SECONDS

log() { printf '[pulumi-cli %4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }

# Reads the stderr of `go build -v` and shows how far the build is: modules fetched (go's
# "go: downloading" lines), packages compiled (-v names each), elapsed time. On a terminal one
# updating line, otherwise (a log) a plain line every 10 s; whatever else go prints (errors) passes.
go_progress() { # WHAT
  local mods=0 pkgs=0 line msg tty= next=$((SECONDS + 10))
  [ -t 2 ] && tty=1
  while :; do
    if IFS= read -r -t 1 line; then
      case $line in
        "go: downloading "*) mods=$((mods + 1)) ;;
        ""|*" "*) [ -z "$tty" ] || printf '\r\033[K' >&2; printf '%s\n' "$line" >&2 ;;
        *) pkgs=$((pkgs + 1)) ;;
      esac
    elif (( $? <= 128 )); then
      break   # end of go's output (a timeout is > 128)
    fi
    printf -v msg '[pulumi-cli %4ss] %s: %d modules fetched, %d packages compiled' "$((SECONDS - START))" "$1" "$mods" "$pkgs"
    if [ -n "$tty" ]; then
      printf '\r%s\033[K' "$msg" >&2
    elif (( SECONDS >= next )); then
      printf '%s\n' "$msg" >&2; next=$((SECONDS + 10))
    fi
  done
  [ -n "$tty" ] && printf '\n' >&2 || printf '%s\n' "$msg" >&2
}

mkdir -p "$BIN_DIR"

# One build at a time per cache folder (parallel test workers may all call this script).
exec 9>"$BIN_DIR/.lock"
flock 9

cli_ok() {
  [ -x "$BIN_DIR/pulumi" ] && [ "$("$BIN_DIR/pulumi" version 2>/dev/null)" = "$PULUMI_VERSION" ]
}

if [ "${PLL_PULUMI_REBUILD:-}" != "1" ] && cli_ok; then
  log "pulumi $PULUMI_VERSION already built: $BIN_DIR/pulumi"
else
  command -v go >/dev/null || { log "error: go is not on PATH (needed to build the Pulumi CLI)"; exit 1; }
  log "building pulumi $PULUMI_VERSION with $(go version | awk '{print $3}') (first time: module download + compile, several minutes)"
  tmp="$(mktemp "$BIN_DIR/.pulumi.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  (
    cd "$HERE"
    GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" \
      go build -v -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-w -s -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  ) 2>&1 | go_progress "pulumi $PULUMI_VERSION"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DIR/pulumi"
  trap - EXIT
  cli_ok || { log "error: built binary does not report $PULUMI_VERSION"; exit 1; }
  log "built $BIN_DIR/pulumi"
fi

# The dynamic-provider plugin, as in Pulumi's own distribution (sdk/nodejs/dist), but with "$@" and
# an error when nothing resolves. The engine starts it in the project folder (plain CLI) or, for an
# Automation API inline program, in the current folder of the process that called the Automation
# API (not the workspace's workDir): node resolves @pulumi/pulumi, and the dynamic provider every
# package that a provider method require()s, from there.
write_if_changed() { # path, mode; content on stdin
  local new
  new="$(cat)"
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$new" ]; then
    printf '%s\n' "$new" >"$1.tmp.$$"
    chmod "$2" "$1.tmp.$$"
    mv -f "$1.tmp.$$" "$1"
    log "wrote $1"
  fi
}

write_if_changed "$BIN_DIR/pulumi-resource-pulumi-nodejs" 0755 <<'EOF'
#!/bin/sh
# Pulumi dynamic-provider plugin: runs @pulumi/pulumi/cmd/dynamic-provider as resolved from the
# current folder (the engine starts plugins in the program's folder).
# Written by tools/pulumi-cli/build.sh.
script=$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || {
    echo "pulumi-resource-pulumi-nodejs: cannot resolve @pulumi/pulumi/cmd/dynamic-provider from $(pwd)" >&2
    exit 1
}
exec node "$script" "$@"
EOF

# The Node language host `pulumi-language-nodejs`, for `pulumi up` in a folder whose Pulumi.yaml
# says `runtime: nodejs` (the Automation API with an inline program does without it). Pulumi's own
# host is not served by the module proxy, so this is the project's stand-in in
# tools/pulumi-language-nodejs; rebuilt when its sources change.
LH_SRC="$HERE/../pulumi-language-nodejs"
lh_sum="$(cd "$LH_SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
if [ -x "$BIN_DIR/pulumi-language-nodejs" ] && [ "$(cat "$BIN_DIR/.pulumi-language-nodejs.sum" 2>/dev/null)" = "$lh_sum" ] \
  && [ "${PLL_PULUMI_REBUILD:-}" != "1" ]; then
  log "pulumi-language-nodejs already built"
else
  command -v go >/dev/null || { log "error: go is not on PATH (needed to build pulumi-language-nodejs)"; exit 1; }
  log "building pulumi-language-nodejs (project stand-in, $lh_sum)"
  tmp="$(mktemp "$BIN_DIR/.pulumi-language-nodejs.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  (
    cd "$LH_SRC"
    GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" \
      go build -v -trimpath -ldflags "-w -s -X main.Version=${PULUMI_VERSION#v}" -o "$tmp" .
  ) 2>&1 | go_progress pulumi-language-nodejs
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DIR/pulumi-language-nodejs"
  trap - EXIT
  echo "$lh_sum" >"$BIN_DIR/.pulumi-language-nodejs.sum"
  log "built $BIN_DIR/pulumi-language-nodejs"
fi

log "ready: $BIN_DIR"
echo "$BIN_DIR"
