//! sigstack's Rekor v2 log beside the real one (sigstore/rekor-tiles v2.3.0, its POSIX backend on a
//! temporary directory), on one corpus of write requests (issue 29): the same status for each,
//! errors in gRPC-gateway's `{code, message}`, and for an accepted entry an inclusion proof that
//! leads to a checkpoint the log signed, checked by sigstack's verifier with each log's own key.
//! Differences on purpose are listed in docs/rekor-v2-tsa.md, and this test holds the list.

use std::process::Command;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::real_servers::{ClientJudges, Differential, RealServer, describe, free_port, post, start_logged};
use sigstack_e2e::{Stack, rekor_tiles_server, run_ok};

/// rekor-tiles with a fresh Ed25519 key, checkpoints every second. It cannot report ports it chose,
/// so free ones are picked and the start is tried again when one was taken in between.
fn real_log(dir: &std::path::Path) -> (RealServer, Vec<u8>) {
    let key = dir.join("log-key.pem");
    run_ok(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key));
    let public = run_ok(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key));
    let spki = pem::parse(public).unwrap().into_contents();
    for attempt in 0..5 {
        let (http, grpc, metrics) = (free_port(), free_port(), free_port());
        let mut command = Command::new(rekor_tiles_server());
        command
            .args(["serve", "--hostname", "127.0.0.1", "--storage-dir"])
            .arg(dir.join(format!("store-{attempt}")))
            .arg("--signer-filepath")
            .arg(&key)
            .args(["--http-port", &http.to_string(), "--grpc-port", &grpc.to_string()])
            .args([
                "--http-metrics-port",
                &metrics.to_string(),
                "--checkpoint-interval",
                "1s",
                "--batch-max-age",
                "100ms",
            ]);
        if let Some(server) = start_logged(&mut command, |_| format!("http://127.0.0.1:{http}"), "starting HTTP proxy")
        {
            return (server, spki);
        }
    }
    panic!("rekor-tiles did not start");
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec()
}

