//! The verifier's negative corpus through every path that decides on a signature (`sigstack
//! verify`, `apply` and the webhook, under the organisation's policy with `ctlog.ignoreSCT`), each
//! forgery in cosign's `.sig` format with a real log entry (issue 23):
//! - a certificate the stack's CA honestly issued for identity A (the attacker's own workflow) used
//!   as a CA: its key certifies identity B (the organisation's), chain annotation `[A, intermediate,
//!   root]`: only a check that each issuer is a CA refuses it, since every signature, date and log
//!   entry in it is genuine;
//! - GHSA-whqx-f9j3-ch6m's shape: a genuine signature with another signature's valid log entry;
//! - GHSA-fx35-mq7g-6g98's shape: a public key where keyless verification expects a certificate;
//! - and, through `verify-bundle`, a certified DSSE envelope whose payload is not an in-toto
//!   statement, which binds to no artifact.
//!
//! Beside them, a key checked against a keyless signature, with cosign v2 judging the same images.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, ExtendedKeyUsagePurpose, Issuer, KeyUsagePurpose, SanType,
    date_time_ymd,
};
use serde_json::{Value, json};
use sigstack_e2e::resources::each_keyless;
use sigstack_e2e::{GITHUB_ISSUER, Stack, put_blob, put_manifest, run_ok, sigstack};

const B: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

