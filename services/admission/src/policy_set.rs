//! Reading policy files that hold either type, or both: Kyverno's `ClusterPolicy`/`Policy`
//! (kyverno.io/v1) and its `ImageValidatingPolicy`/`NamespacedImageValidatingPolicy`
//! (policies.kyverno.io), told apart by `apiVersion`, each checked as Kyverno checks it.

use std::sync::Arc;

use serde_json::Value;

use crate::engine::{Decision, Phase, evaluate_phase};
use crate::ivpol::{ImageValidatingPolicy, RequestInfo, evaluate_image_policies};
use crate::policy::{Policy, PolicyError, documents, policy_from_value};
use crate::verify_images::ImageVerifier;

/// The policies of one or more files, by type.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// `ClusterPolicy` and `Policy` (kyverno.io/v1).
    pub cluster_policies: Vec<Policy>,
    /// `ImageValidatingPolicy` and `NamespacedImageValidatingPolicy` (policies.kyverno.io).
    pub image_validating: Vec<ImageValidatingPolicy>,
}

impl PolicySet {
    /// Whether it holds no policy.
    pub fn is_empty(&self) -> bool {
        self.cluster_policies.is_empty() && self.image_validating.is_empty()
    }

    /// Adds another set's policies.
    pub fn extend(&mut self, other: PolicySet) {
        self.cluster_policies.extend(other.cluster_policies);
        self.image_validating.extend(other.image_validating);
    }
}

/// Reads every policy of `yaml` (multi-document), whatever its type.
pub fn load_policy_set(file: &str, yaml: &str) -> Result<PolicySet, PolicyError> {
    let mut set = PolicySet::default();
    for value in documents(file, yaml)? {
        if value["apiVersion"].as_str().is_some_and(|v| v.starts_with("policies.kyverno.io/")) {
            let policy: ImageValidatingPolicy = serde_json::from_value(value).map_err(|e| PolicyError::Parse {
                file: file.into(),
                message: format!("unsupported or invalid ImageValidatingPolicy: {e}"),
            })?;
            policy.validate().map_err(|message| PolicyError::Invalid {
                file: file.into(),
                policy: policy.metadata.name.clone(),
                message,
            })?;
            set.image_validating.push(policy);
        } else {
            set.cluster_policies.push(policy_from_value(file, value)?);
        }
    }
    if set.is_empty() {
        return Err(PolicyError::Parse { file: file.into(), message: "no policy in the file".into() });
    }
    Ok(set)
}

/// Evaluates both types for one webhook `phase`, as one admission request meets Kyverno's
/// webhooks for each: the ClusterPolicies first, then the ImageValidatingPolicies on the object as
/// the first left it. The request is blocked if either blocks it (the first denial is the one a
/// client sees).
pub fn evaluate_policy_set(
    set: &PolicySet,
    object: &Value,
    request: &RequestInfo,
    verifier: Arc<dyn ImageVerifier + Send + Sync>,
    phase: Phase,
) -> Decision {
    let namespace = Some(request.namespace.as_str()).filter(|n| !n.is_empty());
    let mut decision = if set.cluster_policies.is_empty() {
        Decision {
            results: Vec::new(),
            patches: Vec::new(),
            mutated: object.clone(),
            blocked: None,
            warnings: Vec::new(),
        }
    } else {
        evaluate_phase(&set.cluster_policies, object, namespace, &request.operation, verifier.as_ref(), phase)
    };
    if set.image_validating.is_empty() || (decision.blocked.is_some() && phase != Phase::Validate) {
        return decision;
    }
    let images = evaluate_image_policies(&set.image_validating, &decision.mutated, request, verifier, phase);
    decision.results.extend(images.results);
    decision.patches.extend(images.patches);
    decision.mutated = images.mutated;
    decision.blocked = decision.blocked.or(images.blocked);
    decision.warnings.extend(images.warnings);
    decision
}
