#!/usr/bin/env bash
# The long crash soak (not part of scripts/test.sh): concurrent writers against the log, kill -9 at
# pseudo-random moments, restart, and every acknowledged entry and every checkpoint ever returned
# checked; SOAK_CYCLES cycles (default 100). Prints cycles, entries acknowledged, entries lost.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1
ensure_rust
CYCLES=${SOAK_CYCLES:-100}
step "Crash soak: $CYCLES kill -9 cycles"
SIGSTACK_BIN=$(PROFILE=release build_sigstack)
export SIGSTACK_BIN
SIGSTACK_CRASH_CYCLES=$CYCLES cargo test --quiet --release -p sigstack-e2e --test services -- rekor_crash --nocapture 2>&1 \
  | tee "$SIGSTACK_CACHE/logs/soak.log" | grep -E "^(cycle [0-9]*9:|SOAK SUMMARY)"
grep -q "SOAK SUMMARY" "$SIGSTACK_CACHE/logs/soak.log" || die "the soak did not finish (log: $SIGSTACK_CACHE/logs/soak.log)"
