use crate::StateDirArg;
use crate::stack::StackDescription;

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    state: StateDirArg,
    #[command(flatten)]
    workflow: super::WorkflowArgs,
    /// `NAME=value` lines (for `$GITHUB_ENV` or a dotenv file) instead of shell `export` lines.
    #[arg(long)]
    plain: bool,
}

/// Quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn run(args: EnvArgs) -> anyhow::Result<()> {
    let stack = StackDescription::require(&args.state.state_dir)?;
    let identity = sigstack::env::Identity {
        repository: args.workflow.repo,
        workflow: args.workflow.workflow,
        git_ref: args.workflow.git_ref,
    };
    for (name, value) in sigstack::env::stack_env_as(&stack, &identity)? {
        if args.plain {
            println!("{name}={value}");
        } else {
            println!("export {name}={}", shell_quote(&value));
        }
    }
    Ok(())
}
