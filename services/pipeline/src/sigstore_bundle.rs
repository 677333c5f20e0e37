//! Sigstore bundles (v0.3) made for a blob or a statement against whichever logs a signing
//! config lists: Rekor v1 (SET and integrated time) or Rekor v2 (inclusion proof against a C2SP
//! checkpoint, no time of its own, so an RFC 3161 timestamp from the TSA beside it). Verifying
//! them is the verification core's ([`sigstack_verify::verify_bundle`]).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::keyless::{KeylessSigner, LoggedEntry, Services, log_entry};
use crate::oci::{hex, sha256};
use sigstack_verify::IN_TOTO;

/// The bundle media type.
pub(crate) const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Where a bundle is signed to, from a signing config.
#[derive(Debug, Clone)]
pub struct SigningServices {
    /// The CA.
    pub fulcio: String,
    /// The log and its major API version (1 or 2).
    pub rekor: (String, u32),
    /// The timestamp authority's full URL, if any.
    pub tsa: Option<String>,
}

/// Reads `signing_config.v0.2.json`.
pub fn read_signing_config(path: &std::path::Path) -> anyhow::Result<sigstack_trust::SigningConfig> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a signing config", path.display()))
}

impl SigningServices {
    /// Where a stack's bundles go: its v2 log when there is one (with the TSA), else v1.
    pub(crate) fn of(services: &Services) -> SigningServices {
        let tsa = services.tsa.as_ref().map(|url| format!("{}/api/v1/timestamp", url.trim_end_matches('/')));
        let rekor = match &services.rekor_v2 {
            Some(url) => (url.clone(), 2),
            None => (services.rekor.clone(), 1),
        };
        SigningServices { fulcio: services.fulcio.clone(), rekor, tsa }
    }

    /// Picks services from `signing_config.v0.2.json` as sigstore-go does: the first listed of the
    /// highest API version it speaks (CA 1, Rekor 1 or 2, TSA 1).
    pub fn from_signing_config(path: &std::path::Path) -> anyhow::Result<SigningServices> {
        let config = read_signing_config(path)?;
        let pick = |services: &[sigstack_trust::Service], max: u32| {
            let best = services.iter().filter(|s| s.major_api_version <= max).map(|s| s.major_api_version).max()?;
            services.iter().find(|s| s.major_api_version == best).cloned()
        };
        let fulcio = pick(&config.ca_urls, 1).context("the signing config lists no CA of API version 1")?;
        let rekor = pick(&config.rekor_tlog_urls, 2).context("the signing config lists no Rekor log")?;
        let tsa = pick(&config.tsa_urls, 1).map(|s| s.url);
        if rekor.major_api_version == 2 && tsa.is_none() {
            bail!("the signing config lists a Rekor v2 log but no timestamp authority: v2 entries carry no time");
        }
        Ok(SigningServices { fulcio: fulcio.url, rekor: (rekor.url, rekor.major_api_version), tsa })
    }
}

/// Logs a `hashedRekordRequestV002` with the v2 log at `url`; returns its `TransparencyLogEntry`.
async fn log_entry_v2(http: &reqwest::Client, url: &str, request: &Value) -> anyhow::Result<Value> {
    let url = format!("{}/api/v2/log/entries", url.trim_end_matches('/'));
    let response = http.post(&url).json(request).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!("the Rekor v2 log refused the entry ({status}): {}", body["message"].as_str().unwrap_or("no message"));
    }
    Ok(body)
}

/// An RFC 3161 timestamp over `signature` from the TSA at `url` (its full timestamp URL), asked in
/// the JSON form sigstore/timestamp-authority takes beside DER (what sigstore-js sends).
async fn timestamp(http: &reqwest::Client, url: &str, signature: &[u8]) -> anyhow::Result<Vec<u8>> {
    let request =
        json!({"artifactHash": B64.encode(sha256(signature)), "hashAlgorithm": "sha256", "certificates": true});
    let response = http.post(url).json(&request).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body = response.bytes().await.with_context(|| format!("read the answer of {url}"))?;
    if !status.is_success() {
        bail!("the timestamp authority refused ({status}): {}", String::from_utf8_lossy(&body));
    }
    Ok(body.to_vec())
}

