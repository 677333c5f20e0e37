//! One sweep of bad input over every HTTP endpoint of every service: malformed and truncated JSON,
//! wrong JSON types, unknown fields, invalid base64/PEM/DER/hex, bodies over the documented limit,
//! wrong content types, wrong methods, unknown routes, path traversal, absurd query parameters.
//! Every case must get a 4xx with a JSON error that says something, never a 5xx, and the service
//! must keep serving. Prints the number of cases per service (docs/reliability.md).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use sigstack_e2e::services::{Routers, Service};

struct Case {
    service: Service,
    category: &'static str,
    method: Method,
    uri: String,
    content_type: &'static str,
    body: Vec<u8>,
}

fn case(service: Service, category: &'static str, method: Method, uri: &str, body: impl Into<Vec<u8>>) -> Case {
    Case { service, category, method, uri: uri.to_string(), content_type: "application/json", body: body.into() }
}

/// JSON bodies every POST endpoint must refuse, by category.
fn json_garbage() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("malformed JSON", b"{not json".to_vec()),
        ("truncated JSON", br#"{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {"data": {"#.to_vec()),
        ("empty body", Vec::new()),
        ("wrong JSON type: array", b"[]".to_vec()),
        ("wrong JSON type: string", br#""hello""#.to_vec()),
        ("wrong JSON type: number", b"42".to_vec()),
        ("wrong JSON type: null", b"null".to_vec()),
        ("deep nesting", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        ("invalid UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
    ]
}

fn over_limit(limit: usize) -> Vec<u8> {
    let mut body = br#"{"padding": ""#.to_vec();
    body.resize(limit + 1024, b'a');
    body.extend_from_slice(br#""}"#);
    body
}

const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let posts: &[(Service, &str)] = &[
        (Service::Oidc, "/token"),
        (Service::Fulcio, "/api/v2/signingCert"),
        (Service::Fulcio, "/api/v1/signingCert"),
        (Service::Rekor, "/api/v1/log/entries"),
        (Service::Rekor, "/api/v1/log/entries/retrieve"),
        (Service::Rekor, "/api/v1/index/retrieve"),
        (Service::Webhook, "/mutate"),
        (Service::Webhook, "/validate"),
        (Service::RekorV2, "/api/v2/log/entries"),
        (Service::Tsa, "/api/v1/timestamp"),
    ];
    for (service, path) in posts {
        for (category, body) in json_garbage() {
            cases.push(case(*service, category, Method::POST, path, body));
        }
        let mut wrong_type = case(*service, "wrong content type", Method::POST, path, "hello");
        wrong_type.content_type = "text/plain";
        cases.push(wrong_type);
        cases.push(case(*service, "wrong method", Method::DELETE, path, ""));
        cases.push(case(*service, "wrong method", Method::PUT, path, "{}"));
    }
    // Bodies over each service's documented limit (docs/reliability.md: request size limits).
    for (service, path, limit) in [
        (Service::Oidc, "/token", sigstack_oidc::MAX_BODY_BYTES),
        (Service::Fulcio, "/api/v2/signingCert", sigstack_fulcio::MAX_BODY_BYTES),
        (Service::Fulcio, "/api/v1/signingCert", sigstack_fulcio::MAX_BODY_BYTES),
        (Service::Rekor, "/api/v1/log/entries", sigstack_rekor::MAX_BODY_BYTES),
        (Service::Rekor, "/api/v1/log/entries/retrieve", sigstack_rekor::MAX_BODY_BYTES),
        (Service::Webhook, "/mutate", sigstack_admission::webhook::MAX_BODY_BYTES),
        (Service::RekorV2, "/api/v2/log/entries", sigstack_rekor::v2::MAX_BODY_BYTES),
        (Service::Tsa, "/api/v1/timestamp", sigstack_tsa::MAX_BODY_BYTES),
    ] {
        cases.push(case(service, "body over the limit", Method::POST, path, over_limit(limit)));
    }
    for service in Service::ALL {
        for path in [
            "/nope",
            "/api/v3/anything",
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/api/v1/log/entries/../../x",
        ] {
            cases.push(case(service, "unknown route or traversal", Method::GET, path, ""));
        }
    }
    for (service, path) in [
        (Service::Oidc, "/.well-known/jwks"),
        (Service::Fulcio, "/api/v2/trustBundle"),
        (Service::Rekor, "/api/v1/log"),
        (Service::Webhook, "/healthz"),
        (Service::Tuf, "/timestamp.json"),
        (Service::Tuf, "/1.root.json"),
        (Service::RekorV2, "/checkpoint"),
        (Service::RekorV2, "/tile/0/000.p/1"),
        (Service::Tsa, "/api/v1/timestamp/certchain"),
    ] {
        cases.push(case(service, "wrong method", Method::POST, path, "{}"));
        cases.push(case(service, "wrong method", Method::DELETE, path, ""));
    }
    // The TUF repository: files that are not there, and ways out of the directory.
    for path in [
        "/2.root.json",
        "/targets/nope.json",
        "/..%2f..%2fetc%2fpasswd",
        "/targets/..%2f..%2f..%2fkey.pk8",
        "/%2e%2e/key.pk8",
        "/targets/%00",
    ] {
        cases.push(case(Service::Tuf, "missing file or traversal", Method::GET, path, ""));
    }

    // The issuer: claims of the wrong type, unknown fields, absurd values.
    for body in [
        json!({"sub": 42}),
        json!({"aud": {"x": 1}}),
        json!({"profile": "no-such-profile"}),
        json!({"not_a_field": true, "profile": 7}),
        json!({"expires_in": -5}),
        json!({"expires_in": 1e300}),
    ] {
        cases.push(case(Service::Oidc, "wrong JSON types / unknown fields", Method::POST, "/token", body.to_string()));
    }
    for query in ["expires_in=-1", "expires_in=99999999999999999999", "profile=%00", "aud=&aud=&aud=", "sub=a&sub=b"] {
        cases.push(case(Service::Oidc, "absurd query parameters", Method::GET, &format!("/token?{query}"), ""));
    }
    cases.push(case(Service::Oidc, "missing bearer", Method::GET, "/actions/token?audience=sigstore", ""));

    // The CA: invalid base64, PEM and DER, wrong shapes.
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
    for body in [
        json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": "!!!not base64!!!"}),
        json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": "aGVsbG8="}),
        json!({"credentials": {"oidcIdentityToken": token}, "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": "-----BEGIN PUBLIC KEY-----\nnot der\n-----END PUBLIC KEY-----\n"}, "proofOfPossession": "???"}}),
        json!({"credentials": {"oidcIdentityToken": token}, "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": "MFk="}, "proofOfPossession": "MEUCIQ=="}}),
        json!({"credentials": {"oidcIdentityToken": 5}}),
        json!({"credentials": {}, "certificateSigningRequest": 5}),
        json!({"credentials": {"oidcIdentityToken": "a.b"}}),
        json!({"credentials": {"oidcIdentityToken": token}}),
    ] {
        cases.push(case(
            Service::Fulcio,
            "invalid base64/PEM/DER",
            Method::POST,
            "/api/v2/signingCert",
            body.to_string(),
        ));
    }
    for body in [
        json!({"publicKey": {"algorithm": "ecdsa", "content": "***"}, "signedEmailAddress": "MEUCIQ=="}),
        json!({"publicKey": {"algorithm": "ecdsa", "content": "aGVsbG8="}, "signedEmailAddress": "***"}),
        json!({"publicKey": "x"}),
    ] {
        cases.push(case(
            Service::Fulcio,
            "invalid base64/PEM/DER",
            Method::POST,
            "/api/v1/signingCert",
            body.to_string(),
        ));
    }

    // The log: non-canonical and malformed entries, bad hex/base64, absurd indexes and sizes.
    let entry = |spec: Value| json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec}).to_string();
    for body in [
        entry(json!({"data": {"hash": {"algorithm": "sha256", "value": "zz"}}, "signature": {"content": "MEUCIQ==", "publicKey": {"content": "LS0t"}}})),
        entry(json!({"data": {"hash": {"algorithm": "md5", "value": SHA}}, "signature": {"content": "MEUCIQ==", "publicKey": {"content": "LS0t"}}})),
        entry(json!({"data": {"hash": {"algorithm": "sha256", "value": SHA}}, "signature": {"content": "!!", "publicKey": {"content": "LS0t"}}})),
        entry(json!({"data": {"hash": {"algorithm": "sha256", "value": SHA}}, "signature": {"content": "MEUCIQ==", "publicKey": {"content": "bm90IHBlbQ=="}}})),
        entry(json!({"data": {}, "signature": {}})),
        json!({"apiVersion": "9.9.9", "kind": "hashedrekord", "spec": {}}).to_string(),
        json!({"apiVersion": "0.0.1", "kind": "rekord", "spec": {}}).to_string(),
        json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {"envelope": "not json", "verifiers": []}}}).to_string(),
        json!({"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {"envelope": {"payload": "%%%"}}}}).to_string(),
    ] {
        cases.push(case(Service::Rekor, "invalid entry", Method::POST, "/api/v1/log/entries", body));
    }
    for query in ["logIndex=-1", "logIndex=18446744073709551616", "logIndex=999999999", "logIndex=abc", "logIndex="] {
        cases.push(case(
            Service::Rekor,
            "absurd query parameters",
            Method::GET,
            &format!("/api/v1/log/entries?{query}"),
            "",
        ));
    }
    for query in [
        "firstSize=-1&lastSize=2",
        "firstSize=5&lastSize=2",
        "firstSize=0&lastSize=99999999999",
        "lastSize=18446744073709551616",
        "firstSize=1",
        "firstSize=x&lastSize=y",
        "lastSize=1&treeID=-7",
        "lastSize=1&lastSize=2",
    ] {
        cases.push(case(
            Service::Rekor,
            "absurd query parameters",
            Method::GET,
            &format!("/api/v1/log/proof?{query}"),
            "",
        ));
    }
    // 80 bytes with a multi-byte character across byte 16, where the tree prefix ends (cargo fuzz).
    let multibyte = format!("{}%E2%82%AC{}", "0".repeat(14), "0".repeat(63));
    for name in ["zz", SHA, "..%2F..%2Fetc%2Fpasswd", &"f".repeat(10_000), "%ff%fe", "%", &multibyte] {
        cases.push(case(Service::Rekor, "bad entry names", Method::GET, &format!("/api/v1/log/entries/{name}"), ""));
    }
    for body in [
        json!({"logIndexes": [-1]}),
        json!({"logIndexes": [u64::MAX]}),
        json!({"entryUUIDs": ["not hex"]}),
        json!({"entryUUIDs": [format!("{}€{}", "0".repeat(14), "0".repeat(63))]}),
        json!({"logIndexes": (0..20_000).collect::<Vec<_>>()}),
    ] {
        cases.push(case(
            Service::Rekor,
            "absurd retrieve",
            Method::POST,
            "/api/v1/log/entries/retrieve",
            body.to_string(),
        ));
    }
    for body in [
        json!({"hash": "sha256:zz"}),
        json!({"hash": "md5:00"}),
        json!({"publicKey": {"format": "x509", "content": "!!"}}),
        json!({}),
    ] {
        cases.push(case(Service::Rekor, "bad index search", Method::POST, "/api/v1/index/retrieve", body.to_string()));
    }

    // Rekor v2: requests rekor-tiles refuses, tile paths that are not tiles or not there yet.
    let v2 = |verifier: Value, digest: &str| {
        json!({"hashedRekordRequestV002": {"digest": digest, "signature": {"content": "MEUCIQ==", "verifier": verifier}}})
            .to_string()
    };
    let p256 = json!({"publicKey": {"rawBytes": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"});
    for body in [
        v2(p256.clone(), "!!"),
        v2(p256.clone(), "AAAA"),
        v2(json!({"keyDetails": "PKIX_ECDSA_P256_SHA_256"}), "AAAA"),
        v2(json!({"publicKey": {"rawBytes": 5}, "keyDetails": "PKIX_ED25519"}), "AAAA"),
        v2(json!({"x509Certificate": {"rawBytes": "bm90IGRlcg=="}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}), "AAAA"),
        v2(json!({"publicKey": {"rawBytes": "bm90IGRlcg=="}, "keyDetails": "NOT_A_KEY_DETAIL"}), "AAAA"),
        json!({"hashedRekordRequestV002": {"digest": "AAAA"}}).to_string(),
        json!({"hashedRekordRequestV002": null}).to_string(),
        json!({"dsseRequestV002": {"envelope": {"payload": "e30=", "payloadType": "x", "signatures": []}, "verifiers": []}}).to_string(),
        json!({"hashedRekordRequestV002": {}, "dsseRequestV002": {}}).to_string(),
    ] {
        cases.push(case(Service::RekorV2, "invalid entry", Method::POST, "/api/v2/log/entries", body));
    }
    for path in [
        "/tile/0/001",
        "/tile/0/x000/001",
        "/tile/0/001.p/0",
        "/tile/0/001.p/256",
        "/tile/64/000",
        "/tile/-1/000",
        "/tile/entries/1",
        "/tile/entries/000.p/9",
        "/tile/0/x18446744073709551616/000",
        "/tile/0/..%2F..%2Fkey.json",
        "/api/v2/tile/0/00a",
        "/tile/0",
    ] {
        cases.push(case(Service::RekorV2, "bad or missing tile", Method::GET, path, ""));
    }
    // The TSA: DER that is not a TimeStampReq, SHA-1, JSON of the wrong shape.
    for (content_type, body) in [
        ("application/timestamp-query", b"\x30\x03\x02\x01\x01".to_vec()),
        ("application/timestamp-query", b"not DER at all".to_vec()),
        ("application/timestamp-query", Vec::new()),
        ("application/json", json!({"artifactHash": "AAAA", "hashAlgorithm": "sha1"}).to_string().into_bytes()),
        ("application/json", json!({"artifactHash": "!!", "hashAlgorithm": "sha256"}).to_string().into_bytes()),
        ("application/json", json!({"artifactHash": "AAAA", "hashAlgorithm": "sha256"}).to_string().into_bytes()),
        ("application/json", json!({"artifactHash": 5}).to_string().into_bytes()),
        (
            "application/json",
            json!({"artifactHash": "AAAA", "hashAlgorithm": "sha256", "nonce": -1}).to_string().into_bytes(),
        ),
        (
            "application/json",
            json!({"artifactHash": "AAAA", "hashAlgorithm": "sha256", "tsaPolicyOID": "not an oid"})
                .to_string()
                .into_bytes(),
        ),
    ] {
        let mut bad = case(Service::Tsa, "invalid timestamp request", Method::POST, "/api/v1/timestamp", body);
        bad.content_type = content_type;
        cases.push(bad);
    }

    // The webhook: wrong API versions and kinds, missing request parts, objects of the wrong shape.
    let review =
        |request: Value| json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    for body in [
        json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "ConfigMap"}),
        review(json!(null)),
        review(json!({"uid": 5, "object": {}})),
        review(json!({"uid": "u"})),
        review(json!({"uid": "u", "object": "a string"})),
        review(json!({"uid": "u", "object": [1, 2]})),
    ] {
        for path in ["/mutate", "/validate"] {
            cases.push(case(Service::Webhook, "wrong API version / shape", Method::POST, path, body.to_string()));
        }
    }
    cases
}

/// Some string in the error body that says what went wrong.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    ["message", "error_description", "error"]
        .iter()
        .find_map(|k| value[k].as_str().filter(|s| !s.trim().is_empty()).map(str::to_string))
}

