#!/usr/bin/env bash
# Benchmarks: builds sigstack in release mode, runs everything against loopback (bounded in time)
# and prints one table; the figures are also written as JSON (bench/results/latest.json) to
# compare runs. Options are passed to sigstack-bench (e.g. --seconds 5, --max-entries 100000).
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1
ensure_rust
ensure_node_tools
ensure_apt docker-registry
# The real servers of the side-by-side section.
ensure_timestamp_server
ensure_fulcio
ensure_rekor_tiles
SIGSTACK_TIMESTAMP_SERVER=$(timestamp_server_bin)
SIGSTACK_FULCIO=$(fulcio_bin)
SIGSTACK_REKOR_TILES=$(rekor_tiles_bin)
export SIGSTACK_TIMESTAMP_SERVER SIGSTACK_FULCIO SIGSTACK_REKOR_TILES
step "Building sigstack and the load generator (release)"
(cargo build --quiet --release -p sigstack -p sigstack-bench) || die "build failed"
step "Container engine and base image (the containers section)"
ensure_docker_engine
trap stop_docker_engine EXIT
ensure_base_image
export DOCKER_HOST SIGSTACK_BASE_IMAGE
mkdir -p bench/results
step "Running (a few minutes; every run stops by itself)"
"${CARGO_TARGET_DIR:-target}"/release/sigstack-bench --sigstack "${CARGO_TARGET_DIR:-target}"/release/sigstack --node-prefix "$SIGSTACK_CACHE/node" \
  --json bench/results/latest.json "$@"
