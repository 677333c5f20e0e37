//! Verifying cosign-format signatures and attestations (the legacy `.sig` / `.att` tags) with
//! the verification core: the same chain, SCT, log promise, identity and artifact-binding checks
//! as bundles, fed from cosign's annotations. Every refusal says which check failed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sigstack_fulcio::SubjectKey;
use sigstack_verify::tlog::{Promise, Signer, verify_promise};
use sigstack_verify::{
    Artifact, CertificateIdentity, Checks, IdentityPolicy, SignedContent, VerificationError, Verified,
    verify_certificate,
};

use crate::Trust;
use crate::cosign::{BUNDLE, CERTIFICATE, CHAIN, DSSE_ENVELOPE, SIGNATURE, SIMPLE_SIGNING, tag_for};
use crate::error::VerifyError;
use crate::oci::{Registry, sha256};

/// The log promise of cosign's `dev.sigstore.cosign/bundle` annotation.
fn check_promise(
    trust: &Trust,
    annotations: &Value,
    content: &SignedContent,
    signer: &Signer<'_>,
) -> Result<sigstack_verify::tlog::LoggedEntry, VerificationError> {
    let refuse = |m: String| VerificationError::LogEntry(m);
    let bundle = annotations[BUNDLE].as_str().ok_or_else(|| refuse(format!("missing annotation {BUNDLE}")))?;
    let bundle: Value = serde_json::from_str(bundle).map_err(|e| refuse(format!("bundle annotation: {e}")))?;
    let payload = &bundle["Payload"];
    let set = B64
        .decode(bundle["SignedEntryTimestamp"].as_str().ok_or_else(|| refuse("the bundle has no SET".into()))?)
        .map_err(|_| refuse("the SET is not base64".into()))?;
    let promise = Promise {
        log_id_hex: payload["logID"].as_str().ok_or_else(|| refuse("the bundle has no logID".into()))?,
        body_b64: payload["body"].as_str().ok_or_else(|| refuse("the bundle has no body".into()))?,
        integrated_time: payload["integratedTime"].as_i64().ok_or_else(|| refuse("no integratedTime".into()))?,
        log_index: payload["logIndex"].as_i64().ok_or_else(|| refuse("the bundle has no logIndex".into()))?,
        set: &set,
    };
    verify_promise(trust, &promise, content, signer)
}