/// A hashedRekordRequestV002 of `artifact` signed by `key`, with `edit` applied.
fn hashed_rekord(key: &EcdsaKeyPair, artifact: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let signature = key.sign(&SystemRandom::new(), artifact).unwrap();
    let mut request = json!({"hashedRekordRequestV002": {
        "digest": B64.encode(sha256(artifact)),
        "signature": {"content": B64.encode(signature.as_ref()), "verifier": {
            "publicKey": {"rawBytes": B64.encode(key.public_key().as_der().unwrap().as_ref())},
            "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}});
    edit(&mut request);
    request.to_string().into_bytes()
}

/// The key ID of an Ed25519 note key named `name` (C2SP signed-note).
fn note_key_id(name: &str, spki: &[u8]) -> Vec<u8> {
    let raw = &spki[spki.len() - 32..];
    sha256(&[name.as_bytes(), b"\n\x01", raw].concat())
}

/// The accepted entry's proof leads to a checkpoint signed with the log's key under its host name.
fn proven(answer: &[u8], spki: &[u8]) -> Result<(), String> {
    let entry: Value = serde_json::from_slice(answer).map_err(|e| e.to_string())?;
    let proof = &entry["inclusionProof"];
    let note = proof["checkpoint"]["envelope"].as_str().ok_or("no checkpoint")?;
    let checkpoint = sigstack_verify::verify_note(note, spki, &note_key_id("127.0.0.1", spki), Some("127.0.0.1"))
        .map_err(|e| e.to_string())?;
    let number = |v: &Value| v.as_u64().or_else(|| v.as_str()?.parse().ok());
    let index = number(&proof["logIndex"]).ok_or("no index")?;
    let size = number(&proof["treeSize"]).ok_or("no size")?;
    let hashes: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| B64.decode(h.as_str().unwrap_or_default()).unwrap().try_into().unwrap())
        .collect();
    let body = B64.decode(entry["canonicalizedBody"].as_str().ok_or("no body")?).map_err(|e| e.to_string())?;
    let leaf = sigstack_rekor::merkle::leaf_hash(&body);
    if checkpoint.size != size
        || !sigstack_rekor::merkle::verify_inclusion(index, size, &leaf, &hashes, &checkpoint.root)
    {
        return Err("the proof does not lead to the checkpoint".into());
    }
    Ok(())
}

/// Requests on which sigstack answers differently from rekor-tiles, on purpose: each is a row of
/// the table in docs/rekor-v2-tsa.md, with the reason.
const DIFFERENT_ON_PURPOSE: &[&str] = &["a body over 4 MiB"];

#[test]
fn sigstacks_v2_log_answers_the_corpus_as_rekor_tiles_does() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(&dir.path().join("stack"), &["--rekor", "v2", "--no-registry"]).unwrap();
    let ours = stack.url("rekor-v2");
    let ours_spki =
        pem::parse(std::fs::read(dir.path().join("stack/trust/rekor-v2.pub")).unwrap()).unwrap().into_contents();
    let (real, real_spki) = real_log(dir.path());
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap();
    let other = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap();
    let valid = hashed_rekord(&key, b"an artifact", |_| {});
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a hashedrekord of a managed key", valid.clone()),
        ("the same entry again", valid),
        ("signature over another artifact", hashed_rekord(&key, b"an artifact", |r| {
            r["hashedRekordRequestV002"]["digest"] = json!(B64.encode(sha256(b"another artifact")));
        })),
        ("signature by another key", hashed_rekord(&other, b"an artifact", |r| {
            r["hashedRekordRequestV002"]["signature"]["verifier"]["publicKey"]["rawBytes"] =
                json!(B64.encode(key.public_key().as_der().unwrap().as_ref()));
        })),
        ("digest of the wrong length", hashed_rekord(&key, b"x", |r| {
            r["hashedRekordRequestV002"]["digest"] = json!(B64.encode([0u8; 16]));
        })),
        ("key details of another key type", hashed_rekord(&key, b"y", |r| {
            r["hashedRekordRequestV002"]["signature"]["verifier"]["keyDetails"] = json!("PKIX_ECDSA_P384_SHA_384");
        })),
        ("no signature", hashed_rekord(&key, b"z", |r| {
            r["hashedRekordRequestV002"].as_object_mut().unwrap().remove("signature");
        })),
        ("public key not DER", hashed_rekord(&key, b"w", |r| {
            r["hashedRekordRequestV002"]["signature"]["verifier"]["publicKey"]["rawBytes"] = json!(B64.encode(b"not a key"));
        })),
        ("a dsseRequestV002", json!({"dsseRequestV002": {"envelope": {"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}, "verifiers": []}}).to_string().into_bytes()),
        ("neither kind", b"{}".to_vec()),
        ("malformed JSON", b"{".to_vec()),
        ("a body over 4 MiB", {
            let mut body = b"{\"padding\":\"".to_vec();
            body.resize(5 * 1024 * 1024, b'a');
            body.extend_from_slice(b"\"}");
            body
        }),
    ];
    let mut table = Differential::new("rekor-tiles v2.3.0", DIFFERENT_ON_PURPOSE);
    let json = "application/json";
    for (name, body) in &cases {
        let (ours_status, ours_body) = post(&format!("{ours}/api/v2/log/entries"), json, body);
        let (real_status, real_body) = post(&format!("{}/api/v2/log/entries", real.url), json, body);
        table.record(
            name,
            (ours_status, describe(name, ours_status, &ours_body, "entry")),
            (real_status, describe(name, real_status, &real_body, "entry")),
        );
        if ours_status < 300 {
            proven(&ours_body, &ours_spki).unwrap_or_else(|e| panic!("{name}, sigstack's entry: {e}"));
        }
        if real_status < 300 {
            proven(&real_body, &real_spki).unwrap_or_else(|e| panic!("{name}, rekor-tiles' entry: {e}"));
        }
    }
    table.finish("rekor-v2-differential.md");
    drop(stack);
}

/// The clients judge rekor-tiles' entries as they judge sigstack's: cosign v3 and sigstore-python
/// sign blobs through a signing config naming rekor-tiles as the Rekor v2 log (the stack's CA and
/// TSA beside it), and both verify both bundles with the stack's trusted root plus rekor-tiles'
/// key; without that key, cosign refuses them.
#[test]
fn cosign_and_sigstore_python_log_in_rekor_tiles_and_accept_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("stack");
    let stack = Stack::start(&state, &["--rekor", "v2", "--no-registry"]).unwrap();
    let (real, real_spki) = real_log(dir.path());
    let real_key_id = B64.encode(note_key_id("127.0.0.1", &real_spki));
    // A log in use is never empty. Entry 0 of a fresh one has logIndex 0, which protobuf's JSON
    // leaves out, and sigstore-python then refuses the bundle as missing the field (sigstack's
    // log starts with a genesis entry for that reason).
    let throwaway = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap();
    let (status, answer) = post(
        &format!("{}/api/v2/log/entries", real.url),
        "application/json",
        &hashed_rekord(&throwaway, b"the first entry", |_| {}),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let ours = stack.url("rekor-v2");
    let judges = ClientJudges::new(dir.path(), &state, |signing, root| {
        for log in signing["rekorTlogUrls"].as_array_mut().unwrap() {
            log["url"] = json!(real.url);
        }
        let mut tiles =
            root["tlogs"].as_array().unwrap().iter().find(|l| l["baseUrl"] == ours.as_str()).unwrap().clone();
        tiles["baseUrl"] = json!(real.url);
        tiles["publicKey"]["rawBytes"] = json!(B64.encode(&real_spki));
        tiles["publicKey"]["keyDetails"] = json!("PKIX_ED25519");
        tiles["logId"] = json!({"keyId": real_key_id});
        tiles["checkpointKeyId"] = json!({"keyId": real_key_id});
        root["tlogs"].as_array_mut().unwrap().push(tiles);
    });
    let jwt = sigstack_e2e::token(&state, &["--repo", "acme/app"]);
    let identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    for (who, bundle) in judges.sign(&jwt) {
        // Logged by rekor-tiles, with a timestamp from the stack's TSA.
        let made: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
        let material = &made["verificationMaterial"];
        assert_eq!(material["tlogEntries"][0]["logId"]["keyId"], real_key_id.as_str(), "{who}: {material}");
        assert!(material["timestampVerificationData"]["rfc3161Timestamps"][0].is_object(), "{who}");
        judges.assert_verified(who, &bundle, identity, sigstack_e2e::GITHUB_ISSUER);
    }
    drop(stack);
}
