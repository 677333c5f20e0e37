//! RFC 3161 timestamps over a signature, as sigstore-go reads them (digitorus/timestamp): the
//! message imprint is the signature's hash, the SignerInfo's signed attributes carry the TSTInfo's
//! digest and are signed by a timestamping certificate whose path leads, at the timestamp's time,
//! to the root of a timestamp authority of the trust valid at that time. The signing certificate
//! may be embedded in the token or only listed in the trusted root.

use aws_lc_rs::digest::{self, SHA256, SHA384, SHA512};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode};
use sigstack_fulcio::{SubjectKey, oids};
use x509_cert::Certificate;
use x509_tsp::{TimeStampResp, TstInfo};

use crate::chain::{TIME_STAMPING, validate_path};
use crate::{Trust, VerificationError};

const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");

fn refuse(message: impl Into<String>) -> VerificationError {
    VerificationError::Timestamp(message.into())
}

/// SHA-256/384/512 by OID; SHA-1 and anything else refused (Sigstore's algorithm registry).
fn hash(oid: &Oid, data: &[u8]) -> Result<Vec<u8>, VerificationError> {
    let algorithm = match oid.to_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => &SHA256,
        "2.16.840.1.101.3.4.2.2" => &SHA384,
        "2.16.840.1.101.3.4.2.3" => &SHA512,
        other => return Err(refuse(format!("hash algorithm {other} is not SHA-256, SHA-384 or SHA-512"))),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

/// The signature algorithm of a SignerInfo; `ecPublicKey` / `rsaEncryption` (which some TSAs
/// write) take the hash from the digest algorithm, as Go's crypto does.
fn signature_oid(signature: &Oid, digest: &Oid) -> Oid {
    let by_digest = |ecdsa: Oid, rsa: Oid| if *signature == oids::EC_PUBLIC_KEY { ecdsa } else { rsa };
    if *signature != oids::EC_PUBLIC_KEY && *signature != oids::RSA_ENCRYPTION {
        return *signature;
    }
    match digest.to_string().as_str() {
        "2.16.840.1.101.3.4.2.2" => by_digest(oids::ECDSA_WITH_SHA384, oids::SHA384_WITH_RSA),
        "2.16.840.1.101.3.4.2.3" => by_digest(oids::ECDSA_WITH_SHA512, oids::SHA512_WITH_RSA),
        _ => by_digest(oids::ECDSA_WITH_SHA256, oids::SHA256_WITH_RSA),
    }
}

fn identifies(id: &SignerIdentifier, cert: &Certificate) -> bool {
    match id {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            id.issuer == cert.tbs_certificate.issuer && id.serial_number == cert.tbs_certificate.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|own| own.as_bytes() == ski.0.as_bytes()),
    }
}

