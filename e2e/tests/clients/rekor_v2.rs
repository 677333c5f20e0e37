//! Rekor v2 and the timestamp authority judged by the real clients (issue 16): cosign v3,
//! sigstore-python 4, sigstore-go's conformance client, sigstore-js 4 and sigstack itself each sign
//! through the stack's signing config and every bundle is checked by every verifier; then the
//! refusals (no timestamp, another TSA's timestamp, a checkpoint by another key, a tampered tile),
//! v1 beside v2, and images signed and attested through v2 by cosign v3 and by sigstack.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::{
    GITHUB_ISSUER, Stack, client_script, cosign_command, node_prefix, run_ok, sigstack, sigstore_go, sigstore_python,
    token,
};

const SAN: &str = "https://github.com/sigstack-demo/app/.github/workflows/release.yml@refs/heads/main";

struct Fixture {
    dir: tempfile::TempDir,
    stack: Stack,
    token: String,
}

fn fixture(args: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), args).unwrap();
    let token = token(dir.path(), &[]);
    Fixture { dir, stack, token }
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn trust(&self, name: &str) -> PathBuf {
        self.dir.path().join("trust").join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn v2_key_id(&self) -> String {
        let root: Value = serde_json::from_slice(&std::fs::read(self.trust("trusted_root.json")).unwrap()).unwrap();
        root["tlogs"].as_array().unwrap().iter().find(|t| t["publicKey"]["keyDetails"] == "PKIX_ED25519").unwrap()["logId"]["keyId"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A bundle to judge: who made it, the file, what it covers, and whether it is an attestation.
struct Made {
    by: &'static str,
    bundle: PathBuf,
    artifact: PathBuf,
    dsse: bool,
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn in_toto_statement(artifact: &[u8]) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, artifact);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "artifact.txt", "digest": {"sha256": hex}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.com/b", "externalParameters": {}},
                      "runDetails": {"builder": {"id": "https://example.com/builder"}}}
    }))
    .unwrap()
}