/// Signs a blob (or, with `in_toto`, an in-toto statement in a DSSE envelope) keylessly through
/// `services` and returns the bundle v0.3: a Rekor v1 entry with its SET, or a Rekor v2 entry and
/// a signed timestamp.
pub async fn sign_bundle(services: &SigningServices, token: &str, data: &[u8], in_toto: bool) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let keyless = KeylessSigner::new(&http, &services.fulcio, token).await?;
    bundle_with(&http, &keyless, services, data, in_toto).await
}

/// [`sign_bundle`] with a signer that already has its certificate.
pub(crate) async fn bundle_with(
    http: &reqwest::Client,
    keyless: &KeylessSigner,
    services: &SigningServices,
    data: &[u8],
    in_toto: bool,
) -> anyhow::Result<Value> {
    let leaf_der = pem::parse(&keyless.leaf_pem)?.into_contents();
    // What the log is told was signed: the artifact's digest, or SHA-256 of the DSSE PAE.
    let (signature, signed_digest, content_json) = if in_toto {
        serde_json::from_slice::<Value>(data).context("--in-toto: the file is not a JSON in-toto statement")?;
        let pae = sigstack_rekor::pae(IN_TOTO, data);
        let signature = keyless.sign(&pae)?;
        let envelope = json!({"payload": B64.encode(data), "payloadType": IN_TOTO, "signatures": [{"sig": B64.encode(&signature)}]});
        (signature, sha256(&pae), json!({"dsseEnvelope": envelope}))
    } else {
        let signature = keyless.sign(data)?;
        let digest = sha256(data);
        let message = json!({"messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(&digest)}, "signature": B64.encode(&signature)});
        (signature, digest, json!({"messageSignature": message}))
    };
    let (url, version) = &services.rekor;
    let entry = if *version == 2 {
        let key = sigstack_verify::CertificateIdentity::key_of(&leaf_der).map_err(|e| anyhow::anyhow!("{e}"))?;
        let request = json!({"hashedRekordRequestV002": {
            "digest": B64.encode(&signed_digest),
            "signature": {"content": B64.encode(&signature), "verifier": {
                "x509Certificate": {"rawBytes": B64.encode(&leaf_der)},
                "keyDetails": sigstack_verify::tlog::default_key_details(&key).map_err(|e| anyhow::anyhow!("{e}"))?}}}});
        log_entry_v2(http, url, &request).await?
    } else {
        let proposed = if in_toto {
            let envelope = &content_json["dsseEnvelope"];
            json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
                "envelope": envelope.to_string(), "verifiers": [B64.encode(&keyless.leaf_pem)]}}})
        } else {
            json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex(&signed_digest)}},
                "signature": {"content": B64.encode(&signature), "publicKey": {"content": B64.encode(&keyless.leaf_pem)}}}})
        };
        let logged = log_entry(http, url, &proposed).await?;
        v1_tlog_entry(&logged)?
    };
    let mut material = json!({"certificate": {"rawBytes": B64.encode(&leaf_der)}, "tlogEntries": [entry]});
    if let Some(tsa) = &services.tsa {
        let signed_timestamp = timestamp(http, tsa, &signature).await?;
        material["timestampVerificationData"] =
            json!({"rfc3161Timestamps": [{"signedTimestamp": B64.encode(signed_timestamp)}]});
    }
    let mut bundle = json!({"mediaType": BUNDLE_V03, "verificationMaterial": material});
    if let (Some(bundle_map), Some(content_map)) = (bundle.as_object_mut(), content_json.as_object()) {
        bundle_map.extend(content_map.clone());
    }
    Ok(bundle)
}

/// A Rekor v1 entry as a bundle's `tlogEntries[]` holds it (protobuf JSON, int64 as strings).
pub(crate) fn v1_tlog_entry(entry: &LoggedEntry) -> anyhow::Result<Value> {
    let log_id = decode_hex(&entry.log_id)?;
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
    }))
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    sigstack_verify::decode_hex(text).ok_or_else(|| anyhow::anyhow!("not hex: {text}"))
}
