//! CA key material and certificate building.
//!
//! Certificates are assembled as `x509-cert` structures and signed with aws-lc-rs, rather than with
//! a certificate generator, because the embedded SCT must sign the exact TBS bytes of the final
//! certificate minus the SCT extension (RFC 6962 §3.3); owning the TBS makes that one encode.
//! P-256 signs leaves: it is ~40× faster than P-384 here and issuance speed is a goal. The root,
//! which signs once, is P-384.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::asn1::{BitString, OctetString, UtcTime};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sigstack_state::{StateError, load_or_create_private};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::FulcioError;
use crate::identity::Identity;
use crate::keys::SubjectKey;
use crate::oid;
use crate::sct::CtLog;

const ROOT_NAME: &str = "CN=sigstack test root CA (not for production),O=sigstack";
const INTERMEDIATE_NAME: &str = "CN=sigstack test intermediate CA (not for production),O=sigstack";
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Fulcio's leaf lifetime.
const LEAF_LIFETIME: Duration = Duration::from_secs(600);
/// CA validity starts a little in the past so that clocks a few minutes apart still agree.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What the state directory holds for the CA, in one file so it is replaced as a whole.
#[derive(Serialize, Deserialize)]
pub struct CaMaterial {
    root_key_pkcs8: String,
    root_cert_der: String,
    intermediate_key_pkcs8: String,
    intermediate_cert_der: String,
    ctlog_key_pkcs8: String,
}

/// A leaf certificate and the chain above it, each DER.
#[derive(Debug, Clone)]
pub struct IssuedChain {
    /// The leaf, then the intermediate, then the root.
    pub certificates: Vec<Vec<u8>>,
}

impl IssuedChain {
    /// The chain as PEM blocks, leaf first.
    pub fn pem(&self) -> Vec<String> {
        self.certificates.iter().map(|der| cert_pem(der)).collect()
    }
}

/// PEM of one DER certificate.
pub(crate) fn cert_pem(der: &[u8]) -> String {
    sigstack_wire::pem_lf("CERTIFICATE", der)
}

/// The issuing CA: root and intermediate certificates, the intermediate's key, and the CT log.
pub struct CertificateAuthority {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate_key: EcdsaKeyPair,
    intermediate_name: Name,
    intermediate_ski: Vec<u8>,
    /// SHA-256 of the intermediate's SPKI: the `issuer_key_hash` of every precert entry.
    intermediate_spki_hash: [u8; 32],
    ctlog: CtLog,
    rng: SystemRandom,
}

impl CertificateAuthority {
    /// Loads the CA from `dir/ca.json`, generating root, intermediate and CT key on first use.
    pub fn load_or_generate(dir: &Path) -> Result<Self, FulcioError> {
        sigstack_state::ensure_private_dir(dir)?;
        let path = dir.join("ca.json");
        let material: CaMaterial = load_or_create_private(
            &path,
            || {
                let material = generate_material().map_err(|e| StateError::corrupt(&path, e.to_string()))?;
                serde_json::to_vec_pretty(&material).map_err(|e| StateError::corrupt(&path, e.to_string()))
            },
            |bytes| serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        )?;
        Self::from_material(&material).map_err(|e| StateError::corrupt(&path, e.to_string()).into())
    }

