//! `sigstack exec -- CMD ARGS...`: a stack for the life of one command (a test suite, a script),
//! as Firebase's `emulators:exec` does: start it (ephemeral ports, a temporary state directory),
//! run CMD with the stack's environment, forward signals, stop the stack, exit with CMD's status.

use std::path::PathBuf;

use anyhow::Context;
use sigstack::embedded::{Ports, RegistryChoice, RunningStack, StackOptions};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sigstack exec -- pytest tests/\n  sigstack exec --no-registry -- go test ./...\n  sigstack exec --keep -- sh -c 'cosign sign-blob --yes --bundle b.json --signing-config \"$SIGSTACK_SIGNING_CONFIG\" --trusted-root \"$SIGSTACK_TRUSTED_ROOT\" file'"
)]
pub struct ExecArgs {
    /// State directory [default: a new temporary one, removed afterwards].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep the temporary state directory afterwards (its path is printed).
    #[arg(long)]
    keep: bool,
    /// Use this registry instead of starting Debian's docker-registry beside the stack.
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// Start no registry at all.
    #[arg(long, conflicts_with = "registry")]
    no_registry: bool,
    #[command(flatten)]
    oidc: crate::commands::OidcArgs,
    #[command(flatten)]
    fulcio: crate::commands::FulcioArgs,
    /// The command to run, and its arguments (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs the stack and the command; exits the process with the command's status.
pub fn run(args: ExecArgs) -> anyhow::Result<()> {
    let (temp, state_dir) = match &args.state_dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let temp = tempfile::Builder::new().prefix("sigstack-exec-").tempdir().context("a temporary state dir")?;
            let dir = temp.path().to_path_buf();
            (Some(temp), dir)
        }
    };
    let options = StackOptions {
        ports: Ports::Ephemeral,
        registry: match (&args.registry, args.no_registry) {
            (Some(url), _) => RegistryChoice::Url(url.clone()),
            (None, true) => RegistryChoice::None,
            (None, false) => RegistryChoice::Start,
        },
        github_issuer: args.oidc.github_issuer.clone(),
        issuer_config: args.fulcio.issuer_config.clone(),
        ..StackOptions::new(&state_dir)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // Started on this thread (block_on), which lives as long as the process: the registry's and
    // the command's parent-death signals follow it.
    let code = runtime.block_on(async {
        // Listening before anything starts: a signal that arrives while the stack starts or the
        // command is being spawned is never lost (it once was, and a Ctrl-C ended in success).
        let mut signals = Signals::listen()?;
        let stack = RunningStack::start(options).await.context("the stack did not start; the command was not run")?;
        if let Some(signal) = signals.pending() {
            stack.stop().await?;
            eprintln!("sigstack: interrupted before the command started; it was not run");
            return Ok(128 + signal);
        }
        let env = sigstack::env::stack_env(&stack.description)?;
        let (program, rest) = args.command.split_first().context("give the command to run after --")?;
        let mut command = tokio::process::Command::new(program);
        command.args(rest).envs(env);
        crate::child::die_with_parent(&mut command);
        // Its own process group, so a signal reaches the command's children too (a shell's sleep,
        // a test runner's workers); not when stdin is a terminal, where the command must stay in
        // the terminal's foreground group to read it.
        let own_group = !std::io::IsTerminal::is_terminal(&std::io::stdin());
        if own_group {
            command.process_group(0);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                stack.stop().await?;
                anyhow::bail!("cannot run {program}: {e}");
            }
        };
        let status = wait_forwarding_signals(&mut child, own_group, &mut signals).await;
        stack.stop().await?;
        status.map(exit_code)
    })?;
    drop(runtime);
    match temp {
        Some(temp) if args.keep => eprintln!("sigstack: state kept in {}", temp.keep().display()),
        Some(temp) => drop(temp),
        None => {}
    }
    std::process::exit(code);
}

/// SIGINT, SIGTERM and SIGHUP, caught from the moment they are listened to (tokio keeps one
/// pending delivery per stream, so a signal before the first `recv` is still seen).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    async fn recv(&mut self) -> libc::c_int {
        tokio::select! {
            _ = self.interrupt.recv() => libc::SIGINT,
            _ = self.terminate.recv() => libc::SIGTERM,
            _ = self.hangup.recv() => libc::SIGHUP,
        }
    }

    /// A signal that has already arrived, without waiting for one.
    fn pending(&mut self) -> Option<libc::c_int> {
        use std::task::{Context, Poll, Waker};
        let mut context = Context::from_waker(Waker::noop());
        for (stream, number) in [
            (&mut self.interrupt, libc::SIGINT),
            (&mut self.terminate, libc::SIGTERM),
            (&mut self.hangup, libc::SIGHUP),
        ] {
            if let Poll::Ready(Some(())) = stream.poll_recv(&mut context) {
                return Some(number);
            }
        }
        None
    }
}

/// Waits for the command, passing SIGINT, SIGTERM and SIGHUP on to it, or to its process group
/// when it has one (a test runner stopping `sigstack exec` stops its command, and then the stack).
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
    own_group: bool,
    signals: &mut Signals,
) -> anyhow::Result<std::process::ExitStatus> {
    let pid = child.id().map(|p| if own_group { -(p as libc::pid_t) } else { p as libc::pid_t });
    loop {
        tokio::select! {
            status = child.wait() => return Ok(status?),
            signal = signals.recv() => if let Some(pid) = pid {
                // SAFETY: kill(2) of our own child (or its group), which we have not reaped yet.
                unsafe { libc::kill(pid, signal) };
            },
        }
    }
}

/// The command's exit code, or 128 + the signal that ended it (a shell's convention).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
