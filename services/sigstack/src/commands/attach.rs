//! `sigstack attach`: describe a stack another process runs (compose.yaml's containers, the
//! testcontainers module, a teammate's machine) so the pipeline commands work against it.

use std::path::PathBuf;

use anyhow::Context;

use crate::StateDirArg;
use sigstack::stack::{StackDescription, open_state_dir, services_from_signing_config};

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// The stack's trust files (e.g. copied out of compose's `tuf` container with
    /// `docker compose cp tuf:/state/trust DIR`); its signing config names the services.
    #[arg(long, value_name = "DIR")]
    trust_dir: PathBuf,
    /// The registry images go to.
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// The TUF repository.
    #[arg(long, value_name = "URL")]
    tuf: Option<String>,
}

pub fn run(args: AttachArgs) -> anyhow::Result<()> {
    let trust_dir =
        args.trust_dir.canonicalize().with_context(|| format!("no trust directory at {}", args.trust_dir.display()))?;
    let mut services = services_from_signing_config(&trust_dir.join("signing_config.v0.2.json"))?;
    for (name, url) in [("registry", args.registry), ("tuf", args.tuf)] {
        if let Some(url) = url {
            services.insert(name.to_string(), url.trim_end_matches('/').to_string());
        }
    }
    let state_dir = open_state_dir(&args.state.state_dir)?;
    // pid 0: no process of this machine serves it; nothing here stops it.
    let description = StackDescription { services, trust_dir, state_dir: state_dir.clone(), pid: 0 };
    description.write(&state_dir)?;
    for (name, url) in &description.services {
        println!("  {name:<9} {url}");
    }
    println!(
        "attached: {} describes it (tokens come from the stack's own issuer: --identity-token)",
        state_dir.join("stack.json").display()
    );
    Ok(())
}
