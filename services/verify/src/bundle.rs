//! Sigstore bundles (v0.1 to v0.3, both media type spellings), verified as sigstore-go verifies
//! them: the bundle's version and material, the signed content bound to the artifact, the
//! signature, the log entries of trusted logs, the RFC 3161 timestamps of trusted TSAs, the
//! certificate path valid at every verified time, its SCT, and the identity.

use crate::encoding::decode_b64;
use der::Decode;
use serde_json::Value;
use sigstack_fulcio::SubjectKey;
use x509_cert::Certificate;

use crate::artifact::hex;
use crate::tlog::{LoggedEntry, Signer, verify_entry};
use crate::{
    Artifact, CertificateIdentity, IdentityPolicy, SignedContent, Trust, VerificationError, sct, timestamp,
    verify_certificate,
};

/// Which checks run. The defaults are cosign's: certificate, SCT and log entry. The switches are
/// cosign's `--insecure-ignore-tlog` / `--insecure-ignore-sct` and Kyverno's `rekor.ignoreTlog`,
/// `ctlog.ignoreSCT` and static `keys` attestors.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Verify the log entry.
    pub tlog: bool,
    /// Verify the certificate's embedded SCT.
    pub sct: bool,
    /// A public key (DER SPKI) the signature must verify with, instead of a certificate
    /// (managed keys, cosign `sign --key`): then there is no chain, SCT or identity to check.
    pub public_key: Option<Vec<u8>>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks { tlog: true, sct: true, public_key: None }
    }
}

/// One verified signature or attestation.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// The artifact digest it covers, `sha256:<hex>`.
    pub digest: String,
    /// Certificate SANs (none for a key-signed one).
    pub sans: Vec<String>,
    /// OIDC issuer (empty for a key-signed one).
    pub issuer: String,
    /// The certificate's Sigstore extensions by arc number (empty for a key-signed one).
    pub extensions: std::collections::BTreeMap<u32, String>,
    /// Log index (None when the log was not checked).
    pub log_index: Option<u64>,
    /// When the log integrated it (None without a Rekor v1 promise).
    pub integrated_time: Option<i64>,
    /// For attestations: the in-toto statement.
    pub statement: Option<Value>,
}

impl Verified {
    /// The in-toto statement's predicate type, for attestations.
    pub fn predicate_type(&self) -> Option<&str> {
        self.statement.as_ref()?["predicateType"].as_str()
    }
}

fn bundle_error(message: impl Into<String>) -> VerificationError {
    VerificationError::Bundle(message.into())
}

/// The bundle's minor version from its media type (`…+json;version=0.N` or `….v0.N+json`).
fn minor_version(media_type: &str) -> Result<u32, VerificationError> {
    let version = media_type.strip_prefix("application/vnd.dev.sigstore.bundle+json;version=").or_else(|| {
        media_type.strip_prefix("application/vnd.dev.sigstore.bundle.v").and_then(|v| v.strip_suffix("+json"))
    });
    match version {
        Some("0.1") => Ok(1),
        Some("0.2") => Ok(2),
        Some("0.3") => Ok(3),
        _ => Err(bundle_error(format!("media type {media_type:?} is not a Sigstore bundle v0.1, v0.2 or v0.3"))),
    }
}

fn b64_certificate(value: &Value) -> Result<Vec<u8>, VerificationError> {
    let text = value["rawBytes"].as_str().ok_or_else(|| bundle_error("a certificate has no rawBytes"))?;
    decode_b64(text).ok_or_else(|| bundle_error("a certificate is not base64"))
}

fn self_signed(der: &[u8]) -> bool {
    Certificate::from_der(der).is_ok_and(|c| c.tbs_certificate.subject == c.tbs_certificate.issuer)
}

/// A signing certificate (DER) and the certificates offered with it.
type CertificateMaterial = (Vec<u8>, Vec<Vec<u8>>);

