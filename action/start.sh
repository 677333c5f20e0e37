#!/usr/bin/env bash
# The action's main step, as a runner calls it (through action/main.js): find or build sigstack,
# start a stack in the background, export its environment for the job's later steps
# ($GITHUB_ENV), its URLs and trust files as outputs ($GITHUB_OUTPUT), and what the post step
# needs to stop it ($GITHUB_STATE).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state_dir=${SIGSTACK_ACTION_STATE_DIR:-${RUNNER_TEMP:-/tmp}/sigstack}

binary=${SIGSTACK_ACTION_BINARY:-}
if [ -z "$binary" ]; then
  # Built once per version of the action's source and cached in the runner's tool cache (kept
  # between jobs on self-hosted runners; cache ~/.cargo and target/ with actions/cache on hosted
  # ones). The key is the action's version and a hash of the source it builds from (a remote
  # checkout of an action has no git history to ask); the binary's checksum, recorded when it
  # was built, is checked again before every use.
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
  source_hash=$(cd "$here" && find Cargo.toml Cargo.lock services -type f \( -name '*.rs' -o -name Cargo.toml -o -name '*.css' -o -name '*.js' \) \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
  cache=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/sigstack/$version-$source_hash
  binary=$cache/sigstack
  if [ -x "$binary" ] && ! (cd "$cache" && sha256sum --check --status sigstack.sha256 2>/dev/null); then
    echo "::warning::the cached sigstack binary $binary does not match its recorded checksum; building it again"
    rm -rf "$cache"
  fi
  if [ ! -x "$binary" ]; then
    echo "::group::Building sigstack $version (release; several minutes the first time)"
    cargo build --release --locked -p sigstack --manifest-path "$here/Cargo.toml"
    mkdir -p "$cache" && cp "${CARGO_TARGET_DIR:-$here/target}/release/sigstack" "$binary"
    (cd "$cache" && sha256sum sigstack >sigstack.sha256)
    echo "::endgroup::"
  fi
fi
[ -x "$binary" ] || { echo "::error::sigstack binary $binary is not executable"; exit 1; }

up_args=(--ephemeral-ports --state-dir "$state_dir")
if [ "${SIGSTACK_ACTION_REGISTRY}" = "true" ]; then
  if ! command -v docker-registry >/dev/null; then
    echo "::group::Installing Debian's docker-registry"
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker-registry
    echo "::endgroup::"
  fi
else
  up_args+=(--no-registry)
fi

mkdir -p "$state_dir"
rm -f "$state_dir/stack.json"
nohup "$binary" up "${up_args[@]}" >"$state_dir.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 300); do
  [ -f "$state_dir/stack.json" ] && grep -q "\"pid\": $pid" "$state_dir/stack.json" && break
  kill -0 "$pid" 2>/dev/null || { cat "$state_dir.log"; echo "::error::sigstack up exited before it was ready"; exit 1; }
  sleep 0.1
done
[ -f "$state_dir/stack.json" ] || { cat "$state_dir.log"; echo "::error::sigstack up was not ready within 30 s"; exit 1; }

# The workflow identity the stack's tokens name: this run's, unless the inputs say otherwise.
workflow=${SIGSTACK_ACTION_WORKFLOW:-}
if [ -z "$workflow" ] && [ -n "${GITHUB_WORKFLOW_REF:-}" ]; then
  workflow=${GITHUB_WORKFLOW_REF#*/*/}; workflow=${workflow%@*}
fi
env_args=(env --plain --state-dir "$state_dir")
repository=${SIGSTACK_ACTION_REPOSITORY:-${GITHUB_REPOSITORY:-}}
ref=${SIGSTACK_ACTION_REF:-${GITHUB_REF:-}}
[ -n "$repository" ] && env_args+=(--repo "$repository")
[ -n "$workflow" ] && env_args+=(--workflow "$workflow")
[ -n "$ref" ] && env_args+=(--ref "$ref")
# Only the stack's own variables go to the rest of the job by default. The Sigstore clients'
# overrides (SIGSTORE_*: every later cosign trusts only this stack) and the mock token endpoint
# (ACTIONS_ID_TOKEN_REQUEST_*: every later OIDC consumer, cloud logins and package publishing
# included, would get the mock's tokens) change the whole job, so only on request.
if [ "${SIGSTACK_ACTION_EXPORT_CLIENT_ENV:-false}" = true ]; then
  echo "::warning::export-client-env: every later step of this job trusts only the local stack and gets its mock OIDC tokens"
  "$binary" "${env_args[@]}" >>"$GITHUB_ENV"
else
  "$binary" "${env_args[@]}" | grep '^SIGSTACK_' >>"$GITHUB_ENV"
fi
echo "SIGSTACK_BIN=$binary" >>"$GITHUB_ENV"

value() { sed -n "s/^$1=//p" <("$binary" "${env_args[@]}"); }
{
  echo "binary=$binary"
  echo "state-dir=$state_dir"
  for service in oidc fulcio rekor tuf registry; do
    echo "$service-url=$(value "SIGSTACK_$(echo "$service" | tr '[:lower:]' '[:upper:]')_URL")"
  done
  echo "trusted-root=$state_dir/trust/trusted_root.json"
  echo "signing-config=$state_dir/trust/signing_config.v0.2.json"
} >>"$GITHUB_OUTPUT"
{
  echo "pid=$pid"
  echo "state_dir=$state_dir"
} >>"$GITHUB_STATE"
echo "sigstack is up: $(value SIGSTACK_REKOR_URL) (log), trust files in $state_dir/trust"
