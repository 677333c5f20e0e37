//! `sign-bundle` and `verify-bundle`: Sigstore bundles of blobs, with the arguments in the order
//! of sigstore-conformance's client protocol, so bundles of any client can be checked here and
//! sigstack can be run where a conformance client is expected.

use std::path::PathBuf;

use anyhow::Context;
use sigstack_pipeline::{Artifact, SigningServices, Trust};

use crate::StateDirArg;
use crate::commands::pipeline::{PolicyArgs, describe};

#[derive(Debug, clap::Args)]
pub struct SignBundleArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// sigstore-conformance's flag for the public staging instance: refused (sigstack signs only
    /// against a local stack).
    #[arg(long)]
    staging: bool,
    /// Sign FILE as an in-toto statement, in a DSSE envelope.
    #[arg(long)]
    in_toto: bool,
    /// OIDC token to sign with [default: one minted by the stack's issuer].
    #[arg(long, value_name = "JWT")]
    identity_token: Option<String>,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// Trusted root the new bundle is checked against [default: the stack's].
    #[arg(long, env = "SIGSTACK_TRUSTED_ROOT", value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Signing config naming the CA, the log (v1 or v2) and the TSA [default: the stack's].
    #[arg(long, env = "SIGSTACK_SIGNING_CONFIG", value_name = "FILE")]
    signing_config: Option<PathBuf>,
    /// The file to sign.
    file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct VerifyBundleArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// sigstore-conformance's flag for the public staging instance: refused.
    #[arg(long)]
    staging: bool,
    /// The bundle to verify.
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Trusted root [default: the stack's].
    #[arg(long, env = "SIGSTACK_TRUSTED_ROOT", value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// The artifact, or its digest as sha256:<64 hex digits>.
    file_or_digest: String,
}

fn refuse_staging(staging: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !staging,
        "--staging names Sigstore's public staging instance; sigstack works offline against a local stack \
         (pass --trusted-root and --signing-config)"
    );
    Ok(())
}

fn stack_file(explicit: Option<PathBuf>, state: &StateDirArg, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let path = state.state_dir.join("trust").join(name);
    anyhow::ensure!(
        path.exists(),
        "no {name}: pass it, or start a stack on {} (sigstack up)",
        state.state_dir.display()
    );
    Ok(path)
}

pub fn sign_bundle(args: SignBundleArgs) -> anyhow::Result<()> {
    refuse_staging(args.staging)?;
    let services = SigningServices::from_signing_config(&stack_file(
        args.signing_config,
        &args.state,
        "signing_config.v0.2.json",
    )?)?;
    let trust = Trust::load(&stack_file(args.trusted_root, &args.state, "trusted_root.json")?)?;
    let data = std::fs::read(&args.file).with_context(|| format!("read {}", args.file.display()))?;
    let token = match args.identity_token {
        Some(token) => token,
        None => crate::commands::open_recorded_issuer(&args.state.state_dir)?.mint(&Default::default())?,
    };
    let bundle = tokio::runtime::Runtime::new()?.block_on(sigstack_pipeline::sign_bundle(
        &services,
        &token,
        &data,
        args.in_toto,
    ))?;
    // What was written must verify with the trusted root: a client that cannot check its own
    // output should say so now, not at the verifier.
    let artifact = match args.in_toto {
        true => {
            let statement: serde_json::Value = serde_json::from_slice(&data)?;
            let digest = statement["subject"][0]["digest"]["sha256"].as_str().unwrap_or_default().to_string();
            Artifact::parse(&format!("sha256:{digest}"))
                .context("--in-toto: the statement's first subject has no sha256 digest")?
        }
        false => Artifact::Bytes(data),
    };
    sigstack_pipeline::verify_bundle(&trust, &bundle, &artifact, &Default::default(), &Default::default())
        .map_err(|reason| anyhow::anyhow!("the new bundle does not verify with the trusted root: {reason}"))?;
    std::fs::write(&args.bundle, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("write {}", args.bundle.display()))?;
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    eprintln!(
        "signed {} as a {} {} entry at index {} of {} (Rekor v{}){}; bundle written to {}",
        args.file.display(),
        entry["kindVersion"]["kind"].as_str().unwrap_or("?"),
        entry["kindVersion"]["version"].as_str().unwrap_or("?"),
        entry["logIndex"].as_str().unwrap_or("?"),
        services.rekor.0,
        services.rekor.1,
        if services.tsa.is_some() { ", with a signed timestamp" } else { "" },
        args.bundle.display()
    );
    Ok(())
}

pub fn verify_bundle(args: VerifyBundleArgs) -> anyhow::Result<()> {
    refuse_staging(args.staging)?;
    let policy = args.policy.policy()?;
    let checks = args.policy.checks()?;
    anyhow::ensure!(
        checks.public_key.is_some() || args.policy.has_identity(),
        "give --certificate-identity and --certificate-oidc-issuer (or their -regexp forms), or --key"
    );
    let trust = Trust::load(&stack_file(args.trusted_root, &args.state, "trusted_root.json")?)?;
    let bytes = std::fs::read(&args.bundle).with_context(|| format!("read {}", args.bundle.display()))?;
    let bundle: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a JSON bundle", args.bundle.display()))?;
    let artifact = Artifact::parse(&args.file_or_digest)?;
    let verified = sigstack_pipeline::verify_bundle(&trust, &bundle, &artifact, &policy, &checks)
        .map_err(|reason| anyhow::anyhow!("{} does not verify: {reason}", args.bundle.display()))?;
    println!("Verified {} for {}:\n{}", args.bundle.display(), verified.digest, describe(&verified, &checks));
    Ok(())
}
