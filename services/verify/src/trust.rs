//! What verification trusts: a `trusted_root.json` (protobuf-specs `TrustedRoot`), or the inline
//! material of a Kyverno attestor (roots, a log key, a CT log key).

use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::VerificationError;

/// A trusted root's `TimeRange`, in unix seconds. Both ends are inclusive (the protobuf-specs
/// comment says so, and sigstore-conformance's `*-validity-end-inclusive` vectors test it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validity {
    /// First valid second; `None` for material that carries no range (a Kyverno attestor's).
    pub start: Option<u64>,
    /// Last valid second; `None` while still valid.
    pub end: Option<u64>,
}

impl Validity {
    /// Whether `at` falls inside.
    pub fn contains(&self, at: u64) -> bool {
        self.start.is_none_or(|start| at >= start) && self.end.is_none_or(|end| at <= end)
    }

    fn parse(range: &sigstack_trust::TimeRange, what: &str) -> Result<Validity, VerificationError> {
        let time = |text: &str| {
            text.parse::<jiff::Timestamp>()
                .map(|t| t.as_second().max(0) as u64)
                .map_err(|e| VerificationError::Trust(format!("{what}: validFor time {text:?} is not RFC 3339: {e}")))
        };
        if range.start.is_empty() {
            // A missing start is malformed, never "forever" (sigstore-conformance
            // trust-root-tlog-missing-validity-start).
            return Err(VerificationError::Trust(format!("{what}: validFor has no start")));
        }
        Ok(Validity { start: Some(time(&range.start)?), end: range.end.as_deref().map(time).transpose()? })
    }
}

/// A certificate authority: its chain as the trusted root lists it (issuing certificate first,
/// root last). The root is the path's anchor; the others are candidate intermediates.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// DER certificates, root last.
    pub chain: Vec<Vec<u8>>,
    /// When certificates it issued may be used.
    pub valid: Validity,
}

/// A transparency log (Rekor v1 or v2).
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    /// `logId.keyId`: SHA-256 of the SPKI for v1 logs, the note key ID for v2 logs.
    pub key_id: Vec<u8>,
    /// The public key, DER SPKI.
    pub spki: Vec<u8>,
    /// The checkpoints' origin for v2 logs: the bare host of the base URL, as sigstore-go takes it.
    pub origin: String,
    /// When entries it integrated may be trusted.
    pub valid: Validity,
}

impl TransparencyLog {
    /// Whether its key is Ed25519 (Rekor v2's note keys; v1 logs sign with ECDSA).
    pub fn is_ed25519(&self) -> bool {
        sigstack_fulcio::SubjectKey::from_spki_der(&self.spki)
            .is_ok_and(|key| key.kind() == sigstack_fulcio::KeyKind::Ed25519)
    }
}

/// A certificate transparency log.
#[derive(Debug, Clone)]
pub struct CtLog {
    /// RFC 6962 log ID: SHA-256 of the SPKI.
    pub key_id: Vec<u8>,
    /// The public key, DER SPKI.
    pub spki: Vec<u8>,
    /// When its SCTs may be trusted.
    pub valid: Validity,
}

/// An RFC 3161 timestamp authority: its chain, signing certificate first, root last.
#[derive(Debug, Clone)]
pub struct TimestampAuthority {
    /// DER certificates, root last.
    pub chain: Vec<Vec<u8>>,
    /// When its timestamps may be trusted.
    pub valid: Validity,
}

/// Everything verification trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Certificate authorities.
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Transparency logs.
    pub tlogs: Vec<TransparencyLog>,
    /// CT logs.
    pub ctlogs: Vec<CtLog>,
    /// Timestamp authorities.
    pub timestamp_authorities: Vec<TimestampAuthority>,
}

fn decode(text: &str, what: &str) -> Result<Vec<u8>, VerificationError> {
    B64.decode(text).map_err(|_| VerificationError::Trust(format!("{what} is not base64")))
}

fn chain(certificates: &sigstack_trust::CertificateChain, what: &str) -> Result<Vec<Vec<u8>>, VerificationError> {
    if certificates.certificates.is_empty() {
        return Err(VerificationError::Trust(format!("{what} lists no certificate")));
    }
    certificates.certificates.iter().map(|c| decode(&c.raw_bytes, what)).collect()
}

