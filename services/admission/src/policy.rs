//! The kyverno.io/v1 policy model, with the CRD defaults applied and Kyverno's own policy
//! validation. Every field sigstack does not evaluate is refused by name (`deny_unknown_fields`),
//! never ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::conditions::{AnyAllConditions, Condition, OPERATORS};

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not YAML, or a field sigstack does not support (serde names it).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Kyverno's policy validation refuses it.
    #[error("{file}: policy {policy}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The policy name.
        policy: String,
        /// What Kyverno says.
        message: String,
    },
}

/// `Audit` or `Enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FailureAction {
    /// Report only.
    #[serde(alias = "audit")]
    Audit,
    /// Block.
    #[serde(alias = "enforce")]
    Enforce,
}

/// What happens when verification errs (registry or log unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FailurePolicy {
    /// Block.
    Fail,
    /// Admit.
    Ignore,
}

/// A ClusterPolicy or Policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// `kyverno.io/v1`.
    pub api_version: String,
    /// `ClusterPolicy` or `Policy`.
    pub kind: String,
    /// Name (and namespace for a Policy).
    pub metadata: Metadata,
    /// Rules and settings.
    pub spec: Spec,
}

/// Object metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Name.
    pub name: String,
    /// Namespace (Policy only).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// Fallback failure action; CRD default Audit.
    #[serde(default)]
    pub validation_failure_action: Option<FailureAction>,
    /// CRD default Fail.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// Background scanning (no effect on admission).
    #[serde(default)]
    pub background: Option<bool>,
    /// Webhook timeout (no effect here).
    #[serde(default)]
    pub webhook_timeout_seconds: Option<u32>,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// A rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// Name.
    pub name: String,
    /// What it applies to.
    #[serde(rename = "match")]
    pub match_resources: MatchResources,
    /// What it does not apply to.
    #[serde(default)]
    pub exclude: Option<MatchResources>,
    /// Conditions on the request (`{{ request.object... }}`) that must hold for the rule to run;
    /// when they do not, Kyverno skips the rule ("preconditions not met").
    #[serde(default)]
    pub preconditions: Option<Preconditions>,
    /// A validate rule.
    #[serde(default)]
    pub validate: Option<Validation>,
    /// Image verification entries.
    #[serde(default)]
    pub verify_images: Vec<ImageVerification>,
}

impl Rule {
    /// Kyverno's `Rule.HasVerifyImageChecks`: the validating webhook checks digests or required
    /// verification for this rule.
    pub(crate) fn has_verify_image_checks(&self) -> bool {
        self.verify_images.iter().any(|e| e.verify_digest || e.required)
    }
}

/// A rule's `preconditions`: an `{any, all}` block, or the older plain list (every condition
/// must hold), as Kyverno's `GetAnyAllConditions` reads either.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Preconditions {
    /// `{any: [...], all: [...]}`.
    AnyAll(AnyAllConditions),
    /// `[...]`: all of them.
    List(Vec<Condition>),
}

impl Preconditions {
    /// As one `{any, all}` block. A condition without a message reports none (Kyverno's
    /// "preconditions not met" then stands alone).
    pub fn any_all(&self) -> AnyAllConditions {
        let quiet = |conditions: &[Condition]| -> Vec<Condition> {
            conditions
                .iter()
                .map(|c| Condition { message: Some(c.message.clone().unwrap_or_default()), ..c.clone() })
                .collect()
        };
        match self {
            Preconditions::AnyAll(block) => AnyAllConditions { any: quiet(&block.any), all: quiet(&block.all) },
            Preconditions::List(all) => AnyAllConditions { any: Vec::new(), all: quiet(all) },
        }
    }
}

/// `match` / `exclude`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchResources {
    /// Any filter matching is enough.
    #[serde(default)]
    pub any: Vec<ResourceFilter>,
    /// Every filter must match.
    #[serde(default)]
    pub all: Vec<ResourceFilter>,
    /// The deprecated single form.
    #[serde(default)]
    pub resources: Option<ResourceDescription>,
}

/// One filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    /// Resource criteria.
    pub resources: ResourceDescription,
}

