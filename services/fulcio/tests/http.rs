//! The CA over its HTTP router (no socket): every request form real clients use, and a negative
//! matrix where each refusal has the right status and a message naming the failed check.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sigstack_oidc::{Issuer, IssuerConfig, Profile, TokenRequest};
use tower::ServiceExt;

const SUB: &str = "repo:acme/widget:ref:refs/heads/main";

async fn send(setup: &Setup, request: Request<Body>) -> (StatusCode, String, String) {
    let response = sigstack_fulcio::router(setup.fulcio.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8_lossy(&body).into_owned())
}

fn v2(body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/api/v2/signingCert").header("content-type", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// sigstore-js's request shape: token in the body, PEM key, base64 proof.
fn js_request(token: &str, key: &ClientKey, challenge: &str) -> Value {
    json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": key.spki_pem()},
            "proofOfPossession": B64.encode(key.sign(challenge.as_bytes()))
        }
    })
}

fn csr_pem(mutate: impl FnOnce(&mut Vec<u8>)) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut der = params.serialize_request(&key).unwrap().der().to_vec();
    mutate(&mut der);
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}

fn pem_chain_len(text: &str) -> usize {
    text.matches("-----BEGIN CERTIFICATE-----").count()
}

#[tokio::test]
async fn every_client_request_form_is_accepted() {
    let setup = setup();
    let token = github_token(&setup.issuer);
    let key = ClientKey::new();

    // sigstore-js: token in the body.
    let (status, _, body) = send(&setup, v2(js_request(&token, &key, SUB), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let chain = body["signedCertificateEmbeddedSct"]["chain"]["certificates"].as_array().unwrap();
    assert_eq!(chain.len(), 3);
    assert!(chain.iter().all(|c| c.as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----")));

    // cosign v3 / sigstore-go: token in Authorization, DER key in base64.
    let request = json!({"publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": B64.encode(key.spki_der())},
                          "proofOfPossession": B64.encode(key.sign(SUB.as_bytes()))}});
    let (status, _, body) = send(&setup, v2(request, Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // sigstore-python: base64 of a PEM CSR, token in Authorization.
    let request = json!({"certificateSigningRequest": B64.encode(csr_pem(|_| {}))});
    let (status, _, body) = send(&setup, v2(request, Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // cosign v2: legacy v1 API, base64 of PEM key, 201 with a PEM chain.
    let request = json!({"publicKey": {"content": B64.encode(key.spki_pem()), "algorithm": ""},
                         "signedEmailAddress": B64.encode(key.sign(SUB.as_bytes()))});
    let request = Request::post("/api/v1/signingCert")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(request.to_string()))
        .unwrap();
    let (status, content_type, body) = send(&setup, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(content_type, "application/pem-certificate-chain");
    assert_eq!(pem_chain_len(&body), 3);

    // Email identity: proof over the email.
    let (status, _, body) =
        send(&setup, v2(js_request(&email_token(&setup.issuer), &key, "dev@acme.test"), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn trust_bundle_configuration_and_root_cert() {
    let setup = setup();
    let (status, _, body) = send(&setup, Request::get("/api/v2/trustBundle").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["chains"][0]["certificates"].as_array().unwrap().len(), 2, "intermediate and root, no leaf");
    let (status, _, body) = send(&setup, Request::get("/api/v2/configuration").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    let issuers = body["issuers"].as_array().unwrap();
    assert!(issuers.iter().any(|i| i["issuerUrl"] == GITHUB_ISSUER && i["challengeClaim"] == "sub"));
    assert!(issuers.iter().any(|i| i["issuerUrl"] == EMAIL_ISSUER && i["challengeClaim"] == "email"));
    let (status, _, body) = send(&setup, Request::get("/api/v1/rootCert").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pem_chain_len(&body), 2);
}

fn mint(issuer: &Issuer, request: TokenRequest) -> String {
    issuer.mint(&request).unwrap()
}

fn with_claims(claims: Value) -> TokenRequest {
    TokenRequest { repository: Some("acme/widget".into()), claims: claims.as_object().cloned(), ..Default::default() }
}

fn unsigned_token(header: Value, token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[tokio::test]
async fn negative_matrix() {
    let setup = setup();
    let key = ClientKey::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let good = github_token(&setup.issuer);
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = Issuer::open(stranger_dir.path(), IssuerConfig::new(EMAIL_ISSUER)).unwrap();

    let tampered_signature = {
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        sig[10] ^= 0xff;
        parts[2] = URL_SAFE_NO_PAD.encode(sig);
        parts.join(".")
    };
    let hs256 = {
        // The classic confusion: HS256 keyed with the issuer's public key.
        let jwks = serde_json::to_string(&setup.issuer.jwks()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').nth(1).unwrap()).unwrap()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(setup.issuer.keys().kid(sigstack_oidc::SigningAlg::RS256).to_string());
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(jwks.as_bytes())).unwrap()
    };
    let injected_jku = {
        // A token signed by a stranger whose header points at the stranger's keys: must be ignored.
        let token = mint(&stranger, with_claims(json!({})));
        let payload = token.split('.').nth(1).unwrap().to_string();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": setup.issuer.keys().kid(sigstack_oidc::SigningAlg::RS256), "jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/x5u"});
        format!("{}.{payload}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), token.split('.').nth(2).unwrap())
    };
    let es_key_with_rs_alg = {
        // RS/ES confusion: the ES256 key's kid on an RS256 header.
        let token = mint(&setup.issuer, with_claims(json!({})));
        let parts: Vec<&str> = token.split('.').collect();
        let header =
            json!({"alg": "RS256", "typ": "JWT", "kid": setup.issuer.keys().kid(sigstack_oidc::SigningAlg::ES256)});
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), parts[1], parts[2])
    };

    let token_cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            mint(&setup.issuer, with_claims(json!({"exp": now - 3600, "iat": now - 4000, "nbf": now - 4000}))),
            "expired",
        ),
        ("not yet valid", mint(&setup.issuer, with_claims(json!({"nbf": now + 3600}))), "not yet valid"),
        ("far-future iat", mint(&setup.issuer, with_claims(json!({"iat": now + 3600}))), "iat is in the future"),
        (
            "wrong audience",
            mint(&setup.issuer, TokenRequest { audience: Some("other".into()), ..with_claims(json!({})) }),
            "audience",
        ),
        (
            "unknown issuer",
            mint(&setup.issuer, TokenRequest { issuer: Some("https://evil.test".into()), ..with_claims(json!({})) }),
            "unknown issuer",
        ),
        ("bad signature", tampered_signature, "signature verification failed"),
        (
            "alg none",
            unsigned_token(json!({"alg": "none", "typ": "JWT"}), &good),
            "unsupported token algorithm \"none\"",
        ),
        ("HS256", hs256, "unsupported token algorithm \"HS256\""),
        ("RS/ES confusion", es_key_with_rs_alg, "unsupported token algorithm"),
        ("unknown kid", mint(&stranger, with_claims(json!({}))), "unknown signing key"),
        ("jku/x5u injected", injected_jku, "signature verification failed"),
        (
            "email not verified",
            mint(
                &setup.issuer,
                TokenRequest {
                    profile: Some(Profile::Email),
                    claims: json!({"email_verified": false}).as_object().cloned(),
                    ..Default::default()
                },
            ),
            "not verified",
        ),
        (
            "missing GitHub claim",
            mint(&setup.issuer, with_claims(json!({"job_workflow_sha": null}))),
            "job_workflow_sha",
        ),
        ("not a JWT", "abc.def".into(), "malformed token"),
    ];
    for (name, token, needle) in token_cases {
        let (status, _, body) = send(&setup, v2(js_request(&token, &key, SUB), None)).await;
        // As Fulcio v1.8: InvalidArgument, its sentence, then which check failed.
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], 3, "{name}: gRPC INVALID_ARGUMENT");
        assert!(body["message"].as_str().unwrap().starts_with("There was an error processing the identity token: "));
        assert!(body["message"].as_str().unwrap().contains(needle), "{name}: {body} lacks {needle:?}");
    }

    let dsa_spki = {
        // A DSA key: a type Fulcio does not certify.
        use der::Encode;
        let spki = spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: spki::ObjectIdentifier::new_unwrap("1.2.840.10040.4.1"),
                parameters: None,
            },
            subject_public_key: der::asn1::BitString::from_bytes(&[2, 1, 5]).unwrap(),
        };
        pem::encode(&pem::Pem::new("PUBLIC KEY", spki.to_der().unwrap()))
    };
    let request_cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "wrong proof of possession",
            v2(js_request(&good, &key, "somebody else"), None),
            StatusCode::BAD_REQUEST,
            "proof of possession",
        ),
        (
            "CSR with a bad self-signature",
            v2(
                json!({"certificateSigningRequest": B64.encode(csr_pem(|der| { let n = der.len(); der[n - 5] ^= 0x55; }))}),
                Some(&good),
            ),
            StatusCode::BAD_REQUEST,
            "self-signature",
        ),
        (
            "unsupported key type",
            v2(
                json!({"publicKeyRequest": {"publicKey": {"content": dsa_spki}, "proofOfPossession": "AAAA"}}),
                Some(&good),
            ),
            StatusCode::BAD_REQUEST,
            "unsupported public key",
        ),
        (
            "malformed JSON",
            Request::post("/api/v2/signingCert")
                .header("authorization", format!("Bearer {good}"))
                .body(Body::from("{\"publicKeyRequest\":"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "wrong JSON type",
            v2(json!({"publicKeyRequest": {"publicKey": {"content": 5}, "proofOfPossession": "AAAA"}}), Some(&good)),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "bad base64 proof",
            v2(
                json!({"publicKeyRequest": {"publicKey": {"content": key.spki_pem()}, "proofOfPossession": "!!!"}}),
                Some(&good),
            ),
            StatusCode::BAD_REQUEST,
            "not base64",
        ),
        (
            "bad PEM",
            v2(
                json!({"publicKeyRequest": {"publicKey": {"content": "-----BEGIN PUBLIC KEY-----\nnot pem"}, "proofOfPossession": "AAAA"}}),
                Some(&good),
            ),
            StatusCode::BAD_REQUEST,
            "PEM",
        ),
        (
            "bad DER",
            v2(
                json!({"publicKeyRequest": {"publicKey": {"content": B64.encode(b"not der")}, "proofOfPossession": "AAAA"}}),
                Some(&good),
            ),
            StatusCode::BAD_REQUEST,
            "SubjectPublicKeyInfo",
        ),
        (
            "bad CSR",
            v2(json!({"certificateSigningRequest": B64.encode("hello")}), Some(&good)),
            StatusCode::BAD_REQUEST,
            "PKCS#10",
        ),
        ("no key at all", v2(json!({}), Some(&good)), StatusCode::BAD_REQUEST, "publicKeyRequest"),
        (
            "no token",
            v2(json!({"certificateSigningRequest": B64.encode(csr_pem(|_| {}))}), None),
            StatusCode::BAD_REQUEST,
            "no identity token",
        ),
        (
            "unknown route",
            Request::get("/api/v2/nothing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
        (
            "wrong method",
            Request::get("/api/v2/signingCert").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (
            "huge body",
            Request::post("/api/v2/signingCert").body(Body::from(vec![b' '; 200_000])).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
    ];
    for (name, request, expected, needle) in request_cases {
        let (status, content_type, body) = send(&setup, request).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert_eq!(content_type, "application/json", "{name}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["message"].as_str().unwrap().contains(needle), "{name}: {body} lacks {needle:?}");
    }
}

/// RFC 6962 `add-pre-chain` for another CA: the SCT signs the precertificate's TBS without the
/// poison extension (checked by rebuilding that TBS with rcgen from the same parameters), and
/// anything that is not a precertificate with its issuer is a 400.
#[tokio::test]
async fn add_pre_chain_signs_an_sct_over_the_precertificate_without_its_poison() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    let setup = setup();
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = |poisoned: bool| {
        let mut params = rcgen::CertificateParams::new(vec!["leaf.test".to_string()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(7u64));
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 1, 1);
        if poisoned {
            let mut poison = rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3], vec![5, 0]);
            poison.set_criticality(true);
            params.custom_extensions = vec![poison];
        }
        params.signed_by(&leaf_key, &issuer).unwrap()
    };
    let (precert, plain) = (leaf(true), leaf(false));
    let add = |chain: Value| {
        Request::post("/ct/v1/add-pre-chain")
            .header("content-type", "application/json")
            .body(Body::from(json!({"chain": chain}).to_string()))
            .unwrap()
    };
    let (status, _, body) = send(&setup, add(json!([B64.encode(precert.der()), B64.encode(ca.der())]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["sct_version"], 0);
    let ctlog = setup.fulcio.ca().ctlog();
    assert_eq!(B64.decode(answer["id"].as_str().unwrap()).unwrap(), ctlog.log_id());
    let signature = B64.decode(answer["signature"].as_str().unwrap()).unwrap();
    assert_eq!(&signature[..2], &[4, 3], "SHA-256, ECDSA");
    let (_, plain_cert) = x509_parser::parse_x509_certificate(plain.der()).unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.der()).unwrap();
    let issuer_key_hash: [u8; 32] =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ca_cert.tbs_certificate.subject_pki.raw)
            .as_ref()
            .try_into()
            .unwrap();
    let signed = sigstack_fulcio::precert_signed_data(
        &issuer_key_hash,
        plain_cert.tbs_certificate.as_ref(),
        answer["timestamp"].as_u64().unwrap(),
        &[],
    )
    .unwrap();
    let (_, spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(ctlog.public_key_der())
            .unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki.subject_public_key.data.as_ref())
        .verify(&signed, &signature[4..])
        .expect("the SCT verifies over the TBS without the poison");

    for (chain, needle) in [
        (json!([B64.encode(plain.der()), B64.encode(ca.der())]), "not a precertificate"),
        (json!([B64.encode(precert.der())]), "needs the precertificate and its issuer"),
        (json!(["%%%", B64.encode(ca.der())]), "chain[0] is not base64"),
        (json!([B64.encode(b"junk"), B64.encode(ca.der())]), "chain[0] is not a DER certificate"),
    ] {
        let (status, _, body) = send(&setup, add(chain)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {body}");
        assert!(body.contains(needle), "{needle}: {body}");
    }
}
