//! The one entry point for an image's signatures and attestations, whatever their format: cosign's
//! legacy `.sig` / `.att` tags and Sigstore bundles attached as OCI referrers (cosign v3's
//! default). Each format's module finds and reads its own; this one dispatches and merges, so the
//! binary and the test kit never choose a format themselves.

use sigstack_verify::{Checks, IdentityPolicy, Verified};

use crate::Trust;
use crate::bundle::{COSIGN_SIGN_PREDICATE, verify_bundles};
use crate::error::VerifyError;
use crate::oci::Registry;
use crate::verify::{verify_attestations, verify_signature};

/// Verifies `image`'s signatures: cosign's legacy signatures when it has any (cosign's order),
/// else the signature bundles cosign v3 attaches (statements of cosign's sign predicate).
pub async fn verify_image_signatures(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Vec<Verified>, VerifyError> {
    match verify_signature(registry, trust, image, policy, checks).await {
        Err(VerifyError::NoSignatures) => {
            let signed: Vec<Verified> = verify_bundles(registry, trust, image, policy, checks)
                .await?
                .into_iter()
                .filter(|v| v.predicate_type() == Some(COSIGN_SIGN_PREDICATE))
                .collect();
            if signed.is_empty() {
                return Err(VerifyError::NoSignatures);
            }
            Ok(signed)
        }
        other => other,
    }
}

/// Verifies `image`'s attestations in both formats and keeps those of `predicate_type` (cosign
/// `verify-attestation --type`); when none is of that type, cosign's message naming those found.
pub async fn verify_image_attestations(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    predicate_type: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Vec<Verified>, VerifyError> {
    let legacy = verify_attestations(registry, trust, image, policy, checks).await;
    let bundles = verify_bundles(registry, trust, image, policy, checks).await;
    let all: Vec<&Verified> = legacy.as_ref().into_iter().chain(bundles.as_ref()).flatten().collect();
    let of_type: Vec<Verified> =
        all.iter().filter(|v| v.predicate_type() == Some(predicate_type)).map(|v| (*v).clone()).collect();
    if !of_type.is_empty() {
        return Ok(of_type);
    }
    if all.is_empty() {
        // Nothing verified in either format: the legacy format's reasons, as cosign gives them.
        return Err(legacy.err().unwrap_or(VerifyError::NoMatchingAttestations(Vec::new())));
    }
    let found: Vec<&str> = all.iter().filter_map(|v| v.predicate_type()).collect();
    Err(VerifyError::NoMatchingAttestations(vec![format!(
        "none of the attestations matched the predicate type: {predicate_type}, found: {}",
        found.join(",")
    )]))
}
