//! The CT log whose signed certificate timestamps are embedded in leaves (RFC 6962 §3.2–3.3).
//!
//! Written by hand: no maintained crate signs SCTs (the `sct` crate only verifies, and pins an old
//! ring). The byte layout follows RFC 6962 and what sigstore-python's `_pack_signed_entry` rebuilds.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::Encode;
use der::asn1::OctetString;

use crate::FulcioError;

/// The CT log key (ECDSA P-256) and its log ID, SHA-256 of its DER SPKI.
pub struct CtLog {
    key: EcdsaKeyPair,
    spki_der: Vec<u8>,
    log_id: [u8; 32],
    rng: SystemRandom,
}

/// RFC 6962 `SignatureAlgorithm`/`HashAlgorithm` codes.
const HASH_SHA256: u8 = 4;
const SIGNATURE_ECDSA: u8 = 3;
/// `LogEntryType.precert_entry`.
const PRECERT_ENTRY: u16 = 1;

impl CtLog {
    /// Loads the log key from PKCS#8.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, FulcioError> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
            .map_err(|e| FulcioError::Internal(format!("CT log key: {e}")))?;
        let spki_der = key.public_key().as_der().map_err(|e| FulcioError::Internal(e.to_string()))?.as_ref().to_vec();
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(digest(&SHA256, &spki_der).as_ref());
        Ok(CtLog { key, spki_der, log_id, rng: SystemRandom::new() })
    }

    /// The log's public key, DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The log ID: SHA-256 of the DER SPKI (what trusted roots put in `ctlogs[].logId.keyId`).
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// Signs a precert entry for `tbs_der` and returns the `extnValue` of the SCT-list extension:
    /// DER OCTET STRING wrapping `u16 list_len || u16 sct_len || sct` (the double wrap Fulcio uses).
    pub fn sign_precert(
        &self,
        issuer_key_hash: &[u8; 32],
        tbs_der: &[u8],
        timestamp_ms: u64,
    ) -> Result<Vec<u8>, FulcioError> {
        let signature = self.digitally_signed(issuer_key_hash, tbs_der, timestamp_ms)?;
        let mut sct = Vec::with_capacity(43 + signature.len());
        sct.push(0); // v1
        sct.extend_from_slice(&self.log_id);
        sct.extend_from_slice(&timestamp_ms.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes()); // no extensions
        sct.extend_from_slice(&signature);
        let mut list = Vec::with_capacity(sct.len() + 4);
        list.extend_from_slice(&((sct.len() + 2) as u16).to_be_bytes());
        list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
        list.extend_from_slice(&sct);
        Ok(OctetString::new(list)?.to_der()?)
    }
}

impl CtLog {
    /// RFC 6962 `DigitallySigned` over a precert entry: hash and signature algorithm, u16 length,
    /// the ECDSA signature.
    fn digitally_signed(
        &self,
        issuer_key_hash: &[u8; 32],
        tbs_der: &[u8],
        timestamp_ms: u64,
    ) -> Result<Vec<u8>, FulcioError> {
        let signed = precert_signed_data(issuer_key_hash, tbs_der, timestamp_ms, &[])?;
        let signature =
            self.key.sign(&self.rng, &signed).map_err(|e| FulcioError::Internal(format!("SCT signing: {e}")))?;
        let signature = signature.as_ref();
        let mut out = Vec::with_capacity(4 + signature.len());
        out.push(HASH_SHA256);
        out.push(SIGNATURE_ECDSA);
        out.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        out.extend_from_slice(signature);
        Ok(out)
    }

    /// RFC 6962 §4.1 `add-pre-chain`, for another CA beside sigstack (the real Fulcio in the
    /// differential tests): an SCT for the precertificate `chain[0]` issued by `chain[1]`, over
    /// its TBS without the poison extension. sigstack keeps no CT log, only its key, so nothing
    /// is stored; a precertificate signing certificate (§3.1's other issuer form) is not taken.
    pub fn add_pre_chain(&self, chain: &[Vec<u8>], timestamp_ms: u64) -> Result<AddedPrecert, FulcioError> {
        use der::Decode;
        let invalid = |m: String| FulcioError::InvalidRequest(format!("add-pre-chain: {m}"));
        let [precert, issuer, ..] = chain else {
            return Err(invalid("the chain needs the precertificate and its issuer".into()));
        };
        let mut tbs = x509_cert::Certificate::from_der(precert)
            .map_err(|e| invalid(format!("chain[0] is not a DER certificate: {e}")))?
            .tbs_certificate;
        let issuer = x509_cert::Certificate::from_der(issuer)
            .map_err(|e| invalid(format!("chain[1] is not a DER certificate: {e}")))?;
        let extensions = tbs.extensions.as_mut().ok_or_else(|| invalid("chain[0] has no extensions".into()))?;
        let before = extensions.len();
        extensions.retain(|e| e.extn_id != CT_POISON);
        if extensions.len() + 1 != before {
            return Err(invalid("chain[0] is not a precertificate (exactly one CT poison extension)".into()));
        }
        if extensions.is_empty() {
            tbs.extensions = None;
        }
        let issuer_spki = issuer.tbs_certificate.subject_public_key_info.to_der()?;
        let mut issuer_key_hash = [0u8; 32];
        issuer_key_hash.copy_from_slice(digest(&SHA256, &issuer_spki).as_ref());
        let signature = self.digitally_signed(&issuer_key_hash, &tbs.to_der()?, timestamp_ms)?;
        Ok(AddedPrecert { log_id: self.log_id, timestamp_ms, signature })
    }
}

/// The precertificate poison extension (RFC 6962 §3.1).
const CT_POISON: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.3");

/// An SCT for a submitted precertificate: RFC 6962 §4.1's answer, before its JSON encoding.
#[derive(Debug, Clone)]
pub struct AddedPrecert {
    /// The log ID (SHA-256 of the log key's SPKI).
    pub log_id: [u8; 32],
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// `DigitallySigned` (algorithms, length, signature).
    pub signature: Vec<u8>,
}

/// The `digitally-signed` input of a v1 precert SCT (RFC 6962 §3.2):
/// version, signature type, timestamp, entry type, issuer key hash, u24-length TBS, the extensions.
pub fn precert_signed_data(
    issuer_key_hash: &[u8; 32],
    tbs_der: &[u8],
    timestamp_ms: u64,
    extensions: &[u8],
) -> Result<Vec<u8>, FulcioError> {
    if tbs_der.len() >= 1 << 24 {
        return Err(FulcioError::Internal("TBS certificate too large for an SCT".into()));
    }
    let mut data = Vec::with_capacity(tbs_der.len() + 52);
    data.push(0); // sct_version v1
    data.push(0); // signature_type certificate_timestamp
    data.extend_from_slice(&timestamp_ms.to_be_bytes());
    data.extend_from_slice(&PRECERT_ENTRY.to_be_bytes());
    data.extend_from_slice(issuer_key_hash);
    data.extend_from_slice(&(tbs_der.len() as u32).to_be_bytes()[1..]);
    data.extend_from_slice(tbs_der);
    // The SCT's own extensions are signed too (empty for Fulcio's log; Static CT logs use them).
    let extensions_len = u16::try_from(extensions.len())
        .map_err(|_| FulcioError::Internal("SCT extensions longer than 65535 bytes".into()))?;
    data.extend_from_slice(&extensions_len.to_be_bytes());
    data.extend_from_slice(extensions);
    Ok(data)
}
