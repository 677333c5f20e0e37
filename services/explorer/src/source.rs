//! Reading a running stack the way any client would: over HTTP from the URLs in its `stack.json`
//! (log entries, checkpoints and proofs, tiles, the registry), and its trust files from disk. So
//! the explorer works the same inside `sigstack up` and as `sigstack explorer` beside one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sigstack_admission::{AdmissionRecord, DecisionLog};
use sigstack_pipeline::{Checks, IdentityPolicy, Registry, Trust, Verified, VerifyError};
use sigstack_rekor::merkle::{MerkleTree, leaf_hash, verify_consistency, verify_inclusion};
use sigstack_rekor::v2::TilePath;

use crate::live::{Activity, Live};

use crate::model::{EntryView, Head, LogKind, decode_body, verify_v1_checkpoint};

/// What the explorer is pointed at.
#[derive(Debug, Clone)]
pub struct ExplorerConfig {
    /// Service name → base URL (from `stack.json`).
    pub services: BTreeMap<String, String>,
    /// The stack's trust files.
    pub trust_dir: PathBuf,
    /// The stack's state directory (admission decisions).
    pub state_dir: PathBuf,
    /// What `sigstack env` exports for this stack.
    pub env: Vec<(String, String)>,
    /// The identity the demo's tokens carry (the certificate SAN they get).
    pub identity: String,
}

/// A checkpoint the explorer has seen, and whether it is consistent with the one before it.
#[derive(Debug, Clone)]
pub struct SeenHead {
    /// Which log.
    pub log: LogKind,
    /// Size and root.
    pub head: Head,
    /// When it was first seen (unix seconds).
    pub seen_at: i64,
    /// The consistency check with the previous head of the same log (None for the first).
    pub consistent: Option<Result<(), String>>,
}

/// One image in the registry, with what verifies on it.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Digest the tag resolves to.
    pub digest: Result<String, String>,
    /// Signatures that verify (any identity of the stack's CA).
    pub signatures: Vec<Verified>,
    /// Why there are none, when there are none.
    pub unsigned_reason: Option<String>,
    /// Attestations that verify.
    pub attestations: Vec<Verified>,
}

