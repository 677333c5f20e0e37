#!/usr/bin/env bash
# Runs every sigstack test: installs what the tests need (first run only), then the Rust unit,
# integration and end-to-end suites (which drive real clients). Exits non-zero on any failure.
# Ends with how long each phase took: each tool build, the Rust build, each test binary.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

SIGSTACK_PHASES_FILE=$SIGSTACK_CACHE/logs/phases.tsv
: >"$SIGSTACK_PHASES_FILE"
export SIGSTACK_PHASES_FILE
# CI builds each change once: incremental artifacts would only fill the disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

step "Checking prerequisites"
bash scripts/install.sh check

# The tools install in the background while cargo builds: each build leaves a core idle often
# enough (downloads, linking, a crate graph's narrow places) that side by side they finish about
# a quarter sooner on two cores than one after the other.
INSTALL_LOG=$SIGSTACK_CACHE/logs/install.log
step "Installing the tools in the background (nothing when cached; log: $INSTALL_LOG)"
phase_start "install: every tool (beside the Rust build)"
bash scripts/install.sh all >"$INSTALL_LOG" 2>&1 &
install_pid=$!

step "Building (one cargo build of every test and the sigstack binary, in $CARGO_TARGET_DIR)"
phase_start "Rust build (cargo test --no-run)"
[ -x "$CARGO_TARGET_DIR/debug/sigstack" ] \
  || printf '    first build: about 400 crates, most of the first run on two cores\n' >&2
PROGRESS_PATTERN='^ *Compiling ' PROGRESS_NOUN='crates compiled' \
  run_logged "$SIGSTACK_CACHE/logs/cargo-build-tests.log" cargo test --workspace --no-run
phase_end

# The lints are part of the tests: clippy on every target, warnings refused. A finding fails the
# run at the end, after the suites have still run, so one lint does not hide a test's result.
step "Lints (cargo clippy --workspace --all-targets -- -D warnings)"
phase_start "lints (clippy)"
lint_status=0
if ! cargo clippy --workspace --all-targets -- -D warnings >"$SIGSTACK_CACHE/logs/clippy.log" 2>&1; then
  lint_status=1
  tail -n 40 "$SIGSTACK_CACHE/logs/clippy.log" >&2
fi
phase_end

step "Waiting for the tools"
while kill -0 "$install_pid" 2>/dev/null; do
  sleep 10 & wait $!
  kill -0 "$install_pid" 2>/dev/null \
    && printf '    ... still installing: %s\n' "$(grep -E '^==>' "$INSTALL_LOG" | tail -n 1 | sed 's/^==> //')" >&2
done
if ! wait "$install_pid"; then
  tail -n 40 "$INSTALL_LOG" >&2
  die "installing the tools failed (full log: $INSTALL_LOG)"
fi
phase_end
grep -E '^(==>|  ok)' "$INSTALL_LOG" | sed 's/^==> /    /' || true
# The binary the same build made (services/sigstack has integration tests, so cargo builds it):
# no second build with other features.
SIGSTACK_BIN=$CARGO_TARGET_DIR/debug/sigstack
export SIGSTACK_BIN
export SIGSTACK_PYTHON_VENV=$SIGSTACK_CACHE/venv
export SIGSTACK_NODE_PREFIX=$SIGSTACK_CACHE/node
SIGSTACK_COSIGN_V2=$(cosign_bin v2)
SIGSTACK_COSIGN_V3=$(cosign_bin v3)
SIGSTACK_REKOR_CLI=$(rekor_cli_bin)
SIGSTACK_ACTIONLINT=$(actionlint_bin)
SIGSTACK_SIGSTORE_GO=$(sigstore_go_bin)
SIGSTACK_TIMESTAMP_SERVER=$(timestamp_server_bin)
SIGSTACK_FULCIO=$(fulcio_bin)
SIGSTACK_REKOR_TILES=$(rekor_tiles_bin)
SIGSTACK_REKOR_V1=$(rekor_v1_dir)
SIGSTACK_KUBE_BIN=$(go_tool_dir kube)
SIGSTACK_KYVERNO_BIN=$(go_tool_dir kyverno)
export SIGSTACK_COSIGN_V2 SIGSTACK_COSIGN_V3 SIGSTACK_REKOR_CLI SIGSTACK_ACTIONLINT SIGSTACK_SIGSTORE_GO SIGSTACK_TIMESTAMP_SERVER SIGSTACK_FULCIO SIGSTACK_REKOR_TILES SIGSTACK_REKOR_V1 SIGSTACK_KUBE_BIN SIGSTACK_KYVERNO_BIN
ok "$("$SIGSTACK_BIN" --version)"

step "Container engine and images (compose.yaml and testcontainers run on them)"
phase_start "container engine and images"
ensure_docker_engine
trap stop_docker_engine EXIT
ensure_images "$SIGSTACK_BIN"
phase_end
export DOCKER_HOST SIGSTACK_IMAGE SIGSTACK_REGISTRY_IMAGE

step "Running the test suites (unit, integration, end-to-end; the cluster suite beside the others)"
phase_start "tests (all binaries)"
# The cluster suite mostly waits (an API server starting, Kyverno's webhooks registering), so it runs
# beside the other suites: cargo holds no lock while tests run. Its output follows theirs.
cluster_log=$SIGSTACK_CACHE/logs/cargo-test-cluster.log
cargo test -p sigstack-e2e --test cluster --no-fail-fast >"$cluster_log" 2>&1 &
cluster_pid=$!
cargo test --workspace --no-fail-fast -- --skip kyverno_cli:: --skip real_admission:: 2>&1 \
  | tee "$SIGSTACK_CACHE/logs/cargo-test.log"
status=${PIPESTATUS[0]}
cluster_status=0
wait "$cluster_pid" || cluster_status=$?
tee -a "$SIGSTACK_CACHE/logs/cargo-test.log" <"$cluster_log"
[ "$cluster_status" = 0 ] || status=$cluster_status
phase_end
# Each test binary's own time, from libtest's "finished in" line after cargo's "Running" line.
awk '/^ *Running / { bin = $3; gsub(/[()]/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin); name = bin " (" $2 ")" }
     /^test result: / && name != "" {
       for (i = 1; i <= NF; i++) if ($i == "in") { secs = $(i + 1); sub(/s$/, "", secs) }
       if (secs + 0 >= 1) printf "tests: %s\t%d\n", name, secs + 0.5; name = "" }' \
  "$SIGSTACK_CACHE/logs/cargo-test.log" >>"$SIGSTACK_PHASES_FILE"

if [ "$status" = 0 ]; then
  step "Admission judged by the real Kyverno and by sigstack, through a real API server"
  cat "$SIGSTACK_CACHE/logs/admission-agreement.md"
fi
print_phases "$SECONDS"
step "Build outputs (cached between runs and clones)"
du -sh "$CARGO_TARGET_DIR" "$GOCACHE" "$GOMODCACHE" "$SIGSTACK_CACHE/bin" 2>/dev/null | sed 's/^/  /'
[ "$lint_status" = 0 ] || die "clippy found something (log: $SIGSTACK_CACHE/logs/clippy.log)"
[ "$status" = 0 ] || die "tests failed (log: $SIGSTACK_CACHE/logs/cargo-test.log)"
ok "all tests passed"