/// Verifies one layer's signer and signature over `content` as `checks` asks: the static key, or
/// the certificate (the chain annotation's certificates are only candidate intermediates) valid at
/// the log's time, its SCT and identity; and the log promise naming this signature and signer.
fn check_layer(
    trust: &Trust,
    annotations: &Value,
    content: &SignedContent,
    digest: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Verified, VerificationError> {
    let text = |key: &str| {
        annotations[key].as_str().ok_or_else(|| VerificationError::Bundle(format!("missing annotation {key}")))
    };
    let (key, leaf_der, offered) = match &checks.public_key {
        Some(spki) => {
            let key =
                SubjectKey::from_spki_der(spki).map_err(|e| VerificationError::Bundle(format!("public key: {e}")))?;
            // A keyless signature checked with a key (cosign's keyBytes): the certificate it
            // carries must hold that key, and the log entry names the certificate.
            if let Some(leaf) = annotations[CERTIFICATE].as_str() {
                let leaf = pem::parse(leaf)
                    .map_err(|e| VerificationError::Bundle(format!("certificate: {e}")))?
                    .into_contents();
                if CertificateIdentity::key_of(&leaf)?.spki_der() != key.spki_der() {
                    return Err(VerificationError::Signature(
                        "both public key and certificate were provided but did not match".into(),
                    ));
                }
                (key, Some(leaf), Vec::new())
            } else {
                (key, None, Vec::new())
            }
        }
        None => {
            let leaf =
                pem::parse(text(CERTIFICATE)?).map_err(|e| VerificationError::Bundle(format!("certificate: {e}")))?;
            let offered = match annotations[CHAIN].as_str() {
                Some(chain) => pem::parse_many(chain)
                    .map_err(|e| VerificationError::Bundle(format!("chain: {e}")))?
                    .into_iter()
                    .map(|p| p.into_contents())
                    .collect(),
                None => Vec::new(),
            };
            let leaf = leaf.into_contents();
            (CertificateIdentity::key_of(&leaf)?, Some(leaf), offered)
        }
    };
    content.verify_signature(&key).map_err(|_| {
        let whose = if checks.public_key.is_some() { "the key" } else { "the certificate's key" };
        VerificationError::Signature(format!("the signature does not verify over the payload with {whose}"))
    })?;
    let signer = Signer { key: &key, certificate: leaf_der.as_deref() };
    let logged = if checks.tlog { Some(check_promise(trust, annotations, content, &signer)?) } else { None };
    let mut verified = Verified {
        digest: digest.to_string(),
        log_index: logged.map(|l| l.log_index),
        integrated_time: logged.and_then(|l| l.integrated_time).map(|t| t as i64),
        statement: content.statement.clone(),
        ..Verified::default()
    };
    // Valid when the log saw the signature; without the log, now (cosign's rule for
    // --insecure-ignore-tlog).
    let at = logged.and_then(|l| l.integrated_time).unwrap_or_else(sigstack_verify::now);
    if checks.public_key.is_some() {
        // With a key, a carried certificate is only checked for expiry (cosign's CheckExpiry).
        if let Some(leaf_der) = &leaf_der {
            let (not_before, not_after) = CertificateIdentity::of(leaf_der)?.validity;
            if at < not_before || at > not_after {
                return Err(VerificationError::Validity(format!(
                    "the signature's certificate was not valid at {at} (unix seconds)"
                )));
            }
        }
    } else if let Some(leaf_der) = &leaf_der {
        let checked = verify_certificate(trust, leaf_der, &offered, at)?;
        if checks.sct {
            sigstack_verify::sct::verify_embedded_scts(trust, leaf_der, &checked.issuer_spki)?;
        }
        policy.check(&checked.identity)?;
        verified.sans = checked.identity.san;
        verified.issuer = checked.identity.issuer.unwrap_or_default();
        verified.extensions = checked.identity.extensions;
    }
    Ok(verified)
}

/// The digest `image` names, and the layers of its cosign `.sig`/`.att` manifest (none when the
/// tag does not exist).
async fn layers(
    registry: &Registry,
    image: &str,
    suffix: &str,
) -> Result<(String, oci_client::Reference, Vec<Value>), VerifyError> {
    let failed = |e: anyhow::Error| VerifyError::registry(e, &registry.host);
    let reference = registry.reference(image).map_err(failed)?;
    let digest = registry.resolve(&reference).await.map_err(failed)?;
    let tagged = registry.tagged(reference.repository(), &tag_for(&digest, suffix)).map_err(failed)?;
    let Some((manifest, _)) = registry.manifest(&tagged).await.map_err(failed)? else {
        return Ok((digest, tagged, Vec::new()));
    };
    let manifest: Value = serde_json::from_slice(&manifest).map_err(|e| {
        VerifyError::registry(anyhow::anyhow!("the {suffix} manifest is not JSON: {e}"), &registry.host)
    })?;
    Ok((digest, tagged, manifest["layers"].as_array().cloned().unwrap_or_default()))
}

/// Verifies the cosign signatures of `image` (every layer; those that pass are returned): cosign's
/// `VerifyImageSignatures`.
pub async fn verify_signature(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Vec<Verified>, VerifyError> {
    let (digest, tagged, layers) = layers(registry, image, "sig").await?;
    if layers.is_empty() {
        return Err(VerifyError::NoSignatures);
    }
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for layer in &layers {
        let result: Result<Verified, String> = async {
            if layer["mediaType"] != SIMPLE_SIGNING {
                return Err(format!("layer media type {} is not a simple-signing payload", layer["mediaType"]));
            }
            let payload = registry
                .blob(&tagged, layer["digest"].as_str().ok_or("layer digest")?)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let annotations = &layer["annotations"];
            let signature = B64
                .decode(annotations[SIGNATURE].as_str().ok_or("no signature")?)
                .map_err(|_| "signature is not base64")?;
            // A simple-signing payload binds to the image by its critical.image digest.
            let claimed: Value = serde_json::from_slice(&payload).map_err(|e| format!("payload: {e}"))?;
            let signed_digest = claimed["critical"]["image"]["docker-manifest-digest"].as_str().unwrap_or("");
            if signed_digest != digest {
                return Err(format!("artifact binding: the signature is for {signed_digest}, not {digest}"));
            }
            let content = SignedContent {
                signature,
                signed_digest: sha256(&payload),
                message: Some(payload.to_vec()),
                envelope: None,
                payload: None,
                statement: None,
            };
            check_layer(trust, annotations, &content, &digest, policy, checks).map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(v) => verified.push(v),
            Err(reason) => reasons.push(reason),
        }
    }
    if verified.is_empty() {
        return Err(VerifyError::NoMatchingSignatures(reasons));
    }
    Ok(verified)
}

/// Verifies every cosign attestation of `image`, whatever its predicate type, and returns those
/// that pass with their statements: cosign's `VerifyImageAttestations`, which Kyverno filters by
/// type afterwards.
pub async fn verify_attestations(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Vec<Verified>, VerifyError> {
    let (digest, tagged, layers) = layers(registry, image, "att").await?;
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for layer in &layers {
        let result: Result<Verified, String> = async {
            if layer["mediaType"] != DSSE_ENVELOPE {
                return Err(format!("layer media type {} is not a DSSE envelope", layer["mediaType"]));
            }
            let envelope = registry
                .blob(&tagged, layer["digest"].as_str().ok_or("layer digest")?)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let envelope: Value = serde_json::from_slice(&envelope).map_err(|e| format!("envelope: {e}"))?;
            let image =
                Artifact::Sha256(sigstack_verify::decode_hex(digest.trim_start_matches("sha256:")).unwrap_or_default());
            let content = SignedContent::of_envelope(&envelope, &image).map_err(|e| e.to_string())?;
            check_layer(trust, &layer["annotations"], &content, &digest, policy, checks).map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(v) => verified.push(v),
            Err(reason) => reasons.push(reason),
        }
    }
    if verified.is_empty() {
        return Err(VerifyError::NoMatchingAttestations(reasons));
    }
    Ok(verified)
}
