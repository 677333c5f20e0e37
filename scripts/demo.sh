#!/usr/bin/env bash
# The main job: starts a local Sigstore stack and registry, then builds an image, pushes it, makes
# its SBOM, signs the digest keylessly, attests the SBOM, verifies both (with sigstack and, when
# built, cosign v3), and ends with admission by the Kyverno policy: the signed image admitted and
# pinned, nginx:latest and an unsigned image rejected with their reasons; then, when the real
# Kubernetes API server and Kyverno are built, the same through them. Installs what it needs on
# first use.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1

STATE_DIR=${SIGSTACK_STATE_DIR:-$SIGSTACK_ROOT/.sigstack-demo}
WORK=$(mktemp -d)
check_prerequisites rust python
ensure_python_tools
ensure_apt docker-registry
step "Building sigstack"
SIGSTACK=$(build_sigstack)

# Prints a long message indented and wrapped, so a reason is read whole.
say() { fold -s -w 160 | sed 's/^/      /'; }

step "Starting the stack (state dir $STATE_DIR)"
"$SIGSTACK" up --state-dir "$STATE_DIR" --ephemeral-ports >"$SIGSTACK_CACHE/logs/demo-stack.log" 2>&1 &
STACK_PID=$!
CLUSTER_PID=
cleanup() {
  [ -n "$CLUSTER_PID" ] && kill "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
  kill "$STACK_PID" 2>/dev/null; wait "$STACK_PID" 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT
wait_for_stack "$STATE_DIR" "$STACK_PID"
eval "$("$SIGSTACK" env --state-dir "$STATE_DIR")"
ok "watch it live in a browser: $SIGSTACK_EXPLORER_URL (the explorer: log, certificates, registry, admission; it updates as the demo runs)"
cat <<EOF
      explorer     $SIGSTACK_EXPLORER_URL    a web page of the whole chain, served by the stack, no network needed
      OIDC issuer  $SIGSTACK_OIDC_URL    mints the identity tokens a GitHub Actions job gets
      CA           $SIGSTACK_FULCIO_URL    Fulcio-style: turns a token into a 10-minute signing certificate
      log          $SIGSTACK_REKOR_URL    Rekor-style transparency log: every signature is recorded, append-only
      TUF          $SIGSTACK_TUF_URL    serves the trust files clients bootstrap from
      registry     $SIGSTACK_REGISTRY_URL    a real OCI registry (Debian's docker-registry)
EOF
ok "this shell now points Sigstore clients at it: eval \"\$(sigstack env --state-dir $STATE_DIR)\""
ok "trust files in $(dirname "$SIGSTACK_TRUSTED_ROOT"): $(cd "$(dirname "$SIGSTACK_TRUSTED_ROOT")" && echo *)"

IDENTITY=https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main
ISSUER=https://token.actions.githubusercontent.com
export SIGSTACK_STATE_DIR=$STATE_DIR
REGISTRY=${SIGSTACK_REGISTRY_URL#http://}
[ -n "$REGISTRY" ] || die "the stack has no registry (scripts/install.sh installs docker-registry)"

step "Building the demo image and pushing it to the local registry"
DIGEST=$("$SIGSTACK" build --name acme/widget --tag v1 --app-version "1.0.$(date +%s)" 2>/dev/null)
ok "acme/widget:v1 is $DIGEST: from here on everything names this digest, never the tag"

step "Making its SPDX SBOM (the list of what is inside) from the image's layers"
"$SIGSTACK" sbom acme/widget:v1 -o "$WORK/sbom.spdx.json" 2>/dev/null
"$SIGSTACK_CACHE/venv/bin/pyspdxtools" -i "$WORK/sbom.spdx.json" && ok "valid SPDX 2.3, checked by the reference validator (pyspdxtools)"

step "Signing the digest keylessly as acme/widget's release workflow"
"$SIGSTACK" sign acme/widget:v1 --repo acme/widget >/dev/null 2>&1
ok "a token for $IDENTITY -> a certificate from the CA -> the signature recorded in the log -> attached to the image (cosign's .sig tag)"

step "Attesting the SBOM: a signed in-toto statement that this SBOM describes this digest"
"$SIGSTACK" attest acme/widget:v1 --repo acme/widget --sbom "$WORK/sbom.spdx.json" >/dev/null 2>&1
ok "recorded in the log and attached (cosign's .att tag)"

step "Verifying offline, with nothing but the stack's trust files"
"$SIGSTACK" verify "$REGISTRY/acme/widget@$DIGEST" --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" | sed 's/^/    /'
"$SIGSTACK" verify-attestation "$REGISTRY/acme/widget@$DIGEST" --type spdxjson \
  --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" | sed 's/^/    /'

COSIGN_V3=$(cosign_bin v3)
if [ -x "$COSIGN_V3" ]; then
  step "The same signature and attestation, verified by the real cosign v3 with only trusted_root.json"
  for what in verify verify-attestation; do
    extra=(); [ "$what" = verify-attestation ] && extra=(--type spdxjson)
    if HOME=$WORK "$COSIGN_V3" "$what" --allow-insecure-registry --trusted-root "$SIGSTACK_TRUSTED_ROOT" "${extra[@]}" \
      --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$REGISTRY/acme/widget@$DIGEST" >/dev/null 2>&1; then
      ok "cosign $what: OK"
    else
      die "cosign $what refused"
    fi
  done
else
  step "Skipped: verification by the real cosign v3 (not built yet; scripts/install.sh cosign builds it in a few minutes, scripts/test.sh does too)"
fi

step "Refusals: another workflow's identity, and the tag moved to an unsigned image"
if "$SIGSTACK" verify "$REGISTRY/acme/widget@$DIGEST" --certificate-identity https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main \
  --certificate-oidc-issuer "$ISSUER" >/dev/null 2>"$WORK/refusal.txt"; then die "a wrong identity was accepted"; fi
ok "another identity is refused:"; sed 's/^sigstack: error: //' "$WORK/refusal.txt" | say
"$SIGSTACK" build --name acme/widget --tag v1 --app-version unsigned >/dev/null 2>&1
if "$SIGSTACK" verify acme/widget:v1 --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" >/dev/null 2>"$WORK/refusal.txt"; then
  die "an unsigned image was accepted"
fi
ok "the moved tag is refused:"; sed 's/^sigstack: error: //' "$WORK/refusal.txt" | say

# The ImageValidatingPolicy (policy/verify-signed-images-ivpol.yaml): the type Kyverno recommends
# since 1.17 and the only one it will keep; the ClusterPolicy form stays in policy/ for clusters that
# still run it (`sigstack policy render` without --type).
step "Admission: the organisation's Kyverno ImageValidatingPolicy, rendered for this stack, applied to three Pods"
"$SIGSTACK" policy render --type ivpol --org acme -o "$WORK/policy.yaml" 2>/dev/null
SIGNED=$("$SIGSTACK" build --name acme/widget --tag v2 --app-version "2.0.$(date +%s)" 2>/dev/null)
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
"$SIGSTACK" apply --policy "$WORK/policy.yaml" --resource "$WORK/pods.yaml" -o "$WORK/mutated.yaml" >"$WORK/apply.txt" 2>/dev/null || true
# The verdicts and reasons (the per-rule table is in the file, for the curious).
sed -n '/^$/,$p' "$WORK/apply.txt" | sed '1d' | say
grep -q "acme/widget:v2@$SIGNED" "$WORK/mutated.yaml" || die "the signed Pod was not pinned to its digest"
grep -q "Pod/default/nginx: DENIED" "$WORK/apply.txt" || die "nginx:latest was not denied"
grep -q "Pod/default/unsigned-app: DENIED" "$WORK/apply.txt" || die "the unsigned image was not denied"
ok "signed-app admitted and pinned to $SIGNED; nginx:latest and the unsigned image denied"

# The same through the real Kubernetes API server and the real Kyverno, when they are built
# (scripts/test.sh builds them; the first build takes about half an hour on two cores).
KUBE_DIR=$(go_tool_dir kube 2>/dev/null || true)
KYVERNO_DIR=$(go_tool_dir kyverno 2>/dev/null || true)
if [ -f "$KUBE_DIR/.complete" ] && [ -f "$KYVERNO_DIR/.complete" ]; then
  step "The real thing: a Kubernetes API server with the real Kyverno admitting Pods"
  SIGSTACK_KUBE_BIN=$KUBE_DIR SIGSTACK_KYVERNO_BIN=$KYVERNO_DIR \
    "$SIGSTACK" cluster up --state-dir "$STATE_DIR" --kyverno >"$SIGSTACK_CACHE/logs/demo-cluster.log" 2>&1 &
  CLUSTER_PID=$!
  for _ in $(seq 1 1200); do
    [ -f "$STATE_DIR/cluster/cluster.json" ] && break
    kill -0 "$CLUSTER_PID" 2>/dev/null || die "the cluster did not start (log: $SIGSTACK_CACHE/logs/demo-cluster.log)"
    sleep 0.1
  done
  sed -n '1,2p' "$SIGSTACK_CACHE/logs/demo-cluster.log" | sed 's/^/      /'
  KUBECTL=("$KUBE_DIR/kubectl" --kubeconfig "$STATE_DIR/cluster/admin.kubeconfig")
  # Kyverno validates policies in a webhook of its own, which may answer a moment after it registers.
  for attempt in $(seq 1 60); do
    "${KUBECTL[@]}" apply -f "$WORK/policy.yaml" >/dev/null 2>"$WORK/apply-policy.txt" && break
    [ "$attempt" = 60 ] && { cat "$WORK/apply-policy.txt" >&2; die "the policy could not be applied"; }
    sleep 0.5
  done
  # Kyverno registers an ImageValidatingPolicy's webhooks (ivpol.*) once the policy is ready.
  for _ in $(seq 1 450); do
    "${KUBECTL[@]}" get validatingwebhookconfigurations kyverno-resource-validating-webhook-cfg -o jsonpath='{.webhooks[*].name}' 2>/dev/null | grep -q 'ivpol\.' &&
      "${KUBECTL[@]}" get mutatingwebhookconfigurations kyverno-resource-mutating-webhook-cfg -o jsonpath='{.webhooks[*].name}' 2>/dev/null | grep -q 'ivpol\.' && break
    sleep 0.2
  done
  if "${KUBECTL[@]}" run nginx --image=nginx:latest >/dev/null 2>"$WORK/nginx.txt"; then die "the API server admitted nginx:latest"; fi
  ok "kubectl run nginx --image=nginx:latest: the API server refused it"
  sed 's/^Error from server: //' "$WORK/nginx.txt" | grep -v '^$' | say
  STORED=$("${KUBECTL[@]}" run signed-app --image="$REGISTRY/acme/widget:v2" -o jsonpath='{.spec.containers[0].image}' 2>"$WORK/signed.txt") \
    || { cat "$WORK/signed.txt" >&2; die "the API server refused the signed image"; }
  ok "kubectl run signed-app --image=$REGISTRY/acme/widget:v2: admitted, stored as $STORED"
else
  step "Not shown: the real Kubernetes API server and Kyverno would refuse nginx:latest and admit the signed image pinned to its digest (build them once with scripts/install.sh kube kyverno, about half an hour; scripts/test.sh builds them)"
fi

step "Report cards: every artifact a policy should refuse, built and signed here, against the design's original policy and ours"
for policy in policy/examples/original-policy.yaml policy/verify-signed-images-ivpol.yaml; do
  "$SIGSTACK" policy probe --org acme --policy "$SIGSTACK_ROOT/$policy" >"$WORK/card.txt" 2>/dev/null && verdict=passes || verdict=fails
  ok "$policy $verdict: $(tail -1 "$WORK/card.txt")"
  { grep -E '^  FINDING|^FINDING ' "$WORK/card.txt" || true; } | cut -c1-150 | say
done
grep -Eq "probes refused as they should be: ([0-9]+)/\1\**$" "$WORK/card.txt" || die "our policy let a probe through"
ok "the full cards: sigstack policy probe --policy FILE (add --judge both to have the real Kyverno CLI judge beside sigstack)"

if [ -t 0 ] && [ -t 1 ]; then
  step "Done. The explorer ($SIGSTACK_EXPLORER_URL) shows everything that happened; press Enter to stop the stack"
  read -r _
else
  step "Done: the stack stops now (run \`sigstack up\` yourself to keep one running)"
fi
