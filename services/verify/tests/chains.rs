//! The negative corpus of certificate paths (issue 23), each refused naming the failed check, and
//! the forgery that once passed: a leaf honestly issued for identity A used as a CA to certify B.
//! Certificates are made with rcgen; the paths are judged by the core (rustls-webpki beneath).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use sigstack_verify::{CertificateAuthority, Trust, Validity, VerificationError, verify_certificate};

/// 2030-06-01T00:00:00Z: inside every validity below unless a test says otherwise.
const AT: u64 = 1_906_502_400;

struct Made {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn params(name: &str, ca: Option<BasicConstraints>, usages: Vec<KeyUsagePurpose>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = ca.map(IsCa::Ca).unwrap_or(IsCa::ExplicitNoCa);
    params.key_usages = usages;
    params.not_before = date_time_ymd(2030, 1, 1);
    params.not_after = date_time_ymd(2031, 1, 1);
    params
}

fn root(name: &str) -> Made {
    let params = params(name, Some(BasicConstraints::Unconstrained), vec![KeyUsagePurpose::KeyCertSign]);
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Made { params, key, der }
}

fn issue(params: CertificateParams, by: &Made) -> Made {
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&by.params, &by.key);
    let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
    Made { params, key, der }
}

fn intermediate(name: &str, by: &Made, ca: BasicConstraints, usages: Vec<KeyUsagePurpose>) -> Made {
    let mut params = params(name, Some(ca), usages);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    issue(params, by)
}

/// A Fulcio-shaped leaf for `identity`.
fn leaf_params(identity: &str, eku: Vec<ExtendedKeyUsagePurpose>) -> CertificateParams {
    let mut params = params("", None, vec![KeyUsagePurpose::DigitalSignature]);
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(identity.try_into().unwrap())];
    params.extended_key_usages = eku;
    params
}

fn leaf(identity: &str, by: &Made) -> Made {
    issue(leaf_params(identity, vec![ExtendedKeyUsagePurpose::CodeSigning]), by)
}

fn trusting(root: &Made, intermediates: &[&Made]) -> Trust {
    let mut chain: Vec<Vec<u8>> = intermediates.iter().map(|m| m.der.clone()).collect();
    chain.push(root.der.clone());
    Trust {
        certificate_authorities: vec![CertificateAuthority { chain, valid: Validity::default() }],
        ..Trust::default()
    }
}

fn standard() -> (Made, Made, Trust) {
    let root = root("root");
    let intermediate =
        intermediate("intermediate", &root, BasicConstraints::Constrained(0), vec![KeyUsagePurpose::KeyCertSign]);
    let trust = trusting(&root, &[&intermediate]);
    (root, intermediate, trust)
}

#[test]
fn a_fulcio_shaped_leaf_verifies_with_its_identity() {
    let (_, intermediate, trust) = standard();
    let leaf = leaf("https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", &intermediate);
    let verified = verify_certificate(&trust, &leaf.der, &[], AT).unwrap();
    assert_eq!(verified.identity.san, ["https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"]);
}

#[test]
fn a_leaf_used_as_a_ca_certifies_nobody() {
    let (_, intermediate, trust) = standard();
    let a = leaf("https://github.com/acme/a/.github/workflows/a.yml@refs/heads/main", &intermediate);
    // A's key signs a certificate for B, offered with A's certificate as its "chain".
    let b = issue(
        leaf_params(
            "https://github.com/acme/b/.github/workflows/b.yml@refs/heads/main",
            vec![ExtendedKeyUsagePurpose::CodeSigning],
        ),
        &a,
    );
    let refused = verify_certificate(&trust, &b.der, &[a.der.clone(), intermediate.der.clone()], AT).unwrap_err();
    assert!(
        matches!(&refused, VerificationError::Chain(m) if m.contains("not a CA") || m.contains("does not chain")),
        "{refused}"
    );
}

#[test]
fn an_issuer_without_key_cert_sign_is_refused() {
    let root = root("root");
    let signing_only =
        intermediate("no-certsign", &root, BasicConstraints::Unconstrained, vec![KeyUsagePurpose::DigitalSignature]);
    let trust = trusting(&root, &[&signing_only]);
    let leaf = leaf("https://example.com/x", &signing_only);
    let refused = verify_certificate(&trust, &leaf.der, &[], AT).unwrap_err();
    assert!(matches!(&refused, VerificationError::Chain(m) if m.contains("keyCertSign")), "{refused}");
}

#[test]
fn a_leaf_without_code_signing_is_refused() {
    let (_, intermediate, trust) = standard();
    for eku in [vec![], vec![ExtendedKeyUsagePurpose::ServerAuth]] {
        let leaf = issue(leaf_params("https://example.com/x", eku.clone()), &intermediate);
        let refused = verify_certificate(&trust, &leaf.der, &[], AT).unwrap_err();
        assert!(matches!(&refused, VerificationError::Usage(_)), "{eku:?}: {refused}");
    }
}

