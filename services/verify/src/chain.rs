//! Certificate paths per RFC 5280, built and checked by rustls-webpki (what the Rust Sigstore
//! clients use): issuers must be CAs within their pathLenConstraint, signatures must verify, every
//! certificate must be valid at the verified time, and the leaf must carry the extended key usage
//! asked for (code signing for Fulcio leaves, timestamping for TSA leaves). Certificates that come
//! with a signature or bundle are only candidate intermediates; anchors come from the trust alone.
//!
//! webpki checks no plain keyUsage on issuers and no validity on anchors, so both are checked here
//! on the path it returns: issuers need keyCertSign (RFC 5280 4.2.1.3), the leaf digitalSignature,
//! and the anchor must be valid at the verified time as Go's x509 requires of roots.

use der::Decode;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sigstack_fulcio::SubjectKey;
use webpki::aws_lc_rs as algs;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};

use crate::{CertificateIdentity, Trust, VerificationError};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER value bytes.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// id-kp-timeStamping (1.3.6.1.5.5.7.3.8), DER value bytes.
pub(crate) const TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
const KEY_USAGE: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.15");
const EXTENDED_KEY_USAGE: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.37");

/// The certificate signature algorithms the Sigstore specs allow (algorithm registry): ECDSA on
/// P-256/P-384/P-521, RSA PKCS#1 v1.5 and PSS of 2048 bits and more, Ed25519.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P256_SHA384,
    algs::ECDSA_P384_SHA256,
    algs::ECDSA_P384_SHA384,
    algs::ECDSA_P521_SHA256,
    algs::ECDSA_P521_SHA384,
    algs::ECDSA_P521_SHA512,
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    algs::ED25519,
];

/// A signing certificate whose path to a trusted CA checked out.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    /// The subject public key.
    pub key: SubjectKey,
    /// Who it names.
    pub identity: CertificateIdentity,
    /// The issuer's DER SubjectPublicKeyInfo (the SCT's issuer key hash is over it).
    pub issuer_spki: Vec<u8>,
}

/// The extension `oid` of a DER certificate, decoded as `T`; `None` when absent.
fn extension<T: for<'a> Decode<'a>>(
    der: &[u8],
    oid: der::asn1::ObjectIdentifier,
    name: &str,
) -> Result<Option<T>, VerificationError> {
    let cert = Certificate::from_der(der).map_err(|e| VerificationError::Chain(format!("not DER X.509: {e}")))?;
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .map(|e| T::from_der(e.extn_value.as_bytes()))
        .transpose()
        .map_err(|e| VerificationError::Chain(format!("{name}: {e}")))
}

fn key_usage(der: &[u8]) -> Result<Option<KeyUsage>, VerificationError> {
    extension(der, KEY_USAGE, "keyUsage")
}

fn extended_key_usages(der: &[u8]) -> Result<Option<Vec<der::asn1::ObjectIdentifier>>, VerificationError> {
    Ok(extension::<ExtendedKeyUsage>(der, EXTENDED_KEY_USAGE, "extendedKeyUsage")?.map(|u| u.0))
}

fn describe(error: &webpki::Error, at: u64, what: &str) -> VerificationError {
    use webpki::Error as E;
    match error {
        E::CaUsedAsEndEntity => VerificationError::Usage(format!(
            "the {what} is a CA certificate (basicConstraints CA:true), which may not sign"
        )),
        E::EndEntityUsedAsCa => VerificationError::Chain(format!(
            "an issuer of the {what} is not a CA (basicConstraints CA:false or absent)"
        )),
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            VerificationError::Usage(format!("the {what} lacks the required extended key usage"))
        }
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => VerificationError::Validity(
            format!("a certificate in the {what}'s path was not valid at {at} (unix seconds)"),
        ),
        E::PathLenConstraintViolated => {
            VerificationError::Chain(format!("the {what}'s path exceeds an issuer's pathLenConstraint"))
        }
        E::UnknownIssuer => VerificationError::Chain(format!(
            "the {what} does not chain to a trusted CA (issued by a certificate that leads to no anchor)"
        )),
        E::InvalidSignatureForPublicKey | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerificationError::Chain(format!("a signature in the {what}'s path does not verify"))
        }
        other => VerificationError::Chain(format!("the {what}'s path: {other:?}")),
    }
}

