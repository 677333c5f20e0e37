//! The environment a running stack gives its clients: what `sigstack env` prints, what
//! `sigstack exec` and the test kit set, what the GitHub Action writes to `$GITHUB_ENV`.

use crate::stack::StackDescription;

/// `(name, value)` pairs: the stack's URLs and state directory, the trust files under the names
/// cosign, sigstore-python and sigstore-js read, a ready identity token, and the GitHub Actions
/// token-request variables (so clients fetch tokens exactly as in CI).
pub fn stack_env(stack: &StackDescription) -> anyhow::Result<Vec<(String, String)>> {
    stack_env_as(stack, &Identity::default())
}

/// The GitHub Actions workflow a stack's environment emulates: the repository, workflow file and
/// ref of the ready token and of the tokens the ambient endpoint mints (sigstack-demo/app's
/// release workflow on main by default).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `ORG/REPO`.
    pub repository: Option<String>,
    /// The workflow file, e.g. `.github/workflows/release.yml`.
    pub workflow: Option<String>,
    /// The git ref, e.g. `refs/heads/main`.
    pub git_ref: Option<String>,
}

/// [`stack_env`] for tokens of `identity`'s workflow.
pub fn stack_env_as(stack: &StackDescription, identity: &Identity) -> anyhow::Result<Vec<(String, String)>> {
    let issuer = sigstack_oidc::Issuer::open_recorded(
        &stack.state_dir.join("oidc"),
        stack.services.get("oidc").map(String::as_str).unwrap_or_default(),
    )?;
    let mut lines = vec![("SIGSTACK_STATE_DIR".to_string(), stack.state_dir.display().to_string())];
    for (name, url) in &stack.services {
        lines.push((format!("SIGSTACK_{}_URL", name.to_ascii_uppercase().replace('-', "_")), url.clone()));
    }
    // What a GitHub Actions job with `id-token: write` has: cosign, sigstore-python (`id`) and
    // sigstore-js fetch their token from here exactly as they do in CI.
    let trust = &stack.trust_dir;
    // cosign v2 without TUF takes a v1 log's key; a v2-only stack has none.
    if trust.join("rekor.pub").exists() {
        lines.push(("SIGSTORE_REKOR_PUBLIC_KEY".into(), trust.join("rekor.pub").display().to_string()));
    }
    for (name, file) in [
        // cosign v2 without TUF (also in trust/cosign.env).
        ("SIGSTORE_ROOT_FILE", "fulcio-chain.pem"),
        ("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", "ctlog.pub"),
        // cosign v3 --trusted-root/--signing-config, sigstore-python --trust-config.
        ("SIGSTACK_TRUSTED_ROOT", "trusted_root.json"),
        ("SIGSTACK_SIGNING_CONFIG", "signing_config.v0.2.json"),
        ("SIGSTACK_TRUST_CONFIG", "trust_config.json"),
    ] {
        lines.push((name.into(), trust.join(file).display().to_string()));
    }
    // A ready token (10 minutes) under the names clients read: cosign and sigstore-js take
    // SIGSTORE_ID_TOKEN, sigstore-python SIGSTORE_IDENTITY_TOKEN. Mint others with `sigstack token`.
    let request = sigstack_oidc::TokenRequest {
        repository: identity.repository.clone(),
        workflow: identity.workflow.clone(),
        git_ref: identity.git_ref.clone(),
        ..Default::default()
    };
    let token = issuer.mint(&request)?;
    lines.push(("SIGSTORE_ID_TOKEN".into(), token.clone()));
    lines.push(("SIGSTORE_IDENTITY_TOKEN".into(), token));
    lines.push(("GITHUB_ACTIONS".into(), "true".into()));
    // The ambient endpoint takes the identity in its query; clients append `&audience=...`.
    let mut request_url = issuer.actions_token_url();
    for (name, value) in
        [("repository", &identity.repository), ("workflow", &identity.workflow), ("ref", &identity.git_ref)]
    {
        if let Some(value) = value {
            request_url.push('&');
            request_url.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish());
        }
    }
    lines.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), request_url));
    lines.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), issuer.actions_request_token().to_string()));
    Ok(lines)
}
