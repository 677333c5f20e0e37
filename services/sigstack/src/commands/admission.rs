//! `sigstack policy render` and `sigstack apply`: the Kyverno policy for a local stack, and its
//! evaluation against resources like `kyverno apply`, verifying with the same code as `sigstack verify`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use sigstack::verifier::PipelineVerifier;
use std::sync::Arc;

use sigstack_admission::{ImageVerifier, Phase, PolicySet, RequestInfo, RuleStatus, evaluate_policy_set};
use sigstack_pipeline::Trust;

use crate::StateDirArg;
use crate::stack::StackDescription;

/// The production policy, as shipped in policy/: the ClusterPolicy (Kyverno's deprecated type,
/// which many clusters still run) and the same rules as an ImageValidatingPolicy.
const SOURCE_POLICY: &str = include_str!("../../../../policy/verify-signed-images.yaml");
const SOURCE_IVPOL: &str = include_str!("../../../../policy/verify-signed-images-ivpol.yaml");

/// Which type of the shipped policy `policy render` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyType {
    /// kyverno.io/v1 ClusterPolicy with verifyImages (deprecated by Kyverno since 1.17).
    ClusterPolicy,
    /// policies.kyverno.io/v1 ImageValidatingPolicy (CEL; what Kyverno recommends).
    Ivpol,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Write the Kyverno policy for the running stack: its registry, inline trust material.
    Render(RenderArgs),
    /// Attack a policy with every artifact it should refuse (built, signed and published in a
    /// stack's registry) and print its report card; exit 1 when it admits one it should refuse.
    Probe(Box<crate::commands::policy_probe::ProbeArgs>),
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// The GitHub organisation whose workflows may sign, and whose repository path in the registry is admitted.
    #[arg(long)]
    org: String,
    /// Policy to render [default: the shipped policy of the --type].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Which shipped policy: policy/verify-signed-images.yaml (cluster-policy) or
    /// policy/verify-signed-images-ivpol.yaml (ivpol). Ignored with --policy.
    #[arg(long = "type", value_enum, default_value_t = PolicyType::ClusterPolicy)]
    policy_type: PolicyType,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    let args = match command {
        PolicyCommand::Render(args) => args,
        PolicyCommand::Probe(args) => return crate::commands::policy_probe::run(*args),
    };
    let stack = StackDescription::require(&args.state.state_dir)?;
    let source = match &args.policy {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?,
        None if args.policy_type == PolicyType::Ivpol => SOURCE_IVPOL.to_string(),
        None => SOURCE_POLICY.to_string(),
    };
    let rendered = render_for_stack(&stack, &source, &args.org)?;
    let text = format!(
        "# Rendered by `sigstack policy render --org {}` for the stack in {}: registry and trust material\n# are the stack's; identities and issuer are the production ones.\n{rendered}",
        args.org,
        stack.state_dir.display(),
    );
    match args.output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            let registry = stack.services.get("registry").map_or("", String::as_str);
            eprintln!("wrote {} (registry {registry}, org {})", path.display(), args.org);
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Every policy of `source` (one or more YAML documents, either type) for the stack: its registry
/// for the organisation's, its trust material inline. Refuses what Kyverno (and sigstack) would.
pub fn render_for_stack(stack: &StackDescription, source: &str, org: &str) -> anyhow::Result<String> {
    use serde::Deserialize;
    let registry = stack.services.get("registry").context("the stack has no registry")?;
    let read =
        |file: &str| std::fs::read_to_string(stack.trust_dir.join(file)).with_context(|| format!("read trust/{file}"));
    // A stack with only a Rekor v2 log: its URL and Ed25519 key fill `rekor` (Kyverno's policy
    // validation wants one); type SigstoreBundle takes the logs from the trusted root anyway, and
    // type Cosign cannot verify v2 entries, which carry no SET.
    let (rekor_url, rekor_pem) = match stack.services.get("rekor") {
        Some(url) => (url.clone(), read("rekor.pub")?),
        None => (
            stack.services.get("rekor-v2").cloned().context("the stack has no transparency log")?,
            read("rekor-v2.pub")?,
        ),
    };
    let trust = sigstack_admission::StackTrust {
        roots_pem: read("fulcio-chain.pem")?,
        rekor_url,
        rekor_pem,
        ctlog_pem: read("ctlog.pub")?,
        tuf: match stack.services.get("tuf") {
            Some(url) => Some((url.clone(), read("root.json")?)),
            None => None,
        },
        trusted_root_json: Some(read("trusted_root.json")?),
    };
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(source) {
        let value = Value::deserialize(document).context("the policy is not YAML")?;
        if value.is_null() {
            continue;
        }
        let rendered = sigstack_admission::render(&value, org, registry.trim_start_matches("http://"), &trust);
        documents.push(serde_norway::to_string(&rendered)?);
    }
    let text = documents.join("---\n");
    sigstack_admission::load_policy_set("rendered policy", &text)?;
    Ok(text)
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Policy file, or a directory of them.
    #[arg(long, value_name = "FILE_OR_DIR")]
    policy: PathBuf,
    /// Resources (multi-document YAML): Pods, Deployments, CronJobs...
    #[arg(long, value_name = "FILE")]
    resource: PathBuf,
    /// Write the mutated resources (digest pins, annotations) here.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Admission operation the resources are evaluated for.
    #[arg(long, default_value = "CREATE")]
    operation: String,
    #[command(flatten)]
    verifier: VerifierArgs,
    /// Record each decision in this stack's state directory, for its explorer.
    #[arg(long, env = "SIGSTACK_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// How images are verified: registry patience, and the trusted root of `type: SigstoreBundle`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifierArgs {
    /// Seconds to wait for a registry's answer before it counts as unreachable; connecting waits
    /// at most 5 s.
    #[arg(long = "registry-timeout", env = "SIGSTACK_REGISTRY_TIMEOUT", default_value_t = 8, value_name = "SECONDS")]
    pub registry_timeout: u64,
    /// The trusted root `type: SigstoreBundle` verifies with (what Kyverno takes from its TUF
    /// repository); `eval "$(sigstack env)"` sets it to the stack's.
    #[arg(long, env = "SIGSTACK_TRUSTED_ROOT", value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
}

