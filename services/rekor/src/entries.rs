//! Entry types and Rekor's server-side canonicalisation: the stored body is what Rekor would
//! store (RFC 8785 JSON of the canonical form), never an echo of the request.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_fulcio::Verifier;

use crate::RekorError;

/// Lower-case hex, as Rekor writes digests and log IDs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn invalid(message: impl Into<String>) -> RekorError {
    RekorError::InvalidEntry(message.into())
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, RekorError> {
    let mut current = value;
    for key in path {
        current = current.get(key).ok_or_else(|| invalid(format!("missing {}", path.join("."))))?;
    }
    current.as_str().ok_or_else(|| invalid(format!("{} must be a string", path.join("."))))
}

/// RFC 8785 canonical JSON. `serde_json` without `preserve_order` keeps object keys in a BTreeMap
/// (sorted by byte, which equals UTF-16 order for the ASCII keys of these types) and writes no
/// whitespace; the values here are strings of ASCII and integers, which JCS writes the same way.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The DSSE payload type of in-toto statements.
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A proposed entry after canonicalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The body the log stores and hashes.
    pub body: Vec<u8>,
    /// The in-toto statement of a `dsse` or `intoto` entry, which the body only hashes: what
    /// Rekor's attestation storage keeps, and where its index finds the subject digests.
    pub statement: Option<Vec<u8>>,
}

/// Canonicalises a proposed entry (`{"apiVersion","kind","spec"}`), verifying its signatures.
pub fn canonicalize(proposed: &Value) -> Result<Vec<u8>, RekorError> {
    Ok(canonicalize_entry(proposed)?.body)
}

/// The kinds of Rekor v1's API (`openapi.yaml`, v1.5.4): the others are refused by its schema.
const REKOR_KINDS: &[&str] =
    &["alpine", "cose", "dsse", "hashedrekord", "helm", "intoto", "jar", "rekord", "rfc3161", "rpm", "tuf"];

/// [`canonicalize`], keeping the in-toto statement of attestation entries.
pub fn canonicalize_entry(proposed: &Value) -> Result<Canonical, RekorError> {
    let kind = str_at(proposed, &["kind"])?;
    let version = str_at(proposed, &["apiVersion"])?;
    let spec = proposed.get("spec").filter(|s| s.is_object()).ok_or_else(|| invalid("missing spec object"))?;
    let (canonical, statement) = match (kind, version) {
        ("hashedrekord", "0.0.1") => (hashedrekord(spec)?, None),
        ("dsse", "0.0.1") => dsse(spec)?,
        ("intoto", "0.0.1") => intoto_v001(spec)?,
        ("intoto", "0.0.2") => intoto_v002(spec)?,
        ("hashedrekord" | "dsse", other) => {
            return Err(RekorError::UnsupportedType(format!("{kind} version {other:?} (supported: 0.0.1)")));
        }
        ("intoto", other) => {
            return Err(RekorError::UnsupportedType(format!("intoto version {other:?} (supported: 0.0.1, 0.0.2)")));
        }
        (other, _) if REKOR_KINDS.contains(&other) => {
            return Err(RekorError::UnsupportedType(format!(
                "entry kind {other:?} (supported: hashedrekord, dsse, intoto)"
            )));
        }
        (other, _) => return Err(RekorError::UnknownKind(other.to_string())),
    };
    Ok(Canonical { body: canonical_json(&canonical), statement })
}

fn in_toto_statement(payload_type: &str, payload: Vec<u8>) -> Option<Vec<u8>> {
    (payload_type == IN_TOTO).then_some(payload)
}

/// hashedrekord 0.0.1 (rekor pkg/types/hashedrekord/v0.0.1): verify the signature over the digest,
/// store the key re-encoded as canonical PEM.
fn hashedrekord(spec: &Value) -> Result<Value, RekorError> {
    let algorithm = str_at(spec, &["data", "hash", "algorithm"])?;
    let value = str_at(spec, &["data", "hash", "value"])?.to_ascii_lowercase();
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(invalid(format!("unsupported hash algorithm {other:?} (sha256, sha384, sha512)"))),
    };
    if value.len() != expected_len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!("data.hash.value must be {expected_len} hex digits for {algorithm}")));
    }
    let digest: Vec<u8> =
        (0..value.len()).step_by(2).map(|i| u8::from_str_radix(&value[i..i + 2], 16).unwrap_or(0)).collect();
    let signature =
        B64.decode(str_at(spec, &["signature", "content"])?).map_err(|_| invalid("signature.content is not base64"))?;
    let verifier = Verifier::parse(
        "signature.publicKey.content",
        str_at(spec, &["signature", "publicKey", "content"])?.as_bytes(),
    )?;
    verifier.key.verify_prehashed(&digest, &signature).map_err(RekorError::Signature)?;
    Ok(json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": algorithm, "value": value}},
            "signature": {"content": B64.encode(&signature), "publicKey": {"content": B64.encode(verifier.canonical_pem())}}
        }
    }))
}

