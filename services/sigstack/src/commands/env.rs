use crate::StateDirArg;
use crate::stack::StackDescription;

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    state: StateDirArg,
}

/// Quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn run(args: EnvArgs) -> anyhow::Result<()> {
    let stack = StackDescription::require(&args.state.state_dir)?;
    for (name, value) in sigstack::env::stack_env(&stack)? {
        println!("export {name}={}", shell_quote(&value));
    }
    Ok(())
}
