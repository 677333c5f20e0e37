use crate::StateDirArg;
use crate::commands::{DEFAULT_OIDC_PORT, ListenArgs, OidcArgs, open_issuer};
use crate::server::{BoundService, serve_all};
use crate::stack::open_state_dir;

#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {
    /// The mock OIDC issuer alone.
    Oidc(ServeOidcArgs),
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
    let ServeCommand::Oidc(args) = command;
    let state_dir = open_state_dir(&args.state.state_dir)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let service = BoundService::bind("oidc", args.listen.host, args.port).await?;
        let url = args.public_url.clone().unwrap_or_else(|| service.url());
        let issuer = open_issuer(&state_dir, url.clone(), &args.oidc)?;
        println!(
            "sigstack oidc listening on {} (issuer {url})",
            service.url()
        );
        serve_all(vec![(service, sigstack_oidc::router(issuer))]).await
    })
}
