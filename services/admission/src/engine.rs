//! Evaluating policies against one admission request's object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::conditions::evaluate_conditions;
use crate::image::ImageInfo;
use crate::pattern::{PatternFailure, check};
use crate::policy::{
    AttestorSet, CtLogSettings, FailureAction, FailurePolicy, ImageVerification, KeylessAttestor, MatchResources,
    Policy, RekorSettings, ResourceDescription, Rule, StaticKeyAttestor, extension_number, split_public_keys,
};
use crate::wildcard;

/// A signature that passed the cryptographic checks (chain, SCT, SET, signature, digest, or the
/// static key); the identity checks are the engine's, with Kyverno's wildcard semantics.
#[derive(Debug, Clone, Default)]
pub struct VerifiedSignature {
    /// Certificate SANs (empty for a key-signed one).
    pub sans: Vec<String>,
    /// OIDC issuer extension (empty for a key-signed one).
    pub issuer: String,
    /// The certificate's Sigstore extensions by N in 1.3.6.1.4.1.57264.1.N, as text.
    pub extensions: BTreeMap<u32, String>,
    /// For attestations: the in-toto statement.
    pub statement: Option<Value>,
}

/// Why verification produced nothing.
#[derive(Debug, Clone)]
pub enum VerifyFailure {
    /// No signature or attestation is attached.
    NotFound(String),
    /// Attached, but none verifies (chain, SCT, SET, signature).
    Invalid(String),
    /// The registry or the trust material could not be reached: an error, decided by failurePolicy.
    Unreachable(String),
}

/// The trust one attestor entry names, passed to the verifier.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureCheck<'a> {
    /// Keyless: the PEM roots the certificate chain must end in.
    pub roots: Option<&'a str>,
    /// Keys: the one PEM public key the signature must verify with (instead of a certificate).
    pub public_key: Option<&'a str>,
    /// The log: url, key, `ignoreTlog`.
    pub rekor: Option<&'a RekorSettings>,
    /// The CT log: key, `ignoreSCT`.
    pub ctlog: Option<&'a CtLogSettings>,
}

/// Which webhook phase is evaluated: Kyverno verifies images (and mutates) in the mutating webhook,
/// then runs `validate` rules and the `verifyDigest`/`required` checks in the validating webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// verifyImages: signatures, attestations, digest patch, annotation.
    Mutate,
    /// validate rules, and verifyImages' digest and annotation checks on the mutated object.
    Validate,
    /// Both, as `kyverno apply` does (verifyImages then validate rules on the same resource).
    All,
}

/// What the engine needs from a registry and the Sigstore formats.
pub trait ImageVerifier {
    /// The digest a tag names now.
    fn resolve(&self, image: &ImageInfo) -> Result<String, VerifyFailure>;
    /// Signatures of `image` (pinned) that verify with the attestor's trust material.
    fn signatures(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure>;
    /// Attestations of `image` (pinned) with `predicate_type` that verify with the trust material.
    fn attestations(
        &self,
        image: &ImageInfo,
        predicate_type: &str,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure>;
}

/// Outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// Satisfied.
    Pass,
    /// Violated.
    Fail,
    /// Not applicable.
    Skip,
    /// Could not be evaluated.
    Error,
}

/// One rule's result for the resource.
#[derive(Debug, Clone)]
pub struct RuleResult {
    /// Policy name.
    pub policy: String,
    /// Rule name (`autogen-...` for Pod rules applied to controllers).
    pub rule: String,
    /// The webhook phase that produced it (Mutate or Validate).
    pub phase: Phase,
    /// Outcome.
    pub status: RuleStatus,
    /// Kyverno's message.
    pub message: String,
    /// Whether a failure blocks (Enforce).
    pub enforce: bool,
    /// The policy's failurePolicy.
    pub failure_policy: FailurePolicy,
}

/// The admission decision for one resource.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Every rule that applied.
    pub results: Vec<RuleResult>,
    /// JSON patch (digest pins, verify-images annotation).
    pub patches: Vec<Value>,
    /// The resource with the patches applied.
    pub mutated: Value,
    /// Kyverno's block message, if the request is denied.
    pub blocked: Option<String>,
}

