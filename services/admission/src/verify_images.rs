//! One image against one `verifyImages` entry, with Kyverno's semantics and messages, as read from
//! Kyverno v1.19 (`pkg/engine/internal/imageverifier.go`, `pkg/image/verifiers/cpol/cosign`) and
//! checked against the real Kyverno behind a real API server (e2e/tests/cluster/real_admission.rs).
//!
//! - Attestor sets: every set must pass; within a set `count` entries (all by default). For
//!   signatures one verified signature whose certificate matches the identity is enough.
//! - Attestations: every verified attestation of the requested type must match the identity, and
//!   every statement of the type must satisfy the conditions.
//! - Failures are rule failures, registry failures included: the real Kyverno blocks an image whose
//!   registry cannot be reached whatever the policy's failurePolicy (its `handleRegistryErrors` does
//!   not recognise the wrapped connection errors cosign returns).

use std::collections::BTreeMap;

use crate::conditions::evaluate_conditions;
use crate::image::ImageInfo;
use crate::policy::{
    AttestorSet, CtLogSettings, ImageVerification, KeylessAttestor, RekorSettings, StaticKeyAttestor, extension_number,
    split_public_keys,
};
use crate::wildcard;

/// A signature or attestation that passed the cryptographic checks (chain, SCT, log entry,
/// signature, digest, or the static key); the identity checks are Kyverno's, done here.
#[derive(Debug, Clone, Default)]
pub struct VerifiedSignature {
    /// Certificate SANs (empty for a key-signed one).
    pub sans: Vec<String>,
    /// OIDC issuer extension (empty for a key-signed one).
    pub issuer: String,
    /// The certificate's Sigstore extensions by N in 1.3.6.1.4.1.57264.1.N, as text.
    pub extensions: BTreeMap<u32, String>,
    /// For attestations: the in-toto statement.
    pub statement: Option<serde_json::Value>,
}

impl VerifiedSignature {
    fn predicate_type(&self) -> Option<&str> {
        self.statement.as_ref()?["predicateType"].as_str()
    }
}

/// Why the verifier accepted nothing, in cosign's words (`no signatures found`, `no matching
/// signatures: ...`, `no matching attestations: ...`, the registry's error), which Kyverno's
/// messages embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure(pub String);

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
    /// `type: SigstoreBundle`: Sigstore bundles attached as OCI referrers, verified with the
    /// trusted root the verifier was given (Kyverno's TUF), not the entry's inline material.
    pub sigstore_bundle: bool,
    /// An ImageValidatingPolicy's cosign attestor: Sigstore bundles among the referrers when the
    /// image has any (then those alone), else cosign's `.sig`/`.att` tags.
    pub detect_bundles: bool,
    /// A sigstore `trusted_root.json` (an attestor's `trustedRoot`); without it, the trusted
    /// root the verifier was given stands in for Kyverno's TUF. `roots` and the log keys replace
    /// its parts.
    pub trusted_root: Option<&'a str>,
    /// PEM chain of a timestamp authority to trust as well (`ctlog.tsaCertChain`).
    pub tsa_chain: Option<&'a str>,
    /// An ImageValidatingPolicy's `certificate.cert`: a PEM certificate whose key must have made
    /// the signature (cosign's `SigVerifier` from a certificate).
    pub certificate: Option<&'a str>,
    /// Its `certificate.certChain`: PEM CAs (cosign's `ValidateAndUnpackCertWithChain`).
    pub certificate_chain: Option<&'a str>,
    /// The attestor names at least one keyless identity. Kyverno's bundle path (sigstore-go)
    /// verifies a certificate-signed bundle only against an identity ("can't verify identities
    /// without providing at least one identity"); cosign's legacy tags have no such rule.
    pub has_identities: bool,
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
    /// Attestations of `image` (pinned), of every predicate type, that verify with the trust
    /// material, with their statements.
    fn attestations(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure>;
}

/// The outcome for one image.
pub(crate) enum Verdict {
    /// Verified, with Kyverno's message.
    Pass(String),
    /// Refused, with Kyverno's message.
    Fail(String),
    /// Not evaluated (missing trust material that sigstack never fetches), decided by failurePolicy.
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

    fn check(&self, sigstore_bundle: bool) -> SignatureCheck<'_> {
        match self {
            Entry::Keyless(k) => SignatureCheck {
                roots: k.roots.as_deref(),
                public_key: None,
                rekor: k.rekor.as_ref(),
                ctlog: k.ctlog.as_ref(),
                sigstore_bundle,
                ..SignatureCheck::default()
            },
            Entry::Key(pem, k) => SignatureCheck {
                roots: None,
                public_key: Some(pem),
                rekor: k.rekor.as_ref(),
                ctlog: k.ctlog.as_ref(),
                sigstore_bundle,
                ..SignatureCheck::default()
            },
        }
    }
}

