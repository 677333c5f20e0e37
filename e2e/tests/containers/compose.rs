//! compose.yaml and the Dockerfile: brought up for real with a container engine and Compose, real
//! clients signing and verifying through the containers and a volume that outlives `down`; and,
//! without an engine, the file validates against the Compose schema, every command and health
//! check it runs exists in `sigstack`, and the split services it describes, run as processes on
//! one shared state directory, produce trust files real clients accept.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sigstack_e2e::containers::Compose;
use sigstack_e2e::{
    GITHUB_ISSUER, cosign, get_json, run_ok, sigstack, sigstack_bin, sigstore_python, spawn_reporting_url, token,
    wait_for_condition, workspace_root,
};

/// compose.yaml as Compose reads it (`docker-compose config`: anchors merged, every
/// `${SIGSTACK_*:-default}` at its default).
fn compose() -> serde_norway::Value {
    let mut command = Command::new("docker-compose");
    command.arg("-f").arg(workspace_root().join("compose.yaml")).arg("config");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SIGSTACK_")) {
        command.env_remove(name);
    }
    serde_norway::from_str(&run_ok(&mut command)).unwrap()
}

#[test]
fn compose_file_validates_against_the_compose_schema() {
    let _turn = crate::turn();
    let output = Command::new("docker-compose")
        .arg("-f")
        .arg(workspace_root().join("compose.yaml"))
        .args(["config", "-q"])
        .output()
        .expect("docker-compose (Debian package) is installed by scripts/install.sh");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The validator does catch mistakes: a copy with a misspelt key is refused.
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(workspace_root().join("compose.yaml")).unwrap().replacen(
        "healthcheck:",
        "healthchek:",
        1,
    );
    std::fs::write(dir.path().join("compose.yaml"), broken).unwrap();
    let output = Command::new("docker-compose")
        .arg("-f")
        .arg(dir.path().join("compose.yaml"))
        .args(["config", "-q"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "a misspelt key must not validate");
}

#[test]
fn every_command_and_health_check_exists_in_sigstack() {
    let _turn = crate::turn();
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    for name in ["oidc", "fulcio", "rekor", "tuf", "registry"] {
        let service = &services[name];
        assert!(service["healthcheck"]["test"].is_sequence(), "{name} has a health check");
        for port in service["ports"].as_sequence().unwrap() {
            assert!(port.as_str().unwrap().starts_with("127.0.0.1:"), "{name}: ports are published on loopback only");
        }
    }
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let strings = |value: &serde_norway::Value| -> Vec<String> {
            value.as_sequence().map(|s| s.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default()
        };
        if let Some(command) = service.get("command") {
            // clap checks every flag before it honours --help, so this fails on any unknown one.
            let output = Command::new(sigstack_bin()).args(strings(command)).arg("--help").output().unwrap();
            assert!(
                output.status.success(),
                "{name}: {:?}: {}",
                strings(command),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                service["volumes"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|v| v.as_str().unwrap().starts_with("state:/state")),
                "{name} shares the state volume"
            );
        }
        let test = strings(&service["healthcheck"]["test"]);
        if test.get(1).map(String::as_str) == Some("sigstack") {
            let output = Command::new(sigstack_bin()).args(&test[2..test.len() - 1]).arg("--help").output().unwrap();
            assert!(output.status.success(), "{name}: health check {test:?}");
        }
    }
}

#[test]
fn dockerfile_builds_the_binary_in_stages() {
    let _turn = crate::turn();
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    // runtime, prebuilt (the scripts' target: a host-built binary), build, and the default image.
    assert_eq!(stages.len(), 4, "{stages:?}");
    assert!(
        stages[1].ends_with("AS prebuilt") && stages[2].ends_with("AS build"),
        "prebuilt never needs the Rust image"
    );
    assert!(dockerfile.contains("cargo build --release --locked -p sigstack"));
    assert!(dockerfile.contains("COPY --from=build"));
    assert!(dockerfile.contains("USER sigstack"), "runs as a non-root user");
    assert!(dockerfile.contains(r#"ENTRYPOINT ["sigstack"]"#));
    let build_stage = &dockerfile[dockerfile.find("AS build").unwrap()..];
    for line in build_stage.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let sources: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &sources[..sources.len() - 1] {
            assert!(
                workspace_root().join(source).exists(),
                "Dockerfile copies {source}, which is not in the repository"
            );
        }
    }
}

struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_healthy(url: &str) {
    wait_for_condition(&format!("{url} to be healthy"), Duration::from_secs(60), || {
        Command::new(sigstack_bin()).args(["probe", url]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    });
}

/// compose.yaml's commands as processes on loopback: each binds port 0 and reports its URL, which
/// replaces the service's name and port in the commands of those started after it.
fn start_split(state: &Path) -> (Services, [String; 4]) {
    let compose = compose();
    let mut children = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    for (i, name) in ["oidc", "fulcio", "rekor", "tuf"].iter().enumerate() {
        let mut args: Vec<String> = Vec::new();
        let mut words =
            compose["services"][*name]["command"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap());
        while let Some(word) = words.next() {
            match word {
                // The URL it reports is the one it advertises.
                "--public-url" => {
                    words.next();
                }
                "--port" => {
                    words.next();
                    args.extend(["--port".to_string(), "0".to_string()]);
                }
                _ => args.push(urls.iter().enumerate().fold(word.replace("0.0.0.0", "127.0.0.1"), |arg, (j, url)| {
                    let port = 8091 + j;
                    arg.replace(&format!("http://{}:{port}", ["oidc", "fulcio", "rekor"][j]), url)
                        .replace(&format!("http://127.0.0.1:{port}"), url)
                })),
            }
        }
        let log = std::fs::File::create(state.join(format!("serve-{name}.log"))).unwrap();
        let (child, url) = spawn_reporting_url(sigstack(state).args(&args).stderr(log));
        children.push(child);
        let health = if *name == "tuf" { format!("{url}/timestamp.json") } else { format!("{url}/healthz") };
        wait_healthy(&health);
        assert_eq!(i, urls.len());
        urls.push(url);
    }
    (Services(children), [urls[0].clone(), urls[1].clone(), urls[2].clone(), urls[3].clone()])
}

#[test]
fn split_services_on_one_state_dir_produce_trust_clients_accept() {
    let _turn = crate::turn();
    let dir = tempfile::tempdir().unwrap();
    let (_services, urls) = start_split(dir.path());
    for file in sigstack_trust::TRUST_FILES.iter().chain(&["root.json"]) {
        assert!(dir.path().join("trust").join(file).exists(), "{file}");
    }
    let trusted_root = std::fs::read_to_string(dir.path().join("trust/trusted_root.json")).unwrap();
    assert!(trusted_root.contains(&urls[2]) && trusted_root.contains(&urls[1]), "trust files name the published URLs");

    // sigstore-python with the trust config the split `tuf` service wrote.
    let artifact = dir.path().join("a.txt");
    std::fs::write(&artifact, "split services").unwrap();
    let bundle = dir.path().join("a.sigstore.json");
    let jwt = token(dir.path(), &["--repo", "acme/widget"]);
    run_ok(
        sigstore_python(dir.path()).args(["sign", "--identity-token", &jwt, "--bundle"]).arg(&bundle).arg(&artifact),
    );
    let san = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";
    run_ok(
        sigstore_python(dir.path())
            .args(["verify", "identity", "--cert-identity", san, "--cert-oidc-issuer", GITHUB_ISSUER, "--bundle"])
            .arg(&bundle)
            .arg(&artifact),
    );
    // cosign v3 bootstrapped from the split TUF service verifies the same bundle.
    let home = dir.path().join("cosign-home");
    std::fs::create_dir_all(&home).unwrap();
    run_ok(
        Command::new(cosign("v3"))
            .env("HOME", &home)
            .args(["initialize", "--mirror", &urls[3], "--root"])
            .arg(dir.path().join("trust/root.json")),
    );
    run_ok(
        Command::new(cosign("v3"))
            .env("HOME", &home)
            .args(["verify-blob", "--bundle"])
            .arg(&bundle)
            .args(["--certificate-identity", san, "--certificate-oidc-issuer", GITHUB_ISSUER])
            .arg(&artifact),
    );
}

/// The whole compose.yaml on a real engine: the split services come up healthy, sigstore-python
/// and cosign v3 sign and verify through the containers with the trust files the `tuf` container
/// wrote, sigstack builds, signs, attests and verifies an image in the containers' registry, and
/// after `down` and `up` the log, the keys and the trust files are still there (named volumes):
/// a bundle from before still verifies.
#[test]
fn compose_up_for_real_with_real_clients_and_volumes_that_outlive_down() {
    let _turn = crate::turn();
    let mut compose = Compose::new(&workspace_root());
    compose.up();
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust");
    compose.copy_trust(&trust);
    let trusted_root = std::fs::read_to_string(trust.join("trusted_root.json")).unwrap();
    assert!(
        trusted_root.contains(&compose.url(1)) && trusted_root.contains(&compose.url(2)),
        "the trust files name the published URLs"
    );
    // Tokens from the issuer container, over HTTP as any test would mint them.
    let mint = |repository: &str| {
        run_ok(Command::new("curl").args(["-fsS", &format!("{}/token?repository={repository}", compose.url(0))]))
    };
    let san = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";

    // sigstore-python signs and verifies through the containers.
    let artifact = dir.path().join("a.txt");
    std::fs::write(&artifact, "signed through compose").unwrap();
    let python_bundle = dir.path().join("python.sigstore.json");
    // `trust` is DIR/trust, where the helper looks.
    let sigstore = || sigstore_python(dir.path());
    run_ok(
        sigstore()
            .args(["sign", "--identity-token", &mint("acme/widget"), "--bundle"])
            .arg(&python_bundle)
            .arg(&artifact),
    );
    let python_verify = |bundle: &Path| {
        run_ok(
            sigstore()
                .args(["verify", "identity", "--cert-identity", san, "--cert-oidc-issuer", GITHUB_ISSUER, "--bundle"])
                .arg(bundle)
                .arg(&artifact),
        )
    };
    python_verify(&python_bundle);
    // cosign v3 with the trusted root and signing config; each verifies the other's bundle.
    let cosign_bundle = dir.path().join("cosign.sigstore.json");
    let cosign_v3 = || {
        let mut command = Command::new(cosign("v3"));
        command.env("HOME", dir.path());
        command
    };
    run_ok(
        cosign_v3()
            .args(["sign-blob", "--yes", "--signing-config"])
            .arg(trust.join("signing_config.v0.2.json"))
            .arg("--trusted-root")
            .arg(trust.join("trusted_root.json"))
            .args(["--identity-token", &mint("acme/widget"), "--bundle"])
            .arg(&cosign_bundle)
            .arg(&artifact),
    );
    for bundle in [&python_bundle, &cosign_bundle] {
        run_ok(
            cosign_v3()
                .args(["verify-blob", "--trusted-root"])
                .arg(trust.join("trusted_root.json"))
                .arg("--bundle")
                .arg(bundle)
                .args(["--certificate-identity", san, "--certificate-oidc-issuer", GITHUB_ISSUER])
                .arg(&artifact),
        );
    }
    python_verify(&cosign_bundle);

    // sigstack's pipeline against the containers' registry, through `sigstack attach`.
    let state = dir.path().join("attached");
    run_ok(sigstack(&state).arg("attach").arg("--trust-dir").arg(&trust).args([
        "--registry",
        &compose.url(4),
        "--tuf",
        &compose.url(3),
    ]));
    let digest = run_ok(sigstack(&state).args(["build", "--name", "acme/app", "--tag", "v1", "--app-version", "1"]));
    let app_token = mint("acme/app");
    run_ok(sigstack(&state).args(["sign", "acme/app:v1", "--identity-token", &app_token]));
    run_ok(sigstack(&state).args(["attest", "acme/app:v1", "--identity-token", &app_token]));
    let app_san = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let identity = ["--certificate-identity", app_san, "--certificate-oidc-issuer", GITHUB_ISSUER];
    run_ok(sigstack(&state).args(["verify", "acme/app:v1"]).args(identity));
    run_ok(sigstack(&state).args(["verify-attestation", "acme/app:v1", "--type", "spdxjson"]).args(identity));
    let log_size =
        |compose: &Compose| get_json(&format!("{}/api/v1/log", compose.url(2)))["treeSize"].as_u64().unwrap();
    let size_before = log_size(&compose);
    assert!(size_before >= 4, "two blob signatures, a signature and an attestation are logged");

    // down (volumes kept) and up again: same log, same keys, same trust files.
    run_ok(&mut compose.command(&["down"]));
    compose.up();
    assert_eq!(log_size(&compose), size_before, "the log survives down/up in its volume");
    let again = dir.path().join("trust-again");
    compose.copy_trust(&again);
    assert_eq!(
        std::fs::read_to_string(again.join("trusted_root.json")).unwrap(),
        trusted_root,
        "the keys and trust files survive down/up"
    );
    python_verify(&python_bundle);
    run_ok(sigstack(&state).args(["verify", "acme/app:v1"]).args(identity));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
}
