//! Rekor's search index (`POST /api/v1/index/retrieve`): every key Rekor's own types give in their
//! `IndexKeys` (rekor pkg/types/{hashedrekord,dsse,intoto}): artifact, envelope and payload hashes,
//! key hashes (SHA-256 of the canonical PEM) and certificate subjects (SAN emails and URIs), and,
//! for attestations, the in-toto statement's subject digests and a SLSA v0.2 predicate's material
//! digests, each mapped to log indexes. Keys are derived from what the log stores (the canonical
//! bodies and the statements of attestation entries), so the index is rebuilt from the store at any
//! time; the log builds it lazily on the first search and extends it on later ones, keeping
//! appends and restarts free of it.

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::Value;
use sigstack_fulcio::Verifier;

use crate::entries::hex;

/// Index keys of the log indexes seen so far.
#[derive(Default)]
pub(crate) struct SearchIndex {
    /// How many entries (from index 0) are indexed.
    pub(crate) indexed: u64,
    keys: HashMap<String, Vec<u64>>,
}

impl SearchIndex {
    pub(crate) fn add(&mut self, index: u64, body: &[u8], statement: Option<&[u8]>) {
        let mut keys = index_keys(body);
        keys.extend(statement.map(statement_keys).unwrap_or_default());
        for key in keys {
            let indexes = self.keys.entry(key).or_default();
            if indexes.last() != Some(&index) {
                indexes.push(index);
            }
        }
        self.indexed = index + 1;
    }

    pub(crate) fn lookup(&self, key: &str) -> &[u64] {
        self.keys.get(key).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The key of a public key or certificate: lower-case hex SHA-256 of its canonical PEM.
pub(crate) fn key_hash(verifier: &Verifier) -> String {
    hex(digest(&SHA256, verifier.canonical_pem().as_bytes()).as_ref())
}

fn hash_key(value: &Value) -> Option<String> {
    let algorithm = value.get("algorithm")?.as_str()?;
    let digest = value.get("value")?.as_str()?;
    Some(format!("{algorithm}:{digest}").to_ascii_lowercase())
}

fn add_verifier(keys: &mut Vec<String>, b64_pem: Option<&str>) {
    let Some(verifier) = b64_pem.and_then(|text| Verifier::parse("index", text.as_bytes()).ok()) else { return };
    keys.push(key_hash(&verifier));
    keys.extend(verifier.subjects().into_iter().map(|s| s.to_ascii_lowercase()));
}

/// `alg:digest` of each subject of an in-toto statement, and of each material of a SLSA v0.2
/// provenance predicate (what Rekor's intoto and dsse types add when they hold the statement).
fn statement_keys(statement: &[u8]) -> Vec<String> {
    let Ok(statement) = serde_json::from_slice::<Value>(statement) else { return Vec::new() };
    let digests = |items: &Value| -> Vec<String> {
        let maps = items.as_array().into_iter().flatten().filter_map(|item| item["digest"].as_object());
        maps.flat_map(|map| {
            map.iter().filter_map(|(alg, d)| d.as_str().map(|d| format!("{alg}:{d}").to_ascii_lowercase()))
        })
        .collect()
    };
    let mut keys = digests(&statement["subject"]);
    if statement["predicateType"] == "https://slsa.dev/provenance/v0.2" {
        keys.extend(digests(&statement["predicate"]["materials"]));
    }
    keys
}

/// Index keys of one canonical body.
fn index_keys(body: &[u8]) -> Vec<String> {
    let Ok(entry) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let spec = &entry["spec"];
    let mut keys = Vec::new();
    match entry["kind"].as_str() {
        Some("hashedrekord") => {
            keys.extend(hash_key(&spec["data"]["hash"]));
            add_verifier(&mut keys, spec["signature"]["publicKey"]["content"].as_str());
        }
        Some("dsse") => {
            keys.extend(hash_key(&spec["envelopeHash"]));
            keys.extend(hash_key(&spec["payloadHash"]));
            for signature in spec["signatures"].as_array().into_iter().flatten() {
                add_verifier(&mut keys, signature["verifier"].as_str());
            }
        }
        Some("intoto") => {
            keys.extend(hash_key(&spec["content"]["hash"]));
            keys.extend(hash_key(&spec["content"]["payloadHash"]));
            add_verifier(&mut keys, spec["publicKey"].as_str());
            for signature in spec["content"]["envelope"]["signatures"].as_array().into_iter().flatten() {
                add_verifier(&mut keys, signature["publicKey"].as_str());
            }
        }
        _ => {}
    }
    keys
}
