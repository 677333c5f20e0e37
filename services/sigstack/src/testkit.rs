//! A stack per test: every service in-process on ephemeral ports in a temporary directory, with
//! helpers to mint tokens and to build, sign, attest and verify images. Dropping the stack stops
//! everything and removes the directory; many stacks in one test binary share nothing (ports,
//! files, keys).
//!
//! ```
//! use sigstack::testkit::Stack;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! let stack = Stack::builder().registry(false).start().await?;
//! // Trust files real clients take (cosign --trusted-root, sigstore-python --trust-config ...):
//! assert!(stack.trust_dir().join("trusted_root.json").exists());
//! // The environment `sigstack env` would export (SIGSTORE_ID_TOKEN, SIGSTACK_REKOR_URL, ...):
//! let env = stack.env()?;
//! assert!(env.iter().any(|(name, _)| name == "SIGSTACK_FULCIO_URL"));
//! // A GitHub Actions token for another repository's workflow:
//! let token = stack.token(&sigstack_oidc::TokenRequest { repository: Some("acme/app".into()), ..Default::default() })?;
//! assert_eq!(token.split('.').count(), 3);
//! stack.stop().await?;
//! # Ok(()) }
//! ```
//!
//! With `.registry(true)` (Debian's docker-registry beside the stack) the image helpers run the
//! whole flow: [`Stack::build_image`], [`Stack::sign`], [`Stack::attest_sbom`], [`Stack::verify`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sigstack_pipeline::{Checks, Format, IdentityPolicy, ImageSource, Registry, Services, Trust, Verified};

pub use crate::assemble::RekorVersions;
use crate::embedded::{Ports, RegistryChoice, RunningStack, StackOptions};
use crate::stack::StackDescription;

/// How a test's stack is made.
#[derive(Debug, Clone)]
pub struct StackBuilder {
    registry: bool,
    state_dir: Option<PathBuf>,
    github_issuer: String,
    rekor: RekorVersions,
}

impl StackBuilder {
    /// Start Debian's docker-registry beside the stack (default: no).
    pub fn registry(mut self, on: bool) -> Self {
        self.registry = on;
        self
    }

    /// Which transparency logs run: Rekor v1 (default), v2 with a timestamp authority, or both.
    pub fn rekor(mut self, versions: RekorVersions) -> Self {
        self.rekor = versions;
        self
    }

    /// Keep state in this directory instead of a temporary one removed on drop.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// `iss` of the GitHub Actions tokens (GitHub's own by default).
    pub fn github_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.github_issuer = issuer.into();
        self
    }

    /// Starts the stack on the current tokio runtime; returns once `stack.json` is written.
    pub async fn start(self) -> anyhow::Result<Stack> {
        let (temp, state_dir) = match self.state_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::Builder::new().prefix("sigstack-").tempdir().context("a temporary state dir")?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let options = StackOptions {
            ports: Ports::Ephemeral,
            registry: if self.registry { RegistryChoice::Start } else { RegistryChoice::None },
            github_issuer: self.github_issuer,
            rekor: self.rekor,
            ..StackOptions::new(&state_dir)
        };
        let running = RunningStack::start(options).await?;
        if self.registry && !running.description.services.contains_key("registry") {
            anyhow::bail!("registry(true) needs Debian's docker-registry (apt-get install docker-registry)");
        }
        Ok(Stack { running: Some(running), attached: None, _temp: temp })
    }
}

/// Stops a stack this process did not start (containers, another process): what
/// [`Stack::attached`] takes. Dropping it instead must stop the stack too.
pub type StopStack =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

/// A running stack of one test.
pub struct Stack {
    running: Option<RunningStack>,
    attached: Option<(StackDescription, StopStack)>,
    _temp: Option<tempfile::TempDir>,
}

impl Stack {
    /// A builder: no registry, a temporary state directory, GitHub's issuer.
    pub fn builder() -> StackBuilder {
        StackBuilder {
            registry: false,
            state_dir: None,
            github_issuer: sigstack_oidc::DEFAULT_GITHUB_ISSUER.into(),
            rekor: RekorVersions::default(),
        }
    }

    /// A stack running elsewhere (the testcontainers module's containers) whose `stack.json` is
    /// `description`, its paths readable here; `stop` ends it. Every helper works on it as on an
    /// in-process stack; `state_dir` is removed with the stack when given.
    pub fn attached(description: StackDescription, stop: StopStack, state_dir: Option<tempfile::TempDir>) -> Stack {
        Stack { running: None, attached: Some((description, stop)), _temp: state_dir }
    }

    fn description(&self) -> &StackDescription {
        match (&self.running, &self.attached) {
            (Some(running), _) => &running.description,
            (None, Some((description, _))) => description,
            (None, None) => unreachable!("a stack is running until stop() consumes it"),
        }
    }

    /// Service name → base URL (`oidc`, `fulcio`, `rekor`, `tuf`, and `registry` when started).
    pub fn urls(&self) -> &BTreeMap<String, String> {
        &self.description().services
    }

    /// One service's base URL.
    pub fn url(&self, service: &str) -> anyhow::Result<&str> {
        self.urls().get(service).map(String::as_str).with_context(|| format!("this stack has no {service}"))
    }

