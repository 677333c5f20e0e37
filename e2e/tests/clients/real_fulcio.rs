//! sigstack's CA beside the real Fulcio (sigstore/fulcio v1.8.8, its ephemeral CA, its CT log the
//! one sigstack's CA serves with RFC 6962 `add-pre-chain`), on one corpus of requests (issue 29).
//! Both trust the same issuer: sigstack's OIDC issuer, with tokens whose `iss` is the issuer's own
//! URL (`sigstack token --issuer URL`), the mode Fulcio needs to find the issuer's discovery
//! document and keys; sigstack's CA is told of it with `--issuer-config`. Each request gets the
//! same status from both, errors in gRPC-gateway's `{code, message}`, and every certificate either
//! issues verifies with sigstack's verifier against that CA's own root, naming the token's
//! identity, with its SCT; cosign v3 and sigstore-python sign through the real Fulcio and verify
//! what they made. Differences on purpose are listed in docs/services.md, and this test holds the
//! list.

use std::process::{Command, Stdio};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sigstack_e2e::real_servers::{ClientJudges, Differential, RealServer, describe, free_port, post, start_logged};
use sigstack_e2e::{Stack, fulcio_server, run_ok, sigstack, spawn_reporting_url};

/// The real Fulcio, trusting `issuer` (type github-workflow), with sigstack's CT log at `ct_log`
/// (a sigstack CA's URL, whose RFC 6962 `add-pre-chain` signs SCTs with its CT key) and that key's
/// PEM at `ct_key`, with which Fulcio checks every SCT it gets. It cannot report ports it chose,
/// so free ones are picked and the start is tried again when one was taken in between.
fn real_fulcio(dir: &std::path::Path, issuer: &str, ct_log: &str, ct_key: &std::path::Path) -> RealServer {
    let config = dir.join("fulcio-config.json");
    std::fs::write(
        &config,
        json!({"OIDCIssuers": {issuer: {"IssuerURL": issuer, "ClientID": "sigstore", "Type": "github-workflow"}}})
            .to_string(),
    )
    .unwrap();
    for _ in 0..5 {
        let (http, grpc, metrics) = (free_port(), free_port(), free_port());
        let mut command = Command::new(fulcio_server());
        command
            .args(["serve", "--ca", "ephemeralca", "--ct-log-url", ct_log, "--log_type", "prod"])
            .arg("--ct-log-public-key-path")
            .arg(ct_key)
            .args(["--host", "127.0.0.1", "--port", &http.to_string(), "--grpc-host", "127.0.0.1"])
            .args(["--grpc-port", &grpc.to_string(), "--metrics-port", &metrics.to_string()])
            .arg("--legacy-unix-domain-socket")
            .arg(dir.join(format!("legacy-{http}.sock")))
            .arg("--config-path")
            .arg(&config);
        if let Some(server) = start_logged(&mut command, |_| format!("http://127.0.0.1:{http}"), "listening on http at")
        {
            return server;
        }
    }
    panic!("the real fulcio did not start");
}

/// sigstack's CA on its own, trusting `issuer` as a GitHub Actions issuer through its discovery.
fn sigstack_fulcio(dir: &std::path::Path, issuer: &str) -> (KillOnDrop, String) {
    let config = dir.join("sigstack-issuers.json");
    std::fs::write(&config, json!([{"issuer": issuer, "type": "github-actions", "discovery_url": issuer}]).to_string())
        .unwrap();
    let (child, url) = spawn_reporting_url(
        sigstack(&dir.join("ca"))
            .args(["serve", "fulcio", "--port", "0", "--issuer-config"])
            .arg(&config)
            .stderr(Stdio::null()),
    );
    (KillOnDrop(child), url)
}

/// sigstack's CA process, killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    sigstack_wire::pem_lf(label, der)
}

fn sub_of(token: &str) -> String {
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

/// A key request: `key`'s PEM and its proof of possession over `proof_of`.
fn key_request(token: &str, key: &EcdsaKeyPair, proof_of: &str) -> Vec<u8> {
    let proof = key.sign(&SystemRandom::new(), proof_of.as_bytes()).unwrap();
    json!({"credentials": {"oidcIdentityToken": token},
           "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref())},
                                "proofOfPossession": B64.encode(proof.as_ref())}})
    .to_string()
    .into_bytes()
}

/// A PKCS#10 request made by openssl for a fresh P-256 key; `tamper` flips a byte of its signature.
fn csr_request(dir: &std::path::Path, token: &str, tamper: bool) -> Vec<u8> {
    let key = dir.join("csr-key.pem");
    let csr = dir.join("request.csr");
    run_ok(Command::new("openssl").args(["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out"]).arg(&key));
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/", "-key"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .arg("-outform")
            .arg("DER"),
    );
    let mut der = std::fs::read(&csr).unwrap();
    if tamper {
        let last = der.len() - 3;
        der[last] ^= 1;
    }
    json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": B64.encode(pem("CERTIFICATE REQUEST", &der))})
        .to_string()
        .into_bytes()
}

