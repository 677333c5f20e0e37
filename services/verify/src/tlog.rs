//! Transparency log entries as a bundle carries them (`TransparencyLogEntry`): the entry must be
//! about this signature and signer, its log must be trusted, and its inclusion must be shown by a
//! signed entry timestamp (Rekor v1's promise, verified with the log key, which gives the only
//! time a v1 entry has) and/or an inclusion proof whose checkpoint the log signed. Rekor v2
//! entries carry no body worth trusting: it is rebuilt from the bundle, as sigstore-go does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_fulcio::{KeyKind, SubjectKey};

use crate::artifact::hex;
use crate::{SignedContent, TransparencyLog, Trust, VerificationError, verify_note};

/// Who signed, as a log entry must name it.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The key the signature verifies with.
    pub key: &'a SubjectKey,
    /// The leaf certificate's DER, for keyless signatures.
    pub certificate: Option<&'a [u8]>,
}

impl Signer<'_> {
    /// What a log entry names: the certificate, else the key (DER).
    fn der(&self) -> &[u8] {
        self.certificate.unwrap_or(self.key.spki_der())
    }
}

/// A log entry that checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedEntry {
    /// Its index in the log.
    pub log_index: u64,
    /// The integrated time its signed promise vouches for (Rekor v1 only).
    pub integrated_time: Option<u64>,
}

fn refuse(message: impl Into<String>) -> VerificationError {
    VerificationError::LogEntry(message.into())
}

fn number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

fn b64(value: &Value, what: &str) -> Result<Vec<u8>, VerificationError> {
    let text = value.as_str().ok_or_else(|| refuse(format!("no {what}")))?;
    crate::encoding::decode_b64(text).ok_or_else(|| refuse(format!("the {what} is not base64")))
}

/// DER inside a base64 PEM (how v1 entries name certificates and keys).
fn pem_der(value: &Value) -> Option<Vec<u8>> {
    let pem = B64.decode(value.as_str()?).ok()?;
    pem::parse(pem).ok().map(|p| p.into_contents())
}

/// Checks that a v1 body (`hashedrekord` 0.0.1, `dsse` 0.0.1, `intoto` 0.0.2) is about this
/// signature, content and signer.
fn check_v1_body(body: &Value, content: &SignedContent, signer: &Signer<'_>) -> Result<(), VerificationError> {
    let spec = &body["spec"];
    let signature_b64 = B64.encode(&content.signature);
    let signer_der = signer.der();
    let payload_hash =
        content.payload.as_ref().map(|p| hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, p).as_ref()));
    let kind = (body["kind"].as_str().unwrap_or_default(), body["apiVersion"].as_str().unwrap_or_default());
    let (content_matches, names_signer) = match kind {
        ("hashedrekord", "0.0.1") => (
            content.envelope.is_none()
                && spec["data"]["hash"]["value"].as_str() == Some(hex(&content.signed_digest).as_str())
                && spec["signature"]["content"].as_str() == Some(signature_b64.as_str()),
            pem_der(&spec["signature"]["publicKey"]["content"]).as_deref() == Some(signer_der),
        ),
        ("dsse", "0.0.1") => {
            let logged = spec["signatures"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["signature"].as_str() == Some(signature_b64.as_str()));
            (
                payload_hash.is_some()
                    && spec["payloadHash"]["value"].as_str() == payload_hash.as_deref()
                    && logged.is_some(),
                logged.and_then(|s| pem_der(&s["verifier"])).as_deref() == Some(signer_der),
            )
        }
        ("intoto", "0.0.1") => (
            // cosign's legacy attestations: the payload's hash and the signer, no signature.
            payload_hash.is_some() && spec["content"]["payloadHash"]["value"].as_str() == payload_hash.as_deref(),
            pem_der(&spec["publicKey"]).as_deref() == Some(signer_der),
        ),
        ("intoto", "0.0.2") => {
            // intoto 0.0.2 double-encodes: each `sig` is base64 of the envelope's base64 text.
            let logged = spec["content"]["envelope"]["signatures"].as_array().into_iter().flatten().find(|s| {
                s["sig"].as_str().and_then(|sig| B64.decode(sig).ok()).as_deref() == Some(signature_b64.as_bytes())
            });
            (
                payload_hash.is_some()
                    && spec["content"]["payloadHash"]["value"].as_str() == payload_hash.as_deref()
                    && logged.is_some(),
                logged.and_then(|s| pem_der(&s["publicKey"])).as_deref() == Some(signer_der),
            )
        }
        (kind, version) => {
            return Err(refuse(format!(
                "a {kind} {version} entry is not read here (hashedrekord 0.0.1/0.0.2, dsse 0.0.1 and intoto 0.0.1/0.0.2 are)"
            )));
        }
    };
    if !content_matches {
        return Err(refuse(format!("the {} entry is for another signature or artifact", kind.0)));
    }
    if !names_signer {
        return Err(refuse(format!("the {} entry names another certificate or key", kind.0)));
    }
    Ok(())
}

