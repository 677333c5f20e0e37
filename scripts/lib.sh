#!/usr/bin/env bash
# Shared helpers for sigstack's scripts: step logging and idempotent installers.
# Everything installed lives under $SIGSTACK_CACHE (default ~/.cache/sigstack) or comes from apt,
# so the first run installs and later runs on the same machine reuse it.

set -euo pipefail

SIGSTACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIGSTACK_CACHE=${SIGSTACK_CACHE:-$HOME/.cache/sigstack}
COSIGN_V2_VERSION=${COSIGN_V2_VERSION:-v2.6.5}
COSIGN_V3_VERSION=${COSIGN_V3_VERSION:-v3.1.3}
REKOR_CLI_VERSION=${REKOR_CLI_VERSION:-v1.5.4}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}
SIGSTORE_GO_VERSION=${SIGSTORE_GO_VERSION:-v1.3.0}
TIMESTAMP_AUTHORITY_VERSION=${TIMESTAMP_AUTHORITY_VERSION:-v2.1.3}
FULCIO_VERSION=${FULCIO_VERSION:-v1.8.8}
# rekor-tiles v2.4.x needs fulcio v1.9.x, which the Go proxy serving this machine refuses (403,
# checked 2026-12-06); v2.3.0 builds with the Go here and is the release whose refusal of DSSE
# entries sigstack's v2 log follows.
REKOR_TILES_VERSION=${REKOR_TILES_VERSION:-v2.3.0}
# The real Rekor v1: rekor-server and the Trillian log server and signer it needs (the version its
# go.mod requires), on Debian's MariaDB.
REKOR_V1_VERSION=${REKOR_V1_VERSION:-v1.5.4}
TRILLIAN_VERSION=${TRILLIAN_VERSION:-v1.7.3}
# Container images (issue #15). The base is what the Dockerfile expects elsewhere
# (debian:bookworm-slim); here it is made from Debian packages, so its name says so.
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
SIGSTACK_BASE_IMAGE=${SIGSTACK_BASE_IMAGE:-sigstack/debian:$DEBIAN_SUITE-minbase}
SIGSTACK_IMAGE=${SIGSTACK_IMAGE:-sigstack:dev}
SIGSTACK_REGISTRY_IMAGE=${SIGSTACK_REGISTRY_IMAGE:-sigstack/docker-registry:$DEBIAN_SUITE}
export SIGSTACK_ROOT SIGSTACK_CACHE
mkdir -p "$SIGSTACK_CACHE/bin" "$SIGSTACK_CACHE/logs"

# Build outputs live under the cache too (issue 25), so a second clone of the project, and CI's
# fresh clone of a change, rebuild only what changed: Cargo's fingerprints and Go's build cache
# decide. A user's own CARGO_TARGET_DIR, GOCACHE or GOMODCACHE wins.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$SIGSTACK_CACHE/target}
export GOCACHE=${GOCACHE:-$SIGSTACK_CACHE/go/build}
export GOMODCACHE=${GOMODCACHE:-$SIGSTACK_CACHE/go/mod}

if [ -t 1 ]; then BOLD=$'\e[1m'; GREEN=$'\e[32m'; RED=$'\e[31m'; RESET=$'\e[0m'; else BOLD=; GREEN=; RED=; RESET=; fi

