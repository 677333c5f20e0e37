//! Each layer of the core on saved material nobody here made: sigstore-conformance's vectors
//! (vendored under e2e/testdata), production's Rekor v1 with its promise, proof and checkpoint, and
//! staging's Rekor v2 with a timestamp. The CLI runs the whole suite (e2e conformance test); these
//! pin each check on its own.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sigstack_verify::tlog::{Signer, verify_entry};
use sigstack_verify::{
    Artifact, CertificateIdentity, Checks, IdentityPolicy, SignedContent, Trust, VerificationError, sct, timestamp,
    verify_bundle, verify_certificate, verify_note,
};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn suite() -> PathBuf {
    // At run time, not build time: a test binary shared between two clones (one target directory)
    // must read this clone's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../e2e/testdata/sigstore-conformance")
}

/// (trust, bundle, artifact) of a vector.
fn vector(name: &str) -> (Trust, Value, Artifact) {
    let dir = suite().join("bundle-verify").join(name);
    let root = match dir.join("trusted_root.json") {
        own if own.exists() => own,
        _ => suite().join("public-good/trusted_root.json"),
    };
    let bundle = serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    let artifact = std::fs::read(suite().join("bundle-verify/a.txt")).unwrap();
    (Trust::load(&root).unwrap(), bundle, Artifact::Bytes(artifact))
}

fn leaf(bundle: &Value) -> Vec<u8> {
    let material = &bundle["verificationMaterial"];
    let raw = material["certificate"]["rawBytes"].as_str().unwrap();
    B64.decode(raw).unwrap()
}

#[test]
fn a_production_v1_entry_checks_layer_by_layer() {
    let (trust, bundle, artifact) = vector("happy-path-v0.3");
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    // Checkpoint: the log's ECDSA note, found by its key hint.
    let log = trust.rekor_v1().unwrap();
    let note = entry["inclusionProof"]["checkpoint"]["envelope"].as_str().unwrap();
    let checkpoint = verify_note(note, &log.spki, &log.key_id, None).unwrap();
    assert!(checkpoint.origin.starts_with("rekor.sigstore.dev - "));
    let tampered = note.replacen('\n', "\n1", 1);
    assert!(matches!(verify_note(&tampered, &log.spki, &log.key_id, None), Err(VerificationError::Checkpoint(_))));

    // Log entry: body, promise and proof about this signature and certificate.
    let content = SignedContent::of_bundle(&bundle, &artifact).unwrap();
    let der = leaf(&bundle);
    let key = CertificateIdentity::key_of(&der).unwrap();
    let signer = Signer { key: &key, certificate: Some(&der) };
    let logged = verify_entry(&trust, entry, &content, &signer, true).unwrap().unwrap();
    let time = logged.integrated_time.unwrap();
    let other = SignedContent::of_bundle(&bundle, &Artifact::Bytes(b"another file".to_vec()));
    assert!(matches!(other, Err(VerificationError::Artifact(_))));

    // Certificate: valid at the log's time, not now (Fulcio's ten minutes); its SCT.
    let verified = verify_certificate(&trust, &der, &[], time).unwrap();
    assert_eq!(verified.identity.san, [IDENTITY]);
    assert!(matches!(
        verify_certificate(&trust, &der, &[], sigstack_verify::now()),
        Err(VerificationError::Validity(_))
    ));
    sct::verify_embedded_scts(&trust, &der, &verified.issuer_spki).unwrap();
    let no_ct_logs = Trust { ctlogs: Vec::new(), ..trust.clone() };
    assert!(matches!(
        sct::verify_embedded_scts(&no_ct_logs, &der, &verified.issuer_spki),
        Err(VerificationError::Sct(_))
    ));

    // The whole bundle.
    let policy = IdentityPolicy { identity: Some(IDENTITY.into()), ..IdentityPolicy::default() };
    let whole = verify_bundle(&trust, &bundle, &artifact, &policy, &Checks::default()).unwrap();
    assert_eq!(whole.integrated_time, Some(time as i64));
}

#[test]
fn a_staging_v2_entry_needs_its_timestamp() {
    let (trust, bundle, artifact) = vector("rekor2-happy-path");
    let content = SignedContent::of_bundle(&bundle, &artifact).unwrap();
    let token = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
        .as_str()
        .unwrap();
    let token = B64.decode(token).unwrap();
    let time = timestamp::verify_timestamp(&trust, &token, &content.signature).unwrap();
    assert!(matches!(
        timestamp::verify_timestamp(&trust, &token, b"another signature"),
        Err(VerificationError::Timestamp(m)) if m.contains("imprint")
    ));
    let no_tsa = Trust { timestamp_authorities: Vec::new(), ..trust.clone() };
    assert!(timestamp::verify_timestamp(&no_tsa, &token, &content.signature).is_err());

    let der = leaf(&bundle);
    let key = CertificateIdentity::key_of(&der).unwrap();
    let signer = Signer { key: &key, certificate: Some(&der) };
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    let logged = verify_entry(&trust, entry, &content, &signer, true).unwrap().unwrap();
    assert_eq!(logged.integrated_time, None, "a v2 entry carries no time");
    verify_certificate(&trust, &der, &[], time).unwrap();

    let mut without = bundle.clone();
    without["verificationMaterial"].as_object_mut().unwrap().remove("timestampVerificationData");
    let refused = verify_bundle(&trust, &without, &artifact, &IdentityPolicy::default(), &Checks::default());
    assert!(matches!(refused, Err(VerificationError::Timestamp(_))));
}
