//! Sigstore bundles (v0.3) attached to an image as OCI referrers: what cosign v3 writes by default
//! and what Kyverno's `type: SigstoreBundle` reads (pkg/image/verifiers/cpol/cosign/sigstore.go).
//! Registries without the referrers API (Debian's distribution 2.8) get the OCI tag schema: an
//! image index under the tag `sha256-<hex>` listing the referrers, as cosign v3 and
//! go-containerregistry fall back to.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_fulcio::{SubjectKey, verify_embedded_sct, verify_leaf};

use crate::Trust;
use crate::cosign::IN_TOTO;
use crate::cosign::repository;
use crate::keyless::LoggedEntry;
use crate::oci::{OCI_MANIFEST, Registry, hex, sha256};
use crate::verify::{Checks, IdentityPolicy, Verified, VerifyError};

/// The bundle media type, also the referrer's artifact type.
pub(crate) const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// cosign v3's predicate type for an image signature (a DSSE statement with an empty predicate).
pub(crate) const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The tag of an image's referrers index in the OCI tag schema.
fn referrers_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

/// The bundle of a DSSE envelope signed with `leaf_der` and logged as `entry` (Rekor v1: SET and
/// inclusion proof), in protobuf JSON as cosign v3 writes it (int64 as strings).
pub(crate) fn dsse_bundle(leaf_der: &[u8], envelope: &Value, entry: &LoggedEntry) -> anyhow::Result<Value> {
    let log_id = (0..entry.log_id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(entry.log_id.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let proof = &entry.inclusion_proof;
    let hashes: Vec<String> = proof["hashes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|h| Ok::<_, anyhow::Error>(B64.encode(decode_hex(h)?)))
        .collect::<anyhow::Result<_>>()?;
    let kind = serde_json::from_slice::<Value>(&B64.decode(&entry.body)?)?;
    Ok(json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "certificate": {"rawBytes": B64.encode(leaf_der)},
            "tlogEntries": [{
                "logIndex": entry.log_index.to_string(),
                "logId": {"keyId": B64.encode(&log_id)},
                "kindVersion": {"kind": kind["kind"], "version": kind["apiVersion"]},
                "integratedTime": entry.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": entry.signed_entry_timestamp},
                "inclusionProof": {
                    "logIndex": proof["logIndex"].as_u64().unwrap_or(entry.log_index).to_string(),
                    "rootHash": B64.encode(decode_hex(proof["rootHash"].as_str().unwrap_or_default())?),
                    "treeSize": proof["treeSize"].as_u64().unwrap_or_default().to_string(),
                    "hashes": hashes,
                    "checkpoint": {"envelope": proof["checkpoint"]}
                },
                "canonicalizedBody": entry.body
            }]
        },
        "dsseEnvelope": envelope
    }))
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()), "not hex: {text}");
    Ok((0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or(0)).collect())
}

/// Attaches `bundle` to the image `digest` of `repository` as an OCI referrer and lists it in the
/// tag-schema index; returns the referrer manifest's digest.
pub(crate) async fn attach(
    registry: &Registry,
    repository: &str,
    digest: &str,
    bundle: &Value,
    predicate_type: &str,
) -> anyhow::Result<String> {
    let image = registry.tagged_digest(repository, digest)?;
    let (subject_manifest, _) =
        registry.manifest(&image).await?.ok_or_else(|| anyhow::anyhow!("{digest} is not in {repository}"))?;
    let subject_type =
        serde_json::from_slice::<Value>(&subject_manifest)?["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    let bundle_bytes = serde_json::to_vec(bundle)?;
    let layer_digest = registry.push_blob(&image, &bundle_bytes).await?;
    let config_digest = registry.push_blob(&image, b"{}").await?;
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let annotations = json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": predicate_type,
        "org.opencontainers.image.created": created
    });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": EMPTY_CONFIG, "size": 2, "digest": config_digest, "artifactType": BUNDLE_V03},
        "layers": [{"mediaType": BUNDLE_V03, "size": bundle_bytes.len(), "digest": layer_digest}],
        "annotations": annotations,
        "subject": {"mediaType": subject_type, "size": subject_manifest.len(), "digest": digest}
    }))?;
    let manifest_digest = crate::oci::sha256_digest(&manifest);
    registry.push_manifest(&registry.tagged_digest(repository, &manifest_digest)?, &manifest, OCI_MANIFEST).await?;
    // The tag schema: the index under `sha256-<hex>`, with this referrer added.
    let index_ref = registry.tagged(repository, &referrers_tag(digest))?;
    let mut manifests: Vec<Value> = match registry.manifest(&index_ref).await? {
        Some((bytes, _)) => {
            serde_json::from_slice::<Value>(&bytes)?["manifests"].as_array().cloned().unwrap_or_default()
        }
        None => Vec::new(),
    };
    manifests.push(json!({
        "mediaType": OCI_MANIFEST, "size": manifest.len(), "digest": manifest_digest,
        "artifactType": BUNDLE_V03, "annotations": annotations
    }));
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": manifests}))?;
    registry.push_manifest(&index_ref, &index, IMAGE_INDEX).await?;
    Ok(manifest_digest)
}

