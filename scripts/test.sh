#!/usr/bin/env bash
# Runs every sigstack test: installs what the tests need (first run only), then the Rust unit,
# integration and end-to-end suites (which drive real clients). Exits non-zero on any failure.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

step "Checking prerequisites"
bash scripts/install.sh all

step "Building"
SIGSTACK_BIN=$(build_sigstack)
export SIGSTACK_BIN
export SIGSTACK_PYTHON_VENV=$SIGSTACK_CACHE/venv
export SIGSTACK_NODE_PREFIX=$SIGSTACK_CACHE/node
SIGSTACK_COSIGN_V2=$(cosign_bin v2)
SIGSTACK_COSIGN_V3=$(cosign_bin v3)
SIGSTACK_REKOR_CLI=$(rekor_cli_bin)
SIGSTACK_ACTIONLINT=$(actionlint_bin)
SIGSTACK_SIGSTORE_GO=$(sigstore_go_bin)
SIGSTACK_KUBE_BIN=$(go_tool_dir kube)
SIGSTACK_KYVERNO_BIN=$(go_tool_dir kyverno)
export SIGSTACK_COSIGN_V2 SIGSTACK_COSIGN_V3 SIGSTACK_REKOR_CLI SIGSTACK_ACTIONLINT SIGSTACK_SIGSTORE_GO SIGSTACK_KUBE_BIN SIGSTACK_KYVERNO_BIN
ok "$("$SIGSTACK_BIN" --version)"

step "Container engine and images (compose.yaml and testcontainers run on them)"
ensure_docker_engine
trap stop_docker_engine EXIT
ensure_images "$SIGSTACK_BIN"
export DOCKER_HOST SIGSTACK_IMAGE SIGSTACK_REGISTRY_IMAGE

step "Running the test suites (unit, integration, end-to-end)"
cargo test --workspace --no-fail-fast 2>&1 | tee "$SIGSTACK_CACHE/logs/cargo-test.log"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || die "tests failed (log: $SIGSTACK_CACHE/logs/cargo-test.log)"
step "Admission judged by the real Kyverno and by sigstack, through a real API server"
cat "$SIGSTACK_CACHE/logs/admission-agreement.md"
ok "all tests passed"
