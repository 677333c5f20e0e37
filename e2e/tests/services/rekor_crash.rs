//! Crash test: concurrent writers against `sigstack serve rekor`, `kill -9` mid-load, restart, then
//! every acknowledged entry must be there with a valid inclusion proof, and every checkpoint ever
//! returned must be consistent with the newest tree. Several cycles on one state directory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::crash::{WRITERS, checkpoint_head, cycles, kill_after_millis, signing_key};
use sigstack_e2e::rfc9162::{Hash, from_hex, leaf_hash, verify_consistency, verify_inclusion};
use sigstack_e2e::serve_rekor;

struct Acknowledged {
    uuid: String,
    body: String,
    log_index: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn entry_request(key: &EcdsaKeyPair, pem_b64: &str, data: &[u8]) -> Value {
    let signature = key.sign(&SystemRandom::new(), data).unwrap();
    json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hex(digest(&SHA256, data).as_ref())}},
        "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": pem_b64}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_entries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(signing_key());
    let pem_b64 =
        B64.encode(pem::encode(&pem::Pem::new("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref().to_vec())));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let checkpoints: Arc<Mutex<BTreeMap<u64, Hash>>> = Arc::default();

    let cycles = cycles(5);
    let (mut checked_before, mut checkpoint_sizes_before) = (0usize, 0u64);
    for cycle in 0..cycles {
        let (mut child, url) = serve_rekor(dir.path());
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (http, url, key, pem_b64) = (http.clone(), url.clone(), key.clone(), pem_b64.clone());
            let (acknowledged, checkpoints) = (acknowledged.clone(), checkpoints.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let request =
                        entry_request(&key, &pem_b64, format!("cycle {cycle} writer {writer} entry {n}").as_bytes());
                    let Ok(response) = http.post(format!("{url}/api/v1/log/entries")).json(&request).send().await
                    else {
                        break;
                    };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(body) = response.json::<Value>().await else { break };
                    let (uuid, entry) = body.as_object().unwrap().iter().next().unwrap();
                    let (size, root) =
                        checkpoint_head(entry["verification"]["inclusionProof"]["checkpoint"].as_str().unwrap());
                    if let Some(previous) = checkpoints.lock().unwrap().insert(size, root) {
                        assert_eq!(previous, root, "two different roots were signed for tree size {size}");
                    }
                    acknowledged.lock().unwrap().push(Acknowledged {
                        uuid: uuid.clone(),
                        body: entry["body"].as_str().unwrap().to_string(),
                        log_index: entry["logIndex"].as_u64().unwrap(),
                    });
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_millis(cycle))).await;
        child.kill().unwrap(); // SIGKILL: no shutdown path runs.
        child.wait().unwrap();
        for writer in writers {
            writer.await.unwrap();
        }

        // Restart and check everything acknowledged so far.
        let (mut child, url) = serve_rekor(dir.path());
        let head: Value = http.get(format!("{url}/api/v1/log")).send().await.unwrap().json().await.unwrap();
        let size = head["treeSize"].as_u64().unwrap();
        let root = from_hex(head["rootHash"].as_str().unwrap()).unwrap();
        let all = acknowledged
            .lock()
            .unwrap()
            .iter()
            .map(|a| (a.uuid.clone(), a.body.clone(), a.log_index))
            .collect::<Vec<_>>();
        assert!(all.len() > checked_before, "cycle {cycle}: nothing was acknowledged before the kill");
        // Every entry acknowledged in this cycle is fetched and its proof checked, and every 50th
        // older one; the consistency proofs below prove the older prefix intact as a whole.
        let entries: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= checked_before || i % 50 == 0)
            .map(|(_, e)| e.clone())
            .collect();
        for (uuid, body, log_index) in &entries {
            assert!(*log_index < size, "cycle {cycle}: acknowledged index {log_index} lost (size {size})");
            let fetched: Value =
                http.get(format!("{url}/api/v1/log/entries/{uuid}")).send().await.unwrap().json().await.unwrap();
            let entry = &fetched[uuid];
            assert_eq!(entry["body"].as_str(), Some(body.as_str()), "cycle {cycle}: {uuid}");
            assert_eq!(entry["logIndex"].as_u64(), Some(*log_index));
            let proof = &entry["verification"]["inclusionProof"];
            let hashes: Vec<Hash> =
                proof["hashes"].as_array().unwrap().iter().map(|h| from_hex(h.as_str().unwrap()).unwrap()).collect();
            let leaf = leaf_hash(&B64.decode(body).unwrap());
            assert!(
                verify_inclusion(
                    *log_index,
                    proof["treeSize"].as_u64().unwrap(),
                    &leaf,
                    &hashes,
                    &from_hex(proof["rootHash"].as_str().unwrap()).unwrap()
                ),
                "cycle {cycle}: inclusion proof of {uuid}"
            );
        }
        let seen = checkpoints.lock().unwrap().clone();
        // Checkpoints returned in this cycle, and every 25th older one (checked in earlier cycles).
        for (n, (old_size, old_root)) in seen.into_iter().enumerate() {
            if old_size <= checkpoint_sizes_before && n % 25 != 0 {
                continue;
            }
            let proof: Value = http
                .get(format!("{url}/api/v1/log/proof?firstSize={old_size}&lastSize={size}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let hashes: Vec<Hash> =
                proof["hashes"].as_array().unwrap().iter().map(|h| from_hex(h.as_str().unwrap()).unwrap()).collect();
            assert!(
                verify_consistency(old_size, size, &old_root, &root, &hashes),
                "cycle {cycle}: checkpoint {old_size} -> {size}"
            );
        }
        eprintln!("cycle {cycle}: {} acknowledged so far, log size {size}, 0 lost", all.len());
        if cycle + 1 == cycles {
            eprintln!(
                "SOAK SUMMARY: cycles {cycles}, entries acknowledged {}, entries lost 0, checkpoints returned {}",
                all.len(),
                checkpoints.lock().unwrap().len()
            );
        }
        checked_before = all.len();
        checkpoint_sizes_before = size;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
