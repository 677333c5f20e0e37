//! The artifact pipeline against a running stack: build, sbom, sign, attest, verify,
//! verify-attestation. Each prints what it did and the digest it acted on.

use std::path::PathBuf;

use anyhow::Context;
use sigstack_pipeline::{Checks, IdentityPolicy, ImageSource, Registry, Services, Trust};

use crate::StateDirArg;
use crate::commands::open_recorded_issuer;
use crate::stack::StackDescription;

/// Which stack and registry a pipeline command talks to.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    #[command(flatten)]
    state: StateDirArg,
    /// Registry URL [default: the stack's, from DIR/stack.json].
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
}

struct Context2 {
    stack: StackDescription,
    registry: Registry,
}

impl Target {
    fn open(&self) -> anyhow::Result<Context2> {
        let dir = &self.state.state_dir;
        let stack = StackDescription::require(dir)?;
        let url = match &self.registry {
            Some(url) => url.clone(),
            None => stack
                .services
                .get("registry")
                .cloned()
                .context("the stack has no registry: install docker-registry or pass --registry URL")?,
        };
        Ok(Context2 { registry: Registry::new(&url)?, stack })
    }
}

impl Context2 {
    fn services(&self) -> anyhow::Result<Services> {
        Services::from_stack(&self.stack.services)
    }

    fn trust(&self) -> anyhow::Result<Trust> {
        Ok(Trust::load(&self.stack.trust_dir.join("trusted_root.json"))?)
    }
}

/// Identity for signing: a given token, or one minted by the stack's issuer.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Sign with this OIDC token instead of minting one from the stack's issuer.
    #[arg(long, value_name = "JWT")]
    identity_token: Option<String>,
    /// Repository of the minted GitHub Actions token, ORG/REPO [default: sigstack-demo/app].
    #[arg(long, value_name = "ORG/REPO")]
    repo: Option<String>,
    /// Workflow file of the minted token [default: .github/workflows/release.yml].
    #[arg(long, value_name = "PATH")]
    workflow: Option<String>,
}

impl TokenArgs {
    fn token(&self, state_dir: &std::path::Path) -> anyhow::Result<String> {
        if let Some(token) = &self.identity_token {
            return Ok(token.clone());
        }
        let request = sigstack_oidc::TokenRequest {
            repository: self.repo.clone(),
            workflow: self.workflow.clone(),
            ..Default::default()
        };
        Ok(open_recorded_issuer(state_dir)?.mint(&request)?)
    }
}

/// Who must have signed (cosign's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Exact certificate identity (SAN), e.g. https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main.
    #[arg(long)]
    certificate_identity: Option<String>,
    /// Certificate identity as a regular expression (RE2 syntax, matched anywhere unless anchored, as cosign does).
    #[arg(long)]
    certificate_identity_regexp: Option<String>,
    /// Exact OIDC issuer.
    #[arg(long)]
    certificate_oidc_issuer: Option<String>,
    /// OIDC issuer as a regular expression (RE2 syntax, matched anywhere unless anchored, as cosign does).
    #[arg(long)]
    certificate_oidc_issuer_regexp: Option<String>,
    /// PEM public key the signature must verify with (signed with `cosign sign --key`), instead of a
    /// certificate and identity.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    key: Option<PathBuf>,
    /// Do not check the transparency log entry (cosign's flag; for signatures made with --tlog-upload=false).
    #[arg(long)]
    insecure_ignore_tlog: bool,
    /// Do not check the certificate's embedded SCT (cosign's flag).
    #[arg(long)]
    insecure_ignore_sct: bool,
}