#[test]
fn a_ca_certificate_may_not_sign() {
    let (_, intermediate, trust) = standard();
    let mut params = leaf_params("https://example.com/x", vec![ExtendedKeyUsagePurpose::CodeSigning]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    let leaf = issue(params, &intermediate);
    let refused = verify_certificate(&trust, &leaf.der, &[], AT).unwrap_err();
    assert!(
        refused.to_string().starts_with("certificate usage:") || refused.to_string().starts_with("certificate chain:"),
        "{refused}"
    );
}

#[test]
fn path_length_beyond_an_issuers_constraint_is_refused() {
    let (root, intermediate, _) = standard();
    // intermediate says pathLen 0, yet certifies another CA.
    let below = intermediate_under(&intermediate);
    let trust = trusting(&root, &[&intermediate, &below]);
    let leaf = leaf("https://example.com/x", &below);
    let refused = verify_certificate(&trust, &leaf.der, &[], AT).unwrap_err();
    assert!(matches!(&refused, VerificationError::Chain(_)), "{refused}");
    let _ = root;
}

fn intermediate_under(by: &Made) -> Made {
    intermediate("below", by, BasicConstraints::Unconstrained, vec![KeyUsagePurpose::KeyCertSign])
}

#[test]
fn validity_is_judged_at_the_verified_time() {
    let (_, intermediate, trust) = standard();
    let leaf = leaf("https://example.com/x", &intermediate);
    let after = 1_956_528_000; // 2032-01-01
    let refused = verify_certificate(&trust, &leaf.der, &[], after).unwrap_err();
    assert!(matches!(&refused, VerificationError::Validity(_)), "{refused}");
    // The trusted root's own window for the CA counts too, inclusive at both ends.
    let mut bounded = trust.clone();
    bounded.certificate_authorities[0].valid = Validity { start: Some(AT + 1), end: None };
    assert!(matches!(verify_certificate(&bounded, &leaf.der, &[], AT), Err(VerificationError::Validity(_))));
    bounded.certificate_authorities[0].valid = Validity { start: Some(AT), end: Some(AT) };
    assert!(verify_certificate(&bounded, &leaf.der, &[], AT).is_ok());
}

#[test]
fn offered_certificates_are_only_intermediates_never_anchors() {
    let (_, _, trust) = standard();
    let stranger = root("stranger");
    let their_intermediate = intermediate(
        "their-intermediate",
        &stranger,
        BasicConstraints::Constrained(0),
        vec![KeyUsagePurpose::KeyCertSign],
    );
    let leaf = leaf("https://example.com/x", &their_intermediate);
    // Offering the stranger's whole chain, root included, does not make it trusted.
    let refused =
        verify_certificate(&trust, &leaf.der, &[their_intermediate.der.clone(), stranger.der.clone()], AT).unwrap_err();
    assert!(matches!(&refused, VerificationError::Chain(m) if m.contains("does not chain")), "{refused}");
}

/// Every algorithm the Sigstore specs allow, for CA and leaf keys alike: ECDSA P-256, P-384 and
/// P-521, RSA (PKCS#1 v1.5) and Ed25519; and each key's signature over an artifact, as a managed-key
/// bundle carries it.
#[test]
fn every_algorithm_the_specs_allow_signs_paths_and_artifacts() {
    use rcgen::{
        PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ECDSA_P521_SHA512, PKCS_ED25519, PKCS_RSA_SHA256,
    };
    use rcgen::{PublicKeyData, RsaKeySize, SigningKey};
    let key = |alg: &'static rcgen::SignatureAlgorithm| {
        if alg == &PKCS_RSA_SHA256 {
            KeyPair::generate_rsa_for(alg, RsaKeySize::_2048).unwrap()
        } else {
            KeyPair::generate_for(alg).unwrap()
        }
    };
    for (name, alg) in [
        ("P-256", &PKCS_ECDSA_P256_SHA256),
        ("P-384", &PKCS_ECDSA_P384_SHA384),
        ("P-521", &PKCS_ECDSA_P521_SHA512),
        ("RSA", &PKCS_RSA_SHA256),
        ("Ed25519", &PKCS_ED25519),
    ] {
        let root_params = params("root", Some(BasicConstraints::Unconstrained), vec![KeyUsagePurpose::KeyCertSign]);
        let root_key = key(alg);
        let root_der = root_params.self_signed(&root_key).unwrap().der().to_vec();
        let root = Made { params: root_params, key: root_key, der: root_der };
        let mut leaf_params = leaf_params("https://example.com/x", vec![ExtendedKeyUsagePurpose::CodeSigning]);
        leaf_params.distinguished_name = DistinguishedName::new();
        let leaf_key = key(alg);
        let leaf_der =
            leaf_params.signed_by(&leaf_key, &Issuer::from_params(&root.params, &root.key)).unwrap().der().to_vec();
        verify_certificate(&trusting(&root, &[]), &leaf_der, &[], AT).unwrap_or_else(|e| panic!("{name}: {e}"));

        let artifact = b"an artifact".to_vec();
        let signature = leaf_key.sign(&artifact).unwrap();
        let bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": ""}},
            "messageSignature": {"signature": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &signature)}
        });
        let checks =
            sigstack_verify::Checks { tlog: false, sct: false, public_key: Some(leaf_key.subject_public_key_info()) };
        let trust = Trust::default();
        let policy = sigstack_verify::IdentityPolicy::default();
        let bytes = sigstack_verify::Artifact::Bytes(artifact);
        sigstack_verify::verify_bundle(&trust, &bundle, &bytes, &policy, &checks)
            .unwrap_or_else(|e| panic!("{name} signature: {e}"));
        let other = sigstack_verify::Artifact::Bytes(b"another artifact".to_vec());
        assert!(sigstack_verify::verify_bundle(&trust, &bundle, &other, &policy, &checks).is_err(), "{name}");
    }
}