#[test]
fn every_endpoint_refuses_bad_input_with_a_4xx_json_error_and_keeps_serving() {
    let routers = Routers::shared();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases() {
        let request = Request::builder()
            .method(case.method.clone())
            .uri(&case.uri)
            .header("content-type", case.content_type)
            .body(Body::from(case.body.clone()))
            .expect("every case is a valid HTTP request");
        let (status, body) = routers.call(case.service, request);
        let what = format!("{:?} {} {} ({})", case.service, case.method, truncate(&case.uri), case.category);
        if !status.is_client_error() {
            failures.push(format!("{what}: {status} {}", truncate(&String::from_utf8_lossy(&body))));
        } else if error_message(&body).is_none() {
            failures
                .push(format!("{what}: {status} without a JSON error: {}", truncate(&String::from_utf8_lossy(&body))));
        }
        *counts.entry(format!("{:?}", case.service)).or_default() += 1;
    }
    // Still serving.
    for (service, path) in [
        (Service::Oidc, "/healthz"),
        (Service::Fulcio, "/healthz"),
        (Service::Rekor, "/api/v1/log"),
        (Service::Webhook, "/healthz"),
        (Service::Tuf, "/timestamp.json"),
        (Service::RekorV2, "/checkpoint"),
        (Service::Tsa, "/api/v1/timestamp/certchain"),
    ] {
        let (status, _) = routers.call(service, Request::get(path).body(Body::empty()).unwrap());
        assert_eq!(status, StatusCode::OK, "{service:?} stopped serving");
    }
    let total: usize = counts.values().sum();
    eprintln!("BAD INPUT SUMMARY: {total} cases: {counts:?}");
    assert!(failures.is_empty(), "{} of {total} cases misbehaved:\n{}", failures.len(), failures.join("\n"));
}

fn truncate(text: &str) -> String {
    if text.len() > 160 { format!("{}...", &text[..text.floor_char_boundary(160)]) } else { text.to_string() }
}
