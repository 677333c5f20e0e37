//! Verifying cosign-format signatures and attestations offline against the stack's trust: chain to
//! the trusted root, embedded SCT, SET over the log entry, the entry matching the signature,
//! identity, and the signature itself. Every refusal says which check failed.

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sigstack_fulcio::{SubjectKey, VerifiedLeaf, verify_embedded_sct, verify_leaf};

use crate::Trust;
use crate::cosign::{
    BUNDLE, CERTIFICATE, CHAIN, DSSE_ENVELOPE, IN_TOTO, SIGNATURE, SIMPLE_SIGNING, repository, tag_for,
};
use crate::oci::{Registry, hex, sha256};

/// Who must have signed: exact values or regular expressions, as cosign's
/// `--certificate-identity[-regexp]` and `--certificate-oidc-issuer[-regexp]`. A regular expression
/// matches anywhere in the value unless it anchors itself, exactly as cosign and sigstore-go use
/// Go's `regexp.MatchString` (the `regex` crate's syntax is RE2's).
#[derive(Debug, Clone, Default)]
pub struct IdentityPolicy {
    /// Exact SAN.
    pub identity: Option<String>,
    /// SAN regular expression.
    pub identity_regexp: Option<regex::Regex>,
    /// Exact OIDC issuer.
    pub issuer: Option<String>,
    /// OIDC issuer regular expression.
    pub issuer_regexp: Option<regex::Regex>,
}

impl IdentityPolicy {
    pub(crate) fn check(&self, leaf: &VerifiedLeaf) -> Result<(), String> {
        let san = leaf.san.join(", ");
        if let Some(identity) = &self.identity
            && !leaf.san.iter().any(|s| s == identity)
        {
            return Err(format!("subject mismatch: certificate identity is {san}, expected {identity}"));
        }
        if let Some(re) = &self.identity_regexp
            && !leaf.san.iter().any(|s| re.is_match(s))
        {
            return Err(format!("subject mismatch: certificate identity {san} does not match {re}"));
        }
        let issuer = leaf.issuer.as_deref().unwrap_or("");
        if let Some(expected) = &self.issuer
            && issuer != expected
        {
            return Err(format!("issuer mismatch: certificate issuer is {issuer}, expected {expected}"));
        }
        if let Some(re) = &self.issuer_regexp
            && !re.is_match(issuer)
        {
            return Err(format!("issuer mismatch: certificate issuer {issuer} does not match {re}"));
        }
        Ok(())
    }
}

/// Which checks run, and against what. The defaults are cosign's: certificate, SCT and log entry.
/// The switches are Kyverno's `rekor.ignoreTlog`, `ctlog.ignoreSCT` and static `keys` attestors.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Verify the log entry (SET with the log key; the entry holds this signature and key).
    pub tlog: bool,
    /// Verify the certificate's embedded SCT.
    pub sct: bool,
    /// A public key (DER SPKI) the signature must verify with, instead of a Fulcio certificate
    /// (cosign `sign --key`): then there is no chain, SCT or identity to check.
    pub public_key: Option<Vec<u8>>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks { tlog: true, sct: true, public_key: None }
    }
}

/// One verified signature or attestation.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The image digest it covers.
    pub digest: String,
    /// Certificate SANs (none for a key-signed one).
    pub sans: Vec<String>,
    /// OIDC issuer (empty for a key-signed one).
    pub issuer: String,
    /// The certificate's Sigstore extensions by arc number (empty for a key-signed one).
    pub extensions: std::collections::BTreeMap<u32, String>,
    /// Log index (None when the log was not checked).
    pub log_index: Option<u64>,
    /// When the log integrated it (None when the log was not checked).
    pub integrated_time: Option<i64>,
    /// For attestations: the statement.
    pub statement: Option<Value>,
}

impl Verified {
    /// The in-toto statement's predicate type, for attestations.
    pub fn predicate_type(&self) -> Option<&str> {
        self.statement.as_ref()?["predicateType"].as_str()
    }
}

struct LogEntry {
    log_index: u64,
    integrated_time: i64,
    body: Value,
}

struct Checked {
    key: SubjectKey,
    leaf: Option<VerifiedLeaf>,
    log: Option<LogEntry>,
}

impl Checked {
    fn verified(&self, digest: &str, statement: Option<Value>) -> Verified {
        Verified {
            digest: digest.to_string(),
            sans: self.leaf.as_ref().map(|l| l.san.clone()).unwrap_or_default(),
            issuer: self.leaf.as_ref().and_then(|l| l.issuer.clone()).unwrap_or_default(),
            extensions: self.leaf.as_ref().map(|l| l.extensions.clone()).unwrap_or_default(),
            log_index: self.log.as_ref().map(|l| l.log_index),
            integrated_time: self.log.as_ref().map(|l| l.integrated_time),
            statement,
        }
    }
}