const CONTROLLERS: &[&str] = &["DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController"];

/// Where the pod spec of a resource is, and the rule-name prefix autogen uses.
fn pod_view(resource: &Value, kind: &str) -> Option<(String, Value, &'static str)> {
    match kind {
        "Pod" => Some((String::new(), resource.clone(), "")),
        "CronJob" => resource
            .pointer("/spec/jobTemplate/spec/template")
            .map(|t| ("/spec/jobTemplate/spec/template".to_string(), t.clone(), "autogen-cronjob-")),
        k if CONTROLLERS.contains(&k) => {
            resource.pointer("/spec/template").map(|t| ("/spec/template".to_string(), t.clone(), "autogen-"))
        }
        _ => None,
    }
}

fn kind_matches(pattern: &str, kind: &str) -> bool {
    // `apps/v1/Deployment` and `Deployment` both name the kind by their last component.
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    wildcard::matches(last, kind)
}

fn selector_matches(selector: &crate::policy::LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|e| match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| e.values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !e.values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        })
}

struct Target<'a> {
    name: &'a str,
    namespace: &'a str,
    labels: BTreeMap<String, String>,
    operation: &'a str,
}

fn description_matches(d: &ResourceDescription, t: &Target<'_>, kind: &str) -> bool {
    (d.kinds.is_empty() || d.kinds.iter().any(|k| kind_matches(k, kind)))
        && d.names.iter().chain(&d.name).all(|n| wildcard::matches(n, t.name))
        && (d.names.is_empty() || d.names.iter().any(|n| wildcard::matches(n, t.name)))
        && (d.namespaces.is_empty() || d.namespaces.iter().any(|n| wildcard::matches(n, t.namespace)))
        && d.selector.as_ref().is_none_or(|s| selector_matches(s, &t.labels))
        && (d.operations.is_empty() || d.operations.iter().any(|o| o == t.operation))
}

fn resources_match(m: &MatchResources, t: &Target<'_>, kind: &str) -> bool {
    let any = m.any.is_empty() || m.any.iter().any(|f| description_matches(&f.resources, t, kind));
    let all = m.all.iter().all(|f| description_matches(&f.resources, t, kind));
    let single = m.resources.as_ref().is_none_or(|d| description_matches(d, t, kind));
    any && all && single && !(m.any.is_empty() && m.all.is_empty() && m.resources.is_none())
}

fn excluded(m: &Option<MatchResources>, t: &Target<'_>, kind: &str) -> bool {
    m.as_ref().is_some_and(|m| resources_match(m, t, kind))
}

struct ImageRef {
    pointer: String,
    raw: String,
}

fn images(pod: &Value, prefix: &str) -> Vec<ImageRef> {
    let mut found = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, container) in
            pod.pointer(&format!("/spec/{field}")).and_then(Value::as_array).into_iter().flatten().enumerate()
        {
            if let Some(image) = container["image"].as_str() {
                found.push(ImageRef { pointer: format!("{prefix}/spec/{field}/{i}/image"), raw: image.to_string() });
            }
        }
    }
    found
}