step() { printf '%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
ok() { printf '%s  ok%s %s\n' "$GREEN" "$RESET" "$*"; }
die() { printf '%sERROR:%s %s\n' "$RED" "$RESET" "$*" >&2; exit 1; }

# Phase timings (issue 25): phase_start NAME ... phase_end appends "NAME<TAB>seconds" to
# $SIGSTACK_PHASES_FILE when a script set it (test.sh does, and prints them at the end). Phases
# nest; each records its own span. Works in subshells: the file is the only shared state.
PHASE_NAMES=(); PHASE_STARTS=()
phase_start() { PHASE_NAMES+=("$1"); PHASE_STARTS+=("$SECONDS"); }
phase_end() {
  local last=$((${#PHASE_NAMES[@]} - 1))
  [ "$last" -ge 0 ] || return 0
  if [ -n "${SIGSTACK_PHASES_FILE:-}" ]; then
    printf '%s\t%s\n' "${PHASE_NAMES[$last]}" "$((SECONDS - PHASE_STARTS[last]))" >>"$SIGSTACK_PHASES_FILE"
  fi
  unset "PHASE_NAMES[$last]" "PHASE_STARTS[$last]"
}
# Prints the recorded phases as a table, longest first, with the total wall time $1 (seconds).
print_phases() {
  local total=$1
  [ -s "${SIGSTACK_PHASES_FILE:-}" ] || return 0
  step "Where the time went (wall clock; phases inside others are counted in both)"
  sort -t $'\t' -k2,2nr "$SIGSTACK_PHASES_FILE" | awk -F '\t' '{ printf "  %6ds  %s\n", $2, $1 }'
  printf '  %6ds  %s\n' "$total" "in all"
}

# Runs a long command with its output in a log file, printing a progress line every 10 s (on
# stderr, so it never mixes with a result on stdout). With PROGRESS_PATTERN set, the line also
# counts the log lines matching it (e.g. crates compiled so far).
run_logged() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  local pid=$! start=$SECONDS count=
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10 & wait $!
    if kill -0 "$pid" 2>/dev/null; then
      [ -n "${PROGRESS_PATTERN:-}" ] && count=", $(grep -c -E "$PROGRESS_PATTERN" "$log" 2>/dev/null) ${PROGRESS_NOUN:-done}"
      printf '    ... still working (%ss%s; log: %s)\n' "$((SECONDS - start))" "$count" "$log" >&2
    fi
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
  phase_start "apt-get install ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then run_logged "$SIGSTACK_CACHE/logs/apt-update.log" $sudo apt-get update; APT_UPDATED=1; fi
  run_logged "$SIGSTACK_CACHE/logs/apt-install.log" env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  phase_end
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
}

# The toolchains the scripts cannot install (Debian's own Rust and Go are too old). Minimums:
# Rust is the workspace's rust-version; Go is what cosign v3 and Kyverno's go.mod require.
RUST_MIN=1.90
GO_MIN=1.26.6
PYTHON_MIN=3.10
NODE_MIN=20

# $1 >= $2, as versions.
version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Checks the prerequisites named (rust python go node), and the Debian basics, and names every
# one that is missing or too old in one message, with where to get it.
check_prerequisites() {
  local problems=() have
  for need in "$@"; do
    case "$need" in
      rust)
        have=$(rustc --version 2>/dev/null | awk '{print $2}')
        if [ -z "$have" ] || ! command -v cargo >/dev/null; then problems+=("Rust >= $RUST_MIN with cargo (https://rustup.rs)")
        elif ! version_at_least "$have" "$RUST_MIN"; then problems+=("Rust >= $RUST_MIN (found $have; rustup update)"); fi ;;
      go)
        have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
        if [ -z "$have" ]; then problems+=("Go >= $GO_MIN (https://go.dev/dl; it builds cosign, rekor-cli, Kubernetes and Kyverno)")
        elif ! version_at_least "$have" "$GO_MIN"; then problems+=("Go >= $GO_MIN (found $have)"); fi ;;
      python)
        have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
        if [ -z "$have" ]; then problems+=("Python >= $PYTHON_MIN (python3)")
        elif ! version_at_least "$have" "$PYTHON_MIN"; then problems+=("Python >= $PYTHON_MIN (found $have)")
        elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then problems+=("python3's venv module with ensurepip (apt-get install python3-venv)"); fi ;;
      node)
        have=$(node --version 2>/dev/null | sed 's/^v//')
        if [ -z "$have" ] || ! command -v npm >/dev/null; then problems+=("Node.js >= $NODE_MIN with npm (https://nodejs.org)")
        elif ! version_at_least "$have" "$NODE_MIN"; then problems+=("Node.js >= $NODE_MIN (found $have)"); fi ;;
    esac
  done
  for tool in curl openssl; do command -v "$tool" >/dev/null || problems+=("$tool (apt-get install $tool)"); done
  command -v apt-get >/dev/null || command -v docker-registry >/dev/null || problems+=("apt-get (a Debian or Ubuntu system), or docker-registry and skopeo installed by hand")
  if [ ${#problems[@]} -gt 0 ]; then
    printf '%sERROR:%s missing prerequisites; install these, then run again:\n' "$RED" "$RESET" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    exit 1
  fi
}

# sigstore-python (and spdx-tools, the reference SPDX validator) in a venv the scripts own, from
# scripts/python/requirements.txt: every package pinned with its hashes (pip --require-hashes).
# To update: edit requirements.in, then in a venv with pip-tools:
#   pip-compile --generate-hashes --allow-unsafe -o requirements.txt requirements.in
ensure_python_tools() {
  local venv=$SIGSTACK_CACHE/venv stamp=$SIGSTACK_CACHE/venv/.sigstack-stamp
  local lock=$SIGSTACK_ROOT/scripts/python/requirements.txt want
  want=$(sha256sum "$lock" | cut -c1-64)
  if [ -x "$venv/bin/sigstore" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 not found"
  step "Installing sigstore-python and spdx-tools into $venv (pinned, hashes checked)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  phase_start "pip install sigstore-python, spdx-tools"
  run_logged "$SIGSTACK_CACHE/logs/pip.log" "$venv/bin/pip" install --disable-pip-version-check --require-hashes -r "$lock"
  phase_end
  echo "$want" >"$stamp"
  ok "$("$venv/bin/sigstore" --version 2>&1)"
}

# Go tools (issue 25): each is looked for before it is built. In order: the variable that names
# it (SIGSTACK_COSIGN_V3=/usr/local/bin/cosign, ...), the same command on PATH when it reports the
# pinned version, else our own build cached under $SIGSTACK_CACHE/bin by version. Builds are
# stripped (-trimpath -s -w): nothing here debugs them, and they are a third smaller.
GO_BUILD_FLAGS=(-trimpath -ldflags=-s\ -w)

# Prints the tool to use: $1 variable, $2 command on PATH, $3 pinned version, $4 our cached
# build; the rest is the command's version subcommand.
resolve_tool() {
  local var=$1 cmd=$2 version=$3 cached=$4 found; shift 4
  if [ -n "${!var:-}" ]; then echo "${!var}"; return 0; fi
  if [ ! -x "$cached" ] && found=$(command -v "$cmd" 2>/dev/null) \
    && "$found" "$@" 2>&1 | grep -qwF -- "${version#v}"; then
    echo "$found"; return 0
  fi
  echo "$cached"
}

# The variable that names a tool must name something that runs: a wrong path fails here, once.
check_named_tool() {
  local var=$1 path=$2
  [ -n "${!var:-}" ] || return 0
  [ -e "$path" ] || die "$var=$path does not exist (unset it to let the scripts build the tool)"
}

# A tool built with `go install PACKAGE@VERSION` (no replace directives) into $4, the cached path.
# $5: the binary go install writes, when it is not NAME.
go_install_into() {
  local name=$1 version=$2 package=$3 bin=$4 built=${5:-$1}
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || die "go not found: needed to build $name $version"
  step "Building $name $version with go install (a few minutes on first use; cached in $SIGSTACK_CACHE/bin)"
  local gobin; gobin=$(mktemp -d)
  phase_start "build $name $version"
  run_logged "$SIGSTACK_CACHE/logs/$name-$version.log" env GOBIN="$gobin" go install "${GO_BUILD_FLAGS[@]}" "$package@$version"
  phase_end
  mv "$gobin/$built" "$bin"; rm -rf "$gobin"
  ok "$name $version"
}

cosign_version() { case "$1" in v2) echo "$COSIGN_V2_VERSION" ;; v3) echo "$COSIGN_V3_VERSION" ;; *) die "unknown cosign major version $1" ;; esac; }
cosign_bin() {
  local version; version=$(cosign_version "$1")
  resolve_tool "SIGSTACK_COSIGN_${1^^}" cosign "$version" "$SIGSTACK_CACHE/bin/cosign-$version" version
}
ensure_cosign() {
  local major=$1 version bin; version=$(cosign_version "$major"); bin=$(cosign_bin "$major")
  check_named_tool "SIGSTACK_COSIGN_${major^^}" "$bin"
  go_install_into cosign "$version" "github.com/sigstore/cosign/$major/cmd/cosign" "$bin"
}

