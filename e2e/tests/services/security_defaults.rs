//! The security defaults of a running stack: loopback only, a 0700 state directory with 0600
//! private keys, no private key material in any answer or public file, and every CA and root
//! naming itself a test CA.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sigstack_e2e::{Stack, run_ok, sigstack};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Pieces of a private file that must never be seen elsewhere: PEM body lines, the key fields of
/// a JSON key file, and the whole file in base64 and hex.
fn secrets(bytes: &[u8]) -> Vec<String> {
    let mut pieces = vec![B64.encode(bytes)];
    pieces.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
    let text = String::from_utf8_lossy(bytes);
    pieces.extend(text.lines().filter(|l| l.len() >= 40 && !l.starts_with("-----")).map(str::to_string));
    // In a JSON key file only the key fields are secret (ca.json also keeps the CA certificates).
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes) {
        pieces.clear();
        for (name, value) in map {
            if let (true, Some(text)) = (name.contains("key") && !name.contains("cert"), value.as_str()) {
                pieces.push(text.to_string());
            }
        }
    }
    pieces.into_iter().filter(|p| p.len() >= 40).collect()
}

fn get(url: &str) -> String {
    let output = Command::new("curl").args(["-sS", url]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn loopback_private_keys_and_test_only_names() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let state = dir.path();

    // Loopback only.
    for service in ["oidc", "fulcio", "rekor", "tuf", "registry"] {
        let url = stack.url(service);
        assert!(url.starts_with("http://127.0.0.1:"), "{service} listens on {url}");
    }

    // 0700 state directory; every private file 0600, and the public ones hold no private key.
    assert_eq!(std::fs::metadata(state).unwrap().permissions().mode() & 0o777, 0o700);
    let mut private = Vec::new();
    let mut public = Vec::new();
    for path in files(state) {
        let relative = path.strip_prefix(state).unwrap().to_string_lossy().into_owned();
        if relative.starts_with("registry/") {
            continue; // the registry's blobs: images, not keys
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let bytes = std::fs::read(&path).unwrap();
        let holds_private = String::from_utf8_lossy(&bytes).contains("PRIVATE")
            || relative.ends_with(".pk8")
            || ["fulcio/ca.json", "rekor/key.json"].contains(&relative.as_str());
        if holds_private {
            assert_eq!(mode, 0o600, "{relative} holds a private key with mode {mode:o}");
            private.push((relative, bytes));
        } else {
            public.push((relative, bytes));
        }
    }
    for required in ["fulcio/ca.json", "rekor/key.json", "tuf/key.pk8"] {
        assert!(private.iter().any(|(r, _)| r == required), "{required} missing or not private: {private:?}");
    }
    assert!(private.iter().any(|(r, _)| r.starts_with("oidc/")), "the issuer's keys are private");

    // No answer of any service and no public file carries a piece of a private one.
    let (oidc, fulcio, rekor, tuf) = (stack.url("oidc"), stack.url("fulcio"), stack.url("rekor"), stack.url("tuf"));
    let mut answers: Vec<(String, String)> = [
        format!("{oidc}/.well-known/openid-configuration"),
        format!("{oidc}/.well-known/jwks"),
        format!("{fulcio}/api/v2/trustBundle"),
        format!("{fulcio}/api/v2/configuration"),
        format!("{fulcio}/api/v1/rootCert"),
        format!("{rekor}/api/v1/log"),
        format!("{rekor}/api/v1/log/publicKey"),
        format!("{rekor}/api/v1/log/entries?logIndex=0"),
        format!("{tuf}/1.root.json"),
        format!("{tuf}/timestamp.json"),
    ]
    .into_iter()
    .map(|url| (url.clone(), get(&url)))
    .collect();
    answers.push(("a token".into(), run_ok(sigstack(state).arg("token"))));
    answers.extend(public.iter().map(|(r, b)| (r.clone(), String::from_utf8_lossy(b).into_owned())));
    for (what, text) in &answers {
        assert!(!text.contains("PRIVATE KEY"), "{what} holds a PEM private key");
        for (file, bytes) in &private {
            for piece in secrets(bytes) {
                assert!(!text.contains(&piece), "{what} holds a piece of the private {file}");
            }
        }
    }

    // The CA certificates and the trusted root say they are for testing.
    let chain = std::fs::read_to_string(state.join("trust/fulcio-chain.pem")).unwrap();
    let blocks = pem::parse_many(&chain).unwrap();
    assert_eq!(blocks.len(), 2);
    for block in &blocks {
        assert!(String::from_utf8_lossy(block.contents()).contains("not for production"), "a CA without the warning");
    }
    let trusted_root = std::fs::read_to_string(state.join("trust/trusted_root.json")).unwrap();
    assert!(trusted_root.contains("not for production"), "trusted_root.json does not say it is for testing");
    drop(stack);
}