/// Resource criteria.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceDescription {
    /// Kinds (`Pod`, `apps/v1/Deployment`, `*`...).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Name globs.
    #[serde(default)]
    pub names: Vec<String>,
    /// Deprecated single name glob.
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace globs.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Label selector.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    /// Admission operations (CREATE, UPDATE...).
    #[serde(default)]
    pub operations: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Exact labels.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `key In/NotIn/Exists/DoesNotExist values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: String,
    /// Values.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `validate` (pattern form).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    /// Message on failure.
    #[serde(default)]
    pub message: Option<String>,
    /// Per-rule failure action.
    #[serde(default)]
    pub failure_action: Option<FailureAction>,
    /// The pattern.
    pub pattern: Value,
}

/// One `verifyImages` entry, CRD defaults applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageVerification {
    /// Per-entry failure action (wins over the spec's).
    #[serde(default)]
    pub failure_action: Option<FailureAction>,
    /// `Cosign` (the default: cosign's `.sig`/`.att` images) or `SigstoreBundle` (Sigstore bundles
    /// attached as OCI referrers, cosign v3's default); `Notary` is refused.
    #[serde(default, rename = "type")]
    pub verification_type: Option<String>,
    /// Images this entry applies to.
    #[serde(default)]
    pub image_references: Vec<String>,
    /// Images it skips.
    #[serde(default)]
    pub skip_image_references: Vec<String>,
    /// Signature checks (every set must pass).
    #[serde(default)]
    pub attestors: Vec<AttestorSet>,
    /// Attestation checks.
    #[serde(default)]
    pub attestations: Vec<Attestation>,
    /// Pin the digest (CRD default true).
    #[serde(default = "yes")]
    pub mutate_digest: bool,
    /// Require a digest (CRD default true).
    #[serde(default = "yes")]
    pub verify_digest: bool,
    /// Require verification (CRD default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// Cache results (CRD default true; no effect on outcomes).
    #[serde(default = "yes")]
    pub use_cache: bool,
}

fn yes() -> bool {
    true
}

impl ImageVerification {
    /// Whether the entry verifies anything (Kyverno annotates and requires only those; an entry
    /// without attestors and attestations just pins digests).
    pub(crate) fn verifies(&self) -> bool {
        !self.attestors.is_empty() || !self.attestations.is_empty()
    }

    /// `type: SigstoreBundle`.
    pub(crate) fn is_sigstore_bundle(&self) -> bool {
        self.verification_type.as_deref() == Some("SigstoreBundle")
    }
}

/// `{count, entries}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestorSet {
    /// Entries that must verify (all when absent or 0).
    #[serde(default)]
    pub count: Option<usize>,
    /// The attestors.
    #[serde(default)]
    pub entries: Vec<Attestor>,
}

/// One attestor: `keyless` or `keys` (`certificates` and nested `attestor` are refused by name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestor {
    /// Keyless (Fulcio) identity.
    #[serde(default)]
    pub keyless: Option<KeylessAttestor>,
    /// Static public keys.
    #[serde(default)]
    pub keys: Option<StaticKeyAttestor>,
}

/// `keys`: signatures made with `cosign sign --key`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticKeyAttestor {
    /// One or more PEM public keys (several are expanded into one entry each, as Kyverno does).
    #[serde(default)]
    pub public_keys: Option<String>,
    /// Digest algorithm of the signature (sha256 is what cosign uses).
    #[serde(default)]
    pub signature_algorithm: Option<String>,
    /// A KMS URI: refused with a reason, sigstack has no KMS.
    #[serde(default)]
    pub kms: Option<String>,
    /// A Kubernetes Secret: refused with a reason, there is no cluster.
    #[serde(default)]
    pub secret: Option<Value>,
    /// Transparency log settings.
    #[serde(default)]
    pub rekor: Option<RekorSettings>,
    /// CT log settings (unused for keys, accepted as Kyverno does).
    #[serde(default)]
    pub ctlog: Option<CtLogSettings>,
}

/// Splits a `publicKeys` bundle into one PEM per key (Kyverno's `splitPEM` on `END PUBLIC KEY`).
pub(crate) fn split_public_keys(bundle: &str) -> Vec<String> {
    const END: &str = "-----END PUBLIC KEY-----";
    let mut keys = Vec::new();
    let mut rest = bundle;
    while let Some(end) = rest.find(END) {
        keys.push(rest[..end + END.len()].trim().to_string());
        rest = &rest[end + END.len()..];
    }
    keys
}

/// `keyless`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeylessAttestor {
    /// SAN wildcard.
    #[serde(default)]
    pub subject: Option<String>,
    /// SAN regular expression (unanchored, OR-ed with `subject`).
    #[serde(default, rename = "subjectRegExp")]
    pub subject_regexp: Option<String>,
    /// Issuer wildcard.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Issuer regular expression (unanchored).
    #[serde(default, rename = "issuerRegExp")]
    pub issuer_regexp: Option<String>,
    /// PEM roots replacing the public-good Fulcio roots.
    #[serde(default)]
    pub roots: Option<String>,
    /// Transparency log settings.
    #[serde(default)]
    pub rekor: Option<RekorSettings>,
    /// CT log settings.
    #[serde(default)]
    pub ctlog: Option<CtLogSettings>,
    /// Fulcio extension name → wildcard.
    #[serde(default)]
    pub additional_extensions: BTreeMap<String, String>,
}