# sigstore-js (the `sigstore` library and the @sigstore/cli CLI) in a prefix the scripts own, with
# `npm ci` from scripts/node/package-lock.json (every package pinned with its integrity hash).
# Pinned to versions that run on Node 20 (the newest @sigstore/cli needs Node 22). playwright-core
# drives Debian's Chromium in the explorer's browser test (no browser download). To update: edit
# scripts/node/package.json, then `npm install --package-lock-only` there.
ensure_node_tools() {
  local prefix=$SIGSTACK_CACHE/node stamp=$SIGSTACK_CACHE/node/.sigstack-stamp source=$SIGSTACK_ROOT/scripts/node want
  want=$(cat "$source/package.json" "$source/package-lock.json" | sha256sum | cut -c1-64)
  if [ -x "$prefix/node_modules/.bin/sigstore" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v npm >/dev/null || die "npm not found: needed for sigstore-js"
  step "Installing sigstore-js and playwright-core into $prefix (npm ci, from the lockfile)"
  mkdir -p "$prefix"
  cp "$source/package.json" "$source/package-lock.json" "$prefix/"
  phase_start "npm ci sigstore-js, playwright-core"
  run_logged "$SIGSTACK_CACHE/logs/npm.log" npm ci --prefix "$prefix" --no-audit --no-fund
  phase_end
  echo "$want" >"$stamp"
  ok "sigstore-js: $("$prefix/node_modules/.bin/sigstore" --version 2>&1 | head -1)"
}

# rekor-cli, Rekor's own client, as a test peer of the log.
rekor_cli_bin() { resolve_tool SIGSTACK_REKOR_CLI rekor-cli "$REKOR_CLI_VERSION" "$SIGSTACK_CACHE/bin/rekor-cli-$REKOR_CLI_VERSION" version; }
ensure_rekor_cli() {
  check_named_tool SIGSTACK_REKOR_CLI "$(rekor_cli_bin)"
  go_install_into rekor-cli "$REKOR_CLI_VERSION" github.com/sigstore/rekor/cmd/rekor-cli "$(rekor_cli_bin)"
}

# actionlint, the linter of GitHub workflows and actions.
actionlint_bin() { resolve_tool SIGSTACK_ACTIONLINT actionlint "$ACTIONLINT_VERSION" "$SIGSTACK_CACHE/bin/actionlint-$ACTIONLINT_VERSION" --version; }
ensure_actionlint() {
  check_named_tool SIGSTACK_ACTIONLINT "$(actionlint_bin)"
  go_install_into actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint "$(actionlint_bin)"
}

# sigstore-go's sigstore-conformance client (sign-bundle / verify-bundle): sigstore-go as a judge.
# Nobody has it on PATH, so only the variable or our build.
sigstore_go_bin() { echo "${SIGSTACK_SIGSTORE_GO:-$SIGSTACK_CACHE/bin/sigstore-go-conformance-$SIGSTORE_GO_VERSION}"; }
ensure_sigstore_go() {
  check_named_tool SIGSTACK_SIGSTORE_GO "$(sigstore_go_bin)"
  go_install_into sigstore-go-conformance "$SIGSTORE_GO_VERSION" github.com/sigstore/sigstore-go/test/conformance "$(sigstore_go_bin)" conformance
}

# sigstore/timestamp-authority's server: the real TSA, run beside sigstack's on the same requests
# (issue 29). Nobody has it on PATH, so only the variable or our build.
timestamp_server_bin() { echo "${SIGSTACK_TIMESTAMP_SERVER:-$SIGSTACK_CACHE/bin/timestamp-server-$TIMESTAMP_AUTHORITY_VERSION}"; }
ensure_timestamp_server() {
  check_named_tool SIGSTACK_TIMESTAMP_SERVER "$(timestamp_server_bin)"
  go_install_into timestamp-server "$TIMESTAMP_AUTHORITY_VERSION" \
    github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server "$(timestamp_server_bin)"
}

# sigstore/fulcio: the real CA, run beside sigstack's on the same requests (issue 29).
fulcio_bin() { echo "${SIGSTACK_FULCIO:-$SIGSTACK_CACHE/bin/fulcio-$FULCIO_VERSION}"; }
ensure_fulcio() {
  check_named_tool SIGSTACK_FULCIO "$(fulcio_bin)"
  go_install_into fulcio "$FULCIO_VERSION" github.com/sigstore/fulcio "$(fulcio_bin)"
}

# sigstore/rekor-tiles' server with its POSIX backend: the real Rekor v2, run beside sigstack's.
rekor_tiles_bin() { echo "${SIGSTACK_REKOR_TILES:-$SIGSTACK_CACHE/bin/rekor-tiles-posix-$REKOR_TILES_VERSION}"; }
ensure_rekor_tiles() {
  check_named_tool SIGSTACK_REKOR_TILES "$(rekor_tiles_bin)"
  go_install_into rekor-tiles-posix "$REKOR_TILES_VERSION" \
    github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix "$(rekor_tiles_bin)" posix
}

# sigstore/rekor's server (Rekor v1) with Trillian's log server and signer and Trillian's MySQL
# schema, in one directory; the database is Debian's MariaDB (only its server, no service).
rekor_v1_dir() { echo "${SIGSTACK_REKOR_V1:-$SIGSTACK_CACHE/bin/rekor-v1-$REKOR_V1_VERSION-trillian-$TRILLIAN_VERSION}"; }
ensure_rekor_v1() {
  local dir; dir=$(rekor_v1_dir)
  check_named_tool SIGSTACK_REKOR_V1 "$dir"
  ensure_apt mariadb-server-core
  [ -f "$dir/.complete" ] && return 0
  command -v go >/dev/null || die "go not found: needed to build rekor-server $REKOR_V1_VERSION and Trillian $TRILLIAN_VERSION"
  step "Building rekor-server $REKOR_V1_VERSION and Trillian $TRILLIAN_VERSION's log server and signer (a few minutes on first use; cached in $dir)"
  local gobin; gobin=$(mktemp -d)
  phase_start "build rekor-server $REKOR_V1_VERSION and Trillian $TRILLIAN_VERSION"
  run_logged "$SIGSTACK_CACHE/logs/rekor-v1-$REKOR_V1_VERSION.log" env GOBIN="$gobin" go install "${GO_BUILD_FLAGS[@]}" \
    "github.com/sigstore/rekor/cmd/rekor-server@$REKOR_V1_VERSION"
  run_logged "$SIGSTACK_CACHE/logs/trillian-$TRILLIAN_VERSION.log" env GOBIN="$gobin" go install "${GO_BUILD_FLAGS[@]}" \
    "github.com/google/trillian/cmd/trillian_log_server@$TRILLIAN_VERSION" \
    "github.com/google/trillian/cmd/trillian_log_signer@$TRILLIAN_VERSION"
  phase_end
  cp "$(go env GOMODCACHE)/github.com/google/trillian@$TRILLIAN_VERSION/storage/mysql/schema/storage.sql" "$gobin/trillian-storage.sql"
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"; mv "$gobin" "$dir"; chmod 755 "$dir"; touch "$dir/.complete"
  ok "rekor-server $REKOR_V1_VERSION, Trillian $TRILLIAN_VERSION"
}

# Builds the sigstack binary (debug unless PROFILE=release) and prints its path. The first build
# compiles a few hundred crates (several minutes on two cores): cargo's own progress shows it.
build_sigstack() {
  local profile=${PROFILE:-debug} flag='' bin
  [ "$profile" = release ] && flag=--release
  bin=${CARGO_TARGET_DIR:-$SIGSTACK_ROOT/target}/$profile/sigstack
  [ -x "$bin" ] || printf '    first build: compiling sigstack and about 350 crates it depends on takes several minutes on two cores\n' >&2
  # shellcheck disable=SC2086 # $flag is empty or one word
  PROGRESS_PATTERN='^ *Compiling ' PROGRESS_NOUN='crates compiled' \
    run_logged "$SIGSTACK_CACHE/logs/cargo-build-sigstack.log" cargo build --manifest-path "$SIGSTACK_ROOT/Cargo.toml" $flag -p sigstack
  echo "$bin"
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

# Go tools built from a module of ours under scripts/tools/<name> (its go.mod pins the versions;
# this is the one place they are written). Binaries are cached under
# $SIGSTACK_CACHE/bin/<name>-<version>-<hash of the module's files>, so a change to the module
# rebuilds and an unchanged one starts in no time.
go_tool_cache_dir() {
  local name=$1 module_dir=$SIGSTACK_ROOT/scripts/tools/$1 version hash
  version=$(go_tool_version "$name")
  hash=$(cd "$module_dir" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
  echo "$SIGSTACK_CACHE/bin/$name-$version-$hash"
}

go_tool_var() { case "$1" in kube) echo SIGSTACK_KUBE_BIN ;; kyverno) echo SIGSTACK_KYVERNO_BIN ;; esac; }

# Prints the directory holding a tool module's binaries: the one its variable names
# (SIGSTACK_KUBE_BIN, SIGSTACK_KYVERNO_BIN), else for kube the binaries on PATH when all three
# report the pinned versions, else our cached build.
go_tool_dir() {
  local name=$1 var; var=$(go_tool_var "$name")
  if [ -n "${!var:-}" ]; then echo "${!var}"; return 0; fi
  local cached; cached=$(go_tool_cache_dir "$name")
  if [ "$name" = kube ] && [ ! -f "$cached/.complete" ] && kube_on_path "$cached"; then return 0; fi
  echo "$cached"
}

# kube-apiserver, kubectl and etcd already on PATH at the versions scripts/tools/kube pins: links
# to them in a directory of their own (the layout `sigstack cluster` reads), printed.
kube_on_path() {
  local kube_version etcd_version dir apiserver kubectl etcd
  kube_version=$(go_tool_version kube)
  etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$SIGSTACK_ROOT/scripts/tools/kube/go.mod")
  apiserver=$(command -v kube-apiserver 2>/dev/null) && kubectl=$(command -v kubectl 2>/dev/null) \
    && etcd=$(command -v etcd 2>/dev/null) || return 1
  "$apiserver" --version 2>&1 | grep -qwF -- "$kube_version" || return 1
  "$kubectl" version --client 2>&1 | grep -qwF -- "$kube_version" || return 1
  "$etcd" --version 2>&1 | grep -qwF -- "${etcd_version#v}" || return 1
  dir=$SIGSTACK_CACHE/bin/kube-path-$kube_version
  mkdir -p "$dir"
  ln -sf "$apiserver" "$dir/kube-apiserver"; ln -sf "$kubectl" "$dir/kubectl"; ln -sf "$etcd" "$dir/etcd"
  touch "$dir/.complete"
  echo "$dir"
}

# The version a tool module builds: the version of its main requirement.
go_tool_version() {
  local module
  case "$1" in kube) module=k8s.io/kubernetes ;; kyverno) module=github.com/kyverno/kyverno ;; esac
  awk -v m="$module" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$SIGSTACK_ROOT/scripts/tools/$1/go.mod"
}

