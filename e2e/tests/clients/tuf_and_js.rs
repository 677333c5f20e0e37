//! Trust through the stack's TUF repository: cosign v3 (`initialize --mirror --root`),
//! sigstore-python (`--instance` + `trust-instance`) and sigstore-js (CLI and library), each given
//! nothing but the mirror URL and `trust/root.json`. Also: metadata versions on restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sigstack_e2e::{GITHUB_ISSUER, Stack, client_script, cosign, node_prefix, python, run_ok, token};

const SAN: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";

/// A client command with a private HOME (no TUF cache of this machine leaks in) and no CI variables.
fn isolated(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("HOME", home).env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

fn home(dir: &Path, name: &str) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    home
}

fn refused(output: &Output) -> bool {
    !output.status.success()
}

#[test]
fn cosign_v3_takes_everything_from_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let home = home(dir.path(), "cosign-home");
    run_ok(
        isolated(cosign("v3"), &home)
            .args(["initialize", "--mirror", &stack.url("tuf"), "--root"])
            .arg(dir.path().join("trust/root.json")),
    );
    let artifact = dir.path().join("a.txt");
    std::fs::write(&artifact, "from the mirror").unwrap();
    let bundle = dir.path().join("a.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    // Signing config and trusted root both come from TUF: no trust flags at all.
    run_ok(
        isolated(cosign("v3"), &home)
            .args(["sign-blob", "--yes", "--identity-token", &jwt, "--bundle"])
            .arg(&bundle)
            .arg(&artifact),
    );
    let verify = |identity: &str| {
        isolated(cosign("v3"), &home)
            .args(["verify-blob", "--bundle"])
            .arg(&bundle)
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER])
            .arg(&artifact)
            .output()
            .unwrap()
    };
    let ok = verify(SAN);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(refused(&verify("https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main")));
}

#[test]
fn sigstore_python_bootstraps_from_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let home = home(dir.path(), "python-home");
    let sigstore = || {
        let mut command = isolated(python().parent().unwrap().join("sigstore"), &home);
        command.args(["--instance", &stack.url("tuf")]);
        command
    };
    run_ok(sigstore().arg("trust-instance").arg(dir.path().join("trust/root.json")));
    let artifact = dir.path().join("a.txt");
    std::fs::write(&artifact, "python via TUF").unwrap();
    let bundle = dir.path().join("a.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(sigstore().args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&bundle).arg(&artifact));
    let verify = |identity: &str| {
        sigstore()
            .args(["verify", "identity", "--cert-identity", identity, "--cert-oidc-issuer", GITHUB_ISSUER, "--bundle"])
            .arg(&bundle)
            .arg(&artifact)
            .output()
            .unwrap()
    };
    let ok = verify(SAN);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(refused(&verify("https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main")));
}

#[test]
fn sigstore_js_cli_attests_and_verifies_through_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let home = home(dir.path(), "js-home");
    let cli = node_prefix().join("node_modules/.bin/sigstore");
    let statement = dir.path().join("statement.json");
    std::fs::write(
        &statement,
        r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}],"predicateType":"https://example.com/predicate/v1","predicate":{}}"#,
    )
    .unwrap();
    let bundle = dir.path().join("js.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    // The CLI takes a non-interactive token only in CI, from SIGSTORE_ID_TOKEN.
    run_ok(
        isolated(&cli, &home)
            .env("CI", "true")
            .env("SIGSTORE_ID_TOKEN", &jwt)
            .arg("attest")
            .arg(&statement)
            .args(["--fulcio-url", &stack.url("fulcio"), "--rekor-url", &stack.url("rekor"), "-o"])
            .arg(&bundle),
    );
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(written["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"], "intoto");
    assert_eq!(written["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["version"], "0.0.2");
    let verify = |identity: &str| {
        isolated(&cli, &home)
            .arg("verify")
            .arg(&bundle)
            .args(["--certificate-issuer", GITHUB_ISSUER, "--certificate-identity-uri", identity])
            .args(["--tuf-mirror-url", &stack.url("tuf"), "--tuf-root-path"])
            .arg(dir.path().join("trust/root.json"))
            .arg("--tuf-cache-path")
            .arg(dir.path().join("js-tuf-cache"))
            .output()
            .unwrap()
    };
    let ok = verify(SAN);
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    let wrong = verify("https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main");
    assert!(refused(&wrong), "wrong identity accepted");
}

#[test]
fn sigstore_js_library_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    let out = run_ok(
        isolated("node", &home(dir.path(), "node-home"))
            .arg(client_script("js/sign_verify.cjs"))
            .arg(node_prefix())
            .args([stack.url("fulcio"), stack.url("rekor"), stack.url("tuf")])
            .arg(dir.path().join("trust/root.json"))
            .arg(dir.path().join("js-lib-cache"))
            .args([jwt.as_str(), SAN, GITHUB_ISSUER]),
    );
    let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["verified"], true);
    assert!(result["wrongIdentity"].as_str().unwrap().starts_with("refused"), "{result}");
    assert!(result["tampered"].as_str().unwrap().starts_with("refused"), "{result}");
}

#[test]
fn metadata_is_resigned_with_new_versions_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let version = |stack: &Stack| {
        sigstack_e2e::get_json(&format!("{}/timestamp.json", stack.url("tuf")))["signed"]["version"].as_u64().unwrap()
    };
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let first = version(&stack);
    let root = std::fs::read(dir.path().join("trust/root.json")).unwrap();
    stack.stop().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    assert_eq!(version(&stack), first + 1);
    assert_eq!(std::fs::read(dir.path().join("trust/root.json")).unwrap(), root, "the root a client holds stays valid");
    let targets = sigstack_e2e::get_json(&format!("{}/{}.targets.json", stack.url("tuf"), first + 1));
    let expires = targets["signed"]["expires"].as_str().unwrap();
    assert!(expires[..4] > *"2026", "expiry refreshed a year ahead: {expires}");
    for name in ["trusted_root.json", "signing_config.v0.2.json"] {
        assert!(targets["signed"]["targets"][name]["hashes"]["sha256"].is_string(), "{name} is a target");
    }
    // Path traversal stays inside the repository.
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is"])
        .arg(format!("{}/../../etc/passwd", stack.url("tuf")))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&output.stdout), "200");
}