/// DSSE pre-authentication encoding (DSSE v1 protocol).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// dsse 0.0.1 (rekor pkg/types/dsse/v0.0.1): every envelope signature must verify with one of the
/// verifiers; store envelope and payload hashes and the sorted `{signature, verifier}` pairs.
/// sigstore-python sends `"signatures": null, "envelopeHash": null, "payloadHash": null`: ignored,
/// the server derives them.
fn dsse(spec: &Value) -> Result<(Value, Option<Vec<u8>>), RekorError> {
    let envelope_text = str_at(spec, &["proposedContent", "envelope"])?;
    let envelope: Value = serde_json::from_str(envelope_text)
        .map_err(|e| invalid(format!("proposedContent.envelope is not JSON: {e}")))?;
    let payload_type = str_at(&envelope, &["payloadType"])?;
    let payload =
        B64.decode(str_at(&envelope, &["payload"])?).map_err(|_| invalid("envelope payload is not base64"))?;
    let verifiers = spec["proposedContent"]["verifiers"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("proposedContent.verifiers must be a non-empty array"))?
        .iter()
        .map(|v| Verifier::parse("proposedContent.verifiers[]", v.as_str().unwrap_or_default().as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let signatures = envelope["signatures"]
        .as_array()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("envelope.signatures must be a non-empty array"))?;
    let message = pae(payload_type, &payload);
    let mut stored = Vec::new();
    for (index, signature) in signatures.iter().enumerate() {
        let encoded = str_at(signature, &["sig"])?;
        let raw =
            B64.decode(encoded).map_err(|_| invalid(format!("envelope.signatures[{index}].sig is not base64")))?;
        let verifier = verifiers.iter().find(|v| v.key.verify_proof(&message, &raw)).ok_or_else(|| {
            RekorError::Signature(format!("envelope signature {index} does not verify with any verifier"))
        })?;
        stored.push(json!({"signature": encoded, "verifier": B64.encode(verifier.canonical_pem())}));
    }
    stored.sort_by(|a, b| a["signature"].as_str().cmp(&b["signature"].as_str()));
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, envelope_text.as_bytes()).as_ref())},
            "payloadHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, &payload).as_ref())},
            "signatures": stored
        }
    });
    Ok((body, in_toto_statement(payload_type, payload)))
}

/// A `{"algorithm": "sha256", "value": <64 hex>}` the client supplies (intoto 0.0.2's envelope hash).
fn client_sha256(value: &Value, field: &str) -> Result<Value, RekorError> {
    let algorithm = str_at(value, &["algorithm"]).map_err(|_| invalid(format!("{field}.algorithm is required")))?;
    let hex_value = str_at(value, &["value"]).map_err(|_| invalid(format!("{field}.value is required")))?;
    if algorithm != "sha256" || hex_value.len() != 64 || !hex_value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!("{field} must be sha256 with 64 hex digits")));
    }
    Ok(json!({"algorithm": "sha256", "value": hex_value}))
}

/// intoto 0.0.1 (rekor pkg/types/intoto/v0.0.1; cosign v2 `--rekor-entry-type intoto`): the envelope
/// as a string and one base64 PEM key; at least one envelope signature must verify with it. Stored:
/// envelope and payload hashes and the canonical key, not the envelope.
fn intoto_v001(spec: &Value) -> Result<(Value, Option<Vec<u8>>), RekorError> {
    let envelope_text = str_at(spec, &["content", "envelope"])?;
    let verifier = Verifier::parse("spec.publicKey", str_at(spec, &["publicKey"])?.as_bytes())?;
    let envelope: Value =
        serde_json::from_str(envelope_text).map_err(|e| invalid(format!("content.envelope is not JSON: {e}")))?;
    let payload_type = str_at(&envelope, &["payloadType"])?;
    let payload =
        B64.decode(str_at(&envelope, &["payload"])?).map_err(|_| invalid("envelope payload is not base64"))?;
    let message = pae(payload_type, &payload);
    let signatures = envelope["signatures"]
        .as_array()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("envelope.signatures must be a non-empty array"))?;
    let verified = signatures.iter().any(|signature| {
        signature["sig"]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
            .is_some_and(|raw| verifier.key.verify_proof(&message, &raw))
    });
    if !verified {
        return Err(RekorError::Signature("no envelope signature verifies with spec.publicKey".into()));
    }
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": hex(digest(&SHA256, envelope_text.as_bytes()).as_ref())},
                "payloadHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, &payload).as_ref())}
            },
            "publicKey": B64.encode(verifier.canonical_pem())
        }
    });
    Ok((body, in_toto_statement(payload_type, payload)))
}

