//! cosign v3 and v2, unmodified, against a running stack with only the trust files it writes; and
//! bundles crossing between cosign v3 and sigstore-python in both directions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sigstack_e2e::{GITHUB_ISSUER, Stack, run_ok, sigstack, sigstore_python, token};

const SAN: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";

struct Fixture {
    dir: tempfile::TempDir,
    stack: Stack,
    artifact: PathBuf,
    tampered: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let artifact = dir.path().join("release.tar");
    std::fs::write(&artifact, b"the release").unwrap();
    let tampered = dir.path().join("tampered.tar");
    std::fs::write(&tampered, b"the release, modified").unwrap();
    Fixture { dir, stack, artifact, tampered }
}

impl Fixture {
    fn trust(&self, file: &str) -> PathBuf {
        self.dir.path().join("trust").join(file)
    }

    fn cosign(&self, major: &str) -> Command {
        sigstack_e2e::cosign_command(major, self.dir.path())
    }

    fn v3_verify(&self, bundle: &Path, identity: &str, issuer: &str, file: &Path) -> Output {
        self.cosign("v3")
            .args(["verify-blob", "--trusted-root"])
            .arg(self.trust("trusted_root.json"))
            .arg("--bundle")
            .arg(bundle)
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", issuer])
            .arg(file)
            .output()
            .unwrap()
    }

    /// cosign v2 verification with the legacy trust variables of trust/cosign.env.
    fn v2_verify(&self, bundle: &Path, identity: &str, issuer: &str, file: &Path) -> Output {
        self.cosign("v2")
            .args(["verify-blob", "--rekor-url", &self.stack.url("rekor"), "--bundle"])
            .arg(bundle)
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", issuer])
            .arg(file)
            .output()
            .unwrap()
    }
}

fn assert_verdicts(name: &str, verify: impl Fn(&str, &str, &Path) -> Output, fx: &Fixture) {
    let ok = verify(SAN, GITHUB_ISSUER, &fx.artifact);
    assert!(ok.status.success(), "{name}: verify failed: {}", String::from_utf8_lossy(&ok.stderr));
    let refusals = [
        (
            "wrong identity",
            verify(
                "https://github.com/evil/x/.github/workflows/release.yml@refs/heads/main",
                GITHUB_ISSUER,
                &fx.artifact,
            ),
        ),
        ("wrong issuer", verify(SAN, "https://accounts.example.com", &fx.artifact)),
        ("tampered artifact", verify(SAN, GITHUB_ISSUER, &fx.tampered)),
    ];
    for (what, output) in refusals {
        assert!(!output.status.success(), "{name}: {what} was accepted");
    }
}

#[test]
fn cosign_v3_signs_and_verifies_with_the_trusted_root_and_signing_config() {
    let fx = fixture();
    let bundle = fx.dir.path().join("v3.sigstore.json");
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        fx.cosign("v3")
            .args(["sign-blob", "--yes", "--signing-config"])
            .arg(fx.trust("signing_config.v0.2.json"))
            .arg("--trusted-root")
            .arg(fx.trust("trusted_root.json"))
            .args(["--identity-token", &jwt, "--bundle"])
            .arg(&bundle)
            .arg(&fx.artifact),
    );
    assert_verdicts("cosign v3", |id, iss, file| fx.v3_verify(&bundle, id, iss, file), &fx);
    // Cross: sigstore-python verifies cosign v3's bundle.
    let output = sigstore_python(fx.dir.path())
        .args(["verify", "identity", "--cert-identity", SAN, "--cert-oidc-issuer", GITHUB_ISSUER, "--bundle"])
        .arg(&bundle)
        .arg(&fx.artifact)
        .output()
        .unwrap();
    assert!(output.status.success(), "python verifying cosign v3: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn sigstore_python_bundle_verifies_with_cosign_v3() {
    let fx = fixture();
    let bundle = fx.dir.path().join("python.sigstore.json");
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(fx.dir.path())
            .args(["sign", "--identity-token", &jwt, "--bundle"])
            .arg(&bundle)
            .arg(&fx.artifact),
    );
    assert_verdicts("python -> cosign v3", |id, iss, file| fx.v3_verify(&bundle, id, iss, file), &fx);
}

#[test]
fn cosign_v2_signs_through_fulcio_v1_with_the_legacy_trust_variables() {
    let fx = fixture();
    let bundle = fx.dir.path().join("v2.bundle.json");
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    let output = run_ok(
        fx.cosign("v2")
            .env("SIGSTORE_ROOT_FILE", fx.trust("fulcio-chain.pem"))
            .env("SIGSTORE_REKOR_PUBLIC_KEY", fx.trust("rekor.pub"))
            .env("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", fx.trust("ctlog.pub"))
            .args([
                "sign-blob",
                "--yes",
                "--fulcio-url",
                &fx.stack.url("fulcio"),
                "--rekor-url",
                &fx.stack.url("rekor"),
            ])
            .args(["--identity-token", &jwt, "--bundle"])
            .arg(&bundle)
            .arg(&fx.artifact)
            .stderr(std::process::Stdio::piped()),
    );
    let _ = output;
    assert_verdicts("cosign v2", |id, iss, file| fx.v2_verify(&bundle, id, iss, file), &fx);
}

#[test]
fn cosign_v2_fetches_its_token_from_the_emulated_actions_endpoint() {
    let fx = fixture();
    // Exactly what `eval "$(sigstack env)"` gives a shell, minus the ready-made token variables.
    let env = run_ok(sigstack(fx.dir.path()).arg("env"));
    let mut command = fx.cosign("v2");
    for line in env.lines() {
        let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) else { continue };
        if !name.starts_with("SIGSTORE_ID") {
            command.env(name, value.trim_matches('\''));
        }
    }
    let bundle = fx.dir.path().join("ambient.bundle.json");
    run_ok(
        command
            .args([
                "sign-blob",
                "--yes",
                "--fulcio-url",
                &fx.stack.url("fulcio"),
                "--rekor-url",
                &fx.stack.url("rekor"),
                "--bundle",
            ])
            .arg(&bundle)
            .arg(&fx.artifact),
    );
    // The default repository of the ambient endpoint.
    let san = "https://github.com/sigstack-demo/app/.github/workflows/release.yml@refs/heads/main";
    let ok = fx.v2_verify(&bundle, san, GITHUB_ISSUER, &fx.artifact);
    assert!(ok.status.success(), "verify: {}", String::from_utf8_lossy(&ok.stderr));
}
