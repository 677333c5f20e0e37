//! A CA wired to a local issuer, and client-side helpers, for the integration tests.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use sigstack_fulcio::{CertificateAuthority, Fulcio, IssuerKind, KeySource, OidcIssuer, TokenVerifier};
use sigstack_oidc::{Issuer, IssuerConfig, Profile, TokenRequest};

pub const EMAIL_ISSUER: &str = "http://127.0.0.1:9";
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub issuer: Issuer,
    pub fulcio: Arc<Fulcio>,
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::open(&dir.path().join("oidc"), IssuerConfig::new(EMAIL_ISSUER)).unwrap();
    let jwks = KeySource::Jwks(issuer.jwks());
    let verifier = TokenVerifier::new(vec![
        OidcIssuer {
            issuer_url: GITHUB_ISSUER.into(),
            kind: IssuerKind::GithubActions,
            audience: "sigstore".into(),
            keys: jwks.clone(),
        },
        OidcIssuer {
            issuer_url: EMAIL_ISSUER.into(),
            kind: IssuerKind::Email,
            audience: "sigstore".into(),
            keys: jwks,
        },
    ]);
    let ca = CertificateAuthority::load_or_generate(&dir.path().join("fulcio")).unwrap();
    Setup { _dir: dir, issuer, fulcio: Arc::new(Fulcio::new(ca, verifier)) }
}

pub fn github_token(issuer: &Issuer) -> String {
    issuer.mint(&TokenRequest { repository: Some("acme/widget".into()), ..Default::default() }).unwrap()
}

pub fn email_token(issuer: &Issuer) -> String {
    issuer
        .mint(&TokenRequest {
            profile: Some(Profile::Email),
            email: Some("dev@acme.test".into()),
            ..Default::default()
        })
        .unwrap()
}

/// An ephemeral P-256 key, as clients make one per signing.
pub struct ClientKey {
    pub pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl ClientKey {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        ClientKey { pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(), rng }
    }

    pub fn spki_der(&self) -> Vec<u8> {
        self.pair.public_key().as_der().unwrap().as_ref().to_vec()
    }

    // `allow`, not `expect`: each test binary compiles this module, and only one uses it.
    #[allow(dead_code, reason = "used by tests/http.rs, not tests/profile.rs")]
    pub fn spki_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der()))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(&self.rng, message).unwrap().as_ref().to_vec()
    }
}