impl PolicyArgs {
    pub(crate) fn checks(&self) -> anyhow::Result<Checks> {
        let public_key = match &self.key {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
                let pem = pem::parse(text).with_context(|| format!("{} is not a PEM public key", path.display()))?;
                sigstack_fulcio::SubjectKey::from_spki_der(pem.contents())
                    .with_context(|| format!("{} is not a supported public key", path.display()))?;
                Some(pem.into_contents())
            }
            None => None,
        };
        Ok(Checks { tlog: !self.insecure_ignore_tlog, sct: !self.insecure_ignore_sct, public_key })
    }

    /// Whether an identity (exact or regexp) was asked for.
    pub(crate) fn has_identity(&self) -> bool {
        (self.certificate_identity.is_some() || self.certificate_identity_regexp.is_some())
            && (self.certificate_oidc_issuer.is_some() || self.certificate_oidc_issuer_regexp.is_some())
    }

    pub(crate) fn policy(&self) -> anyhow::Result<IdentityPolicy> {
        if self.key.is_some() {
            return Ok(IdentityPolicy::default());
        }
        if self.certificate_identity.is_none() && self.certificate_identity_regexp.is_none() {
            anyhow::bail!(
                "give --certificate-identity or --certificate-identity-regexp: verifying without an expected identity proves nothing"
            );
        }
        if self.certificate_oidc_issuer.is_none() && self.certificate_oidc_issuer_regexp.is_none() {
            anyhow::bail!("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp");
        }
        let regex =
            |r: &Option<String>| r.as_deref().map(regex::Regex::new).transpose().context("invalid regular expression");
        Ok(IdentityPolicy {
            identity: self.certificate_identity.clone(),
            identity_regexp: regex(&self.certificate_identity_regexp)?,
            issuer: self.certificate_oidc_issuer.clone(),
            issuer_regexp: regex(&self.certificate_oidc_issuer_regexp)?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    target: Target,
    /// Repository to push to, e.g. acme/widget.
    #[arg(long)]
    name: String,
    /// Tag to push under.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Make the image from the regular files under this directory [default: the built-in demo app].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Version string of the demo app (different versions are different images).
    #[arg(long, default_value = "1.0.0", conflicts_with = "dir")]
    app_version: String,
}

#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    #[command(flatten)]
    target: Target,
    /// Image (repository:tag or @digest, in the stack's registry).
    image: String,
    /// Write the SBOM here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// How signatures and attestations are attached.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// cosign's `.sig`/`.att` tags (cosign v2; Kyverno `type: Cosign`, its default)
    Cosign,
    /// A Sigstore bundle as an OCI referrer (cosign v3's default; Kyverno `type: SigstoreBundle`)
    Bundle,
}

impl From<FormatArg> for sigstack_pipeline::Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Cosign => sigstack_pipeline::Format::Cosign,
            FormatArg::Bundle => sigstack_pipeline::Format::Bundle,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    token: TokenArgs,
    /// How to attach the signature [default: cosign; bundle on a stack without Rekor v1].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Image to sign; a tag is resolved to its digest first.
    image: String,
}

#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    token: TokenArgs,
    /// Image to attest; a tag is resolved to its digest first.
    image: String,
    /// Predicate file (JSON).
    #[arg(long, value_name = "FILE", conflicts_with = "sbom")]
    predicate: Option<PathBuf>,
    /// An SPDX JSON SBOM made by another tool (implies --type spdxjson). Without --predicate or
    /// --sbom, an spdxjson attestation carries `sigstack sbom` of the image.
    #[arg(long, value_name = "FILE")]
    sbom: Option<PathBuf>,
    /// Predicate type: spdxjson, cyclonedx, slsaprovenance, slsaprovenance1, or a URI.
    #[arg(long = "type", default_value = "spdxjson")]
    predicate_type: String,
    /// How to attach the attestation [default: cosign; bundle on a stack without Rekor v1].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Image to verify (a tag is resolved to a digest; that digest must be signed).
    image: String,
}

#[derive(Debug, clap::Args)]
pub struct VerifyAttestationArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Predicate type: spdxjson, cyclonedx, slsaprovenance, slsaprovenance1, or a URI.
    #[arg(long = "type", default_value = "spdxjson")]
    predicate_type: String,
    /// Image whose attestations to verify.
    image: String,
}

