//! The Rust `sigstore` crate (0.15), unmodified, against the stack.
//!
//! Finding: its high-level signer (`bundle::sign::SigningContext::new`) cannot target a private
//! instance, because the CT keyring it needs is `pub(crate)`; only `production()` builds one. So
//! signing here drives the crate's own public Fulcio client (`request_cert_v2`) and Rekor client
//! (`create_log_entry`), converts the log entry with the crate's own conversion, and assembles the
//! bundle exactly as `SigningArtifact::to_bundle` does. Verification is the crate's `Verifier` with
//! the stack's `trusted_root.json` and nothing else (chain, SCT, tlog, identity).
//! Its token parser requires an `email` claim, so this client signs with an email identity.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ecdsa::signature::hazmat::PrehashSigner;
use p256::NistP256;
use p256::elliptic_curve::Generate;
use sha2::{Digest, Sha256};
use sigstack_e2e::{GITHUB_ISSUER, Stack, cosign, run_ok, sigstore_python, token};
use sigstore::bundle::Bundle;
use sigstore::bundle::verify::{Verifier, policy};
use sigstore::fulcio::{FulcioClient, TokenProvider};
use sigstore::oauth::IdentityToken;
use sigstore::rekor::apis::configuration::Configuration as RekorConfiguration;
use sigstore::rekor::apis::entries_api::create_log_entry;
use sigstore::rekor::models::hashedrekord;
use sigstore::rekor::models::proposed_entry::ProposedEntry;
use sigstore::trust::sigstore::SigstoreTrustRoot;
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{VerificationMaterial, bundle, verification_material};
use sigstore_protobuf_specs::dev::sigstore::common::v1::{
    HashAlgorithm, HashOutput, MessageSignature, X509Certificate, X509CertificateChain,
};
use sigstore_protobuf_specs::dev::sigstore::rekor::v1::TransparencyLogEntry;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::{Name, RdnSequence};

const EMAIL: &str = "dev@acme.test";

/// Signs `artifact` with the crate's clients; returns the bundle.
async fn sign_with_the_crate(stack: &Stack, jwt: &str, artifact: &[u8]) -> Bundle {
    let identity = IdentityToken::try_from(jwt).expect("the crate parses the stack's email token");
    let key = ecdsa::SigningKey::<NistP256>::generate();
    let subject = Name::from_der(&RdnSequence::default().to_der().unwrap()).unwrap();
    let mut request = RequestBuilder::new(subject).unwrap();
    request.add_extension(&BasicConstraints { ca: false, path_len_constraint: None }).unwrap();
    let csr = request.build::<_, p256::ecdsa::DerSignature>(&key).unwrap();
    // The v2 call uses the token it is given; this provider is never asked.
    let fulcio = FulcioClient::new(stack.url("fulcio").parse().unwrap(), TokenProvider::Oauth(Default::default()));
    let certs = fulcio.request_cert_v2(csr, &identity).await.expect("the crate's Fulcio client gets a certificate");

    let digest = Sha256::digest(artifact);
    let signature: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
    let signature = signature.to_der().as_bytes().to_vec();
    let cert_pem = pem::encode(&pem::Pem::new("CERTIFICATE", certs.cert_der.clone()));
    let proposed = ProposedEntry::Hashedrekord {
        api_version: "0.0.1".into(),
        spec: hashedrekord::Spec {
            signature: hashedrekord::Signature {
                content: B64.encode(&signature),
                public_key: hashedrekord::PublicKey::new(B64.encode(cert_pem)),
            },
            data: hashedrekord::Data {
                hash: hashedrekord::Hash {
                    algorithm: hashedrekord::AlgorithmKind::sha256,
                    value: digest.iter().map(|b| format!("{b:02x}")).collect(),
                },
            },
        },
    };
    let rekor = RekorConfiguration { base_path: stack.url("rekor"), ..Default::default() };
    let entry = create_log_entry(&rekor, proposed).await.expect("the crate's Rekor client logs the entry");
    let tlog_entry: TransparencyLogEntry = entry.try_into().expect("the crate accepts the log's response");
    Bundle {
        media_type: "application/vnd.dev.sigstore.bundle+json;version=0.2".into(),
        verification_material: Some(VerificationMaterial {
            timestamp_verification_data: None,
            tlog_entries: vec![tlog_entry],
            content: Some(verification_material::Content::X509CertificateChain(X509CertificateChain {
                certificates: vec![X509Certificate { raw_bytes: certs.cert_der }],
            })),
        }),
        content: Some(bundle::Content::MessageSignature(MessageSignature {
            message_digest: Some(HashOutput { algorithm: HashAlgorithm::Sha2256.into(), digest: digest.to_vec() }),
            signature,
        })),
    }
}

