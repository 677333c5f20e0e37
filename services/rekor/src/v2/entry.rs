//! Rekor v2 entries: `CreateEntryRequest` as protojson, checked as rekor-tiles checks it, and
//! the canonical body the log stores (RFC 8785 JSON of the protojson `Entry`), byte for byte what
//! sigstore-go rebuilds from a bundle (`hashedrekord.ToEntryHash`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sigstack_fulcio::{KeyKind, SubjectKey};

use crate::{RekorError, canonical_json, pae};

/// `CreateEntryRequest`: one of the two request kinds. Field names in protojson's camelCase or
/// the proto's own snake_case, as the gRPC gateway accepts both; unknown fields are ignored, as
/// the gateway discards them.
#[derive(Debug, Deserialize)]
pub struct CreateEntryRequest {
    /// A signature over a digest.
    #[serde(rename = "hashedRekordRequestV002", alias = "hashed_rekord_request_v002")]
    pub hashed_rekord: Option<HashedRekordRequestV002>,
    /// A DSSE envelope (deprecated; refused unless the log is told to accept it).
    #[serde(rename = "dsseRequestV002", alias = "dsse_request_v002")]
    pub dsse: Option<DsseRequestV002>,
}

/// `HashedRekordRequestV002`.
#[derive(Debug, Deserialize)]
pub struct HashedRekordRequestV002 {
    /// Base64 digest of the artifact.
    #[serde(default)]
    pub digest: String,
    /// The signature and its verifier.
    pub signature: Option<Signature>,
}

/// `Signature` of the v2 types.
#[derive(Debug, Clone, Deserialize)]
pub struct Signature {
    /// Base64 signature bytes.
    #[serde(default)]
    pub content: String,
    /// The key or certificate that verifies it.
    pub verifier: Option<Verifier>,
}

/// `Verifier`: a public key or a certificate, and the algorithm.
#[derive(Debug, Clone, Deserialize)]
pub struct Verifier {
    /// DER SubjectPublicKeyInfo.
    #[serde(rename = "publicKey", alias = "public_key")]
    pub public_key: Option<RawBytes>,
    /// DER certificate.
    #[serde(rename = "x509Certificate", alias = "x509_certificate")]
    pub x509_certificate: Option<RawBytes>,
    /// A `PublicKeyDetails` enum name, e.g. `PKIX_ECDSA_P256_SHA_256`.
    #[serde(rename = "keyDetails", alias = "key_details", default)]
    pub key_details: String,
}

/// `{ "rawBytes": "<base64>" }`.
#[derive(Debug, Clone, Deserialize)]
pub struct RawBytes {
    /// Base64 bytes.
    #[serde(rename = "rawBytes", alias = "raw_bytes", default)]
    pub raw_bytes: String,
}

/// `DSSERequestV002`.
#[derive(Debug, Deserialize)]
pub struct DsseRequestV002 {
    /// The envelope.
    pub envelope: Option<Envelope>,
    /// One verifier per signing key.
    #[serde(default)]
    pub verifiers: Vec<Verifier>,
}

/// `io.intoto.Envelope` as protojson.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// Base64 payload.
    #[serde(default)]
    pub payload: String,
    /// Payload type.
    #[serde(rename = "payloadType", alias = "payload_type", default)]
    pub payload_type: String,
    /// Signatures.
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Deserialize)]
pub struct EnvelopeSignature {
    /// Base64 signature.
    #[serde(default)]
    pub sig: String,
}

/// A checked entry, ready for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryV2 {
    /// `hashedrekord` or `dsse`.
    pub kind: &'static str,
    /// The canonical body: what the log stores and hashes.
    pub body: Vec<u8>,
}

/// Accepts what protojson accepts for `bytes`: standard or URL-safe base64, padded or not.
fn proto_bytes(field: &str, text: &str) -> Result<Vec<u8>, RekorError> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| RekorError::InvalidEntry(format!("{field} is not base64")))
}

fn invalid(message: impl Into<String>) -> RekorError {
    RekorError::InvalidEntry(message.into())
}

