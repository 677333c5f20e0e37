//! Every service of a stack in this process: what `sigstack up` and `sigstack exec` run, and what
//! the test kit starts inside a test. Ports are fixed or ephemeral (ephemeral ones are sticky: a
//! restart on the same state directory tries the previous ports first, so the URLs in the trust
//! files stay the same); the registry is Debian's docker-registry as a child process, another
//! registry, or none.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::assemble::{
    DEFAULT_EXPLORER_PORT, DEFAULT_FULCIO_PORT, DEFAULT_OIDC_PORT, DEFAULT_REGISTRY_PORT, DEFAULT_REKOR_PORT,
    DEFAULT_REKOR_V2_PORT, DEFAULT_TSA_PORT, DEFAULT_TUF_PORT, RekorVersions, StackUrls, local_issuers, open_fulcio,
    open_issuer, open_rekor, open_rekor_v2, open_tsa, publish_fulcio, publish_rekor, publish_rekor_v2, publish_tsa,
    publish_tuf, write_trust,
};
use crate::registry::Registry;
use crate::server::{BoundService, Servers};
use crate::stack::{StackDescription, open_state_dir};

/// Where the services listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Free ports, sticky across restarts on the same state directory.
    Ephemeral,
    /// These ports.
    Fixed {
        /// The issuer.
        oidc: u16,
        /// The CA.
        fulcio: u16,
        /// The log.
        rekor: u16,
        /// The TUF repository.
        tuf: u16,
        /// The registry started beside the stack.
        registry: u16,
        /// The timestamp authority (when a v2 log runs).
        tsa: u16,
        /// The Rekor v2 log (when it runs).
        rekor_v2: u16,
        /// The explorer (when it runs).
        explorer: u16,
    },
}

impl Default for Ports {
    fn default() -> Self {
        Ports::Fixed {
            oidc: DEFAULT_OIDC_PORT,
            fulcio: DEFAULT_FULCIO_PORT,
            rekor: DEFAULT_REKOR_PORT,
            tuf: DEFAULT_TUF_PORT,
            registry: DEFAULT_REGISTRY_PORT,
            tsa: DEFAULT_TSA_PORT,
            rekor_v2: DEFAULT_REKOR_V2_PORT,
            explorer: DEFAULT_EXPLORER_PORT,
        }
    }
}

/// Which registry the stack names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegistryChoice {
    /// Start Debian's docker-registry beside the stack (storage in the state directory).
    #[default]
    Start,
    /// Use the registry at this URL.
    Url(String),
    /// None.
    None,
}

/// How to run a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The state directory (keys, log, trust files).
    pub state_dir: PathBuf,
    /// The address every service binds (loopback by default; any other needs
    /// `exposure.allow_network`).
    pub host: IpAddr,
    /// Who besides loopback may reach the services.
    pub exposure: crate::server::Exposure,
    /// Fixed or ephemeral ports.
    pub ports: Ports,
    /// The registry.
    pub registry: RegistryChoice,
    /// `iss` of the GitHub Actions tokens.
    pub github_issuer: String,
    /// Extra OIDC issuers the CA trusts (a JSON file).
    pub issuer_config: Option<PathBuf>,
    /// Which transparency logs run (a TSA runs with a v2 log).
    pub rekor: RekorVersions,
    /// Let the v2 log take deprecated `dsseRequestV002` entries (sigstore-js still sends them).
    pub rekor_v2_dsse: bool,
    /// Serve the explorer (a web page of the whole chain).
    pub explorer: bool,
}

impl StackOptions {
    /// Defaults for `state_dir`: loopback, fixed ports, a registry child, GitHub's issuer.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        StackOptions {
            state_dir: state_dir.into(),
            host: IpAddr::from([127, 0, 0, 1]),
            exposure: crate::server::Exposure::default(),
            ports: Ports::default(),
            registry: RegistryChoice::default(),
            github_issuer: sigstack_oidc::DEFAULT_GITHUB_ISSUER.to_string(),
            issuer_config: None,
            rekor: RekorVersions::default(),
            rekor_v2_dsse: false,
            explorer: true,
        }
    }
}

/// A stack serving in this process (on the current tokio runtime); `stack.json` is written while
/// it runs. Dropping it aborts the servers and kills the registry child; [`RunningStack::stop`]
/// drains them.
pub struct RunningStack {
    /// What `stack.json` says.
    pub description: StackDescription,
    servers: Option<Servers>,
    registry: Option<Registry>,
}

const PORTS_FILE: &str = "ports.json";

