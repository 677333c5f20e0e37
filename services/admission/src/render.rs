//! Rewriting the production policy for a local stack: the organisation's registry becomes the
//! stack's, and every keyless attestor gets inline trust (`roots`, `rekor {url, pubkey}`,
//! `ctlog {pubkey}`) so Kyverno itself could verify fully offline. Identities and issuer stay.

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
    rewrite_strings(&mut policy, &|s| {
        s.replace(&from_registry, &to_registry).replace(&from_identity, &to_identity).replace(SOURCE_ORG, org)
    });
    for_each_keyless(&mut policy, &|keyless| {
        keyless.insert("roots".into(), json!(trust.roots_pem));
        keyless.insert("rekor".into(), json!({"url": trust.rekor_url, "pubkey": trust.rekor_pem}));
        keyless.insert("ctlog".into(), json!({"pubkey": trust.ctlog_pem}));
    });
    policy
}

/// The policy with all trust material removed and the registry named `registry`: what two
/// policies that differ only in those must have in common.
pub fn without_trust(policy: &Value, registry_from: &str, registry_to: &str) -> Value {
    let mut policy = policy.clone();
    rewrite_strings(&mut policy, &|s| s.replace(registry_from, registry_to));
    for_each_keyless(&mut policy, &|keyless| {
        keyless.remove("roots");
        keyless.remove("rekor");
        keyless.remove("ctlog");
    });
    policy
}