/// The digest length a `keyDetails` value implies, as rekor-tiles' `GetAlgorithmDetails`;
/// `None` for algorithms a v2 log does not take (no prehash, or not a signing algorithm).
fn digest_length(key_details: &str) -> Option<usize> {
    Some(match key_details {
        "PKIX_ECDSA_P256_SHA_256"
        | "PKIX_RSA_PKCS1V15_2048_SHA256"
        | "PKIX_RSA_PKCS1V15_3072_SHA256"
        | "PKIX_RSA_PKCS1V15_4096_SHA256" => 32,
        "PKIX_ECDSA_P384_SHA_384" => 48,
        "PKIX_ECDSA_P521_SHA_512" | "PKIX_ED25519_PH" => 64,
        _ => return None,
    })
}

/// rekor-tiles' default algorithm registry: which key may sign with which hash.
fn allowed(kind: KeyKind, digest_length: usize) -> bool {
    matches!(
        (kind, digest_length),
        (KeyKind::P256, 32) | (KeyKind::P384, 48) | (KeyKind::P521, 64) | (KeyKind::Rsa, 32)
    )
}

struct CheckedVerifier {
    key: SubjectKey,
    /// The verifier as the body records it.
    json: Value,
    digest_length: usize,
}

fn check_verifier(verifier: Option<&Verifier>) -> Result<CheckedVerifier, RekorError> {
    let verifier = verifier.ok_or_else(|| invalid("missing verifier"))?;
    let (key, material) = match (&verifier.public_key, &verifier.x509_certificate) {
        (Some(key), None) => {
            let der = proto_bytes("verifier.publicKey.rawBytes", &key.raw_bytes)?;
            (SubjectKey::from_spki_der(&der)?, json!({"publicKey": {"rawBytes": STANDARD.encode(&der)}}))
        }
        (None, Some(cert)) => {
            let der = proto_bytes("verifier.x509Certificate.rawBytes", &cert.raw_bytes)?;
            let pem = sigstack_wire::pem_lf("CERTIFICATE", &der);
            let parsed = sigstack_fulcio::Verifier::parse("verifier.x509Certificate", pem.as_bytes())?;
            (parsed.key, json!({"x509Certificate": {"rawBytes": STANDARD.encode(&der)}}))
        }
        (Some(_), Some(_)) => return Err(invalid("verifier has both a public key and a certificate: send one")),
        (None, None) => return Err(invalid("verifier must contain either a public key or an X.509 certificate")),
    };
    if verifier.key_details.is_empty() {
        return Err(invalid("verifier.keyDetails is missing (e.g. PKIX_ECDSA_P256_SHA_256)"));
    }
    let digest_length = digest_length(&verifier.key_details).ok_or_else(|| {
        RekorError::UnsupportedType(format!(
            "keyDetails {}: a v2 log takes ECDSA P-256/P-384/P-521 with SHA-256/384/512 or RSA PKCS#1 v1.5 with SHA-256",
            verifier.key_details
        ))
    })?;
    if !allowed(key.kind(), digest_length) {
        return Err(RekorError::UnsupportedType(format!(
            "a {:?} key with keyDetails {} is not an allowed entry algorithm",
            key.kind(),
            verifier.key_details
        )));
    }
    let mut json = material;
    json["keyDetails"] = Value::String(verifier.key_details.clone());
    Ok(CheckedVerifier { key, json, digest_length })
}

/// Checks a `hashedRekordRequestV002` (digest length for the algorithm, signature over the
/// digest) and builds its canonical body.
pub(super) fn hashed_rekord(request: &HashedRekordRequestV002) -> Result<EntryV2, RekorError> {
    let signature = request.signature.as_ref().ok_or_else(|| invalid("missing signature"))?;
    if signature.content.is_empty() {
        return Err(invalid("missing signature"));
    }
    if request.digest.is_empty() {
        return Err(invalid("missing digest"));
    }
    let content = proto_bytes("signature.content", &signature.content)?;
    let digest = proto_bytes("digest", &request.digest)?;
    let verifier = check_verifier(signature.verifier.as_ref())?;
    if digest.len() != verifier.digest_length {
        return Err(invalid(format!(
            "digest length ({}) does not match expected size ({}) for {}",
            digest.len(),
            verifier.digest_length,
            verifier.json["keyDetails"].as_str().unwrap_or_default()
        )));
    }
    verifier.key.verify_prehashed(&digest, &content).map_err(RekorError::Signature)?;
    let algorithm = match verifier.digest_length {
        32 => "SHA2_256",
        48 => "SHA2_384",
        _ => "SHA2_512",
    };
    let entry = json!({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
        "data": {"algorithm": algorithm, "digest": STANDARD.encode(&digest)},
        "signature": {"content": STANDARD.encode(&content), "verifier": verifier.json}}}});
    Ok(EntryV2 { kind: "hashedrekord", body: canonical_json(&entry) })
}