/// Every client signs (message and DSSE) through the signing config.
fn sign_with_every_client(fx: &Fixture) -> Vec<Made> {
    let artifact = fx.write("artifact.txt", b"the artifact every client signs\n");
    let statement = fx.write("statement.json", &in_toto_statement(b"the artifact every client signs\n"));
    let slsa = fx.write("slsa.json", &serde_json::to_vec(&read_json(&statement)["predicate"]).unwrap());
    let signing_config = fx.trust("signing_config.v0.2.json");
    let trusted_root = fx.trust("trusted_root.json");
    let mut made = Vec::new();
    let cosign = |args: &[&str], out: &str| {
        let mut command = cosign_command("v3", fx.dir.path());
        command.args(args).args(["--yes", "--identity-token", &fx.token]);
        command.arg("--signing-config").arg(&signing_config).arg("--trusted-root").arg(&trusted_root);
        command.arg("--bundle").arg(fx.path(out));
        run_ok(command.arg(&artifact));
    };
    cosign(&["sign-blob"], "cosign-message.json");
    made.push(Made {
        by: "cosign v3 sign-blob",
        bundle: fx.path("cosign-message.json"),
        artifact: artifact.clone(),
        dsse: false,
    });
    cosign(&["attest-blob", "--type", "slsaprovenance1", "--predicate", slsa.to_str().unwrap()], "cosign-dsse.json");
    made.push(Made {
        by: "cosign v3 attest-blob",
        bundle: fx.path("cosign-dsse.json"),
        artifact: artifact.clone(),
        dsse: true,
    });

    run_ok(
        sigstore_python(fx.dir.path())
            .args(["sign", "--identity-token", &fx.token, "--bundle"])
            .arg(fx.path("python-message.json"))
            .arg(&artifact),
    );
    made.push(Made {
        by: "sigstore-python sign",
        bundle: fx.path("python-message.json"),
        artifact: artifact.clone(),
        dsse: false,
    });
    run_ok(
        sigstore_python(fx.dir.path())
            .args([
                "attest",
                "--identity-token",
                &fx.token,
                "--predicate-type",
                "https://slsa.dev/provenance/v1",
                "--predicate",
            ])
            .arg(&slsa)
            .arg("--bundle")
            .arg(fx.path("python-dsse.json"))
            .arg(&artifact),
    );
    made.push(Made {
        by: "sigstore-python attest",
        bundle: fx.path("python-dsse.json"),
        artifact: artifact.clone(),
        dsse: true,
    });

    for (in_toto, out, file) in [(false, "go-message.json", &artifact), (true, "go-dsse.json", &statement)] {
        let mut command = Command::new(sigstore_go());
        command.arg("sign-bundle");
        if in_toto {
            command.arg("--in-toto");
        }
        command.args(["--identity-token", &fx.token, "--bundle"]).arg(fx.path(out));
        command.arg("--signing-config").arg(&signing_config).arg("--trusted-root").arg(&trusted_root);
        run_ok(command.arg(file));
        made.push(Made {
            by: if in_toto { "sigstore-go sign-bundle --in-toto" } else { "sigstore-go sign-bundle" },
            bundle: fx.path(out),
            artifact: artifact.clone(),
            dsse: in_toto,
        });
    }

    for (in_toto, out, file) in [(false, "sigstack-message.json", &artifact), (true, "sigstack-dsse.json", &statement)]
    {
        let mut command = sigstack(fx.dir.path());
        command.arg("sign-bundle");
        if in_toto {
            command.arg("--in-toto");
        }
        command.args(["--identity-token", &fx.token, "--bundle"]).arg(fx.path(out)).arg(file);
        run_ok(&mut command);
        made.push(Made {
            by: if in_toto { "sigstack sign-bundle --in-toto" } else { "sigstack sign-bundle" },
            bundle: fx.path(out),
            artifact: artifact.clone(),
            dsse: in_toto,
        });
    }

    let js = run_ok(
        Command::new("node")
            .arg(client_script("js/sign_v2.cjs"))
            .arg(node_prefix())
            .arg(&signing_config)
            .arg(&trusted_root)
            .arg(&fx.token)
            .arg(fx.dir.path()),
    );
    let js: Value = serde_json::from_str(js.trim()).unwrap();
    assert_eq!(js["message"], json!({"kind": "hashedrekord", "version": "0.0.2"}), "{js}");
    made.push(Made {
        by: "sigstore-js (@sigstore/sign 4.1)",
        bundle: fx.path("js-message.sigstore.json"),
        artifact: fx.path("js-artifact.txt"),
        dsse: false,
    });
    made
}

