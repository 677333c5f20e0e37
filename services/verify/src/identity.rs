//! Who a certificate names (SAN, OIDC issuer, the Sigstore extensions) and the policy of who must
//! have signed.

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::VerificationError;

const SUBJECT_ALT_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17");

/// What a Fulcio certificate says about its signer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// SAN values (URIs and emails).
    pub san: Vec<String>,
    /// OIDC issuer (1.3.6.1.4.1.57264.1.8, else the legacy .1.1).
    pub issuer: Option<String>,
    /// Sigstore extensions (`1.3.6.1.4.1.57264.1.N`) by N, as text: .1–.7 hold raw bytes, .8 on a
    /// DER UTF8String (fulcio pkg/certificate/extensions.go).
    pub extensions: std::collections::BTreeMap<u32, String>,
    /// notBefore, notAfter (unix seconds).
    pub validity: (u64, u64),
}

impl CertificateIdentity {
    /// Reads the identity of a DER certificate (nothing is verified here).
    pub fn of(der: &[u8]) -> Result<CertificateIdentity, VerificationError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| VerificationError::Bundle(format!("the certificate is not DER X.509: {e}")))?;
        let mut identity = CertificateIdentity {
            validity: (
                cert.tbs_certificate.validity.not_before.to_unix_duration().as_secs(),
                cert.tbs_certificate.validity.not_after.to_unix_duration().as_secs(),
            ),
            ..CertificateIdentity::default()
        };
        for extension in cert.tbs_certificate.extensions.iter().flatten() {
            let value = extension.extn_value.as_bytes();
            if extension.extn_id == SUBJECT_ALT_NAME {
                let names = SubjectAltName::from_der(value)
                    .map_err(|e| VerificationError::Bundle(format!("the certificate's SAN: {e}")))?;
                for name in names.0 {
                    match name {
                        GeneralName::UniformResourceIdentifier(uri) => identity.san.push(uri.to_string()),
                        GeneralName::Rfc822Name(email) => identity.san.push(email.to_string()),
                        _ => {}
                    }
                }
            } else if let Some(n) = sigstack_fulcio::oids::sigstore_number(&extension.extn_id) {
                let text = if n <= 7 {
                    String::from_utf8(value.to_vec()).ok()
                } else {
                    der::asn1::Utf8StringRef::from_der(value).ok().map(|s| s.as_str().to_string())
                };
                if let Some(text) = text {
                    identity.extensions.insert(n, text);
                }
            }
        }
        identity.issuer = identity.extensions.get(&8).or(identity.extensions.get(&1)).cloned();
        Ok(identity)
    }
}

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
    /// Whether the certificate's identity is what the policy asks for; the texts are cosign's.
    pub fn check(&self, leaf: &CertificateIdentity) -> Result<(), VerificationError> {
        let refuse = VerificationError::Identity;
        let san = leaf.san.join(", ");
        if let Some(identity) = &self.identity
            && !leaf.san.iter().any(|s| s == identity)
        {
            return Err(refuse(format!("subject mismatch: certificate identity is {san}, expected {identity}")));
        }
        if let Some(re) = &self.identity_regexp
            && !leaf.san.iter().any(|s| re.is_match(s))
        {
            return Err(refuse(format!("subject mismatch: certificate identity {san} does not match {re}")));
        }
        let issuer = leaf.issuer.as_deref().unwrap_or("");
        if let Some(expected) = &self.issuer
            && issuer != expected
        {
            return Err(refuse(format!("issuer mismatch: certificate issuer is {issuer}, expected {expected}")));
        }
        if let Some(re) = &self.issuer_regexp
            && !re.is_match(issuer)
        {
            return Err(refuse(format!("issuer mismatch: certificate issuer {issuer} does not match {re}")));
        }
        Ok(())
    }
}

impl CertificateIdentity {
    /// The subject public key of a DER certificate (nothing is verified here).
    pub fn key_of(der: &[u8]) -> Result<sigstack_fulcio::SubjectKey, VerificationError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| VerificationError::Bundle(format!("the certificate is not DER X.509: {e}")))?;
        let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)
            .map_err(|e| VerificationError::Bundle(format!("the certificate's key: {e}")))?;
        sigstack_fulcio::SubjectKey::from_spki_der(&spki)
            .map_err(|e| VerificationError::Chain(format!("the certificate's key: {e}")))
    }
}