/// Checks a deprecated `dsseRequestV002` as rekor-tiles v2.0–2.2 did (every envelope signature
/// verifies over the PAE with one of the verifiers) and builds its `dsse` 0.0.2 body: SHA-256 of
/// the payload, and the signatures sorted by their raw bytes.
pub(super) fn dsse(request: &DsseRequestV002) -> Result<EntryV2, RekorError> {
    let envelope = request.envelope.as_ref().ok_or_else(|| invalid("missing envelope"))?;
    if request.verifiers.is_empty() {
        return Err(invalid("missing verifiers"));
    }
    if envelope.signatures.is_empty() {
        return Err(invalid("envelope missing signatures"));
    }
    let payload = proto_bytes("envelope.payload", &envelope.payload)?;
    let message = pae(&envelope.payload_type, &payload);
    let verifiers =
        request.verifiers.iter().map(|v| check_verifier(Some(v))).collect::<Result<Vec<_>, RekorError>>()?;
    let mut signatures = Vec::new();
    for signature in &envelope.signatures {
        let raw = proto_bytes("envelope.signatures.sig", &signature.sig)?;
        if raw.is_empty() {
            return Err(invalid("envelope signature empty"));
        }
        let verifier = verifiers
            .iter()
            .find(|v| v.key.verify_proof(&message, &raw))
            .ok_or_else(|| RekorError::Signature("an envelope signature verifies with none of the verifiers".into()))?;
        signatures.push((raw, verifier.json.clone()));
    }
    signatures.sort_by(|a, b| a.0.cmp(&b.0));
    let payload_hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &payload);
    let entry = json!({"apiVersion": "0.0.2", "kind": "dsse", "spec": {"dsseV002": {
        "payloadHash": {"algorithm": "SHA2_256", "digest": STANDARD.encode(payload_hash.as_ref())},
        "signatures": signatures.into_iter()
            .map(|(raw, verifier)| json!({"content": STANDARD.encode(raw), "verifier": verifier}))
            .collect::<Vec<_>>()}}});
    Ok(EntryV2 { kind: "dsse", body: canonical_json(&entry) })
}

