//! Verifying what this CA (or real Fulcio) issues, for sigstack's own `verify` commands and the
//! admission controller: chain to a trusted root, the embedded SCT against a CT key, and the
//! identity (SAN and OIDC issuer extensions).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use der::asn1::OctetString;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::keys::SubjectKey;
use crate::{oid, sct::precert_signed_data};

/// Why a certificate was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// Not DER X.509.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// No trusted CA signed it.
    #[error("certificate does not chain to the trusted root: {0}")]
    Chain(String),
    /// Outside its validity at the time of signing.
    #[error("certificate was not valid at {0} (unix seconds)")]
    Expired(u64),
    /// Missing or invalid embedded SCT.
    #[error("SCT: {0}")]
    Sct(String),
}

/// A verified leaf: its key and identity.
#[derive(Debug, Clone)]
pub struct VerifiedLeaf {
    /// The subject public key.
    pub key: SubjectKey,
    /// SAN values (URIs and emails).
    pub san: Vec<String>,
    /// OIDC issuer (1.3.6.1.4.1.57264.1.8, else the legacy .1.1).
    pub issuer: Option<String>,
    /// notBefore, notAfter (unix seconds).
    pub validity: (u64, u64),
    /// Sigstore extensions (`1.3.6.1.4.1.57264.1.N`) by N, as text: .1–.7 hold raw bytes, .8 on a
    /// DER UTF8String (fulcio pkg/certificate/extensions.go).
    pub extensions: std::collections::BTreeMap<u32, String>,
}

fn unix(time: &x509_cert::time::Time) -> u64 {
    time.to_unix_duration().as_secs()
}

fn parse(der: &[u8]) -> Result<Certificate, CertificateError> {
    Certificate::from_der(der).map_err(|e| CertificateError::Malformed(e.to_string()))
}

fn spki_der(cert: &Certificate) -> Result<Vec<u8>, CertificateError> {
    cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| CertificateError::Malformed(e.to_string()))
}

/// Checks `child` is signed by `issuer`'s key.
fn signed_by(child: &Certificate, issuer: &Certificate) -> Result<(), CertificateError> {
    let key = SubjectKey::from_spki_der(&spki_der(issuer)?).map_err(|e| CertificateError::Chain(e.to_string()))?;
    let tbs = child.tbs_certificate.to_der().map_err(|e| CertificateError::Malformed(e.to_string()))?;
    let signature = child.signature.as_bytes().ok_or_else(|| CertificateError::Malformed("signature bits".into()))?;
    key.verify_signature_with(child.signature_algorithm.oid, &tbs, signature).map_err(CertificateError::Chain)
}

fn check_ca_validity(ca: &Certificate, at: u64) -> Result<(), CertificateError> {
    let (from, to) = (unix(&ca.tbs_certificate.validity.not_before), unix(&ca.tbs_certificate.validity.not_after));
    if at < from || at > to {
        return Err(CertificateError::Chain("a CA certificate was not valid at signing time".into()));
    }
    Ok(())
}

