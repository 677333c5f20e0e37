use crate::StateDirArg;
use crate::commands::{
    DEFAULT_FULCIO_PORT, DEFAULT_OIDC_PORT, DEFAULT_REKOR_PORT, FulcioArgs, ListenArgs, OidcArgs, local_issuers,
    open_fulcio, open_issuer, open_rekor,
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
}

#[derive(Debug, clap::Args)]
pub struct ServeRekorArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Port to listen on (0 for a free one).
    #[arg(long, default_value_t = DEFAULT_REKOR_PORT)]
    port: u16,
    /// The URL clients reach this log at (its host names the checkpoints), when it differs from
    /// the bound address (e.g. `http://rekor:8093` between containers).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ServeFulcioArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Port to listen on (0 for a free one).
    #[arg(long, default_value_t = DEFAULT_FULCIO_PORT)]
    port: u16,
    /// The sigstack OIDC issuer whose keys sign GitHub Actions and email tokens.
    #[arg(long, default_value = "http://127.0.0.1:8091", value_name = "URL")]
    oidc_url: String,
    #[command(flatten)]
    oidc: OidcArgs,
    #[command(flatten)]
    fulcio: FulcioArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeOidcArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Port to listen on (0 for a free one).
    #[arg(long, default_value_t = DEFAULT_OIDC_PORT)]
    port: u16,
    /// The URL clients reach this issuer at, when it differs from the bound address
    /// (e.g. `http://oidc:8091` between containers). It becomes the discovery `issuer`.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    #[command(flatten)]
    oidc: OidcArgs,
}

pub fn run(command: ServeCommand) -> anyhow::Result<()> {
    match command {
        ServeCommand::Oidc(args) => serve_oidc(args),
        ServeCommand::Fulcio(args) => serve_fulcio(args),
        ServeCommand::Rekor(args) => serve_rekor(args),
    }
}

fn serve_rekor(args: ServeRekorArgs) -> anyhow::Result<()> {
    let state_dir = open_state_dir(&args.state.state_dir)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let service = BoundService::bind("rekor", args.listen.host, args.port).await?;
        let url = args.public_url.clone().unwrap_or_else(|| service.url());
        let log = open_rekor(&state_dir, &url)?;
        println!("sigstack rekor listening on {} ({} entries)", service.url(), log.size()?);
        serve_all(vec![(service, sigstack_rekor::router(log))]).await
    })
}

fn serve_fulcio(args: ServeFulcioArgs) -> anyhow::Result<()> {
    let state_dir = open_state_dir(&args.state.state_dir)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let service = BoundService::bind("fulcio", args.listen.host, args.port).await?;
        let oidc_url = args.oidc_url.trim_end_matches('/').to_string();
        let keys = sigstack_fulcio::KeySource::JwksUrl(format!("{oidc_url}/.well-known/jwks"));
        let ca = open_fulcio(&state_dir, local_issuers(&args.oidc.github_issuer, &oidc_url, keys), &args.fulcio)?;
        println!("sigstack fulcio listening on {} (tokens verified with {oidc_url})", service.url());
        serve_all(vec![(service, sigstack_fulcio::router(ca))]).await
    })
}

fn serve_oidc(args: ServeOidcArgs) -> anyhow::Result<()> {
    let state_dir = open_state_dir(&args.state.state_dir)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let service = BoundService::bind("oidc", args.listen.host, args.port).await?;
        let url = args.public_url.clone().unwrap_or_else(|| service.url());
        let issuer = open_issuer(&state_dir, url.clone(), &args.oidc)?;
        println!("sigstack oidc listening on {} (issuer {url})", service.url());
        serve_all(vec![(service, sigstack_oidc::router(issuer))]).await
    })
}
