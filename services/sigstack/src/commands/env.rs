use crate::StateDirArg;
use crate::stack::StackDescription;

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// The repository (ORG/REPO) whose workflow the tokens name [default: sigstack-demo/app].
    #[arg(long, value_name = "ORG/REPO")]
    repo: Option<String>,
    /// The workflow file the tokens name [default: .github/workflows/release.yml].
    #[arg(long, value_name = "PATH")]
    workflow: Option<String>,
    /// The git ref the tokens name [default: refs/heads/main].
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
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
    let identity = sigstack::env::Identity { repository: args.repo, workflow: args.workflow, git_ref: args.git_ref };
    for (name, value) in sigstack::env::stack_env_as(&stack, &identity)? {
        if args.plain {
            println!("{name}={value}");
        } else {
            println!("export {name}={}", shell_quote(&value));
        }
    }
    Ok(())
}
