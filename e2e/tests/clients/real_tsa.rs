//! sigstack's timestamp authority beside the real one (sigstore/timestamp-authority v2.1.3, its
//! in-memory signer), on one corpus of requests (issue 29): the same status for each, errors in the
//! same `{code, message}` shape, and for every granted request a token that sigstack's verifier and
//! OpenSSL (`openssl ts -verify`, an independent RFC 3161 implementation) accept from both. Where
//! the two answer differently it is listed in docs/rekor-v2-tsa.md, and this test holds the list.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sigstack_e2e::real_servers::{Differential, RealServer, describe, post, start_logged};
use sigstack_e2e::{Stack, run_ok, timestamp_server};

/// The data every granted request timestamps (a stand-in for a signature).
const DATA: &[u8] = b"a signature to timestamp";

/// The real TSA and its turn: timestamp-authority always binds its metrics server to port 2112 on
/// every interface (no flag moves it), so two cannot run at once; the tests here take turns.
struct RealTsa {
    server: RealServer,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for RealTsa {
    type Target = RealServer;
    fn deref(&self) -> &RealServer {
        &self.server
    }
}

/// The real server on a port it chooses; its log names the URL it serves.
fn real_tsa() -> RealTsa {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    const SERVING: &str = "Serving timestamp server at ";
    let mut command = Command::new(timestamp_server());
    command.args(["serve", "--host", "127.0.0.1", "--port", "0", "--timestamp-signer", "memory"]).args([
        "--disable-ntp-monitoring",
        "--log-type",
        "prod",
    ]);
    let url = |line: &str| {
        let rest = &line[line.find(SERVING).unwrap_or_default() + SERVING.len()..];
        rest.split(|c: char| c == '"' || c.is_whitespace()).next().unwrap_or_default().to_string()
    };
    let server = start_logged(&mut command, url, SERVING)
        .expect("the real timestamp-server started (it needs port 2112 free for its metrics)");
    RealTsa { server, _turn: turn }
}

fn digest(algorithm: &str, data: &[u8]) -> Vec<u8> {
    let algorithm = match algorithm {
        "sha384" => &aws_lc_rs::digest::SHA384,
        "sha512" => &aws_lc_rs::digest::SHA512,
        _ => &aws_lc_rs::digest::SHA256,
    };
    aws_lc_rs::digest::digest(algorithm, data).as_ref().to_vec()
}

fn json_request(extra: Value) -> Vec<u8> {
    let mut request = json!({"artifactHash": B64.encode(digest("sha256", DATA)), "hashAlgorithm": "sha256"});
    request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    request.to_string().into_bytes()
}

/// An `openssl ts -query` request over DATA with `flags`.
fn der_request(dir: &std::path::Path, flags: &[&str]) -> Vec<u8> {
    let data = dir.join("data");
    std::fs::write(&data, DATA).unwrap();
    let out = dir.join("request.tsq");
    run_ok(Command::new("openssl").args(["ts", "-query", "-data"]).arg(&data).args(flags).arg("-out").arg(&out));
    std::fs::read(out).unwrap()
}

/// Whether OpenSSL and sigstack's verifier accept `token` over DATA from the TSA at `url`.
fn verified_by_both(dir: &std::path::Path, url: &str, token: &[u8]) -> Result<(), String> {
    let chain_pem = String::from_utf8(
        run_ok(Command::new("curl").args(["-fsS", &format!("{url}/api/v1/timestamp/certchain")])).into_bytes(),
    )
    .unwrap();
    let chain: Vec<Vec<u8>> = pem::parse_many(&chain_pem).unwrap().into_iter().map(|p| p.into_contents()).collect();
    let trust = sigstack_verify::Trust {
        timestamp_authorities: vec![sigstack_verify::TimestampAuthority {
            chain: chain.clone(),
            valid: Default::default(),
        }],
        ..Default::default()
    };
    sigstack_verify::timestamp::verify_timestamp(&trust, token, DATA).map_err(|e| format!("sigstack: {e}"))?;
    let pem_of = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
    let (root, rest) = chain.split_last().unwrap();
    std::fs::write(dir.join("root.pem"), pem_of(root)).unwrap();
    std::fs::write(dir.join("untrusted.pem"), rest.iter().map(|c| pem_of(c)).collect::<String>()).unwrap();
    std::fs::write(dir.join("data"), DATA).unwrap();
    std::fs::write(dir.join("token.tsr"), token).unwrap();
    let mut command = Command::new("openssl");
    command.args(["ts", "-verify", "-in"]).arg(dir.join("token.tsr")).arg("-data").arg(dir.join("data"));
    command.arg("-CAfile").arg(dir.join("root.pem"));
    if !rest.is_empty() {
        command.arg("-untrusted").arg(dir.join("untrusted.pem"));
    }
    let output = command.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !(output.status.success() && text.contains("Verification: OK")) {
        return Err(format!("openssl: {text}"));
    }
    Ok(())
}

/// Requests on which sigstack answers differently from the real TSA, on purpose: each is a row of
/// the table in docs/rekor-v2-tsa.md, with the reason.
const DIFFERENT_ON_PURPOSE: &[&str] = &[];

#[test]
fn sigstacks_tsa_answers_the_corpus_as_the_real_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--rekor", "v2", "--no-registry"]).unwrap();
    let ours = stack.url("tsa");
    let real = real_tsa();
    let work = tempfile::tempdir().unwrap();
    let json = "application/json";
    let der = "application/timestamp-query";
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("JSON sha256, nonce, certificates", json, json_request(json!({"nonce": 1234, "certificates": true}))),
        ("JSON sha256, no nonce", json, json_request(json!({}))),
        (
            "JSON sha384",
            json,
            json_request(json!({"hashAlgorithm": "sha384", "artifactHash": B64.encode(digest("sha384", DATA))})),
        ),
        (
            "JSON sha512",
            json,
            json_request(json!({"hashAlgorithm": "sha512", "artifactHash": B64.encode(digest("sha512", DATA))})),
        ),
        ("JSON SHA-1", json, json_request(json!({"hashAlgorithm": "sha1", "artifactHash": B64.encode([0u8; 20])}))),
        ("JSON unknown hash algorithm", json, json_request(json!({"hashAlgorithm": "md5"}))),
        ("JSON digest of the wrong length", json, json_request(json!({"artifactHash": B64.encode([0u8; 16])}))),
        ("JSON digest not base64", json, json_request(json!({"artifactHash": "not base64!"}))),
        ("JSON unaccepted policy", json, json_request(json!({"tsaPolicyOID": "1.2.3.4"}))),
        ("JSON accepted policy", json, json_request(json!({"tsaPolicyOID": "1.3.6.1.4.1.57264.2"}))),
        ("JSON over 1 KiB (a 2,000-digit nonce)", json, {
            let mut body = json_request(json!({}));
            body.pop();
            body.extend(format!(",\"nonce\":{}}}", "9".repeat(2000)).into_bytes());
            body
        }),
        ("JSON malformed", json, b"{\"artifactHash\":".to_vec()),
        ("JSON empty body", json, Vec::new()),
        ("DER sha256 with nonce and certificate", der, der_request(work.path(), &["-sha256", "-cert"])),
        ("DER sha512 without nonce", der, der_request(work.path(), &["-sha512", "-no_nonce"])),
        ("DER SHA-1", der, der_request(work.path(), &["-sha1"])),
        ("DER garbage", der, b"\x30\x03\x02\x01\x01".to_vec()),
        ("DER empty body", der, Vec::new()),
        ("text/plain", "text/plain", b"hello".to_vec()),
    ];
    let mut table = Differential::new("timestamp-authority v2.1.3", DIFFERENT_ON_PURPOSE);
    for (name, content_type, body) in &cases {
        let (ours_status, ours_body) = post(&format!("{ours}/api/v1/timestamp"), content_type, body);
        let (real_status, real_body) = post(&format!("{}/api/v1/timestamp", real.url), content_type, body);
        // The real server's request validation (go-openapi) puts its own codes (6xx) in `code`;
        // sigstack always the status.
        assert!(
            ours_status < 300 || serde_json::from_slice::<Value>(&ours_body).is_ok_and(|e| e["code"] == ours_status),
            "{name}: sigstack's error carries its status as code: {}",
            String::from_utf8_lossy(&ours_body)
        );
        table.record(
            name,
            (ours_status, describe(name, ours_status, &ours_body, "token")),
            (real_status, describe(name, real_status, &real_body, "token")),
        );
        if ours_status < 300 {
            verified_by_both(work.path(), &ours, &ours_body)
                .unwrap_or_else(|e| panic!("{name}, sigstack's token: {e}"));
        }
        if real_status < 300 {
            verified_by_both(work.path(), &real.url, &real_body)
                .unwrap_or_else(|e| panic!("{name}, the real token: {e}"));
        }
    }
    table.finish("tsa-differential.md");
    drop(stack);
}

