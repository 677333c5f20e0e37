//! Sigstore bundles (v0.1 to v0.3) of any signer, verified as sigstore-go verifies them, and made
//! for a blob or a statement against whichever logs a signing config lists: Rekor v1 (SET and
//! integrated time) or Rekor v2 (inclusion proof against a C2SP checkpoint, no time of its own, so
//! an RFC 3161 timestamp from the TSA beside it).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_fulcio::{KeyKind, SubjectKey, verify_embedded_sct, verify_leaf};

use crate::Trust;
use crate::cosign::IN_TOTO;
use crate::keyless::{KeylessSigner, TileLogKey, log_entry};
use crate::oci::{hex, sha256};
use crate::verify::{Checks, IdentityPolicy, Verified};

/// The bundle media type.
pub(crate) const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// What a bundle must be about: an artifact's bytes or its SHA-256 digest (an image digest, or
/// `sha256:<hex>` given to `verify-bundle`).
#[derive(Debug, Clone)]
pub enum Artifact {
    /// The artifact itself.
    Bytes(Vec<u8>),
    /// Its SHA-256.
    Sha256(Vec<u8>),
}

impl Artifact {
    /// `sha256:<hex>` or a file's bytes.
    pub fn parse(file_or_digest: &str) -> anyhow::Result<Artifact> {
        if let Some(hex_digest) = file_or_digest.strip_prefix("sha256:") {
            let bytes = decode_hex(hex_digest).context("sha256: must be followed by 64 hex digits")?;
            anyhow::ensure!(bytes.len() == 32, "sha256: must be followed by 64 hex digits");
            return Ok(Artifact::Sha256(bytes));
        }
        Ok(Artifact::Bytes(std::fs::read(file_or_digest).with_context(|| format!("read {file_or_digest}"))?))
    }

    fn sha256(&self) -> Vec<u8> {
        match self {
            Artifact::Bytes(bytes) => sha256(bytes),
            Artifact::Sha256(digest) => digest.clone(),
        }
    }
}

/// Lowercase or uppercase hex to bytes; `None` for anything else.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (0..text.len()).step_by(2).filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect())
}

fn b64_field(value: &Value, what: &str) -> Result<Vec<u8>, String> {
    let text = value.as_str().ok_or_else(|| format!("the bundle has no {what}"))?;
    B64.decode(text).map_err(|_| format!("the bundle's {what} is not base64"))
}

fn number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

/// What was signed, as the bundle holds it.
struct Content {
    signature: Vec<u8>,
    /// SHA-256 of what the signature is over: the message digest, or SHA-256 of the DSSE PAE.
    signed_digest: Vec<u8>,
    /// The DSSE PAE, for a DSSE envelope.
    pae: Option<Vec<u8>>,
    /// SHA-256 of the DSSE payload.
    payload_digest: Option<Vec<u8>>,
    statement: Option<Value>,
}

fn content(bundle: &Value, artifact: &Artifact) -> Result<Content, String> {
    let expected = artifact.sha256();
    if let Some(message) = bundle.get("messageSignature") {
        let algorithm = message["messageDigest"]["algorithm"].as_str().unwrap_or_default();
        if algorithm != "SHA2_256" {
            return Err(format!("message digest algorithm {algorithm:?}: only SHA2_256 is read"));
        }
        let digest = b64_field(&message["messageDigest"]["digest"], "message digest")?;
        if digest != expected {
            return Err(format!("the bundle signs digest {}, not the artifact's {}", hex(&digest), hex(&expected)));
        }
        let signature = b64_field(&message["signature"], "signature")?;
        return Ok(Content { signature, signed_digest: digest, pae: None, payload_digest: None, statement: None });
    }
    let envelope =
        bundle.get("dsseEnvelope").ok_or("the bundle holds neither a message signature nor a DSSE envelope")?;
    let payload_type = envelope["payloadType"].as_str().ok_or("the envelope has no payloadType")?;
    let payload = b64_field(&envelope["payload"], "DSSE payload")?;
    let signatures = envelope["signatures"].as_array().filter(|s| s.len() == 1);
    let signature =
        b64_field(&signatures.ok_or("a bundle's envelope carries exactly one signature")?[0]["sig"], "DSSE signature")?;
    let pae = sigstack_rekor::pae(payload_type, &payload);
    let statement = if payload_type == IN_TOTO {
        let statement: Value = serde_json::from_slice(&payload).map_err(|e| format!("the in-toto statement: {e}"))?;
        let hex_digest = hex(&expected);
        if !statement["subject"].as_array().into_iter().flatten().any(|s| s["digest"]["sha256"] == hex_digest.as_str())
        {
            return Err(format!("the statement's subject is not sha256:{hex_digest}"));
        }
        Some(statement)
    } else {
        None
    };
    Ok(Content {
        signature,
        signed_digest: sha256(&pae),
        payload_digest: Some(sha256(&payload)),
        pae: Some(pae),
        statement,
    })
}

