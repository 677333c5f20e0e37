//! `sigstack explorer`: the explorer of a running stack, served on its own (for a stack started
//! with `--no-explorer`, or a second window on one).

use crate::StateDirArg;
use crate::commands::{DEFAULT_EXPLORER_PORT, ListenArgs};
use crate::server::{BoundService, serve_all};
use crate::stack::StackDescription;
use sigstack::embedded::explorer_for;

#[derive(Debug, clap::Args)]
pub struct ExplorerArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    listen: ListenArgs,
    /// Port to serve the page on (0 for a free one).
    #[arg(long, default_value_t = DEFAULT_EXPLORER_PORT)]
    port: u16,
}

pub fn run(args: ExplorerArgs) -> anyhow::Result<()> {
    let exposure = args.listen.exposure();
    exposure.check_bind(args.listen.host, "the explorer")?;
    let stack = StackDescription::require(&args.state.state_dir)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut service = BoundService::bind("explorer", args.listen.host, args.port).await?;
        let url = service.url();
        service.answer_to(&exposure, [url.as_str()]);
        println!("sigstack explorer of {} on {}", stack.state_dir.display(), service.url());
        let explorer = explorer_for(&stack)?;
        serve_all(vec![(service, sigstack_explorer::router(explorer))]).await
    })
}
