//! sigstack's Rekor v1 log beside the real one (sigstore/rekor v1.5.4 on Trillian v1.7.3 and
//! Debian's MariaDB), on one corpus of requests (issue 29): the same status for each, errors in
//! go-swagger's `{code, message}`, and every accepted entry verified by rekor-cli against the log
//! that made it (signed entry timestamp and inclusion proof). Then the clients judge the real log's
//! entries as they judge sigstack's: cosign v2, cosign v3 and sigstore-python sign blobs with the
//! stack's CA and the real Rekor v1, and verify what they made with its key. Differences on
//! purpose are listed in docs/services.md, and this test holds the list.

use std::process::Command;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::real_servers::{ClientJudges, Differential, RealRekorV1, describe, post};
use sigstack_e2e::{Stack, rekor_cli, run_ok};

fn key() -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hashedrekord 0.0.1 of `artifact` signed by `key` (PEM public key), with `edit` applied.
fn hashed_rekord(key: &EcdsaKeyPair, artifact: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let signature = key.sign(&SystemRandom::new(), artifact).unwrap();
    let public = sigstack_wire::pem_lf("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, artifact);
    let mut entry = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hex(digest.as_ref())}},
        "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": B64.encode(public)}}}});
    edit(&mut entry);
    entry.to_string().into_bytes()
}

/// A dsse 0.0.1 entry: an in-toto statement signed by `key` with its PEM as the verifier.
fn dsse(key: &EcdsaKeyPair) -> Vec<u8> {
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"aa"}}],"predicateType":"https://example.com/p","predicate":{}}"#;
    let pae = sigstack_rekor::pae("application/vnd.in-toto+json", payload);
    let signature = key.sign(&SystemRandom::new(), &pae).unwrap();
    let public = sigstack_wire::pem_lf("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
    let envelope = json!({"payloadType": "application/vnd.in-toto+json", "payload": B64.encode(payload),
        "signatures": [{"keyid": "", "sig": B64.encode(signature.as_ref())}]});
    json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
        "envelope": envelope.to_string(), "verifiers": [B64.encode(public)]}}})
    .to_string()
    .into_bytes()
}

/// rekor-cli's verdict on an entry the log at `url` answered (`{uuid: entry}`): its SET and its
/// inclusion proof, with the key the log publishes.
fn rekor_cli_verifies(url: &str, answer: &[u8]) -> Result<(), String> {
    let entry: Value = serde_json::from_slice(answer).map_err(|e| e.to_string())?;
    let uuid = entry.as_object().and_then(|m| m.keys().next()).ok_or("no entry")?.clone();
    let output = Command::new(rekor_cli())
        .args(["verify", "--rekor_server", url, "--uuid", &uuid])
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

/// Requests on which sigstack answers differently from the real Rekor v1, on purpose: each is a
/// row of the table in docs/services.md, with the reason.
const DIFFERENT_ON_PURPOSE: &[&str] = &["malformed JSON"];

#[test]
fn sigstacks_log_answers_the_corpus_as_the_real_rekor_v1_does() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(&dir.path().join("stack"), &["--no-registry"]).unwrap();
    let ours = stack.url("rekor");
    let real = RealRekorV1::start(dir.path());
    let (key, other) = (key(), key());
    let valid = hashed_rekord(&key, b"an artifact", |_| {});
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a hashedrekord of a managed key", valid.clone()),
        ("the same entry again", valid),
        ("a dsse entry", dsse(&key)),
        (
            "signature over another artifact",
            hashed_rekord(&key, b"an artifact", |e| {
                e["spec"]["data"]["hash"]["value"] = json!(hex(&[7u8; 32]));
            }),
        ),
        (
            "signature by another key",
            hashed_rekord(&other, b"an artifact", |e| {
                let public = sigstack_wire::pem_lf("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
                e["spec"]["signature"]["publicKey"]["content"] = json!(B64.encode(public));
            }),
        ),
        (
            "hash of the wrong length",
            hashed_rekord(&key, b"x", |e| {
                e["spec"]["data"]["hash"]["value"] = json!("abcd");
            }),
        ),
        (
            "public key not PEM",
            hashed_rekord(&key, b"y", |e| {
                e["spec"]["signature"]["publicKey"]["content"] = json!(B64.encode("not a key"));
            }),
        ),
        (
            "no signature",
            hashed_rekord(&key, b"z", |e| {
                e["spec"].as_object_mut().unwrap().remove("signature");
            }),
        ),
        ("an unknown kind", json!({"apiVersion": "0.0.1", "kind": "nope", "spec": {}}).to_string().into_bytes()),
        ("an unknown version", hashed_rekord(&key, b"w", |e| e["apiVersion"] = json!("9.9.9"))),
        ("malformed JSON", b"{".to_vec()),
    ];
    let mut table = Differential::new("rekor v1.5.4", DIFFERENT_ON_PURPOSE);
    let json = "application/json";
    for (name, body) in &cases {
        let (ours_status, ours_body) = post(&format!("{ours}/api/v1/log/entries"), json, body);
        let (real_status, real_body) = post(&format!("{}/api/v1/log/entries", real.url), json, body);
        table.record(
            name,
            (ours_status, describe(name, ours_status, &ours_body, "entry")),
            (real_status, describe(name, real_status, &real_body, "entry")),
        );
        for (who, url, status, answer) in [
            ("sigstack", ours.as_str(), ours_status, &ours_body),
            ("rekor", real.url.as_str(), real_status, &real_body),
        ] {
            if status < 300 {
                rekor_cli_verifies(url, answer).unwrap_or_else(|e| panic!("{name}: rekor-cli on {who}'s entry: {e}"));
            }
        }
    }
    // Reads: an entry that does not exist, a proof between impossible sizes.
    let get = |url: String| {
        let output = run_ok(Command::new("curl").args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url]));
        output.trim().parse::<u16>().unwrap()
    };
    for (name, path) in [
        ("an unknown entry", "/api/v1/log/entries/0000000000000000000000000000000000000000000000000000000000000000"),
        ("an index past the end", "/api/v1/log/entries?logIndex=99999"),
        ("a proof to a smaller tree", "/api/v1/log/proof?firstSize=5&lastSize=1"),
    ] {
        let (ours_status, real_status) = (get(format!("{ours}{path}")), get(format!("{}{path}", real.url)));
        table.record(name, (ours_status, ours_status.to_string()), (real_status, real_status.to_string()));
    }
    table.finish("rekor-v1-differential.md");
    drop(stack);
}

