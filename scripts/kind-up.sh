#!/usr/bin/env bash
# For users with a container engine (untested in CI, which has none): a kind cluster with kind's
# local-registry recipe, the sigstack stack, and admission by either real Kyverno (helm) with the
# rendered policy, or the sigstack webhook.
#   scripts/kind-up.sh [kyverno|webhook]      (needs docker, kind, kubectl; helm for kyverno)
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$SIGSTACK_ROOT" || exit 1
MODE=${1:-kyverno}
CLUSTER=${KIND_CLUSTER:-sigstack}
STATE_DIR=${SIGSTACK_STATE_DIR:-$SIGSTACK_ROOT/.sigstack-kind}
for tool in docker kind kubectl; do command -v "$tool" >/dev/null || die "$tool is required"; done

step "Local registry kind-registry on 127.0.0.1:5001 (kind's recipe)"
docker inspect kind-registry >/dev/null 2>&1 || docker run -d --restart=always -p 127.0.0.1:5001:5000 --network bridge --name kind-registry registry:2@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" mkdir -p /etc/containerd/certs.d/localhost:5001
  printf '[host."http://kind-registry:5000"]\n' | docker exec -i "$node" cp /dev/stdin /etc/containerd/certs.d/localhost:5001/hosts.toml
done
docker network connect kind kind-registry 2>/dev/null || true

# The kind network's gateway: the host's address on that network, which the nodes reach and
# nothing outside this machine does. The stack and the webhook bind it, never every interface
# (--allow-network is still needed: it is not loopback, and sigstack says so at start).
GATEWAY=$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')

step "sigstack stack on the kind network's gateway ($GATEWAY), using the kind registry"
SIGSTACK=$(build_sigstack)
"$SIGSTACK" up --state-dir "$STATE_DIR" --registry http://localhost:5001 --host "$GATEWAY" --allow-network \
  >"$SIGSTACK_CACHE/logs/kind-stack.log" 2>&1 &
STACK_PID=$!
wait_for_stack "$STATE_DIR" "$STACK_PID"
"$SIGSTACK" policy render --state-dir "$STATE_DIR" --org acme -o "$STATE_DIR/policy.yaml"

case "$MODE" in
  kyverno)
    command -v helm >/dev/null || die "helm is required for Kyverno"
    step "Kyverno (helm) with the rendered policy; the registry is plain HTTP"
    helm upgrade --install kyverno --namespace kyverno --create-namespace --wait \
      --repo https://kyverno.github.io/kyverno/ kyverno --set features.registryClient.allowInsecure=true
    kubectl apply -f "$STATE_DIR/policy.yaml"
    ;;
  webhook)
    step "The sigstack webhook on the kind network gateway ($GATEWAY:8443)"
    "$SIGSTACK" webhook --state-dir "$STATE_DIR" --policy "$STATE_DIR/policy.yaml" --host "$GATEWAY" --allow-network --dns "$GATEWAY" \
      >"$SIGSTACK_CACHE/logs/kind-webhook.log" 2>&1 &
    "$SIGSTACK" webhook manifests --state-dir "$STATE_DIR" --url "https://$GATEWAY:8443" | kubectl apply -f -
    ;;
  *) die "usage: $0 [kyverno|webhook]" ;;
esac
ok "cluster $CLUSTER admits only signed images of localhost:5001/acme/; stack pid $STACK_PID"