/// The Sigstore bundles attached to the image `digest` of `repository` (the referrers listed in
/// the tag-schema index whose artifact type is a bundle).
pub(crate) async fn attached(registry: &Registry, repository: &str, digest: &str) -> Result<Vec<Value>, VerifyError> {
    let failed = |e: anyhow::Error| VerifyError::registry(e, &registry.host);
    let index_ref = registry.tagged(repository, &referrers_tag(digest)).map_err(failed)?;
    let Some((index, _)) = registry.manifest(&index_ref).await.map_err(failed)? else { return Ok(Vec::new()) };
    let index: Value = serde_json::from_slice(&index).map_err(|e| failed(e.into()))?;
    let mut bundles = Vec::new();
    for descriptor in index["manifests"].as_array().into_iter().flatten() {
        if !descriptor["artifactType"].as_str().is_some_and(|t| t.starts_with("application/vnd.dev.sigstore.bundle")) {
            continue;
        }
        let Some(manifest_digest) = descriptor["digest"].as_str() else { continue };
        let reference = registry.tagged_digest(repository, manifest_digest).map_err(failed)?;
        let Some((manifest, _)) = registry.manifest(&reference).await.map_err(failed)? else { continue };
        let manifest: Value = serde_json::from_slice(&manifest).map_err(|e| failed(e.into()))?;
        let Some(layer) = manifest["layers"][0]["digest"].as_str() else { continue };
        let bytes = registry.blob(&reference, layer).await.map_err(failed)?;
        if let Ok(bundle) = serde_json::from_slice::<Value>(&bytes) {
            bundles.push(bundle);
        }
    }
    Ok(bundles)
}

fn number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