impl Trust {
    /// The trust of a parsed trusted root.
    pub fn from_trusted_root(root: &sigstack_trust::TrustedRoot) -> Result<Trust, VerificationError> {
        let certificate_authorities = root
            .certificate_authorities
            .iter()
            .map(|ca| {
                let what = format!("the CA {}", ca.uri);
                Ok(CertificateAuthority {
                    chain: chain(&ca.cert_chain, &what)?,
                    valid: Validity::parse(&ca.valid_for, &what)?,
                })
            })
            .collect::<Result<_, VerificationError>>()?;
        let tlogs = root
            .tlogs
            .iter()
            .map(|log| {
                let what = format!("the log {}", log.base_url);
                Ok(TransparencyLog {
                    key_id: decode(&log.log_id.key_id, &what)?,
                    spki: decode(&log.public_key.raw_bytes, &what)?,
                    origin: sigstack_wire::url_hostname(&log.base_url).to_string(),
                    valid: Validity::parse(&log.public_key.valid_for, &what)?,
                })
            })
            .collect::<Result<_, VerificationError>>()?;
        let ctlogs = root
            .ctlogs
            .iter()
            .map(|log| {
                let what = format!("the CT log {}", log.base_url);
                Ok(CtLog {
                    key_id: decode(&log.log_id.key_id, &what)?,
                    spki: decode(&log.public_key.raw_bytes, &what)?,
                    valid: Validity::parse(&log.public_key.valid_for, &what)?,
                })
            })
            .collect::<Result<_, VerificationError>>()?;
        let timestamp_authorities = root
            .timestamp_authorities
            .iter()
            .map(|tsa| {
                let what = format!("the timestamp authority {}", tsa.uri);
                Ok(TimestampAuthority {
                    chain: chain(&tsa.cert_chain, &what)?,
                    valid: Validity::parse(&tsa.valid_for, &what)?,
                })
            })
            .collect::<Result<_, VerificationError>>()?;
        Ok(Trust { certificate_authorities, tlogs, ctlogs, timestamp_authorities })
    }

    /// Loads and reads `trusted_root.json`.
    pub fn load(path: &Path) -> Result<Trust, VerificationError> {
        let bytes =
            std::fs::read(path).map_err(|e| VerificationError::Trust(format!("read {}: {e}", path.display())))?;
        let root: sigstack_trust::TrustedRoot = serde_json::from_slice(&bytes)
            .map_err(|e| VerificationError::Trust(format!("{} is not a trusted root: {e}", path.display())))?;
        Trust::from_trusted_root(&root)
    }

    /// The trust of a Kyverno attestor: every certificate of `roots` an anchor of its own (Go's
    /// `x509.CertPool`, which cosign and Kyverno build from a `roots` bundle), a Rekor v1 key and a
    /// CT log key, none limited in time.
    pub fn from_keys(roots: &[Vec<u8>], rekor_spki: Option<&[u8]>, ctlog_spki: Option<&[u8]>) -> Trust {
        let key_id = |spki: &[u8]| digest(&SHA256, spki).as_ref().to_vec();
        Trust {
            certificate_authorities: roots
                .iter()
                .map(|root| CertificateAuthority { chain: vec![root.clone()], valid: Validity::default() })
                .collect(),
            tlogs: rekor_spki
                .map(|spki| TransparencyLog {
                    key_id: key_id(spki),
                    spki: spki.to_vec(),
                    origin: String::new(),
                    valid: Validity::default(),
                })
                .into_iter()
                .collect(),
            ctlogs: ctlog_spki
                .map(|spki| CtLog { key_id: key_id(spki), spki: spki.to_vec(), valid: Validity::default() })
                .into_iter()
                .collect(),
            timestamp_authorities: Vec::new(),
        }
    }

    /// The log whose `logId.keyId` is `key_id`.
    pub fn tlog(&self, key_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|log| log.key_id == key_id)
    }

    /// The first Rekor v1 log (an ECDSA or RSA log key).
    pub fn rekor_v1(&self) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|log| !log.is_ed25519())
    }

    /// The first Rekor v2 log (an Ed25519 note key).
    pub fn rekor_v2(&self) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|log| log.is_ed25519())
    }

    /// The first CA's chain (issuing certificate first, root last): what a signer presents when
    /// a signature carries none.
    pub fn first_ca_chain(&self) -> &[Vec<u8>] {
        self.certificate_authorities.first().map(|ca| ca.chain.as_slice()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_closed_at_both_ends() {
        let range = Validity { start: Some(10), end: Some(20) };
        assert!(range.contains(10) && range.contains(20) && range.contains(15));
        assert!(!range.contains(9) && !range.contains(21));
        assert!(Validity::default().contains(0));
    }

    #[test]
    fn a_range_without_start_is_refused() {
        let range = sigstack_trust::TimeRange { start: String::new(), end: None };
        assert!(matches!(Validity::parse(&range, "x"), Err(VerificationError::Trust(m)) if m.contains("no start")));
    }
}