/// The signing certificate and the certificates offered with it, or `None` for a key bundle.
fn material(bundle: &Value) -> Result<Option<CertificateMaterial>, VerificationError> {
    let material = &bundle["verificationMaterial"];
    if material.get("publicKey").is_some() {
        return Ok(None);
    }
    if let Some(certificate) = material.get("certificate") {
        return Ok(Some((b64_certificate(certificate)?, Vec::new())));
    }
    let chain = material["x509CertificateChain"]["certificates"]
        .as_array()
        .ok_or_else(|| bundle_error("the bundle has no certificate, chain or public key"))?
        .iter()
        .map(b64_certificate)
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, rest) = chain.split_first().ok_or_else(|| bundle_error("the certificate chain is empty"))?;
    // A bundle carries the leaf and at most intermediates; a root in it would be a trust decision
    // the bundle cannot make (sigstore-conformance bundle-with-root-cert).
    if rest.iter().any(|c| self_signed(c)) {
        return Err(bundle_error("the certificate chain contains a root certificate"));
    }
    Ok(Some((leaf.clone(), rest.to_vec())))
}

/// Verifies `bundle` for `artifact` against `trust`.
pub fn verify_bundle(
    trust: &Trust,
    bundle: &Value,
    artifact: &Artifact,
    policy: &IdentityPolicy,
    checks: &Checks,
) -> Result<Verified, VerificationError> {
    let media_type = bundle["mediaType"].as_str().ok_or_else(|| bundle_error("the bundle has no mediaType"))?;
    let minor = minor_version(media_type)?;
    let certificate = material(bundle)?;
    let key = match (&certificate, &checks.public_key) {
        (None, Some(spki)) => {
            SubjectKey::from_spki_der(spki).map_err(|e| bundle_error(format!("the public key: {e}")))?
        }
        (None, None) => return Err(bundle_error("the bundle is signed with a key: verify it with that key (--key)")),
        (Some(_), Some(_)) => {
            return Err(bundle_error("the bundle is signed by a certificate, not with the given key"));
        }
        (Some((leaf, _)), None) => CertificateIdentity::key_of(leaf)?,
    };
    let content = SignedContent::of_bundle(bundle, artifact)?;
    content.verify_signature(&key)?;
    let signer = Signer { key: &key, certificate: certificate.as_ref().map(|(leaf, _)| leaf.as_slice()) };

    let material = &bundle["verificationMaterial"];
    let mut times: Vec<u64> = Vec::new();
    let mut logged: Option<LoggedEntry> = None;
    if checks.tlog {
        let entries = material["tlogEntries"]
            .as_array()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| VerificationError::LogEntry("the bundle has no transparency log entry".into()))?;
        for entry in entries {
            if let Some(entry) = verify_entry(trust, entry, &content, &signer, minor >= 2)? {
                times.extend(entry.integrated_time);
                logged = Some(entry);
            }
        }
        if logged.is_none() {
            return Err(VerificationError::LogEntry(
                "rekor log public key not found for payload: no entry of a log the trusted root lists".into(),
            ));
        }
    }
    for signed in material["timestampVerificationData"]["rfc3161Timestamps"].as_array().into_iter().flatten() {
        let text = signed["signedTimestamp"]
            .as_str()
            .ok_or_else(|| VerificationError::Timestamp("a timestamp entry has no signedTimestamp".into()))?;
        let der = decode_b64(text)
            .ok_or_else(|| VerificationError::Timestamp("the signed timestamp is not base64".into()))?;
        times.push(timestamp::verify_timestamp(trust, &der, &content.signature)?);
    }
    if times.is_empty() {
        if checks.tlog {
            return Err(VerificationError::Timestamp(
                "no verified time for the signature: a Rekor v2 entry carries none, so the bundle needs a signed \
                 timestamp (RFC 3161) from a timestamp authority the trusted root lists"
                    .into(),
            ));
        }
        times.push(crate::now());
    }
    let mut verified = Verified {
        digest: format!("sha256:{}", hex(&artifact.sha256())),
        log_index: logged.map(|l| l.log_index),
        integrated_time: logged.and_then(|l| l.integrated_time).map(|t| t as i64),
        statement: content.statement.clone(),
        ..Verified::default()
    };
    if let Some((leaf, offered)) = &certificate {
        let mut checked = None;
        for at in &times {
            checked = Some(verify_certificate(trust, leaf, offered, *at)?);
        }
        let checked = checked.ok_or_else(|| VerificationError::Timestamp("no verified time".into()))?;
        if checks.sct {
            sct::verify_embedded_scts(trust, leaf, &checked.issuer_spki)?;
        }
        policy.check(&checked.identity)?;
        verified.sans = checked.identity.san.clone();
        verified.issuer = checked.identity.issuer.clone().unwrap_or_default();
        verified.extensions = checked.identity.extensions.clone();
    }
    Ok(verified)
}