# Builds the packages of scripts/tools/<name> into their cache directory unless a directory is
# already there. One `go build` for all of them, so the packages they share compile once.
# $1: tool module; $2: what it takes (for the message); $3: extra -ldflags; the rest: packages.
ensure_go_tool() {
  local name=$1 cost=$2 ldflags=$3; shift 3
  local dir var; dir=$(go_tool_dir "$name"); var=$(go_tool_var "$name")
  if [ -n "${!var:-}" ]; then
    [ -d "$dir" ] || die "$var=$dir is not a directory (unset it to let the scripts build $name)"
    return 0
  fi
  [ -f "$dir/.complete" ] && return 0
  command -v go >/dev/null || die "go not found: needed to build $name ($(go_tool_version "$name"))"
  step "Building $name $(go_tool_version "$name") from the Go module proxy ($cost on two cores, first run only; cached in $dir)"
  local tmp; tmp=$(mktemp -d "$SIGSTACK_CACHE/bin/.build-$name-XXXXXX")
  printf '    building %s\n' "${*##*/}"
  phase_start "build $name $(go_tool_version "$name")"
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  run_logged "$SIGSTACK_CACHE/logs/build-$name.log" \
    sh -c 'dir=$1 out=$2 ldflags=$3; shift 3; cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@"' \
    _ "$SIGSTACK_ROOT/scripts/tools/$name" "$tmp" "$ldflags" "$@"
  phase_end
  if [ -n "${GO_TOOL_AFTER_BUILD:-}" ]; then "$GO_TOOL_AFTER_BUILD" "$tmp"; fi
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  ok "$name $(go_tool_version "$name") built into $dir"
}