/// The verifier's key and, for keyless bundles, the certificate.
struct Signer {
    key: SubjectKey,
    leaf_der: Option<Vec<u8>>,
}

fn signer(bundle: &Value, checks: &Checks) -> Result<Signer, String> {
    let material = &bundle["verificationMaterial"];
    if let Some(public_key) = &checks.public_key {
        let key = SubjectKey::from_spki_der(public_key).map_err(|e| format!("public key: {e}"))?;
        return Ok(Signer { key, leaf_der: None });
    }
    let leaf = material["certificate"]["rawBytes"]
        .as_str()
        .or(material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .ok_or("the bundle has no certificate (pass --key for a key-signed bundle)")?;
    let leaf_der = B64.decode(leaf).map_err(|_| "the certificate is not base64")?;
    let pem = sigstack_wire::pem_lf("CERTIFICATE", &leaf_der);
    let parsed = sigstack_fulcio::Verifier::parse("certificate", pem.as_bytes()).map_err(|e| e.to_string())?;
    Ok(Signer { key: parsed.key, leaf_der: Some(leaf_der) })
}

/// What a verified log entry gives.
struct LoggedAt {
    log_index: u64,
    /// The SET's integrated time (Rekor v1); v2 entries have none.
    integrated_time: Option<i64>,
}

/// A Rekor v1 entry: its SET with the v1 key, and its body naming this signature and signer.
fn check_v1_entry(trust: &Trust, entry: &Value, content: &Content, signer: &Signer) -> Result<LoggedAt, String> {
    let body_b64 = entry["canonicalizedBody"].as_str().ok_or("the log entry has no body")?;
    let time = number(&entry["integratedTime"]).ok_or("the log entry has no integrated time")?;
    let index = number(&entry["logIndex"]).ok_or("the log entry has no index")?;
    let set = b64_field(&entry["inclusionPromise"]["signedEntryTimestamp"], "signed entry timestamp")?;
    let payload = format!(
        r#"{{"body":"{body_b64}","integratedTime":{time},"logID":"{}","logIndex":{index}}}"#,
        hex(&sha256(&trust.rekor_key))
    );
    let log_key = SubjectKey::from_spki_der(&trust.rekor_key).map_err(|e| e.to_string())?;
    if !log_key.verify_proof(payload.as_bytes(), &set) {
        return Err("the signed entry timestamp does not verify with the log key".into());
    }
    let body: Value = serde_json::from_slice(&B64.decode(body_b64).map_err(|_| "body is not base64")?)
        .map_err(|e| format!("log entry body: {e}"))?;
    let spec = &body["spec"];
    let signature_b64 = B64.encode(&content.signature);
    let signer_der = signer.leaf_der.clone().unwrap_or_else(|| signer.key.spki_der().to_vec());
    let pem_der = |value: &Value| {
        value.as_str().and_then(|v| B64.decode(v).ok()).and_then(|pem| pem::parse(pem).ok()).map(|p| p.into_contents())
    };
    let (digest_matches, logged_signer) = match body["kind"].as_str() {
        Some("hashedrekord") => (
            spec["data"]["hash"]["value"].as_str() == Some(hex(&content.signed_digest).as_str())
                && spec["signature"]["content"] == signature_b64.as_str(),
            pem_der(&spec["signature"]["publicKey"]["content"]),
        ),
        Some("dsse") => {
            let logged =
                spec["signatures"].as_array().into_iter().flatten().find(|s| s["signature"] == signature_b64.as_str());
            (
                content.payload_digest.as_ref().is_some_and(|d| spec["payloadHash"]["value"] == hex(d).as_str())
                    && logged.is_some(),
                logged.and_then(|s| pem_der(&s["verifier"])),
            )
        }
        other => return Err(format!("a {other:?} log entry is not read here (hashedrekord and dsse are)")),
    };
    if !digest_matches {
        return Err("the log entry is for another signature or artifact".into());
    }
    if logged_signer.as_deref() != Some(signer_der.as_slice()) {
        return Err("the log entry names another certificate or key".into());
    }
    Ok(LoggedAt { log_index: index as u64, integrated_time: Some(time) })
}

/// The `keyDetails` sigstore-go gives a key (`GetDefaultAlgorithmDetails`).
fn default_key_details(key: &SubjectKey) -> Result<&'static str, String> {
    match key.kind() {
        KeyKind::P256 => Ok("PKIX_ECDSA_P256_SHA_256"),
        KeyKind::P384 => Ok("PKIX_ECDSA_P384_SHA_384"),
        KeyKind::P521 => Ok("PKIX_ECDSA_P521_SHA_512"),
        other => Err(format!("a {other:?} key: sigstack reads Rekor v2 entries of ECDSA keys")),
    }
}

