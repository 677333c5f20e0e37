//! What a signature is over, and whether that is the artifact: a message digest must be the
//! artifact's, a DSSE envelope must hold an in-toto statement whose subject is the artifact. Any
//! other payload binds to nothing, so it is refused for an artifact (issue 23's second forgery:
//! a `text/plain` envelope "verified" against any file).

use aws_lc_rs::digest::{SHA256, SHA384, SHA512, digest};
#[cfg(test)]
use base64::Engine;
#[cfg(test)]
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::VerificationError;

/// The in-toto DSSE payload type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// What a signature must be about: an artifact's bytes or its SHA-256 digest.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// The artifact itself.
    Bytes(Vec<u8>),
    /// Its SHA-256.
    Sha256(Vec<u8>),
}

impl Artifact {
    /// `sha256:<64 hex>` or a file's bytes.
    pub fn parse(file_or_digest: &str) -> Result<Artifact, VerificationError> {
        if let Some(hex_digest) = file_or_digest.strip_prefix("sha256:") {
            let bytes = decode_hex(hex_digest)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| VerificationError::Artifact("sha256: must be followed by 64 hex digits".into()))?;
            return Ok(Artifact::Sha256(bytes));
        }
        std::fs::read(file_or_digest)
            .map(Artifact::Bytes)
            .map_err(|e| VerificationError::Artifact(format!("read {file_or_digest}: {e}")))
    }

    /// Its SHA-256.
    pub fn sha256(&self) -> Vec<u8> {
        match self {
            Artifact::Bytes(bytes) => digest(&SHA256, bytes).as_ref().to_vec(),
            Artifact::Sha256(digest) => digest.clone(),
        }
    }

    /// Its digest with a bundle's `HashAlgorithm` name, when it can be had.
    fn digest_with(&self, algorithm: &str) -> Result<Vec<u8>, VerificationError> {
        let refuse = |m: String| VerificationError::Artifact(m);
        match (algorithm, self) {
            ("SHA2_256", _) => Ok(self.sha256()),
            ("SHA2_384", Artifact::Bytes(bytes)) => Ok(digest(&SHA384, bytes).as_ref().to_vec()),
            ("SHA2_512", Artifact::Bytes(bytes)) => Ok(digest(&SHA512, bytes).as_ref().to_vec()),
            ("SHA2_384" | "SHA2_512", Artifact::Sha256(_)) => {
                Err(refuse(format!("the bundle signs a {algorithm} digest; give the artifact, not its SHA-256")))
            }
            (other, _) => {
                Err(refuse(format!("message digest algorithm {other:?} is not SHA2_256, SHA2_384 or SHA2_512")))
            }
        }
    }
}

/// Lowercase or uppercase hex to bytes; `None` for anything else.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (0..text.len()).step_by(2).filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an in-toto statement names `sha256` (raw digest) among its subjects.
pub fn statement_covers(statement: &Value, sha256: &[u8]) -> bool {
    let wanted = hex(sha256);
    statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"]["sha256"].as_str() == Some(wanted.as_str()))
}

/// What a bundle signed, checked against the artifact.
#[derive(Debug, Clone)]
pub struct SignedContent {
    /// The signature.
    pub signature: Vec<u8>,
    /// The digest the signature is over: the message digest, or SHA-256 of the DSSE PAE.
    pub signed_digest: Vec<u8>,
    /// The signed message when it is known in full: the artifact's bytes, or the DSSE PAE.
    pub message: Option<Vec<u8>>,
    /// The DSSE envelope as the bundle holds it.
    pub envelope: Option<Value>,
    /// The DSSE payload.
    pub payload: Option<Vec<u8>>,
    /// The in-toto statement of a DSSE envelope.
    pub statement: Option<Value>,
}

fn b64_field(value: &Value, what: &str) -> Result<Vec<u8>, VerificationError> {
    let text = value.as_str().ok_or_else(|| VerificationError::Bundle(format!("no {what}")))?;
    crate::encoding::decode_b64(text).ok_or_else(|| VerificationError::Bundle(format!("the {what} is not base64")))
}

