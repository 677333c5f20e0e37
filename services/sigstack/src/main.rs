//! `sigstack`: a local, hermetic, Sigstore-compatible test stack.
//!
//! The binary only wires configuration to the service crates; it holds no domain logic.

mod commands;

use sigstack::{child, server, stack};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A local, hermetic, Sigstore-compatible test stack: a mock OIDC issuer (GitHub-Actions-shaped
/// tokens), a Fulcio-style CA and a Rekor-style log, for supply-chain policy tests and offline demos.
#[derive(Debug, Parser)]
#[command(name = "sigstack", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where keys, logs and trust files live. A restart with the same directory is the same trust
/// domain; a new directory is a new one.
#[derive(Debug, Clone, clap::Args)]
struct StateDirArg {
    /// State directory (created 0700 on first use).
    #[arg(long, env = "SIGSTACK_STATE_DIR", default_value = ".sigstack", value_name = "DIR")]
    state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process until Ctrl-C or SIGTERM, and write DIR/stack.json when ready.
    Up(commands::up::UpArgs),
    /// Run a command with a stack of its own: start one (ephemeral ports, a temporary state
    /// directory), run CMD with its environment, stop it, exit with CMD's status.
    Exec(commands::exec::ExecArgs),
    /// Serve the explorer (a web page of the whole chain, live) for a running stack.
    Explorer(commands::explorer::ExplorerArgs),
    /// Run one service alone (for one-container-per-service setups).
    #[command(subcommand)]
    Serve(commands::serve::ServeCommand),
    /// Print one signed OIDC token (a JWT) minted with the issuer keys of the state directory.
    Token(commands::token::TokenArgs),
    /// Print `export` lines that point a shell's Sigstore clients at a running stack.
    Env(commands::env::EnvArgs),
    /// Describe a stack started elsewhere (compose, a container) from its trust files, so the
    /// pipeline commands (build, sign, attest, verify, apply) work against it.
    Attach(commands::attach::AttachArgs),
    /// Exit 0 if a URL answers 2xx within a few seconds (container health checks).
    Probe(commands::probe::ProbeArgs),
    /// Build a small OCI image hermetically (no Docker) and push it; prints its digest.
    Build(commands::pipeline::BuildArgs),
    /// Write the SPDX 2.3 SBOM of an image, read from its layers.
    Sbom(commands::pipeline::SbomArgs),
    /// Sign an image's digest keylessly and attach the signature the way cosign does.
    Sign(commands::pipeline::SignArgs),
    /// Attest an image (SBOM by default) keylessly and attach it the way cosign does.
    Attest(commands::pipeline::AttestArgs),
    /// Verify an image's signatures offline against the stack's trust files.
    Verify(commands::pipeline::VerifyArgs),
    /// Verify an image's attestations offline against the stack's trust files.
    VerifyAttestation(commands::pipeline::VerifyAttestationArgs),
    /// Sign a file into a Sigstore bundle through the signing config's CA, log (v1 or v2) and TSA
    /// (sigstore-conformance's argument order).
    SignBundle(commands::bundle::SignBundleArgs),
    /// Verify a Sigstore bundle of a file (or sha256:DIGEST) made by any client, offline against a
    /// trusted root; exit non-zero with the reason (sigstore-conformance's argument order).
    VerifyBundle(commands::bundle::VerifyBundleArgs),
    /// Kyverno policies for the stack.
    #[command(subcommand)]
    Policy(commands::admission::PolicyCommand),
    /// Evaluate Kyverno policies against resources, like `kyverno apply`; exit 1 if anything is blocked.
    Apply(commands::admission::ApplyArgs),
    /// Serve AdmissionReview v1 over HTTPS (/mutate, /validate); `webhook manifests` prints the configurations.
    Webhook(commands::webhook::WebhookArgs),
    /// A real Kubernetes API server (and optionally the real Kyverno) on loopback, for admission tests.
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Up(args) => commands::up::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::Explorer(args) => commands::explorer::run(args),
        Command::Serve(command) => commands::serve::run(command),
        Command::Token(args) => commands::token::run(args),
        Command::Env(args) => commands::env::run(args),
        Command::Attach(args) => commands::attach::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Build(args) => commands::pipeline::build(args),
        Command::Sbom(args) => commands::pipeline::sbom(args),
        Command::Sign(args) => commands::pipeline::sign(args),
        Command::Attest(args) => commands::pipeline::attest(args),
        Command::Verify(args) => commands::pipeline::verify(args),
        Command::VerifyAttestation(args) => commands::pipeline::verify_attestation(args),
        Command::SignBundle(args) => commands::bundle::sign_bundle(args),
        Command::VerifyBundle(args) => commands::bundle::verify_bundle(args),
        Command::Policy(command) => commands::admission::policy(command),
        Command::Apply(args) => commands::admission::apply(args),
        Command::Webhook(args) => commands::webhook::run(args),
        Command::Cluster(command) => commands::cluster::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sigstack: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SIGSTACK_LOG").unwrap_or_else(|_| EnvFilter::new("warn,sigstack=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[cfg(test)]
mod tests {
    /// docs/cli.md is generated from the clap definitions above, never written by hand; this
    /// fails when the committed page is stale.
    #[test]
    fn the_cli_reference_is_current() {
        let generated = clap_markdown::help_markdown::<super::Cli>();
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), std::path::PathBuf::from)
            .join("../../docs/cli.md");
        if std::env::var_os("SIGSTACK_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/cli.md is stale: run `SIGSTACK_UPDATE_DOCS=1 cargo test -p sigstack --bin sigstack \
             the_cli_reference_is_current` and commit it"
        );
    }
}