/// The SET over the bundle's entry, with the log key; returns the logged entry.
fn check_log_bundle(trust: &Trust, annotations: &Value) -> Result<LogEntry, String> {
    let bundle = annotations[BUNDLE].as_str().ok_or_else(|| format!("missing annotation {BUNDLE}"))?;
    let bundle: Value = serde_json::from_str(bundle).map_err(|e| format!("bundle annotation: {e}"))?;
    let payload = &bundle["Payload"];
    let body_b64 = payload["body"].as_str().ok_or("bundle has no body")?;
    let integrated_time = payload["integratedTime"].as_i64().ok_or("bundle has no integratedTime")?;
    let log_index = payload["logIndex"].as_u64().ok_or("bundle has no logIndex")?;
    let log_id = payload["logID"].as_str().ok_or("bundle has no logID")?;
    if log_id != hex(&sha256(&trust.rekor_key)) {
        // cosign's words (pkg/cosign/verify.go), which Kyverno's messages carry.
        return Err("error verifying bundle: verifying bundle: rekor log public key not found for payload".into());
    }
    // The SET: ECDSA over the canonical {body, integratedTime, logID, logIndex}.
    let set_payload = format!(
        r#"{{"body":"{body_b64}","integratedTime":{integrated_time},"logID":"{log_id}","logIndex":{log_index}}}"#
    );
    let set = B64
        .decode(bundle["SignedEntryTimestamp"].as_str().ok_or("bundle has no SET")?)
        .map_err(|_| "SET is not base64")?;
    let rekor_key = SubjectKey::from_spki_der(&trust.rekor_key).map_err(|e| e.to_string())?;
    if !rekor_key.verify_proof(set_payload.as_bytes(), &set) {
        return Err("the signed entry timestamp does not verify with the log key".into());
    }
    let body: Value = serde_json::from_slice(&B64.decode(body_b64).map_err(|_| "body is not base64")?)
        .map_err(|e| format!("body: {e}"))?;
    Ok(LogEntry { log_index, integrated_time, body })
}

/// Checks the signer of one layer (certificate, chain, SCT and identity, or the static key) and
/// its log entry, as `checks` asks; returns the key the signature must verify with.
fn check_signer(
    trust: &Trust,
    annotations: &Value,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Checked, String> {
    let log = if checks.tlog { Some(check_log_bundle(trust, annotations)?) } else { None };
    // What the entry says signed it: a PEM certificate or PEM public key, base64 (cosign's hashedrekord
    // and intoto entries, and the dsse entry's verifier).
    let logged_signer = |log: &LogEntry| -> Result<Vec<u8>, String> {
        let spec = &log.body["spec"];
        let logged = spec["signature"]["publicKey"]["content"]
            .as_str()
            .or(spec["publicKey"].as_str())
            .or(spec["signatures"][0]["verifier"].as_str())
            .ok_or("the log entry names no key")?;
        let pem = pem::parse(B64.decode(logged).map_err(|_| "logged key is not base64")?)
            .map_err(|e| format!("logged key: {e}"))?;
        Ok(pem.into_contents())
    };
    if let Some(public_key) = &checks.public_key {
        let key = SubjectKey::from_spki_der(public_key).map_err(|e| format!("public key: {e}"))?;
        if let Some(log) = &log
            && logged_signer(log)? != *public_key
        {
            return Err("the log entry was made with another key".into());
        }
        return Ok(Checked { key, leaf: None, log });
    }
    let text = |key: &str| annotations[key].as_str().ok_or_else(|| format!("missing annotation {key}"));
    let leaf_der = pem::parse(text(CERTIFICATE)?).map_err(|e| format!("certificate: {e}"))?.into_contents();
    let chain: Vec<Vec<u8>> = match annotations[CHAIN].as_str() {
        Some(chain) => {
            pem::parse_many(chain).map_err(|e| format!("chain: {e}"))?.into_iter().map(|p| p.into_contents()).collect()
        }
        None => trust.ca_chain.clone(),
    };
    // The certificate must have been valid when the log saw the signature; without the log, now
    // (cosign's rule for --insecure-ignore-tlog).
    let at = match &log {
        Some(log) => log.integrated_time.max(0) as u64,
        None => sigstack_fulcio::now(),
    };
    let leaf = verify_leaf(&leaf_der, &chain, &trust.anchors, at).map_err(|e| e.to_string())?;
    if checks.sct {
        verify_embedded_sct(&leaf_der, chain.first().ok_or("empty chain")?, &trust.ctlog_key)
            .map_err(|e| e.to_string())?;
    }
    policy.check(&leaf)?;
    if let Some(log) = &log
        && logged_signer(log)? != leaf_der
    {
        return Err("the log entry was made with another certificate".into());
    }
    Ok(Checked { key: leaf.key.clone(), leaf: Some(leaf), log })
}

/// Why verification accepted nothing. The texts are cosign's (pkg/cosign/verify.go), which
/// Kyverno's messages embed, so a policy's denial reads the same from both.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The registry could not be asked (unreachable, refused, an error answer).
    #[error("{message}")]
    Registry {
        /// What failed, as the registry client said it.
        message: String,
        /// `host:port` of the registry.
        host: String,
        /// The connection was refused (nothing listens).
        refused: bool,
    },
    /// The image has no signatures (no `.sig` tag, or an empty one).
    #[error("no signatures found")]
    NoSignatures,
    /// Signatures exist, none verifies: why, one reason per signature.
    #[error("no matching signatures: {}", .0.join("\n "))]
    NoMatchingSignatures(Vec<String>),
    /// No attestation verifies (none exists when the list is empty): why, one per attestation.
    #[error("no matching attestations: {}", .0.join("\n "))]
    NoMatchingAttestations(Vec<String>),
}