/// The `keyDetails` sigstore-go gives a key (`GetDefaultAlgorithmDetails`), which v2 bodies hold:
/// what a verifier rebuilds a v2 entry with, and so what a signer must send.
pub fn default_key_details(key: &SubjectKey) -> Result<&'static str, VerificationError> {
    match key.kind() {
        KeyKind::P256 => Ok("PKIX_ECDSA_P256_SHA_256"),
        KeyKind::P384 => Ok("PKIX_ECDSA_P384_SHA_384"),
        KeyKind::P521 => Ok("PKIX_ECDSA_P521_SHA_512"),
        KeyKind::Ed25519 => Ok("PKIX_ED25519"),
        other => Err(refuse(format!("a Rekor v2 entry of a {other:?} key is not rebuilt here"))),
    }
}

/// The v2 body the log must have hashed for this bundle: the `hashedrekord` or `dsse` 0.0.2 entry
/// rebuilt from the signature, content and signer, as sigstore-go rebuilds it.
fn rebuild_v2_body(kind: &str, content: &SignedContent, signer: &Signer<'_>) -> Result<Vec<u8>, VerificationError> {
    let mut verifier = match signer.certificate {
        Some(der) => json!({"x509Certificate": {"rawBytes": B64.encode(der)}}),
        None => json!({"publicKey": {"rawBytes": B64.encode(signer.key.spki_der())}}),
    };
    verifier["keyDetails"] = json!(default_key_details(signer.key)?);
    let request = match (kind, &content.envelope) {
        ("hashedrekord", _) => json!({"hashedRekordRequestV002": {
            "digest": B64.encode(&content.signed_digest),
            "signature": {"content": B64.encode(&content.signature), "verifier": verifier}}}),
        // rekor-tiles has refused dsse entries since v2.3 and sigstore-go refuses them in bundles;
        // sigstack follows the client (a DSSE envelope goes to v2 as a hashedrekord over its PAE).
        (kind, _) => {
            return Err(refuse(format!(
                "a Rekor v2 {kind} entry: only hashedrekord entries are verified (sigstore-go refuses v2 dsse entries too)"
            )));
        }
    };
    sigstack_rekor::v2::create_entry(request.to_string().as_bytes(), true)
        .map(|entry| entry.body)
        .map_err(|e| refuse(format!("the entry does not rebuild from this bundle: {e}")))
}

