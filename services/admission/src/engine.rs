//! Evaluating policies against one admission request's object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::conditions::{ConditionError, evaluate_conditions};
use crate::image::ImageInfo;
use crate::pattern::{PatternFailure, check};
use crate::policy::{
    FailureAction, FailurePolicy, ImageVerification, MatchResources, Policy, ResourceDescription, Rule,
};
use crate::verify_images::{ImageVerifier, Verdict, VerifyFailure, verify_image};
use crate::wildcard;

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
    /// Whether a failure is a warning to the client (an ImageValidatingPolicy's `Warn` action).
    pub warn: bool,
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
    /// Warnings for the client (`Warn` actions).
    pub warnings: Vec<String>,
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

pub(crate) fn selector_matches(selector: &crate::policy::LabelSelector, labels: &BTreeMap<String, String>) -> bool {
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
        // Both, as `kyverno apply` does: the validating phase sees the mutated object and reports
        // its own results (`unverified image ...` after a failed verification, as the CLI does).
        Phase::All => {
            let (mut results, patches, mutated) = run_phase(policies, resource, ns, operation, verifier, Phase::Mutate);
            let (validated, _, _) = run_phase(policies, &mutated, ns, operation, verifier, Phase::Validate);
            // The API server stops at the mutating webhook's denial: that is the answer a user
            // sees; only an admitted mutation reaches the validating webhook.
            let id = format!("{kind}/{ns}/{name}");
            let blocked = blocked_message(&id, &results).or_else(|| blocked_message(&id, &validated));
            results.extend(validated);
            return Decision { results, patches, mutated, blocked, warnings: Vec::new() };
        }
        phase => run_phase(policies, resource, ns, operation, verifier, phase),
    };
    let blocked = blocked_message(&format!("{kind}/{ns}/{name}"), &results);
    Decision { results, patches, mutated, blocked, warnings: Vec::new() }
}

