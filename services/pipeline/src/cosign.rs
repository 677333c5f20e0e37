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
pub(crate) fn tag_for(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// The repository part of a reference (`host/acme/widget:tag` → `acme/widget`).
pub(crate) fn repository(reference: &oci_client::Reference) -> String {
    reference.repository().to_string()
}

/// How a signature or attestation is attached to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// cosign's legacy tags (`sha256-<hex>.sig` / `.att`): what cosign v2 writes and Kyverno's
    /// default `type: Cosign` reads.
    #[default]
    Cosign,
    /// A Sigstore bundle (v0.3) as an OCI referrer: what cosign v3 writes by default and Kyverno's
    /// `type: SigstoreBundle` reads. Signatures are DSSE statements of type
    /// `https://sigstore.dev/cosign/sign/v1`, as cosign v3 makes them.
    Bundle,
}

/// What `sign` did.
#[derive(Debug, Clone)]
pub struct SignOutcome {
    /// The signed digest.
    pub digest: String,
    /// The tag the signature manifest is under.
    pub tag: String,
    /// The certificate identity.
    pub identity: String,
    /// Log index of the entry.
    pub log_index: u64,
    /// Signatures now attached to the digest.
    pub signatures: usize,
}

/// What `attest` did.
#[derive(Debug, Clone)]
pub struct AttestOutcome {
    /// The attested digest.
    pub digest: String,
    /// The tag the attestation manifest is under.
    pub tag: String,
    /// The certificate identity.
    pub identity: String,
    /// Log index of the entry.
    pub log_index: u64,
    /// The predicate type.
    pub predicate_type: String,
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

fn annotations(signer: &KeylessSigner, signature_b64: &str, logged: &LoggedEntry) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(SIGNATURE.into(), json!(signature_b64));
    map.insert(CERTIFICATE.into(), json!(signer.leaf_pem));
    map.insert(CHAIN.into(), json!(signer.chain_pem));
    map.insert(BUNDLE.into(), json!(logged.cosign_bundle()));
    map
}

/// Signs `image` keylessly: resolves it to its digest first, then signs a simple-signing payload
/// naming that digest, logs a `hashedrekord` entry, and attaches the signature (`Format::Cosign`),
/// or signs a statement naming it in a bundle (`Format::Bundle`).
pub async fn sign(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    format: Format,
) -> anyhow::Result<SignOutcome> {
    let reference = registry.reference(image)?;
    let digest = registry.resolve(&reference).await?;
    let repository = repository(&reference);
    let http = reqwest::Client::new();
    let signer = KeylessSigner::new(&http, &services.fulcio, token).await?;
    if format == Format::Bundle {
        // cosign v3's image signature: an in-toto v1 statement with an empty predicate.
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": digest.trim_start_matches("sha256:")}, "annotations": {}}],
            "predicateType": crate::bundle::COSIGN_SIGN_PREDICATE,
            "predicate": {}
        });
        let (log_index, referrer) =
            attest_bundle(registry, services, &http, &signer, &repository, &digest, &statement).await?;
        let signatures = crate::bundle::attached(registry, &repository, &digest).await.map(|b| b.len()).unwrap_or(1);
        return Ok(SignOutcome { digest, tag: referrer, identity: signer.identity, log_index, signatures });
    }
    services.require_v1()?;
    // cosign's simple-signing payload (pkg/signature/payload.go).
    let payload = serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": format!("{}/{repository}", registry.host)},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))?;
    let signature = signer.sign(&payload)?;
    let proposed = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hex(&sha256(&payload))}},
        "signature": {"content": B64.encode(&signature), "publicKey": {"content": B64.encode(&signer.leaf_pem)}}}});
    let logged = log_entry(&http, &services.rekor, &proposed).await?;
    let tag = tag_for(&digest, "sig");
    let signatures = append_layer(
        registry,
        &repository,
        &tag,
        SIMPLE_SIGNING,
        &payload,
        annotations(&signer, &B64.encode(&signature), &logged),
    )
    .await?;
    Ok(SignOutcome { digest, tag, identity: signer.identity, log_index: logged.log_index, signatures })
}

/// Attests `image` with `predicate` of `predicate_type`: an in-toto statement naming the image
/// digest, in a DSSE envelope signed keylessly, logged as a `dsse` entry, attached as cosign does.
pub async fn attest(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    predicate_type: &str,
    predicate: &Value,
    format: Format,
) -> anyhow::Result<AttestOutcome> {
    let reference = registry.reference(image)?;
    let digest = registry.resolve(&reference).await?;
    let repository = repository(&reference);
    let http = reqwest::Client::new();
    let signer = KeylessSigner::new(&http, &services.fulcio, token).await?;
    if format == Format::Bundle {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": digest.trim_start_matches("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate
        });
        let (log_index, referrer) =
            attest_bundle(registry, services, &http, &signer, &repository, &digest, &statement).await?;
        return Ok(AttestOutcome {
            digest,
            tag: referrer,
            identity: signer.identity,
            log_index,
            predicate_type: predicate_type.into(),
        });
    }
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
    let logged = log_entry(&http, &services.rekor, &proposed).await?;
    let mut notes = annotations(&signer, "", &logged);
    notes.insert("predicateType".into(), json!(predicate_type));
    let tag = tag_for(&digest, "att");
    append_layer(registry, &repository, &tag, DSSE_ENVELOPE, &envelope, notes).await?;
    Ok(AttestOutcome {
        digest,
        tag,
        identity: signer.identity,
        log_index: logged.log_index,
        predicate_type: predicate_type.into(),
    })
}

/// Signs `statement` in a DSSE envelope, logs it (a `dsse` entry on Rekor v1; on Rekor v2 a
/// `hashedrekord` over the PAE, with a signed timestamp), and attaches the Sigstore bundle as an
/// OCI referrer of `digest`; returns the log index and the referrer's digest.
async fn attest_bundle(
    registry: &Registry,
    services: &Services,
    http: &reqwest::Client,
    signer: &KeylessSigner,
    repository: &str,
    digest: &str,
    statement: &Value,
) -> anyhow::Result<(u64, String)> {
    let statement_bytes = serde_json::to_vec(statement)?;
    let bundle = crate::sigstore_bundle::bundle_with(http, signer, &services.signing(), &statement_bytes, true).await?;
    let log_index = bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .unwrap_or_default();
    let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
    let referrer = crate::bundle::attach(registry, repository, digest, &bundle, predicate_type).await?;
    Ok((log_index, referrer))
}
