//! Crash test of the Rekor v2 log: concurrent writers against `sigstack serve rekor-v2`, `kill -9`
//! mid-load, restart; then the tree rebuilt from the tiles must be the one the new checkpoint
//! signs, hold every acknowledged entry at its index, and agree with every checkpoint ever
//! returned. Several cycles on one state directory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::crash::{WRITERS, checkpoint_head, cycles, kill_after_millis, signing_key};
use sigstack_e2e::rfc9162::{Hash, leaf_hash};
use sigstack_e2e::{serve, tiles};

/// Entries the log acknowledged: (log index, the leaf body sent).
type Acknowledged = Vec<(u64, Vec<u8>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_v2_entries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(signing_key());
    let spki = B64.encode(key.public_key().as_der().unwrap().as_ref());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    // Acknowledged (index, canonical body), and every checkpoint returned: size -> root.
    let acknowledged: Arc<Mutex<Acknowledged>> = Arc::default();
    let checkpoints: Arc<Mutex<BTreeMap<u64, Hash>>> = Arc::default();
    let mut acknowledged_before = 0;
    for cycle in 0..cycles(4) {
        let (mut child, url) = serve(dir.path(), "rekor-v2");
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (http, url, key, spki) = (http.clone(), url.clone(), key.clone(), spki.clone());
            let (acknowledged, checkpoints) = (acknowledged.clone(), checkpoints.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let data = format!("cycle {cycle} writer {writer} entry {n}");
                    let signature = key.sign(&SystemRandom::new(), data.as_bytes()).unwrap();
                    let request = json!({"hashedRekordRequestV002": {
                        "digest": B64.encode(digest(&SHA256, data.as_bytes()).as_ref()),
                        "signature": {"content": B64.encode(signature.as_ref()),
                            "verifier": {"publicKey": {"rawBytes": spki}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}});
                    let Ok(response) = http.post(format!("{url}/api/v2/log/entries")).json(&request).send().await
                    else {
                        break;
                    };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(entry) = response.json::<Value>().await else { break };
                    let (size, root) =
                        checkpoint_head(entry["inclusionProof"]["checkpoint"]["envelope"].as_str().unwrap());
                    if let Some(previous) = checkpoints.lock().unwrap().insert(size, root) {
                        assert_eq!(previous, root, "two different roots were signed for tree size {size}");
                    }
                    let index: u64 = entry["logIndex"].as_str().unwrap().parse().unwrap();
                    let body = B64.decode(entry["canonicalizedBody"].as_str().unwrap()).unwrap();
                    acknowledged.lock().unwrap().push((index, body));
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_millis(cycle))).await;
        child.kill().unwrap(); // SIGKILL: no shutdown path runs.
        child.wait().unwrap();
        for writer in writers {
            writer.await.unwrap();
        }

        let (mut child, url) = serve(dir.path(), "rekor-v2");
        let note = http.get(format!("{url}/checkpoint")).send().await.unwrap().text().await.unwrap();
        let (size, root) = checkpoint_head(&note);
        let mut fetch = |path: &str| -> Result<Vec<u8>, String> {
            let url = format!("{url}/{path}");
            let bytes = std::thread::scope(|s| {
                s.spawn(|| {
                    let output = std::process::Command::new("curl").args(["-fsS", &url]).output().unwrap();
                    assert!(output.status.success(), "GET {url}: {}", String::from_utf8_lossy(&output.stderr));
                    output.stdout
                })
                .join()
                .unwrap()
            });
            Ok(bytes)
        };
        assert_eq!(tiles::rebuild_root(size, &mut fetch).unwrap(), root, "cycle {cycle}: tiles vs checkpoint");
        let entries = tiles::entries(size, &mut fetch).unwrap();
        let all = acknowledged.lock().unwrap().clone();
        assert!(all.len() > acknowledged_before, "cycle {cycle}: nothing was acknowledged before the kill");
        acknowledged_before = all.len();
        for (index, body) in &all {
            assert!(*index < size, "cycle {cycle}: acknowledged index {index} lost (size {size})");
            assert_eq!(&entries[*index as usize], body, "cycle {cycle}: entry {index} changed");
        }
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        for (old_size, old_root) in checkpoints.lock().unwrap().iter() {
            assert!(*old_size <= size, "cycle {cycle}: a returned checkpoint of size {old_size} is beyond {size}");
            assert_eq!(
                tiles::root_of(&leaves[..*old_size as usize]),
                *old_root,
                "cycle {cycle}: checkpoint {old_size}"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    eprintln!("REKOR V2 CRASH SUMMARY: {} cycles, {acknowledged_before} entries acknowledged, 0 lost", cycles(4));
}
