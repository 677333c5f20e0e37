//! Kyverno `ClusterPolicy`/`Policy` (kyverno.io/v1) evaluation with Kyverno's semantics, as read
//! from Kyverno's source (see shared/reference/kyverno-verify-images.md): CRD defaults, policy
//! validation, `match`/`exclude`, autogen for Pod controllers, `validate.pattern`, and
//! `verifyImages` (image extraction and normalisation, `imageReferences` globs, attestor sets with
//! `count`, keyless identity and extension checks, static keys, attestations by type with `conditions`, digest mutation, the
//! `kyverno.io/verify-images` annotation, block decisions and Kyverno's messages).
//!
//! No HTTP in the engine (the `webhook` module is the thin AdmissionReview layer): signatures are checked through the [`ImageVerifier`] trait, which the binary
//! implements with the same code as `sigstack verify`.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod conditions;
mod engine;
mod image;
mod ivpol;
mod pattern;
mod policy;
mod policy_set;
mod record;
mod render;
mod verify_images;
pub mod webhook;
mod wildcard;

pub use conditions::{AnyAllConditions, Condition, ConditionError, evaluate_conditions};
pub use engine::{Decision, Phase, RuleResult, RuleStatus, evaluate, evaluate_phase};
pub use image::ImageInfo;
pub use ivpol::{ImageValidatingPolicy, RequestInfo, evaluate_image_policies};
pub use policy::{
    AttestorSet, CtLogSettings, FailureAction, FailurePolicy, KeylessAttestor, Policy, PolicyError, RekorSettings,
    StaticKeyAttestor, load_policies,
};
pub use policy_set::{PolicySet, evaluate_policy_set, load_policy_set};
pub use record::{AdmissionRecord, DecisionLog, RecordedRule, resource_images};
pub use render::{SOURCE_ORG, SOURCE_REGISTRY, StackTrust, render, without_trust};
pub use verify_images::{ImageVerifier, SignatureCheck, VerifiedSignature, VerifyFailure};
pub use wildcard::matches as wildcard_match;
