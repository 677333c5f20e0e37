//! The artifact pipeline against a stack with a real registry (Debian's docker-registry): sigstack's
//! signatures and attestations accepted by real cosign (v2 and v3), cosign's accepted by sigstack,
//! tampering refused, the SBOM valid for the reference SPDX validator and true to the layers, and
//! everything readable by skopeo as a second registry client.

use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;
use sigstack_e2e::{GITHUB_ISSUER, Stack, python, run_ok, sigstack, token};

const SAN: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";
const EVIL: &str = "https://github.com/evil/widget/.github/workflows/release.yml@refs/heads/main";

struct Fixture {
    dir: tempfile::TempDir,
    stack: Stack,
    registry: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    Fixture { dir, stack, registry }
}

impl Fixture {
    fn sigstack(&self, args: &[&str]) -> Output {
        sigstack(self.dir.path()).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(sigstack(self.dir.path()).args(args)).trim().to_string()
    }

    fn build(&self, tag: &str, version: &str) -> String {
        self.ok(&["build", "--name", "acme/widget", "--tag", tag, "--app-version", version])
    }

    fn image(&self, tag_or_digest: &str) -> String {
        let separator = if tag_or_digest.starts_with("sha256:") { "@" } else { ":" };
        format!("{}/acme/widget{separator}{tag_or_digest}", self.registry)
    }

    fn verify(&self, image: &str, identity: &str) -> Output {
        self.sigstack(&[
            "verify",
            image,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            GITHUB_ISSUER,
        ])
    }

    fn verify_attestation(&self, image: &str, identity: &str) -> Output {
        self.sigstack(&[
            "verify-attestation",
            image,
            "--type",
            "spdxjson",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            GITHUB_ISSUER,
        ])
    }

    fn trust(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join("trust").join(file)
    }

