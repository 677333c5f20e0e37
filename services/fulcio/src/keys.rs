//! Subject public keys: parsing what clients send, proof of possession, CSR self-signatures.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::asn1::UintRef;
use der::{Decode, Encode, Reader, SliceReader};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::request::CertReq;

use crate::{FulcioError, oid};

/// The kinds of public key the CA certifies and the logs accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// ECDSA on NIST P-521.
    P521,
    /// RSA, 2048 to 4096 bits.
    Rsa,
    /// Ed25519.
    Ed25519,
}

/// A public key the CA will certify: ECDSA P-256/P-384/P-521, RSA 2048–4096 (e = 65537) or Ed25519.
#[derive(Debug, Clone)]
pub struct SubjectKey {
    spki_der: Vec<u8>,
    kind: KeyKind,
    /// The subjectPublicKey BIT STRING contents: EC point, PKCS#1 RSAPublicKey, or Ed25519 key.
    key_bits: Vec<u8>,
}

impl SubjectKey {
    /// Parses a DER SubjectPublicKeyInfo and checks the key type and size.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, FulcioError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| FulcioError::InvalidRequest(format!("public key is not a DER SubjectPublicKeyInfo: {e}")))?;
        let key_bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| FulcioError::InvalidRequest("public key bit string has unused bits".into()))?
            .to_vec();
        let kind = match spki.algorithm.oid {
            oid::EC_PUBLIC_KEY => match spki.algorithm.parameters_oid() {
                Ok(oid::P256) => KeyKind::P256,
                Ok(oid::P384) => KeyKind::P384,
                Ok(oid::P521) => KeyKind::P521,
                Ok(curve) => {
                    return Err(FulcioError::UnsupportedKey(format!(
                        "elliptic curve {curve} (use P-256, P-384 or P-521)"
                    )));
                }
                Err(_) => return Err(FulcioError::UnsupportedKey("EC key without a named curve".into())),
            },
            oid::RSA_ENCRYPTION => {
                check_rsa(&key_bits)?;
                KeyKind::Rsa
            }
            oid::ED25519 => {
                if key_bits.len() != 32 {
                    return Err(FulcioError::InvalidRequest("Ed25519 public key must be 32 bytes".into()));
                }
                KeyKind::Ed25519
            }
            other => {
                return Err(FulcioError::UnsupportedKey(format!(
                    "key algorithm {other} (use ECDSA P-256/P-384/P-521, RSA 2048-4096 or Ed25519)"
                )));
            }
        };
        // Canonical re-encoding: the certificate carries exactly what was parsed.
        let spki_der = spki.to_der().map_err(|e| FulcioError::InvalidRequest(format!("public key: {e}")))?;
        Ok(SubjectKey { spki_der, kind, key_bits })
    }

    /// Parses a key as clients send it: PEM, base64 of PEM (Fulcio v1 `bytes` fields) or base64 DER.
    pub fn from_client_encoding(field: &str, content: &[u8]) -> Result<Self, FulcioError> {
        Self::from_spki_der(&decode_pem_or_der(field, content, "PUBLIC KEY")?)
    }

    /// The key's DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// What kind of key it is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub(crate) fn key_bits(&self) -> &[u8] {
        &self.key_bits
    }

    /// Verifies a proof of possession: `signature` over `message` with the key's default scheme
    /// (ECDSA with the curve's hash, RSA PKCS#1 v1.5 or PSS with SHA-256, pure Ed25519), as Fulcio does.
    pub fn verify_proof(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithms: &[&'static dyn VerificationAlgorithm] = match self.kind {
            KeyKind::P256 => &[&signature::ECDSA_P256_SHA256_ASN1],
            KeyKind::P384 => &[&signature::ECDSA_P384_SHA384_ASN1],
            KeyKind::P521 => &[&signature::ECDSA_P521_SHA512_ASN1],
            KeyKind::Rsa => &[&signature::RSA_PKCS1_2048_8192_SHA256, &signature::RSA_PSS_2048_8192_SHA256],
            KeyKind::Ed25519 => &[&signature::ED25519],
        };
        algorithms.iter().any(|alg| UnparsedPublicKey::new(*alg, &self.key_bits).verify(message, signature).is_ok())
    }

    /// Verifies `signature` over `message` with the algorithm named by `signature_oid` (X.509 and
    /// PKCS#10 signatures).
    pub fn verify_signature_with(
        &self,
        signature_oid: der::asn1::ObjectIdentifier,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let alg: &'static dyn VerificationAlgorithm = match (self.kind, signature_oid) {
            (KeyKind::P256, oid::ECDSA_WITH_SHA256) => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyKind::P256, oid::ECDSA_WITH_SHA384) => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyKind::P384, oid::ECDSA_WITH_SHA256) => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyKind::P384, oid::ECDSA_WITH_SHA384) => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyKind::P521, oid::ECDSA_WITH_SHA512) => &signature::ECDSA_P521_SHA512_ASN1,
            (KeyKind::Rsa, oid::SHA256_WITH_RSA) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, oid::SHA384_WITH_RSA) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa, oid::SHA512_WITH_RSA) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::Rsa, oid::RSA_PSS) => &signature::RSA_PSS_2048_8192_SHA256,
            (KeyKind::Ed25519, oid::ED25519) => &signature::ED25519,
            (kind, other) => return Err(format!("signature algorithm {other} does not fit a {kind:?} key")),
        };
        UnparsedPublicKey::new(alg, &self.key_bits).verify(message, signature).map_err(|_| {
            format!("the signature ({signature_oid}) does not verify with the {kind:?} key", kind = self.kind)
        })
    }
}

