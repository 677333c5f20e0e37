//! The timestamp authority: its test CA chain (root, intermediate, leaf; the leaf and the
//! intermediate carry only the critical timeStamping EKU, as sigstore/timestamp-authority's do),
//! and RFC 3161 responses: a TSTInfo signed in a CMS SignedData with the signed attributes
//! verifiers check (content type, message digest, and the ESS signing-certificate-v2 that names the
//! leaf, which rfc3161-client, behind sigstore-python, requires).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use serde::{Deserialize, Serialize};
use sigstack_state::{StateError, load_or_create_private};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{MessageImprint, TimeStampResp, TspVersion, TstInfo};

use crate::TsaError;
use crate::oid;

/// sigstore/timestamp-authority's default TSA policy (Sigstore's private enterprise arc).
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.57264.2";
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const BACKDATE: Duration = Duration::from_secs(3600);

/// A hash algorithm a message imprint may use. SHA-1 is refused, as the public TSA does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    pub(crate) fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => oid::SHA256,
            HashAlgorithm::Sha384 => oid::SHA384,
            HashAlgorithm::Sha512 => oid::SHA512,
        }
    }

    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Result<Self, TsaError> {
        match *oid {
            o if o == oid::SHA256 => Ok(HashAlgorithm::Sha256),
            o if o == oid::SHA384 => Ok(HashAlgorithm::Sha384),
            o if o == oid::SHA512 => Ok(HashAlgorithm::Sha512),
            o if o == oid::SHA1 => Err(TsaError::BadRequest("SHA-1 message imprints are refused; use SHA-256".into())),
            o => Err(TsaError::BadRequest(format!("unsupported hash algorithm {o} (sha256, sha384, sha512)"))),
        }
    }

    /// By the JSON name sigstore-js sends.
    pub fn from_name(name: &str) -> Result<Self, TsaError> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Ok(HashAlgorithm::Sha256),
            "sha384" => Ok(HashAlgorithm::Sha384),
            "sha512" => Ok(HashAlgorithm::Sha512),
            "sha1" => Err(TsaError::BadRequest("SHA-1 message imprints are refused; use SHA-256".into())),
            other => Err(TsaError::BadRequest(format!("unsupported hashAlgorithm {other:?} (sha256, sha384, sha512)"))),
        }
    }

    pub(crate) fn len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// What a client asks to have timestamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRequest {
    /// The hash of the data (a signature, in Sigstore).
    pub hash_algorithm: HashAlgorithm,
    /// Its value.
    pub hashed_message: Vec<u8>,
    /// The nonce to echo, as the request's INTEGER (minimal two's complement, as DER has it).
    pub nonce: Option<Vec<u8>>,
    /// Whether to include the signing certificate.
    pub cert_req: bool,
    /// The policy asked for (this TSA has one).
    pub policy: Option<ObjectIdentifier>,
}

impl TimestampRequest {
    /// Parses a DER `TimeStampReq` (`application/timestamp-query`).
    pub fn from_der(bytes: &[u8]) -> Result<Self, TsaError> {
        let request = x509_tsp::TimeStampReq::from_der(bytes)
            .map_err(|e| TsaError::BadRequest(format!("the body is not a DER TimeStampReq: {e}")))?;
        let hash_algorithm = HashAlgorithm::from_oid(&request.message_imprint.hash_algorithm.oid)?;
        Ok(TimestampRequest {
            hash_algorithm,
            hashed_message: request.message_imprint.hashed_message.as_bytes().to_vec(),
            nonce: request.nonce.map(|n| n.as_bytes().to_vec()),
            cert_req: request.cert_req,
            policy: request.req_policy,
        })
    }