/// Verifies that `token_der` (a DER TimeStampResp, or the bare token) timestamps `signature` and
/// was signed by a trusted timestamp authority; returns its time (unix seconds).
pub fn verify_timestamp(trust: &Trust, token_der: &[u8], signature: &[u8]) -> Result<u64, VerificationError> {
    let token = match TimeStampResp::from_der(token_der) {
        Ok(response) => {
            use cmpv2::status::PkiStatus;
            if !matches!(response.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
                return Err(refuse(format!("the TSA did not grant it ({:?})", response.status.status)));
            }
            response.time_stamp_token.ok_or_else(|| refuse("the response holds no token"))?
        }
        Err(_) => ContentInfo::from_der(token_der).map_err(|e| refuse(format!("not an RFC 3161 response: {e}")))?,
    };
    if token.content_type != SIGNED_DATA {
        return Err(refuse("the token is not a CMS SignedData"));
    }
    let malformed = |e: der::Error| refuse(format!("the token: {e}"));
    let signed_data = SignedData::from_der(&token.content.to_der().map_err(malformed)?).map_err(malformed)?;
    if signed_data.encap_content_info.econtent_type != TST_INFO {
        return Err(refuse("the token holds no TSTInfo"));
    }
    let econtent =
        signed_data.encap_content_info.econtent.as_ref().ok_or_else(|| refuse("the token holds no TSTInfo"))?;
    let tst_der = OctetString::from_der(&econtent.to_der().map_err(malformed)?).map_err(malformed)?;
    let tst = TstInfo::from_der(tst_der.as_bytes()).map_err(malformed)?;
    // Go's encoding/asn1 (cosign, sigstore-go) refuses a non-minimal INTEGER; so does this.
    for (name, int) in [("serialNumber", Some(&tst.serial_number)), ("nonce", tst.nonce.as_ref())] {
        let bytes = int.map(|i| i.as_bytes()).unwrap_or_default();
        if bytes.len() > 1 && ((bytes[0] == 0 && bytes[1] < 0x80) || (bytes[0] == 0xff && bytes[1] >= 0x80)) {
            return Err(refuse(format!("TSTInfo {name}: integer not minimally-encoded")));
        }
    }
    if tst.message_imprint.hashed_message.as_bytes() != hash(&tst.message_imprint.hash_algorithm.oid, signature)? {
        return Err(refuse("the timestamp is over another signature (message imprint mismatch)"));
    }
    let time = tst.gen_time.to_unix_duration().as_secs();

    let info = signed_data.signer_infos.0.iter().next().ok_or_else(|| refuse("the token has no SignerInfo"))?;
    let attrs = info.signed_attrs.as_ref().ok_or_else(|| refuse("the SignerInfo has no signed attributes"))?;
    let attribute = |oid: Oid| attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next());
    let message_digest = attribute(MESSAGE_DIGEST)
        .and_then(|v| OctetString::from_der(&v.to_der().ok()?).ok())
        .ok_or_else(|| refuse("no message-digest attribute"))?;
    if message_digest.as_bytes() != hash(&info.digest_alg.oid, tst_der.as_bytes())? {
        return Err(refuse("the message-digest attribute is not the TSTInfo's"));
    }
    if let Some(content_type) = attribute(CONTENT_TYPE)
        && content_type.decode_as::<Oid>().ok() != Some(TST_INFO)
    {
        return Err(refuse("the content-type attribute is not TSTInfo"));
    }
    let signed_attrs = attrs.to_der().map_err(malformed)?;
    let algorithm = signature_oid(&info.signature_algorithm.oid, &info.digest_alg.oid);

    let embedded: Vec<Vec<u8>> = signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(cert) => cert.to_der().ok(),
            _ => None,
        })
        .collect();
    let mut reasons = Vec::new();
    for tsa in &trust.timestamp_authorities {
        if !tsa.valid.contains(time) {
            reasons.push(format!("the timestamp's time {time} is outside a trusted TSA's validity"));
            continue;
        }
        let Some((root, listed)) = tsa.chain.split_last() else { continue };
        let intermediates: Vec<&[u8]> = listed.iter().chain(embedded.iter()).map(Vec::as_slice).collect();
        for candidate in listed.iter().chain(embedded.iter()) {
            let Ok(cert) = Certificate::from_der(candidate) else { continue };
            if !identifies(&info.sid, &cert) {
                continue;
            }
            if let Err(e) =
                validate_path(candidate, &[root.as_slice()], &intermediates, time, TIME_STAMPING, "TSA certificate")
            {
                reasons.push(e.to_string());
                continue;
            }
            let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(malformed)?;
            let key = SubjectKey::from_spki_der(&spki).map_err(|e| refuse(format!("the TSA key: {e}")))?;
            match key.verify_signature_with(algorithm, &signed_attrs, info.signature.as_bytes()) {
                Ok(()) => return Ok(time),
                Err(e) => reasons.push(format!("the token's signature: {e}")),
            }
        }
    }
    if trust.timestamp_authorities.is_empty() {
        return Err(refuse("the bundle has a signed timestamp but no timestamp authority is trusted"));
    }
    Err(refuse(if reasons.is_empty() {
        "signed by no trusted timestamp authority (no TSA certificate of the trust or the token is its signer)"
            .to_string()
    } else {
        format!("no trusted timestamp authority verifies it: {}", reasons.join("; "))
    }))
}
