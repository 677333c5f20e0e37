//! Embedded SCTs (RFC 6962 3.3): at least one, from a CT log of the trust valid at the SCT's time,
//! over the precertificate rebuilt from the leaf (its TBS without the SCT list) and the issuer's
//! key hash. The list is parsed by hand: no maintained crate reads an RFC 6962 SCT list over
//! x509-cert, and the format is a few length-prefixed fields.

use aws_lc_rs::digest::{SHA256, digest};
use der::asn1::OctetString;
use der::{Decode, Encode};
use sigstack_fulcio::{SubjectKey, oids};
use x509_cert::Certificate;

use crate::{Trust, VerificationError};

/// One SCT as RFC 6962 lays it out.
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash_algorithm: u8,
    signature_algorithm: u8,
    signature: &'a [u8],
}

fn refuse(message: impl Into<String>) -> VerificationError {
    VerificationError::Sct(message.into())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], VerificationError> {
    if input.len() < n {
        return Err(refuse("the SCT list is truncated"));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_u16_prefixed<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], VerificationError> {
    let len = take(input, 2)?;
    take(input, u16::from_be_bytes([len[0], len[1]]) as usize)
}

fn parse_sct(mut item: &[u8]) -> Result<Sct<'_>, VerificationError> {
    let input = &mut item;
    if take(input, 1)? != [0] {
        return Err(refuse("an SCT is not version 1"));
    }
    let log_id = take(input, 32)?;
    let timestamp = take(input, 8)?;
    let timestamp_ms = u64::from_be_bytes(timestamp.try_into().map_err(|_| refuse("SCT timestamp"))?);
    let extensions = take_u16_prefixed(input)?;
    let algorithms = take(input, 2)?;
    let signature = take_u16_prefixed(input)?;
    Ok(Sct {
        log_id,
        timestamp_ms,
        extensions,
        hash_algorithm: algorithms[0],
        signature_algorithm: algorithms[1],
        signature,
    })
}

/// Verifies the leaf's embedded SCTs: at least one must come from a trusted CT log and verify.
pub fn verify_embedded_scts(trust: &Trust, leaf_der: &[u8], issuer_spki: &[u8]) -> Result<(), VerificationError> {
    let mut leaf = Certificate::from_der(leaf_der).map_err(|e| refuse(format!("the certificate: {e}")))?;
    let extensions = leaf.tbs_certificate.extensions.as_mut().ok_or_else(|| refuse("the certificate has no SCT"))?;
    let position = extensions
        .iter()
        .position(|e| e.extn_id == oids::SCT_LIST)
        .ok_or_else(|| refuse("the certificate has no embedded SCT"))?;
    let list = extensions.remove(position);
    let list = OctetString::from_der(list.extn_value.as_bytes()).map_err(|e| refuse(format!("the SCT list: {e}")))?;
    let tbs = leaf.tbs_certificate.to_der().map_err(|e| refuse(format!("the precertificate: {e}")))?;
    let mut issuer_key_hash = [0u8; 32];
    issuer_key_hash.copy_from_slice(digest(&SHA256, issuer_spki).as_ref());

    let mut items = list.as_bytes();
    let mut all = take_u16_prefixed(&mut items)?;
    let mut reasons = Vec::new();
    while !all.is_empty() {
        let sct = parse_sct(take_u16_prefixed(&mut all)?)?;
        let Some(log) = trust.ctlogs.iter().find(|log| log.key_id == sct.log_id) else {
            reasons.push("an SCT is from a CT log that is not trusted".to_string());
            continue;
        };
        if !log.valid.contains(sct.timestamp_ms / 1000) {
            reasons.push("an SCT's time is outside its CT log's validity in the trusted root".to_string());
            continue;
        }
        let oid = match (sct.hash_algorithm, sct.signature_algorithm) {
            (4, 3) => oids::ECDSA_WITH_SHA256,
            (4, 1) => oids::SHA256_WITH_RSA,
            (hash, signature) => {
                reasons
                    .push(format!("an SCT signed with algorithm ({hash}, {signature}), not SHA-256 with ECDSA or RSA"));
                continue;
            }
        };
        let signed = sigstack_fulcio::precert_signed_data(&issuer_key_hash, &tbs, sct.timestamp_ms, sct.extensions)
            .map_err(|e| refuse(e.to_string()))?;
        let key = SubjectKey::from_spki_der(&log.spki).map_err(|e| refuse(format!("the CT log key: {e}")))?;
        match key.verify_signature_with(oid, &signed, sct.signature) {
            Ok(()) => return Ok(()),
            Err(_) => reasons.push("an SCT's signature does not verify with its CT log's key".to_string()),
        }
    }
    Err(refuse(if reasons.is_empty() { "the SCT list is empty".to_string() } else { reasons.join("; ") }))
}
