#!/usr/bin/env bash
# The main job: starts a local Sigstore stack and registry, then builds an image, pushes it, makes
# its SBOM, signs the digest keylessly, attests the SBOM and verifies both (with sigstack and, when
# installed, cosign v3), and ends with admission by the Kyverno policy: the signed image admitted
# and pinned, nginx:latest and an unsigned image rejected with their reasons. Installs what it needs
# on first use.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

STATE_DIR=${SIGSTACK_STATE_DIR:-$SIGSTACK_ROOT/.sigstack-demo}
WORK=$(mktemp -d)
ensure_rust
ensure_python_tools
ensure_apt docker-registry
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
export SIGSTACK_STATE_DIR=$STATE_DIR
REGISTRY=${SIGSTACK_REGISTRY_URL#http://}
[ -n "$REGISTRY" ] || die "the stack has no registry (scripts/install.sh installs docker-registry)"

step "Building the demo image and pushing it to the local registry ($REGISTRY)"
DIGEST=$("$SIGSTACK" build --name acme/widget --tag v1 --app-version "1.0.$(date +%s)")
ok "acme/widget:v1 is $DIGEST"

step "Making its SPDX SBOM from the layers"
"$SIGSTACK" sbom acme/widget:v1 -o "$WORK/sbom.spdx.json"
"$SIGSTACK_CACHE/venv/bin/pyspdxtools" -i "$WORK/sbom.spdx.json" && ok "valid SPDX 2.3 (pyspdxtools)"

step "Signing the digest keylessly as acme/widget's release workflow (cosign format: .sig tag)"
"$SIGSTACK" sign acme/widget:v1 --repo acme/widget >/dev/null

step "Attesting the SBOM (in-toto statement, DSSE, .att tag)"
"$SIGSTACK" attest acme/widget:v1 --repo acme/widget --sbom "$WORK/sbom.spdx.json" >/dev/null

step "Verifying offline with the stack's trust files"
"$SIGSTACK" verify "$REGISTRY/acme/widget@$DIGEST" --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" | sed 's/^/    /'
"$SIGSTACK" verify-attestation "$REGISTRY/acme/widget@$DIGEST" --type spdxjson \
  --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" | sed 's/^/    /'

COSIGN_V3=$(cosign_bin v3)
if [ -x "$COSIGN_V3" ]; then
  step "The same signature and attestation, verified by cosign v3 with only trusted_root.json"
  for what in verify verify-attestation; do
    extra=(); [ "$what" = verify-attestation ] && extra=(--type spdxjson)
    if HOME=$WORK "$COSIGN_V3" "$what" --allow-insecure-registry --trusted-root "$SIGSTACK_TRUSTED_ROOT" "${extra[@]}" \
      --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$REGISTRY/acme/widget@$DIGEST" >/dev/null 2>&1; then
      ok "cosign $what: OK"
    else
      die "cosign $what refused"
    fi
  done
fi

step "Refusals: another workflow's identity, and the tag moved to an unsigned image"
if "$SIGSTACK" verify "$REGISTRY/acme/widget@$DIGEST" --certificate-identity https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main \
  --certificate-oidc-issuer "$ISSUER" >/dev/null 2>"$WORK/refusal.txt"; then die "a wrong identity was accepted"; fi
ok "$(sed 's/^sigstack: error: //' "$WORK/refusal.txt" | cut -c1-160)..."
"$SIGSTACK" build --name acme/widget --tag v1 --app-version unsigned >/dev/null
if "$SIGSTACK" verify acme/widget:v1 --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" >/dev/null 2>"$WORK/refusal.txt"; then
  die "an unsigned image was accepted"
fi
ok "$(sed 's/^sigstack: error: //' "$WORK/refusal.txt")"

step "Admission: the Kyverno policy rendered for this stack, applied to three Pods"
"$SIGSTACK" policy render --org acme -o "$WORK/policy.yaml" 2>/dev/null
# The demo image was signed for acme/widget above; sign the current one again under the tag.
SIGNED=$("$SIGSTACK" build --name acme/widget --tag v2 --app-version "2.0.$(date +%s)")
"$SIGSTACK" sign acme/widget:v2 --repo acme/widget >/dev/null 2>&1
"$SIGSTACK" attest acme/widget:v2 --repo acme/widget >/dev/null 2>&1
cat >"$WORK/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: signed-app, namespace: default}
spec: {containers: [{name: app, image: "$REGISTRY/acme/widget:v2"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: nginx, namespace: default}
spec: {containers: [{name: nginx, image: "nginx:latest"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: unsigned-app, namespace: default}
spec: {containers: [{name: app, image: "$REGISTRY/acme/widget:v1"}]}
YAML
"$SIGSTACK" apply --policy "$WORK/policy.yaml" --resource "$WORK/pods.yaml" -o "$WORK/mutated.yaml" 2>/dev/null | sed 's/^/    /' || true
grep -q "acme/widget:v2@$SIGNED" "$WORK/mutated.yaml" && ok "signed-app admitted and pinned to $SIGNED"

step "Done: the stack stops now (run \`sigstack up\` yourself to keep one running)"