/// The signatures whose certificate matches the keyless identity (subject, issuer, extensions), or
/// why none does. Only those count: their statements are what attestation conditions see, as cosign
/// returns only signatures that pass its checks.
fn matching_identity(
    keyless: &KeylessAttestor,
    signatures: Vec<VerifiedSignature>,
) -> Result<Vec<VerifiedSignature>, String> {
    let mut reasons = Vec::new();
    let mut matching = Vec::new();
    for sig in signatures {
        let subject_ok = match (&keyless.subject, &keyless.subject_regexp) {
            (None, None) => true,
            (subject, regexp) => {
                sig.sans.is_empty()
                    || sig.sans.iter().any(|san| subject.as_deref().is_some_and(|s| wildcard::matches(s, san)))
                    || regexp
                        .as_deref()
                        .and_then(|r| regex::Regex::new(r).ok())
                        .is_some_and(|re| sig.sans.iter().any(|san| re.is_match(san)))
            }
        };
        if !subject_ok {
            let expected = keyless.subject.clone().or(keyless.subject_regexp.clone()).unwrap_or_default();
            reasons.push(format!("subject mismatch: expected {expected}, received {}", sig.sans.join(", ")));
            continue;
        }
        let issuer_ok = keyless.issuer.as_deref().is_none_or(|i| wildcard::matches(i, &sig.issuer))
            && keyless
                .issuer_regexp
                .as_deref()
                .and_then(|r| regex::Regex::new(r).ok())
                .is_none_or(|re| re.is_match(&sig.issuer));
        if !issuer_ok {
            let expected = keyless.issuer.clone().or(keyless.issuer_regexp.clone()).unwrap_or_default();
            reasons.push(format!("issuer mismatch: expected {expected}, received {}", sig.issuer));
            continue;
        }
        let extension_mismatch = keyless.additional_extensions.iter().find_map(|(key, expected)| {
            let received = match extension_number(key) {
                Some(1) => sig.issuer.clone(),
                Some(n) => sig.extensions.get(&n).cloned().unwrap_or_default(),
                None => String::new(),
            };
            (!wildcard::matches(expected, &received))
                .then(|| format!("extension {key} mismatch: expected {expected}, received {received}"))
        });
        if let Some(reason) = extension_mismatch {
            reasons.push(reason);
            continue;
        }
        matching.push(sig);
    }
    if matching.is_empty() { Err(reasons.join("; ")) } else { Ok(matching) }
}

enum Verdict {
    /// Passed, with the signatures of the entries that verified.
    Pass(Vec<VerifiedSignature>),
    Fail(String),
    Error(String),
}

/// One attestor entry after Kyverno's `ExpandStaticKeys` (a `publicKeys` bundle is one entry per key).
enum Entry<'a> {
    Keyless(&'a KeylessAttestor),
    Key(String, &'a StaticKeyAttestor),
}

impl Entry<'_> {
    fn expand(set: &AttestorSet) -> Vec<Entry<'_>> {
        let mut entries = Vec::new();
        for entry in &set.entries {
            if let Some(keyless) = &entry.keyless {
                entries.push(Entry::Keyless(keyless));
            } else if let Some(keys) = &entry.keys {
                let bundle = keys.public_keys.as_deref().unwrap_or_default();
                entries.extend(split_public_keys(bundle).into_iter().map(|pem| Entry::Key(pem, keys)));
            }
        }
        entries
    }

    fn name(&self) -> &'static str {
        match self {
            Entry::Keyless(_) => "keyless",
            Entry::Key(..) => "keys",
        }
    }

    fn check(&self) -> SignatureCheck<'_> {
        match self {
            Entry::Keyless(k) => SignatureCheck {
                roots: k.roots.as_deref(),
                public_key: None,
                rekor: k.rekor.as_ref(),
                ctlog: k.ctlog.as_ref(),
            },
            Entry::Key(pem, k) => {
                SignatureCheck { roots: None, public_key: Some(pem), rekor: k.rekor.as_ref(), ctlog: k.ctlog.as_ref() }
            }
        }
    }
}