/// RSA keys: 2048–4096 bits, public exponent 65537 (Fulcio's accepted range).
fn check_rsa(pkcs1: &[u8]) -> Result<(), FulcioError> {
    let parse = || -> der::Result<(usize, Vec<u8>)> {
        let mut reader = SliceReader::new(pkcs1)?;
        reader.sequence(|seq| {
            let modulus = UintRef::decode(seq)?;
            let exponent = UintRef::decode(seq)?;
            let bytes = modulus.as_bytes();
            let bits = bytes.len() * 8 - bytes.first().map_or(0, |b| b.leading_zeros() as usize);
            Ok((bits, exponent.as_bytes().to_vec()))
        })
    };
    let (bits, exponent) = parse().map_err(|e| FulcioError::InvalidRequest(format!("RSA public key: {e}")))?;
    if !(2048..=4096).contains(&bits) {
        return Err(FulcioError::UnsupportedKey(format!("RSA key of {bits} bits (use 2048 to 4096)")));
    }
    if exponent != [0x01, 0x00, 0x01] {
        return Err(FulcioError::UnsupportedKey("RSA public exponent must be 65537".into()));
    }
    Ok(())
}

/// Decodes key or CSR material in any of the encodings clients use: PEM text, base64 of PEM
/// (sigstore-python double-encodes its CSR), or base64 of DER.
pub(crate) fn decode_pem_or_der(field: &str, content: &[u8], label_hint: &str) -> Result<Vec<u8>, FulcioError> {
    let text = content.trim_ascii();
    if text.starts_with(b"-----BEGIN") {
        return pem::parse(text)
            .map(|p| p.into_contents())
            .map_err(|e| FulcioError::InvalidRequest(format!("{field}: invalid PEM: {e}")));
    }
    let decoded = B64.decode(text).map_err(|_| {
        FulcioError::InvalidRequest(format!(
            "{field}: neither PEM nor base64 (expected a {label_hint} in PEM or base64 DER)"
        ))
    })?;
    if decoded.trim_ascii_start().starts_with(b"-----BEGIN") {
        return pem::parse(decoded.trim_ascii())
            .map(|p| p.into_contents())
            .map_err(|e| FulcioError::InvalidRequest(format!("{field}: invalid PEM inside base64: {e}")));
    }
    Ok(decoded)
}

/// Parses a PKCS#10 CSR (PEM, base64 PEM or base64 DER), verifies its self-signature, and returns
/// its public key. Fulcio uses nothing else from a CSR.
pub fn verify_csr(field: &str, content: &[u8]) -> Result<SubjectKey, FulcioError> {
    let der = decode_pem_or_der(field, content, "CERTIFICATE REQUEST")?;
    let request =
        CertReq::from_der(&der).map_err(|e| FulcioError::InvalidCsr(format!("not a PKCS#10 request: {e}")))?;
    let spki = request.info.public_key.to_der().map_err(|e| FulcioError::InvalidCsr(e.to_string()))?;
    let key = SubjectKey::from_spki_der(&spki)?;
    let info = request.info.to_der().map_err(|e| FulcioError::InvalidCsr(e.to_string()))?;
    let signature =
        request.signature.as_bytes().ok_or_else(|| FulcioError::InvalidCsr("signature has unused bits".into()))?;
    key.verify_signature_with(request.algorithm.oid, &info, signature).map_err(|e| {
        FulcioError::InvalidCsr(format!("the self-signature does not verify with the CSR's public key: {e}"))
    })?;
    Ok(key)
}

/// A verification key as a transparency log receives it: a PEM certificate (keyless) or PEM
/// public key, possibly base64-wrapped. Keeps the certificate so the log can re-encode it.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The public key.
    pub key: SubjectKey,
    /// The certificate it came from, DER, if it came from one.
    pub certificate_der: Option<Vec<u8>>,
}