    /// Parses the JSON form sigstore-js sends: `{"artifactHash", "hashAlgorithm", "certificates",
    /// "nonce", "tsaPolicyOID"}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TsaError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct JsonRequest {
            artifact_hash: String,
            hash_algorithm: Option<String>,
            #[serde(default)]
            certificates: bool,
            nonce: Option<u64>,
            #[serde(rename = "tsaPolicyOID")]
            tsa_policy_oid: Option<String>,
        }
        let request: JsonRequest =
            serde_json::from_slice(bytes).map_err(|e| TsaError::BadRequest(format!("invalid JSON request: {e}")))?;
        let hash_algorithm = HashAlgorithm::from_name(request.hash_algorithm.as_deref().unwrap_or("sha256"))?;
        let hashed_message = B64
            .decode(&request.artifact_hash)
            .map_err(|_| TsaError::BadRequest("artifactHash is not base64".into()))?;
        let policy = request
            .tsa_policy_oid
            .map(|p| {
                ObjectIdentifier::new(&p).map_err(|_| TsaError::BadRequest(format!("tsaPolicyOID {p:?} is not an OID")))
            })
            .transpose()?;
        let nonce = request
            .nonce
            .map(|n| positive_int(&n.to_be_bytes()).map(|int| int.as_bytes().to_vec()))
            .transpose()
            .map_err(|e| TsaError::BadRequest(format!("nonce: {e}")))?;
        Ok(TimestampRequest { hash_algorithm, hashed_message, nonce, cert_req: request.certificates, policy })
    }
}

#[derive(Serialize, Deserialize)]
struct TsaMaterial {
    /// Leaf, intermediate, root (base64 DER).
    chain: Vec<String>,
    /// The leaf's key (base64 PKCS#8).
    leaf_key_pkcs8: String,
}

/// The timestamp authority of a stack: its chain and signing key.
pub struct TimestampAuthority {
    chain: Vec<Vec<u8>>,
    leaf: Certificate,
    key: EcdsaKeyPair,
    policy: ObjectIdentifier,
    rng: SystemRandom,
}