/// The verifiers: each returns its output; success is its exit status.
fn verify_with(verifier: &str, fx: &Fixture, made: &Made, identity: &str, trusted_root: &Path) -> Output {
    match verifier {
        "cosign v3" => {
            let mut command = cosign_command("v3", fx.dir.path());
            if made.dsse {
                command.args(["verify-blob-attestation", "--type", "slsaprovenance1"]);
            } else {
                command.arg("verify-blob");
            }
            command.arg("--trusted-root").arg(trusted_root).arg("--bundle").arg(&made.bundle);
            command.args(["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER]);
            command.arg(&made.artifact).output().unwrap()
        }
        "sigstore-python" => {
            // With a trust config whose trusted root is the one under test.
            let mut config = read_json(&fx.trust("trust_config.json"));
            config["trustedRoot"] = read_json(trusted_root);
            let config_path =
                fx.path(&format!("trust-config-{}.json", made.bundle.file_name().unwrap().to_string_lossy()));
            std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
            let mut command = Command::new(sigstack_e2e::python().parent().unwrap().join("sigstore"));
            command.arg("--trust-config").arg(config_path).args(["verify", "identity", "--bundle"]).arg(&made.bundle);
            command.args(["--cert-identity", identity, "--cert-oidc-issuer", GITHUB_ISSUER]);
            command.arg(&made.artifact).output().unwrap()
        }
        // Both take sigstore-conformance's arguments.
        "sigstore-go" | "sigstack" => {
            if verifier == "sigstore-go" { Command::new(sigstore_go()) } else { sigstack(fx.dir.path()) }
                .arg("verify-bundle")
                .arg("--bundle")
                .arg(&made.bundle)
                .args(["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER])
                .arg("--trusted-root")
                .arg(trusted_root)
                .arg(&made.artifact)
                .output()
                .unwrap()
        }
        "sigstore-verify" => sigstore_verify_judge(made, identity, trusted_root),
        other => panic!("no verifier {other}"),
    }
}

/// sigstore-rust's `sigstore-verify` crate (in this process; it is a library), with its answer
/// shaped as a command's so it stands in the same tables as the CLI verifiers.
fn sigstore_verify_judge(made: &Made, identity: &str, trusted_root: &Path) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let judged = || -> Result<(), String> {
        let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
        let root =
            sigstore_verify::trust_root::TrustedRoot::from_json(&read(trusted_root)?).map_err(|e| e.to_string())?;
        let bundle = sigstore_verify::types::Bundle::from_json(&read(&made.bundle)?).map_err(|e| e.to_string())?;
        let artifact = std::fs::read(&made.artifact).map_err(|e| e.to_string())?;
        let policy = sigstore_verify::VerificationPolicy::new(identity, GITHUB_ISSUER);
        sigstore_verify::verify(artifact.as_slice(), &bundle, &policy, &root).map(|_| ()).map_err(|e| e.to_string())
    };
    let (code, stderr) = match judged() {
        Ok(()) => (0, String::new()),
        Err(reason) => (1, format!("sigstore-verify: {reason}")),
    };
    Output { status: std::process::ExitStatus::from_raw(code << 8), stdout: Vec::new(), stderr: stderr.into_bytes() }
}

const VERIFIERS: [&str; 5] = ["cosign v3", "sigstore-python", "sigstore-go", "sigstore-verify", "sigstack"];

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// cosign v3 writes in-toto Statement v0.1 in attest-blob; sigstore-python 4 reads only v1.
fn known_gap(verifier: &str, made: &Made) -> bool {
    verifier == "sigstore-python" && made.by == "cosign v3 attest-blob"
}

#[test]
fn every_client_signs_to_rekor_v2_with_a_timestamp_and_every_verifier_accepts_every_bundle() {
    let fx = fixture(&["--no-registry", "--rekor", "both"]);
    let key_id = fx.v2_key_id();
    let made = sign_with_every_client(&fx);
    let trusted_root = fx.trust("trusted_root.json");
    let mut table = vec![
        "| bundle made by | entry | cosign v3 | sigstore-python | sigstore-go | sigstore-verify | sigstack |"
            .to_string(),
        "|---|---|---|---|---|---|---|".into(),
    ];
    for m in &made {
        let bundle = read_json(&m.bundle);
        let material = &bundle["verificationMaterial"];
        let entry = &material["tlogEntries"][0];
        assert_eq!(entry["kindVersion"], json!({"kind": "hashedrekord", "version": "0.0.2"}), "{}: {entry}", m.by);
        assert_eq!(entry["logId"]["keyId"], key_id.as_str(), "{}: signed to the v2 log", m.by);
        assert!(entry.get("inclusionPromise").is_none(), "{}: a v2 entry has no SET", m.by);
        assert_eq!(
            material["timestampVerificationData"]["rfc3161Timestamps"].as_array().map(Vec::len),
            Some(1),
            "{}: one signed timestamp",
            m.by
        );
        let mut row = format!("| {} | hashedrekord 0.0.2 + TSA |", m.by);
        for verifier in VERIFIERS {
            let output = verify_with(verifier, &fx, m, SAN, &trusted_root);
            if known_gap(verifier, m) {
                assert!(!output.status.success());
                assert!(text(&output).contains("Statement/v1"), "{}", text(&output));
                row.push_str(" refuses in-toto v0.1 (client gap) |");
                continue;
            }
            assert!(output.status.success(), "{verifier} refused {}'s bundle:\n{}", m.by, text(&output));
            let wrong = verify_with(
                verifier,
                &fx,
                m,
                "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main",
                &trusted_root,
            );
            assert!(!wrong.status.success(), "{verifier} accepted {}'s bundle for a wrong identity", m.by);
            row.push_str(" ✓ |");
        }
        table.push(row);
    }
    let log = sigstack_e2e::cache_dir().join("logs/rekor-v2-clients.md");
    let _ = std::fs::create_dir_all(log.parent().unwrap());
    std::fs::write(&log, table.join("\n") + "\n").unwrap();
    drop(fx.stack);
}

fn edit_bundle(fx: &Fixture, made: &Made, name: &str, edit: impl FnOnce(&mut Value)) -> Made {
    let mut bundle = read_json(&made.bundle);
    edit(&mut bundle);
    let path = fx.write(name, &serde_json::to_vec(&bundle).unwrap());
    Made { by: made.by, bundle: path, artifact: made.artifact.clone(), dsse: made.dsse }
}

fn assert_everyone_refuses(fx: &Fixture, made: &Made, what: &str, trusted_root: &Path) {
    for verifier in VERIFIERS {
        let output = verify_with(verifier, fx, made, SAN, trusted_root);
        assert!(!output.status.success(), "{verifier} accepted {what}:\n{}", text(&output));
    }
    let sigstack_says = text(&verify_with("sigstack", fx, made, SAN, trusted_root));
    eprintln!("{what}: sigstack says {sigstack_says}");
}

#[test]
fn refusals_of_missing_or_foreign_timestamps_checkpoints_and_tampered_tiles() {
    let fx = fixture(&["--no-registry", "--rekor", "v2"]);
    let other = fixture(&["--no-registry", "--rekor", "v2"]);
    let artifact = fx.write("artifact.txt", b"refusals\n");
    run_ok(sigstack(fx.dir.path()).args(["sign-bundle", "--bundle"]).arg(fx.path("good.json")).arg(&artifact));
    let good = Made { by: "sigstack", bundle: fx.path("good.json"), artifact: artifact.clone(), dsse: false };
    let trusted_root = fx.trust("trusted_root.json");
    for verifier in VERIFIERS {
        let output = verify_with(verifier, &fx, &good, SAN, &trusted_root);
        assert!(output.status.success(), "{verifier}: {}", text(&output));
    }

    // 1. No timestamp: a v2 entry alone carries no time.
    let untimed = edit_bundle(&fx, &good, "untimed.json", |b| {
        b["verificationMaterial"].as_object_mut().unwrap().remove("timestampVerificationData");
    });
    assert_everyone_refuses(&fx, &untimed, "a v2 bundle without a timestamp", &trusted_root);
    assert!(text(&verify_with("sigstack", &fx, &untimed, SAN, &trusted_root)).contains("needs a signed timestamp"));

    // 2. A timestamp of the same signature from another stack's TSA.
    let bundle = read_json(&good.bundle);
    let signature = B64.decode(bundle["messageSignature"]["signature"].as_str().unwrap()).unwrap();
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &signature);
    let request = json!({"artifactHash": B64.encode(hash.as_ref()), "hashAlgorithm": "sha256", "certificates": true});
    let foreign = Command::new("curl")
        .args(["-fsS", "-H", "content-type: application/json", "--data-binary", &request.to_string()])
        .arg(format!("{}/api/v1/timestamp", other.stack.url("tsa")))
        .output()
        .unwrap();
    assert!(foreign.status.success());
    let foreign_timestamp = edit_bundle(&fx, &good, "foreign-tsa.json", |b| {
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"] =
            json!(B64.encode(&foreign.stdout));
    });
    assert_everyone_refuses(&fx, &foreign_timestamp, "a timestamp from another TSA", &trusted_root);
    assert!(
        text(&verify_with("sigstack", &fx, &foreign_timestamp, SAN, &trusted_root))
            .contains("no trusted timestamp authority")
    );

    // 3. The checkpoint signed by another log's key (same origin, 127.0.0.1).
    let other_checkpoint =
        Command::new("curl").arg("-fsS").arg(format!("{}/checkpoint", other.stack.url("rekor-v2"))).output().unwrap();
    let foreign_checkpoint = edit_bundle(&fx, &good, "foreign-checkpoint.json", |b| {
        b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
            json!(String::from_utf8_lossy(&other_checkpoint.stdout));
    });
    assert_everyone_refuses(&fx, &foreign_checkpoint, "a checkpoint signed by another key", &trusted_root);
    assert!(
        text(&verify_with("sigstack", &fx, &foreign_checkpoint, SAN, &trusted_root))
            .contains("no signature by 127.0.0.1")
    );

    // The trusted root of another stack: nothing of this stack verifies with it.
    assert_everyone_refuses(
        &fx,
        &good,
        "a bundle checked against another stack's trusted root",
        &other.trust("trusted_root.json"),
    );

    // 4. A tampered tile: the tile reader rebuilds the tree from the log's tiles, and one flipped
    // byte in any tile gives a root the checkpoint does not sign.
    let log_url = fx.stack.url("rekor-v2");
    let note = String::from_utf8(
        Command::new("curl").arg("-fsS").arg(format!("{log_url}/checkpoint")).output().unwrap().stdout,
    )
    .unwrap();
    let spki = B64.decode(read_json(&trusted_root)["tlogs"][0]["publicKey"]["rawBytes"].as_str().unwrap()).unwrap();
    let checkpoint = sigstack_rekor::v2::verify_checkpoint(&note, "127.0.0.1", &spki[spki.len() - 32..]).unwrap();
    let fetch = |path: &str| -> Result<Vec<u8>, String> {
        let output =
            Command::new("curl").arg("-fsS").arg(format!("{log_url}/{path}")).output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("{path}: {}", String::from_utf8_lossy(&output.stderr)));
        }
        Ok(output.stdout)
    };
    let root = sigstack_e2e::tiles::rebuild_root(checkpoint.size, &mut |p: &str| fetch(p)).unwrap();
    assert_eq!(root, checkpoint.root, "the tiles rebuild the checkpointed tree");
    let tampered = sigstack_e2e::tiles::rebuild_root(checkpoint.size, &mut |p: &str| {
        let mut bytes = fetch(p)?;
        if p.starts_with("tile/0/") {
            bytes[5] ^= 1;
        }
        Ok(bytes)
    });
    assert!(
        tampered.is_err() || tampered.unwrap() != checkpoint.root,
        "a tampered tile must not rebuild the signed root"
    );
    drop((fx.stack, other.stack));
}

