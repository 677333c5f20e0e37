//! Sigstore bundles (v0.3) attached to an image as OCI referrers: what cosign v3 writes by default
//! and what Kyverno's `type: SigstoreBundle` reads (pkg/image/verifiers/cpol/cosign/sigstore.go).
//! Registries without the referrers API (Debian's distribution 2.8) get the OCI tag schema: an
//! image index under the tag `sha256-<hex>` listing the referrers, as cosign v3 and
//! go-containerregistry fall back to.

use serde_json::{Value, json};

use crate::Trust;
use crate::error::VerifyError;
use crate::keyless::KeylessSigner;
use crate::oci::{OCI_MANIFEST, Registry};
use crate::sigstore_bundle::{BUNDLE_V03, SigningServices, bundle_with};
use sigstack_verify::{Artifact, Checks, IN_TOTO, IdentityPolicy, Verified, verify_bundle};

const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// cosign v3's predicate type for an image signature (a DSSE statement with an empty predicate).
pub(crate) const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The tag of an image's referrers index in the OCI tag schema.
fn referrers_tag(digest: &str) -> String {
    digest.replace(':', "-")
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

/// Verifies one bundle attached to the image `digest`: a DSSE envelope over an in-toto statement
/// whose subject is the image, with everything [`verify_bundle`] checks.
pub(crate) fn verify_dsse_bundle(
    trust: &Trust,
    bundle: &Value,
    digest: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Verified, String> {
    if bundle["dsseEnvelope"]["payloadType"] != IN_TOTO {
        return Err("the bundle holds no in-toto DSSE envelope".into());
    }
    let hex_digest = digest.trim_start_matches("sha256:");
    let artifact = Artifact::Sha256(sigstack_verify::decode_hex(hex_digest).ok_or("the image digest is not hex")?);
    let mut verified = verify_bundle(trust, bundle, &artifact, policy, checks).map_err(|e| e.to_string())?;
    verified.digest = digest.to_string();
    Ok(verified)
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
    let bundles = attached(registry, reference.repository(), &digest).await?;
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

/// Signs `statement` in a DSSE envelope, logs it (a `dsse` entry on Rekor v1; on Rekor v2 a
/// `hashedrekord` over the PAE, with a signed timestamp), and attaches the Sigstore bundle as an
/// OCI referrer of `digest`; returns the log index and the referrer's digest.
pub(crate) async fn attest_bundle(
    registry: &Registry,
    services: &SigningServices,
    http: &reqwest::Client,
    signer: &KeylessSigner,
    repository: &str,
    digest: &str,
    statement: &Value,
) -> anyhow::Result<(u64, String)> {
    let statement_bytes = serde_json::to_vec(statement)?;
    let bundle = bundle_with(http, signer, services, &statement_bytes, true).await?;
    let log_index = bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .unwrap_or_default();
    let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
    let referrer = attach(registry, repository, digest, &bundle, predicate_type).await?;
    Ok((log_index, referrer))
}