impl VerifierArgs {
    /// The verifier these options describe.
    pub fn verifier(&self) -> anyhow::Result<PipelineVerifier> {
        let bundle_trust = match &self.trusted_root {
            Some(path) => Some(Trust::load(path)?),
            None => None,
        };
        PipelineVerifier::new(self.registry_timeout, bundle_trust)
    }
}

/// `path` itself, or the `.yaml`/`.yml` files of the directory `path`, in name order.
pub fn policy_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("read {}", path.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every policy of `path` (a file, or a directory of `.yaml`/`.yml` files), of either type.
pub fn read_policies(path: &Path) -> anyhow::Result<PolicySet> {
    let mut policies = PolicySet::default();
    for file in policy_files(path)? {
        let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        policies.extend(sigstack_admission::load_policy_set(&file.display().to_string(), &text)?);
    }
    if policies.is_empty() {
        anyhow::bail!("{}: no policy found", path.display());
    }
    Ok(policies)
}

/// Reads multi-document YAML into JSON values.
pub fn read_resources(path: &Path) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut resources = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).with_context(|| format!("{} is not YAML", path.display()))?;
        if !value.is_null() {
            if !value["kind"].is_string() {
                anyhow::bail!("{}: a resource without kind", path.display());
            }
            resources.push(value);
        }
    }
    Ok(resources)
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let policies = read_policies(&args.policy)?;
    let resources = read_resources(&args.resource)?;
    let verifier: Arc<dyn ImageVerifier + Send + Sync> = Arc::new(args.verifier.verifier()?);
    let mut blocked_any = false;
    let mut mutated_docs = Vec::new();
    let mut verdicts = Vec::new();
    let mut counts = ResultCounts::default();
    // Kyverno runs verifyImages in its mutating webhook and validate rules (and the digest and
    // annotation checks) in its validating webhook: the PHASE column says which row is which.
    println!("{:<34} {:<9} {:<48} {:<6} MESSAGE", "RESOURCE", "PHASE", "POLICY/RULE", "RESULT");
    for resource in &resources {
        let request = RequestInfo::for_object(resource, &args.operation, None);
        let decision = evaluate_policy_set(&policies, resource, &request, Arc::clone(&verifier), Phase::All);
        if let Some(dir) = args.state_dir.as_deref().filter(|dir| dir.join(crate::stack::STACK_FILE).exists()) {
            let record = sigstack_admission::AdmissionRecord::new("apply", resource, None, &decision);
            if let Err(e) = sigstack_admission::DecisionLog::in_state_dir(dir).append(&record) {
                eprintln!("sigstack: cannot record the decision for the explorer: {e}");
            }
        }
        let id = format!(
            "{}/{}/{}",
            resource["kind"].as_str().unwrap_or("?"),
            resource["metadata"]["namespace"].as_str().unwrap_or("default"),
            resource["metadata"]["name"].as_str().unwrap_or("?")
        );
        for r in &decision.results {
            counts.add(r.status);
            let status = match r.status {
                RuleStatus::Pass => "pass",
                RuleStatus::Fail => "fail",
                RuleStatus::Skip => "skip",
                RuleStatus::Error => "error",
            };
            let phase = if r.phase == sigstack_admission::Phase::Mutate { "mutate" } else { "validate" };
            // A denial's reason is printed once, in Kyverno's block message below the table.
            let blocks = (r.status == RuleStatus::Fail && r.enforce)
                || (r.status == RuleStatus::Error && r.failure_policy == sigstack_admission::FailurePolicy::Fail);
            let message = if blocks { "(the reason is in the denial below)" } else { r.message.as_str() };
            println!("{id:<34} {phase:<9} {:<48} {status:<6} {message}", format!("{}/{}", r.policy, r.rule));
        }
        for warning in &decision.warnings {
            verdicts.push(format!("{id}: WARNING {warning}"));
        }
        match &decision.blocked {
            Some(message) => {
                blocked_any = true;
                let indented: String = message.lines().map(|l| format!("  {}\n", l.trim_end())).collect();
                verdicts.push(format!("{id}: DENIED\n{}", indented.trim_end()));
            }
            None => {
                // The images as the admission crate reads them from any Pod-carrying kind.
                let images = sigstack_admission::resource_images(&decision.mutated);
                verdicts.push(format!("{id}: ADMITTED, image {}", images.join(", ")));
            }
        }
        mutated_docs.push(decision.mutated);
    }
    println!();
    for verdict in verdicts {
        println!("{verdict}");
    }
    // Kyverno's own summary line (`kyverno apply`), so the two compare line for line.
    println!("\n{counts}");
    if let Some(path) = args.output {
        let text: Vec<String> = mutated_docs.iter().map(serde_norway::to_string).collect::<Result<_, _>>()?;
        std::fs::write(&path, text.join("---\n")).with_context(|| format!("write {}", path.display()))?;
    }
    if blocked_any {
        anyhow::bail!("at least one resource was blocked");
    }
    Ok(())
}

/// `kyverno apply`'s result counts (cmd/cli/kubectl-kyverno/processor/result.go): every rule
/// answer of both webhook phases; a failure counts as `fail` (the CLI's `warn` needs its
/// `--audit-warn` flag, which sigstack does not have).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResultCounts {
    pass: usize,
    fail: usize,
    warn: usize,
    error: usize,
    skip: usize,
}

impl ResultCounts {
    fn add(&mut self, status: RuleStatus) {
        match status {
            RuleStatus::Pass => self.pass += 1,
            RuleStatus::Fail => self.fail += 1,
            RuleStatus::Error => self.error += 1,
            RuleStatus::Skip => self.skip += 1,
        }
    }
}

impl std::fmt::Display for ResultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ResultCounts { pass, fail, warn, error, skip } = self;
        write!(f, "pass: {pass}, fail: {fail}, warn: {warn}, error: {error}, skip: {skip}")
    }
}
