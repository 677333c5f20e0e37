use std::collections::BTreeMap;

use crate::StateDirArg;
use crate::commands::{
    DEFAULT_FULCIO_PORT, DEFAULT_OIDC_PORT, DEFAULT_REGISTRY_PORT, DEFAULT_REKOR_PORT, DEFAULT_TUF_PORT, FulcioArgs,
    ListenArgs, OidcArgs, StackUrls, local_issuers, open_fulcio, open_issuer, open_rekor, publish_fulcio,
    publish_rekor, publish_tuf, write_trust,
};
use crate::server::{BoundService, serve_all};
use crate::stack::{StackDescription, open_state_dir};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Bind every service to a free ephemeral port instead of the fixed defaults, so several
    /// stacks can run side by side (read the URLs from DIR/stack.json).
    #[arg(long)]
    ephemeral_ports: bool,
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

const PORTS_FILE: &str = "ports.json";

fn previous_ports(state_dir: &std::path::Path) -> BTreeMap<String, u16> {
    std::fs::read(state_dir.join(PORTS_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let state_dir = open_state_dir(&args.state.state_dir)?;
    // A stale description from an earlier run must not be mistaken for this one being ready.
    StackDescription::remove(&state_dir);
    crate::registry::stop_leftover(&state_dir);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Ephemeral ports are sticky: a restart tries the ports of the last run first, so the URLs in
        // the trust files stay the same whenever those ports are still free.
        let previous = previous_ports(&state_dir);
        let bind = |name: &'static str, fixed: u16| {
            let previous = previous.get(name).copied();
            let host = args.listen.host;
            let ephemeral = args.ephemeral_ports;
            async move {
                match (ephemeral, previous) {
                    (false, _) => BoundService::bind(name, host, fixed).await,
                    (true, Some(port)) => match BoundService::bind(name, host, port).await {
                        Ok(service) => Ok(service),
                        Err(_) => BoundService::bind(name, host, 0).await,
                    },
                    (true, None) => BoundService::bind(name, host, 0).await,
                }
            }
        };
        let oidc = bind("oidc", args.oidc_port).await?;
        let fulcio = bind("fulcio", args.fulcio_port).await?;
        let rekor = bind("rekor", args.rekor_port).await?;
        let tuf = bind("tuf", args.tuf_port).await?;
        // The registry is a child process: pick its port by binding and releasing it.
        let registry_port = if args.registry.is_some() || args.no_registry {
            None
        } else {
            let probe = bind("registry", args.registry_port).await?;
            Some(probe.addr.port())
        };
        let ports: BTreeMap<&str, u16> = [
            ("oidc", oidc.addr.port()),
            ("fulcio", fulcio.addr.port()),
            ("rekor", rekor.addr.port()),
            ("tuf", tuf.addr.port()),
        ]
        .into_iter()
        .chain(registry_port.map(|port| ("registry", port)))
        .collect();
        sigstack_state::write_public(&state_dir.join(PORTS_FILE), &serde_json::to_vec(&ports)?)?;
        let log = open_rekor(&state_dir, &rekor.url())?;
        let issuer = open_issuer(&state_dir, oidc.url(), &args.oidc)?;
        // The CA knows the local issuer's keys in-process: no network, no discovery.
        let keys = sigstack_fulcio::KeySource::Jwks(issuer.jwks());
        let ca = open_fulcio(
            &state_dir,
            local_issuers(&args.oidc.github_issuer, issuer.email_issuer(), keys),
            &args.fulcio,
        )?;

        let urls = StackUrls { oidc: &oidc.url(), fulcio: &fulcio.url(), rekor: &rekor.url() };
        publish_fulcio(&state_dir, &ca)?;
        publish_rekor(&state_dir, &log)?;
        let trust_dir = write_trust(&state_dir, &urls, std::time::Duration::ZERO)?;
        let published = publish_tuf(&state_dir, &trust_dir).await?;

        let registry = match (&args.registry, registry_port) {
            (Some(url), _) => Some((url.trim_end_matches('/').to_string(), None)),
            (None, Some(port)) => match crate::registry::find_binary() {
                Some(binary) => {
                    let child = crate::registry::Registry::start(&binary, &state_dir, port).await?;
                    Some((child.url.clone(), Some(child)))
                }
                None => {
                    eprintln!("sigstack: docker-registry is not installed (apt-get install docker-registry); starting without a registry");
                    None
                }
            },
            (None, None) => None,
        };

        let mut services = BTreeMap::new();
        services.insert("oidc".to_string(), oidc.url());
        services.insert("fulcio".to_string(), fulcio.url());
        services.insert("rekor".to_string(), rekor.url());
        services.insert("tuf".to_string(), tuf.url());
        if let Some((url, _)) = &registry {
            services.insert("registry".to_string(), url.clone());
        }
        let description = StackDescription {
            services,
            trust_dir: trust_dir.clone(),
            state_dir: state_dir.clone(),
            pid: std::process::id(),
        };
        description.write(&state_dir)?;
        println!("sigstack is up (state dir {})", state_dir.display());
        for (name, url) in &description.services {
            println!("  {name:<8} {url}");
        }
        println!("  trust    {}", trust_dir.display());
        println!("  stack    {}", state_dir.join(crate::stack::STACK_FILE).display());
        println!("Point a shell at it: eval \"$(sigstack env --state-dir {})\"", state_dir.display());
        println!("Press Ctrl-C to stop.");
        let result = serve_all(vec![
            (oidc, sigstack_oidc::router(issuer)),
            (fulcio, sigstack_fulcio::router(ca)),
            (rekor, sigstack_rekor::router(log)),
            (tuf, sigstack_tuf::router(&published.repo_dir)),
        ])
        .await;
        StackDescription::remove(&state_dir);
    crate::registry::stop_leftover(&state_dir);
        if let Some((_, Some(child))) = registry {
            child.stop().await;
        }
        result
    })
}