fn post_json(url: &str, body: &Value) -> Value {
    let output = run_ok(
        std::process::Command::new("curl")
            .args(["-fsS", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg(url),
    );
    serde_json::from_str(&output).unwrap_or_else(|e| panic!("{url}: {e}: {output}"))
}

fn pem(label: &str, der: &[u8]) -> String {
    sigstack_wire::pem_lf(label, der)
}

/// A DER UTF8String (Fulcio's 1.3.6.1.4.1.57264.1.8 issuer extension holds one).
fn utf8_string(text: &str) -> Vec<u8> {
    let mut der = vec![0x0c, text.len() as u8];
    der.extend_from_slice(text.as_bytes());
    der
}

/// A stack with a registry, an image `acme/<name>:v1` on it, and the organisation's rendered
/// policy with `ctlog.ignoreSCT: true` (as private Fulcio deployments without a CT log run it).
struct Scene {
    dir: tempfile::TempDir,
    stack: Stack,
    registry: String,
    host: String,
    policy: std::path::PathBuf,
}

impl Scene {
    fn start() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack::start(dir.path(), &[]).unwrap();
        let registry = stack.url("registry");
        let host = registry.trim_start_matches("http://").to_string();
        let policy = dir.path().join("policy.yaml");
        run_ok(sigstack(dir.path()).args(["policy", "render", "--org", "acme", "-o", policy.to_str().unwrap()]));
        let mut rendered: Value = serde_norway::from_slice(&std::fs::read(&policy).unwrap()).unwrap();
        each_keyless(&mut rendered, &|keyless| keyless["ctlog"] = json!({"ignoreSCT": true}));
        std::fs::write(&policy, serde_norway::to_string(&rendered).unwrap()).unwrap();
        Scene { dir, stack, registry, host, policy }
    }

    /// Builds and pushes `acme/<name>:v1`; returns its digest.
    fn image(&self, name: &str) -> String {
        run_ok(sigstack(self.dir.path()).args([
            "build",
            "--name",
            &format!("acme/{name}"),
            "--tag",
            "v1",
            "--app-version",
            name,
        ]))
        .trim()
        .to_string()
    }

    /// Logs a hashedrekord of `payload` signed by `signature` with `verifier_pem` (a certificate or
    /// a public key) in the stack's v1 log; returns cosign's bundle annotation for it.
    fn log(&self, payload: &[u8], signature: &[u8], verifier_pem: &str) -> Value {
        let payload_hash: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, payload)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let logged = post_json(
            &format!("{}/api/v1/log/entries", self.stack.url("rekor")),
            &json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": payload_hash}},
                "signature": {"content": B64.encode(signature), "publicKey": {"content": B64.encode(verifier_pem)}}}}),
        );
        let (_, entry) = logged.as_object().unwrap().iter().next().unwrap();
        json!({"SignedEntryTimestamp": entry["verification"]["signedEntryTimestamp"],
            "Payload": {"body": entry["body"], "integratedTime": entry["integratedTime"], "logIndex": entry["logIndex"], "logID": entry["logID"]}})
    }

    /// A certificate from the stack's CA for `key`, as the release workflow of `repository`: the
    /// chain as the CA answers it, leaf first (PEM).
    fn certificate(&self, key: &EcdsaKeyPair, repository: &str) -> Vec<String> {
        let token = sigstack_e2e::token(self.dir.path(), &["--repo", repository]);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        let proof = key.sign(&SystemRandom::new(), claims["sub"].as_str().unwrap().as_bytes()).unwrap();
        let issued = post_json(
            &format!("{}/api/v2/signingCert", self.stack.url("fulcio")),
            &json!({"credentials": {"oidcIdentityToken": token},
                    "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref())},
                                         "proofOfPossession": B64.encode(proof.as_ref())}}),
        );
        issued["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    /// cosign's simple-signing payload for `acme/<name>@digest`.
    fn payload(&self, name: &str, digest: &str) -> String {
        json!({"critical": {"identity": {"docker-reference": format!("{}/acme/{name}", self.host)},
            "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}, "optional": null})
        .to_string()
    }

    /// Pushes a `.sig` manifest of one layer (`payload` with `annotations`) for `acme/<name>@digest`.
    fn push_signature(&self, name: &str, digest: &str, payload: &str, annotations: Value) {
        let repository = format!("acme/{name}");
        let payload_digest = put_blob(&self.registry, &repository, payload.as_bytes());
        let config_digest = put_blob(&self.registry, &repository, b"{}");
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_digest,
                "size": payload.len(), "annotations": annotations}]});
        put_manifest(&self.registry, &repository, &format!("{}.sig", digest.replace(':', "-")), &manifest);
    }

    /// `sigstack verify` (without the SCT, as the attestor), `apply` and the webhook all refuse
    /// `acme/<name>@digest` as signed by the organisation, each saying `needle`.
    fn assert_refused_everywhere(&self, name: &str, digest: &str, needle: &str) {
        let image = format!("{}/acme/{name}@{digest}", self.host);
        let output = sigstack(self.dir.path())
            .args(["verify", &image, "--insecure-ignore-sct", "--certificate-identity", B])
            .args(["--certificate-oidc-issuer", GITHUB_ISSUER])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "sigstack verify accepted it:\n{}", String::from_utf8_lossy(&output.stdout));
        assert!(stderr.contains(needle), "sigstack verify: {stderr}");

        let resource = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &resource,
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n"),
        )
        .unwrap();
        let applied = sigstack(self.dir.path())
            .args(["apply", "--policy"])
            .arg(&self.policy)
            .arg("--resource")
            .arg(&resource)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&applied.stdout);
        assert!(!applied.status.success(), "apply admitted it:\n{text}");
        assert!(text.contains("check-cosign-signature") && text.contains(needle), "apply: {text}");
        let object: Value = serde_norway::from_slice(&std::fs::read(&resource).unwrap()).unwrap();
        let webhook = sigstack_e2e::webhook::Webhook::start_with_env(self.dir.path(), &self.policy, &[]);
        let denied = webhook.admit(&object).expect_err("the webhook admitted it");
        assert!(denied.contains(needle), "webhook: {denied}");
    }
}

