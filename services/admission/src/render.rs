//! Rewriting the production policy for a local stack: the organisation's registry becomes the
//! stack's, and every keyless attestor gets the stack's trust so Kyverno itself verifies fully
//! offline. Identities and issuer stay.
//!
//! - ClusterPolicy: inline `roots`, `rekor {url, pubkey}`, `ctlog {pubkey}` on each keyless entry.
//! - ImageValidatingPolicy: each cosign attestor gets the stack's `trustedRoot` (sigstack reads it)
//!   and `tuf {mirror, root}` (the real Kyverno initialises a TUF client for every cosign attestor
//!   and fails without one, even with `trustedRoot` given), and `ctlog.url` the stack's log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// The organisation the source policy is written for.
pub const SOURCE_ORG: &str = "sigstack-demo";
/// The registry the source policy admits.
pub const SOURCE_REGISTRY: &str = "ghcr.io";

/// Trust material of a stack, as PEM text.
#[derive(Debug, Clone)]
pub struct StackTrust {
    /// CA certificates (root and intermediate).
    pub roots_pem: String,
    /// The log's URL.
    pub rekor_url: String,
    /// The log key.
    pub rekor_pem: String,
    /// The CT log key.
    pub ctlog_pem: String,
    /// The stack's TUF repository URL and its initial `root.json` (ImageValidatingPolicy).
    pub tuf: Option<(String, String)>,
    /// The stack's `trusted_root.json` (ImageValidatingPolicy).
    pub trusted_root_json: Option<String>,
}

fn rewrite_strings(value: &mut Value, rewrite: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = rewrite(s),
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_strings(v, rewrite)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_strings(v, rewrite)),
        _ => {}
    }
}

fn for_each_keyless(value: &mut Value, apply: &dyn Fn(&mut serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(keyless)) = map.get_mut("keyless") {
                apply(keyless);
            }
            map.values_mut().for_each(|v| for_each_keyless(v, apply));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| for_each_keyless(v, apply)),
        _ => {}
    }
}

/// The policy for `org` on a stack whose registry is `registry` (`host:port`).
pub fn render(source: &Value, org: &str, registry: &str, trust: &StackTrust) -> Value {
    let mut policy = source.clone();
    let from_registry = format!("{SOURCE_REGISTRY}/{SOURCE_ORG}/");
    let to_registry = format!("{registry}/{org}/");
    let from_identity = format!("https://github.com/{SOURCE_ORG}/");
    let to_identity = format!("https://github.com/{org}/");
    // A policy written for the organisation's own ghcr.io path (not the shipped one's) maps too.
    let own_registry = format!("{SOURCE_REGISTRY}/{org}/");
    rewrite_strings(&mut policy, &|s| {
        s.replace(&from_registry, &to_registry)
            .replace(&own_registry, &to_registry)
            .replace(&from_identity, &to_identity)
            .replace(SOURCE_ORG, org)
    });
    if is_image_validating(&policy) {
        for attestor in policy["spec"]["attestors"].as_array_mut().into_iter().flatten() {
            let Some(cosign) = attestor.get_mut("cosign").and_then(Value::as_object_mut) else { continue };
            if let Some(root) = &trust.trusted_root_json {
                cosign.insert("trustedRoot".into(), json!({"value": root}));
            }
            if let Some((mirror, root_json)) = &trust.tuf {
                cosign.insert("tuf".into(), json!({"mirror": mirror, "root": {"data": B64.encode(root_json)}}));
            }
            let ctlog = cosign.entry("ctlog").or_insert_with(|| json!({}));
            ctlog["url"] = json!(trust.rekor_url);
        }
        return policy;
    }
    for_each_keyless(&mut policy, &|keyless| {
        keyless.insert("roots".into(), json!(trust.roots_pem));
        keyless.insert("rekor".into(), json!({"url": trust.rekor_url, "pubkey": trust.rekor_pem}));
        keyless.insert("ctlog".into(), json!({"pubkey": trust.ctlog_pem}));
    });
    policy
}

fn is_image_validating(policy: &Value) -> bool {
    policy["apiVersion"].as_str().is_some_and(|v| v.starts_with("policies.kyverno.io/"))
}

/// The policy with all trust material removed and the registry named `registry`: what two
/// policies that differ only in those must have in common.
pub fn without_trust(policy: &Value, registry_from: &str, registry_to: &str) -> Value {
    let mut policy = policy.clone();
    rewrite_strings(&mut policy, &|s| s.replace(registry_from, registry_to));
    if is_image_validating(&policy) {
        for attestor in policy["spec"]["attestors"].as_array_mut().into_iter().flatten() {
            if let Some(cosign) = attestor.get_mut("cosign").and_then(Value::as_object_mut) {
                cosign.remove("trustedRoot");
                cosign.remove("tuf");
                if let Some(ctlog) = cosign.get_mut("ctlog").and_then(Value::as_object_mut) {
                    ctlog.remove("url");
                }
                if cosign.get("ctlog").is_some_and(|c| c.as_object().is_some_and(|m| m.is_empty())) {
                    cosign.remove("ctlog");
                }
            }
        }
        return policy;
    }
    for_each_keyless(&mut policy, &|keyless| {
        keyless.remove("roots");
        keyless.remove("rekor");
        keyless.remove("ctlog");
    });
    policy
}