#[test]
fn with_both_logs_v1_stays_signable_readable_and_verifiable() {
    let fx = fixture(&["--no-registry", "--rekor", "both"]);
    // A client that speaks only v1: the signing config without the v2 log.
    let mut config = read_json(&fx.trust("signing_config.v0.2.json"));
    config["rekorTlogUrls"] = json!(
        config["rekorTlogUrls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["majorApiVersion"] == 1)
            .cloned()
            .collect::<Vec<_>>()
    );
    config["tsaUrls"] = json!([]);
    let v1_config = fx.write("v1-signing-config.json", &serde_json::to_vec(&config).unwrap());
    let artifact = fx.write("artifact.txt", b"v1 beside v2\n");
    run_ok(
        sigstack(fx.dir.path())
            .args(["sign-bundle", "--signing-config"])
            .arg(&v1_config)
            .arg("--bundle")
            .arg(fx.path("v1.json"))
            .arg(&artifact),
    );
    let bundle = read_json(&fx.path("v1.json"));
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["version"], "0.0.1");
    assert!(entry["inclusionPromise"]["signedEntryTimestamp"].is_string(), "a v1 entry has its SET");
    // And a DSSE attestation to v1: a dsse 0.0.1 entry with its promise and proof.
    let statement = fx.write("v1-statement.json", &in_toto_statement(b"v1 beside v2\n"));
    run_ok(
        sigstack(fx.dir.path())
            .args(["sign-bundle", "--in-toto", "--signing-config"])
            .arg(&v1_config)
            .arg("--bundle")
            .arg(fx.path("v1-dsse.json"))
            .arg(&statement),
    );
    let dsse = read_json(&fx.path("v1-dsse.json"));
    assert_eq!(
        dsse["verificationMaterial"]["tlogEntries"][0]["kindVersion"],
        json!({"kind": "dsse", "version": "0.0.1"})
    );
    let made = [
        Made { by: "sigstack (v1)", bundle: fx.path("v1.json"), artifact: artifact.clone(), dsse: false },
        Made { by: "sigstack (v1 dsse)", bundle: fx.path("v1-dsse.json"), artifact, dsse: true },
    ];
    for made in &made {
        for verifier in VERIFIERS {
            let output = verify_with(verifier, &fx, made, SAN, &fx.trust("trusted_root.json"));
            assert!(output.status.success(), "{verifier} refused {} of a both-logs stack: {}", made.by, text(&output));
        }
    }
    // The v1 log still answers its own API.
    let info = sigstack_e2e::get_json(&format!("{}/api/v1/log", fx.stack.url("rekor")));
    assert_eq!(info["treeSize"], 3, "genesis and the two entries: {info}");
    drop(fx.stack);
}

