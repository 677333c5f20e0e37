//! Real clients against the CA of a running stack.

use std::process::Command;

use sigstack_e2e::{GITHUB_ISSUER, Stack, client_script, python, run_ok, token};

#[test]
fn sigstore_python_obtains_and_accepts_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let trust_config = dir.path().join("trust/trust_config.json");
    for (args, san, issuer) in [
        (
            vec!["--repo", "acme/widget"],
            "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main".to_string(),
            GITHUB_ISSUER.to_string(),
        ),
        (vec!["--profile", "email", "--email", "dev@acme.test"], "dev@acme.test".to_string(), stack.url("oidc")),
    ] {
        let jwt = token(dir.path(), &args);
        let out = run_ok(
            Command::new(python())
                .arg(client_script("python/fulcio_cert.py"))
                .arg(&trust_config)
                .arg(&jwt)
                .arg(&san)
                .arg(&issuer),
        );
        let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(result["sct"], "verified");
        // pyca's store holds intermediate and root, so the intermediate already anchors the path.
        assert!(result["chain_length"].as_u64().unwrap() >= 2, "{result}");
        assert_eq!(result["not_after_minus_before"], 600);
    }
}

#[test]
fn sigstore_python_surfaces_the_cas_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let _stack = Stack::start(dir.path(), &[]).unwrap();
    let jwt = token(dir.path(), &["--issuer", "https://unknown.example"]);
    let output = Command::new(python())
        .arg(client_script("python/fulcio_cert.py"))
        .arg(dir.path().join("trust/trust_config.json"))
        .arg(&jwt)
        .arg("x")
        .arg("y")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // sigstore-python raises FulcioClientError from the HTTP error; the status is what it shows.
    assert!(stderr.contains("400 Client Error"), "{stderr}");
}