/// Verifies that `leaf_der` chains, through the certificates of `chain_der` (issuer first) as far
/// as needed, to one of `anchors_der`, and was valid at `at` (unix seconds); returns its key and
/// identity.
///
/// Any anchor ends the chain, whether a root or an intermediate, as in the certificate pool Go's
/// x509 builds for cosign and Kyverno (a Kyverno `roots` bundle, or every CA of a trusted root):
/// one pass over the pool, with no candidate tried and failed one at a time.
pub fn verify_leaf(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    at: u64,
) -> Result<VerifiedLeaf, CertificateError> {
    let leaf = parse(leaf_der)?;
    let chain = chain_der.iter().map(|der| parse(der)).collect::<Result<Vec<_>, _>>()?;
    let anchors = anchors_der.iter().map(|der| parse(der)).collect::<Result<Vec<_>, _>>()?;
    if anchors.is_empty() {
        return Err(CertificateError::Chain("no trusted CA certificates".into()));
    }
    let mut child = &leaf;
    let mut above = chain.iter();
    loop {
        // Names can repeat across trust domains (every sigstack stack names its CA alike): an
        // anchor counts only if its key signed the child.
        let issued_by = |ca: &&Certificate| {
            ca.tbs_certificate.subject == child.tbs_certificate.issuer && signed_by(child, ca).is_ok()
        };
        if let Some(anchor) = anchors.iter().find(issued_by) {
            check_ca_validity(anchor, at)?;
            break;
        }
        let Some(issuer) = above.next() else {
            return Err(CertificateError::Chain(
                "the chain does not end in a trusted CA certificate (issued by another CA)".into(),
            ));
        };
        signed_by(child, issuer)?;
        check_ca_validity(issuer, at)?;
        child = issuer;
    }
    let validity = (unix(&leaf.tbs_certificate.validity.not_before), unix(&leaf.tbs_certificate.validity.not_after));
    if at < validity.0 || at > validity.1 {
        return Err(CertificateError::Expired(at));
    }
    let key = SubjectKey::from_spki_der(&spki_der(&leaf)?).map_err(|e| CertificateError::Malformed(e.to_string()))?;
    let mut san = Vec::new();
    let mut extensions = std::collections::BTreeMap::new();
    for extension in leaf.tbs_certificate.extensions.iter().flatten() {
        let value = extension.extn_value.as_bytes();
        if extension.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17") {
            let names = SubjectAltName::from_der(value).map_err(|e| CertificateError::Malformed(e.to_string()))?;
            for name in names.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(uri) => san.push(uri.to_string()),
                    GeneralName::Rfc822Name(email) => san.push(email.to_string()),
                    _ => {}
                }
            }
        } else if let Some(n) = oid::sigstore_number(&extension.extn_id) {
            let text = if n <= 7 {
                String::from_utf8(value.to_vec()).ok()
            } else {
                der::asn1::Utf8StringRef::from_der(value).ok().map(|s| s.as_str().to_string())
            };
            if let Some(text) = text {
                extensions.insert(n, text);
            }
        }
    }
    let issuer = extensions.get(&8).or(extensions.get(&1)).cloned();
    Ok(VerifiedLeaf { key, san, issuer, validity, extensions })
}

/// Verifies the leaf's one embedded SCT with the CT log key (`ctlog_spki_der`), rebuilding the
/// RFC 6962 precert entry (the TBS without the SCT extension; issuer key hash of `issuer_der`).
pub fn verify_embedded_sct(leaf_der: &[u8], issuer_der: &[u8], ctlog_spki_der: &[u8]) -> Result<(), CertificateError> {
    let sct = |m: &str| CertificateError::Sct(m.to_string());
    let mut leaf = parse(leaf_der)?;
    let issuer = parse(issuer_der)?;
    let extensions =
        leaf.tbs_certificate.extensions.as_mut().ok_or_else(|| sct("the certificate has no extensions"))?;
    let position = extensions.iter().position(|e| e.extn_id == oid::SCT_LIST).ok_or_else(|| sct("no embedded SCT"))?;
    let list = extensions.remove(position);
    let list = OctetString::from_der(list.extn_value.as_bytes()).map_err(|e| sct(&e.to_string()))?;
    let list = list.as_bytes();
    if list.len() < 4 {
        return Err(sct("truncated SCT list"));
    }
    let sct_len = u16::from_be_bytes([list[2], list[3]]) as usize;
    let item = list.get(4..4 + sct_len).ok_or_else(|| sct("truncated SCT"))?;
    if item.len() < 47 || item[0] != 0 {
        return Err(sct("not a v1 SCT"));
    }
    let log_id = &item[1..33];
    let timestamp = u64::from_be_bytes(item[33..41].try_into().map_err(|_| sct("timestamp"))?);
    let extensions_len = u16::from_be_bytes([item[41], item[42]]) as usize;
    let rest = item.get(43 + extensions_len..).ok_or_else(|| sct("truncated SCT"))?;
    if rest.len() < 4 || (rest[0], rest[1]) != (4, 3) {
        return Err(sct("only ECDSA-SHA256 SCTs are supported"));
    }
    let signature_len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
    let signature = rest.get(4..4 + signature_len).ok_or_else(|| sct("truncated SCT signature"))?;
    if log_id != digest(&SHA256, ctlog_spki_der).as_ref() {
        return Err(sct("the SCT is from a CT log that is not trusted"));
    }
    let tbs = leaf.tbs_certificate.to_der().map_err(|e| sct(&e.to_string()))?;
    let mut issuer_key_hash = [0u8; 32];
    issuer_key_hash.copy_from_slice(digest(&SHA256, &spki_der(&issuer)?).as_ref());
    let signed = precert_signed_data(&issuer_key_hash, &tbs, timestamp).map_err(|e| sct(&e.to_string()))?;
    let point = SubjectKey::from_spki_der(ctlog_spki_der).map_err(|e| sct(&e.to_string()))?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.key_bits())
        .verify(&signed, signature)
        .map_err(|_| sct("the SCT signature does not verify"))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}
