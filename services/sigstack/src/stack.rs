//! `STATE_DIR/stack.json`: the machine-readable description of a running stack that scripts and
//! later commands rely on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// File name of the description inside the state directory.
pub const STACK_FILE: &str = "stack.json";

/// `{"services": {"oidc": "http://127.0.0.1:PORT", ...}, "trust_dir": "DIR/trust", ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackDescription {
    /// Service name → base URL.
    pub services: BTreeMap<String, String>,
    /// Where the trust files are written.
    pub trust_dir: PathBuf,
    /// The state directory itself (absolute).
    pub state_dir: PathBuf,
    /// The process serving the stack.
    pub pid: u32,
}

impl StackDescription {
    /// Writes it (atomically) into `state_dir`.
    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        sigstack_state::write_public(&state_dir.join(STACK_FILE), &json)?;
        Ok(())
    }

    /// Reads the description of the stack running on `state_dir`, if one was started.
    pub fn read(state_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = state_dir.join(STACK_FILE);
        let Some(bytes) = sigstack_state::read_optional(&path)? else {
            return Ok(None);
        };
        let description =
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not a stack description", path.display()))?;
        Ok(Some(description))
    }

    /// The description of the stack running on `state_dir`, or an error that says how to start one.
    pub fn require(state_dir: &Path) -> anyhow::Result<Self> {
        Self::read(state_dir)?.with_context(|| {
            format!(
                "no stack is running on {} (start one with `sigstack up --state-dir {}`)",
                state_dir.display(),
                state_dir.display()
            )
        })
    }

    /// Removes it: the stack is no longer running.
    pub fn remove(state_dir: &Path) {
        let _ = std::fs::remove_file(state_dir.join(STACK_FILE));
    }
}

/// Creates the state directory (0700) and returns its absolute path.
pub fn open_state_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    sigstack_state::ensure_private_dir(dir)?;
    dir.canonicalize().with_context(|| format!("resolve state directory {}", dir.display()))
}

/// The services a signing config names, keyed as in `stack.json` (`oidc`, `fulcio`, `rekor`,
/// `rekor-v2`, `tsa`): how `sigstack attach` describes a stack it did not start (compose, a
/// container) from the trust files that stack wrote.
pub fn services_from_signing_config(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let config = sigstack_pipeline::read_signing_config(path)?;
    let mut services = BTreeMap::new();
    let base = |url: &str| url.trim_end_matches('/').to_string();
    if let Some(ca) = config.ca_urls.iter().find(|s| s.major_api_version == 1) {
        services.insert("fulcio".to_string(), base(&ca.url));
    }
    if let Some(oidc) = config.oidc_urls.first() {
        services.insert("oidc".to_string(), base(&oidc.url));
    }
    for log in &config.rekor_tlog_urls {
        let name = if log.major_api_version == 2 { "rekor-v2" } else { "rekor" };
        services.entry(name.to_string()).or_insert_with(|| base(&log.url));
    }
    // Signing configs name the TSA's full timestamp URL; stack.json names its base.
    if let Some(tsa) = config.tsa_urls.first() {
        services.insert("tsa".to_string(), base(tsa.url.trim_end_matches("/api/v1/timestamp")));
    }
    anyhow::ensure!(services.contains_key("fulcio"), "{} lists no CA", path.display());
    Ok(services)
}
