use serde::{Deserialize, Serialize};

/// `TrustedRoot.mediaType`; the only value sigstore-go and sigstore-python accept.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// `SigningConfig.mediaType` (v0.2).
pub const SIGNING_CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// sigstore-python's `ClientTrustConfig.mediaType`.
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// `dev.sigstore.trustroot.v1.TrustedRoot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedRoot {
    /// Always [`TRUSTED_ROOT_MEDIA_TYPE`].
    pub media_type: String,
    /// Transparency logs (Rekor).
    pub tlogs: Vec<TransparencyLogInstance>,
    /// Certificate authorities (Fulcio).
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Certificate transparency logs (the CT key of the CA).
    pub ctlogs: Vec<TransparencyLogInstance>,
    /// Timestamp authorities: the same message as a CA, its chain leaf first and root last.
    #[serde(default)]
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

/// `TransparencyLogInstance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogInstance {
    /// Where the log is.
    pub base_url: String,
    /// `SHA2_256`.
    pub hash_algorithm: String,
    /// The log's key.
    pub public_key: PublicKey,
    /// `SHA-256(DER SPKI)` for v1 logs; the checkpoint key ID for v2 logs.
    pub log_id: LogId,
    /// The checkpoint key ID of a v2 log (the same value as `log_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_key_id: Option<LogId>,
}

/// `PublicKey`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// Base64 DER SubjectPublicKeyInfo.
    pub raw_bytes: String,
    /// e.g. `PKIX_ECDSA_P256_SHA_256`.
    pub key_details: String,
    /// Validity; `start` is mandatory for sigstore-go.
    pub valid_for: TimeRange,
}

/// `TimeRange`, RFC 3339 timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Start. Required; read as empty when missing so verifiers can refuse it by name.
    #[serde(default)]
    pub start: String,
    /// End, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `LogId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// Base64 `SHA-256(DER SPKI)`.
    pub key_id: String,
}

/// `CertificateAuthority`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    /// Who it is (optional in the protobuf message; some roots omit it for TSAs).
    #[serde(default)]
    pub subject: DistinguishedName,
    /// Where it is (optional likewise).
    #[serde(default)]
    pub uri: String,
    /// Issuer of leaves first, root last (the last is the trust anchor).
    pub cert_chain: CertificateChain,
    /// Validity.
    pub valid_for: TimeRange,
}

/// `DistinguishedName`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistinguishedName {
    /// O.
    pub organization: String,
    /// CN.
    pub common_name: String,
}

/// `X509CertificateChain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateChain {
    /// DER certificates.
    pub certificates: Vec<RawCertificate>,
}

/// `X509Certificate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCertificate {
    /// Base64 DER.
    pub raw_bytes: String,
}

/// `SigningConfig` v0.2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningConfig {
    /// Always [`SIGNING_CONFIG_MEDIA_TYPE`].
    pub media_type: String,
    /// Fulcio (majorApiVersion 1, though clients call `/api/v2`).
    pub ca_urls: Vec<Service>,
    /// OIDC issuers for interactive flows.
    pub oidc_urls: Vec<Service>,
    /// Rekor v1 logs.
    pub rekor_tlog_urls: Vec<Service>,
    /// Timestamp authorities (none).
    pub tsa_urls: Vec<Service>,
    /// Which logs to use.
    pub rekor_tlog_config: ServiceSelector,
    /// Which TSAs to use.
    pub tsa_config: ServiceSelector,
}

/// `Service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Base URL.
    pub url: String,
    /// API major version.
    pub major_api_version: u32,
    /// Validity; a service whose range has not started is ignored.
    pub valid_for: TimeRange,
    /// One service per operator is used; sigstore-python requires it.
    pub operator: String,
}

/// `ServiceConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSelector {
    /// `ANY`, `ALL` or `EXACT`.
    pub selector: Selector,
}

/// `ServiceSelector`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Selector {
    /// Any one.
    Any,
    /// All.
    All,
    /// Exactly `count`.
    Exact,
}

/// sigstore-python's `--trust-config` document: trusted root and signing config together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTrustConfig {
    /// Always [`CLIENT_TRUST_CONFIG_MEDIA_TYPE`].
    pub media_type: String,
    /// Verification material.
    pub trusted_root: TrustedRoot,
    /// Where to sign.
    pub signing_config: SigningConfig,
}
