//! One module per subcommand, plus the service assembly shared by `up` and `serve`.

pub mod admission;
pub mod attach;
pub mod bundle;
pub mod cluster;
pub mod env;
pub mod exec;
pub mod explorer;
pub mod pipeline;
pub mod policy_probe;
pub mod probe;
pub mod serve;
pub mod token;
pub mod up;
pub mod webhook;

use std::net::IpAddr;

pub use sigstack::assemble::*;

/// `--rekor v1|v2|both`, with its possible values in the help (the library's type has no clap).
pub fn rekor_versions() -> impl clap::builder::TypedValueParser<Value = RekorVersions> {
    use clap::builder::PossibleValue;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("v1").help("Rekor v1 only: what production's default signing config lists"),
        PossibleValue::new("v2").help("Rekor v2 (tiles) and a timestamp authority only"),
        PossibleValue::new("both")
            .help("Both logs and the TSA; v2-capable clients sign to v2, others to v1, and v1 stays readable"),
    ])
    .try_map(|text| text.parse::<RekorVersions>())
}

/// Options every service command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Address to bind. Loopback by default: this is a test stack, not a service for a network;
    /// any other address needs --allow-network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Allow binding an address other than loopback. The stack mints tokens and certificates for
    /// any identity: whoever reaches it can. A warning says so on every start.
    #[arg(long)]
    pub allow_network: bool,
    /// A further host name the services answer to (repeatable). They answer only to loopback
    /// names and their own URLs otherwise, which keeps web pages out (DNS rebinding).
    #[arg(long = "allow-host", value_name = "HOST", env = "SIGSTACK_ALLOW_HOSTS", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,
}

impl ListenArgs {
    /// What these options expose.
    pub fn exposure(&self) -> crate::server::Exposure {
        crate::server::Exposure { allow_network: self.allow_network, allow_hosts: self.allow_hosts.clone() }
    }
}

/// The GitHub Actions workflow a token names (`sigstack token`, `sigstack env`).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkflowArgs {
    /// GitHub repository, ORG/REPO [default: sigstack-demo/app].
    #[arg(long, value_name = "ORG/REPO")]
    pub repo: Option<String>,
    /// Workflow file [default: .github/workflows/release.yml].
    #[arg(long, value_name = "PATH")]
    pub workflow: Option<String>,
    /// Git ref the workflow ran on [default: refs/heads/main].
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
}

/// Options of the OIDC issuer.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// `iss` of GitHub Actions tokens. GitHub's own by default, so production policies apply unchanged.
    #[arg(long, default_value = sigstack_oidc::DEFAULT_GITHUB_ISSUER, value_name = "URL")]
    pub github_issuer: String,
}

/// Options of the CA.
#[derive(Debug, Clone, clap::Args)]
pub struct FulcioArgs {
    /// Extra OIDC issuers the CA trusts: a JSON array of
    /// `{"issuer", "type": "github-actions"|"email"|"sub", "audience"?, "jwks_url"? | "discovery_url"?}`.
    #[arg(long, value_name = "FILE")]
    pub issuer_config: Option<std::path::PathBuf>,
}