/// The explorer's view of a stack.
pub struct Explorer {
    /// Where it looks.
    pub config: ExplorerConfig,
    http: reqwest::Client,
    seen: Mutex<Vec<SeenHead>>,
    pub(crate) live: Live,
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    (text.len() == 64)
        .then(|| (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>())
        .flatten()
        .and_then(|v| v.try_into().ok())
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Entry tiles one page may read from the v2 log (256 entries each).
pub(crate) const MAX_V2_TILES: u64 = 64;

/// How long the explorer waits for any service.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Explorer {
    /// An explorer of the stack `config` describes.
    pub fn new(config: ExplorerConfig) -> Explorer {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        Explorer { config, http, seen: Mutex::new(Vec::new()), live: Live::default() }
    }

    /// A service's base URL.
    pub fn url(&self, service: &str) -> Option<&str> {
        self.config.services.get(service).map(String::as_str)
    }

    /// The stack's trusted root (read on every call: a restarted stack may have new files).
    pub fn trust(&self) -> Result<Trust, String> {
        Trust::load(&self.config.trust_dir.join("trusted_root.json")).map_err(|e| format!("{e:#}"))
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        let response = self.http.get(url).send().await.map_err(|e| {
            let mut message = format!("GET {url}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            message
        })?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        Ok(response)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        self.get(url).await?.json().await.map_err(|e| format!("GET {url}: {e}"))
    }

    async fn get_bytes(&self, url: &str) -> Result<Vec<u8>, String> {
        Ok(self.get(url).await?.bytes().await.map_err(|e| format!("GET {url}: {e}"))?.to_vec())
    }

    /// Each service with whether it answers.
    pub async fn health(&self) -> Vec<(String, String, Result<(), String>)> {
        let mut out = Vec::new();
        for (name, url) in &self.config.services {
            let path = match name.as_str() {
                "oidc" => "/.well-known/openid-configuration",
                "fulcio" => "/api/v2/configuration",
                "rekor" => "/api/v1/log",
                "rekor-v2" => "/checkpoint",
                "tsa" => "/api/v1/timestamp/certchain",
                "tuf" => "/timestamp.json",
                "registry" => "/v2/",
                "explorer" => "/healthz",
                _ => "/",
            };
            out.push((name.clone(), url.clone(), self.get(&format!("{url}{path}")).await.map(|_| ())));
        }
        out
    }

    /// Remembers `head` and checks it against the previous head of its log with `check`.
    fn see(&self, log: LogKind, head: Head, check: impl FnOnce(&Head) -> Result<(), String>) {
        let Ok(mut seen) = self.seen.lock() else { return };
        let previous = seen.iter().rev().find(|s| s.log == log).map(|s| s.head);
        if previous == Some(head) {
            return;
        }
        let consistent = previous.map(|p| check(&p));
        seen.push(SeenHead { log, head, seen_at: now(), consistent });
    }

    /// The checkpoints seen so far, newest first.
    pub fn seen_heads(&self) -> Vec<SeenHead> {
        self.seen.lock().map(|s| s.iter().rev().cloned().collect()).unwrap_or_default()
    }

    /// Tree sizes of the logs and the number of admission decisions: what `/events` watches.
    pub async fn activity(&self) -> Activity {
        let v1 = match self.url("rekor") {
            Some(url) => self.get_json(&format!("{url}/api/v1/log")).await.ok().and_then(|l| l["treeSize"].as_u64()),
            None => None,
        };
        let v2 = match self.url("rekor-v2") {
            Some(url) => self
                .get_bytes(&format!("{url}/checkpoint"))
                .await
                .ok()
                .and_then(|note| String::from_utf8_lossy(&note).lines().nth(1).and_then(|l| l.parse().ok())),
            None => None,
        };
        (v1, v2, self.decisions().len())
    }

    /// The newest `limit` entries of the v1 log, each with its inclusion proof checked against
    /// the log's current signed checkpoint.
    pub async fn v1_entries(&self, trust: &Trust, limit: u64) -> Result<(Head, Vec<EntryView>), String> {
        let url = self.url("rekor").ok_or("this stack runs no Rekor v1 log")?;
        let info = self.get_json(&format!("{url}/api/v1/log")).await?;
        let note = info["signedTreeHead"].as_str().ok_or("the log answered no checkpoint")?;
        let head = verify_v1_checkpoint(note, trust)?;
        let mut pending_proof = None;
        self.see(LogKind::V1, head, |previous| {
            pending_proof = Some(*previous);
            Ok(())
        });
        if let Some(previous) = pending_proof {
            let result = self.v1_consistency(url, &previous, &head).await;
            if let Ok(mut seen) = self.seen.lock()
                && let Some(last) = seen.iter_mut().rev().find(|s| s.log == LogKind::V1)
            {
                last.consistent = Some(result);
            }
        }
        let mut entries = Vec::new();
        for index in (head.size.saturating_sub(limit)..head.size).rev() {
            entries.push(self.v1_entry(url, trust, &head, index).await?);
        }
        Ok((head, entries))
    }

    /// One v1 entry with its inclusion proof checked against `head`.
    async fn v1_entry(&self, url: &str, trust: &Trust, head: &Head, index: u64) -> Result<EntryView, String> {
        let answer = self.get_json(&format!("{url}/api/v1/log/entries?logIndex={index}")).await?;
        let (uuid, entry) = answer.as_object().and_then(|m| m.iter().next()).ok_or("the log answered no entry")?;
        let body = B64.decode(entry["body"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
        let (kind, version, digest, signer) = decode_body(&body, trust);
        let proof = &entry["verification"]["inclusionProof"];
        let inclusion = (|| {
            let size = proof["treeSize"].as_u64().ok_or("no proof")?;
            let root = from_hex(proof["rootHash"].as_str().unwrap_or_default()).ok_or("no root in the proof")?;
            let hashes: Vec<[u8; 32]> = proof["hashes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| from_hex(h.as_str().unwrap_or_default()).ok_or("a proof hash is not hex"))
                .collect::<Result<_, _>>()?;
            if !verify_inclusion(index, size, &leaf_hash(&body), &hashes, &root) {
                return Err("the inclusion proof does not verify".to_string());
            }
            if size == head.size && root != head.root {
                return Err("the proof's root is not the signed checkpoint's".to_string());
            }
            let hashes = match hashes.len() {
                1 => "1 hash".to_string(),
                n => format!("{n} hashes"),
            };
            Ok(format!("included: its audit path of {hashes} leads to the root the log signed for {size} entries"))
        })();
        Ok(EntryView {
            log: LogKind::V1,
            index,
            uuid: Some(uuid.clone()),
            kind,
            version,
            digest,
            signer,
            integrated_time: entry["integratedTime"].as_i64(),
            inclusion,
        })
    }

    /// The entry at `index` of `log`.
    pub async fn entry(&self, trust: &Trust, log: LogKind, index: u64) -> Result<EntryView, String> {
        match log {
            LogKind::V1 => {
                let url = self.url("rekor").ok_or("this stack runs no Rekor v1 log")?;
                let info = self.get_json(&format!("{url}/api/v1/log")).await?;
                let head = verify_v1_checkpoint(info["signedTreeHead"].as_str().unwrap_or_default(), trust)?;
                if index >= head.size {
                    return Err(format!("the log has {} entries", head.size));
                }
                self.v1_entry(url, trust, &head, index).await
            }
            LogKind::V2 => {
                let (head, entries) = self.v2_entries(trust, u64::MAX).await?;
                entries.into_iter().find(|e| e.index == index).ok_or(format!("the log has {} entries", head.size))
            }
        }
    }

    /// UUIDs the v1 log's search index gives for a `sha256:` digest: artifact and payload hashes,
    /// and the subject digests of attestations (so an image digest finds its attestations).
    pub async fn v1_search(&self, digest: &str) -> Result<Vec<String>, String> {
        let url = self.url("rekor").ok_or("this stack runs no Rekor v1 log")?;
        let url = format!("{url}/api/v1/index/retrieve");
        let response = self
            .http
            .post(&url)
            .json(&serde_json::json!({"hash": digest}))
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let uuids: Vec<String> = response.json().await.map_err(|e| format!("POST {url}: {e}"))?;
        Ok(uuids)
    }

    async fn v1_consistency(&self, url: &str, old: &Head, new: &Head) -> Result<(), String> {
        if old.size > new.size {
            return Err(format!("the log shrank from {} to {} entries", old.size, new.size));
        }
        let proof =
            self.get_json(&format!("{url}/api/v1/log/proof?firstSize={}&lastSize={}", old.size, new.size)).await?;
        let hashes: Vec<[u8; 32]> = proof["hashes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| from_hex(h.as_str().unwrap_or_default()))
            .collect();
        if verify_consistency(old.size, new.size, &hashes, &old.root, &new.root) {
            Ok(())
        } else {
            Err("the consistency proof does not verify: the log rewrote its history".into())
        }
    }

    /// The newest `limit` entries of the v2 log; the whole tree is rebuilt from the log's tiles
    /// and checked against its signed checkpoint (v2 serves no per-entry proofs).
    pub async fn v2_entries(&self, trust: &Trust, limit: u64) -> Result<(Head, Vec<EntryView>), String> {
        let url = self.url("rekor-v2").ok_or("this stack runs no Rekor v2 log")?;
        let log = trust.rekor_v2().ok_or("the trusted root lists no Rekor v2 log")?;
        let note = String::from_utf8_lossy(&self.get_bytes(&format!("{url}/checkpoint")).await?).into_owned();
        let checkpoint = sigstack_verify::verify_note(&note, &log.spki, &log.key_id, Some(&log.origin))
            .map_err(|e| e.to_string())?;
        let head = Head { size: checkpoint.size, root: checkpoint.root };
        // One page must not make the explorer read a whole large log: past the bound it says so.
        if head.size.div_ceil(256) > MAX_V2_TILES {
            return Err(format!(
                "the log has {} entries; the explorer rebuilds trees of at most {} (it reads every entry tile) — \
                 verify entries of a log this size with a client",
                head.size,
                MAX_V2_TILES * 256
            ));
        }
        let mut bodies = Vec::new();
        for n in 0..head.size.div_ceil(256) {
            let width = (head.size - n * 256).min(256);
            let partial = (width < 256).then_some(width as u16);
            let path = TilePath::Entries { index: n, partial }.to_path();
            let bundle = self.get_bytes(&format!("{url}/{path}")).await?;
            let mut rest = bundle.as_slice();
            while rest.len() >= 2 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let Some(entry) = rest.get(2..2 + len) else { return Err(format!("{path}: truncated entry")) };
                bodies.push(entry.to_vec());
                rest = &rest[2 + len..];
            }
        }
        let mut tree = MerkleTree::new();
        for body in &bodies {
            tree.push(leaf_hash(body));
        }
        let rebuilt = tree.root(head.size);
        let inclusion = match rebuilt {
            Some(root) if root == head.root && bodies.len() as u64 == head.size => Ok(format!(
                "included: the tree rebuilt from the log's tiles ({} entries) has the root its signed checkpoint names",
                head.size
            )),
            _ => Err("the tiles do not rebuild the tree the checkpoint signs".to_string()),
        };
        self.see(LogKind::V2, head, |previous| match tree.root(previous.size) {
            Some(root) if root == previous.root => Ok(()),
            _ => Err("an earlier checkpoint is not a prefix of this tree".into()),
        });
        let entries = (head.size.saturating_sub(limit)..head.size)
            .rev()
            .map(|index| {
                let (kind, version, digest, signer) = decode_body(&bodies[index as usize], trust);
                EntryView {
                    log: LogKind::V2,
                    index,
                    uuid: None,
                    kind,
                    version,
                    digest,
                    signer,
                    integrated_time: None,
                    inclusion: inclusion.clone(),
                }
            })
            .collect();
        Ok((head, entries))
    }

    /// Every image tag in the registry (signature, attestation and referrer tags left out), with
    /// what verifies on it against the stack's trust, whatever the identity.
    pub async fn images(&self, trust: &Trust) -> Result<Vec<ImageView>, String> {
        let url = self.url("registry").ok_or("this stack runs no registry")?;
        let registry = Registry::new(url).map_err(|e| e.to_string())?;
        let catalog = self.get_json(&format!("{url}/v2/_catalog")).await?;
        let mut images = Vec::new();
        for repository in catalog["repositories"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let tags = self.get_json(&format!("{url}/v2/{repository}/tags/list")).await?;
            let mut names: Vec<&str> = tags["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|t| !t.starts_with("sha256-"))
                .collect();
            names.sort();
            for tag in names {
                images.push(self.image(&registry, trust, repository, tag).await);
            }
        }
        Ok(images)
    }

    async fn image(&self, registry: &Registry, trust: &Trust, repository: &str, tag: &str) -> ImageView {
        let image = format!("{repository}:{tag}");
        let policy = IdentityPolicy::default();
        let checks = Checks::default();
        let digest = match registry.reference(&image) {
            Ok(reference) => registry.resolve(&reference).await.map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("{e:#}")),
        };
        let mut signatures = Vec::new();
        let mut attestations = Vec::new();
        let mut unsigned_reason = None;
        match sigstack_pipeline::verify_signature(registry, trust, &image, &policy, &checks).await {
            Ok(found) => signatures.extend(found),
            Err(VerifyError::NoSignatures) => {}
            Err(e) => unsigned_reason = Some(e.to_string()),
        }
        if let Ok(found) = sigstack_pipeline::verify_attestations(registry, trust, &image, &policy, &checks).await {
            attestations.extend(found);
        }
        match sigstack_pipeline::verify_bundles(registry, trust, &image, &policy, &checks).await {
            Ok(found) => {
                for verified in found {
                    if verified.predicate_type() == Some("https://sigstore.dev/cosign/sign/v1") {
                        signatures.push(verified);
                    } else {
                        attestations.push(verified);
                    }
                }
            }
            Err(VerifyError::NoSignatures) => {}
            Err(e) => unsigned_reason = unsigned_reason.or(Some(e.to_string())),
        }
        if signatures.is_empty() && unsigned_reason.is_none() {
            unsigned_reason = Some("no signature that verifies with the stack's CA and log".into());
        }
        let unsigned_reason = if signatures.is_empty() { unsigned_reason } else { None };
        ImageView {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
            signatures,
            unsigned_reason,
            attestations,
        }
    }

    /// The report card of the last `sigstack policy probe` run on this stack (its JSON form).
    pub fn probe_card(&self) -> Option<serde_json::Value> {
        let bytes = std::fs::read(self.config.state_dir.join("probe-card.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every admission decision the stack recorded, newest first.
    pub fn decisions(&self) -> Vec<AdmissionRecord> {
        let mut records = DecisionLog::in_state_dir(&self.config.state_dir).read();
        records.reverse();
        records
    }
}

/// An SPDX SBOM in a few numbers: packages, licences by count, the first package names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SbomSummary {
    /// Number of packages.
    pub packages: usize,
    /// Declared licences with how many packages carry each, most common first.
    pub licenses: Vec<(String, usize)>,
    /// Package names with versions, in document order (the first ten).
    pub top: Vec<String>,
}

/// The summary of an SPDX 2.3 document.
pub fn sbom_summary(document: &Value) -> SbomSummary {
    let packages = document["packages"].as_array().cloned().unwrap_or_default();
    let mut licenses: BTreeMap<String, usize> = BTreeMap::new();
    for package in &packages {
        let license = package["licenseDeclared"]
            .as_str()
            .or(package["licenseConcluded"].as_str())
            .unwrap_or("NOASSERTION")
            .to_string();
        *licenses.entry(license).or_default() += 1;
    }
    let mut licenses: Vec<(String, usize)> = licenses.into_iter().collect();
    licenses.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = packages
        .iter()
        .take(10)
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("?");
            match p["versionInfo"].as_str() {
                Some(version) => format!("{name} {version}"),
                None => name.to_string(),
            }
        })
        .collect();
    SbomSummary { packages: packages.len(), licenses, top }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sbom_summaries_count_licences() {
        let doc = json!({"packages": [
            {"name": "a", "versionInfo": "1", "licenseDeclared": "MIT"},
            {"name": "b", "licenseConcluded": "Apache-2.0"},
            {"name": "c", "licenseDeclared": "MIT"}]});
        let summary = sbom_summary(&doc);
        assert_eq!(summary.packages, 3);
        assert_eq!(summary.licenses[0], ("MIT".to_string(), 2));
        assert_eq!(summary.top, vec!["a 1", "b", "c"]);
        assert_eq!(from_hex(&"ab".repeat(32)), Some([0xab; 32]));
    }
}