    fn from_material(material: &CaMaterial) -> Result<Self, FulcioError> {
        let decode =
            |field: &str, value: &str| B64.decode(value).map_err(|e| FulcioError::Internal(format!("{field}: {e}")));
        let intermediate_der = decode("intermediate_cert_der", &material.intermediate_cert_der)?;
        let intermediate = Certificate::from_der(&intermediate_der)?;
        let intermediate_key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &decode("intermediate_key_pkcs8", &material.intermediate_key_pkcs8)?,
        )
        .map_err(|e| FulcioError::Internal(format!("intermediate key: {e}")))?;
        let ctlog = CtLog::from_pkcs8(&decode("ctlog_key_pkcs8", &material.ctlog_key_pkcs8)?)?;
        let mut intermediate_spki_hash = [0u8; 32];
        intermediate_spki_hash
            .copy_from_slice(digest(&SHA256, &intermediate.tbs_certificate.subject_public_key_info.to_der()?).as_ref());
        Ok(CertificateAuthority {
            intermediate_spki_hash,
            root_der: decode("root_cert_der", &material.root_cert_der)?,
            intermediate_ski: key_identifier(intermediate_key.public_key().as_ref()),
            intermediate_name: intermediate.tbs_certificate.subject.clone(),
            intermediate_der,
            intermediate_key,
            ctlog,
            rng: SystemRandom::new(),
        })
    }

    /// The root certificate (DER): the trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The issuing intermediate certificate (DER).
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// The CA chain above leaves, issuer first and root last (as trusted roots list it).
    pub fn ca_chain_der(&self) -> [&[u8]; 2] {
        [&self.intermediate_der, &self.root_der]
    }

    /// The root's notBefore as RFC 3339: where every validity range of the stack's trust starts.
    pub fn valid_from(&self) -> Result<String, FulcioError> {
        let root = Certificate::from_der(&self.root_der)?;
        Ok(root.tbs_certificate.validity.not_before.to_date_time().to_string())
    }

    /// The CT log whose SCTs are embedded in every leaf.
    pub fn ctlog(&self) -> &CtLog {
        &self.ctlog
    }

    /// Issues a leaf for `key` with `identity`, valid from `now` for 10 minutes, with one embedded SCT.
    pub fn issue(&self, key: &SubjectKey, identity: &Identity, now: SystemTime) -> Result<IssuedChain, FulcioError> {
        let not_before = now.duration_since(UNIX_EPOCH).map_err(|e| FulcioError::Internal(e.to_string()))?;
        // Whole seconds: UTCTime has no fractions, and the SCT timestamp must not precede notBefore.
        let not_before = Duration::from_secs(not_before.as_secs());
        let mut extensions = vec![
            extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
            extension(&ExtendedKeyUsage(vec![oid::CODE_SIGNING]), false)?,
            extension(&SubjectKeyIdentifier(OctetString::new(key_identifier(key.key_bits()))?), false)?,
            extension(&authority_key_id(&self.intermediate_ski)?, false)?,
        ];
        // Empty subject ⇒ the SAN must be critical (RFC 5280 §4.2.1.6).
        extensions.push(Extension {
            extn_id: oid::SUBJECT_ALT_NAME,
            critical: true,
            extn_value: OctetString::new(identity.san_der()?)?,
        });
        for (extn_id, value) in identity.extensions() {
            extensions.push(Extension { extn_id, critical: false, extn_value: OctetString::new(value)? });
        }
        let mut tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial(&self.rng)?,
            signature: algorithm(oid::ECDSA_WITH_SHA256),
            issuer: self.intermediate_name.clone(),
            validity: validity(not_before, LEAF_LIFETIME)?,
            subject: Name::default(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(key.spki_der())?,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        // RFC 6962 §3.2: the SCT signs the TBS without the SCT extension; appending it last keeps
        // every other extension in place, which is all verifiers strip (Go ct.BuildPrecertTBS, pyca).
        let issuer_key_hash = self.intermediate_spki_hash;
        let timestamp_ms = (not_before.as_millis() as u64).max(now_millis(now));
        let sct = self.ctlog.sign_precert(&issuer_key_hash, &tbs.to_der()?, timestamp_ms)?;
        if let Some(extensions) = tbs.extensions.as_mut() {
            extensions.push(Extension { extn_id: oid::SCT_LIST, critical: false, extn_value: OctetString::new(sct)? });
        }
        let leaf = sign_certificate(tbs, &self.intermediate_key, &self.rng, oid::ECDSA_WITH_SHA256)?;
        Ok(IssuedChain { certificates: vec![leaf, self.intermediate_der.clone(), self.root_der.clone()] })
    }
}

fn now_millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

