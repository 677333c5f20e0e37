//! sigstore-conformance's offline verification suite (issue 23), vendored under
//! `e2e/testdata/sigstore-conformance` (upstream commit and license beside it), run through
//! `sigstack verify-bundle` exactly as the suite's harness runs a client: each vector once with
//! the artifact's path and once with its `sha256:` digest; a vector whose name ends in `_fail` must
//! be refused, every other one must verify. None is skipped or expected to fail.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use sigstack_e2e::{sigstack_bin, workspace_root};

/// The suite's defaults (test/assets/bundle-verify/README.md).
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn read_or(path: &Path, default: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| default.to_string())
}

#[test]
fn every_sigstore_conformance_vector_is_judged_as_the_suite_expects() {
    let suite = workspace_root().join("e2e/testdata/sigstore-conformance");
    let vectors = suite.join("bundle-verify");
    let mut dirs: Vec<_> = std::fs::read_dir(&vectors)
        .expect("the vendored vectors")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 70, "sigstore-conformance's bundle-verify suite has 70 vectors");
    let mut wrong = Vec::new();
    let mut refused = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let must_fail = name.ends_with("_fail");
        let trusted_root = match dir.join("trusted_root.json") {
            own if own.exists() => own,
            _ => suite.join("public-good/trusted_root.json"),
        };
        let artifact = match dir.join("artifact") {
            own if own.exists() => own,
            _ => vectors.join("a.txt"),
        };
        let digest = format!("sha256:{}", hex(&Sha256::digest(std::fs::read(&artifact).unwrap())));
        for target in [artifact.to_string_lossy().to_string(), digest] {
            let mut command = Command::new(sigstack_bin());
            command.arg("verify-bundle").arg("--bundle").arg(dir.join("bundle.sigstore.json"));
            match dir.join("key.pub") {
                key if key.exists() => command.arg("--key").arg(key),
                _ => command
                    .args(["--certificate-identity", &read_or(&dir.join("identity"), IDENTITY)])
                    .args(["--certificate-oidc-issuer", &read_or(&dir.join("issuer"), ISSUER)]),
            };
            let output = command.arg("--trusted-root").arg(&trusted_root).arg(&target).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() == must_fail {
                wrong.push(format!("{name} [{target}]: exit {:?}: {}", output.status.code(), stderr.trim()));
            }
            if !output.status.success() {
                refused += 1;
                // A refusal is a sentence naming the failed check, never a panic.
                assert!(stderr.starts_with("sigstack: error: "), "{name}: {stderr}");
            }
        }
    }
    assert!(wrong.is_empty(), "{} of 140 runs judged wrongly:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(refused, 49 * 2, "49 vectors must fail, each in both runs");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