/// cosign's predicate type names (cosign pkg/cosign/attestation).
pub fn predicate_type_uri(name: &str) -> String {
    match name {
        "spdx" | "spdxjson" => "https://spdx.dev/Document".into(),
        "cyclonedx" => "https://cyclonedx.org/bom".into(),
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2".into(),
        "slsaprovenance1" => "https://slsa.dev/provenance/v1".into(),
        "link" => "https://in-toto.io/Link/v1".into(),
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1".into(),
        "custom" => "https://cosign.sigstore.dev/attestation/v1".into(),
        uri => uri.into(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Runtime::new()?)
}

pub fn build(args: BuildArgs) -> anyhow::Result<()> {
    let ctx = args.target.open()?;
    let source = match args.dir {
        Some(dir) => ImageSource::Dir(dir),
        None => ImageSource::Demo { version: args.app_version },
    };
    let outcome = runtime()?.block_on(sigstack_pipeline::build(&ctx.registry, &args.name, &args.tag, &source))?;
    eprintln!("built and pushed {} ({} files)", outcome.reference, outcome.files);
    println!("{}", outcome.digest);
    Ok(())
}

pub fn sbom(args: SbomArgs) -> anyhow::Result<()> {
    let ctx = args.target.open()?;
    let (digest, document) = runtime()?.block_on(sigstack_pipeline::sbom(&ctx.registry, &args.image))?;
    let text = serde_json::to_string_pretty(&document)?;
    let packages = document["packages"].as_array().map_or(0, Vec::len);
    let files = document["files"].as_array().map_or(0, Vec::len);
    match args.output {
        Some(path) => {
            std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
            eprintln!("SBOM of {digest}: {packages} packages, {files} files -> {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// cosign's format unless the stack has no Rekor v1 log to give it a SET.
fn default_format(format: Option<FormatArg>, services: &Services) -> sigstack_pipeline::Format {
    match format {
        Some(format) => format.into(),
        None if services.rekor.is_empty() => sigstack_pipeline::Format::Bundle,
        None => sigstack_pipeline::Format::Cosign,
    }
}

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let ctx = args.target.open()?;
    let token = args.token.token(&ctx.stack.state_dir)?;
    let services = ctx.services()?;
    let format = default_format(args.format, &services);
    let outcome =
        runtime()?.block_on(sigstack_pipeline::sign(&ctx.registry, &services, &token, &args.image, format))?;
    eprintln!(
        "signed {} as {} (log index {}); {} signature(s) under tag {}",
        outcome.digest,
        outcome.identity,
        outcome.log_index.map_or_else(|| "none".to_string(), |i| i.to_string()),
        outcome.signatures,
        outcome.tag
    );
    println!("{}", outcome.digest);
    Ok(())
}

pub fn attest(args: AttestArgs) -> anyhow::Result<()> {
    let ctx = args.target.open()?;
    let token = args.token.token(&ctx.stack.state_dir)?;
    let runtime = runtime()?;
    let predicate_type =
        if args.sbom.is_some() { predicate_type_uri("spdxjson") } else { predicate_type_uri(&args.predicate_type) };
    let predicate: serde_json::Value = match args.predicate.or(args.sbom) {
        Some(path) => {
            serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("read {}", path.display()))?)
                .with_context(|| format!("{} is not JSON", path.display()))?
        }
        None if predicate_type == predicate_type_uri("spdxjson") => {
            runtime.block_on(sigstack_pipeline::sbom(&ctx.registry, &args.image))?.1
        }
        None => anyhow::bail!("give --predicate FILE for predicate type {predicate_type}"),
    };
    let services = ctx.services()?;
    let format = default_format(args.format, &services);
    let outcome = runtime.block_on(sigstack_pipeline::attest(
        &ctx.registry,
        &services,
        &token,
        &args.image,
        &predicate_type,
        &predicate,
        format,
    ))?;
    eprintln!(
        "attested {} ({}) as {} (log index {}) under tag {}",
        outcome.digest, outcome.predicate_type, outcome.identity, outcome.log_index, outcome.tag
    );
    println!("{}", outcome.digest);
    Ok(())
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    // The flags first: a mistake in them is reported before anything is contacted.
    let policy = args.policy.policy()?;
    let checks = args.policy.checks()?;
    let ctx = args.target.open()?;
    let trust = ctx.trust()?;
    let verified = runtime()?.block_on(sigstack_pipeline::verify_image_signatures(
        &ctx.registry,
        &trust,
        &args.image,
        &policy,
        &checks,
    ))?;
    for v in &verified {
        println!("Verified signature of {}:\n{}", v.digest, describe(v, &checks));
    }
    Ok(())
}

pub fn verify_attestation(args: VerifyAttestationArgs) -> anyhow::Result<()> {
    let policy = args.policy.policy()?;
    let predicate_type = predicate_type_uri(&args.predicate_type);
    let checks = args.policy.checks()?;
    let ctx = args.target.open()?;
    let trust = ctx.trust()?;
    let verified = runtime()?.block_on(sigstack_pipeline::verify_image_attestations(
        &ctx.registry,
        &trust,
        &args.image,
        &predicate_type,
        &policy,
        &checks,
    ))?;
    for v in &verified {
        println!("Verified {predicate_type} attestation of {}:\n{}", v.digest, describe(v, &checks));
    }
    Ok(())
}

/// What was checked, one line each, in words a person new to Sigstore can follow.
pub(crate) fn describe(v: &sigstack_pipeline::Verified, checks: &Checks) -> String {
    let mut lines = Vec::new();
    match &checks.public_key {
        Some(_) => lines.push("  signature   verifies with the given public key".to_string()),
        None => {
            lines.push(
                "  certificate issued by the stack's CA (Fulcio-style): its chain ends in the trusted root".into(),
            );
            lines.push(if checks.sct {
                "  SCT         the certificate's embedded Signed Certificate Timestamp (a CT log's promise to publish it) verifies".into()
            } else {
                "  SCT         NOT checked (--insecure-ignore-sct)".into()
            });
            lines.push(format!("  identity    {} (OIDC issuer {})", v.sans.join(", "), v.issuer));
        }
    }
    lines.push(match (v.log_index, v.integrated_time) {
        (Some(index), Some(time)) => format!(
            "  log         entry {index} of the transparency log (Rekor-style), logged {}: its Signed Entry Timestamp (SET) verifies",
            jiff::Timestamp::from_second(time).map(|t| t.to_string()).unwrap_or_else(|_| time.to_string())
        ),
        (Some(index), None) => format!(
            "  log         entry {index} of the Rekor v2 log: its inclusion proof checks against a checkpoint the log signed\n  \
             time        from a signed RFC 3161 timestamp of the stack's timestamp authority (v2 entries carry no time)"
        ),
        _ => "  log         NOT checked (--insecure-ignore-tlog)".into(),
    });
    lines.join("\n")
}