/// intoto 0.0.2 (rekor pkg/types/intoto/v0.0.2; sigstore-js legacy mode). Its `bytes` fields are
/// base64 in JSON over values that are themselves base64: `payload` = b64(b64(statement)),
/// `sig` = b64(b64(signature)), `publicKey` = b64(PEM). Every signature must verify with one of
/// the keys. Rekor stores the client's envelope hash as given and derives the payload hash.
fn intoto_v002(spec: &Value) -> Result<(Value, Option<Vec<u8>>), RekorError> {
    let content = spec.get("content").ok_or_else(|| invalid("missing spec.content"))?;
    let envelope = content.get("envelope").ok_or_else(|| invalid("missing content.envelope"))?;
    let payload_type = str_at(envelope, &["payloadType"])?;
    let double = |field: &str, text: &str| -> Result<Vec<u8>, RekorError> {
        let inner = B64.decode(text).map_err(|_| invalid(format!("{field} is not base64")))?;
        B64.decode(inner.trim_ascii()).map_err(|_| invalid(format!("{field} does not hold base64 inside its base64")))
    };
    let payload = double("content.envelope.payload", str_at(envelope, &["payload"])?)?;
    let message = pae(payload_type, &payload);
    let signatures = envelope["signatures"]
        .as_array()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("envelope.signatures must be a non-empty array"))?;
    let mut stored = Vec::new();
    let keys = signatures
        .iter()
        .map(|s| {
            Verifier::parse("envelope.signatures[].publicKey", str_at(s, &["publicKey"])?.as_bytes())
                .map_err(RekorError::from)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (index, signature) in signatures.iter().enumerate() {
        let raw = double(&format!("envelope.signatures[{index}].sig"), str_at(signature, &["sig"])?)?;
        if !keys.iter().any(|key| key.key.verify_proof(&message, &raw)) {
            return Err(RekorError::Signature(format!("envelope signature {index} does not verify with any key")));
        }
        let mut item = json!({"publicKey": str_at(signature, &["publicKey"])?, "sig": str_at(signature, &["sig"])?});
        if let Some(keyid) = signature["keyid"].as_str().filter(|k| !k.is_empty()) {
            item["keyid"] = json!(keyid);
        }
        stored.push(item);
    }
    let hash = client_sha256(
        content.get("hash").ok_or_else(|| invalid("content.hash (the envelope digest) is required"))?,
        "content.hash",
    )?;
    let body = json!({
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {"payloadType": payload_type, "signatures": stored},
                "hash": hash,
                "payloadHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, &payload).as_ref())}
            }
        }
    });
    Ok((body, in_toto_statement(payload_type, payload)))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    struct Key(EcdsaKeyPair);

    impl Key {
        fn new() -> Self {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
            Key(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap())
        }
        /// PEM as Go and pyca write it (64 columns, LF): what Rekor stores.
        fn pem(&self) -> String {
            sigstack_wire::pem_lf("PUBLIC KEY", self.0.public_key().as_der().unwrap().as_ref())
        }
        fn sign(&self, message: &[u8]) -> String {
            B64.encode(self.0.sign(&SystemRandom::new(), message).unwrap().as_ref())
        }
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex(digest(&SHA256, bytes).as_ref())
    }

    #[test]
    fn hashedrekord_golden() {
        let key = Key::new();
        let signature = key.sign(b"artifact");
        // A CRLF PEM in the request is stored re-encoded with LF.
        let crlf_pem = key.pem().replace('\n', "\r\n");
        let request = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": sha256_hex(b"artifact").to_uppercase()}},
            "signature": {"content": signature, "publicKey": {"content": B64.encode(crlf_pem)}}}});
        let expected = format!(
            r#"{{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{{"data":{{"hash":{{"algorithm":"sha256","value":"{}"}}}},"signature":{{"content":"{}","publicKey":{{"content":"{}"}}}}}}}}"#,
            sha256_hex(b"artifact"),
            signature,
            B64.encode(key.pem())
        );
        assert_eq!(String::from_utf8(canonicalize(&request).unwrap()).unwrap(), expected);
    }

    fn envelope(key: &Key, payload: &[u8], extra_sig: Option<String>) -> String {
        let mut signatures = vec![json!({"keyid": "", "sig": key.sign(&pae("application/vnd.in-toto+json", payload))})];
        if let Some(sig) = extra_sig {
            signatures.push(json!({"keyid": "", "sig": sig}));
        }
        json!({"payload": B64.encode(payload), "payloadType": "application/vnd.in-toto+json", "signatures": signatures})
            .to_string()
    }

    #[test]
    fn dsse_golden_with_sigstore_pythons_explicit_nulls() {
        let key = Key::new();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let envelope = envelope(&key, payload, None);
        let sig =
            serde_json::from_str::<Value>(&envelope).unwrap()["signatures"][0]["sig"].as_str().unwrap().to_string();
        let request = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "proposedContent": {"envelope": envelope, "verifiers": [B64.encode(key.pem())]},
            "signatures": null, "envelopeHash": null, "payloadHash": null}});
        let expected = format!(
            r#"{{"apiVersion":"0.0.1","kind":"dsse","spec":{{"envelopeHash":{{"algorithm":"sha256","value":"{}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}},"signatures":[{{"signature":"{}","verifier":"{}"}}]}}}}"#,
            sha256_hex(envelope.as_bytes()),
            sha256_hex(payload),
            sig,
            B64.encode(key.pem())
        );
        assert_eq!(String::from_utf8(canonicalize(&request).unwrap()).unwrap(), expected);
        // A signature no verifier accepts is refused, naming the signature.
        let bad =
            super::tests::envelope(&key, payload, Some(B64.encode([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])));
        let request = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {"envelope": bad, "verifiers": [B64.encode(key.pem())]}}});
        assert!(canonicalize(&request).unwrap_err().to_string().contains("signature 1"));
    }

    #[test]
    fn intoto_v001_golden() {
        let key = Key::new();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
        let envelope = envelope(&key, payload, None);
        let request = json!({"apiVersion": "0.0.1", "kind": "intoto", "spec": {
            "content": {"envelope": envelope}, "publicKey": B64.encode(key.pem())}});
        let expected = format!(
            r#"{{"apiVersion":"0.0.1","kind":"intoto","spec":{{"content":{{"hash":{{"algorithm":"sha256","value":"{}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}}}},"publicKey":"{}"}}}}"#,
            sha256_hex(envelope.as_bytes()),
            sha256_hex(payload),
            B64.encode(key.pem())
        );
        assert_eq!(String::from_utf8(canonicalize(&request).unwrap()).unwrap(), expected);
    }

    #[test]
    fn intoto_v002_golden_with_double_base64() {
        let key = Key::new();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let sig = key.sign(&pae("application/vnd.in-toto+json", payload));
        let double_payload = B64.encode(B64.encode(payload));
        let double_sig = B64.encode(&sig);
        let public_key = B64.encode(key.pem());
        let envelope_hash = sha256_hex(b"whatever the client hashed");
        let request = json!({"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {
            "envelope": {"payloadType": "application/vnd.in-toto+json", "payload": double_payload,
                         "signatures": [{"sig": double_sig, "publicKey": public_key}]},
            "hash": {"algorithm": "sha256", "value": envelope_hash},
            "payloadHash": {"algorithm": "sha256", "value": "ignored: derived by the server"}}}});
        let expected = format!(
            r#"{{"apiVersion":"0.0.2","kind":"intoto","spec":{{"content":{{"envelope":{{"payloadType":"application/vnd.in-toto+json","signatures":[{{"publicKey":"{public_key}","sig":"{double_sig}"}}]}},"hash":{{"algorithm":"sha256","value":"{envelope_hash}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}}}}}}}}"#,
            sha256_hex(payload)
        );
        assert_eq!(String::from_utf8(canonicalize(&request).unwrap()).unwrap(), expected);
    }

    #[test]
    fn unknown_kinds_and_versions_name_what_is_supported() {
        let cases = [
            (json!({"apiVersion": "0.0.1", "kind": "rpm", "spec": {}}), "hashedrekord, dsse, intoto"),
            (json!({"apiVersion": "0.0.3", "kind": "intoto", "spec": {}}), "0.0.1, 0.0.2"),
            (json!({"apiVersion": "0.0.2", "kind": "dsse", "spec": {}}), "supported: 0.0.1"),
            (json!({"kind": "dsse", "spec": {}}), "apiVersion"),
            (json!({"apiVersion": "0.0.1", "kind": "dsse"}), "spec"),
        ];
        for (request, needle) in cases {
            let error = canonicalize(&request).unwrap_err().to_string();
            assert!(error.contains(needle), "{error} lacks {needle}");
        }
    }
}