/// Validates the path from `leaf_der` to one of `roots` (DER, each an anchor) through candidate
/// `intermediates`, at `at`, for the extended key usage `eku`; returns the issuer's SPKI.
pub(crate) fn validate_path(
    leaf_der: &[u8],
    roots: &[&[u8]],
    intermediates: &[&[u8]],
    at: u64,
    eku: &'static [u8],
    what: &str,
) -> Result<Vec<u8>, VerificationError> {
    let leaf = CertificateDer::from(leaf_der);
    let end_entity = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| VerificationError::Chain(format!("the {what} is not a certificate webpki reads: {e:?}")))?;
    let root_ders: Vec<CertificateDer<'_>> = roots.iter().map(|r| CertificateDer::from(*r)).collect();
    let anchors: Vec<TrustAnchor<'_>> = root_ders
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r))
        .collect::<Result<_, _>>()
        .map_err(|e| VerificationError::Trust(format!("a trusted CA certificate is malformed: {e:?}")))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates.iter().map(|c| CertificateDer::from(*c)).collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
    let path = end_entity
        .verify_for_usage(
            ALGORITHMS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required_if_present(eku),
            None,
            None,
        )
        .map_err(|e| describe(&e, at, what))?;
    // webpki applies one EKU rule to every certificate of the path; an issuer without the
    // extension may issue for any use (RFC 5280, Go's x509), but the leaf itself must name it.
    if !extended_key_usages(leaf_der)?.is_some_and(|usages| usages.iter().any(|oid| oid.as_bytes() == eku)) {
        return Err(VerificationError::Usage(format!("the {what} lacks the required extended key usage")));
    }
    for issuer in path.intermediate_certificates() {
        let usage = key_usage(issuer.der().as_ref())?;
        if !usage.is_some_and(|u| u.0.contains(KeyUsages::KeyCertSign)) {
            return Err(VerificationError::Chain(format!(
                "an issuer of the {what} lacks keyUsage keyCertSign (RFC 5280 4.2.1.3)"
            )));
        }
    }
    if let Some(usage) = key_usage(leaf_der)?
        && !usage.0.contains(KeyUsages::DigitalSignature)
    {
        return Err(VerificationError::Usage(format!("the {what}'s keyUsage lacks digitalSignature")));
    }
    // The anchor webpki chose, found again among the roots by its key and name.
    let anchor = path.anchor();
    let root = anchors
        .iter()
        .position(|a| a.subject_public_key_info == anchor.subject_public_key_info && a.subject == anchor.subject)
        .map(|i| roots[i])
        .ok_or_else(|| VerificationError::Chain("the path's anchor is not among the trusted roots".into()))?;
    let root = Certificate::from_der(root).map_err(|e| VerificationError::Trust(format!("a trusted CA: {e}")))?;
    let validity = &root.tbs_certificate.validity;
    if at < validity.not_before.to_unix_duration().as_secs() || at > validity.not_after.to_unix_duration().as_secs() {
        return Err(VerificationError::Validity(format!(
            "the trusted root certificate of the {what} was not valid at {at} (unix seconds)"
        )));
    }
    Ok(path.issuer_spki().as_ref().to_vec())
}

/// Verifies a Fulcio-style signing certificate at `at` (unix seconds): a path through `offered`
/// certificates and the trusted root's intermediates to a root of a CA valid at `at`, with code
/// signing usage; returns its key, identity and issuer key.
pub fn verify_certificate(
    trust: &Trust,
    leaf_der: &[u8],
    offered: &[Vec<u8>],
    at: u64,
) -> Result<VerifiedCertificate, VerificationError> {
    let valid: Vec<_> = trust.certificate_authorities.iter().filter(|ca| ca.valid.contains(at)).collect();
    if valid.is_empty() {
        return Err(if trust.certificate_authorities.is_empty() {
            VerificationError::Trust("no certificate authority is trusted".into())
        } else {
            VerificationError::Validity(format!("no trusted certificate authority was valid at {at} (unix seconds)"))
        });
    }
    let roots: Vec<&[u8]> = valid.iter().filter_map(|ca| ca.chain.last().map(Vec::as_slice)).collect();
    let intermediates: Vec<&[u8]> = valid
        .iter()
        .flat_map(|ca| ca.chain[..ca.chain.len().saturating_sub(1)].iter())
        .chain(offered.iter())
        .map(Vec::as_slice)
        .collect();
    let issuer_spki = validate_path(leaf_der, &roots, &intermediates, at, CODE_SIGNING, "signing certificate")?;
    Ok(VerifiedCertificate {
        key: CertificateIdentity::key_of(leaf_der)?,
        identity: CertificateIdentity::of(leaf_der)?,
        issuer_spki,
    })
}