/// `rekor`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RekorSettings {
    /// Log URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Log key PEM.
    #[serde(default)]
    pub pubkey: Option<String>,
    /// Skip tlog verification.
    #[serde(default)]
    pub ignore_tlog: bool,
}

/// `ctlog`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CtLogSettings {
    /// CT key PEM.
    #[serde(default)]
    pub pubkey: Option<String>,
    /// Skip the SCT check.
    #[serde(default, rename = "ignoreSCT")]
    pub ignore_sct: bool,
}

/// An attestation check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Attestation {
    /// Predicate type, compared exactly.
    #[serde(default, rename = "type")]
    pub attestation_type: Option<String>,
    /// Deprecated spelling of `type`.
    #[serde(default)]
    pub predicate_type: Option<String>,
    /// Who must have signed it.
    #[serde(default)]
    pub attestors: Vec<AttestorSet>,
    /// Checks on the predicate (JMESPath variables, Kyverno's operators); every statement of the type must pass.
    #[serde(default)]
    pub conditions: Vec<AnyAllConditions>,
}

impl Attestation {
    /// The predicate type (`type`, else the deprecated `predicateType`).
    pub fn predicate(&self) -> Option<&str> {
        self.attestation_type.as_deref().or(self.predicate_type.as_deref())
    }
}

impl Policy {
    /// The spec-level fallback failure action (CRD default Audit).
    pub fn default_action(&self) -> FailureAction {
        self.spec.validation_failure_action.unwrap_or(FailureAction::Audit)
    }

    /// The failure policy (default Fail).
    pub fn failure_policy(&self) -> FailurePolicy {
        self.spec.failure_policy.unwrap_or(FailurePolicy::Fail)
    }

