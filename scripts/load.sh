#!/usr/bin/env bash
# Reliability under load (not part of scripts/test.sh): concurrency 256 against issuer, CA and log
# at once for LOAD_SECONDS (default 60); prints requests and errors per service (must be 0 errors),
# resident memory and open file descriptors before and after.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1
ensure_rust
step "Building (release)"
(cargo build --quiet --release -p sigstack -p sigstack-bench) || die "build failed"
step "Load: concurrency 256 for ${LOAD_SECONDS:-60} s"
"${CARGO_TARGET_DIR:-target}"/release/sigstack-bench --sigstack "${CARGO_TARGET_DIR:-target}"/release/sigstack --load-seconds "${LOAD_SECONDS:-60}"