/// A key request for an RSA key of `bits` made by openssl, with its proof over `proof_of`.
fn rsa_request(dir: &std::path::Path, token: &str, bits: u32, proof_of: &str) -> Vec<u8> {
    let (key, public, data, proof) =
        (dir.join("rsa.pem"), dir.join("rsa.pub"), dir.join("proof-data"), dir.join("proof.sig"));
    run_ok(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg(bits.to_string()));
    run_ok(Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key).arg("-out").arg(&public));
    std::fs::write(&data, proof_of).unwrap();
    run_ok(Command::new("openssl").args(["dgst", "-sha256", "-sign"]).arg(&key).arg("-out").arg(&proof).arg(&data));
    json!({"credentials": {"oidcIdentityToken": token},
           "publicKeyRequest": {"publicKey": {"algorithm": "RSA", "content": std::fs::read_to_string(&public).unwrap()},
                                "proofOfPossession": B64.encode(std::fs::read(&proof).unwrap())}})
    .to_string()
    .into_bytes()
}

/// The certificate chain of an answer (embedded or detached SCT), leaf first, DER.
fn chain_of(answer: &[u8]) -> Vec<Vec<u8>> {
    let answer: Value = serde_json::from_slice(answer).unwrap();
    let issued = if answer["signedCertificateEmbeddedSct"].is_object() {
        &answer["signedCertificateEmbeddedSct"]
    } else {
        &answer["signedCertificateDetachedSct"]
    };
    issued["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| pem::parse(c.as_str().unwrap()).unwrap().into_contents())
        .collect()
}

/// Requests on which sigstack answers differently from the real Fulcio, on purpose: each is a row
/// of the table in docs/services.md, with the reason.
const DIFFERENT_ON_PURPOSE: &[&str] = &[];

#[test]
fn sigstacks_ca_answers_the_corpus_as_the_real_fulcio_does() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(&dir.path().join("stack"), &["--no-registry"]).unwrap();
    let issuer = stack.url("oidc").trim_end_matches('/').to_string();
    let (_ours_process, ours) = sigstack_fulcio(dir.path(), &issuer);
    // sigstack's CA serves the real one's CT log too, so both embed SCTs of one CT key.
    let public: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ca/public/fulcio.json")).unwrap()).unwrap();
    let ct_spki = B64.decode(public["ctlog_key"].as_str().unwrap()).unwrap();
    let ct_key = dir.path().join("ctlog.pub");
    std::fs::write(&ct_key, pem("PUBLIC KEY", &ct_spki)).unwrap();
    let real = real_fulcio(dir.path(), &issuer, &ours, &ct_key);
    let state = dir.path().join("stack");
    let token = |extra: &[&str]| {
        let mut args = vec!["--issuer", issuer.as_str(), "--repo", "acme/app"];
        args.extend_from_slice(extra);
        sigstack_e2e::token(&state, &args)
    };
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap().as_ref(),
    )
    .unwrap();
    let good = token(&[]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expired = token(&[
        "--claim",
        &format!("exp={}", now - 600),
        "--claim",
        &format!("iat={}", now - 1200),
        "--claim",
        &format!("nbf={}", now - 1200),
    ]);
    let future = token(&[
        "--claim",
        &format!("nbf={}", now + 3600),
        "--claim",
        &format!("iat={}", now + 3600),
        "--claim",
        &format!("exp={}", now + 7200),
    ]);
    let other_audience = token(&["--audience", "not-sigstore"]);
    let unknown_issuer = sigstack_e2e::token(&state, &["--issuer", "http://127.0.0.1:9", "--repo", "acme/app"]);
    // A character inside the signature, not its last one: the last carries unused bits, which Go's
    // lenient base64 ignores and sigstack's strict one refuses, so changing it proves nothing.
    let mut bad_signature: Vec<char> = good.chars().collect();
    let inside = bad_signature.len() - 10;
    bad_signature[inside] = if bad_signature[inside] == 'A' { 'B' } else { 'A' };
    let bad_signature: String = bad_signature.into_iter().collect();
    let json = "application/json";
    let work = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("key request, P-256", json, key_request(&good, &key, &sub_of(&good))),
        ("certificate signing request", json, csr_request(work.path(), &good, false)),
        ("expired token", json, key_request(&expired, &key, &sub_of(&expired))),
        ("token not yet valid", json, key_request(&future, &key, &sub_of(&future))),
        ("token for another audience", json, key_request(&other_audience, &key, &sub_of(&other_audience))),
        ("token of an unknown issuer", json, key_request(&unknown_issuer, &key, &sub_of(&unknown_issuer))),
        ("token with a bad signature", json, key_request(&bad_signature, &key, &sub_of(&good))),
        ("not a JWT", json, key_request("not-a-jwt", &key, "x")),
        ("no token", json, json!({"publicKeyRequest": {}}).to_string().into_bytes()),
        ("wrong proof of possession", json, key_request(&good, &key, "somebody else")),
        ("RSA 2048 key", json, rsa_request(work.path(), &good, 2048, &sub_of(&good))),
        ("RSA 1024 key (too small)", json, rsa_request(work.path(), &good, 1024, &sub_of(&good))),
        (
            "malformed PEM key",
            json,
            json!({"credentials": {"oidcIdentityToken": good}, "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}, "proofOfPossession": "AAAA"}}).to_string().into_bytes(),
        ),
        ("CSR with a bad signature", json, csr_request(work.path(), &good, true)),
        ("neither key nor CSR", json, json!({"credentials": {"oidcIdentityToken": good}}).to_string().into_bytes()),
        ("malformed JSON", json, b"{".to_vec()),
    ];
    let mut table = Differential::new("fulcio v1.8.8", DIFFERENT_ON_PURPOSE);
    for (name, content_type, body) in &cases {
        let (ours_status, ours_body) = post(&format!("{ours}/api/v2/signingCert"), content_type, body);
        let (real_status, real_body) = post(&format!("{}/api/v2/signingCert", real.url), content_type, body);
        table.record(
            name,
            (ours_status, describe(name, ours_status, &ours_body, "certificate")),
            (real_status, describe(name, real_status, &real_body, "certificate")),
        );
        for (who, status, answer) in [("sigstack", ours_status, &ours_body), ("fulcio", real_status, &real_body)] {
            if status >= 300 {
                continue;
            }
            // The certificate chains to that CA's own root, for code signing, naming the workflow,
            // with an embedded SCT of the one CT key.
            assert!(serde_json::from_slice::<Value>(answer).unwrap()["signedCertificateEmbeddedSct"].is_object());
            let chain = chain_of(answer);
            let (leaf, above) = chain.split_first().unwrap();
            let trust = sigstack_verify::Trust::from_keys(&[above.last().unwrap().clone()], None, Some(&ct_spki));
            let verified = sigstack_verify::verify_certificate(&trust, leaf, above, sigstack_verify::now())
                .unwrap_or_else(|e| panic!("{name}: {who}'s certificate: {e}"));
            sigstack_verify::sct::verify_embedded_scts(&trust, leaf, &verified.issuer_spki)
                .unwrap_or_else(|e| panic!("{name}: {who}'s SCT: {e}"));
            assert_eq!(
                verified.identity.san,
                ["https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"],
                "{name}: {who}"
            );
            assert_eq!(verified.identity.issuer.as_deref(), Some(issuer.as_str()), "{name}: {who}");
        }
    }
    table.finish("fulcio-differential.md");
    drop(stack);
}

/// The clients judge the real Fulcio's certificates as they judge sigstack's: cosign v3 and
/// sigstore-python sign blobs through a signing config naming the real Fulcio (its SCTs from the
/// stack's CT key, the entries in the stack's Rekor v1), and both verify both bundles with the
/// stack's trusted root plus the real Fulcio's CA; without that CA, cosign refuses them.
#[test]
fn cosign_and_sigstore_python_sign_through_the_real_fulcio_and_accept_its_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("stack");
    let stack = Stack::start(&state, &["--no-registry"]).unwrap();
    let issuer = stack.url("oidc").trim_end_matches('/').to_string();
    let real = real_fulcio(dir.path(), &issuer, &stack.url("fulcio"), &state.join("trust/ctlog.pub"));
    let roots: Value =
        serde_json::from_str(&run_ok(Command::new("curl").args(["-fsS", &format!("{}/api/v2/trustBundle", real.url)])))
            .unwrap();
    let real_ca: Vec<Vec<u8>> = roots["chains"][0]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| pem::parse(c.as_str().unwrap()).unwrap().into_contents())
        .collect();
    let judges = ClientJudges::new(dir.path(), &state, |signing, root| {
        for ca in signing["caUrls"].as_array_mut().unwrap() {
            ca["url"] = json!(real.url);
        }
        let certificates: Vec<Value> = real_ca.iter().map(|der| json!({"rawBytes": B64.encode(der)})).collect();
        root["certificateAuthorities"].as_array_mut().unwrap().push(json!({
            "subject": {"organization": "sigstore.dev", "commonName": "the real Fulcio's ephemeral CA"},
            "uri": real.url, "certChain": {"certificates": certificates}, "validFor": {"start": "2020-01-01T00:00:00Z"}
        }));
    });
    let jwt = sigstack_e2e::token(&state, &["--issuer", &issuer, "--repo", "acme/app"]);
    let identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let real_trust = sigstack_verify::Trust::from_keys(&[real_ca.last().unwrap().clone()], None, None);
    for (who, bundle) in judges.sign(&jwt) {
        // Issued by the real Fulcio.
        let made: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
        let material = &made["verificationMaterial"];
        let leaf = material["certificate"]["rawBytes"]
            .as_str()
            .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
            .unwrap();
        let leaf = B64.decode(leaf).unwrap();
        let issued = sigstack_verify::verify_certificate(&real_trust, &leaf, &[], sigstack_verify::now());
        assert!(issued.is_ok(), "{who}'s certificate is the real Fulcio's: {issued:?}");
        judges.assert_verified(who, &bundle, identity, &issuer);
    }
    drop(stack);
}