/// Kyverno's `matchCertificateData`: the subject (wildcard against any SAN, or an unanchored
/// regexp; skipped for a certificate without SANs), the issuer, the extensions.
fn identity_mismatch(keyless: &KeylessAttestor, sig: &VerifiedSignature) -> Option<String> {
    if (keyless.subject.is_some() || keyless.subject_regexp.is_some()) && !sig.sans.is_empty() {
        let by_wildcard =
            keyless.subject.as_deref().is_some_and(|s| sig.sans.iter().any(|san| wildcard::matches(s, san)));
        let by_regexp = keyless
            .subject_regexp
            .as_deref()
            .and_then(|r| regex::Regex::new(r).ok())
            .is_some_and(|re| sig.sans.iter().any(|san| re.is_match(san)));
        if !by_wildcard && !by_regexp {
            let expected = keyless.subject.clone().or(keyless.subject_regexp.clone()).unwrap_or_default();
            return Some(format!("subject mismatch: expected {expected}, received {}", sig.sans.join(", ")));
        }
    }
    if let Some(issuer) = &keyless.issuer
        && !wildcard::matches(issuer, &sig.issuer)
    {
        return Some(format!("issuer mismatch: expected {issuer}, received {}", sig.issuer));
    }
    if let Some(regexp) = &keyless.issuer_regexp
        && !regex::Regex::new(regexp).is_ok_and(|re| re.is_match(&sig.issuer))
    {
        return Some(format!("issuer mismatch: expected {regexp}, received {}", sig.issuer));
    }
    keyless.additional_extensions.iter().find_map(|(key, expected)| {
        let received = match extension_number(key) {
            Some(1) => sig.issuer.clone(),
            Some(n) => sig.extensions.get(&n).cloned().unwrap_or_default(),
            None => String::new(),
        };
        (!wildcard::matches(expected, &received))
            .then(|| format!("extension mismatch: expected {expected} for key {key}, received {received}"))
    })
}

/// sigstore-go's certificate identity, which Kyverno's `SigstoreBundle` verification uses instead
/// of its own matching: an exact SAN or an unanchored SAN regexp, an exact issuer or an unanchored
/// issuer regexp, and only when both a subject and an issuer are given (`buildPolicy`).
fn bundle_identity_matches(keyless: &KeylessAttestor, sig: &VerifiedSignature) -> bool {
    let has_subject = keyless.subject.is_some() || keyless.subject_regexp.is_some();
    let has_issuer = keyless.issuer.is_some() || keyless.issuer_regexp.is_some();
    if !(has_subject && has_issuer) {
        return true;
    }
    let regexp_matches = |pattern: &Option<String>, value: &str| {
        pattern.as_deref().is_none_or(|p| regex::Regex::new(p).is_ok_and(|re| re.is_match(value)))
    };
    let san_ok = sig
        .sans
        .iter()
        .any(|san| keyless.subject.as_deref().is_none_or(|s| s == san) && regexp_matches(&keyless.subject_regexp, san));
    san_ok
        && keyless.issuer.as_deref().is_none_or(|i| i == sig.issuer)
        && regexp_matches(&keyless.issuer_regexp, &sig.issuer)
}

/// The sigstore-go failure Kyverno reports for bundles that do not verify (`sigstore.go`).
const BUNDLE_FAILED: &str = "sigstore bundle verification failed: no matching signatures found";

/// Kyverno's `verifyAttestorSet`: `count` entries (all by default) must verify; errors joined as
/// multierr does.
fn verify_attestor_set(
    set: &AttestorSet,
    path: &str,
    image: &Result<ImageInfo, VerifyFailure>,
    sigstore_bundle: bool,
    verifier: &dyn ImageVerifier,
) -> Result<(), String> {
    let entries = Entry::expand(set);
    let required = set.count.filter(|c| *c > 0).unwrap_or(entries.len());
    let mut verified = 0;
    let mut errors = Vec::new();
    for (e, entry) in entries.iter().enumerate() {
        let at = format!("{path}.entries[{e}].{}", entry.name());
        let outcome = image.clone().and_then(|pinned| verifier.signatures(&pinned, &entry.check(sigstore_bundle)));
        let result = match (outcome, entry) {
            (Err(VerifyFailure(m)), _) => Err(m),
            (Ok(signatures), Entry::Keyless(keyless)) if sigstore_bundle => {
                if signatures.iter().any(|s| bundle_identity_matches(keyless, s)) {
                    Ok(())
                } else {
                    Err(BUNDLE_FAILED.to_string())
                }
            }
            // matchSignatures: one signature whose certificate matches is enough.
            (Ok(signatures), Entry::Keyless(keyless)) => {
                let mismatches: Vec<String> = signatures.iter().filter_map(|s| identity_mismatch(keyless, s)).collect();
                if mismatches.len() < signatures.len() { Ok(()) } else { Err(mismatches.join("; ")) }
            }
            (Ok(_), Entry::Key(..)) => Ok(()),
        };
        match result {
            Ok(()) => {
                verified += 1;
                if verified >= required {
                    return Ok(());
                }
            }
            Err(m) => errors.push(format!("{at}: {m}")),
        }
    }
    Err(errors.join("; "))
}

