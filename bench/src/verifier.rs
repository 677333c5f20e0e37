//! Bundles verified per second in-process on one core (issue 23): sigstack's verification core on
//! sigstore-conformance's happy-path bundles (production Rekor v1 with SET and proof, staging
//! Rekor v2 with a timestamp, a DSSE attestation), each check included; and the same bundles
//! through sigstore-rust's `sigstore-verify` crate, on the same core.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sigstack_verify::{Artifact, IdentityPolicy, Trust, verify_bundle};

use crate::Report;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

pub(crate) fn bundles_per_second(workspace: &Path, seconds: u64, report: &mut Report) -> anyhow::Result<()> {
    println!("verifier: bundles verified per second, in-process, one core");
    let suite = workspace.join("e2e/testdata/sigstore-conformance");
    let policy = IdentityPolicy {
        identity: Some(IDENTITY.into()),
        issuer: Some("https://token.actions.githubusercontent.com".into()),
        ..IdentityPolicy::default()
    };
    for (vector, what) in [
        ("happy-path-v0.3", "Rekor v1 hashedrekord (SET, proof, checkpoint)"),
        ("rekor2-happy-path", "Rekor v2 hashedrekord + RFC 3161 timestamp"),
        ("happy-path-intoto-in-dsse-v3", "Rekor v1 dsse attestation"),
    ] {
        let dir = suite.join("bundle-verify").join(vector);
        let root = match dir.join("trusted_root.json") {
            own if own.exists() => own,
            _ => suite.join("public-good/trusted_root.json"),
        };
        let trust = Trust::load(&root)?;
        let bundle: Value = serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json"))?)?;
        let artifact = match dir.join("artifact") {
            own if own.exists() => own,
            _ => suite.join("bundle-verify/a.txt"),
        };
        let bytes = std::fs::read(artifact)?;
        let artifact = Artifact::Bytes(bytes.clone());
        let checks = Default::default();
        verify_bundle(&trust, &bundle, &artifact, &policy, &checks)?;
        let (start, mut count) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(seconds) {
            verify_bundle(&trust, &bundle, &artifact, &policy, &checks)?;
            count += 1;
        }
        let rate = count as f64 / start.elapsed().as_secs_f64();

        let root = sigstore_verify::trust_root::TrustedRoot::from_json(&std::fs::read_to_string(&root)?)?;
        let judge = sigstore_verify::Verifier::new(&root)?;
        let theirs = sigstore_verify::types::Bundle::from_json(&serde_json::to_string(&bundle)?)?;
        let their_policy =
            sigstore_verify::VerificationPolicy::new(IDENTITY, "https://token.actions.githubusercontent.com");
        judge.verify(bytes.as_slice(), &theirs, &their_policy)?;
        let (start, mut count) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(seconds) {
            judge.verify(bytes.as_slice(), &theirs, &their_policy)?;
            count += 1;
        }
        let their_rate = count as f64 / start.elapsed().as_secs_f64();
        report.add(
            &format!("verifier_{vector}"),
            &format!("verify {what}"),
            format!("{rate:.0} bundles/s"),
            &format!("sigstore-verify: {their_rate:.0}/s"),
            json!({"bundles_per_second": rate, "sigstore_verify_bundles_per_second": their_rate}),
        );
    }
    Ok(())
}
