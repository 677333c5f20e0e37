//! sigstore-python, unmodified, against a running stack with nothing but `trust/trust_config.json`:
//! sign (hashedrekord) and attest (DSSE), then `verify identity`, which runs its own chain, SCT,
//! inclusion-proof, checkpoint and SET checks; and the refusals a verifier must give.

use std::path::Path;
use std::process::Output;

use sigstack_e2e::{GITHUB_ISSUER, Stack, run_ok, sigstore_python, token};

const SAN: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";

fn verify(dir: &Path, identity: &str, issuer: &str, file: &Path, bundle: &Path) -> Output {
    sigstore_python(dir)
        .args(["verify", "identity", "--cert-identity", identity, "--cert-oidc-issuer", issuer, "--bundle"])
        .arg(bundle)
        .arg(file)
        .output()
        .unwrap()
}

fn assert_refused(output: Output, what: &str, needle: &str) {
    assert!(!output.status.success(), "{what} was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "{what}: {stderr}");
}

#[test]
fn sign_and_verify_with_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = dir.path().join("artifact.txt");
    std::fs::write(&artifact, "hello sigstack\n").unwrap();
    let bundle = dir.path().join("artifact.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&bundle).arg(&artifact),
    );

    let ok = verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &bundle);
    assert!(ok.status.success(), "verify failed: {}", String::from_utf8_lossy(&ok.stderr));
    let other_org = "https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main";
    assert_refused(verify(dir.path(), other_org, GITHUB_ISSUER, &artifact, &bundle), "wrong identity", "SAN");
    assert_refused(
        verify(dir.path(), SAN, "https://accounts.example.com", &artifact, &bundle),
        "wrong issuer",
        "OIDCIssuer does not match",
    );
    let tampered = dir.path().join("tampered.txt");
    std::fs::write(&tampered, "hello sigstack!\n").unwrap();
    assert_refused(verify(dir.path(), SAN, GITHUB_ISSUER, &tampered, &bundle), "tampered artifact", "FAIL");

    // Signing the same artifact again is a new entry; both bundles verify.
    let second = dir.path().join("second.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&second).arg(&artifact),
    );
    assert!(verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &second).status.success());
    let log = sigstack_e2e::get_json(&format!("{}/api/v1/log", stack.url("rekor")));
    assert_eq!(log["treeSize"], 3, "genesis and two signatures");
}

#[test]
fn attest_with_dsse_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let _stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = dir.path().join("app.tar");
    std::fs::write(&artifact, b"not really a tarball").unwrap();
    let predicate = dir.path().join("predicate.json");
    std::fs::write(
        &predicate,
        r#"{"buildDefinition": {"buildType": "https://sigstack.test/build/v1", "externalParameters": {"repository": "acme/widget"}},
            "runDetails": {"builder": {"id": "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main"}}}"#,
    )
    .unwrap();
    let bundle = dir.path().join("app.intoto.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path())
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
    let other = dir.path().join("other.tar");
    std::fs::write(&other, b"another artifact").unwrap();
    assert!(
        !verify(dir.path(), SAN, GITHUB_ISSUER, &other, &bundle).status.success(),
        "attestation for another artifact"
    );
}

#[test]
fn a_bundle_signed_before_a_restart_verifies_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = dir.path().join("a.txt");
    std::fs::write(&artifact, "before restart\n").unwrap();
    let bundle = dir.path().join("a.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&bundle).arg(&artifact),
    );
    let trust_before: Vec<Vec<u8>> =
        sigstack_trust::TRUST_FILES.iter().map(|f| std::fs::read(dir.path().join("trust").join(f)).unwrap()).collect();
    assert!(stack.stop().unwrap().success());

    let stack = Stack::start(dir.path(), &[]).unwrap();
    let trust_after: Vec<Vec<u8>> =
        sigstack_trust::TRUST_FILES.iter().map(|f| std::fs::read(dir.path().join("trust").join(f)).unwrap()).collect();
    assert_eq!(trust_before, trust_after, "same state dir, same trust files (sticky ports keep the URLs)");
    let ok = verify(dir.path(), SAN, GITHUB_ISSUER, &artifact, &bundle);
    assert!(ok.status.success(), "verify after restart: {}", String::from_utf8_lossy(&ok.stderr));
    // And the log kept its entry.
    assert_eq!(sigstack_e2e::get_json(&format!("{}/api/v1/log", stack.url("rekor")))["treeSize"], 2);
}