impl Verifier {
    /// Parses PEM (or base64 of PEM) holding a `CERTIFICATE` or a `PUBLIC KEY`.
    pub fn parse(field: &str, content: &[u8]) -> Result<Self, FulcioError> {
        let text = content.trim_ascii();
        let pem_text = if text.starts_with(b"-----BEGIN") {
            text.to_vec()
        } else {
            B64.decode(text)
                .map_err(|_| FulcioError::InvalidRequest(format!("{field}: neither PEM nor base64 of PEM")))?
        };
        let block = pem::parse(pem_text.trim_ascii())
            .map_err(|e| FulcioError::InvalidRequest(format!("{field}: invalid PEM: {e}")))?;
        match block.tag() {
            "CERTIFICATE" => {
                let cert = x509_cert::Certificate::from_der(block.contents())
                    .map_err(|e| FulcioError::InvalidRequest(format!("{field}: invalid certificate: {e}")))?;
                let spki = cert
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(|e| FulcioError::InvalidRequest(format!("{field}: {e}")))?;
                Ok(Verifier {
                    key: SubjectKey::from_spki_der(&spki)?,
                    certificate_der: Some(block.contents().to_vec()),
                })
            }
            "PUBLIC KEY" => Ok(Verifier { key: SubjectKey::from_spki_der(block.contents())?, certificate_der: None }),
            other => Err(FulcioError::InvalidRequest(format!(
                "{field}: PEM block {other:?} is neither CERTIFICATE nor PUBLIC KEY"
            ))),
        }
    }

    /// The identities a certificate names in its SAN (emails and URIs), for Rekor's search index.
    pub fn subjects(&self) -> Vec<String> {
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::ext::pkix::name::GeneralName;
        let Some(der) = &self.certificate_der else { return Vec::new() };
        let Ok(cert) = x509_cert::Certificate::from_der(der) else { return Vec::new() };
        let mut subjects = Vec::new();
        for extension in cert.tbs_certificate.extensions.iter().flatten() {
            if extension.extn_id != crate::oid::SUBJECT_ALT_NAME {
                continue;
            }
            let Ok(san) = SubjectAltName::from_der(extension.extn_value.as_bytes()) else { continue };
            for name in san.0 {
                match name {
                    GeneralName::Rfc822Name(email) => subjects.push(email.to_string()),
                    GeneralName::UniformResourceIdentifier(uri) => subjects.push(uri.to_string()),
                    _ => {}
                }
            }
        }
        subjects
    }

    /// The canonical PEM (64-column base64, LF) Rekor stores: what Go's and pyca's encoders write.
    pub fn canonical_pem(&self) -> String {
        let (label, der) = match &self.certificate_der {
            Some(der) => ("CERTIFICATE", der.as_slice()),
            None => ("PUBLIC KEY", self.key.spki_der()),
        };
        sigstack_wire::pem_lf(label, der)
    }
}

impl SubjectKey {
    /// Verifies `signature` over an already-computed SHA-256/384/512 `digest` (hashedrekord).
    pub fn verify_prehashed(&self, digest: &[u8], signature: &[u8]) -> Result<(), String> {
        use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
        let algorithm = match digest.len() {
            32 => &SHA256,
            48 => &SHA384,
            64 => &SHA512,
            n => return Err(format!("a {n}-byte digest is not SHA-256, SHA-384 or SHA-512")),
        };
        let size = digest.len();
        let digest = Digest::import_less_safe(digest, algorithm).map_err(|_| "invalid digest".to_string())?;
        let candidates: Vec<&'static dyn VerificationAlgorithm> = match (self.kind, size) {
            (KeyKind::P256, 32) => vec![&signature::ECDSA_P256_SHA256_ASN1],
            (KeyKind::P256, 48) => vec![&signature::ECDSA_P256_SHA384_ASN1],
            (KeyKind::P384, 32) => vec![&signature::ECDSA_P384_SHA256_ASN1],
            (KeyKind::P384, 48) => vec![&signature::ECDSA_P384_SHA384_ASN1],
            (KeyKind::P521, 64) => vec![&signature::ECDSA_P521_SHA512_ASN1],
            (KeyKind::Rsa, 32) => vec![&signature::RSA_PKCS1_2048_8192_SHA256, &signature::RSA_PSS_2048_8192_SHA256],
            (KeyKind::Rsa, 48) => vec![&signature::RSA_PKCS1_2048_8192_SHA384],
            (KeyKind::Rsa, 64) => vec![&signature::RSA_PKCS1_2048_8192_SHA512],
            (kind, _) => {
                return Err(format!(
                    "a {kind:?} key cannot verify a signature over a pre-computed digest of this size"
                ));
            }
        };
        if candidates
            .iter()
            .any(|alg| UnparsedPublicKey::new(*alg, &self.key_bits).verify_digest(&digest, signature).is_ok())
        {
            Ok(())
        } else {
            Err("signature does not verify over the digest with the given key".into())
        }
    }
}
