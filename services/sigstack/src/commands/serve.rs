//! One service per process, for one-container-per-service setups (compose.yaml). Each service
//! keeps its own keys in the shared state directory and publishes its public part; `serve tuf`
//! waits for those, writes the trust files and serves the TUF repository.

use std::time::Duration;

use crate::StateDirArg;
use crate::commands::{
    DEFAULT_FULCIO_PORT, DEFAULT_OIDC_PORT, DEFAULT_REKOR_PORT, DEFAULT_REKOR_V2_PORT, DEFAULT_TSA_PORT,
    DEFAULT_TUF_PORT, FulcioArgs, ListenArgs, OidcArgs, RekorVersions, StackUrls, local_issuers, open_fulcio,
    open_issuer, open_rekor, open_rekor_v2, open_tsa, publish_fulcio, publish_rekor, publish_rekor_v2, publish_tsa,
    publish_tuf, write_trust,
};
use crate::server::{BoundService, serve_all};
use crate::stack::open_state_dir;

#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// The mock OIDC issuer alone.
    Oidc(ServeOidcArgs),
    /// The CA alone; it verifies tokens with the JWKS of the issuer at --oidc-url.
    Fulcio(ServeFulcioArgs),
    /// The transparency log alone.
    Rekor(ServeRekorArgs),
    /// The Rekor v2 (tiles) log alone.
    #[command(name = "rekor-v2")]
    RekorV2(ServeRekorV2Args),
    /// The timestamp authority alone.
    Tsa(ServeTsaArgs),
    /// Writes the trust files once the CA and the log have published their keys, then serves the TUF repository.
    Tuf(ServeTufArgs),
}

/// Where one service listens, and the URL clients reach it at.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Port to listen on (0 for a free one).
    #[arg(long)]
    port: Option<u16>,
    /// The URL clients reach this service at, when it differs from the bound address
    /// (e.g. a published port of a container).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ServeOidcArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    oidc: OidcArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeFulcioArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The sigstack OIDC issuer whose JWKS verifies GitHub Actions and email tokens.
    #[arg(long, default_value = "http://127.0.0.1:8091", value_name = "URL")]
    oidc_url: String,
    /// `iss` of the issuer's email tokens (its public URL) [default: --oidc-url].
    #[arg(long, value_name = "URL")]
    email_issuer: Option<String>,
    #[command(flatten)]
    oidc: OidcArgs,
    #[command(flatten)]
    fulcio: FulcioArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeRekorArgs {
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeRekorV2Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Take the deprecated dsseRequestV002 (sigstore-js 4 still sends it).
    #[arg(long)]
    dsse: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeTsaArgs {
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeTufArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The issuer's URL as clients reach it (goes into the signing config).
    #[arg(long, default_value = "http://127.0.0.1:8091", value_name = "URL")]
    oidc_url: String,
    /// The CA's URL as clients reach it.
    #[arg(long, default_value = "http://127.0.0.1:8092", value_name = "URL")]
    fulcio_url: String,
    /// Which logs the stack runs (as `up --rekor`): the trust files list those.
    #[arg(long, default_value_t = RekorVersions::V1, value_name = "VERSIONS", value_parser = crate::commands::rekor_versions())]
    rekor: RekorVersions,
    /// The log's URL as clients reach it.
    #[arg(long, default_value = "http://127.0.0.1:8093", value_name = "URL")]
    rekor_url: String,
    /// The Rekor v2 log's URL as clients reach it.
    #[arg(long, default_value = "http://127.0.0.1:8097", value_name = "URL")]
    rekor_v2_url: String,
    /// The timestamp authority's base URL as clients reach it.
    #[arg(long, default_value = "http://127.0.0.1:8096", value_name = "URL")]
    tsa_url: String,
    /// How long to wait for the CA and the log to publish their keys.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    wait: u64,
}

pub fn run(command: ServeCommand) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        match command {
            ServeCommand::Oidc(args) => serve_oidc(args).await,
            ServeCommand::Fulcio(args) => serve_fulcio(args).await,
            ServeCommand::Rekor(args) => serve_rekor(args).await,
            ServeCommand::RekorV2(args) => serve_rekor_v2(args).await,
            ServeCommand::Tsa(args) => serve_tsa(args).await,
            ServeCommand::Tuf(args) => serve_tuf(args).await,
        }
    })
}

