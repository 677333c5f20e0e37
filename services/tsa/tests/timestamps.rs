//! The TSA judged by OpenSSL (`openssl ts -verify`, an independent RFC 3161 implementation); bad
//! requests refused with reasons. The verification core's own tests judge it too
//! (services/verify/tests/timestamps.rs).

use std::process::Command;
use std::time::SystemTime;

use sigstack_tsa::{TimestampAuthority, TimestampRequest, TsaError};

fn pem(der: &[u8]) -> String {
    sigstack_wire::pem_lf("CERTIFICATE", der)
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().expect("openssl is installed")
}

#[test]
fn openssl_verifies_timestamps_of_der_requests() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = TimestampAuthority::load_or_generate(&dir.path().join("tsa")).unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("data"), b"a signature to timestamp").unwrap();
    for extra in [&["-cert"][..], &[][..]] {
        let query = openssl(
            &[&["ts", "-query", "-data", &path("data"), "-sha256", "-out", &path("req.tsq")][..], extra].concat(),
        );
        assert!(query.status.success(), "{}", String::from_utf8_lossy(&query.stderr));
        let request = TimestampRequest::from_der(&std::fs::read(path("req.tsq")).unwrap()).unwrap();
        assert!(request.nonce.is_some(), "openssl sends a nonce");
        std::fs::write(path("resp.tsr"), tsa.timestamp(&request, SystemTime::now()).unwrap()).unwrap();
        let chain = tsa.chain_der();
        std::fs::write(path("root.pem"), pem(chain.last().unwrap())).unwrap();
        std::fs::write(path("untrusted.pem"), chain[..chain.len() - 1].iter().map(|d| pem(d)).collect::<String>())
            .unwrap();
        let verified = openssl(&[
            "ts",
            "-verify",
            "-in",
            &path("resp.tsr"),
            "-queryfile",
            &path("req.tsq"),
            "-CAfile",
            &path("root.pem"),
            "-untrusted",
            &path("untrusted.pem"),
        ]);
        let text =
            format!("{}{}", String::from_utf8_lossy(&verified.stdout), String::from_utf8_lossy(&verified.stderr));
        assert!(verified.status.success() && text.contains("Verification: OK"), "openssl ts -verify:\n{text}");
        let printed = openssl(&["ts", "-reply", "-in", &path("resp.tsr"), "-text"]);
        let printed = String::from_utf8_lossy(&printed.stdout);
        assert!(
            printed.contains("Policy OID: 1.3.6.1.4.1.57264.2") && printed.contains("Status: Granted"),
            "{printed}"
        );
    }
}

#[test]
fn bad_requests_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = TimestampAuthority::load_or_generate(dir.path()).unwrap();
    let refused = |result: Result<Vec<u8>, TsaError>| match result {
        Err(TsaError::BadRequest(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let reason = |result: Result<TimestampRequest, TsaError>| match result {
        Err(TsaError::BadRequest(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        reason(TimestampRequest::from_json(br#"{"artifactHash":"AAAA","hashAlgorithm":"sha1"}"#)).contains("SHA-1")
    );
    assert!(reason(TimestampRequest::from_json(br#"{"artifactHash":"not base64!"}"#)).contains("base64"));
    assert!(reason(TimestampRequest::from_json(b"{")).contains("invalid JSON"));
    assert!(reason(TimestampRequest::from_der(b"\x30\x03\x02\x01\x01")).contains("TimeStampReq"));
    let short = TimestampRequest::from_json(br#"{"artifactHash":"AAAA"}"#).unwrap();
    assert!(refused(tsa.timestamp(&short, SystemTime::now())).contains("message imprint"));
    let mut wrong_policy = TimestampRequest::from_json(
        br#"{"artifactHash":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","tsaPolicyOID":"1.2.3"}"#,
    )
    .unwrap();
    assert!(refused(tsa.timestamp(&wrong_policy, SystemTime::now())).contains("unsupported policy"));
    wrong_policy.policy = None;
    assert!(tsa.timestamp(&wrong_policy, SystemTime::now()).is_ok(), "the JSON form sigstore-js sends is granted");
    // openssl's SHA-1 query.
    let query = std::env::temp_dir().join(format!("sha1-{}.tsq", std::process::id()));
    let made = openssl(&["ts", "-query", "-digest", &"ab".repeat(20), "-sha1", "-out", query.to_str().unwrap()]);
    assert!(made.status.success());
    assert!(reason(TimestampRequest::from_der(&std::fs::read(&query).unwrap())).contains("SHA-1"));
    let _ = std::fs::remove_file(query);
}
