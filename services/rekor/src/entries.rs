//! Entry types and Rekor's server-side canonicalisation: the stored body is what Rekor would
//! store (RFC 8785 JSON of the canonical form), never an echo of the request.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_fulcio::Verifier;

use crate::RekorError;

fn hex(bytes: &[u8]) -> String {
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

/// Canonicalises a proposed entry (`{"apiVersion","kind","spec"}`), verifying its signatures.
pub fn canonicalize(proposed: &Value) -> Result<Vec<u8>, RekorError> {
    let kind = str_at(proposed, &["kind"])?;
    let version = str_at(proposed, &["apiVersion"])?;
    let spec = proposed.get("spec").filter(|s| s.is_object()).ok_or_else(|| invalid("missing spec object"))?;
    let canonical = match (kind, version) {
        ("hashedrekord", "0.0.1") => hashedrekord(spec)?,
        ("dsse", "0.0.1") => dsse(spec)?,
        ("hashedrekord" | "dsse", other) => {
            return Err(RekorError::UnsupportedType(format!("{kind} version {other:?} (supported: 0.0.1)")));
        }
        (other, _) => {
            return Err(RekorError::UnsupportedType(format!("entry kind {other:?} (supported: hashedrekord, dsse)")));
        }
    };
    Ok(canonical_json(&canonical))
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
    verifier.key.verify_prehashed(&digest, &signature).map_err(|e| RekorError::Signature(e))?;
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
fn dsse(spec: &Value) -> Result<Value, RekorError> {
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
    Ok(json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, envelope_text.as_bytes()).as_ref())},
            "payloadHash": {"algorithm": "sha256", "value": hex(digest(&SHA256, &payload).as_ref())},
            "signatures": stored
        }
    }))
}