/// The clients judge the real TSA's answer as they judge sigstack's: a bundle sigstack signed
/// through its Rekor v2 log carries, in turn, a timestamp from each TSA over the same signature;
/// cosign v3 and sigstore-python verify both with a trusted root that lists both TSAs.
#[test]
fn cosign_and_sigstore_python_accept_either_tsas_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--rekor", "v2", "--no-registry"]).unwrap();
    let real = real_tsa();
    let artifact = dir.path().join("artifact.txt");
    std::fs::write(&artifact, b"timestamped by either TSA\n").unwrap();
    let signed = dir.path().join("sigstack.sigstore.json");
    run_ok(sigstack_e2e::sigstack(dir.path()).arg("sign-bundle").arg("--bundle").arg(&signed).arg(&artifact));
    let bundle: Value = serde_json::from_slice(&std::fs::read(&signed).unwrap()).unwrap();
    let signature = B64.decode(bundle["messageSignature"]["signature"].as_str().unwrap()).unwrap();

    // The real TSA's timestamp over the same signature, in place of sigstack's.
    let request = json!({"artifactHash": B64.encode(digest("sha256", &signature)), "hashAlgorithm": "sha256", "certificates": true});
    let (status, token) =
        post(&format!("{}/api/v1/timestamp", real.url), "application/json", request.to_string().as_bytes());
    assert_eq!(status, 200);
    let mut theirs = bundle.clone();
    theirs["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
        json!([{"signedTimestamp": B64.encode(&token)}]);
    let theirs_path = dir.path().join("real-tsa.sigstore.json");
    std::fs::write(&theirs_path, theirs.to_string()).unwrap();

    // A trusted root listing both TSAs.
    let chain_pem = run_ok(Command::new("curl").args(["-fsS", &format!("{}/api/v1/timestamp/certchain", real.url)]));
    let chain: Vec<Value> = pem::parse_many(&chain_pem)
        .unwrap()
        .into_iter()
        .map(|p| json!({"rawBytes": B64.encode(p.contents())}))
        .collect();
    let mut root: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("trust/trusted_root.json")).unwrap()).unwrap();
    root["timestampAuthorities"].as_array_mut().unwrap().push(json!({
        "subject": {"organization": "timestamp-authority", "commonName": "real TSA"},
        "uri": format!("{}/api/v1/timestamp", real.url),
        "certChain": {"certificates": chain},
        "validFor": {"start": "2020-01-01T00:00:00Z"}
    }));
    let root_path = dir.path().join("both-tsas.json");
    std::fs::write(&root_path, root.to_string()).unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("trust/trust_config.json")).unwrap()).unwrap();
    config["trustedRoot"] = root.clone();
    let config_path = dir.path().join("both-tsas-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let identity = "https://github.com/sigstack-demo/app/.github/workflows/release.yml@refs/heads/main";
    let cosign_verify = |trusted_root: &std::path::Path, bundle: &std::path::Path| {
        sigstack_e2e::cosign_command("v3", dir.path())
            .args(["verify-blob", "--trusted-root"])
            .arg(trusted_root)
            .arg("--bundle")
            .arg(bundle)
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", sigstack_e2e::GITHUB_ISSUER])
            .arg(&artifact)
            .output()
            .unwrap()
    };
    // The timestamp is what is judged: without the real TSA in the trusted root, its bundle fails.
    let untrusted = cosign_verify(&dir.path().join("trust/trusted_root.json"), &theirs_path);
    assert!(!untrusted.status.success(), "cosign v3 accepted a timestamp of a TSA its trusted root does not list");
    for (who, bundle) in [("sigstack's TSA", &signed), ("the real TSA", &theirs_path)] {
        let cosign = cosign_verify(&root_path, bundle);
        assert!(
            cosign.status.success(),
            "cosign v3 refused {who}'s timestamp: {}",
            String::from_utf8_lossy(&cosign.stderr)
        );
        let python = Command::new(sigstack_e2e::python().parent().unwrap().join("sigstore"))
            .arg("--trust-config")
            .arg(&config_path)
            .args(["verify", "identity", "--bundle"])
            .arg(bundle)
            .args(["--cert-identity", identity, "--cert-oidc-issuer", sigstack_e2e::GITHUB_ISSUER])
            .arg(&artifact)
            .output()
            .unwrap();
        assert!(
            python.status.success(),
            "sigstore-python refused {who}'s timestamp: {}",
            String::from_utf8_lossy(&python.stderr)
        );
    }
    drop(stack);
}
