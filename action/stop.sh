#!/usr/bin/env bash
# The action's post step, as a runner calls it (through action/post.js): stop the stack started by
# the main step (its pid and state directory come back as STATE_pid and STATE_state_dir).
set -euo pipefail
pid=${STATE_pid:-}
state_dir=${STATE_state_dir:-}
if [ -z "$pid" ]; then
  echo "no stack was started by this action"
  exit 0
fi
kill -TERM "$pid" 2>/dev/null || { echo "the stack (pid $pid) had stopped already"; exit 0; }
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid" 2>/dev/null || true
  echo "::warning::the stack did not stop within 10 s and was killed"
fi
echo "sigstack stopped (state was in $state_dir)"