/// Binds the service and returns it with its state directory and public URL.
async fn bind(
    name: &'static str,
    args: &ServiceArgs,
    default_port: u16,
) -> anyhow::Result<(BoundService, std::path::PathBuf, String)> {
    let state_dir = open_state_dir(&args.state.state_dir)?;
    let exposure = args.listen.exposure();
    exposure.check_bind(args.listen.host, &format!("sigstack serve {name}"))?;
    let mut service = BoundService::bind(name, args.listen.host, args.port.unwrap_or(default_port)).await?;
    let url = args.public_url.clone().unwrap_or_else(|| service.url());
    service.answer_to(&exposure, [url.as_str()]);
    Ok((service, state_dir, url))
}

async fn serve_oidc(args: ServeOidcArgs) -> anyhow::Result<()> {
    let (service, state_dir, url) = bind("oidc", &args.service, DEFAULT_OIDC_PORT).await?;
    let issuer = open_issuer(&state_dir, url.clone(), &args.oidc.github_issuer)?;
    println!("sigstack oidc listening on {} (issuer {url})", service.url());
    serve_all(vec![(service, sigstack_oidc::router(issuer))]).await
}

async fn serve_fulcio(args: ServeFulcioArgs) -> anyhow::Result<()> {
    let (service, state_dir, _) = bind("fulcio", &args.service, DEFAULT_FULCIO_PORT).await?;
    let oidc_url = args.oidc_url.trim_end_matches('/').to_string();
    let email_issuer = args.email_issuer.clone().unwrap_or_else(|| oidc_url.clone());
    let keys = sigstack_fulcio::KeySource::JwksUrl(format!("{oidc_url}/.well-known/jwks"));
    let ca = open_fulcio(
        &state_dir,
        local_issuers(&args.oidc.github_issuer, &email_issuer, keys),
        args.fulcio.issuer_config.as_deref(),
    )?;
    publish_fulcio(&state_dir, &ca)?;
    println!("sigstack fulcio listening on {} (tokens verified with {oidc_url})", service.url());
    serve_all(vec![(service, sigstack_fulcio::router(ca))]).await
}

async fn serve_rekor(args: ServeRekorArgs) -> anyhow::Result<()> {
    let (service, state_dir, url) = bind("rekor", &args.service, DEFAULT_REKOR_PORT).await?;
    let log = open_rekor(&state_dir, &url)?;
    publish_rekor(&state_dir, &log)?;
    println!("sigstack rekor listening on {} ({} entries)", service.url(), log.size()?);
    serve_all(vec![(service, sigstack_rekor::router(log))]).await
}

async fn serve_rekor_v2(args: ServeRekorV2Args) -> anyhow::Result<()> {
    let (service, state_dir, url) = bind("rekor-v2", &args.service, DEFAULT_REKOR_V2_PORT).await?;
    let log = open_rekor_v2(&state_dir, &url, sigstack_rekor::v2::TileLogOptions { accept_dsse: args.dsse })?;
    publish_rekor_v2(&state_dir, &log)?;
    println!("sigstack rekor-v2 listening on {} ({} entries, origin {})", service.url(), log.size()?, log.origin());
    serve_all(vec![(service, sigstack_rekor::v2::router(log))]).await
}

async fn serve_tsa(args: ServeTsaArgs) -> anyhow::Result<()> {
    let (service, state_dir, _) = bind("tsa", &args.service, DEFAULT_TSA_PORT).await?;
    let tsa = open_tsa(&state_dir)?;
    publish_tsa(&state_dir, &tsa)?;
    println!("sigstack tsa listening on {}", service.url());
    serve_all(vec![(service, sigstack_tsa::router(tsa))]).await
}

async fn serve_tuf(args: ServeTufArgs) -> anyhow::Result<()> {
    let (service, state_dir, _) = bind("tuf", &args.service, DEFAULT_TUF_PORT).await?;
    let urls = StackUrls {
        oidc: &args.oidc_url,
        fulcio: &args.fulcio_url,
        rekor: args.rekor.v1().then_some(args.rekor_url.as_str()),
        rekor_v2: args.rekor.v2().then_some(args.rekor_v2_url.as_str()),
        tsa: args.rekor.v2().then_some(args.tsa_url.as_str()),
    };
    let wait = Duration::from_secs(args.wait);
    let trust_dir = tokio::task::block_in_place(|| write_trust(&state_dir, &urls, wait))?;
    let published = publish_tuf(&state_dir, &trust_dir).await?;
    println!(
        "sigstack tuf listening on {} (trust files in {}, metadata version {})",
        service.url(),
        trust_dir.display(),
        published.version
    );
    serve_all(vec![(service, sigstack_tuf::router(&published.repo_dir))]).await
}