/// Kyverno's attestation checks for one attestor entry: every verified attestation of the type
/// must match the identity; there must be one; every statement must satisfy the conditions.
#[expect(clippy::too_many_arguments, reason = "one attestation's inputs as Kyverno's verifier takes them")]
fn verify_attestation_entry(
    attestation: &crate::policy::Attestation,
    predicate: &str,
    entry: &Entry<'_>,
    sigstore_bundle: bool,
    image: &Result<ImageInfo, VerifyFailure>,
    image_name: &str,
    entry_path: &str,
    verifier: &dyn ImageVerifier,
) -> Result<(), String> {
    let all = image
        .clone()
        .and_then(|pinned| verifier.attestations(&pinned, &entry.check(sigstore_bundle)))
        .map_err(|VerifyFailure(m)| m)?;
    let mut of_type: Vec<&VerifiedSignature> = all.iter().filter(|a| a.predicate_type() == Some(predicate)).collect();
    if let Entry::Keyless(keyless) = entry {
        if sigstore_bundle {
            of_type.retain(|a| bundle_identity_matches(keyless, a));
            if of_type.is_empty() {
                return Err(BUNDLE_FAILED.to_string());
            }
        } else if let Some(mismatch) = of_type.iter().find_map(|a| identity_mismatch(keyless, a)) {
            // FetchAttestations: the first attestation of the type that does not match fails
            // them all, unprefixed.
            return Err(mismatch);
        }
    }
    if of_type.is_empty() {
        // Kyverno's spelling.
        return Err(format!("{entry_path}: attestions not found for predicate type {predicate}"));
    }
    for statement in of_type.iter().filter_map(|a| a.statement.as_ref()) {
        match evaluate_conditions(&attestation.conditions, &statement["predicate"]) {
            Ok(None) => {}
            Ok(Some(message)) => {
                return Err(format!(
                    "{entry_path}: attestation checks failed for {image_name} and predicate {predicate}: {message}"
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{entry_path}: failed to check attestations: failed to substitute variables in attestation conditions: {}",
                    e.0
                ));
            }
        }
    }
    Ok(())
}

/// Kyverno's `verifyImage` for one image of one entry: attestors, then attestations. `written` is
/// the image as the resource names it (normalised), `pinned` the same resolved to its digest (or
/// why that failed: each attestor then reports it, as cosign's own resolution would).
pub(crate) fn verify_image(
    entry: &ImageVerification,
    written: &ImageInfo,
    pinned: &Result<ImageInfo, VerifyFailure>,
    verifier: &dyn ImageVerifier,
) -> Verdict {
    let image = written.matching_string();
    let bundle = entry.is_sigstore_bundle();
    for (s, set) in entry.attestors.iter().enumerate() {
        if let Err(errors) = verify_attestor_set(set, &format!(".attestors[{s}]"), pinned, bundle, verifier) {
            return Verdict::Fail(format!("failed to verify image {image}: {errors}"));
        }
    }
    if entry.attestations.is_empty() {
        return Verdict::Pass(format!("verified image signatures for {image}"));
    }
    for (a, attestation) in entry.attestations.iter().enumerate() {
        let Some(predicate) = attestation.predicate() else {
            return Verdict::Fail(format!(".attestations[{a}]: missing type"));
        };
        if attestation.attestors.is_empty() {
            return Verdict::Error(format!(
                ".attestations[{a}]: attestations without attestors use the public-good Sigstore roots, which sigstack never fetches; give keyless roots"
            ));
        }
        for (s, set) in attestation.attestors.iter().enumerate() {
            let attestor_path = format!(".attestations[{a}].attestors[{s}]");
            let entries = Entry::expand(set);
            let required = set.count.filter(|c| *c > 0).unwrap_or(entries.len());
            let mut verified = 0;
            let mut errors = Vec::new();
            for entry_attestor in &entries {
                // Kyverno numbers the entry with the attestation's index (`entries[i]`), not the
                // entry's: its messages say so, and so do these.
                let entry_path = format!("{attestor_path}.entries[{a}].{}", entry_attestor.name());
                match verify_attestation_entry(
                    attestation,
                    predicate,
                    entry_attestor,
                    bundle,
                    pinned,
                    &image,
                    &entry_path,
                    verifier,
                ) {
                    Ok(()) => {
                        verified += 1;
                        if verified >= required {
                            break;
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
            if verified < required {
                let error =
                    if errors.is_empty() { "attestations verification failed".to_string() } else { errors.join("; ") };
                return Verdict::Fail(format!(
                    "image attestations verification failed, verifiedCount: {verified}, requiredCount: {required}, error: {error}"
                ));
            }
        }
    }
    Verdict::Pass(format!("verified image attestations for {image}"))
}