/// Runs attestor sets (every set must pass; within a set `count` entries, all by default).
fn run_sets(
    sets: &[AttestorSet],
    path: &str,
    fetch: &dyn Fn(&SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure>,
) -> Verdict {
    let mut passed = Vec::new();
    for (s, set) in sets.iter().enumerate() {
        let entries = Entry::expand(set);
        let required = set.count.filter(|c| *c > 0).unwrap_or(entries.len());
        let mut verified = 0;
        let mut errors = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            let at = format!("{path}[{s}].entries[{e}].{}", entry.name());
            match fetch(&entry.check()) {
                Err(VerifyFailure::Unreachable(m)) => return Verdict::Error(format!("{at}: {m}")),
                Err(VerifyFailure::NotFound(m)) => errors.push(format!("{at}: {m}")),
                Err(VerifyFailure::Invalid(m)) => errors.push(format!("{at}: no matching signatures: {m}")),
                Ok(signatures) => {
                    let matching = match entry {
                        Entry::Keyless(keyless) => matching_identity(keyless, signatures),
                        Entry::Key(..) => Ok(signatures),
                    };
                    match matching {
                        Ok(signatures) => {
                            verified += 1;
                            passed.extend(signatures);
                        }
                        Err(reason) => errors.push(format!("{at}: no matching signatures: {reason}")),
                    }
                }
            }
            if verified >= required {
                break;
            }
        }
        if verified < required {
            return Verdict::Fail(errors.join("; "));
        }
    }
    Verdict::Pass(passed)
}

fn verify_entry(entry: &ImageVerification, image: &ImageInfo, verifier: &dyn ImageVerifier) -> Verdict {
    let signatures = |check: &SignatureCheck<'_>| verifier.signatures(image, check);
    match run_sets(&entry.attestors, ".attestors", &signatures) {
        Verdict::Pass(_) => {}
        other => return other,
    }
    for (a, attestation) in entry.attestations.iter().enumerate() {
        let predicate = attestation.predicate().unwrap_or_default();
        if attestation.attestors.is_empty() {
            return Verdict::Error(format!(
                ".attestations[{a}]: attestations without attestors use the public-good Sigstore roots, which sigstack never fetches; give keyless roots"
            ));
        }
        let fetch = |check: &SignatureCheck<'_>| match verifier.attestations(image, predicate, check) {
            Err(VerifyFailure::NotFound(_)) => {
                Err(VerifyFailure::NotFound(format!("attestations not found for predicate type {predicate}")))
            }
            other => other,
        };
        let verified = match run_sets(&attestation.attestors, &format!(".attestations[{a}].attestors"), &fetch) {
            Verdict::Pass(verified) => verified,
            other => return other,
        };
        // Every statement of the type must satisfy the conditions (imageverifier.go verifyAttestation).
        let image = image.matching_string();
        for statement in verified.iter().filter_map(|v| v.statement.as_ref()) {
            match evaluate_conditions(&attestation.conditions, &statement["predicate"]) {
                Ok(None) => {}
                Ok(Some(message)) => {
                    return Verdict::Fail(format!(
                        "attestation checks failed for {image} and predicate {predicate}: {message}"
                    ));
                }
                Err(e) => {
                    return Verdict::Fail(format!(
                        "failed to check attestations: failed to substitute variables in attestation conditions: {}",
                        e.0
                    ));
                }
            }
        }
    }
    Verdict::Pass(Vec::new())
}

fn set_pointer(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
    }
}

/// Evaluates `policies` against `resource` (as an admission request's object) for `operation`,
/// both phases, as `kyverno apply` does.
pub fn evaluate(
    policies: &[Policy],
    resource: &Value,
    namespace: Option<&str>,
    operation: &str,
    verifier: &dyn ImageVerifier,
) -> Decision {
    evaluate_phase(policies, resource, namespace, operation, verifier, Phase::All)
}

