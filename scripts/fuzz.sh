#!/usr/bin/env bash
# Bounded fuzzing (not part of scripts/test.sh): every cargo-fuzz target in fuzz/ for FUZZ_SECONDS
# (default 60) each, from fuzz/seeds plus the corpus kept in fuzz/corpus. Needs nightly Rust and
# cargo-fuzz (installed here if missing). A crash is copied to fuzz/regressions/TARGET/, where
# `cargo test -p sigstack-e2e --test services -- fuzz_regressions` (in scripts/test.sh) replays it on stable:
# fix the bug, commit the file. Prints runs, corpus size and crashes per target.
# Usage: scripts/fuzz.sh [TARGET...]
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT/fuzz" || exit 1
ensure_rust
SECONDS_EACH=${FUZZ_SECONDS:-60}
# Safe Rust: what the fuzzers hunt is panics, 5xx answers and hangs, which need no sanitizer;
# ASan doubles build and run time on a 2-core machine. FUZZ_SANITIZER=address turns it on.
SANITIZER=${FUZZ_SANITIZER:-none}

if ! cargo +nightly --version >/dev/null 2>&1; then
  step "Installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal || die "no nightly toolchain: rustup toolchain install nightly"
fi
# Pinned (its lockfile and version); to update, change the version and run this script once.
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qwF "$CARGO_FUZZ_VERSION"; then
  step "Installing cargo-fuzz $CARGO_FUZZ_VERSION"
  run_logged "$SIGSTACK_CACHE/logs/cargo-fuzz-install.log" cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

mapfile -t TARGETS < <(cargo +nightly fuzz list)
[ $# -gt 0 ] && TARGETS=("$@")
step "Building ${#TARGETS[@]} fuzz targets (sanitizer: $SANITIZER)"
run_logged "$SIGSTACK_CACHE/logs/fuzz-build.log" cargo +nightly fuzz build -O -s "$SANITIZER"

summary=()
total_crashes=0
for target in "${TARGETS[@]}"; do
  step "Fuzzing $target for ${SECONDS_EACH}s"
  mkdir -p "corpus/$target" "artifacts/$target" "regressions/$target"
  log="$SIGSTACK_CACHE/logs/fuzz-$target.log"
  started="artifacts/$target/.started"
  touch "$started"
  # -timeout: an input taking over 10 s is a hang (reported as a crash); -rss_limit_mb bounds memory.
  cargo +nightly fuzz run -O -s "$SANITIZER" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || true
  # Only what this run found: older artifacts were copied (and maybe renamed) before.
  mapfile -t found < <(find "artifacts/$target" -type f -newer "$started" ! -name .started)
  crashes=${#found[@]}
  for artifact in "${found[@]}"; do cp -n "$artifact" "regressions/$target/"; done
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  summary+=("$(printf '%-18s runs %-9s corpus %-6s crashes %s' "$target" "${runs:-?}" "$corpus" "$crashes")")
  total_crashes=$((total_crashes + crashes))
  if [ "$crashes" -gt 0 ]; then
    printf '%s  crash%s %s (log: %s; copied to fuzz/regressions/%s)\n' "$RED" "$RESET" "$target" "$log" "$target"
  else
    ok "$target: ${runs:-?} runs, no crash"
  fi
done

step "FUZZ SUMMARY (${SECONDS_EACH}s per target)"
printf '  %s\n' "${summary[@]}"
[ "$total_crashes" -eq 0 ] || die "$total_crashes crash(es): see fuzz/regressions, fix, and commit them as regression tests"