#[test]
fn sigstore_js_dsse_needs_the_compatibility_option_and_its_v2_dsse_entries_are_refused_by_sigstore_go() {
    let fx = fixture(&["--no-registry", "--rekor", "v2", "--rekor-v2-dsse"]);
    let output = run_ok(
        Command::new("node")
            .arg(client_script("js/sign_v2.cjs"))
            .arg(node_prefix())
            .arg(fx.trust("signing_config.v0.2.json"))
            .arg(fx.trust("trusted_root.json"))
            .arg(&fx.token)
            .arg(fx.dir.path())
            .arg("dsse"),
    );
    let result: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(
        result["dsse"],
        json!({"kind": "dsse", "version": "0.0.2"}),
        "sigstore-js sends dsseRequestV002: {result}"
    );
    // sigstore-js verified its own bundle (in the script); sigstore-go, cosign and sigstack refuse
    // a v2 dsse entry, as current Sigstore does.
    let statement = read_json(&fx.path("js-dsse.sigstore.json"))["dsseEnvelope"]["payload"]
        .as_str()
        .map(|p| B64.decode(p).unwrap())
        .unwrap();
    let _ = statement;
    let made = Made {
        by: "sigstore-js dsse",
        bundle: fx.path("js-dsse.sigstore.json"),
        artifact: fx.path("js-artifact.txt"),
        dsse: true,
    };
    for verifier in ["sigstore-go", "sigstack"] {
        let output = verify_with(verifier, &fx, &made, SAN, &fx.trust("trusted_root.json"));
        assert!(!output.status.success(), "{verifier} accepted a Rekor v2 dsse entry: {}", text(&output));
    }
    assert!(
        text(&verify_with("sigstack", &fx, &made, SAN, &fx.trust("trusted_root.json"))).contains("only hashedrekord")
    );
    drop(fx.stack);
}