#[test]
fn a_leaf_certificate_used_as_a_ca_is_refused_by_every_path() {
    let scene = Scene::start();
    let digest = scene.image("app");
    let rng = SystemRandom::new();

    // A: an honest certificate for the attacker's own workflow, with the attacker's key.
    let pkcs8_a = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key_a = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_a.as_ref()).unwrap();
    let chain = scene.certificate(&key_a, "evil/app");

    // B: certified by A's key, naming the organisation's workflow and GitHub's issuer.
    let pkcs8_b = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key_b = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_b.as_ref()).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(B.try_into().unwrap())];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.custom_extensions =
        vec![CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8_string(GITHUB_ISSUER))];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    // A's subject is empty, as every Fulcio leaf's: B names it as its issuer.
    let mut as_issuer = CertificateParams::new(Vec::<String>::new()).unwrap();
    as_issuer.distinguished_name = DistinguishedName::new();
    let rcgen_a = rcgen::KeyPair::try_from(pkcs8_a.as_ref()).unwrap();
    let rcgen_b = rcgen::KeyPair::try_from(pkcs8_b.as_ref()).unwrap();
    let cert_b = params.signed_by(&rcgen_b, &Issuer::new(as_issuer, rcgen_a)).unwrap();
    let cert_b_pem = pem("CERTIFICATE", cert_b.der());

    // B's signature over the image, logged for real (the log checks the signature, not the chain).
    let payload = scene.payload("app", &digest);
    let signature = key_b.sign(&rng, payload.as_bytes()).unwrap();
    let bundle = scene.log(payload.as_bytes(), signature.as_ref(), &cert_b_pem);
    scene.push_signature(
        "app",
        &digest,
        &payload,
        json!({"dev.cosignproject.cosign/signature": B64.encode(signature.as_ref()),
               "dev.sigstore.cosign/certificate": cert_b_pem,
               "dev.sigstore.cosign/chain": chain.concat(),
               "dev.sigstore.cosign/bundle": bundle.to_string()}),
    );
    scene.assert_refused_everywhere("app", &digest, "not a CA");
}

/// GHSA-whqx-f9j3-ch6m's shape: a genuine signature and certificate whose log entry is another,
/// equally valid one (cosign once accepted any valid entry without binding it to the signature).
#[test]
fn a_valid_log_entry_of_another_signature_is_refused_by_every_path() {
    let scene = Scene::start();
    let (target, other) = (scene.image("target"), scene.image("other"));
    for name in ["target", "other"] {
        run_ok(sigstack(scene.dir.path()).args(["sign", &format!("acme/{name}:v1"), "--repo", "acme/app"]));
    }
    let sig_manifest = |name: &str, digest: &str| -> Value {
        let url = format!("{}/v2/acme/{name}/manifests/{}.sig", scene.registry, digest.replace(':', "-"));
        let body = run_ok(std::process::Command::new("curl").args([
            "-fsS",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &url,
        ]));
        serde_json::from_str(&body).unwrap()
    };
    let (mut manifest, theirs) = (sig_manifest("target", &target), sig_manifest("other", &other));
    let layer = &manifest["layers"][0];
    let payload_digest = layer["digest"].as_str().unwrap().to_string();
    let payload = run_ok(
        std::process::Command::new("curl")
            .args(["-fsS", &format!("{}/v2/acme/target/blobs/{payload_digest}", scene.registry)]),
    );
    // The organisation's own signature verifies before the swap.
    let image = format!("{}/acme/target@{target}", scene.host);
    run_ok(sigstack(scene.dir.path()).args([
        "verify",
        &image,
        "--certificate-identity",
        B,
        "--certificate-oidc-issuer",
        GITHUB_ISSUER,
    ]));
    manifest["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"] =
        theirs["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"].clone();
    scene.push_signature("target", &target, &payload, manifest["layers"][0]["annotations"].clone());
    scene.assert_refused_everywhere("target", &target, "entry is for another signature or artifact");
}

