use sigstack::embedded::{Ports, RegistryChoice, RunningStack, StackOptions};

use crate::StateDirArg;
use crate::commands::{
    DEFAULT_EXPLORER_PORT, DEFAULT_FULCIO_PORT, DEFAULT_OIDC_PORT, DEFAULT_REGISTRY_PORT, DEFAULT_REKOR_PORT,
    DEFAULT_REKOR_V2_PORT, DEFAULT_TSA_PORT, DEFAULT_TUF_PORT, FulcioArgs, ListenArgs, OidcArgs, RekorVersions,
};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub(crate) state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Bind every service to a free ephemeral port instead of the fixed defaults, so several
    /// stacks can run side by side (read the URLs from DIR/stack.json).
    #[arg(long)]
    pub(crate) ephemeral_ports: bool,
    /// Port of the OIDC issuer.
    #[arg(long, default_value_t = DEFAULT_OIDC_PORT, conflicts_with = "ephemeral_ports")]
    oidc_port: u16,
    /// Port of the CA.
    #[arg(long, default_value_t = DEFAULT_FULCIO_PORT, conflicts_with = "ephemeral_ports")]
    fulcio_port: u16,
    /// Port of the TUF repository (the mirror for `cosign initialize`, sigstore-js, sigstore-python).
    #[arg(long, default_value_t = DEFAULT_TUF_PORT, conflicts_with = "ephemeral_ports")]
    tuf_port: u16,
    /// Port of the transparency log.
    #[arg(long, default_value_t = DEFAULT_REKOR_PORT, conflicts_with = "ephemeral_ports")]
    rekor_port: u16,
    /// Port of the registry started beside the stack.
    #[arg(long, default_value_t = DEFAULT_REGISTRY_PORT, conflicts_with = "ephemeral_ports")]
    registry_port: u16,
    /// Which transparency logs to run: v1 (Rekor v1, what production's default signing config
    /// lists), v2 (Rekor v2 tiles and a timestamp authority) or both (v2-capable clients sign to
    /// v2, the others to v1).
    #[arg(long, default_value_t = RekorVersions::V1, value_name = "VERSIONS", value_parser = crate::commands::rekor_versions())]
    pub(crate) rekor: RekorVersions,
    /// Port of the Rekor v2 log (with --rekor v2 or both).
    #[arg(long, default_value_t = DEFAULT_REKOR_V2_PORT, conflicts_with = "ephemeral_ports")]
    rekor_v2_port: u16,
    /// Port of the timestamp authority (with --rekor v2 or both).
    #[arg(long, default_value_t = DEFAULT_TSA_PORT, conflicts_with = "ephemeral_ports")]
    tsa_port: u16,
    /// Port of the explorer, the web page that shows the whole chain live.
    #[arg(long, default_value_t = DEFAULT_EXPLORER_PORT, conflicts_with = "ephemeral_ports")]
    explorer_port: u16,
    /// Do not serve the explorer.
    #[arg(long)]
    pub(crate) no_explorer: bool,
    /// Let the v2 log take the deprecated dsseRequestV002 (Rekor v2.0-2.2 did; v2.3 and
    /// sigstore-go refuse it; sigstore-js 4 still sends it).
    #[arg(long)]
    pub(crate) rekor_v2_dsse: bool,
    /// Use this registry instead of starting Debian's docker-registry beside the stack.
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// Start no registry at all.
    #[arg(long, conflicts_with = "registry")]
    no_registry: bool,
    #[command(flatten)]
    oidc: OidcArgs,
    #[command(flatten)]
    fulcio: FulcioArgs,
}

impl UpArgs {
    /// The stack these options describe, on `state_dir`.
    pub fn options(&self, state_dir: &std::path::Path) -> StackOptions {
        StackOptions {
            state_dir: state_dir.to_path_buf(),
            host: self.listen.host,
            exposure: self.listen.exposure(),
            ports: if self.ephemeral_ports {
                Ports::Ephemeral
            } else {
                Ports::Fixed {
                    oidc: self.oidc_port,
                    fulcio: self.fulcio_port,
                    rekor: self.rekor_port,
                    tuf: self.tuf_port,
                    registry: self.registry_port,
                    tsa: self.tsa_port,
                    rekor_v2: self.rekor_v2_port,
                    explorer: self.explorer_port,
                }
            },
            registry: match (&self.registry, self.no_registry) {
                (Some(url), _) => RegistryChoice::Url(url.clone()),
                (None, true) => RegistryChoice::None,
                (None, false) => RegistryChoice::Start,
            },
            github_issuer: self.oidc.github_issuer.clone(),
            issuer_config: self.fulcio.issuer_config.clone(),
            rekor: self.rekor,
            rekor_v2_dsse: self.rekor_v2_dsse,
            explorer: !self.no_explorer,
        }
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    // Started on this thread (block_on): the registry child's parent-death signal follows the
    // thread that spawned it, and this one lives as long as the process.
    runtime.block_on(async {
        let stack = RunningStack::start(args.options(&args.state.state_dir)).await?;
        let description = &stack.description;
        println!("sigstack is up (state dir {})", description.state_dir.display());
        if let Some(url) = description.services.get("explorer") {
            println!("  watch it: {url} (the explorer: log, certificates, registry, admission, live)");
        }
        for (name, url) in &description.services {
            println!("  {name:<8} {url}");
        }
        println!("  trust    {}", description.trust_dir.display());
        println!("  stack    {}", description.state_dir.join(crate::stack::STACK_FILE).display());
        println!("Point a shell at it: eval \"$(sigstack env --state-dir {})\"", description.state_dir.display());
        println!("Press Ctrl-C to stop.");
        stack.run_until(crate::server::shutdown_signal()).await
    })
}