fn previous_ports(state_dir: &Path) -> BTreeMap<String, u16> {
    std::fs::read(state_dir.join(PORTS_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

impl RunningStack {
    /// Opens the services on the state directory, binds them, writes the trust files and the TUF
    /// repository, starts the registry, and writes `stack.json`.
    pub async fn start(options: StackOptions) -> anyhow::Result<RunningStack> {
        let state_dir = open_state_dir(&options.state_dir)?;
        // A stale description from an earlier run must not be mistaken for this one being ready.
        StackDescription::remove(&state_dir);
        if options.registry == RegistryChoice::Start {
            crate::registry::stop_leftover(&state_dir);
        }
        options.exposure.check_bind(options.host, "the stack")?;
        let previous = previous_ports(&state_dir);
        let host = options.host;
        let bind = |name: &'static str, fixed: Option<u16>| {
            let previous = previous.get(name).copied();
            async move {
                match (fixed, previous) {
                    (Some(port), _) => BoundService::bind(name, host, port).await,
                    (None, Some(port)) => match BoundService::bind(name, host, port).await {
                        Ok(service) => Ok(service),
                        Err(_) => BoundService::bind(name, host, 0).await,
                    },
                    (None, None) => BoundService::bind(name, host, 0).await,
                }
            }
        };
        let fixed = |pick: fn(&Ports) -> u16| match options.ports {
            Ports::Ephemeral => None,
            ref ports => Some(pick(ports)),
        };
        let oidc = bind("oidc", fixed(|p| port_of(p, 0))).await?;
        let fulcio = bind("fulcio", fixed(|p| port_of(p, 1))).await?;
        let rekor = match options.rekor.v1() {
            true => Some(bind("rekor", fixed(|p| port_of(p, 2))).await?),
            false => None,
        };
        let tuf = bind("tuf", fixed(|p| port_of(p, 3))).await?;
        let (tsa, rekor_v2) = match options.rekor.v2() {
            true => (
                Some(bind("tsa", fixed(|p| port_of(p, 5))).await?),
                Some(bind("rekor-v2", fixed(|p| port_of(p, 6))).await?),
            ),
            false => (None, None),
        };
        let explorer = match options.explorer {
            true => Some(bind("explorer", fixed(|p| port_of(p, 7))).await?),
            false => None,
        };
        // The registry child listens on a unix socket; its port is sigstack's, serving a proxy.
        let registry_proxy = if options.registry == RegistryChoice::Start {
            Some(bind("registry", fixed(|p| port_of(p, 4))).await?)
        } else {
            None
        };
        let registry_port = registry_proxy.as_ref().map(|service| service.addr.port());
        let bound: Vec<&BoundService> = [
            Some(&oidc),
            Some(&fulcio),
            rekor.as_ref(),
            Some(&tuf),
            tsa.as_ref(),
            rekor_v2.as_ref(),
            explorer.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let ports: BTreeMap<&str, u16> = bound
            .iter()
            .map(|service| (service.name, service.addr.port()))
            .chain(registry_port.map(|port| ("registry", port)))
            .collect();
        sigstack_state::write_public(&state_dir.join(PORTS_FILE), &serde_json::to_vec(&ports)?)?;
        let mut services = BTreeMap::new();
        for service in &bound {
            services.insert(service.name.to_string(), service.url());
        }
        let log = rekor.as_ref().map(|rekor| open_rekor(&state_dir, &rekor.url())).transpose()?;
        let v2_options = sigstack_rekor::v2::TileLogOptions { accept_dsse: options.rekor_v2_dsse };
        let log_v2 = rekor_v2.as_ref().map(|v2| open_rekor_v2(&state_dir, &v2.url(), v2_options)).transpose()?;
        let timestamps = tsa.as_ref().map(|_| open_tsa(&state_dir)).transpose()?;
        let issuer = open_issuer(&state_dir, oidc.url(), &options.github_issuer)?;
        // The CA knows the local issuer's keys in-process: no network, no discovery.
        let keys = sigstack_fulcio::KeySource::Jwks(issuer.jwks());
        let ca = open_fulcio(
            &state_dir,
            local_issuers(&options.github_issuer, issuer.email_issuer(), keys),
            options.issuer_config.as_deref(),
        )?;

        let (rekor_url, rekor_v2_url, tsa_url) =
            (rekor.as_ref().map(|s| s.url()), rekor_v2.as_ref().map(|s| s.url()), tsa.as_ref().map(|s| s.url()));
        let urls = StackUrls {
            oidc: &oidc.url(),
            fulcio: &fulcio.url(),
            rekor: rekor_url.as_deref(),
            rekor_v2: rekor_v2_url.as_deref(),
            tsa: tsa_url.as_deref(),
        };
        publish_fulcio(&state_dir, &ca)?;
        if let Some(log) = &log {
            publish_rekor(&state_dir, log)?;
        }
        if let Some(log) = &log_v2 {
            publish_rekor_v2(&state_dir, log)?;
        }
        if let Some(tsa) = &timestamps {
            publish_tsa(&state_dir, tsa)?;
        }
        let trust_dir = write_trust(&state_dir, &urls, std::time::Duration::ZERO)?;
        let published = publish_tuf(&state_dir, &trust_dir).await?;

        let (registry_url, registry, registry_proxy) = match (&options.registry, registry_proxy) {
            (RegistryChoice::Url(url), _) => (Some(url.trim_end_matches('/').to_string()), None, None),
            (RegistryChoice::Start, Some(proxy)) => match crate::registry::find_binary() {
                Some(binary) => {
                    let child = Registry::start(&binary, &state_dir, proxy.url()).await?;
                    let router = crate::registry::proxy_router(crate::registry::socket_path(&state_dir));
                    (Some(child.url.clone()), Some(child), Some((proxy, router)))
                }
                None => {
                    eprintln!(
                        "sigstack: docker-registry is not installed (apt-get install docker-registry); starting without a registry"
                    );
                    (None, None, None)
                }
            },
            _ => (None, None, None),
        };

        if let Some(url) = &registry_url {
            services.insert("registry".to_string(), url.clone());
        }
        let mut routers = vec![
            (oidc, sigstack_oidc::router(issuer)),
            (fulcio, sigstack_fulcio::router(ca)),
            (tuf, sigstack_tuf::router(&published.repo_dir)),
        ];
        if let (Some(service), Some(log)) = (rekor, log) {
            routers.push((service, sigstack_rekor::router(log)));
        }
        if let (Some(service), Some(log)) = (rekor_v2, log_v2) {
            routers.push((service, sigstack_rekor::v2::router(log)));
        }
        if let (Some(service), Some(tsa)) = (tsa, timestamps) {
            routers.push((service, sigstack_tsa::router(tsa)));
        }
        let description =
            StackDescription { services, trust_dir, state_dir: state_dir.clone(), pid: std::process::id() };
        if let Some(service) = explorer {
            routers.push((service, sigstack_explorer::router(explorer_for(&description)?)));
        }
        routers.extend(registry_proxy);
        // Every service answers to the hosts of all the stack's URLs (one host, unless the user
        // named others) and to those the user allowed.
        let urls: Vec<&str> = description.services.values().map(String::as_str).collect();
        for (service, _) in &mut routers {
            service.answer_to(&options.exposure, urls.iter().copied());
        }
        let servers = Servers::spawn(routers);
        description.write(&state_dir)?;
        Ok(RunningStack { description, servers: Some(servers), registry })
    }

    /// Serves until `shutdown` resolves (or a server fails), then stops.
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let servers = self.servers.take();
        let result = match servers {
            Some(servers) => servers.run_until(shutdown).await,
            None => Ok(()),
        };
        self.finish().await;
        result
    }

    /// Stops the servers (draining them), the registry, and removes `stack.json`.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let result = match self.servers.take() {
            Some(servers) => servers.stop().await,
            None => Ok(()),
        };
        self.finish().await;
        result
    }

    async fn finish(&mut self) {
        StackDescription::remove(&self.description.state_dir);
        if let Some(registry) = self.registry.take() {
            registry.stop().await;
        }
    }
}