/// Evaluates one webhook `phase` of `policies` against `resource`.
pub fn evaluate_phase(
    policies: &[Policy],
    resource: &Value,
    namespace: Option<&str>,
    operation: &str,
    verifier: &dyn ImageVerifier,
    phase: Phase,
) -> Decision {
    let kind = resource["kind"].as_str().unwrap_or("");
    let name = resource["metadata"]["name"].as_str().unwrap_or("");
    let ns = namespace.or(resource["metadata"]["namespace"].as_str()).unwrap_or("default");
    let (results, patches, mutated) = match phase {
        // The validating phase sees the mutated object. A rule whose signatures already failed is not
        // reported twice ("unverified image" after the reason); one that errored (registry down) is
        // checked, as Kyverno's validating webhook does.
        Phase::All => {
            let (mut results, patches, mutated) = run_phase(policies, resource, ns, operation, verifier, Phase::Mutate);
            let failed: Vec<(String, String)> = results
                .iter()
                .filter(|r| r.status == RuleStatus::Fail)
                .map(|r| (r.policy.clone(), r.rule.clone()))
                .collect();
            let (validated, _, _) = run_phase(policies, &mutated, ns, operation, verifier, Phase::Validate);
            results.extend(validated.into_iter().filter(|r| !failed.contains(&(r.policy.clone(), r.rule.clone()))));
            (results, patches, mutated)
        }
        phase => run_phase(policies, resource, ns, operation, verifier, phase),
    };
    let blocked = blocked_message(&format!("{kind}/{ns}/{name}"), &results);
    Decision { results, patches, mutated, blocked }
}

/// Kyverno's `BlockRequest` and `GetBlockedMessages`: a Fail under Enforce, or an Error under
/// failurePolicy Fail, blocks.
fn blocked_message(resource: &str, results: &[RuleResult]) -> Option<String> {
    let blocking: Vec<&RuleResult> = results
        .iter()
        .filter(|r| {
            (r.status == RuleStatus::Fail && r.enforce)
                || (r.status == RuleStatus::Error && r.failure_policy == FailurePolicy::Fail)
        })
        .collect();
    (!blocking.is_empty()).then(|| {
        let mut message = format!("resource {resource} was blocked due to the following policies \n\n");
        let mut by_policy: BTreeMap<&str, Vec<&RuleResult>> = BTreeMap::new();
        for r in &blocking {
            by_policy.entry(&r.policy).or_default().push(r);
        }
        for (policy, rules) in by_policy {
            message.push_str(&format!("{policy}:\n"));
            for r in rules {
                message.push_str(&format!("  {}: '{}'\n", r.rule, r.message));
            }
        }
        message
    })
}