impl VerifyError {
    /// A registry failure from the client's error (`host`: the registry's `host:port`).
    pub fn registry(error: anyhow::Error, host: &str) -> VerifyError {
        // The connection error sits deep in the client's error chain (oci-client → reqwest →
        // hyper → io::Error); its kind, not its text, says it was refused.
        let refused = error.chain().any(|cause| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause);
            while let Some(e) = source {
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
                source = e.source();
            }
            false
        });
        VerifyError::Registry { message: format!("{error:#}"), host: host.to_string(), refused }
    }
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
    let tagged = registry.tagged(&repository(&reference), &tag_for(&digest, suffix)).map_err(failed)?;
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
            let checked = check_signer(trust, annotations, policy, checks)?;
            let signature = B64
                .decode(annotations[SIGNATURE].as_str().ok_or("no signature")?)
                .map_err(|_| "signature is not base64")?;
            if !checked.key.verify_proof(&payload, &signature) {
                let whose = if checks.public_key.is_some() { "the key" } else { "the certificate's key" };
                return Err(format!("the signature does not verify over the payload with {whose}"));
            }
            if let Some(log) = &checked.log {
                let spec = &log.body["spec"];
                if spec["data"]["hash"]["value"].as_str() != Some(hex(&sha256(&payload)).as_str()) {
                    return Err("the log entry is for another payload".into());
                }
                if spec["signature"]["content"].as_str() != Some(B64.encode(&signature).as_str()) {
                    return Err("the log entry holds another signature".into());
                }
            }
            let claimed: Value = serde_json::from_slice(&payload).map_err(|e| format!("payload: {e}"))?;
            let signed_digest = claimed["critical"]["image"]["docker-manifest-digest"].as_str().unwrap_or("");
            if signed_digest != digest {
                return Err(format!("the signature is for {signed_digest}, not {digest}"));
            }
            Ok(checked.verified(&digest, None))
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
            if envelope["payloadType"] != IN_TOTO {
                return Err("the envelope is not an in-toto statement".into());
            }
            let statement_bytes =
                B64.decode(envelope["payload"].as_str().ok_or("no payload")?).map_err(|_| "payload is not base64")?;
            let statement: Value = serde_json::from_slice(&statement_bytes).map_err(|e| format!("statement: {e}"))?;
            let checked = check_signer(trust, &layer["annotations"], policy, checks)?;
            let message = sigstack_rekor::pae(IN_TOTO, &statement_bytes);
            let signatures = envelope["signatures"].as_array().ok_or("no signatures")?;
            let signature = signatures
                .iter()
                .filter_map(|s| s["sig"].as_str())
                .find(|s| B64.decode(s).is_ok_and(|raw| checked.key.verify_proof(&message, &raw)))
                .ok_or("no envelope signature verifies with the signer's key")?;
            if let Some(log) = &checked.log {
                let spec = &log.body["spec"];
                let payload_hash =
                    spec["payloadHash"]["value"].as_str().or(spec["content"]["payloadHash"]["value"].as_str());
                if payload_hash != Some(hex(&sha256(&statement_bytes)).as_str()) {
                    return Err("the log entry is for another statement".into());
                }
                if log.body["kind"] == "dsse"
                    && !spec["signatures"].as_array().into_iter().flatten().any(|s| s["signature"] == signature)
                {
                    return Err("the log entry holds another signature".into());
                }
            }
            let hex_digest = digest.trim_start_matches("sha256:");
            let covers =
                statement["subject"].as_array().into_iter().flatten().any(|s| s["digest"]["sha256"] == hex_digest);
            if !covers {
                return Err(format!("the statement's subject is not {digest}"));
            }
            Ok(checked.verified(&digest, Some(statement)))
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

/// Verifies the attestations of `image` and keeps those with `predicate_type` (cosign
/// `verify-attestation --type`).
pub async fn verify_attestation(
    registry: &Registry,
    trust: &Trust,
    image: &str,
    predicate_type: &str,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> anyhow::Result<Vec<Verified>> {
    let verified = verify_attestations(registry, trust, image, policy, checks).await?;
    let found: Vec<String> = verified.iter().filter_map(Verified::predicate_type).map(str::to_string).collect();
    let of_type: Vec<Verified> = verified.into_iter().filter(|v| v.predicate_type() == Some(predicate_type)).collect();
    if of_type.is_empty() {
        bail!("none of the attestations matched the predicate type: {predicate_type}, found: {}", found.join(","));
    }
    Ok(of_type)
}