    /// Kyverno's policy validation (api/kyverno/v1 `Validate`), for what sigstack evaluates.
    fn validate(&self) -> Result<(), String> {
        if self.api_version != "kyverno.io/v1" {
            return Err(format!("apiVersion {:?} is not supported (use kyverno.io/v1)", self.api_version));
        }
        if self.kind != "ClusterPolicy" && self.kind != "Policy" {
            return Err(format!("kind {:?} is not a Kyverno policy (ClusterPolicy or Policy)", self.kind));
        }
        if self.spec.rules.is_empty() {
            return Err("spec.rules is empty".into());
        }
        for rule in &self.spec.rules {
            let at = |m: String| format!("rule {}: {m}", rule.name);
            let preconditions = rule.preconditions.as_ref().map(Preconditions::any_all).unwrap_or_default();
            if let Some(c) =
                preconditions.any.iter().chain(&preconditions.all).find(|c| !OPERATORS.contains(&c.operator.as_str()))
            {
                return Err(at(format!(
                    "preconditions: operator {:?} is not one of {}",
                    c.operator,
                    OPERATORS.join(", ")
                )));
            }
            match (rule.validate.is_some(), rule.verify_images.is_empty()) {
                (true, false) => return Err(at("a rule has either validate or verifyImages, not both".into())),
                (false, true) => return Err(at("the rule has neither validate nor verifyImages".into())),
                _ => {}
            }
            for (i, entry) in rule.verify_images.iter().enumerate() {
                let at = |m: String| at(format!("verifyImages[{i}]: {m}"));
                if entry.image_references.is_empty() {
                    return Err(at("An image reference is required".into()));
                }
                if let Some(kind) =
                    entry.verification_type.as_deref().filter(|t| *t != "Cosign" && *t != "SigstoreBundle")
                {
                    return Err(at(format!("type {kind:?} is not supported (Cosign and SigstoreBundle only)")));
                }
                let action = entry.failure_action.unwrap_or(self.default_action());
                if entry.mutate_digest && action == FailureAction::Audit {
                    return Err(at("mutateDigest must be set to false for 'Audit' failure action".into()));
                }
                let sets = entry.attestors.iter().chain(entry.attestations.iter().flat_map(|a| &a.attestors));
                for set in sets {
                    validate_set(set).map_err(at)?;
                }
                for attestation in &entry.attestations {
                    if attestation.predicate().is_none() {
                        return Err(at("attestations: missing type".into()));
                    }
                    let conditions = attestation.conditions.iter().flat_map(|b| b.any.iter().chain(&b.all));
                    for condition in conditions {
                        if !OPERATORS.contains(&condition.operator.as_str()) {
                            return Err(at(format!(
                                "attestations: conditions: operator {:?} is not one of {}",
                                condition.operator,
                                OPERATORS.join(", ")
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The Fulcio extensions `keyless.additionalExtensions` may name (cosign `CertExtensions` getters
/// Kyverno's `matchExtensions` calls), with their arc numbers under 1.3.6.1.4.1.57264.1.
pub(crate) const EXTENSIONS: &[(&str, u32)] = &[
    ("issuer", 1),
    ("githubWorkflowTrigger", 2),
    ("githubWorkflowSha", 3),
    ("githubWorkflowName", 4),
    ("githubWorkflowRepository", 5),
    ("githubWorkflowRef", 6),
];

/// The arc number of an `additionalExtensions` key: a name from [`EXTENSIONS`] or its OID.
pub(crate) fn extension_number(key: &str) -> Option<u32> {
    EXTENSIONS.iter().find(|(name, n)| *name == key || format!("1.3.6.1.4.1.57264.1.{n}") == key).map(|(_, n)| *n)
}

fn validate_set(set: &AttestorSet) -> Result<(), String> {
    if set.entries.is_empty() {
        return Err("attestors: at least one entry is required".into());
    }
    if set.count.is_some_and(|c| c > set.entries.len()) {
        return Err("attestors: count is larger than the number of entries".into());
    }
    for entry in &set.entries {
        match (&entry.keyless, &entry.keys) {
            (Some(keyless), None) => validate_keyless(keyless)?,
            (None, Some(keys)) => validate_keys(keys)?,
            _ => return Err("keys, certificates, keyless, or a nested attestor is required".into()),
        }
    }
    Ok(())
}

fn validate_keyless(keyless: &KeylessAttestor) -> Result<(), String> {
    let rekor_url = keyless.rekor.as_ref().and_then(|r| r.url.as_deref()).is_some_and(|u| !u.is_empty());
    if !rekor_url && keyless.roots.as_deref().is_none_or(str::is_empty) {
        return Err("keyless: Either Rekor URL or roots are required".into());
    }
    for key in keyless.additional_extensions.keys() {
        if extension_number(key).is_none() {
            let names: Vec<&str> = EXTENSIONS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "keyless.additionalExtensions: unsupported extension {key:?} (one of {})",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

fn validate_keys(keys: &StaticKeyAttestor) -> Result<(), String> {
    if keys.kms.is_some() {
        return Err(
            "keys.kms is not supported by sigstack (no KMS here): give the key inline in keys.publicKeys".into()
        );
    }
    if keys.secret.is_some() {
        return Err(
            "keys.secret is not supported by sigstack (no cluster here): give the key inline in keys.publicKeys".into(),
        );
    }
    let Some(bundle) = keys.public_keys.as_deref().filter(|k| !k.trim().is_empty()) else {
        return Err("keys: a key source is required (publicKeys)".into());
    };
    if bundle.contains("{{") {
        return Err("keys.publicKeys: variables are not supported by sigstack; give the PEM inline".into());
    }
    if split_public_keys(bundle).is_empty() {
        return Err("keys.publicKeys: no PEM public key (-----BEGIN PUBLIC KEY-----) in it".into());
    }
    if let Some(algorithm) = keys.signature_algorithm.as_deref().filter(|a| *a != "sha256") {
        return Err(format!(
            "keys.signatureAlgorithm {algorithm:?} is not supported by sigstack (sha256, as cosign signs)"
        ));
    }
    Ok(())
}

/// The non-empty documents of multi-document YAML, as JSON values.
pub(crate) fn documents(file: &str, yaml: &str) -> Result<Vec<Value>, PolicyError> {
    let mut values = Vec::new();
    for document in serde_norway::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)
            .map_err(|e| PolicyError::Parse { file: file.into(), message: e.to_string() })?;
        if !value.is_null() {
            values.push(value);
        }
    }
    Ok(values)
}

/// One `ClusterPolicy` or `Policy` document, validated as Kyverno validates it.
pub(crate) fn policy_from_value(file: &str, value: Value) -> Result<Policy, PolicyError> {
    let policy: Policy = serde_json::from_value(value).map_err(|e| PolicyError::Parse {
        file: file.into(),
        message: format!("unsupported or invalid policy: {e}"),
    })?;
    policy.validate().map_err(|message| PolicyError::Invalid {
        file: file.into(),
        policy: policy.metadata.name.clone(),
        message,
    })?;
    Ok(policy)
}

/// Loads every policy document in `yaml` (multi-document YAML), validated.
pub fn load_policies(file: &str, yaml: &str) -> Result<Vec<Policy>, PolicyError> {
    let mut policies = Vec::new();
    for value in documents(file, yaml)? {
        policies.push(policy_from_value(file, value)?);
    }
    if policies.is_empty() {
        return Err(PolicyError::Parse { file: file.into(), message: "no policy in the file".into() });
    }
    Ok(policies)
}