# The real kube-apiserver, kubectl and etcd (issue #14).
ensure_kube() {
  local version minor; version=$(go_tool_version kube); minor=${version#v1.}; minor=${minor%%.*}
  # Stamped like a release build: kubectl and Kyverno read the server's version.
  local stamp=k8s.io/component-base/version
  ensure_go_tool kube "about 5 to 8 minutes" \
    "-X $stamp.gitVersion=$version -X $stamp.gitMajor=1 -X $stamp.gitMinor=$minor -X $stamp.gitTreeState=clean" \
    ./etcd ./kube-apiserver ./kubectl
}

# The real Kyverno admission controller and CLI (issue #14), with the CRDs of the same version
# (the controller refuses to start without them).
ensure_kyverno() {
  GO_TOOL_AFTER_BUILD=copy_kyverno_crds ensure_go_tool kyverno "about 5 to 8 minutes" "" \
    github.com/kyverno/kyverno/cmd/kyverno github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno
}
copy_kyverno_crds() {
  local source; source=$(cd "$SIGSTACK_ROOT/scripts/tools/kyverno" && go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)
  cp -r "$source/config/crds" "$1/crds" && chmod -R u+w "$1/crds"
}

# A Docker engine (issue #15): the one DOCKER_HOST or the default socket points at when it
# answers; otherwise Debian's dockerd started under $SIGSTACK_CACHE/docker the way this kind of
# machine allows (no iptables, no default bridge: containers use host or user-defined networks),
# with its images kept there for the next run. Exports DOCKER_HOST; stop_docker_engine stops
# only that engine of the scripts (SIGSTACK_OWN_DOCKERD), never a user's.
SIGSTACK_DOCKER_DIR=$SIGSTACK_CACHE/docker
ensure_docker_engine() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ok "Docker engine at ${DOCKER_HOST:-the default socket} ($(docker version --format '{{.Server.Version}}'))"
    return 0
  fi
  local own=unix://$SIGSTACK_DOCKER_DIR/docker.sock
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$own" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed); unset it to let the scripts start their own engine"
  fi
  ensure_apt docker.io
  export DOCKER_HOST=$own
  SIGSTACK_OWN_DOCKERD=1
  if docker info >/dev/null 2>&1; then ok "Docker engine of an earlier run at $DOCKER_HOST"; return 0; fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root: start Docker (or set DOCKER_HOST) and run again"
  step "Starting dockerd under $SIGSTACK_DOCKER_DIR"
  mkdir -p "$SIGSTACK_DOCKER_DIR/data" "$SIGSTACK_DOCKER_DIR/exec"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$SIGSTACK_DOCKER_DIR/data" --exec-root "$SIGSTACK_DOCKER_DIR/exec" \
    --pidfile "$SIGSTACK_DOCKER_DIR/dockerd.pid" -H "$own" >"$SIGSTACK_CACHE/logs/dockerd.log" 2>&1 </dev/null &
  local _
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then ok "dockerd $(docker version --format '{{.Server.Version}}') at $DOCKER_HOST"; return 0; fi
    sleep 0.5
  done
  tail -n 20 "$SIGSTACK_CACHE/logs/dockerd.log" >&2
  die "dockerd did not answer within 30 s (log: $SIGSTACK_CACHE/logs/dockerd.log)"
}

