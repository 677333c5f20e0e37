//! Signatures and attestations in cosign's legacy registry format (cosign pkg/oci/static,
//! pkg/cosign/bundle): tag `sha256-<hex>.sig` / `.att` holding an OCI manifest whose layers are
//! simple-signing payloads or DSSE envelopes, annotated with signature, certificate, chain and bundle.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::Services;
use crate::keyless::{KeylessSigner, LoggedEntry, log_entry};
use crate::oci::{OCI_MANIFEST, Registry, hex, sha256};

pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub(crate) const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub(crate) const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub(crate) const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub(crate) const CHAIN: &str = "dev.sigstore.cosign/chain";
pub(crate) const BUNDLE: &str = "dev.sigstore.cosign/bundle";
pub(crate) use sigstack_verify::IN_TOTO;

/// `sha256-<hex>.<suffix>`: cosign's tag for an image digest's signatures (`sig`) or attestations (`att`).
pub fn tag_for(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// An image resolved to its digest: what a signature is attached to.
#[derive(Clone, Copy)]
pub(crate) struct ImageDigest<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) repository: &'a str,
    pub(crate) digest: &'a str,
}

/// Appends a layer to the manifest under `tag` (creating it), as cosign does: signing twice adds.
async fn append_layer(
    registry: &Registry,
    repository: &str,
    tag: &str,
    media_type: &str,
    blob: &[u8],
    annotations: Map<String, Value>,
) -> anyhow::Result<usize> {
    let reference = registry.tagged(repository, tag)?;
    let mut layers: Vec<Value> = match registry.manifest(&reference).await? {
        Some((bytes, _)) => serde_json::from_slice::<Value>(&bytes)?["layers"].as_array().cloned().unwrap_or_default(),
        None => Vec::new(),
    };
    let blob_digest = registry.push_blob(&reference, blob).await?;
    layers
        .push(json!({"mediaType": media_type, "size": blob.len(), "digest": blob_digest, "annotations": annotations}));
    // cosign's signature image config: empty platform, one diff_id per layer.
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}
    }))?;
    let config_digest = registry.push_blob(&reference, &config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": layers
    }))?;
    registry.push_manifest(&reference, &manifest, OCI_MANIFEST).await?;
    Ok(layers.len())
}

fn annotations(signer: &KeylessSigner, signature_b64: &str, logged: Option<&LoggedEntry>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(SIGNATURE.into(), json!(signature_b64));
    map.insert(CERTIFICATE.into(), json!(signer.leaf_pem));
    map.insert(CHAIN.into(), json!(signer.chain_pem));
    if let Some(logged) = logged {
        map.insert(BUNDLE.into(), json!(logged.cosign_bundle()));
    }
    map
}

/// Signs the image `digest` of `repository` in cosign's format: a simple-signing payload naming
/// the digest, a `hashedrekord` entry, a layer on the `.sig` tag; returns (tag, log index, layers).
/// Without `services` nothing is logged and the layer carries no log bundle (cosign's
/// `--tlog-upload=false`); the log index is then `None`.
pub(crate) async fn sign_legacy(
    image: &ImageDigest<'_>,
    services: Option<&Services>,
    http: &reqwest::Client,
    signer: &KeylessSigner,
) -> anyhow::Result<(String, Option<u64>, usize)> {
    let ImageDigest { registry, repository, digest } = *image;
    // cosign's simple-signing payload (pkg/signature/payload.go).
    let payload = serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": format!("{}/{repository}", registry.host)},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))?;
    if let Some(services) = services {
        services.require_v1()?;
    }
    let signature = signer.sign(&payload)?;
    let logged = match services {
        Some(services) => {
            let proposed = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex(&sha256(&payload))}},
                "signature": {"content": B64.encode(&signature), "publicKey": {"content": B64.encode(&signer.leaf_pem)}}}});
            Some(log_entry(http, &services.rekor, &proposed).await?)
        }
        None => None,
    };
    let tag = tag_for(digest, "sig");
    let annotations = annotations(signer, &B64.encode(&signature), logged.as_ref());
    let layers = append_layer(registry, repository, &tag, SIMPLE_SIGNING, &payload, annotations).await?;
    Ok((tag, logged.map(|l| l.log_index), layers))
}

/// Attests the image `digest` of `repository` in cosign's format: an in-toto v0.1 statement in a
/// DSSE envelope, a `dsse` entry, a layer on the `.att` tag; returns (tag, log index).
pub(crate) async fn attest_legacy(
    image: &ImageDigest<'_>,
    services: &Services,
    http: &reqwest::Client,
    signer: &KeylessSigner,
    predicate_type: &str,
    predicate: &Value,
) -> anyhow::Result<(String, u64)> {
    let ImageDigest { registry, repository, digest } = *image;
    services.require_v1()?;
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": format!("{}/{repository}", registry.host), "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicate": predicate
    }))?;
    let signature = signer.sign(&sigstack_rekor::pae(IN_TOTO, &statement))?;
    let envelope = serde_json::to_vec(&json!({
        "payloadType": IN_TOTO,
        "payload": B64.encode(&statement),
        "signatures": [{"keyid": "", "sig": B64.encode(&signature)}]
    }))?;
    let proposed = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
        "envelope": String::from_utf8(envelope.clone())?, "verifiers": [B64.encode(&signer.leaf_pem)]}}});
    let logged = log_entry(http, &services.rekor, &proposed).await?;
    let mut notes = annotations(signer, "", Some(&logged));
    notes.insert("predicateType".into(), json!(predicate_type));
    let tag = tag_for(digest, "att");
    append_layer(registry, repository, &tag, DSSE_ENVELOPE, &envelope, notes).await?;
    Ok((tag, logged.log_index))
}