/// Verifies one bundle of a DSSE envelope over an in-toto statement whose subject is `digest`:
/// the certificate's chain (and SCT), the log entry (its key by log ID, its SET, and that it holds
/// this signature), the signature over the envelope, the identity, the subject.
pub(crate) fn verify_dsse_bundle(
    trust: &Trust,
    bundle: &Value,
    digest: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Verified, String> {
    let material = &bundle["verificationMaterial"];
    let leaf_b64 = material["certificate"]["rawBytes"]
        .as_str()
        .or(material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .ok_or("the bundle has no certificate")?;
    let leaf_der = B64.decode(leaf_b64).map_err(|_| "the certificate is not base64")?;
    let envelope = &bundle["dsseEnvelope"];
    if envelope["payloadType"] != IN_TOTO {
        return Err("the bundle holds no in-toto DSSE envelope".into());
    }
    let statement_bytes =
        B64.decode(envelope["payload"].as_str().ok_or("no payload")?).map_err(|_| "payload is not base64")?;
    let statement: Value = serde_json::from_slice(&statement_bytes).map_err(|e| format!("statement: {e}"))?;
    let signature_b64 = envelope["signatures"][0]["sig"].as_str().ok_or("the envelope has no signature")?;
    let signature = B64.decode(signature_b64).map_err(|_| "the signature is not base64")?;

    // The log entry: a trusted log's key (by log ID), its SET over the entry, and the entry
    // naming this envelope's payload, signature and certificate.
    let mut integrated_time = None;
    let mut log_index = None;
    if checks.tlog {
        let entry = &material["tlogEntries"][0];
        let key_id = B64
            .decode(entry["logId"]["keyId"].as_str().ok_or("the bundle has no log entry")?)
            .map_err(|_| "logId is not base64")?;
        if key_id != sha256(&trust.rekor_key) {
            return Err("error verifying bundle: verifying bundle: rekor log public key not found for payload".into());
        }
        let body_b64 = entry["canonicalizedBody"].as_str().ok_or("the log entry has no body")?;
        let time = number(&entry["integratedTime"]).ok_or("the log entry has no integrated time")?;
        let index = number(&entry["logIndex"]).ok_or("the log entry has no index")?;
        let set = B64
            .decode(entry["inclusionPromise"]["signedEntryTimestamp"].as_str().ok_or("the log entry has no SET")?)
            .map_err(|_| "SET is not base64")?;
        let payload =
            format!(r#"{{"body":"{body_b64}","integratedTime":{time},"logID":"{}","logIndex":{index}}}"#, hex(&key_id));
        let log_key = SubjectKey::from_spki_der(&trust.rekor_key).map_err(|e| e.to_string())?;
        if !log_key.verify_proof(payload.as_bytes(), &set) {
            return Err("the signed entry timestamp does not verify with the log key".into());
        }
        let body: Value = serde_json::from_slice(&B64.decode(body_b64).map_err(|_| "body is not base64")?)
            .map_err(|e| format!("log entry body: {e}"))?;
        let spec = &body["spec"];
        if spec["payloadHash"]["value"].as_str() != Some(hex(&sha256(&statement_bytes)).as_str()) {
            return Err("the log entry is for another statement".into());
        }
        let logged = spec["signatures"].as_array().into_iter().flatten().find(|s| s["signature"] == signature_b64);
        let logged_cert = logged
            .and_then(|s| s["verifier"].as_str())
            .and_then(|v| B64.decode(v).ok())
            .and_then(|pem| pem::parse(pem).ok())
            .map(|pem| pem.into_contents());
        if logged_cert.as_deref() != Some(leaf_der.as_slice()) {
            return Err("the log entry holds another signature or certificate".into());
        }
        integrated_time = Some(time);
        log_index = Some(index as u64);
    }
    let at = integrated_time.map_or_else(sigstack_fulcio::now, |t| t.max(0) as u64);
    let leaf = verify_leaf(&leaf_der, &trust.ca_chain, &trust.anchors, at).map_err(|e| e.to_string())?;
    if checks.sct {
        let issuer = trust.ca_chain.first().ok_or("no CA certificate to check the SCT against")?;
        verify_embedded_sct(&leaf_der, issuer, &trust.ctlog_key).map_err(|e| e.to_string())?;
    }
    policy.check(&leaf)?;
    if !leaf.key.verify_proof(&sigstack_rekor::pae(IN_TOTO, &statement_bytes), &signature) {
        return Err("the envelope's signature does not verify with the certificate's key".into());
    }
    let hex_digest = digest.trim_start_matches("sha256:");
    if !statement["subject"].as_array().into_iter().flatten().any(|s| s["digest"]["sha256"] == hex_digest) {
        return Err(format!("the statement's subject is not {digest}"));
    }
    Ok(Verified {
        digest: digest.to_string(),
        sans: leaf.san.clone(),
        issuer: leaf.issuer.clone().unwrap_or_default(),
        extensions: leaf.extensions.clone(),
        log_index,
        integrated_time,
        statement: Some(statement),
    })
}

/// Verifies every Sigstore bundle attached to `image` and returns those that pass (signatures
/// and attestations alike: cosign v3 signs an image with a statement of type
/// `https://sigstore.dev/cosign/sign/v1`).
pub async fn verify_bundles(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Vec<Verified>, VerifyError> {
    let failed = |e: anyhow::Error| VerifyError::registry(e, &registry.host);
    let reference = registry.reference(image).map_err(failed)?;
    let digest = registry.resolve(&reference).await.map_err(failed)?;
    let bundles = attached(registry, &repository(&reference), &digest).await?;
    if bundles.is_empty() {
        return Err(VerifyError::NoSignatures);
    }
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for bundle in &bundles {
        match verify_dsse_bundle(trust, bundle, &digest, policy, checks) {
            Ok(v) => verified.push(v),
            Err(reason) => reasons.push(reason),
        }
    }
    if verified.is_empty() {
        return Err(VerifyError::NoMatchingSignatures(reasons));
    }
    Ok(verified)
}
