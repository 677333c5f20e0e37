//! `sigstack policy probe`: the command around [`sigstack::policy_probe`]: the policy as written
//! and as rendered for a stack, the stack (a running one, or its own), the judges, the card.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use sigstack::policy_probe::{Card, Intent, Row, build_probes, judge_kyverno, judge_sigstack, kyverno_cli};
use sigstack::testkit::Stack;
use sigstack_admission::ImageVerifier;

use crate::commands::admission::{VerifierArgs, policy_files, render_for_stack};
use crate::stack::StackDescription;

/// Who judges the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Judge {
    /// sigstack's evaluator (Kyverno's semantics), in-process.
    Sigstack,
    /// The real Kyverno CLI (`kyverno apply`), built by scripts/install.sh kyverno.
    Kyverno,
    /// Both, side by side; any disagreement is flagged and fails the card.
    Both,
}

/// How the card is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CardFormat {
    /// A table for a terminal.
    Text,
    /// One JSON object, for machines.
    Json,
    /// A Markdown table, for a pull request.
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The policy: a file, or a directory of them (ClusterPolicy or ImageValidatingPolicy, as
    /// written for production: ghcr.io/ORG and the public-good Sigstore; `<org>` stands for --org).
    #[arg(long, value_name = "FILE_OR_DIR")]
    policy: PathBuf,
    /// The GitHub organisation the policy is for: its registry path and workflows.
    #[arg(long, default_value = sigstack_admission::SOURCE_ORG)]
    org: String,
    /// Who judges the probes.
    #[arg(long, value_enum, default_value_t = Judge::Sigstack)]
    judge: Judge,
    /// How the card is printed.
    #[arg(long, value_enum, default_value_t = CardFormat::Text)]
    format: CardFormat,
    /// Write the card here as well as to standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A running stack's state directory; without one there, the probe starts a stack of its own
    /// for the run (in-process, a temporary directory, Debian's docker-registry beside it).
    #[arg(long, env = "SIGSTACK_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    verifier: VerifierArgs,
}

/// The policy files' text, one YAML stream, `<org>` replaced.
fn read_policy(path: &Path, org: &str) -> anyhow::Result<String> {
    let mut texts = Vec::new();
    for file in policy_files(path)? {
        texts.push(std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?);
    }
    if texts.is_empty() {
        bail!("{}: no policy file", path.display());
    }
    Ok(texts.join("\n---\n").replace("<org>", org))
}

fn noop_stop() -> sigstack::testkit::StopStack {
    Box::new(|| Box::pin(async { Ok(()) }))
}

pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let source = read_policy(&args.policy, &args.org)?;
    let mut findings = Vec::new();
    // As written: Kyverno validates a policy before it takes it, and a policy it refuses is
    // simply not there (kubectl apply fails; `kyverno apply` skips the file).
    if let Err(e) = sigstack_admission::load_policy_set(&args.policy.display().to_string(), &source) {
        findings.push(format!(
            "as written, Kyverno refuses this policy, so nothing in it is enforced ({e}); the probes below run on it with the stack's trust filled in"
        ));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let running = match &args.state_dir {
        Some(dir) => StackDescription::read(dir)?,
        None => None,
    };
    let stack = match running {
        Some(description) => {
            eprintln!("probing on the stack in {}", description.state_dir.display());
            Stack::attached(description, noop_stop(), None)
        }
        None => {
            // Both logs, so bundles are probed with Rekor v1 and with Rekor v2 + timestamps.
            eprintln!("starting a stack of its own for the probes");
            runtime.block_on(Stack::builder().registry(true).rekor(sigstack::testkit::RekorVersions::Both).start())?
        }
    };
    let description = StackDescription::require(stack.state_dir())?;
    let registry = description
        .services
        .get("registry")
        .context("the stack has no registry: install docker-registry (scripts/install.sh)")?
        .trim_start_matches("http://")
        .to_string();
    let rendered = render_for_stack(&description, &source, &args.org)?;
    let policy = sigstack_admission::load_policy_set("rendered policy", &rendered)?;
    let intent = Intent::read(&policy, &rendered, &registry, &args.org);
    if !intent.registry_restricted {
        findings.push(format!(
            "no registry restriction: the policy names {registry}/{}/ only in the images it verifies, so an image from anywhere else is not checked at all",
            args.org
        ));
    }
    eprintln!("building the probes in {registry}/{}/probe-*", args.org);
    let other = runtime.block_on(Stack::builder().registry(false).start())?;
    let probes = runtime.block_on(build_probes(&stack, &other, &args.org, &intent))?;
    runtime.block_on(other.stop())?;

    let work = tempfile::tempdir()?;
    let sigstack_verdicts = match args.judge {
        Judge::Kyverno => None,
        _ => {
            let mut verifier = args.verifier.clone();
            verifier.trusted_root.get_or_insert_with(|| description.trust_dir.join("trusted_root.json"));
            let verifier: Arc<dyn ImageVerifier + Send + Sync> = Arc::new(verifier.verifier()?);
            eprintln!("judging {} probes with sigstack", probes.len());
            Some(judge_sigstack(&policy, &probes, verifier))
        }
    };
    let kyverno_verdicts = match args.judge {
        Judge::Sigstack => None,
        _ => {
            let cli = kyverno_cli()?;
            let policy_file = work.path().join("policy.yaml");
            std::fs::write(&policy_file, &rendered)?;
            eprintln!("judging {} probes with {}", probes.len(), cli.display());
            Some(judge_kyverno(&cli, &policy_file, &probes, work.path())?)
        }
    };
    let rows = probes
        .into_iter()
        .enumerate()
        .map(|(i, probe)| Row {
            probe,
            sigstack: sigstack_verdicts.as_ref().map(|v| v[i].clone()),
            kyverno: kyverno_verdicts.as_ref().map(|v| v[i].clone()),
        })
        .collect();
    let card = Card { policy: args.policy.display().to_string(), intent, findings, rows };
    let text = match args.format {
        CardFormat::Text => card.text(),
        CardFormat::Json => serde_json::to_string_pretty(&card.json())? + "\n",
        CardFormat::Markdown => card.markdown(),
    };
    print!("{text}");
    if let Some(path) = &args.output {
        std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
    }
    // Decisions go to the stack's explorer too when it is a running one.
    if let Some(dir) = &args.state_dir {
        let _ = std::fs::write(dir.join("probe-card.json"), serde_json::to_vec_pretty(&card.json())?);
    }
    runtime.block_on(stack.stop())?;
    if card.failed() {
        let (refused, of) = card.score();
        bail!("the policy failed its probes: {refused}/{of} refused as they should be (see FINDING and DISAGREE rows)");
    }
    Ok(())
}