fn port_of(ports: &Ports, which: usize) -> u16 {
    match ports {
        Ports::Fixed { oidc, fulcio, rekor, tuf, registry, tsa, rekor_v2, explorer } => {
            [*oidc, *fulcio, *rekor, *tuf, *registry, *tsa, *rekor_v2, *explorer][which]
        }
        Ports::Ephemeral => 0,
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        if self.servers.is_some() {
            StackDescription::remove(&self.description.state_dir);
        }
        // The servers' tasks abort with their JoinSet; the registry child is killed on drop.
    }
}

/// The explorer of the stack `description` describes: its services, trust files, environment,
/// and the identity the stack's default tokens carry (the SAN their certificates get).
pub fn explorer_for(
    description: &crate::stack::StackDescription,
) -> anyhow::Result<std::sync::Arc<sigstack_explorer::Explorer>> {
    let issuer = sigstack_oidc::Issuer::open_recorded(
        &description.state_dir.join("oidc"),
        description.services.get("oidc").map(String::as_str).unwrap_or_default(),
    )?;
    let token = issuer.mint(&Default::default())?;
    let claims = sigstack_oidc::unverified_claims(&token).unwrap_or_default();
    let identity = match claims["job_workflow_ref"].as_str() {
        Some(workflow) => {
            format!("https://github.com/{workflow} (OIDC issuer {})", claims["iss"].as_str().unwrap_or("?"))
        }
        None => claims["sub"].as_str().unwrap_or("?").to_string(),
    };
    Ok(std::sync::Arc::new(sigstack_explorer::Explorer::new(sigstack_explorer::ExplorerConfig {
        services: description.services.clone().into_iter().collect(),
        trust_dir: description.trust_dir.clone(),
        state_dir: description.state_dir.clone(),
        env: crate::env::stack_env(description)?,
        identity,
    })))
}