stop_docker_engine() {
  local pidfile=$SIGSTACK_DOCKER_DIR/dockerd.pid pid _
  [ "${SIGSTACK_OWN_DOCKERD:-0}" = 1 ] && [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

# The base image: a Debian root file system from debootstrap (Debian packages only, no image
# registry needed), imported once and kept in the engine.
ensure_base_image() {
  docker image inspect "$SIGSTACK_BASE_IMAGE" >/dev/null 2>&1 && return 0
  ensure_apt debootstrap
  step "Building the base image $SIGSTACK_BASE_IMAGE with debootstrap (about a minute, first run only)"
  local mirror rootfs
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  rootfs=$(mktemp -d "$SIGSTACK_DOCKER_DIR/rootfs-XXXXXX")
  phase_start "base image (debootstrap)"
  run_logged "$SIGSTACK_CACHE/logs/debootstrap.log" debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "${mirror:-http://deb.debian.org/debian}"
  # What debian:*-slim leaves out: downloaded packages, package lists, documentation.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$SIGSTACK_BASE_IMAGE" >/dev/null
  phase_end
  rm -rf "$rootfs"
  ok "$SIGSTACK_BASE_IMAGE"
}

# The images compose.yaml and the testcontainers module run: sigstack (the binary built on this
# host, stripped, in the Dockerfile's `prebuilt` stage) and Debian's docker-registry. $1: the
# sigstack binary. Layer caching makes an unchanged binary a no-op.
ensure_images() {
  local binary=$1 context
  ensure_base_image
  if ! docker image inspect "$SIGSTACK_REGISTRY_IMAGE" >/dev/null 2>&1; then
    step "Building $SIGSTACK_REGISTRY_IMAGE (Debian's docker-registry; first run only)"
    run_logged "$SIGSTACK_CACHE/logs/docker-build-registry.log" docker build --network host \
      --build-arg BASE_IMAGE="$SIGSTACK_BASE_IMAGE" -t "$SIGSTACK_REGISTRY_IMAGE" \
      -f "$SIGSTACK_ROOT/scripts/docker/registry.Dockerfile" "$SIGSTACK_ROOT/scripts/docker"
  fi
  context=$SIGSTACK_DOCKER_DIR/context
  mkdir -p "$context"
  strip -o "$context/sigstack" "$binary"
  run_logged "$SIGSTACK_CACHE/logs/docker-build-sigstack.log" docker build --network host --target prebuilt \
    --build-arg BASE_IMAGE="$SIGSTACK_BASE_IMAGE" -t "$SIGSTACK_IMAGE" -f "$SIGSTACK_ROOT/Dockerfile" "$context"
  ok "images $SIGSTACK_IMAGE and $SIGSTACK_REGISTRY_IMAGE"
}