/// Kyverno's `BlockRequest` and `GetBlockedMessages` (pkg/webhooks/utils/block.go): a Fail under
/// Enforce, or an Error under failurePolicy Fail, blocks; the message then lists every rule that
/// did not pass or skip, per policy, as its YAML encoder writes a map (sorted keys, the last
/// answer of a rule wins).
fn blocked_message(resource: &str, results: &[RuleResult]) -> Option<String> {
    let blocks = results.iter().any(|r| {
        (r.status == RuleStatus::Fail && r.enforce)
            || (r.status == RuleStatus::Error && r.failure_policy == FailurePolicy::Fail)
    });
    if !blocks {
        return None;
    }
    let mut by_policy: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for r in results.iter().filter(|r| matches!(r.status, RuleStatus::Fail | RuleStatus::Error)) {
        by_policy.entry(&r.policy).or_default().insert(&r.rule, &r.message);
    }
    let mut message = format!("resource {resource} was blocked due to the following policies \n\n");
    for (policy, rules) in by_policy {
        message.push_str(&format!("{policy}:\n"));
        for (rule, reason) in rules {
            message.push_str(&format!("  {rule}: '{}'\n", reason.replace('\'', "''")));
        }
    }
    Some(message)
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
    let mut marks = ImageMarks::new();

    for policy in policies {
        if policy.kind == "Policy" && policy.metadata.namespace.as_deref().unwrap_or("default") != namespace {
            continue;
        }
        for rule in &policy.spec.rules {
            // Every verifyImages rule sees the images as the request wrote them, not as an earlier
            // rule pinned them (the real Kyverno names the tag in the second rule's messages, and
            // each rule patches the same pin). Direct match, or a Pod rule applied to a
            // controller's pod template (autogen).
            let (view, prefix, rule_name) = if resources_match(&rule.match_resources, &target, kind) {
                match pod_view(resource, kind) {
                    Some((prefix, view, _)) if kind == "Pod" => (view, prefix, rule.name.clone()),
                    _ => (resource.clone(), String::new(), rule.name.clone()),
                }
            } else if !autogen_off && kind != "Pod" && resources_match(&rule.match_resources, &target, "Pod") {
                match pod_view(resource, kind) {
                    Some((prefix, view, tag)) => (view, prefix, format!("{tag}{}", rule.name)),
                    None => continue,
                }
            } else {
                continue;
            };
            if excluded(&rule.exclude, &target, kind) {
                continue;
            }
            // Kyverno instantiates a verifyImages handler only for a rule that selects an image,
            // and checks preconditions after that (engine.go invokeRuleHandler): an unmatched
            // image gives no answer, a matched one whose preconditions fail a skip.
            let selects_image = rule.verify_images.iter().any(|e| !selected_images(e, &view, &prefix).0.is_empty());
            if rule.validate.is_some() && phase == Phase::Mutate
                || rule.validate.is_none() && !selects_image
                || rule.validate.is_none() && phase == Phase::Validate && !rule.has_verify_image_checks()
            {
                continue;
            }
            if let Some(preconditions) = &rule.preconditions {
                let context = json!({"request": {"object": view, "operation": operation, "namespace": namespace}});
                let skipped = match evaluate_conditions(&[preconditions.any_all()], &context) {
                    Ok(None) => None,
                    Ok(Some(why)) => Some((RuleStatus::Skip, format!("preconditions not met; {why}"))),
                    Err(ConditionError(e)) => {
                        Some((RuleStatus::Error, format!("failed to evaluate preconditions: {e}")))
                    }
                };
                if let Some((status, message)) = skipped {
                    let action = rule.verify_images.iter().find_map(|e| e.failure_action);
                    let action = rule.validate.as_ref().and_then(|v| v.failure_action).or(action);
                    results.push(RuleResult {
                        policy: policy.metadata.name.clone(),
                        rule: rule_name.clone(),
                        phase,
                        status,
                        message: message.trim_end_matches("; ").trim_end_matches(';').to_string(),
                        enforce: action.unwrap_or(policy.default_action()) == FailureAction::Enforce,
                        failure_policy: policy.failure_policy(),
                        warn: false,
                    });
                    continue;
                }
            }
            let result = |status, message: String, action: Option<FailureAction>| RuleResult {
                policy: policy.metadata.name.clone(),
                rule: rule_name.clone(),
                phase,
                status,
                message,
                enforce: action.unwrap_or(policy.default_action()) == FailureAction::Enforce,
                failure_policy: policy.failure_policy(),
                warn: false,
            };
            if let Some(validate) = &rule.validate {
                if phase == Phase::Mutate {
                    continue;
                }
                let message = validate.message.clone().unwrap_or_default();
                let outcome = match check(&view, &validate.pattern, "/") {
                    Ok(()) => (RuleStatus::Pass, format!("validation rule '{rule_name}' passed.")),
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
                let policy_key =
                    format!("{}/{}", policy.metadata.namespace.as_deref().unwrap_or(""), policy.metadata.name);
                validate_verified_images(
                    rule,
                    &rule_name,
                    &policy_key,
                    &view,
                    &prefix,
                    &resource["metadata"]["annotations"],
                )
            } else {
                marks.policy =
                    format!("{}/{}", policy.metadata.namespace.as_deref().unwrap_or(""), policy.metadata.name);
                verify_rule(rule, &rule_name, &view, &prefix, verifier, &mut mutated, &mut patches, &mut marks)
            };
            results.extend(outcomes.into_iter().map(|(status, message, action)| result(status, message, action)));
        }
    }
    marks.patch(&mut mutated, &mut patches);
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

/// The validating webhook's image checks (Kyverno `validate_image.go`), on the mutated object:
/// `verifyDigest` needs a digest; `required` needs the image marked pass or skip for this policy
/// and rule in `kyverno.io/verify-images-scoped` (written by the mutating phase). The first
/// failure fails the rule.
fn validate_verified_images(
    rule: &Rule,
    rule_name: &str,
    policy: &str,
    view: &Value,
    prefix: &str,
    annotations: &Value,
) -> Vec<RuleOutcome> {
    let scoped: Value = annotations["kyverno.io/verify-images-scoped"]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let marks = &scoped["policies"][policy][rule_name];
    let action = rule.verify_images.iter().find_map(|e| e.failure_action);
    // Rule.HasVerifyImageChecks, and no response when the rule selects no image.
    if !rule.has_verify_image_checks()
        || rule.verify_images.iter().all(|e| selected_images(e, view, prefix).0.is_empty())
    {
        return Vec::new();
    }
    let (mut passed, mut skipped) = (Vec::new(), Vec::new());
    for entry in &rule.verify_images {
        // Only imageReferences: Kyverno's validate_image.go does not consult skipImageReferences
        // (a skipped image is marked "skip" in the annotation instead).
        let (selected, unreadable) = selected_images(entry, view, prefix);
        if let Some(error) = unreadable.into_iter().next() {
            return vec![(RuleStatus::Fail, error, action)];
        }
        for (_, info) in selected {
            let image = info.matching_string();
            if entry.verify_digest && info.digest.is_none() {
                return vec![(RuleStatus::Fail, format!("missing digest for {image}"), action)];
            }
            if entry.required {
                match marks[&image].as_str() {
                    Some("pass") => passed.push(image),
                    Some("skip") => skipped.push(image),
                    _ => return vec![(RuleStatus::Fail, format!("unverified image {image}"), action)],
                }
            }
        }
    }
    match (passed.is_empty(), skipped.is_empty()) {
        (false, true) | (true, true) => vec![(RuleStatus::Pass, "image verified".into(), action)],
        (false, false) => {
            vec![(RuleStatus::Pass, format!("image verified, skipped images: {}", skipped.join(" ")), action)]
        }
        (true, false) => {
            vec![(RuleStatus::Skip, format!("image skipped, skipped images: {}", skipped.join(" ")), action)]
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "the rule's inputs and the three outputs a mutating pass accumulates")]
fn verify_rule(
    rule: &Rule,
    rule_name: &str,
    view: &Value,
    prefix: &str,
    verifier: &dyn ImageVerifier,
    mutated: &mut Value,
    patches: &mut Vec<Value>,
    marks: &mut ImageMarks,
) -> Vec<RuleOutcome> {
    let mut outcomes = Vec::new();
    for entry in &rule.verify_images {
        let (selected, unreadable) = selected_images(entry, view, prefix);
        let action = entry.failure_action;
        for error in unreadable {
            outcomes.push((RuleStatus::Fail, error, action));
        }
        // Kyverno answers once per image of the entry (imageverifier.go Verify).
        for (image, info) in selected {
            let matching = info.matching_string();
            let pinned = match &info.digest {
                Some(_) => Ok(info.clone()),
                None => verifier.resolve(&info).map(|digest| ImageInfo { digest: Some(digest), ..info.clone() }),
            };
            if entry.skip_image_references.iter().any(|p| wildcard::matches(p, &matching)) && entry.verifies() {
                // Kyverno (imageverifier.go Verify) still pins a skipped image's digest and marks
                // it "skip" under the pinned name, so the validating phase finds a digest and a
                // skip mark: the Pod is admitted with the rule skipped. The unpinned name gets a
                // plain mark too (verifyImage's `ivm.Add`).
                marks.images.insert(matching.clone(), "skip");
                let annotated = match (&pinned, info.digest.is_none() && entry.mutate_digest) {
                    (Ok(pinned), true) => {
                        pin(&image, &info, pinned, mutated, patches);
                        pinned.matching_string()
                    }
                    (Err(VerifyFailure(m)), true) => {
                        outcomes.push((RuleStatus::Error, format!("failed to update digest: {m}"), action));
                        matching.clone()
                    }
                    _ => matching.clone(),
                };
                marks.add(rule_name, &annotated, "skip");
                outcomes.push((
                    RuleStatus::Skip,
                    format!(
                        "skipping image reference image {matching}, policy {} ruleName {rule_name}",
                        marks.policy.rsplit('/').next().unwrap_or_default()
                    ),
                    action,
                ));
                continue;
            }
            if !entry.verifies() {
                // Digest pinning only (no attestors, no attestations).
                match (&pinned, entry.mutate_digest && info.digest.is_none()) {
                    (Ok(pinned), true) => {
                        pin(&image, &info, pinned, mutated, patches);
                        outcomes.push((RuleStatus::Pass, "mutated image digest".into(), action));
                    }
                    (Err(VerifyFailure(m)), true) => {
                        outcomes.push((RuleStatus::Error, format!("failed to update digest: {m}"), action));
                    }
                    _ => {}
                }
                continue;
            }
            let verdict = verify_image(entry, &info, &pinned, verifier);
            match &verdict {
                Verdict::Pass(message) => {
                    let message = message.clone();
                    // The annotation names the image as the object will hold it: pinned when patched,
                    // else as written (Kyverno's chainsaw: `{"ghcr.io/kyverno/zulu:latest":"pass"}`).
                    // A tag left unpinned under verifyDigest is the validating phase's "missing digest".
                    let annotated = match (&pinned, info.digest.is_none() && entry.mutate_digest) {
                        (Ok(pinned), true) => {
                            pin(&image, &info, pinned, mutated, patches);
                            pinned.matching_string()
                        }
                        _ => matching,
                    };
                    marks.add(rule_name, &annotated, "pass");
                    outcomes.push((RuleStatus::Pass, message, action));
                }
                // Kyverno pins the digest whatever the verdict (Verify: handleMutateDigest runs for
                // every image); a denied request never stores it, but `apply` shows it.
                Verdict::Fail(message) | Verdict::Error(message) => {
                    let message = message.clone();
                    let status = if matches!(verdict, Verdict::Fail(_)) { RuleStatus::Fail } else { RuleStatus::Error };
                    let annotated = match (&pinned, info.digest.is_none() && entry.mutate_digest) {
                        (Ok(pinned), true) => {
                            pin(&image, &info, pinned, mutated, patches);
                            pinned.matching_string()
                        }
                        _ => matching,
                    };
                    marks.add(rule_name, &annotated, "fail");
                    outcomes.push((status, message, action));
                }
            }
        }
        // No matching image: Kyverno produces no rule response at all.
    }
    outcomes
}

/// Kyverno's digest patch: the image as written (normalised, tag kept) `@digest`.
fn pin(image: &ImageRef, info: &ImageInfo, pinned: &ImageInfo, mutated: &mut Value, patches: &mut Vec<Value>) {
    let value = format!("{}@{}", info.without_digest(), pinned.digest.clone().unwrap_or_default());
    patches.push(json!({"op": "replace", "path": image.pointer, "value": value}));
    set_pointer(mutated, &image.pointer, json!(value));
}

/// The verification marks Kyverno writes on the object (`pkg/engine/api/imageverifymetadata.go`):
/// `kyverno.io/verify-images`, image → pass|fail|skip, and since v1.19
/// `kyverno.io/verify-images-scoped`, the same per policy and rule.
pub(crate) struct ImageMarks {
    /// `<namespace>/<name>` of the policy (an empty namespace for a ClusterPolicy).
    pub(crate) policy: String,
    pub(crate) images: BTreeMap<String, &'static str>,
    pub(crate) scoped: BTreeMap<String, BTreeMap<String, BTreeMap<String, &'static str>>>,
}

impl ImageMarks {
    pub(crate) fn new() -> Self {
        ImageMarks { policy: String::new(), images: BTreeMap::new(), scoped: BTreeMap::new() }
    }

    fn add(&mut self, rule: &str, image: &str, mark: &'static str) {
        self.images.insert(image.to_string(), mark);
        self.scoped
            .entry(self.policy.clone())
            .or_default()
            .entry(rule.to_string())
            .or_default()
            .insert(image.to_string(), mark);
    }

    /// The annotation patches, applied to `mutated` too.
    fn patch(&self, mutated: &mut Value, patches: &mut Vec<Value>) {
        if self.images.is_empty() {
            return;
        }
        if mutated["metadata"]["annotations"].is_null() {
            patches.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
            mutated["metadata"]["annotations"] = json!({});
        }
        let plain = serde_json::to_string(&self.images).unwrap_or_default();
        let scoped = json!({"version": 1, "policies": self.scoped}).to_string();
        for (key, value) in [("kyverno.io~1verify-images", plain), ("kyverno.io~1verify-images-scoped", scoped)] {
            patches.push(json!({"op": "add", "path": format!("/metadata/annotations/{key}"), "value": value}));
            mutated["metadata"]["annotations"][key.replace("~1", "/")] = json!(value);
        }
    }
}