#[test]
fn images_signed_and_attested_through_rekor_v2_by_cosign_v3_and_by_sigstack() {
    let fx = fixture(&["--rekor", "v2"]);
    let registry = fx.stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(fx.dir.path()).args(args)).trim().to_string();
    let verify = |what: &str, image: &str| {
        let mut args = vec![
            what,
            image,
            "--certificate-identity",
            "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main",
            "--certificate-oidc-issuer",
            GITHUB_ISSUER,
        ];
        if what == "verify-attestation" {
            args.extend(["--type", "spdxjson"]);
        }
        sigstack(fx.dir.path()).args(&args).output().unwrap()
    };
    let cosign_verify = |what: &str, image: &str| {
        let mut command = cosign_command("v3", fx.dir.path());
        command.args([what, "--allow-insecure-registry"]).arg("--trusted-root").arg(fx.trust("trusted_root.json"));
        if what == "verify-attestation" {
            command.args(["--type", "spdxjson"]);
        }
        command.args([
            "--certificate-identity",
            "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main",
            "--certificate-oidc-issuer",
            GITHUB_ISSUER,
        ]);
        command.arg(image).output().unwrap()
    };

    // sigstack signs and attests: bundles with v2 entries and timestamps (the default format on a
    // stack without Rekor v1); the cosign format is refused with the reason.
    let digest = ok(&["build", "--name", "acme/widget", "--tag", "v2", "--app-version", "2.0.0"]);
    let image = format!("{registry}/acme/widget@{digest}");
    let refused = sigstack(fx.dir.path())
        .args(["sign", "acme/widget:v2", "--repo", "acme/widget", "--format", "cosign"])
        .output()
        .unwrap();
    assert!(!refused.status.success() && text(&refused).contains("runs no Rekor v1 log"), "{}", text(&refused));
    ok(&["sign", "acme/widget:v2", "--repo", "acme/widget"]);
    ok(&["attest", "acme/widget:v2", "--repo", "acme/widget"]);
    for what in ["verify", "verify-attestation"] {
        let output = cosign_verify(what, &image);
        assert!(output.status.success(), "cosign v3 {what} of sigstack's v2 bundle: {}", text(&output));
        let output = verify(what, &image);
        assert!(output.status.success(), "sigstack {what}: {}", text(&output));
        assert!(text(&output).contains("Rekor v2 log"), "{}", text(&output));
    }

    // cosign v3 signs and attests another image through the signing config; sigstack verifies.
    let digest = ok(&["build", "--name", "acme/widget", "--tag", "cosign", "--app-version", "2.0.1"]);
    let pinned = format!("{registry}/acme/widget@{digest}");
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    let sbom = fx.path("sbom.json");
    ok(&["sbom", "acme/widget:cosign", "-o", sbom.to_str().unwrap()]);
    for args in [vec!["sign"], vec!["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()]] {
        let mut command = cosign_command("v3", fx.dir.path());
        command.args(&args).args(["--yes", "--allow-insecure-registry", "--identity-token", &jwt]);
        command.arg("--signing-config").arg(fx.trust("signing_config.v0.2.json"));
        command.arg("--trusted-root").arg(fx.trust("trusted_root.json"));
        run_ok(command.arg(&pinned));
    }
    for what in ["verify", "verify-attestation"] {
        let output = verify(what, &pinned);
        assert!(output.status.success(), "sigstack {what} of cosign v3's v2 bundle: {}", text(&output));
        assert!(cosign_verify(what, &pinned).status.success(), "cosign v3 {what} of its own");
    }

    // Admission: the bundle policy (Kyverno's type SigstoreBundle, trust from the trusted root)
    // admits both images and refuses an unsigned one.
    let policy = fx.path("bundle-policy.yaml");
    let source = sigstack_e2e::workspace_root().join("policy/verify-signed-images-bundle.yaml");
    ok(&["policy", "render", "--org", "acme", "--policy", source.to_str().unwrap(), "-o", policy.to_str().unwrap()]);
    ok(&["build", "--name", "acme/unsigned", "--tag", "v1", "--app-version", "u"]);
    for (name, image, admitted) in [
        ("sigstack-signed", format!("{registry}/acme/widget:v2"), true),
        ("cosign-signed", format!("{registry}/acme/widget:cosign"), true),
        ("unsigned", format!("{registry}/acme/unsigned:v1"), false),
    ] {
        let pod = fx.write(
            &format!("{name}.yaml"),
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n").as_bytes(),
        );
        let output = sigstack(fx.dir.path())
            .args(["apply", "--policy"])
            .arg(&policy)
            .arg("--resource")
            .arg(&pod)
            .arg("--trusted-root")
            .arg(fx.trust("trusted_root.json"))
            .output()
            .unwrap();
        assert_eq!(output.status.success(), admitted, "{name}: {}", text(&output));
    }
    drop(fx.stack);
}
