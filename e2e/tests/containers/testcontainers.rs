//! The testcontainers module (sigstack-testcontainers) on a real engine: the stack and a registry
//! in containers, then the sign/verify flow through them with sigstack's helpers and with a real
//! client (sigstore-python) using the trust files the container wrote on the host's disk.

use std::process::Command;

use sigstack_e2e::containers::{docker_host_for_testcontainers, registry_image, sigstack_image};
use sigstack_e2e::{GITHUB_ISSUER, run_ok, sigstore_python};
use sigstack_testcontainers::Sigstack;

#[test]
fn a_stack_in_containers_signs_and_verifies() {
    let _turn = crate::turn();
    let (images, registry) = (sigstack_image(), registry_image());
    let (docker_host, _shim) = docker_host_for_testcontainers();
    let _docker_host = DockerHost::set(&docker_host);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let stack = Sigstack::default().with_image(&images).with_registry_image(&registry).start().await.unwrap();
        for service in ["oidc", "fulcio", "rekor", "tuf", "registry"] {
            let url = stack.url(service).unwrap();
            assert!(url.starts_with("http://127.0.0.1:"), "{service} binds loopback: {url}");
        }
        assert!(stack.trust_dir().join("trusted_root.json").exists(), "the trust files are on the host's disk");
        let running = run_ok(Command::new("docker").args(["ps", "--format", "{{.Image}}"]));
        assert!(running.lines().any(|image| image == images), "sigstack runs in a container: {running}");

        // The image flow with the test kit's helpers, through the containers.
        let digest = stack.build_image("acme/app", "v1", "1").await.unwrap();
        stack.sign("acme/app:v1", "acme/app").await.unwrap();
        stack.attest_sbom("acme/app:v1", "acme/app").await.unwrap();
        let san = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
        let verified = stack.verify(&format!("acme/app@{digest}"), san, GITHUB_ISSUER).await.unwrap();
        assert!(!verified.is_empty());

        // A real client with the trust files and a token the module minted.
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("a.txt");
        std::fs::write(&artifact, "signed through testcontainers").unwrap();
        let bundle = dir.path().join("a.sigstore.json");
        let token = stack
            .token(&sigstack_oidc::TokenRequest { repository: Some("acme/widget".into()), ..Default::default() })
            .unwrap();
        // The trust files are in STATE/trust, where the helper looks.
        let sigstore = || sigstore_python(stack.state_dir());
        run_ok(sigstore().args(["sign", "--identity-token", &token, "--bundle"]).arg(&bundle).arg(&artifact));
        let widget = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";
        run_ok(
            sigstore()
                .args([
                    "verify",
                    "identity",
                    "--cert-identity",
                    widget,
                    "--cert-oidc-issuer",
                    GITHUB_ISSUER,
                    "--bundle",
                ])
                .arg(&bundle)
                .arg(&artifact),
        );
        stack.stop().await.unwrap();
        let after = run_ok(Command::new("docker").args(["ps", "-a", "--format", "{{.Image}}"]));
        assert!(
            !after.lines().any(|image| image == images || image == registry),
            "stop removes the containers: {after}"
        );
    });
}

/// `DOCKER_HOST` for testcontainers during this test's turn, put back afterwards (the shim it
/// names is gone once the test ends).
struct DockerHost(Option<std::ffi::OsString>);

impl DockerHost {
    fn set(value: &str) -> DockerHost {
        let previous = std::env::var_os("DOCKER_HOST");
        // SAFETY: the test holds the binary's turn (crate::turn), so no other test runs and reads
        // the environment meanwhile.
        unsafe { std::env::set_var("DOCKER_HOST", value) };
        DockerHost(previous)
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        match self.0.take() {
            // SAFETY: as in `set`: still inside the test's turn.
            Some(previous) => unsafe { std::env::set_var("DOCKER_HOST", previous) },
            // SAFETY: likewise.
            None => unsafe { std::env::remove_var("DOCKER_HOST") },
        }
    }
}