    /// `cosign verify` or `verify-attestation` with a private HOME; v2 gets the legacy trust
    /// variables of trust/cosign.env, v3 the trusted root.
    fn cosign_verify(&self, major: &str, what: &str, image: &str, identity: &str) -> Output {
        self.cosign_verify_with(
            major,
            what,
            image,
            &["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER],
        )
    }

    fn cosign_verify_with(&self, major: &str, what: &str, image: &str, identity_args: &[&str]) -> Output {
        let mut command = sigstack_e2e::cosign_command(major, self.dir.path());
        command.arg(what).arg("--allow-insecure-registry");
        if major == "v3" {
            command.arg("--trusted-root").arg(self.trust("trusted_root.json"));
        }
        if what == "verify-attestation" {
            command.args(["--type", "spdxjson"]);
        }
        command.args(identity_args).arg(image).output().unwrap()
    }
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn assert_refused(output: &Output, what: &str, needle: &str) {
    assert!(!output.status.success(), "{what} was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "{what}: {stderr}");
}

#[test]
fn cosign_accepts_what_sigstack_signs_and_attests() {
    let fx = fixture();
    let digest = fx.build("v1", "1.0.0");
    let signed = fx.ok(&["sign", "acme/widget:v1", "--repo", "acme/widget"]);
    assert_eq!(signed, digest, "sign resolves the tag to the digest it prints");
    fx.ok(&["attest", "acme/widget:v1", "--repo", "acme/widget", "--type", "spdxjson"]);
    let image = fx.image("v1");
    for major in ["v2", "v3"] {
        assert_ok(&fx.cosign_verify(major, "verify", &image, SAN), &format!("cosign {major} verify"));
        assert_ok(
            &fx.cosign_verify(major, "verify-attestation", &image, SAN),
            &format!("cosign {major} verify-attestation"),
        );
        assert!(
            !fx.cosign_verify(major, "verify", &image, EVIL).status.success(),
            "cosign {major}: wrong identity accepted"
        );
        assert!(!fx.cosign_verify(major, "verify-attestation", &image, EVIL).status.success());
    }
    assert_ok(&fx.verify(&image, SAN), "sigstack verify");
    assert_ok(&fx.verify_attestation(&image, SAN), "sigstack verify-attestation");
    assert_refused(&fx.verify(&image, EVIL), "sigstack verify, wrong identity", "subject mismatch");
    // Signing again adds a signature rather than replacing it.
    fx.ok(&["sign", "acme/widget:v1", "--repo", "acme/widget"]);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let manifest = skopeo_raw(&fx.image(&sig_tag));
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}

/// `--certificate-identity-regexp` and `--certificate-oidc-issuer-regexp` match anywhere in the
/// value, as Go's `regexp.MatchString` does in cosign: sigstack and cosign v3 decide alike on the
/// same image, pattern by pattern.
#[test]
fn identity_regexps_match_as_cosign_does() {
    let fx = fixture();
    fx.build("v1", "1.0.1");
    fx.ok(&["sign", "acme/widget:v1", "--repo", "acme/widget"]);
    fx.ok(&["attest", "acme/widget:v1", "--repo", "acme/widget", "--type", "spdxjson"]);
    let image = fx.image("v1");
    let cases: &[(&str, &str, bool)] = &[
        ("https://github.com/acme/", "githubusercontent", true),
        ("^https://github.com/acme/", "^https://token.actions", true),
        (r"release\.yml@refs/heads/main$", r"\.com$", true),
        ("acme/(widget|gadget)/", ".*", true),
        ("^https://github.com/acme/$", "githubusercontent", false),
        ("https://github.com/evil/", "githubusercontent", false),
        ("https://github.com/acme/", "^https://accounts.google.com$", false),
        ("^acme/", "githubusercontent", false),
    ];
    for &(identity, issuer, expected) in cases {
        let args = ["--certificate-identity-regexp", identity, "--certificate-oidc-issuer-regexp", issuer];
        for what in ["verify", "verify-attestation"] {
            let mut ours = vec![what, image.as_str()];
            if what == "verify-attestation" {
                ours.extend(["--type", "spdxjson"]);
            }
            ours.extend(args);
            let sigstack = fx.sigstack(&ours).status.success();
            let cosign = fx.cosign_verify_with("v3", what, &image, &args).status.success();
            assert_eq!(
                (sigstack, cosign),
                (expected, expected),
                "{what} identity {identity:?} issuer {issuer:?}: sigstack {sigstack}, cosign {cosign}, expected {expected}"
            );
        }
    }
}

/// Sigstore bundles as OCI referrers (cosign v3's default format) cross both ways: cosign v3
/// verifies what `sigstack sign|attest --format bundle` attaches, and sigstack verifies what
/// cosign v3 attaches in its default mode.
#[test]
fn bundle_format_crosses_with_cosign_v3() {
    let fx = fixture();
    fx.build("bundled", "3.0.0");
    fx.ok(&["sign", "acme/widget:bundled", "--repo", "acme/widget", "--format", "bundle"]);
    fx.ok(&["attest", "acme/widget:bundled", "--repo", "acme/widget", "--format", "bundle"]);
    let image = fx.image("bundled");
    for what in ["verify", "verify-attestation"] {
        assert_ok(&fx.cosign_verify("v3", what, &image, SAN), &format!("cosign v3 {what} of sigstack's bundle"));
        assert!(!fx.cosign_verify("v3", what, &image, EVIL).status.success(), "cosign v3 {what}: wrong identity");
    }
    assert_ok(&fx.verify(&image, SAN), "sigstack verify of its own bundle");
    assert_ok(&fx.verify_attestation(&image, SAN), "sigstack verify-attestation of its own bundle");
    assert_refused(&fx.verify(&image, EVIL), "wrong identity", "subject mismatch");

    // cosign v3 in its default mode (signing config and trusted root), then sigstack verifies.
    let digest = fx.build("cosign3", "3.0.1");
    let pinned = fx.image(&digest);
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    let sbom = fx.dir.path().join("sbom3.json");
    fx.ok(&["sbom", "acme/widget:cosign3", "-o", sbom.to_str().unwrap()]);
    let trust = fx.dir.path().join("trust");
    for args in [vec!["sign"], vec!["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()]] {
        let mut command = sigstack_e2e::cosign_command("v3", fx.dir.path());
        command.args(&args).args(["--yes", "--allow-insecure-registry", "--identity-token", &jwt]);
        command.arg("--signing-config").arg(trust.join("signing_config.v0.2.json"));
        command.arg("--trusted-root").arg(trust.join("trusted_root.json"));
        run_ok(command.arg(&pinned));
    }
    assert_ok(&fx.verify(&pinned, SAN), "sigstack verify of cosign v3's bundle");
    assert_ok(&fx.verify_attestation(&pinned, SAN), "sigstack verify-attestation of cosign v3's bundle");
    assert_refused(&fx.verify(&pinned, EVIL), "wrong identity on cosign v3's bundle", "subject mismatch");
}

#[test]
fn sigstack_accepts_what_cosign_v2_signs_and_attests() {
    let fx = fixture();
    let digest = fx.build("v1", "2.0.0");
    let image = fx.image(&digest);
    let jwt = token(fx.dir.path(), &["--repo", "acme/widget"]);
    let sbom = fx.dir.path().join("sbom.json");
    fx.ok(&["sbom", "acme/widget:v1", "-o", sbom.to_str().unwrap()]);
    let cosign_v2 = |args: &[&str]| {
        let mut command = sigstack_e2e::cosign_command("v2", fx.dir.path());
        command
            .args(args)
            .args([
                "--yes",
                "--allow-insecure-registry",
                "--fulcio-url",
                &fx.stack.url("fulcio"),
                "--rekor-url",
                &fx.stack.url("rekor"),
            ])
            .args(["--identity-token", &jwt]);
        command
    };
    run_ok(cosign_v2(&["sign"]).arg(&image));
    run_ok(cosign_v2(&["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()]).arg(&image));
    assert_ok(&fx.verify(&image, SAN), "sigstack verify of cosign's signature");
    assert_ok(&fx.verify_attestation(&image, SAN), "sigstack verify-attestation of cosign's attestation");
    assert_refused(&fx.verify(&image, EVIL), "wrong identity", "subject mismatch");
}

fn skopeo(args: &[&str]) -> String {
    run_ok(Command::new("skopeo").args(args))
}

fn skopeo_raw(image: &str) -> Value {
    serde_json::from_str(&skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{image}")])).unwrap()
}

/// Puts `manifest` under `tag` of acme/widget, as an attacker with push access could.
fn put_manifest(fx: &Fixture, tag: &str, manifest: &Value) {
    sigstack_e2e::put_manifest(&fx.stack.url("registry"), "acme/widget", tag, manifest);
}

/// Uploads a blob to acme/widget and returns its digest.
fn put_blob(fx: &Fixture, bytes: &[u8]) -> String {
    sigstack_e2e::put_blob(&fx.stack.url("registry"), "acme/widget", bytes)
}

fn bytes_sha256(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tampering_is_refused_with_a_reason() {
    let fx = fixture();
    let signed = fx.build("v1", "3.0.0");
    fx.ok(&["sign", "acme/widget:v1", "--repo", "acme/widget"]);
    fx.ok(&["attest", "acme/widget:v1", "--repo", "acme/widget"]);

    // The tag moves to another image: by tag it has no signature; by the signed digest it still verifies.
    let other = fx.build("v1", "3.0.1-evil");
    assert_ne!(signed, other);
    assert_refused(&fx.verify(&fx.image("v1"), SAN), "moved tag", "no signatures found");
    assert_ok(&fx.verify(&fx.image(&signed), SAN), "verify by the signed digest");
    for major in ["v2", "v3"] {
        assert!(
            !fx.cosign_verify(major, "verify", &fx.image("v1"), SAN).status.success(),
            "cosign {major}: moved tag accepted"
        );
    }

    let sig_tag = format!("{}.sig", signed.replace(':', "-"));
    let original = skopeo_raw(&fx.image(&sig_tag));
    let restore = || put_manifest(&fx, &sig_tag, &original);

    // A modified signature annotation.
    let mut manifest = original.clone();
    let signature =
        manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap().to_string();
    let mut raw = base64::engine::general_purpose::STANDARD.decode(&signature).unwrap();
    let n = raw.len();
    raw[n - 3] ^= 0x01;
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        base64::engine::general_purpose::STANDARD.encode(&raw).into();
    put_manifest(&fx, &sig_tag, &manifest);
    assert_refused(&fx.verify(&fx.image(&signed), SAN), "modified signature", "signature");
    assert!(!fx.cosign_verify("v3", "verify", &fx.image(&signed), SAN).status.success());
    restore();

    // A modified payload (a new blob naming the same digest, with an extra field).
    let mut manifest = original.clone();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}/acme/widget"}},"image":{{"docker-manifest-digest":"{signed}"}},"type":"cosign container image signature"}},"optional":{{"tampered":"yes"}}}}"#,
        fx.registry
    );
    let digest = put_blob(&fx, payload.as_bytes());
    manifest["layers"][0]["digest"] = digest.into();
    manifest["layers"][0]["size"] = payload.len().into();
    put_manifest(&fx, &sig_tag, &manifest);
    assert_refused(&fx.verify(&fx.image(&signed), SAN), "modified payload", "signature");
    restore();

    // A certificate swapped for another valid one of the same stack (from the attestation).
    let att_tag = format!("{}.att", signed.replace(':', "-"));
    let attestation = skopeo_raw(&fx.image(&att_tag));
    let mut manifest = original.clone();
    manifest["layers"][0]["annotations"]["dev.sigstore.cosign/certificate"] =
        attestation["layers"][0]["annotations"]["dev.sigstore.cosign/certificate"].clone();
    put_manifest(&fx, &sig_tag, &manifest);
    // Refused either because the log entry names another certificate or because that certificate
    // was not yet valid when the entry was logged (it was issued a moment later): both are right.
    assert_refused(&fx.verify(&fx.image(&signed), SAN), "swapped certificate", "certificate");
    restore();
    assert_ok(&fx.verify(&fx.image(&signed), SAN), "restored signature");

    // An attestation moved onto another image: its subject is not that image.
    put_manifest(&fx, &format!("{}.att", other.replace(':', "-")), &attestation);
    assert_refused(&fx.verify_attestation(&fx.image(&other), SAN), "attestation for another image", "subject");
    assert!(!fx.cosign_verify("v2", "verify-attestation", &fx.image(&other), SAN).status.success());
}

#[test]
fn sbom_is_valid_spdx_and_true_to_the_layers() {
    let fx = fixture();
    let content = fx.dir.path().join("content");
    std::fs::create_dir_all(content.join("usr/lib/python3/dist-packages/idna-3.7.dist-info")).unwrap();
    std::fs::write(content.join("README"), "read me\n").unwrap();
    std::fs::write(
        content.join("usr/lib/python3/dist-packages/idna-3.7.dist-info/METADATA"),
        "Name: idna\nVersion: 3.7\nLicense: BSD-3-Clause\n",
    )
    .unwrap();
    std::fs::create_dir_all(content.join("var/lib/dpkg")).unwrap();
    std::fs::write(content.join("var/lib/dpkg/status"), "Package: zlib1g\nVersion: 1:1.2.13\nArchitecture: amd64\n")
        .unwrap();
    let digest = fx.ok(&["build", "--name", "acme/widget", "--tag", "content", "--dir", content.to_str().unwrap()]);
    let sbom_path = fx.dir.path().join("sbom.spdx.json");
    fx.ok(&["sbom", "acme/widget:content", "-o", sbom_path.to_str().unwrap()]);
    let validator = python().parent().unwrap().join("pyspdxtools");
    run_ok(Command::new(validator).arg("-i").arg(&sbom_path));

    let sbom: Value = serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let image = &sbom["packages"][0];
    assert_eq!(image["versionInfo"], digest.as_str());
    let files: std::collections::BTreeMap<String, String> = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let sha256 = f["checksums"].as_array().unwrap().iter().find(|c| c["algorithm"] == "SHA256").unwrap()["checksumValue"].as_str().unwrap().to_string();
            (f["fileName"].as_str().unwrap().trim_start_matches("./").to_string(), sha256)
        })
        .collect();
    let expected: std::collections::BTreeMap<String, String> =
        ["README", "usr/lib/python3/dist-packages/idna-3.7.dist-info/METADATA", "var/lib/dpkg/status"]
            .iter()
            .map(|p| (p.to_string(), bytes_sha256(&std::fs::read(content.join(p)).unwrap())))
            .collect();
    assert_eq!(files, expected, "the SBOM lists exactly the files in the layer, with their checksums");
    let purls: Vec<&str> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(purls.contains(&"pkg:pypi/idna@3.7"), "{purls:?}");
    assert!(purls.contains(&"pkg:deb/debian/zlib1g@1:1.2.13?arch=amd64"), "{purls:?}");
    let idna = sbom["packages"].as_array().unwrap().iter().find(|p| p["name"] == "idna").unwrap();
    assert_eq!(idna["licenseDeclared"], "BSD-3-Clause");

    // An SBOM made by another tool can be attested as is.
    let foreign = fx.dir.path().join("foreign.spdx.json");
    std::fs::write(
        &foreign,
        serde_json::to_vec(
            &serde_json::json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "from another tool"}),
        )
        .unwrap(),
    )
    .unwrap();
    fx.ok(&["attest", "acme/widget:content", "--repo", "acme/widget", "--sbom", foreign.to_str().unwrap()]);
    let out = run_ok(sigstack(fx.dir.path()).args([
        "verify-attestation",
        "acme/widget:content",
        "--type",
        "spdxjson",
        "--certificate-identity",
        SAN,
        "--certificate-oidc-issuer",
        GITHUB_ISSUER,
    ]));
    assert!(out.contains("Verified https://spdx.dev/Document attestation"), "{out}");
}

#[test]
fn skopeo_reads_everything_pushed() {
    let fx = fixture();
    let digest = fx.build("v1", "4.0.0");
    fx.ok(&["sign", "acme/widget:v1", "--repo", "acme/widget"]);
    fx.ok(&["attest", "acme/widget:v1", "--repo", "acme/widget"]);
    let inspected: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{}", fx.image("v1"))]))
            .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    for suffix in ["sig", "att"] {
        let tag = format!("{}.{suffix}", digest.replace(':', "-"));
        let manifest = skopeo_raw(&fx.image(&tag));
        assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert!(manifest["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"].is_string(), "{suffix}");
    }
    let tags: Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/acme/widget", fx.registry),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"].as_array().unwrap().len(), 3, "{tags}");
}