impl SignedContent {
    /// Reads a bundle's `messageSignature` or `dsseEnvelope` and binds it to `artifact`.
    pub fn of_bundle(bundle: &Value, artifact: &Artifact) -> Result<SignedContent, VerificationError> {
        if let Some(message) = bundle.get("messageSignature") {
            let signature = b64_field(&message["signature"], "signature")?;
            let algorithm = message["messageDigest"]["algorithm"].as_str().unwrap_or("SHA2_256");
            let digest = artifact.digest_with(algorithm)?;
            // The bundle's digest is a hint (sigstore-conformance message-digest-mismatch), but one
            // that disagrees with the artifact means the bundle is about something else.
            if let Some(hint) = message["messageDigest"].get("digest") {
                let hint = b64_field(hint, "message digest")?;
                if hint != digest {
                    return Err(VerificationError::Artifact(format!(
                        "the bundle signs digest {}, not the artifact's {}",
                        hex(&hint),
                        hex(&digest)
                    )));
                }
            }
            let message = match artifact {
                Artifact::Bytes(bytes) => Some(bytes.clone()),
                Artifact::Sha256(_) => None,
            };
            return Ok(SignedContent {
                signature,
                signed_digest: digest,
                message,
                envelope: None,
                payload: None,
                statement: None,
            });
        }
        let envelope = bundle.get("dsseEnvelope").ok_or_else(|| {
            VerificationError::Bundle("the bundle holds neither a message signature nor a DSSE envelope".into())
        })?;
        Self::of_envelope(envelope, artifact)
    }

    /// Reads a DSSE envelope (one signature, as a bundle holds it) and binds it to `artifact`.
    pub fn of_envelope(envelope: &Value, artifact: &Artifact) -> Result<SignedContent, VerificationError> {
        let payload_type = envelope["payloadType"]
            .as_str()
            .ok_or_else(|| VerificationError::Bundle("the envelope has no payloadType".into()))?;
        let payload = b64_field(&envelope["payload"], "DSSE payload")?;
        let signatures = envelope["signatures"]
            .as_array()
            .filter(|s| s.len() == 1)
            .ok_or_else(|| VerificationError::Bundle("a bundle's envelope carries exactly one signature".into()))?;
        let signature = b64_field(&signatures[0]["sig"], "DSSE signature")?;
        if payload_type != IN_TOTO {
            return Err(VerificationError::Artifact(format!(
                "a DSSE payload of type {payload_type:?} says nothing about an artifact; only in-toto statements \
                 ({IN_TOTO}) whose subject is the artifact are verified"
            )));
        }
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|e| VerificationError::Artifact(format!("the in-toto statement is not JSON: {e}")))?;
        let expected = artifact.sha256();
        if !statement_covers(&statement, &expected) {
            return Err(VerificationError::Artifact(format!(
                "the statement's subject is not sha256:{}",
                hex(&expected)
            )));
        }
        let pae = sigstack_rekor::pae(payload_type, &payload);
        Ok(SignedContent {
            signature,
            signed_digest: digest(&SHA256, &pae).as_ref().to_vec(),
            message: Some(pae),
            envelope: Some(envelope.clone()),
            payload: Some(payload),
            statement: Some(statement),
        })
    }

    /// Verifies the signature with `key`: over the whole message when known (any key kind),
    /// else over the digest (ECDSA and RSA).
    pub fn verify_signature(&self, key: &sigstack_fulcio::SubjectKey) -> Result<(), VerificationError> {
        let verified = match &self.message {
            Some(message) => key.verify_proof(message, &self.signature),
            None => key.verify_prehashed(&self.signed_digest, &self.signature).is_ok(),
        };
        if !verified {
            return Err(VerificationError::Signature("the signature does not verify with the signer's key".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(payload_type: &str, payload: &[u8]) -> Value {
        json!({"payloadType": payload_type, "payload": B64.encode(payload), "signatures": [{"sig": B64.encode(b"sig")}]})
    }

    #[test]
    fn a_payload_that_is_not_an_in_toto_statement_binds_to_no_artifact() {
        let refused =
            SignedContent::of_envelope(&envelope("text/plain", b"anything"), &Artifact::Bytes(b"file".to_vec()));
        assert!(matches!(refused, Err(VerificationError::Artifact(m)) if m.contains("text/plain")));
    }

    #[test]
    fn an_in_toto_statement_binds_only_to_its_subject() {
        let file = b"file".to_vec();
        let subject = hex(digest(&SHA256, &file).as_ref());
        let statement = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "f", "digest": {"sha256": subject}}]});
        let envelope = envelope(IN_TOTO, statement.to_string().as_bytes());
        assert!(SignedContent::of_envelope(&envelope, &Artifact::Bytes(file)).is_ok());
        let other = SignedContent::of_envelope(&envelope, &Artifact::Bytes(b"other".to_vec()));
        assert!(matches!(other, Err(VerificationError::Artifact(m)) if m.contains("subject")));
    }
}