    /// The trust files: `trusted_root.json`, `signing_config.v0.2.json`, `trust_config.json`, ...
    pub fn trust_dir(&self) -> &Path {
        &self.description().trust_dir
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.description().state_dir
    }

    /// What `sigstack env` exports for this stack.
    pub fn env(&self) -> anyhow::Result<Vec<(String, String)>> {
        crate::env::stack_env(self.description())
    }

    /// A token from the stack's issuer (GitHub Actions claims by default; see
    /// [`sigstack_oidc::TokenRequest`] for repository, workflow, ref, profile, claim overrides).
    pub fn token(&self, request: &sigstack_oidc::TokenRequest) -> anyhow::Result<String> {
        Ok(crate::assemble::open_recorded_issuer(self.state_dir())?.mint(request)?)
    }

    fn registry(&self) -> anyhow::Result<Registry> {
        Registry::new(self.url("registry").context("start the stack with .registry(true)")?)
    }

    fn services(&self) -> anyhow::Result<Services> {
        Services::from_stack(&self.description().services)
    }

    /// Builds the demo app (`version` makes a distinct image) and pushes it as
    /// `repository:tag`; returns its digest.
    pub async fn build_image(&self, repository: &str, tag: &str, version: &str) -> anyhow::Result<String> {
        let source = ImageSource::Demo { version: version.to_string() };
        Ok(sigstack_pipeline::build(&self.registry()?, repository, tag, &source).await?.digest)
    }

    /// Signs `image` keylessly as the release workflow of `identity_repository`, in the stack's
    /// default format: cosign's tags with a Rekor v1 log, a Sigstore bundle (v2 entry and signed
    /// timestamp) on a v2-only stack.
    pub async fn sign(&self, image: &str, identity_repository: &str) -> anyhow::Result<sigstack_pipeline::SignOutcome> {
        self.sign_as(image, identity_repository, self.default_format()?).await
    }

    /// [`Stack::sign`] in the given format.
    pub async fn sign_as(
        &self,
        image: &str,
        identity_repository: &str,
        format: Format,
    ) -> anyhow::Result<sigstack_pipeline::SignOutcome> {
        let token = self.workflow_token(identity_repository)?;
        sigstack_pipeline::sign(&self.registry()?, &self.services()?, &token, image, format).await
    }

    /// cosign's legacy format where a Rekor v1 log takes it, else Sigstore bundles (as `sigstack sign`).
    fn default_format(&self) -> anyhow::Result<Format> {
        Ok(if self.services()?.rekor.is_empty() { Format::Bundle } else { Format::Cosign })
    }

    /// Attests `image` with its own SPDX SBOM, as the release workflow of `identity_repository`.
    pub async fn attest_sbom(
        &self,
        image: &str,
        identity_repository: &str,
    ) -> anyhow::Result<sigstack_pipeline::AttestOutcome> {
        let registry = self.registry()?;
        let token = self.workflow_token(identity_repository)?;
        let (_, sbom) = sigstack_pipeline::sbom(&registry, image).await?;
        sigstack_pipeline::attest(
            &registry,
            &self.services()?,
            &token,
            image,
            "https://spdx.dev/Document",
            &sbom,
            self.default_format()?,
        )
        .await
    }

    /// Verifies `image`'s signatures offline with the stack's trusted root, in whichever format
    /// they are: signed by `identity` (exact SAN) from `issuer`.
    pub async fn verify(&self, image: &str, identity: &str, issuer: &str) -> anyhow::Result<Vec<Verified>> {
        let trust = Trust::load(&self.trust_dir().join("trusted_root.json"))?;
        let policy = Self::exact(identity, issuer);
        let registry = self.registry()?;
        Ok(sigstack_pipeline::verify_image_signatures(&registry, &trust, image, &policy, &Checks::default()).await?)
    }

    /// Verifies `image`'s attestations of `predicate_type`, in either format, by `identity` from `issuer`.
    pub async fn verify_attestation(
        &self,
        image: &str,
        predicate_type: &str,
        identity: &str,
        issuer: &str,
    ) -> anyhow::Result<Vec<Verified>> {
        let trust = Trust::load(&self.trust_dir().join("trusted_root.json"))?;
        let policy = Self::exact(identity, issuer);
        let registry = self.registry()?;
        let checks = Checks::default();
        Ok(sigstack_pipeline::verify_image_attestations(&registry, &trust, image, predicate_type, &policy, &checks)
            .await?)
    }

    fn exact(identity: &str, issuer: &str) -> IdentityPolicy {
        IdentityPolicy { identity: Some(identity.to_string()), issuer: Some(issuer.to_string()), ..Default::default() }
    }

    fn workflow_token(&self, repository: &str) -> anyhow::Result<String> {
        self.token(&sigstack_oidc::TokenRequest { repository: Some(repository.to_string()), ..Default::default() })
    }

    /// Stops every service (draining requests in flight) and removes the temporary directory.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match (self.running.take(), self.attached.take()) {
            (Some(running), _) => running.stop().await,
            (None, Some((_, stop))) => stop().await,
            (None, None) => Ok(()),
        }
    }
}