fn run_phase(
    policies: &[Policy],
    resource: &Value,
    namespace: &str,
    operation: &str,
    verifier: &dyn ImageVerifier,
    phase: Phase,
) -> (Vec<RuleResult>, Vec<Value>, Value) {
    let kind = resource["kind"].as_str().unwrap_or("");
    let name = resource["metadata"]["name"].as_str().unwrap_or("");
    let labels: BTreeMap<String, String> = resource["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let target = Target { name, namespace, labels, operation };
    let autogen_off =
        resource["metadata"]["annotations"]["pod-policies.kyverno.io/autogen-controllers"].as_str() == Some("none");
    let mut results = Vec::new();
    let mut mutated = resource.clone();
    let mut patches = Vec::new();
    let mut verified_images: BTreeMap<String, &'static str> = BTreeMap::new();

    for policy in policies {
        if policy.kind == "Policy" && policy.metadata.namespace.as_deref().unwrap_or("default") != namespace {
            continue;
        }
        for rule in &policy.spec.rules {
            // Rules see the resource as earlier rules patched it (a pinned image is not pinned twice).
            // Direct match, or a Pod rule applied to a controller's pod template (autogen).
            let (view, prefix, rule_name) = if resources_match(&rule.match_resources, &target, kind) {
                match pod_view(&mutated, kind) {
                    Some((prefix, view, _)) if kind == "Pod" => (view, prefix, rule.name.clone()),
                    _ => (mutated.clone(), String::new(), rule.name.clone()),
                }
            } else if !autogen_off && kind != "Pod" && resources_match(&rule.match_resources, &target, "Pod") {
                match pod_view(&mutated, kind) {
                    Some((prefix, view, tag)) => (view, prefix, format!("{tag}{}", rule.name)),
                    None => continue,
                }
            } else {
                continue;
            };
            if excluded(&rule.exclude, &target, kind) {
                continue;
            }
            let result = |status, message: String, action: Option<FailureAction>| RuleResult {
                policy: policy.metadata.name.clone(),
                rule: rule_name.clone(),
                phase,
                status,
                message,
                enforce: action.unwrap_or(policy.default_action()) == FailureAction::Enforce,
                failure_policy: policy.failure_policy(),
            };
            if let Some(validate) = &rule.validate {
                if phase == Phase::Mutate {
                    continue;
                }
                let message = validate.message.clone().unwrap_or_default();
                let outcome = match check(&view, &validate.pattern, "/") {
                    Ok(()) => (RuleStatus::Pass, "validation rule passed".to_string()),
                    Err(PatternFailure::Mismatch(path)) => (
                        RuleStatus::Fail,
                        format!("validation error: {message}. rule {rule_name} failed at path {prefix}{path}"),
                    ),
                    Err(PatternFailure::Unsupported(what)) => (RuleStatus::Error, what),
                };
                results.push(result(outcome.0, outcome.1, validate.failure_action));
                continue;
            }
            let outcomes = if phase == Phase::Validate {
                validate_verified_images(rule, &view, &prefix, &resource["metadata"]["annotations"])
            } else {
                verify_rule(rule, &view, &prefix, verifier, &mut mutated, &mut patches, &mut verified_images)
            };
            results.extend(outcomes.into_iter().map(|(status, message, action)| result(status, message, action)));
        }
    }
    if !verified_images.is_empty() {
        if mutated["metadata"]["annotations"].is_null() {
            patches.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
            mutated["metadata"]["annotations"] = json!({});
        }
        let value = serde_json::to_string(&verified_images).unwrap_or_default();
        patches.push(json!({"op": "add", "path": "/metadata/annotations/kyverno.io~1verify-images", "value": value}));
        mutated["metadata"]["annotations"]["kyverno.io/verify-images"] = json!(value);
    }
    (results, patches, mutated)
}

type RuleOutcome = (RuleStatus, String, Option<FailureAction>);

/// The images of `view` that `entry`'s imageReferences select, parsed (Kyverno's normalisation),
/// and the parse errors of the images that could not be read at all.
fn selected_images(entry: &ImageVerification, view: &Value, prefix: &str) -> (Vec<(ImageRef, ImageInfo)>, Vec<String>) {
    let mut selected = Vec::new();
    let mut unreadable = Vec::new();
    for image in images(view, prefix) {
        match ImageInfo::parse(&image.raw) {
            Ok(info) if entry.image_references.iter().any(|p| wildcard::matches(p, &info.matching_string())) => {
                selected.push((image, info));
            }
            Ok(_) => {}
            Err(e) => unreadable.push(e),
        }
    }
    (selected, unreadable)
}

/// The validating webhook's image checks (Kyverno `validate_image.go`): on the mutated object,
/// `verifyDigest` needs a digest, and `required` needs the image marked pass or skip in the
/// `kyverno.io/verify-images` annotation the mutating phase wrote.
fn validate_verified_images(rule: &Rule, view: &Value, prefix: &str, annotations: &Value) -> Vec<RuleOutcome> {
    let marks: BTreeMap<String, String> = annotations["kyverno.io/verify-images"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    for entry in rule.verify_images.iter().filter(|e| e.verify_digest || e.required) {
        // Only imageReferences: Kyverno's validate_image.go does not consult skipImageReferences
        // (a skipped image is marked "skip" in the annotation instead).
        let (selected, mut failures) = selected_images(entry, view, prefix);
        let checked = selected.len();
        for (_, info) in selected {
            let matching = info.matching_string();
            if entry.verify_digest && info.digest.is_none() {
                failures.push(format!("missing digest for {matching}"));
            } else if entry.required
                && entry.verifies()
                && !marks.get(&matching).is_some_and(|m| m == "pass" || m == "skip")
            {
                failures.push(format!("unverified image {matching}"));
            }
        }
        if !failures.is_empty() {
            outcomes.push((RuleStatus::Fail, failures.join("; "), entry.failure_action));
        } else if checked > 0 {
            outcomes.push((RuleStatus::Pass, "image verified".into(), entry.failure_action));
        }
    }
    outcomes
}

fn verify_rule(
    rule: &Rule,
    view: &Value,
    prefix: &str,
    verifier: &dyn ImageVerifier,
    mutated: &mut Value,
    patches: &mut Vec<Value>,
    verified_images: &mut BTreeMap<String, &'static str>,
) -> Vec<RuleOutcome> {
    let mut outcomes = Vec::new();
    for entry in &rule.verify_images {
        let (selected, mut failures) = selected_images(entry, view, prefix);
        let mut errors = Vec::new();
        let mut passed = Vec::new();
        let mut skipped = 0;
        for (image, info) in selected {
            let matching = info.matching_string();
            if entry.skip_image_references.iter().any(|p| wildcard::matches(p, &matching)) {
                if entry.verifies() {
                    verified_images.insert(matching, "skip");
                }
                skipped += 1;
                continue;
            }
            let pinned = match &info.digest {
                Some(_) => info.clone(),
                None => match verifier.resolve(&info) {
                    Ok(digest) => ImageInfo { digest: Some(digest), ..info.clone() },
                    Err(VerifyFailure::Unreachable(m)) => {
                        errors.push(format!("failed to verify image {}: {m}", image.raw));
                        continue;
                    }
                    Err(VerifyFailure::NotFound(m) | VerifyFailure::Invalid(m)) => {
                        failures.push(format!("failed to verify image {}: {m}", image.raw));
                        continue;
                    }
                },
            };
            match verify_entry(entry, &pinned, verifier) {
                Verdict::Pass(_) => {
                    let digest = pinned.digest.clone().unwrap_or_default();
                    // The annotation names the image as the object will hold it: pinned when patched,
                    // else as written (Kyverno's chainsaw: `{"ghcr.io/kyverno/zulu:latest":"pass"}`).
                    // A tag left unpinned under verifyDigest is the validating phase's "missing digest".
                    let annotated = if info.digest.is_none() && entry.mutate_digest {
                        let value = format!("{}@{digest}", info.without_digest());
                        patches.push(json!({"op": "replace", "path": image.pointer, "value": value}));
                        set_pointer(mutated, &image.pointer, json!(value));
                        pinned.matching_string()
                    } else {
                        info.matching_string()
                    };
                    verified_images.insert(annotated, "pass");
                    passed.push(image.raw.clone());
                }
                Verdict::Fail(m) => {
                    verified_images.insert(pinned.matching_string(), "fail");
                    failures.push(format!("failed to verify image {}: {m}", image.raw));
                }
                Verdict::Error(m) => errors.push(format!("failed to verify image {}: {m}", image.raw)),
            }
        }
        let action = entry.failure_action;
        if !errors.is_empty() {
            outcomes.push((RuleStatus::Error, errors.join("; "), action));
        } else if !failures.is_empty() {
            outcomes.push((RuleStatus::Fail, failures.join("; "), action));
        } else if !passed.is_empty() {
            let what = if entry.attestations.is_empty() { "signatures" } else { "attestations" };
            outcomes.push((RuleStatus::Pass, format!("verified image {what} for {}", passed.join(", ")), action));
        } else if skipped > 0 {
            outcomes.push((RuleStatus::Skip, "image skipped by skipImageReferences".into(), action));
        }
        // No matching image: Kyverno produces no rule response at all.
    }
    outcomes
}