fn generate_material() -> Result<CaMaterial, FulcioError> {
    let rng = SystemRandom::new();
    let generate = |alg: &'static EcdsaSigningAlgorithm| -> Result<(Vec<u8>, EcdsaKeyPair), FulcioError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| FulcioError::Internal(e.to_string()))?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(|e| FulcioError::Internal(e.to_string()))?;
        Ok((pkcs8.as_ref().to_vec(), pair))
    };
    let (root_pkcs8, root_key) = generate(&ECDSA_P384_SHA384_ASN1_SIGNING)?;
    let (intermediate_pkcs8, intermediate_key) = generate(&ECDSA_P256_SHA256_ASN1_SIGNING)?;
    let (ctlog_pkcs8, _) = generate(&ECDSA_P256_SHA256_ASN1_SIGNING)?;
    let start = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| FulcioError::Internal(e.to_string()))?;
    let start = Duration::from_secs(start.as_secs()) - BACKDATE;
    let root_name = Name::from_str(ROOT_NAME).map_err(|e| FulcioError::Internal(e.to_string()))?;
    let intermediate_name = Name::from_str(INTERMEDIATE_NAME).map_err(|e| FulcioError::Internal(e.to_string()))?;
    let root_ski = key_identifier(root_key.public_key().as_ref());
    let ca_key_usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);

    let root_tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial(&rng)?,
        signature: algorithm(oid::ECDSA_WITH_SHA384),
        issuer: root_name.clone(),
        validity: validity(start, CA_LIFETIME)?,
        subject: root_name.clone(),
        subject_public_key_info: spki_of(&root_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![
            extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?,
            extension(&ca_key_usage, true)?,
            extension(&SubjectKeyIdentifier(OctetString::new(root_ski.clone())?), false)?,
        ]),
    };
    let root_der = sign_certificate(root_tbs, &root_key, &rng, oid::ECDSA_WITH_SHA384)?;

    let intermediate_tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial(&rng)?,
        signature: algorithm(oid::ECDSA_WITH_SHA384),
        issuer: root_name,
        validity: validity(start, CA_LIFETIME - Duration::from_secs(24 * 3600))?,
        subject: intermediate_name,
        subject_public_key_info: spki_of(&intermediate_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![
            extension(&BasicConstraints { ca: true, path_len_constraint: Some(0) }, true)?,
            extension(&ca_key_usage, true)?,
            // Go's chain validation enforces EKU nesting, and Fulcio refuses an intermediate without it.
            extension(&ExtendedKeyUsage(vec![oid::CODE_SIGNING]), false)?,
            extension(
                &SubjectKeyIdentifier(OctetString::new(key_identifier(intermediate_key.public_key().as_ref()))?),
                false,
            )?,
            extension(&authority_key_id(&root_ski)?, false)?,
        ]),
    };
    let intermediate_der = sign_certificate(intermediate_tbs, &root_key, &rng, oid::ECDSA_WITH_SHA384)?;
    Ok(CaMaterial {
        root_key_pkcs8: B64.encode(root_pkcs8),
        root_cert_der: B64.encode(root_der),
        intermediate_key_pkcs8: B64.encode(intermediate_pkcs8),
        intermediate_cert_der: B64.encode(intermediate_der),
        ctlog_key_pkcs8: B64.encode(ctlog_pkcs8),
    })
}

fn spki_of(key: &EcdsaKeyPair) -> Result<SubjectPublicKeyInfoOwned, FulcioError> {
    let der = key.public_key().as_der().map_err(|e| FulcioError::Internal(e.to_string()))?;
    Ok(SubjectPublicKeyInfoOwned::from_der(der.as_ref())?)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    digest(&SHA1_FOR_LEGACY_USE_ONLY, public_key_bits).as_ref().to_vec()
}

fn authority_key_id(issuer_ski: &[u8]) -> Result<AuthorityKeyIdentifier, FulcioError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer_ski.to_vec())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

fn extension<E: AsExtension + Encode>(value: &E, critical: bool) -> Result<Extension, FulcioError> {
    Ok(Extension { extn_id: E::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters: None }
}

fn validity(start: Duration, lifetime: Duration) -> Result<Validity, FulcioError> {
    Ok(Validity {
        not_before: Time::UtcTime(UtcTime::from_unix_duration(start)?),
        not_after: Time::UtcTime(UtcTime::from_unix_duration(start + lifetime)?),
    })
}

/// A positive serial of at most 20 octets (RFC 5280 §4.1.2.2), 159 random bits.
fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, FulcioError> {
    let mut bytes = [0u8; 20];
    rng.fill(&mut bytes).map_err(|e| FulcioError::Internal(e.to_string()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::new(&bytes)?)
}

fn sign_certificate(
    tbs: TbsCertificate,
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
    signature_oid: ObjectIdentifier,
) -> Result<Vec<u8>, FulcioError> {
    let tbs_der = tbs.to_der()?;
    let signature = key.sign(rng, &tbs_der).map_err(|e| FulcioError::Internal(format!("signing: {e}")))?;
    let certificate = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm(signature_oid),
        signature: BitString::from_bytes(signature.as_ref())?,
    };
    Ok(certificate.to_der()?)
}
