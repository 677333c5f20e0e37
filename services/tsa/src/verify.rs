//! Verifying an RFC 3161 timestamp over some data against a TSA's chain: what a Sigstore verifier
//! does with `timestampVerificationData.rfc3161Timestamps` (sigstore-go with digitorus/timestamp,
//! sigstore-python with rfc3161-client), for sigstack's own verifier.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, UnparsedPublicKey, VerificationAlgorithm};
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::OctetString;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_tsp::{TimeStampResp, TstInfo};

use crate::authority::HashAlgorithm;
use crate::{TimestampError, oid};

/// A verified timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// `genTime`, unix seconds.
    pub time: u64,
}

fn malformed(e: impl std::fmt::Display) -> TimestampError {
    TimestampError::Malformed(e.to_string())
}

fn signer(message: impl Into<String>) -> TimestampError {
    TimestampError::Signer(message.into())
}

/// Verifies `signature_der` over `message` with the key of `issuer` (ECDSA P-256 or P-384).
fn verify_signed(
    issuer: &Certificate,
    algorithm: &der::asn1::ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let key = issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
    let verification: &dyn VerificationAlgorithm = if *algorithm == oid::ECDSA_WITH_SHA384 {
        &ECDSA_P384_SHA384_ASN1
    } else if *algorithm == oid::ECDSA_WITH_SHA256 {
        &ECDSA_P256_SHA256_ASN1
    } else {
        return false;
    };
    UnparsedPublicKey::new(verification, key).verify(message, signature).is_ok()
}

/// Verifies that `response_der` (a DER TimeStampResp) timestamps `data`, signed by the leaf of
/// `chain_der` (leaf first, root last, as trusted_root.json lists a TSA), that chain valid at the
/// timestamp's time and the leaf for timestamping; returns the time.
pub fn verify_timestamp(
    response_der: &[u8],
    data: &[u8],
    chain_der: &[Vec<u8>],
) -> Result<VerifiedTimestamp, TimestampError> {
    let response = TimeStampResp::from_der(response_der).map_err(malformed)?;
    use cmpv2::status::PkiStatus;
    if !matches!(response.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        return Err(malformed(format!("the TSA did not grant it ({:?})", response.status.status)));
    }
    let token = response.time_stamp_token.ok_or_else(|| malformed("no timeStampToken"))?;
    if token.content_type != oid::SIGNED_DATA {
        return Err(malformed("the token is not a SignedData"));
    }
    let signed_data = SignedData::from_der(&token.content.to_der().map_err(malformed)?).map_err(malformed)?;
    if signed_data.encap_content_info.econtent_type != oid::TST_INFO {
        return Err(malformed("the token holds no TSTInfo"));
    }
    let econtent = signed_data.encap_content_info.econtent.ok_or_else(|| malformed("no TSTInfo"))?;
    let tst_der = OctetString::from_der(&econtent.to_der().map_err(malformed)?).map_err(malformed)?;
    let tst = TstInfo::from_der(tst_der.as_bytes()).map_err(malformed)?;
    // Go's encoding/asn1 (cosign, sigstore-go) refuses a non-minimal INTEGER; so does this, so a
    // token those clients would reject never passes here.
    for (name, int) in [("serialNumber", Some(&tst.serial_number)), ("nonce", tst.nonce.as_ref())] {
        let bytes = int.map(|i| i.as_bytes()).unwrap_or_default();
        if bytes.len() > 1 && ((bytes[0] == 0 && bytes[1] < 0x80) || (bytes[0] == 0xff && bytes[1] >= 0x80)) {
            return Err(malformed(format!("TSTInfo {name}: integer not minimally-encoded")));
        }
    }
    let hash = HashAlgorithm::from_oid(&tst.message_imprint.hash_algorithm.oid).map_err(malformed)?;
    if tst.message_imprint.hashed_message.as_bytes() != hash.digest(data).as_slice() {
        return Err(TimestampError::Imprint);
    }
    let time = tst.gen_time.to_unix_duration().as_secs();

    // The signer: the trusted leaf, named by the SignerInfo; its signature over the signed
    // attributes, which must carry the TSTInfo's digest and its content type.
    let chain = chain_der.iter().map(|d| Certificate::from_der(d)).collect::<Result<Vec<_>, _>>().map_err(malformed)?;
    let leaf = chain.first().ok_or_else(|| signer("no TSA certificate is trusted"))?;
    let info = signed_data.signer_infos.0.iter().next().ok_or_else(|| malformed("no SignerInfo"))?;
    match &info.sid {
        SignerIdentifier::IssuerAndSerialNumber(id)
            if id.issuer == leaf.tbs_certificate.issuer && id.serial_number == leaf.tbs_certificate.serial_number => {}
        _ => return Err(signer("signed by another certificate than the trusted TSA's")),
    }
    let attrs = info.signed_attrs.as_ref().ok_or_else(|| signer("no signed attributes"))?;
    let digest_alg = HashAlgorithm::from_oid(&info.digest_alg.oid).map_err(malformed)?;
    let message_digest = attrs
        .iter()
        .find(|a| a.oid == oid::MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| OctetString::from_der(&v.to_der().ok()?).ok())
        .ok_or_else(|| signer("no message-digest attribute"))?;
    if message_digest.as_bytes() != digest_alg.digest(tst_der.as_bytes()).as_slice() {
        return Err(signer("the message-digest attribute is not the TSTInfo's"));
    }
    let signed_attrs = attrs.to_der().map_err(malformed)?;
    if !verify_signed(leaf, &info.signature_algorithm.oid, &signed_attrs, info.signature.as_bytes()) {
        return Err(signer("the signature does not verify with the TSA's key"));
    }
    let eku_ok = leaf.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == oid::EXTENDED_KEY_USAGE
            && x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .is_ok_and(|eku| eku.0.contains(&oid::TIME_STAMPING))
    });
    if !eku_ok {
        return Err(signer("the TSA certificate is not for timestamping"));
    }
    // The chain, each certificate valid at the timestamp's time.
    for (i, cert) in chain.iter().enumerate() {
        let validity = &cert.tbs_certificate.validity;
        if time < validity.not_before.to_unix_duration().as_secs()
            || time > validity.not_after.to_unix_duration().as_secs()
        {
            return Err(signer("a TSA certificate was not valid at the timestamp's time"));
        }
        let issuer = chain.get(i + 1).unwrap_or(cert);
        let tbs = cert.tbs_certificate.to_der().map_err(malformed)?;
        let signature = cert.signature.as_bytes().ok_or_else(|| malformed("certificate signature bits"))?;
        if !verify_signed(issuer, &cert.signature_algorithm.oid, &tbs, signature) {
            return Err(signer("the TSA's certificate chain does not verify"));
        }
    }
    Ok(VerifiedTimestamp { time })
}
