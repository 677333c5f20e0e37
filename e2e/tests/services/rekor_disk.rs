//! A full disk under the log: a clear error (507 naming the cause), nothing acknowledged is lost,
//! no corrupt record is left, and writing resumes once space returns. A read-only state
//! directory: a clear error at start.
//! Uses a small tmpfs, so it runs as root (as CI does); it fails, never skips, without that.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::{serve_rekor, sigstack};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "this test mounts a tmpfs and needs root (CI runs as root)");
        Tmpfs(dir)
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).status().unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn entry(key: &EcdsaKeyPair, pem_b64: &str, n: usize) -> Value {
    // About 1 KiB stored per entry (mostly the PEM key): a 192 KiB tmpfs fills in a few hundred.
    let data = format!("entry {n}");
    let signature = key.sign(&SystemRandom::new(), data.as_bytes()).unwrap();
    let hex: String = digest(&SHA256, data.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hex}},
        "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": pem_b64}}}})
}

#[tokio::test]
async fn full_and_read_only_disks_fail_cleanly_and_recover() {
    let fs = Tmpfs::mount("192k");
    let state = fs.0.join("state");
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let pem_b64 =
        B64.encode(pem::encode(&pem::Pem::new("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref().to_vec())));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let (mut child, url) = serve_rekor(&state);

    // Fill the disk.
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for n in 0..10_000 {
        let response =
            http.post(format!("{url}/api/v1/log/entries")).json(&entry(&key, &pem_b64, n)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == 201 {
            acknowledged.push(body.as_object().unwrap().keys().next().unwrap().clone());
        } else {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("the disk never filled");
    assert_eq!(status, 507, "{body}");
    assert!(body["message"].as_str().unwrap().contains("No space left"), "{body}");
    // Still serving reads, and a second refusal is just as clean.
    let head: Value = http.get(format!("{url}/api/v1/log")).send().await.unwrap().json().await.unwrap();
    assert_eq!(head["treeSize"].as_u64().unwrap(), acknowledged.len() as u64 + 1, "genesis and the acknowledged");

    // Space returns: writing resumes without a restart.
    fs.remount("size=4m");
    let response =
        http.post(format!("{url}/api/v1/log/entries")).json(&entry(&key, &pem_b64, 20_000)).send().await.unwrap();
    assert_eq!(response.status(), 201);

    child.kill().unwrap();
    child.wait().unwrap();

    // A read-only state directory: a clear error at start, naming the cause, and no damage.
    // (The kernel refuses to remount read-only under open files, so this is checked at start.)
    fs.remount("ro");
    let output = sigstack(&state).args(["serve", "rekor", "--port", "0"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    fs.remount("rw");

    // After a restart every acknowledged entry is there and nothing was cut as corrupt.
    let (mut child, url) = serve_rekor(&state);
    let head: Value = http.get(format!("{url}/api/v1/log")).send().await.unwrap().json().await.unwrap();
    assert_eq!(head["treeSize"].as_u64().unwrap(), acknowledged.len() as u64 + 2);
    for uuid in &acknowledged {
        let response = http.get(format!("{url}/api/v1/log/entries/{uuid}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{uuid}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
