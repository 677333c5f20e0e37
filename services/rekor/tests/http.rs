//! The log over its router (no socket): a hashedrekord round trip whose SET and checkpoint are
//! checked with the key from /api/v1/log/publicKey, and the negative matrix.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sigstack_rekor::{TransparencyLog, router};
use tower::ServiceExt;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Client {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Client {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Client { key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(), rng }
    }

    fn hashedrekord(&self, data: &[u8]) -> Value {
        let signature = self.key.sign(&self.rng, data).unwrap();
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", self.key.public_key().as_der().unwrap().as_ref().to_vec()));
        json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex(digest(&SHA256, data).as_ref())}},
            "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": B64.encode(pem)}}}})
    }
}

async fn call(log: &TransparencyLog, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router(log.clone()).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn post(path: &str, body: impl Into<String>) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.into())).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn create_then_verify_set_and_checkpoint_with_the_published_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = TransparencyLog::open(dir.path(), "rekor.test").unwrap();
    let client = Client::new();
    let (status, headers, body) =
        call(&log, post("/api/v1/log/entries", client.hashedrekord(b"artifact").to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Byte layout the sigstore crate slices: `{"<80 hex>":{...}}` and a newline, as Go writes it.
    assert!(body.starts_with("{\"") && &body[82..85] == "\":{" && body.ends_with("}}\n"), "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let (uuid, entry) = body.as_object().unwrap().iter().next().unwrap();
    assert_eq!(headers["etag"], uuid.as_str());
    assert_eq!(headers["location"], format!("/api/v1/log/entries/{uuid}").as_str());
    assert_eq!(uuid.len(), 80);

    let (_, _, pem_text) = call(&log, get("/api/v1/log/publicKey")).await;
    let spki = pem::parse(pem_text).unwrap().into_contents();
    assert_eq!(entry["logID"], hex(digest(&SHA256, &spki).as_ref()));
    let point = &spki[spki.len() - 65..];
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point);

    // SET over canonical {body, integratedTime, logID, logIndex}, rebuilt here by hand.
    let set_payload = format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        entry["body"].as_str().unwrap(),
        entry["integratedTime"],
        entry["logID"].as_str().unwrap(),
        entry["logIndex"]
    );
    let set = B64.decode(entry["verification"]["signedEntryTimestamp"].as_str().unwrap()).unwrap();
    key.verify(set_payload.as_bytes(), &set).expect("SET verifies");

    // Checkpoint: note text, blank line, one em-dash signature line with keyhint = logID[:4].
    let checkpoint = entry["verification"]["inclusionProof"]["checkpoint"].as_str().unwrap();
    let (note, signature_line) = checkpoint.split_once("\n\n").unwrap();
    let note = format!("{note}\n");
    let lines: Vec<&str> = note.lines().collect();
    assert!(lines[0].starts_with("rekor.test - "));
    assert_eq!(lines[1], "2", "the genesis entry and this one");
    assert_eq!(
        B64.decode(lines[2]).unwrap(),
        hexdecode(entry["verification"]["inclusionProof"]["rootHash"].as_str().unwrap())
    );
    let signature_line = signature_line.strip_suffix('\n').unwrap();
    let (name, signature) = signature_line.strip_prefix("\u{2014} ").unwrap().split_once(' ').unwrap();
    assert_eq!(name, "rekor.test");
    let signature = B64.decode(signature).unwrap();
    assert_eq!(&signature[..4], &digest(&SHA256, &spki).as_ref()[..4]);
    key.verify(note.as_bytes(), &signature[4..]).expect("checkpoint verifies");

    // The stored body is the canonical form, not an echo.
    let stored: Value = serde_json::from_slice(&B64.decode(entry["body"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(stored["kind"], "hashedrekord");
    let stored_key =
        String::from_utf8(B64.decode(stored["spec"]["signature"]["publicKey"]["content"].as_str().unwrap()).unwrap())
            .unwrap();
    assert!(!stored_key.contains('\r'), "canonical PEM uses LF");

    // Reads by UUID (both forms), by index, and via retrieve.
    for path in [
        format!("/api/v1/log/entries/{uuid}"),
        format!("/api/v1/log/entries/{}", &uuid[16..]),
        "/api/v1/log/entries?logIndex=1".to_string(),
    ] {
        let (status, _, body) = call(&log, get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body[uuid]["body"], entry["body"], "{path}");
    }
    let (status, _, body) =
        call(&log, post("/api/v1/log/entries/retrieve", json!({"entries": [body_of(entry)]}).to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 1);
}

fn hexdecode(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn body_of(entry: &Value) -> Value {
    serde_json::from_slice(&B64.decode(entry["body"].as_str().unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn negative_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let log = TransparencyLog::open(dir.path(), "rekor.test").unwrap();
    let client = Client::new();
    let good = client.hashedrekord(b"first");
    let (status, _, _) = call(&log, post("/api/v1/log/entries", good.to_string())).await;
    assert_eq!(status, StatusCode::CREATED);

    let mut wrong_hash = good.clone();
    wrong_hash["spec"]["data"]["hash"]["value"] = json!(hex(digest(&SHA256, b"other").as_ref()));
    let mut bad_signature = good.clone();
    bad_signature["spec"]["signature"]["content"] = json!(B64.encode([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]));
    let mut bad_base64 = good.clone();
    bad_base64["spec"]["signature"]["content"] = json!("!!!");
    let mut bad_pem = good.clone();
    bad_pem["spec"]["signature"]["publicKey"]["content"] =
        json!(B64.encode("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n"));
    let mut unknown_kind = good.clone();
    unknown_kind["kind"] = json!("rpm");
    let mut not_a_kind = good.clone();
    not_a_kind["kind"] = json!("nope");
    let mut unknown_version = good.clone();
    unknown_version["apiVersion"] = json!("0.0.9");
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("malformed JSON", post("/api/v1/log/entries", "{\"kind\":"), StatusCode::BAD_REQUEST, "not JSON"),
        ("wrong hash", post("/api/v1/log/entries", wrong_hash.to_string()), StatusCode::BAD_REQUEST, "signature"),
        (
            "wrong signature",
            post("/api/v1/log/entries", bad_signature.to_string()),
            StatusCode::BAD_REQUEST,
            "signature",
        ),
        ("bad base64", post("/api/v1/log/entries", bad_base64.to_string()), StatusCode::BAD_REQUEST, "base64"),
        ("bad PEM", post("/api/v1/log/entries", bad_pem.to_string()), StatusCode::BAD_REQUEST, "PEM"),
        ("unknown kind", post("/api/v1/log/entries", unknown_kind.to_string()), StatusCode::BAD_REQUEST, "rpm"),
        (
            "not a kind of Rekor's",
            post("/api/v1/log/entries", not_a_kind.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid kind value: \"nope\"",
        ),
        ("unknown version", post("/api/v1/log/entries", unknown_version.to_string()), StatusCode::BAD_REQUEST, "0.0.9"),
        ("duplicate", post("/api/v1/log/entries", good.to_string()), StatusCode::CONFLICT, "already exists"),
        ("huge body", post("/api/v1/log/entries", " ".repeat(5 * 1024 * 1024)), StatusCode::PAYLOAD_TOO_LARGE, "body"),
        ("index out of range", get("/api/v1/log/entries?logIndex=5"), StatusCode::NOT_FOUND, "logIndex 5"),
        ("negative index", get("/api/v1/log/entries?logIndex=-1"), StatusCode::BAD_REQUEST, "non-negative"),
        ("bad uuid", get("/api/v1/log/entries/zz"), StatusCode::BAD_REQUEST, "64 or 80 hex"),
        ("unknown uuid", get(&format!("/api/v1/log/entries/{}", "ab".repeat(32))), StatusCode::NOT_FOUND, "no entry"),
        ("proof beyond size", get("/api/v1/log/proof?firstSize=1&lastSize=99"), StatusCode::BAD_REQUEST, "beyond"),
        ("proof reversed", get("/api/v1/log/proof?firstSize=2&lastSize=1"), StatusCode::BAD_REQUEST, "larger"),
        ("unknown route", get("/api/v1/nothing"), StatusCode::NOT_FOUND, "no such endpoint"),
        (
            "wrong method",
            Request::delete("/api/v1/log").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        ),
    ];
    for (name, request, expected, needle) in cases {
        let (status, headers, body) = call(&log, request).await;
        assert_eq!(status, expected, "{name}: {body}");
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: not JSON: {body}"));
        assert!(json["message"].as_str().unwrap().contains(needle), "{name}: {body} lacks {needle:?}");
        if expected == StatusCode::CONFLICT {
            assert!(headers["location"].to_str().unwrap().starts_with("/api/v1/log/entries/"));
        }
    }
    // Still serving, and nothing refused was logged.
    let (_, _, info) = call(&log, get("/api/v1/log")).await;
    assert_eq!(serde_json::from_str::<Value>(&info).unwrap()["treeSize"], 2, "genesis and the one accepted entry");
}

#[tokio::test]
async fn entries_survive_a_restart_with_consistent_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let first_root;
    {
        let log = TransparencyLog::open(dir.path(), "rekor.test").unwrap();
        for i in 0..5 {
            let (status, _, _) =
                call(&log, post("/api/v1/log/entries", client.hashedrekord(format!("a{i}").as_bytes()).to_string()))
                    .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        first_root = log.info().unwrap().root_hash;
    }
    let log = TransparencyLog::open(dir.path(), "rekor.test").unwrap();
    assert_eq!(log.size().unwrap(), 6, "genesis and five entries");
    assert_eq!(log.info().unwrap().root_hash, first_root);
    let (status, _, _) = call(&log, post("/api/v1/log/entries", client.hashedrekord(b"after").to_string())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = call(&log, get("/api/v1/log/proof?firstSize=6&lastSize=7")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn search_index_by_hash_key_and_operator() {
    let dir = tempfile::tempdir().unwrap();
    let log = TransparencyLog::open(dir.path(), "rekor.test").unwrap();
    let (alice, bob) = (Client::new(), Client::new());
    let mut uuids = Vec::new();
    for (client, data) in [(&alice, b"one"), (&alice, b"two"), (&bob, b"one")] {
        let (status, headers, body) =
            call(&log, post("/api/v1/log/entries", client.hashedrekord(data).to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        uuids.push(headers["etag"].to_str().unwrap().to_string());
    }
    let alice_key = B64
        .encode(pem::encode(&pem::Pem::new("PUBLIC KEY", alice.key.public_key().as_der().unwrap().as_ref().to_vec())));
    let one = hex(digest(&SHA256, b"one").as_ref());
    let search = |query: Value| {
        let log = log.clone();
        async move {
            let (status, _, body) = call(&log, post("/api/v1/index/retrieve", query.to_string())).await;
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    let sorted = |value: Value| {
        let mut list: Vec<String> = value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        list.sort();
        list
    };
    let mut expected = vec![uuids[0].clone(), uuids[2].clone()];
    expected.sort();
    assert_eq!(sorted(search(json!({"hash": one.clone()})).await.1), expected, "bare digest");
    assert_eq!(
        sorted(search(json!({"hash": format!("sha256:{}", one.to_uppercase())})).await.1),
        expected,
        "prefixed, any case"
    );
    let mut alices = vec![uuids[0].clone(), uuids[1].clone()];
    alices.sort();
    assert_eq!(sorted(search(json!({"publicKey": {"format": "x509", "content": alice_key.clone()}})).await.1), alices);
    assert_eq!(
        sorted(search(json!({"hash": one.clone(), "publicKey": {"format": "x509", "content": alice_key.clone()}, "operator": "and"})).await.1),
        vec![uuids[0].clone()]
    );
    assert_eq!(search(json!({"hash": hex(digest(&SHA256, b"none").as_ref())})).await.1, json!([]));
    // Entries appended after the first search are found by the next one.
    let (_, headers, _) = call(&log, post("/api/v1/log/entries", bob.hashedrekord(b"three").to_string())).await;
    let three = hex(digest(&SHA256, b"three").as_ref());
    assert_eq!(sorted(search(json!({"hash": three})).await.1), vec![headers["etag"].to_str().unwrap().to_string()]);
    for (query, needle) in [
        (json!({}), "at least one"),
        (json!({"hash": "abc"}), "not SHA-256"),
        (json!({"publicKey": {"format": "pgp", "content": alice_key}}), "x509"),
        (json!({"email": "a@b.test", "operator": "xor"}), "operator"),
    ] {
        let (status, body) = search(query.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{query}: {body}");
    }
}
