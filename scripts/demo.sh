#!/usr/bin/env bash
# The main job: starts a local Sigstore stack, then signs and verifies a file keylessly with real
# clients (sigstore-python, and cosign v3 when installed), printing each step. Installs what it
# needs on first use.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

STATE_DIR=${SIGSTACK_STATE_DIR:-$SIGSTACK_ROOT/.sigstack-demo}
WORK=$(mktemp -d)
ensure_rust
ensure_python_tools
step "Building sigstack"
SIGSTACK=$(build_sigstack)

step "Starting the stack (state dir $STATE_DIR)"
"$SIGSTACK" up --state-dir "$STATE_DIR" --ephemeral-ports >"$SIGSTACK_CACHE/logs/demo-stack.log" 2>&1 &
STACK_PID=$!
trap 'kill $STACK_PID 2>/dev/null; wait $STACK_PID 2>/dev/null; rm -rf "$WORK"' EXIT
wait_for_stack "$STATE_DIR" "$STACK_PID"
sed 's/^/    /' "$STATE_DIR/stack.json"; echo

step "Pointing this shell at it: eval \"\$(sigstack env --state-dir $STATE_DIR)\""
eval "$("$SIGSTACK" env --state-dir "$STATE_DIR")"
ok "issuer $SIGSTACK_OIDC_URL, CA $SIGSTACK_FULCIO_URL, log $SIGSTACK_REKOR_URL"
ok "trust files in $(dirname "$SIGSTACK_TRUSTED_ROOT"): $(cd "$(dirname "$SIGSTACK_TRUSTED_ROOT")" && echo *)"

IDENTITY=https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main
ISSUER=https://token.actions.githubusercontent.com
step "Minting a GitHub Actions token for acme/widget's release workflow"
TOKEN=$("$SIGSTACK" token --state-dir "$STATE_DIR" --repo acme/widget)
ok "token for $IDENTITY (iss $ISSUER)"

echo "release artifact, built $(date -u +%FT%TZ)" >"$WORK/release.txt"
SIGSTORE="$SIGSTACK_CACHE/venv/bin/sigstore --trust-config $SIGSTACK_TRUST_CONFIG"
step "Signing release.txt with sigstore-python (certificate from the CA, entry in the log)"
$SIGSTORE sign --identity-token "$TOKEN" --bundle "$WORK/release.sigstore.json" "$WORK/release.txt" >/dev/null 2>&1 \
  || die "sigstore-python could not sign"
ok "bundle written; log index $(grep -o '"logIndex": *"[0-9]*"' "$WORK/release.sigstore.json" | head -1 | grep -o '[0-9][0-9]*')"

step "Verifying it with sigstore-python: chain, SCT, inclusion proof, checkpoint, SET, identity"
$SIGSTORE verify identity --cert-identity "$IDENTITY" --cert-oidc-issuer "$ISSUER" \
  --bundle "$WORK/release.sigstore.json" "$WORK/release.txt" 2>&1 | sed 's/^/    /'

COSIGN_V3=$(cosign_bin v3)
if [ -x "$COSIGN_V3" ]; then
  step "Verifying the same bundle with cosign v3 and only trusted_root.json"
  "$COSIGN_V3" verify-blob --trusted-root "$SIGSTACK_TRUSTED_ROOT" --bundle "$WORK/release.sigstore.json" \
    --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$WORK/release.txt" 2>&1 | sed 's/^/    /'
fi

step "A verifier expecting another workflow refuses it"
if $SIGSTORE verify identity --cert-identity https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main \
  --cert-oidc-issuer "$ISSUER" --bundle "$WORK/release.sigstore.json" "$WORK/release.txt" >"$WORK/refusal.txt" 2>&1; then
  die "a wrong identity was accepted"
fi
grep -q "SANs do not match" "$WORK/refusal.txt" || die "refused, but not for the identity: $(cat "$WORK/refusal.txt")"
ok "refused: the certificate's SAN is not the expected workflow"

step "Done: the stack stops now (run \`sigstack up\` yourself to keep one running)"