impl TimestampAuthority {
    /// Loads the TSA from `dir/tsa.json` (0600), generating its chain and key on first use.
    pub fn load_or_generate(dir: &Path) -> Result<Self, TsaError> {
        sigstack_state::ensure_private_dir(dir)?;
        let path = dir.join("tsa.json");
        let material: TsaMaterial = load_or_create_private(
            &path,
            || {
                let material = generate().map_err(|e| StateError::corrupt(&path, e.to_string()))?;
                serde_json::to_vec_pretty(&material).map_err(|e| StateError::corrupt(&path, e.to_string()))
            },
            |bytes| serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        )?;
        let decode = |v: &str| B64.decode(v).map_err(|e| TsaError::Internal(format!("tsa.json: {e}")));
        let chain = material.chain.iter().map(|c| decode(c)).collect::<Result<Vec<_>, _>>()?;
        let leaf = Certificate::from_der(chain.first().ok_or_else(|| TsaError::Internal("empty chain".into()))?)
            .map_err(|e| TsaError::Internal(format!("TSA leaf: {e}")))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &decode(&material.leaf_key_pkcs8)?)
            .map_err(|e| TsaError::Internal(format!("TSA key: {e}")))?;
        Ok(TimestampAuthority {
            chain,
            leaf,
            key,
            policy: ObjectIdentifier::new_unwrap(DEFAULT_POLICY),
            rng: SystemRandom::new(),
        })
    }

    /// The chain, leaf first and root last, DER (as `trusted_root.json` lists it).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The root's notBefore as RFC 3339 (the start of the TSA's `validFor`).
    pub fn valid_from(&self) -> Result<String, TsaError> {
        let root = Certificate::from_der(self.chain.last().map(Vec::as_slice).unwrap_or_default())
            .map_err(|e| TsaError::Internal(e.to_string()))?;
        Ok(root.tbs_certificate.validity.not_before.to_date_time().to_string())
    }

    /// A DER `TimeStampResp` granting `request` at `now`.
    pub fn timestamp(&self, request: &TimestampRequest, now: SystemTime) -> Result<Vec<u8>, TsaError> {
        if request.hashed_message.len() != request.hash_algorithm.len() {
            return Err(TsaError::BadRequest(format!(
                "the message imprint is {} bytes, not the {} bytes of {:?}",
                request.hashed_message.len(),
                request.hash_algorithm.len(),
                request.hash_algorithm
            )));
        }
        if let Some(policy) = request.policy.filter(|p| *p != self.policy) {
            return Err(TsaError::BadRequest(format!("unsupported policy {policy}: this TSA has {}", self.policy)));
        }
        let internal = |e: der::Error| TsaError::Internal(format!("DER: {e}"));
        let since_epoch = now.duration_since(UNIX_EPOCH).map_err(|e| TsaError::Internal(e.to_string()))?;
        let gen_time =
            GeneralizedTime::from_unix_duration(Duration::from_secs(since_epoch.as_secs())).map_err(internal)?;
        let mut serial = [0u8; 16];
        self.rng.fill(&mut serial).map_err(|_| TsaError::Internal("random serial".into()))?;
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned { oid: request.hash_algorithm.oid(), parameters: None },
                hashed_message: OctetString::new(request.hashed_message.clone()).map_err(internal)?,
            },
            serial_number: positive_int(&serial).map_err(internal)?,
            gen_time,
            accuracy: Some(x509_tsp::Accuracy { seconds: Some(1), millis: None, micros: None }),
            ordering: false,
            nonce: request.nonce.as_deref().map(Int::new).transpose().map_err(internal)?,
            tsa: Some(GeneralName::DirectoryName(self.leaf.tbs_certificate.subject.clone())),
            extensions: None,
        };
        let tst_der = tst.to_der().map_err(internal)?;

        let attribute = |oid: ObjectIdentifier, value: Any| -> Result<Attribute, TsaError> {
            Ok(Attribute { oid, values: SetOfVec::try_from(vec![value]).map_err(internal)? })
        };
        let leaf_der = self.chain.first().ok_or_else(|| TsaError::Internal("empty chain".into()))?;
        let signing_certificate = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(digest(&SHA256, leaf_der).as_ref()).map_err(internal)?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(self.leaf.tbs_certificate.issuer.clone())],
                    serial_number: self.leaf.tbs_certificate.serial_number.clone(),
                }),
            }],
        };
        let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
            attribute(oid::CONTENT_TYPE, Any::encode_from(&oid::TST_INFO).map_err(internal)?)?,
            attribute(
                oid::MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(digest(&SHA256, &tst_der).as_ref()).map_err(internal)?)
                    .map_err(internal)?,
            )?,
            attribute(oid::SIGNING_CERTIFICATE_V2, Any::encode_from(&signing_certificate).map_err(internal)?)?,
        ])
        .map_err(internal)?;
        let signature = self
            .key
            .sign(&self.rng, &signed_attrs.to_der().map_err(internal)?)
            .map_err(|_| TsaError::Internal("signing the timestamp".into()))?;
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: self.leaf.tbs_certificate.issuer.clone(),
                serial_number: self.leaf.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: AlgorithmIdentifierOwned { oid: oid::SHA256, parameters: None },
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned { oid: oid::ECDSA_WITH_SHA256, parameters: None },
            signature: OctetString::new(signature.as_ref()).map_err(internal)?,
            unsigned_attrs: None,
        };
        let certificates = if request.cert_req {
            Some(CertificateSet(
                SetOfVec::try_from(vec![CertificateChoices::Certificate(self.leaf.clone())]).map_err(internal)?,
            ))
        } else {
            None
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![AlgorithmIdentifierOwned {
                oid: oid::SHA256,
                parameters: None,
            }])
            .map_err(internal)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: oid::TST_INFO,
                econtent: Some(Any::encode_from(&OctetString::new(tst_der).map_err(internal)?).map_err(internal)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(internal)?),
        };
        let response = TimeStampResp {
            status: cmpv2::status::PkiStatusInfo {
                status: cmpv2::status::PkiStatus::Accepted,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(ContentInfo {
                content_type: oid::SIGNED_DATA,
                content: Any::encode_from(&signed_data).map_err(internal)?,
            }),
        };
        response.to_der().map_err(internal)
    }
}

/// RFC 5035 `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SigningCertificateV2 {
    pub(crate) certs: Vec<EssCertIdV2>,
}

/// `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash OCTET STRING, issuerSerial OPTIONAL }`
/// (the default algorithm is omitted in DER).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EssCertIdV2 {
    pub(crate) cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub(crate) issuer_serial: Option<IssuerSerial>,
}

