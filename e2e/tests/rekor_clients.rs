//! sigstore-python, unmodified, signs through the stack's CA and log and verifies the bundle with
//! its own inclusion-proof, checkpoint, SET, SCT and chain checks.

use std::path::Path;
use std::process::Command;

use sigstack_e2e::{Stack, client_script, python, run_ok, token};

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const SAN: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";

fn sigstore(dir: &Path) -> Command {
    let mut command = Command::new(python().parent().unwrap().join("sigstore"));
    command.arg("--trust-config").arg(dir.join("tc.json"));
    command
}

/// The sigstore-python trust config for `stack`, at `dir/tc.json`.
fn write_trust_config(dir: &Path, stack: &Stack) {
    run_ok(
        Command::new(python())
            .arg(client_script("python/trust_config.py"))
            .arg(dir.join("trust"))
            .arg(stack.url("fulcio"))
            .arg(stack.url("rekor"))
            .arg(dir.join("tc.json")),
    );
}

fn verify(dir: &Path, identity: &str, issuer: &str, file: &Path, bundle: &Path) -> std::process::Output {
    sigstore(dir)
        .args(["verify", "identity", "--cert-identity", identity, "--cert-oidc-issuer", issuer, "--bundle"])
        .arg(bundle)
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn sigstore_python_signs_and_verifies_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    write_trust_config(dir.path(), &stack);
    let artifact = dir.path().join("artifact.txt");
    std::fs::write(&artifact, "hello sigstack\n").unwrap();
    let bundle = dir.path().join("artifact.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(sigstore(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&bundle).arg(&artifact));

    let ok = verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &bundle);
    assert!(ok.status.success(), "verify failed: {}", String::from_utf8_lossy(&ok.stderr));

    let wrong_identity = verify(
        dir.path(),
        "https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main",
        GITHUB_ISSUER,
        &artifact,
        &bundle,
    );
    assert!(!wrong_identity.status.success());
    let wrong_issuer = verify(dir.path(), SAN, "https://accounts.example.com", &artifact, &bundle);
    assert!(!wrong_issuer.status.success());
    let tampered = dir.path().join("tampered.txt");
    std::fs::write(&tampered, "hello sigstack!\n").unwrap();
    let tampered = verify(dir.path(), SAN, GITHUB_ISSUER, &tampered, &bundle);
    assert!(!tampered.status.success());

    // A second signature of the same artifact is a new entry; the log grew and the first bundle still verifies.
    let second = dir.path().join("second.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(sigstore(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&second).arg(&artifact));
    assert!(verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &second).status.success());
    let log: serde_json::Value = reqwest::blocking_get(&format!("{}/api/v1/log", stack.url("rekor")));
    assert_eq!(log["treeSize"], 2);
}

#[test]
fn sigstore_python_attests_with_dsse_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    write_trust_config(dir.path(), &stack);
    let artifact = dir.path().join("app.tar");
    std::fs::write(&artifact, b"not really a tarball").unwrap();
    let predicate = dir.path().join("predicate.json");
    std::fs::write(&predicate, r#"{"buildDefinition": {"buildType": "https://sigstack.test/build/v1", "externalParameters": {"repository": "acme/widget"}}, "runDetails": {"builder": {"id": "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main"}}}"#).unwrap();
    let bundle = dir.path().join("app.intoto.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore(dir.path())
            .args([
                "attest",
                "--identity-token",
                &jwt,
                "--predicate-type",
                "https://slsa.dev/provenance/v1",
                "--predicate",
            ])
            .arg(&predicate)
            .arg("--bundle")
            .arg(&bundle)
            .arg(&artifact),
    );
    let ok = verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &bundle);
    assert!(ok.status.success(), "verify failed: {}", String::from_utf8_lossy(&ok.stderr));
}

mod reqwest {
    /// A tiny blocking GET (the tests above are synchronous).
    pub fn blocking_get(url: &str) -> serde_json::Value {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}