/// The clients judge the real Rekor v1's entries as they judge sigstack's: cosign v2 (its flags),
/// cosign v3 and sigstore-python (a signing config naming the real log) sign blobs with the
/// stack's CA and the real Rekor v1, and each bundle verifies with the stack's trusted root plus
/// the real log's key; cosign refuses them without that key.
#[test]
fn cosign_and_sigstore_python_log_in_the_real_rekor_v1_and_accept_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("stack");
    let stack = Stack::start(&state, &["--no-registry"]).unwrap();
    let real = RealRekorV1::start(dir.path());
    let real_pem = run_ok(Command::new("curl").args(["-fsS", &format!("{}/api/v1/log/publicKey", real.url)]));
    let real_spki = pem::parse(&real_pem).unwrap().into_contents();
    let real_key = dir.path().join("real-rekor.pub");
    std::fs::write(&real_key, &real_pem).unwrap();
    let real_log_id = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &real_spki));
    // A log in use is never empty: entry 0 of a fresh one has logIndex 0, which protobuf's JSON
    // leaves out of a bundle, and sigstore-python refuses the bundle as missing the field.
    let first = hashed_rekord(&key(), b"the first entry", |_| {});
    let (status, answer) = post(&format!("{}/api/v1/log/entries", real.url), "application/json", &first);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let judges = ClientJudges::new(dir.path(), &state, |signing, root| {
        for log in signing["rekorTlogUrls"].as_array_mut().unwrap() {
            log["url"] = json!(real.url);
        }
        let mut log = root["tlogs"][0].clone();
        log["baseUrl"] = json!(real.url);
        log["publicKey"]["rawBytes"] = json!(B64.encode(&real_spki));
        log["publicKey"]["keyDetails"] = json!("PKIX_ECDSA_P256_SHA_256");
        log["logId"] = json!({"keyId": real_log_id});
        root["tlogs"].as_array_mut().unwrap().push(log);
    });
    let jwt = sigstack_e2e::token(&state, &["--repo", "acme/app"]);
    let identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let cosign2 = dir.path().join("cosign-v2.sigstore.json");
    run_ok(
        sigstack_e2e::cosign_command("v2", &state)
            .env("SIGSTORE_REKOR_PUBLIC_KEY", &real_key)
            .args(["sign-blob", "--yes", "--new-bundle-format", "--identity-token", &jwt])
            .args(["--fulcio-url", &stack.url("fulcio"), "--rekor-url", &real.url, "--bundle"])
            .arg(&cosign2)
            .arg(&judges.artifact),
    );
    let mut bundles = judges.sign(&jwt);
    bundles.push(("cosign v2", cosign2));
    for (who, bundle) in bundles {
        let made: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
        assert_eq!(made["verificationMaterial"]["tlogEntries"][0]["logId"]["keyId"], real_log_id.as_str(), "{who}");
        judges.assert_verified(who, &bundle, identity, sigstack_e2e::GITHUB_ISSUER);
    }
    drop(stack);
}
