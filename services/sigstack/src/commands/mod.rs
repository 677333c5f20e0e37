//! One module per subcommand, plus the service assembly shared by `up` and `serve`.

pub mod env;
pub mod serve;
pub mod token;
pub mod up;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sigstack_oidc::{Issuer, IssuerConfig};

/// Default ports of the embedded stack, all on 127.0.0.1 (documented in README).
pub const DEFAULT_OIDC_PORT: u16 = 8091;

/// Options every service command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Address to bind. Loopback by default: this is a test stack, not a service for a network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
}

/// Options of the OIDC issuer.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// `iss` of GitHub Actions tokens. GitHub's own by default, so production policies apply unchanged.
    #[arg(long, default_value = sigstack_oidc::DEFAULT_GITHUB_ISSUER, value_name = "URL")]
    pub github_issuer: String,
}

const ISSUER_CONFIG_FILE: &str = "oidc/issuer.json";

/// Opens the issuer of `state_dir` reachable at `issuer_url`, and records its configuration so that
/// `sigstack token` and `sigstack env` mint and describe exactly what it serves.
pub fn open_issuer(
    state_dir: &Path,
    issuer_url: String,
    args: &OidcArgs,
) -> anyhow::Result<Arc<Issuer>> {
    let config = IssuerConfig {
        issuer_url,
        github_issuer: args.github_issuer.clone(),
        email_issuer: None,
    };
    let issuer =
        Issuer::open(&state_dir.join("oidc"), config.clone()).context("open the OIDC issuer")?;
    sigstack_state::write_public(
        &state_dir.join(ISSUER_CONFIG_FILE),
        &serde_json::to_vec_pretty(&config)?,
    )?;
    Ok(Arc::new(issuer))
}

/// Opens the issuer of `state_dir` as it was last configured (or with defaults before any start).
pub fn open_recorded_issuer(state_dir: &Path) -> anyhow::Result<Issuer> {
    let path = state_dir.join(ISSUER_CONFIG_FILE);
    let config = match sigstack_state::read_optional(&path)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an issuer configuration", path.display()))?,
        None => IssuerConfig::new(format!("http://127.0.0.1:{DEFAULT_OIDC_PORT}")),
    };
    Ok(Issuer::open(&state_dir.join("oidc"), config)?)
}