fn verifier(dir: &std::path::Path) -> Verifier {
    let trusted_root = std::fs::read(dir.join("trust/trusted_root.json")).unwrap();
    let trust = SigstoreTrustRoot::from_trusted_root_json_unchecked(&trusted_root).unwrap();
    Verifier::new(RekorConfiguration::default(), trust).unwrap()
}

async fn verdict(verifier: &Verifier, artifact: &[u8], bundle: &Bundle, identity: &str, issuer: &str) -> bool {
    let policy = policy::Identity::new(identity, issuer);
    verifier.verify(std::io::Cursor::new(artifact.to_vec()), bundle.clone(), &policy, true).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigstore_crate_signs_and_verifies_with_the_trusted_root() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = b"signed with the sigstore crate's clients".to_vec();
    let jwt = token(dir.path(), &["--profile", "email", "--email", EMAIL]);
    let bundle = sign_with_the_crate(&stack, &jwt, &artifact).await;
    let bundle_json = serde_json::to_string(&bundle).unwrap();
    let bundle: Bundle = serde_json::from_str(&bundle_json).unwrap();

    let verifier = verifier(dir.path());
    let issuer = stack.url("oidc");
    assert!(verdict(&verifier, &artifact, &bundle, EMAIL, &issuer).await, "the crate verifies its bundle");
    assert!(!verdict(&verifier, &artifact, &bundle, "eve@acme.test", &issuer).await, "wrong identity");
    assert!(!verdict(&verifier, &artifact, &bundle, EMAIL, "https://accounts.example.com").await, "wrong issuer");
    assert!(!verdict(&verifier, b"tampered", &bundle, EMAIL, &issuer).await, "tampered artifact");

    // Cross: cosign v3 verifies the crate's bundle.
    let bundle_file = dir.path().join("crate.sigstore.json");
    std::fs::write(&bundle_file, &bundle_json).unwrap();
    let artifact_file = dir.path().join("artifact.bin");
    std::fs::write(&artifact_file, &artifact).unwrap();
    run_ok(
        Command::new(cosign("v3"))
            .env("HOME", dir.path())
            .args(["verify-blob", "--trusted-root"])
            .arg(dir.path().join("trust/trusted_root.json"))
            .arg("--bundle")
            .arg(&bundle_file)
            .args(["--certificate-identity", EMAIL, "--certificate-oidc-issuer", &issuer])
            .arg(&artifact_file),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigstore_crate_verifies_a_sigstore_python_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let _stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = dir.path().join("artifact.txt");
    std::fs::write(&artifact, "signed by python, checked by rust\n").unwrap();
    let bundle_file = dir.path().join("python.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path())
            .args(["sign", "--identity-token", &jwt, "--bundle"])
            .arg(&bundle_file)
            .arg(&artifact),
    );
    let bundle: Bundle = serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    let san = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";
    let verifier = verifier(dir.path());
    let content = std::fs::read(&artifact).unwrap();
    assert!(verdict(&verifier, &content, &bundle, san, GITHUB_ISSUER).await, "the crate verifies python's bundle");
    assert!(
        !verdict(
            &verifier,
            &content,
            &bundle,
            "https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main",
            GITHUB_ISSUER
        )
        .await
    );
}