/// Parses and checks a `CreateEntryRequest`; `dsse` requests only when `accept_dsse`.
pub fn create_entry(body: &[u8], accept_dsse: bool) -> Result<EntryV2, RekorError> {
    let request: CreateEntryRequest =
        serde_json::from_slice(body).map_err(|e| invalid(format!("body is not a CreateEntryRequest: {e}")))?;
    match (&request.hashed_rekord, &request.dsse) {
        (Some(hashed), None) => hashed_rekord(hashed),
        (None, Some(dsse_request)) if accept_dsse => dsse(dsse_request),
        // rekor-tiles v2.3's answer; the compatibility option is for sigstore-js, which still sends DSSE.
        (None, Some(_)) => Err(RekorError::UnsupportedType(
            "invalid type, must be hashedrekord (this log refuses dsseRequestV002 as Rekor v2.3 does; \
             sign a hashedrekord over the DSSE PAE, or start the stack with --rekor-v2-dsse)"
                .into(),
        )),
        (Some(_), Some(_)) => Err(invalid("send one of hashedRekordRequestV002 and dsseRequestV002, not both")),
        (None, None) => Err(invalid("missing hashedRekordRequestV002")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn key() -> EcdsaKeyPair {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
    }

    fn request(key: &EcdsaKeyPair, artifact: &[u8]) -> Value {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, artifact);
        let signature = key.sign(&SystemRandom::new(), artifact).unwrap();
        let spki = key.public_key().as_der().unwrap();
        json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(digest.as_ref()),
            "signature": {"content": STANDARD.encode(signature.as_ref()),
                "verifier": {"publicKey": {"rawBytes": STANDARD.encode(spki.as_ref())},
                             "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
    }

    #[test]
    fn body_is_the_canonical_protojson_entry() {
        let key = key();
        let entry = create_entry(request(&key, b"hello").to_string().as_bytes(), false).unwrap();
        let text = String::from_utf8(entry.body).unwrap();
        assert!(text.starts_with(r#"{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":""#), "{text}");
        assert!(
            text.contains(r#""verifier":{"keyDetails":"PKIX_ECDSA_P256_SHA_256","publicKey":{"rawBytes":""#),
            "{text}"
        );
    }

    #[test]
    fn snake_case_and_unpadded_base64_are_protojson_too() {
        let key = key();
        let camel = request(&key, b"x");
        let text = camel
            .to_string()
            .replace("hashedRekordRequestV002", "hashed_rekord_request_v002")
            .replace("rawBytes", "raw_bytes")
            .replace("keyDetails", "key_details");
        let snake = create_entry(text.as_bytes(), false).unwrap();
        let mut camel_body = create_entry(camel.to_string().as_bytes(), false).unwrap().body;
        // ECDSA signatures differ per signing, but the structure must not.
        camel_body.truncate(60);
        assert_eq!(&snake.body[..60], camel_body.as_slice());
    }

    #[test]
    fn refusals_say_why() {
        let key = key();
        let mut wrong_length = request(&key, b"x");
        wrong_length["hashedRekordRequestV002"]["digest"] = json!(STANDARD.encode([0u8; 48]));
        let err = create_entry(wrong_length.to_string().as_bytes(), false).unwrap_err().to_string();
        assert!(err.contains("digest length (48) does not match expected size (32)"), "{err}");

        let mut wrong_signature = request(&key, b"x");
        wrong_signature["hashedRekordRequestV002"]["digest"] = json!(STANDARD.encode([7u8; 32]));
        assert!(matches!(create_entry(wrong_signature.to_string().as_bytes(), false), Err(RekorError::Signature(_))));

        let mut pure_ed25519 = request(&key, b"x");
        pure_ed25519["hashedRekordRequestV002"]["signature"]["verifier"]["keyDetails"] = json!("PKIX_ED25519");
        assert!(matches!(
            create_entry(pure_ed25519.to_string().as_bytes(), false),
            Err(RekorError::UnsupportedType(_))
        ));

        let dsse = json!({"dsseRequestV002": {"envelope": {}, "verifiers": []}});
        let err = create_entry(dsse.to_string().as_bytes(), false).unwrap_err().to_string();
        assert!(err.contains("must be hashedrekord"), "{err}");
        for bad in ["", "[]", "{}", r#"{"hashedRekordRequestV002":{"digest":"!!"}}"#] {
            assert!(matches!(create_entry(bad.as_bytes(), false), Err(RekorError::InvalidEntry(_))), "{bad}");
        }
    }

    #[test]
    fn dsse_entries_behind_the_option() {
        let key = key();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let signature = key.sign(&SystemRandom::new(), &pae("application/vnd.in-toto+json", payload)).unwrap();
        let spki = key.public_key().as_der().unwrap();
        let request = json!({"dsseRequestV002": {
            "envelope": {"payload": STANDARD.encode(payload), "payloadType": "application/vnd.in-toto+json",
                         "signatures": [{"sig": STANDARD.encode(signature.as_ref()), "keyid": ""}]},
            "verifiers": [{"publicKey": {"rawBytes": STANDARD.encode(spki.as_ref())}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}]}});
        let entry = create_entry(request.to_string().as_bytes(), true).unwrap();
        assert_eq!(entry.kind, "dsse");
        let text = String::from_utf8(entry.body).unwrap();
        assert!(text.contains(r#""kind":"dsse","spec":{"dsseV002":{"payloadHash":{"algorithm":"SHA2_256""#), "{text}");
    }
}