/// A non-negative INTEGER from big-endian magnitude bytes, minimally encoded: `Int::new` keeps
/// the bytes as given, and Go's encoding/asn1 (cosign, sigstore-go) refuses a needless leading
/// zero ("integer not minimally-encoded") while a missing one makes the value negative.
fn positive_int(magnitude: &[u8]) -> der::Result<Int> {
    let first = magnitude.iter().position(|b| *b != 0).unwrap_or(magnitude.len().saturating_sub(1));
    let trimmed = magnitude.get(first..).unwrap_or(&[0]);
    let mut bytes = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.extend_from_slice(trimmed);
    if bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    Int::new(&bytes)
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct IssuerSerial {
    pub(crate) issuer: Vec<GeneralName>,
    pub(crate) serial_number: x509_cert::serial_number::SerialNumber,
}

/// The test chain: a root, an intermediate and the signing leaf, all P-256, named as tests.
fn generate() -> Result<TsaMaterial, TsaError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, KeyPair, KeyUsagePurpose,
        PKCS_ECDSA_P256_SHA256,
    };
    let rcgen_error = |e: rcgen::Error| TsaError::Internal(format!("certificate: {e}"));
    let now = SystemTime::now();
    let params = |name: &str, ca: IsCa, usages: Vec<KeyUsagePurpose>| -> Result<CertificateParams, TsaError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.distinguished_name.push(DnType::OrganizationName, "sigstack");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = ca;
        params.key_usages = usages;
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + CA_LIFETIME).into();
        Ok(params)
    };
    // The timeStamping EKU, critical (RFC 3161 §2.3; sigstore/timestamp-authority's chains).
    let time_stamping = || -> Result<CustomExtension, TsaError> {
        let eku = x509_cert::ext::pkix::ExtendedKeyUsage(vec![oid::TIME_STAMPING])
            .to_der()
            .map_err(|e| TsaError::Internal(e.to_string()))?;
        let mut extension = CustomExtension::from_oid_content(&[2, 5, 29, 37], eku);
        extension.set_criticality(true);
        Ok(extension)
    };
    let ca_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
    let root_params = params(
        "sigstack test TSA root (not for production)",
        IsCa::Ca(BasicConstraints::Unconstrained),
        ca_usages.clone(),
    )?;
    let root = root_params.self_signed(&root_key).map_err(rcgen_error)?;
    let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
    let mut intermediate_params = params(
        "sigstack test TSA intermediate (not for production)",
        IsCa::Ca(BasicConstraints::Constrained(0)),
        ca_usages,
    )?;
    intermediate_params.custom_extensions.push(time_stamping()?);
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let intermediate = intermediate_params.signed_by(&intermediate_key, &root_issuer).map_err(rcgen_error)?;
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
    let mut leaf_params = params(
        "sigstack test timestamp authority (not for production)",
        IsCa::ExplicitNoCa,
        vec![KeyUsagePurpose::DigitalSignature],
    )?;
    leaf_params.custom_extensions.push(time_stamping()?);
    let intermediate_issuer = rcgen::Issuer::new(intermediate_params, intermediate_key);
    let leaf = leaf_params.signed_by(&leaf_key, &intermediate_issuer).map_err(rcgen_error)?;
    Ok(TsaMaterial {
        chain: [leaf.der().to_vec(), intermediate.der().to_vec(), root.der().to_vec()]
            .iter()
            .map(|d| B64.encode(d))
            .collect(),
        leaf_key_pkcs8: B64.encode(leaf_key.serialize_der()),
    })
}

#[cfg(test)]
mod tests {
    use super::positive_int;

    #[test]
    fn integers_are_minimal_and_never_negative() {
        for (magnitude, expected) in [
            (&[0u8, 0, 5][..], &[5u8][..]),
            (&[0x80], &[0, 0x80]),
            (&[0, 0x7f, 1], &[0x7f, 1]),
            (&[0, 0], &[0]),
            (&[0, 0x80, 0], &[0, 0x80, 0]),
            (&[0xff; 8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ] {
            assert_eq!(positive_int(magnitude).unwrap().as_bytes(), expected, "{magnitude:?}");
        }
    }
}
