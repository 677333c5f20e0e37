#!/usr/bin/env bash
# The main job: starts a local Sigstore stack, mints a GitHub-Actions-shaped token and shows what is
# in it. Installs what it needs on first use.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

STATE_DIR=${SIGSTACK_STATE_DIR:-$SIGSTACK_ROOT/.sigstack-demo}
ensure_rust
step "Building sigstack"
SIGSTACK=$(build_sigstack)

step "Starting the stack (state dir $STATE_DIR)"
"$SIGSTACK" up --state-dir "$STATE_DIR" --ephemeral-ports >"$SIGSTACK_CACHE/logs/demo-stack.log" 2>&1 &
STACK_PID=$!
trap 'kill $STACK_PID 2>/dev/null; wait $STACK_PID 2>/dev/null' EXIT
wait_for_stack "$STATE_DIR" "$STACK_PID"
cat "$STATE_DIR/stack.json"; echo

step "Pointing this shell at it: eval \"\$(sigstack env --state-dir $STATE_DIR)\""
eval "$("$SIGSTACK" env --state-dir "$STATE_DIR")"
ok "issuer at $SIGSTACK_OIDC_URL"

step "Minting a GitHub Actions token for acme/widget's release workflow"
TOKEN=$("$SIGSTACK" token --state-dir "$STATE_DIR" --repo acme/widget --workflow .github/workflows/release.yml --ref refs/heads/main --show-claims)
ok "token: ${TOKEN:0:40}..."

step "Fetching a token the way a CI job does (ACTIONS_ID_TOKEN_REQUEST_URL + bearer)"
curl -fsS -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=sigstore" >/dev/null
ok "ambient endpoint answered"

step "Done: the stack stops now (run \`sigstack up\` yourself to keep one running)"