/// The signed entry timestamp: the log's signature over the canonical
/// `{body, integratedTime, logID, logIndex}` (rekor pkg/api/entries.go).
fn check_promise(
    log: &TransparencyLog,
    body_b64: &str,
    time: i64,
    index: i64,
    set: &[u8],
) -> Result<(), VerificationError> {
    let payload =
        format!(r#"{{"body":"{body_b64}","integratedTime":{time},"logID":"{}","logIndex":{index}}}"#, hex(&log.key_id));
    let key = SubjectKey::from_spki_der(&log.spki).map_err(|e| VerificationError::Trust(format!("a log key: {e}")))?;
    if !key.verify_proof(payload.as_bytes(), set) {
        return Err(refuse("the signed entry timestamp does not verify with the log key"));
    }
    Ok(())
}

/// The inclusion proof of `body` and its checkpoint, signed by the log (named by its origin for
/// v2 logs, whose checkpoints sigstore-go checks against the log's host).
fn check_proof(log: &TransparencyLog, proof: &Value, body: &[u8], v2: bool) -> Result<(), VerificationError> {
    let refuse = |m: &str| VerificationError::InclusionProof(m.to_string());
    let index = number(&proof["logIndex"]).filter(|i| *i >= 0).ok_or_else(|| refuse("no log index"))? as u64;
    let size = number(&proof["treeSize"]).filter(|s| *s > 0).ok_or_else(|| refuse("no tree size"))? as u64;
    let root: [u8; 32] =
        b64(&proof["rootHash"], "root hash")?.try_into().map_err(|_| refuse("the root is not 32 bytes"))?;
    let hashes = proof["hashes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| b64(h, "proof hash")?.try_into().map_err(|_| refuse("a proof hash is not 32 bytes")))
        .collect::<Result<Vec<[u8; 32]>, VerificationError>>()?;
    let note = proof["checkpoint"]["envelope"]
        .as_str()
        .ok_or_else(|| VerificationError::Checkpoint("the inclusion proof has no checkpoint".into()))?;
    let checkpoint = verify_note(note, &log.spki, &log.key_id, v2.then_some(log.origin.as_str()))?;
    if checkpoint.size != size || checkpoint.root != root {
        return Err(VerificationError::Checkpoint(
            "the checkpoint is not of the tree the inclusion proof is for".into(),
        ));
    }
    let leaf = sigstack_rekor::merkle::leaf_hash(body);
    if !sigstack_rekor::merkle::verify_inclusion(index, size, &leaf, &hashes, &root) {
        return Err(refuse("the proof does not lead from this entry to the checkpoint's root"));
    }
    Ok(())
}

/// Verifies one `tlogEntries[]` item for `content` signed by `signer`; `Ok(None)` when its log is
/// not trusted (sigstore-go skips those). `require_proof`: bundles from v0.2 on must carry an
/// inclusion proof; v0.1 bundles need only the promise.
pub fn verify_entry(
    trust: &Trust,
    entry: &Value,
    content: &SignedContent,
    signer: &Signer<'_>,
    require_proof: bool,
) -> Result<Option<LoggedEntry>, VerificationError> {
    let key_id = b64(&entry["logId"]["keyId"], "log ID")?;
    let Some(log) = trust.tlog(&key_id) else { return Ok(None) };
    let log_index = number(&entry["logIndex"]).ok_or_else(|| refuse("no log index"))?;
    if log_index < 0 {
        return Err(refuse(format!("negative log index {log_index}")));
    }
    let kind = entry["kindVersion"]["kind"].as_str().unwrap_or_default();
    let version = entry["kindVersion"]["version"].as_str().unwrap_or_default();
    let v2 = version == "0.0.2" && matches!(kind, "hashedrekord" | "dsse");
    let proof = entry.get("inclusionProof").filter(|p| !p.is_null());
    if v2 {
        let body = rebuild_v2_body(kind, content, signer)?;
        let proof = proof.ok_or_else(|| {
            VerificationError::InclusionProof("a Rekor v2 entry without an inclusion proof proves nothing".into())
        })?;
        check_proof(log, proof, &body, true)?;
        return Ok(Some(LoggedEntry { log_index: log_index as u64, integrated_time: None }));
    }
    let body_b64 = entry["canonicalizedBody"].as_str().ok_or_else(|| refuse("no canonicalized body"))?;
    let body_bytes = crate::encoding::decode_b64(body_b64).ok_or_else(|| refuse("the body is not base64"))?;
    let body: Value = serde_json::from_slice(&body_bytes).map_err(|e| refuse(format!("the body is not JSON: {e}")))?;
    if (body["kind"].as_str(), body["apiVersion"].as_str()) != (Some(kind), Some(version)) {
        return Err(refuse("the body's kind and version are not the entry's"));
    }
    check_v1_body(&body, content, signer)?;
    let mut integrated_time = None;
    if let Some(set) = entry["inclusionPromise"].get("signedEntryTimestamp") {
        let set = b64(set, "signed entry timestamp")?;
        let time = number(&entry["integratedTime"]).filter(|t| *t > 0).ok_or_else(|| refuse("no integrated time"))?;
        check_promise(log, body_b64, time, log_index, &set)?;
        if time as u64 > crate::now() + 60 {
            return Err(refuse(format!("the integrated time {time} is in the future")));
        }
        if !log.valid.contains(time as u64) {
            return Err(VerificationError::Validity(format!(
                "the entry was integrated at {time}, outside its log's validity in the trusted root"
            )));
        }
        integrated_time = Some(time as u64);
    }
    match proof {
        Some(proof) => check_proof(log, proof, &body_bytes, false)?,
        None if require_proof => {
            return Err(VerificationError::InclusionProof(
                "the entry has none (bundles from v0.2 on must carry one)".into(),
            ));
        }
        None if integrated_time.is_none() => {
            return Err(refuse("neither a signed entry timestamp nor an inclusion proof"));
        }
        None => {}
    }
    Ok(Some(LoggedEntry { log_index: log_index as u64, integrated_time }))
}

/// A Rekor v1 promise as cosign's legacy format keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Promise<'a> {
    /// `Payload.logID`, hex.
    pub log_id_hex: &'a str,
    /// `Payload.body`, base64.
    pub body_b64: &'a str,
    /// `Payload.integratedTime`.
    pub integrated_time: i64,
    /// `Payload.logIndex`.
    pub log_index: i64,
    /// `SignedEntryTimestamp`, decoded.
    pub set: &'a [u8],
}

/// Verifies the Rekor v1 promise cosign's legacy format keeps in its `dev.sigstore.cosign/bundle`
/// annotation (`SignedEntryTimestamp` and `Payload {body, integratedTime, logIndex, logID}`) for
/// `content` signed by `signer`; returns the entry with its integrated time.
pub fn verify_promise(
    trust: &Trust,
    promise: &Promise<'_>,
    content: &SignedContent,
    signer: &Signer<'_>,
) -> Result<LoggedEntry, VerificationError> {
    let Promise { log_id_hex, body_b64, integrated_time, log_index, set } = *promise;
    let unknown = || VerificationError::UnknownLog;
    let key_id = crate::artifact::decode_hex(log_id_hex).ok_or_else(unknown)?;
    let log = trust.tlog(&key_id).ok_or_else(unknown)?;
    if log_index < 0 || integrated_time <= 0 {
        return Err(refuse("a negative log index or no integrated time"));
    }
    check_promise(log, body_b64, integrated_time, log_index, set)?;
    if !log.valid.contains(integrated_time as u64) {
        return Err(VerificationError::Validity(format!(
            "the entry was integrated at {integrated_time}, outside its log's validity"
        )));
    }
    let body: Value = B64
        .decode(body_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refuse("the logged body is not base64 JSON"))?;
    check_v1_body(&body, content, signer)?;
    Ok(LoggedEntry { log_index: log_index as u64, integrated_time: Some(integrated_time as u64) })
}
