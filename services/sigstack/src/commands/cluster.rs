//! `sigstack cluster up|down|env`: the command over the library's test-cluster harness
//! (`sigstack::cluster`): clap options in, the harness does the rest.

use std::path::PathBuf;

use crate::StateDirArg;
use sigstack::cluster::{ClusterDescription, ClusterOptions};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start etcd and kube-apiserver on 127.0.0.1 (and Kyverno with --kyverno) until Ctrl-C or SIGTERM;
    /// writes DIR/cluster/cluster.json and an admin kubeconfig when ready.
    Up(ClusterUpArgs),
    /// Stop the cluster started by `cluster up` on this state directory.
    Down(ClusterDirArgs),
    /// Print `export KUBECONFIG=...` for the running cluster.
    Env(ClusterDirArgs),
}

#[derive(Debug, clap::Args)]
pub struct ClusterDirArgs {
    #[command(flatten)]
    state: StateDirArg,
}

#[derive(Debug, clap::Args)]
pub struct ClusterUpArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// Directory holding kube-apiserver, etcd and kubectl [default: the newest build under
    /// ~/.cache/sigstack/bin (scripts/install.sh kube makes it)].
    #[arg(long, env = "SIGSTACK_KUBE_BIN", value_name = "DIR")]
    kube_bin: Option<PathBuf>,
    /// Also run the real Kyverno admission controller against the API server.
    #[arg(long)]
    kyverno: bool,
    /// Directory holding the kyverno binary and its CRDs [default: the newest build under
    /// ~/.cache/sigstack/bin (scripts/install.sh kyverno makes it)].
    #[arg(long, env = "SIGSTACK_KYVERNO_BIN", value_name = "DIR")]
    kyverno_bin: Option<PathBuf>,
    /// Kyverno judges only namespaces carrying this label (KEY=VALUE) [default: every namespace
    /// but kube-system and kyverno].
    #[arg(long, value_name = "KEY=VALUE")]
    kyverno_namespace_label: Option<String>,
}

pub fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Up(args) => sigstack::cluster::up(&ClusterOptions {
            state_dir: args.state.state_dir,
            kube_bin: args.kube_bin,
            kyverno: args.kyverno,
            kyverno_bin: args.kyverno_bin,
            kyverno_namespace_label: args.kyverno_namespace_label,
        }),
        ClusterCommand::Down(args) => sigstack::cluster::down(&args.state.state_dir),
        ClusterCommand::Env(args) => {
            let description = ClusterDescription::require(&args.state.state_dir)?;
            println!("export KUBECONFIG='{}'", description.kubeconfig.display());
            Ok(())
        }
    }
}
