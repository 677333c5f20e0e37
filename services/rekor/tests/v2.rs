//! Rekor v2 over its router (no socket): entries answered with proofs that check against the
//! checkpoint with the published Ed25519 key, duplicates, the tiles rebuilt by an independent
//! reader, restarts, and the bad-input matrix.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sigstack_e2e::rfc9162;
use sigstack_rekor::v2::{TileLog, TileLogOptions, TransparencyLogEntry, router, verify_checkpoint};
use tower::ServiceExt;

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Signer { key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap(), rng }
    }

    fn request(&self, artifact: &[u8]) -> Value {
        let signature = self.key.sign(&self.rng, artifact).unwrap();
        json!({"hashedRekordRequestV002": {
            "digest": B64.encode(digest(&SHA256, artifact).as_ref()),
            "signature": {"content": B64.encode(signature.as_ref()),
                "verifier": {"publicKey": {"rawBytes": B64.encode(self.key.public_key().as_der().unwrap().as_ref())},
                             "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
    }
}

async fn call(log: &TileLog, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(log.clone()).oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn post(body: impl Into<String>) -> Request<Body> {
    Request::post("/api/v2/log/entries")
        .header("content-type", "application/json")
        .body(Body::from(body.into()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn open(dir: &std::path::Path) -> TileLog {
    TileLog::open(dir, "127.0.0.1", TileLogOptions::default()).unwrap()
}

fn ed25519_key(log: &TileLog) -> Vec<u8> {
    // The last 32 bytes of an Ed25519 SPKI are the key.
    let spki = log.public_key_der().unwrap();
    spki[spki.len() - 32..].to_vec()
}

fn check_entry(log: &TileLog, entry: &TransparencyLogEntry) {
    let checkpoint =
        verify_checkpoint(&entry.inclusion_proof.checkpoint.envelope, "127.0.0.1", &ed25519_key(log)).unwrap();
    assert_eq!(checkpoint.size.to_string(), entry.inclusion_proof.tree_size);
    assert_eq!(B64.encode(checkpoint.root), entry.inclusion_proof.root_hash);
    let body = B64.decode(&entry.canonicalized_body).unwrap();
    let proof: Vec<[u8; 32]> =
        entry.inclusion_proof.hashes.iter().map(|h| B64.decode(h).unwrap().try_into().unwrap()).collect();
    let index: u64 = entry.log_index.parse().unwrap();
    assert!(rfc9162::verify_inclusion(index, checkpoint.size, &rfc9162::leaf_hash(&body), &proof, &checkpoint.root));
    assert_eq!(entry.log_id.key_id, B64.encode(log.key_id()));
    assert_eq!(entry.integrated_time, "0");
    assert_eq!((entry.kind_version.kind.as_str(), entry.kind_version.version.as_str()), ("hashedrekord", "0.0.2"));
}

#[tokio::test]
async fn entries_prove_against_the_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let signer = Signer::new();
    let (status, _, body) = call(&log, post(signer.request(b"first").to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let entry: TransparencyLogEntry = serde_json::from_slice(&body).unwrap();
    assert_eq!(entry.log_index, "1", "index 0 is the log's own genesis entry");
    check_entry(&log, &entry);
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert!(raw.get("inclusionPromise").is_none(), "a v2 log signs no SET");

    // Duplicates: 409 with the existing entry's index in x-log-index.
    let again = signer.request(b"first");
    let (status, headers, body) = call(&log, post(again.to_string())).await;
    // ECDSA signatures are randomised, so the same artifact signed again is a new entry; the same
    // request twice is the duplicate.
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let (status, headers2, body) = call(&log, post(again.to_string())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers2["x-log-index"], "2");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], 6, "gRPC ALREADY_EXISTS");
    assert!(headers.get("x-log-index").is_none());

    let (status, headers, checkpoint) = call(&log, get("/checkpoint")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(String::from_utf8(checkpoint).unwrap().starts_with("127.0.0.1\n3\n"));
    let (_, _, same) = call(&log, get("/api/v2/checkpoint")).await;
    assert!(String::from_utf8(same).unwrap().starts_with("127.0.0.1\n3\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_tile_reader_rebuilds_the_checkpointed_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let signer = Signer::new();
    // 300 entries: one full level-0 tile, a partial one, and a level-1 tile of width 1.
    let mut tasks = Vec::new();
    for i in 0..299u32 {
        let log = log.clone();
        let request = signer.request(&i.to_be_bytes());
        tasks.push(tokio::spawn(async move { call(&log, post(request.to_string())).await.0 }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let (_, _, note) = call(&log, get("/checkpoint")).await;
    let checkpoint = verify_checkpoint(&String::from_utf8(note).unwrap(), "127.0.0.1", &ed25519_key(&log)).unwrap();
    assert_eq!(checkpoint.size, 300);
    let mut fetched = Vec::new();
    let mut fetch = |path: &str| -> Result<Vec<u8>, String> {
        fetched.push(path.to_string());
        let request = get(&format!("/{path}"));
        let (status, headers, body) = futures_block(call(&log, request));
        if status != StatusCode::OK {
            return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&body)));
        }
        assert_eq!(headers["content-type"], "application/octet-stream");
        Ok(body)
    };
    let root = sigstack_e2e::tiles::rebuild_root(300, &mut fetch).unwrap();
    assert_eq!(root, checkpoint.root);
    assert!(fetched.contains(&"tile/1/000.p/1".to_string()), "{fetched:?}");

    // Not there yet, and not a tile at all.
    for (path, status) in [
        ("/tile/0/001", StatusCode::NOT_FOUND),
        ("/tile/0/001.p/45", StatusCode::NOT_FOUND),
        ("/tile/2/000.p/1", StatusCode::NOT_FOUND),
        ("/tile/0/x000/001", StatusCode::BAD_REQUEST),
        ("/tile/0/001.p/0", StatusCode::BAD_REQUEST),
        ("/tile/entries/1", StatusCode::BAD_REQUEST),
        ("/tile/9/000", StatusCode::BAD_REQUEST),
    ] {
        let (got, _, body) = call(&log, get(path)).await;
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert!(error["message"].as_str().unwrap().contains("tile"), "{path}: {error}");
    }
}

/// The tile reader is synchronous (as a user's would be); the router is async.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[tokio::test]
async fn a_restart_keeps_entries_key_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let request = signer.request(b"kept");
    let (first_key, first_entry) = {
        let log = open(dir.path());
        let (_, _, body) = call(&log, post(request.to_string())).await;
        (log.key_id(), serde_json::from_slice::<TransparencyLogEntry>(&body).unwrap())
    };
    // The writer thread of the first log ends with its last sender; give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let log = open(dir.path());
    assert_eq!(log.key_id(), first_key);
    assert_eq!(log.size().unwrap(), 2);
    let (status, headers, _) = call(&log, post(request.to_string())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(headers["x-log-index"], first_entry.log_index.as_str());
    let (_, _, body) = call(&log, post(signer.request(b"after").to_string())).await;
    let entry: TransparencyLogEntry = serde_json::from_slice(&body).unwrap();
    assert_eq!(entry.log_index, "2");
    check_entry(&log, &entry);
}

#[tokio::test]
async fn bad_requests_get_400s_that_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let signer = Signer::new();
    let valid = signer.request(b"x");
    let mut cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not a CreateEntryRequest"),
        ("{}".into(), "missing hashedRekordRequestV002"),
        (json!({"hashedRekordRequestV002": {}}).to_string(), "missing signature"),
        (json!({"dsseRequestV002": {"envelope": {}}}).to_string(), "must be hashedrekord"),
    ];
    let mut edit = |path: &[&str], value: Value, expect: &'static str| {
        let mut request = valid.clone();
        let mut target = &mut request["hashedRekordRequestV002"];
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        cases.push((request.to_string(), expect));
    };
    edit(&["digest"], json!(B64.encode([1u8; 20])), "digest length (20)");
    edit(&["digest"], json!("***"), "digest is not base64");
    edit(&["signature", "content"], json!(B64.encode([1u8; 70])), "signature verification failed");
    edit(&["signature", "verifier", "keyDetails"], json!("PKIX_ED25519"), "keyDetails PKIX_ED25519");
    edit(&["signature", "verifier", "keyDetails"], json!("PKIX_ECDSA_P384_SHA_384"), "not an allowed entry algorithm");
    edit(&["signature", "verifier", "keyDetails"], json!(""), "keyDetails is missing");
    edit(&["signature", "verifier", "publicKey", "rawBytes"], json!(B64.encode(b"not a key")), "SubjectPublicKeyInfo");
    edit(
        &["signature", "verifier", "x509Certificate"],
        json!({"rawBytes": B64.encode(b"junk")}),
        "both a public key and a certificate",
    );
    for (body, expect) in cases {
        let (status, _, answer) = call(&log, post(body.clone())).await;
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer.contains(expect), "{body}: {answer} should say {expect:?}");
        assert!(answer.contains(r#""code":3"#), "gRPC INVALID_ARGUMENT: {answer}");
    }
    let (status, _, _) = call(&log, Request::get("/api/v2/log/entries").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let huge = "x".repeat(5 * 1024 * 1024);
    let (status, _, _) = call(&log, post(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(log.size().unwrap(), 1, "nothing but the genesis entry was logged");
}