/// GHSA-fx35-mq7g-6g98's shape: a public key where keyless verification expects a certificate
/// (cosign once let such a legacy bundle skip the identity checks). The key's signature and its
/// log entry are genuine; there is no identity to check, so keyless verification refuses.
#[test]
fn a_public_key_in_place_of_a_certificate_is_refused_by_every_path() {
    let scene = Scene::start();
    let digest = scene.image("keyed");
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let public_pem = pem("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
    let payload = scene.payload("keyed", &digest);
    let signature = key.sign(&rng, payload.as_bytes()).unwrap();
    let bundle = scene.log(payload.as_bytes(), signature.as_ref(), &public_pem);
    scene.push_signature(
        "keyed",
        &digest,
        &payload,
        json!({"dev.cosignproject.cosign/signature": B64.encode(signature.as_ref()),
               "dev.sigstore.cosign/certificate": public_pem,
               "dev.sigstore.cosign/bundle": bundle.to_string()}),
    );
    scene.assert_refused_everywhere("keyed", &digest, "not DER X.509");
}

/// Issue 23's second forgery: a properly certified signature whose DSSE payload is not an in-toto
/// statement (`text/plain`) says nothing about any artifact, so it verifies for none.
#[test]
fn a_dsse_payload_that_is_not_a_statement_verifies_for_no_artifact() {
    let scene = Scene::start();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let certificate = scene.certificate(&key, "acme/app").remove(0);
    let payload = b"anything at all";
    let pae = [format!("DSSEv1 {} text/plain {} ", "text/plain".len(), payload.len()).as_bytes(), payload.as_slice()]
        .concat();
    let signature = key.sign(&rng, &pae).unwrap();
    let certificate_der = pem::parse(&certificate).unwrap().into_contents();
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": B64.encode(&certificate_der)}},
        "dsseEnvelope": {"payloadType": "text/plain", "payload": B64.encode(payload),
                         "signatures": [{"sig": B64.encode(signature.as_ref())}]}
    });
    let bundle_path = scene.dir.path().join("text-plain.sigstore.json");
    std::fs::write(&bundle_path, bundle.to_string()).unwrap();
    let file = scene.dir.path().join("any-file.txt");
    std::fs::write(&file, b"any file at all").unwrap();
    let output = sigstack(scene.dir.path())
        .args(["verify-bundle", "--insecure-ignore-tlog", "--bundle"])
        .arg(&bundle_path)
        .args(["--certificate-identity", B, "--certificate-oidc-issuer", GITHUB_ISSUER])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "verify-bundle accepted a text/plain payload for any file");
    assert!(stderr.contains("artifact binding") && stderr.contains("text/plain"), "{stderr}");
}

/// A key against a keyless signature (an ImageValidatingPolicy's `certificate.cert`, or `--key`
/// with the signer's certificate key), judged beside cosign v2: the signature's certificate must
/// hold that key, and the log entry must name the certificate (cosign's `keyBytes`), not the key.
#[test]
fn a_key_verifies_a_keyless_signature_only_as_its_certificate_and_as_cosign_does() {
    let scene = Scene::start();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let public_pem = pem("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
    let chain = scene.certificate(&key, "acme/app");
    let sign = |name: &str, logged_pem: &str| {
        let digest = scene.image(name);
        let payload = scene.payload(name, &digest);
        let signature = key.sign(&rng, payload.as_bytes()).unwrap();
        let bundle = scene.log(payload.as_bytes(), signature.as_ref(), logged_pem);
        scene.push_signature(
            name,
            &digest,
            &payload,
            json!({"dev.cosignproject.cosign/signature": B64.encode(signature.as_ref()),
                   "dev.sigstore.cosign/certificate": chain[0],
                   "dev.sigstore.cosign/chain": chain[1..].concat(),
                   "dev.sigstore.cosign/bundle": bundle.to_string()}),
        );
        format!("{}/acme/{name}@{digest}", scene.host)
    };
    let honest = sign("honest", &chain[0]);
    let key_logged = sign("key-logged", &public_pem);
    let ours = scene.dir.path().join("ours.pub");
    std::fs::write(&ours, &public_pem).unwrap();
    let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let other = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, other.as_ref()).unwrap();
    let theirs = scene.dir.path().join("theirs.pub");
    std::fs::write(&theirs, pem("PUBLIC KEY", other.public_key().as_der().unwrap().as_ref())).unwrap();

    let judge = |image: &str, key: &std::path::Path| {
        let ours = sigstack(scene.dir.path()).args(["verify", "--key"]).arg(key).arg(image).output().unwrap();
        let mut cosign = sigstack_e2e::cosign_command("v2", scene.dir.path());
        let theirs =
            cosign.args(["verify", "--allow-insecure-registry", "--key"]).arg(key).arg(image).output().unwrap();
        let text = |o: &std::process::Output| {
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
        };
        assert_eq!(
            ours.status.success(),
            theirs.status.success(),
            "sigstack: {}\ncosign: {}",
            text(&ours),
            text(&theirs)
        );
        (ours.status.success(), text(&ours))
    };
    let (accepted, said) = judge(&honest, &ours);
    assert!(accepted, "the signer's key verifies its keyless signature: {said}");
    let (accepted, said) = judge(&honest, &theirs);
    assert!(!accepted && said.contains("both public key and certificate were provided but did not match"), "{said}");
    let (accepted, said) = judge(&key_logged, &ours);
    assert!(!accepted && said.contains("names another certificate or key"), "{said}");
}
