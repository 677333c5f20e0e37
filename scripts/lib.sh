#!/usr/bin/env bash
# Shared helpers for sigstack's scripts: step logging and idempotent installers.
# Everything installed lives under $SIGSTACK_CACHE (default ~/.cache/sigstack) or comes from apt,
# so the first run installs and later runs on the same machine reuse it.

set -euo pipefail

SIGSTACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIGSTACK_CACHE=${SIGSTACK_CACHE:-$HOME/.cache/sigstack}
COSIGN_V2_VERSION=${COSIGN_V2_VERSION:-v2.6.5}
COSIGN_V3_VERSION=${COSIGN_V3_VERSION:-v3.1.3}
SIGSTORE_PYTHON_SPEC=${SIGSTORE_PYTHON_SPEC:-sigstore>=4.5,<5}
export SIGSTACK_ROOT SIGSTACK_CACHE
mkdir -p "$SIGSTACK_CACHE/bin" "$SIGSTACK_CACHE/logs"

if [ -t 1 ]; then BOLD=$'\e[1m'; GREEN=$'\e[32m'; RED=$'\e[31m'; RESET=$'\e[0m'; else BOLD=; GREEN=; RED=; RESET=; fi

step() { printf '%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
ok() { printf '%s  ok%s %s\n' "$GREEN" "$RESET" "$*"; }
die() { printf '%sERROR:%s %s\n' "$RED" "$RESET" "$*" >&2; exit 1; }

# Runs a long command with its output in a log file, printing a dot every 10 s so a person sees progress.
run_logged() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  local pid=$! start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    kill -0 "$pid" 2>/dev/null && printf '    ... still working (%ss, log: %s)\n' "$((SECONDS - start))" "$log"
  done
  wait "$pid" || { tail -n 30 "$log" >&2; die "failed: $* (full log: $log)"; }
}

APT_UPDATED=0
ensure_apt() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "need Debian packages ${missing[*]} but apt-get is not available"
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  step "Installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then run_logged "$SIGSTACK_CACHE/logs/apt-update.log" $sudo apt-get update; APT_UPDATED=1; fi
  run_logged "$SIGSTACK_CACHE/logs/apt-install.log" env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
}

# sigstore-python (and spdx-tools, the reference SPDX validator) in a venv the scripts own.
ensure_python_tools() {
  local venv=$SIGSTACK_CACHE/venv stamp=$SIGSTACK_CACHE/venv/.sigstack-stamp
  local want="$SIGSTORE_PYTHON_SPEC spdx-tools"
  if [ -x "$venv/bin/sigstore" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 not found"
  step "Installing sigstore-python and spdx-tools into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  run_logged "$SIGSTACK_CACHE/logs/pip.log" "$venv/bin/pip" install --disable-pip-version-check "$SIGSTORE_PYTHON_SPEC" spdx-tools
  echo "$want" >"$stamp"
  ok "$("$venv/bin/sigstore" --version 2>&1)"
}

# cosign built from source with `go install` (a module without replace directives), cached per version.
ensure_cosign() {
  local major=$1 version module bin
  case "$major" in
    v2) version=$COSIGN_V2_VERSION; module=github.com/sigstore/cosign/v2/cmd/cosign ;;
    v3) version=$COSIGN_V3_VERSION; module=github.com/sigstore/cosign/v3/cmd/cosign ;;
    *) die "unknown cosign major version $major" ;;
  esac
  bin=$SIGSTACK_CACHE/bin/cosign-$version
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || die "go not found: needed to build cosign $version"
  step "Building cosign $version with go install (a few minutes on first use; cached in $SIGSTACK_CACHE/bin)"
  local gobin; gobin=$(mktemp -d)
  run_logged "$SIGSTACK_CACHE/logs/cosign-$version.log" env GOBIN="$gobin" go install "$module@$version"
  mv "$gobin/cosign" "$bin"; rmdir "$gobin"
  ok "$("$bin" version 2>/dev/null | grep -m1 GitVersion || echo "cosign $version")"
}

# sigstore-js (the `sigstore` library and the @sigstore/cli CLI) in a prefix the scripts own. Pinned
# to versions that run on Node 20 (the newest @sigstore/cli needs Node 22).
SIGSTORE_JS_PACKAGES=${SIGSTORE_JS_PACKAGES:-"@sigstore/cli@0.8.1 sigstore@4.1.1 @sigstore/mock@0.12.1"}
ensure_node_tools() {
  local prefix=$SIGSTACK_CACHE/node stamp=$SIGSTACK_CACHE/node/.sigstack-stamp
  if [ -x "$prefix/node_modules/.bin/sigstore" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$SIGSTORE_JS_PACKAGES" ]; then return 0; fi
  command -v npm >/dev/null || die "npm not found: needed for sigstore-js"
  step "Installing sigstore-js ($SIGSTORE_JS_PACKAGES) into $prefix"
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"name": "sigstack-clients", "private": true}' >"$prefix/package.json"
  # shellcheck disable=SC2086 # the package list is words on purpose
  run_logged "$SIGSTACK_CACHE/logs/npm.log" npm install --prefix "$prefix" --no-audit --no-fund $SIGSTORE_JS_PACKAGES
  echo "$SIGSTORE_JS_PACKAGES" >"$stamp"
  ok "sigstore-js: $("$prefix/node_modules/.bin/sigstore" --version 2>&1 | head -1)"
}

cosign_bin() { case "$1" in v2) echo "$SIGSTACK_CACHE/bin/cosign-$COSIGN_V2_VERSION" ;; v3) echo "$SIGSTACK_CACHE/bin/cosign-$COSIGN_V3_VERSION" ;; esac; }

# Builds the sigstack binary (debug unless PROFILE=release) and prints its path.
build_sigstack() {
  local profile=${PROFILE:-debug} flag=
  [ "$profile" = release ] && flag=--release
  (cd "$SIGSTACK_ROOT" && cargo build --quiet $flag -p sigstack) >&2
  echo "$SIGSTACK_ROOT/target/$profile/sigstack"
}

# Waits until `sigstack up` has written DIR/stack.json for the given pid.
wait_for_stack() {
  local dir=$1 pid=$2
  for _ in $(seq 1 300); do
    if [ -f "$dir/stack.json" ] && grep -q "\"pid\": $pid" "$dir/stack.json"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || die "sigstack up exited before it was ready"
    sleep 0.1
  done
  die "sigstack up did not become ready within 30 s"
}
