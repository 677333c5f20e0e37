#!/usr/bin/env bash
# Installs what sigstack's tests and demo need, idempotently: `scripts/install.sh [all|check|rust|python|node|cosign|rekor-cli|actionlint|sigstore-go|timestamp-server|fulcio|rekor-tiles|rekor-v1|kube|kyverno]`.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

install_all() {
  check_prerequisites rust go python node
  # docker-registry: the real registry beside the stack; skopeo: a second registry client in tests;
  # docker-compose validates compose.yaml against the Compose schema (no engine needed);
  # the linter of the scripts; and Chromium, the browser the explorer is tested in.
  ensure_apt docker-registry skopeo docker-compose shellcheck chromium fonts-dejavu-core
  ensure_python_tools
  ensure_node_tools
  ensure_cosign v2
  ensure_cosign v3
  ensure_rekor_cli
  ensure_actionlint
  ensure_sigstore_go
  # The real servers sigstack's services are compared with, request by request.
  ensure_timestamp_server
  ensure_fulcio
  ensure_rekor_tiles
  ensure_rekor_v1
  # The real judges of admission: kube-apiserver, etcd, kubectl and Kyverno (long first builds).
  ensure_kube
  ensure_kyverno
}

case "${1:-all}" in
  all) install_all ;;
  check) check_prerequisites rust go python node ;;
  rust) ensure_rust ;;
  python) ensure_python_tools ;;
  node) ensure_node_tools ;;
  cosign) ensure_cosign v2; ensure_cosign v3 ;;
  rekor-cli) ensure_rekor_cli ;;
  actionlint) ensure_actionlint ;;
  sigstore-go) ensure_sigstore_go ;;
  timestamp-server) ensure_timestamp_server ;;
  fulcio) ensure_fulcio ;;
  rekor-tiles) ensure_rekor_tiles ;;
  rekor-v1) ensure_rekor_v1 ;;
  kube) ensure_kube ;;
  kyverno) ensure_kyverno ;;
  *) die "usage: $0 [all|check|rust|python|node|cosign|rekor-cli|actionlint|sigstore-go|timestamp-server|fulcio|rekor-tiles|rekor-v1|kube|kyverno]" ;;
esac