/// The `hashedRekordRequestV002` of a signature: what a client sends a v2 log, and what a
/// verifier rebuilds the entry from (sigstore-go ignores the bundle's body and rebuilds it).
fn hashed_rekord_v2_request(content: &Content, signer: &Signer) -> Result<Value, String> {
    let verifier = match &signer.leaf_der {
        Some(der) => json!({"x509Certificate": {"rawBytes": B64.encode(der)}}),
        None => json!({"publicKey": {"rawBytes": B64.encode(signer.key.spki_der())}}),
    };
    let mut verifier = verifier;
    verifier["keyDetails"] = json!(default_key_details(&signer.key)?);
    Ok(json!({"hashedRekordRequestV002": {
        "digest": B64.encode(&content.signed_digest),
        "signature": {"content": B64.encode(&content.signature), "verifier": verifier}}}))
}

/// A Rekor v2 entry: the body rebuilt from the bundle, its inclusion proof, and the proof's
/// checkpoint signed by the log's Ed25519 key under the log's host name.
fn check_v2_entry(log: &TileLogKey, entry: &Value, content: &Content, signer: &Signer) -> Result<LoggedAt, String> {
    if entry["kindVersion"]["kind"] != "hashedrekord" {
        return Err(format!(
            "a Rekor v2 {} entry: only hashedrekord entries are verified (sigstore-go refuses v2 dsse entries too)",
            entry["kindVersion"]["kind"]
        ));
    }
    let request = hashed_rekord_v2_request(content, signer)?;
    let rebuilt = sigstack_rekor::v2::create_entry(request.to_string().as_bytes(), false)
        .map_err(|e| format!("rebuilding the log entry: {e}"))?;
    let leaf = sigstack_rekor::merkle::leaf_hash(&rebuilt.body);
    let proof = &entry["inclusionProof"];
    let index = number(&entry["logIndex"]).unwrap_or(0) as u64;
    let size = number(&proof["treeSize"]).ok_or("the inclusion proof has no tree size")? as u64;
    let root: [u8; 32] = b64_field(&proof["rootHash"], "inclusion proof root")?
        .try_into()
        .map_err(|_| "the inclusion proof's root is not 32 bytes")?;
    let hashes = proof["hashes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| b64_field(h, "proof hash")?.try_into().map_err(|_| "a proof hash is not 32 bytes".to_string()))
        .collect::<Result<Vec<[u8; 32]>, String>>()?;
    let note = proof["checkpoint"]["envelope"].as_str().ok_or("the inclusion proof has no checkpoint")?;
    let checkpoint = sigstack_rekor::v2::verify_checkpoint(note, &log.origin, &log.public_key)?;
    if checkpoint.size != size || checkpoint.root != root {
        return Err("the checkpoint is not of the tree the inclusion proof is for".into());
    }
    if !sigstack_rekor::merkle::verify_inclusion(index, size, &leaf, &hashes, &root) {
        return Err("the inclusion proof does not prove this signature in the log".into());
    }
    Ok(LoggedAt { log_index: index, integrated_time: None })
}

/// Verifies `bundle` for `artifact` as sigstore-go does: the content (message digest or DSSE
/// subject), the log entries of trusted logs, the RFC 3161 timestamps of trusted TSAs, the
/// certificate chain valid at every verified time (the SET's, the timestamps'), its SCT and
/// identity, and the signature.
pub fn verify_bundle(
    trust: &Trust,
    bundle: &Value,
    artifact: &Artifact,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Verified, String> {
    let signer = signer(bundle, checks)?;
    let content = content(bundle, artifact)?;
    let verified_signature = match &content.pae {
        Some(pae) => signer.key.verify_proof(pae, &content.signature),
        None => signer.key.verify_prehashed(&content.signed_digest, &content.signature).is_ok(),
    };
    if !verified_signature {
        return Err("the signature does not verify with the certificate's key".into());
    }
    let material = &bundle["verificationMaterial"];
    let mut times: Vec<u64> = Vec::new();
    let mut logged: Option<LoggedAt> = None;
    if checks.tlog {
        let entries =
            material["tlogEntries"].as_array().filter(|e| !e.is_empty()).ok_or("the bundle has no log entry")?;
        let mut reasons = Vec::new();
        for entry in entries {
            let key_id = b64_field(&entry["logId"]["keyId"], "log ID")?;
            let result = if !trust.rekor_key.is_empty() && key_id == sha256(&trust.rekor_key) {
                check_v1_entry(trust, entry, &content, &signer)
            } else if let Some(log) = trust.rekor_v2.iter().find(|log| log.key_id == key_id) {
                check_v2_entry(log, entry, &content, &signer)
            } else {
                // Entries of logs the trusted root does not list are skipped, as sigstore-go does.
                continue;
            };
            match result {
                Ok(at) => logged = Some(at),
                Err(reason) => reasons.push(reason),
            }
        }
        if let Some(reason) = reasons.into_iter().next() {
            return Err(reason);
        }
        let at = logged.as_ref().ok_or(
            "error verifying bundle: verifying bundle: rekor log public key not found for payload \
             (no log entry of a log the trusted root lists)",
        )?;
        times.extend(at.integrated_time.map(|t| t.max(0) as u64));
    }
    for timestamp in material["timestampVerificationData"]["rfc3161Timestamps"].as_array().into_iter().flatten() {
        let der = b64_field(&timestamp["signedTimestamp"], "signed timestamp")?;
        let mut errors = Vec::new();
        let verified = trust.timestamp_authorities.iter().find_map(|chain| {
            sigstack_tsa::verify_timestamp(&der, &content.signature, chain).map_err(|e| errors.push(e.to_string())).ok()
        });
        match verified {
            Some(verified) => times.push(verified.time),
            None if trust.timestamp_authorities.is_empty() => {
                return Err(
                    "the bundle has a signed timestamp but the trusted root lists no timestamp authority".into()
                );
            }
            None => {
                return Err(format!(
                    "the signed timestamp verifies with no trusted timestamp authority: {}",
                    errors.join("; ")
                ));
            }
        }
    }
    if times.is_empty() {
        if checks.tlog {
            return Err("no verified time for the signature: a Rekor v2 entry carries none, so the bundle needs a \
                        signed timestamp (RFC 3161) from a timestamp authority the trusted root lists"
                .into());
        }
        times.push(sigstack_fulcio::now());
    }
    let mut leaf = None;
    if let Some(leaf_der) = &signer.leaf_der {
        for at in &times {
            leaf = Some(verify_leaf(leaf_der, &trust.ca_chain, &trust.anchors, *at).map_err(|e| e.to_string())?);
        }
        if checks.sct {
            let issuer = trust.ca_chain.first().ok_or("no CA certificate to check the SCT against")?;
            verify_embedded_sct(leaf_der, issuer, &trust.ctlog_key).map_err(|e| e.to_string())?;
        }
    }
    if let Some(leaf) = &leaf {
        policy.check(leaf)?;
    }
    Ok(Verified {
        digest: format!("sha256:{}", hex(&artifact.sha256())),
        sans: leaf.as_ref().map(|l| l.san.clone()).unwrap_or_default(),
        issuer: leaf.as_ref().and_then(|l| l.issuer.clone()).unwrap_or_default(),
        extensions: leaf.as_ref().map(|l| l.extensions.clone()).unwrap_or_default(),
        log_index: logged.as_ref().map(|l| l.log_index),
        integrated_time: logged.as_ref().and_then(|l| l.integrated_time),
        statement: content.statement,
    })
}

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
    let (signed, content_json) = if in_toto {
        serde_json::from_slice::<Value>(data).context("--in-toto: the file is not a JSON in-toto statement")?;
        let pae = sigstack_rekor::pae(IN_TOTO, data);
        let signature = keyless.sign(&pae)?;
        let envelope = json!({"payload": B64.encode(data), "payloadType": IN_TOTO, "signatures": [{"sig": B64.encode(&signature)}]});
        (
            Content {
                signed_digest: sha256(&pae),
                payload_digest: Some(sha256(data)),
                pae: Some(pae),
                signature,
                statement: None,
            },
            json!({"dsseEnvelope": envelope}),
        )
    } else {
        let signature = keyless.sign(data)?;
        let digest = sha256(data);
        let message = json!({"messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(&digest)}, "signature": B64.encode(&signature)});
        (
            Content { signed_digest: digest, payload_digest: None, pae: None, signature, statement: None },
            json!({"messageSignature": message}),
        )
    };
    let signer = Signer {
        key: SubjectKey::from_spki_der(&leaf_spki(&leaf_der)?).map_err(|e| anyhow::anyhow!("{e}"))?,
        leaf_der: Some(leaf_der.clone()),
    };
    let (url, version) = &services.rekor;
    let entry = if *version == 2 {
        let request = hashed_rekord_v2_request(&signed, &signer).map_err(|e| anyhow::anyhow!(e))?;
        log_entry_v2(http, url, &request).await?
    } else {
        let proposed = match &signed.pae {
            Some(_) => {
                let envelope = &content_json["dsseEnvelope"];
                json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
                    "envelope": envelope.to_string(), "verifiers": [B64.encode(&keyless.leaf_pem)]}}})
            }
            None => json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex(&signed.signed_digest)}},
                "signature": {"content": B64.encode(&signed.signature), "publicKey": {"content": B64.encode(&keyless.leaf_pem)}}}}),
        };
        let logged = log_entry(http, url, &proposed).await?;
        crate::bundle::v1_tlog_entry(&logged)?
    };
    let mut material = json!({"certificate": {"rawBytes": B64.encode(&leaf_der)}, "tlogEntries": [entry]});
    if let Some(tsa) = &services.tsa {
        let signed_timestamp = timestamp(http, tsa, &signed.signature).await?;
        material["timestampVerificationData"] =
            json!({"rfc3161Timestamps": [{"signedTimestamp": B64.encode(signed_timestamp)}]});
    }
    let mut bundle = json!({"mediaType": BUNDLE_V03, "verificationMaterial": material});
    if let (Some(bundle_map), Some(content_map)) = (bundle.as_object_mut(), content_json.as_object()) {
        bundle_map.extend(content_map.clone());
    }
    Ok(bundle)
}

fn leaf_spki(leaf_der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let pem = sigstack_wire::pem_lf("CERTIFICATE", leaf_der);
    let verifier =
        sigstack_fulcio::Verifier::parse("certificate", pem.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(verifier.key.spki_der().to_vec())
}
