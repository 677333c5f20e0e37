use crate::StateDirArg;
use crate::commands::open_recorded_issuer;
use crate::stack::StackDescription;

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    state: StateDirArg,
}

/// Quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn run(args: EnvArgs) -> anyhow::Result<()> {
    let state_dir = &args.state.state_dir;
    let stack = StackDescription::require(state_dir)?;
    let issuer = open_recorded_issuer(&stack.state_dir)?;
    let mut lines = vec![("SIGSTACK_STATE_DIR".to_string(), stack.state_dir.display().to_string())];
    for (name, url) in &stack.services {
        lines.push((format!("SIGSTACK_{}_URL", name.to_ascii_uppercase()), url.clone()));
    }
    // What a GitHub Actions job with `id-token: write` has: cosign, sigstore-python (`id`) and
    // sigstore-js fetch their token from here exactly as they do in CI.
    let trust = &stack.trust_dir;
    for (name, file) in [
        // cosign v2 without TUF (also in trust/cosign.env).
        ("SIGSTORE_ROOT_FILE", "fulcio-chain.pem"),
        ("SIGSTORE_REKOR_PUBLIC_KEY", "rekor.pub"),
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
    let token = issuer.mint(&sigstack_oidc::TokenRequest::default())?;
    lines.push(("SIGSTORE_ID_TOKEN".into(), token.clone()));
    lines.push(("SIGSTORE_IDENTITY_TOKEN".into(), token));
    lines.push(("GITHUB_ACTIONS".into(), "true".into()));
    lines.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), issuer.actions_token_url()));
    lines.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), issuer.actions_request_token().to_string()));
    for (name, value) in lines {
        println!("export {name}={}", shell_quote(&value));
    }
    Ok(())
}
