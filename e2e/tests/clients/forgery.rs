//! Issue 23's first forgery through every path that decides on a signature: a certificate the
//! stack's CA honestly issued for identity A (the attacker's own workflow) is used as a CA, its
//! key certifies identity B (the organisation's), and the image's cosign `.sig` layer carries B's
//! certificate with the chain annotation `[A, intermediate, root]` and a real log entry. Before the
//! verification core, `sigstack verify --insecure-ignore-sct` printed Verified, and admission under
//! `ctlog.ignoreSCT: true` followed. Now the CLI, `apply` and the webhook all refuse it, naming the
//! chain check.

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

#[test]
fn a_leaf_certificate_used_as_a_ca_is_refused_by_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let registry = stack.url("registry");
    let host = registry.trim_start_matches("http://").to_string();
    let digest =
        run_ok(sigstack(dir.path()).args(["build", "--name", "acme/app", "--tag", "v1", "--app-version", "x"]))
            .trim()
            .to_string();
    let rng = SystemRandom::new();

    // A: an honest certificate for the attacker's own workflow, with the attacker's key.
    let pkcs8_a = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key_a = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_a.as_ref()).unwrap();
    let token = sigstack_e2e::token(dir.path(), &["--repo", "evil/app"]);
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let proof = key_a.sign(&rng, claims["sub"].as_str().unwrap().as_bytes()).unwrap();
    let issued = post_json(
        &format!("{}/api/v2/signingCert", stack.url("fulcio")),
        &json!({"credentials": {"oidcIdentityToken": token},
                "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem("PUBLIC KEY", key_a.public_key().as_der().unwrap().as_ref())},
                                     "proofOfPossession": B64.encode(proof.as_ref())}}),
    );
    let chain: Vec<String> = issued["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();

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
    let payload = json!({"critical": {"identity": {"docker-reference": format!("{host}/acme/app")},
        "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}, "optional": null})
    .to_string();
    let signature = key_b.sign(&rng, payload.as_bytes()).unwrap();
    let payload_hash: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, payload.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let logged = post_json(
        &format!("{}/api/v1/log/entries", stack.url("rekor")),
        &json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": payload_hash}},
            "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": B64.encode(&cert_b_pem)}}}}),
    );
    let (_, entry) = logged.as_object().unwrap().iter().next().unwrap();
    let bundle = json!({"SignedEntryTimestamp": entry["verification"]["signedEntryTimestamp"],
        "Payload": {"body": entry["body"], "integratedTime": entry["integratedTime"], "logIndex": entry["logIndex"], "logID": entry["logID"]}});

    let payload_digest = put_blob(&registry, "acme/app", payload.as_bytes());
    let config_digest = put_blob(&registry, "acme/app", b"{}");
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_digest, "size": payload.len(),
            "annotations": {
                "dev.cosignproject.cosign/signature": B64.encode(signature.as_ref()),
                "dev.sigstore.cosign/certificate": cert_b_pem,
                "dev.sigstore.cosign/chain": chain.concat(),
                "dev.sigstore.cosign/bundle": bundle.to_string()}}]});
    put_manifest(&registry, "acme/app", &format!("{}.sig", digest.replace(':', "-")), &manifest);

    // The CLI.
    let image = format!("{host}/acme/app@{digest}");
    let output = sigstack(dir.path())
        .args(["verify", &image, "--insecure-ignore-sct", "--certificate-identity", B])
        .args(["--certificate-oidc-issuer", GITHUB_ISSUER])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "sigstack verify accepted the forgery:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("certificate chain") && stderr.contains("not a CA"), "{stderr}");

    // apply and the webhook, under the organisation's policy with ctlog.ignoreSCT.
    let policy_path = dir.path().join("policy.yaml");
    run_ok(sigstack(dir.path()).args(["policy", "render", "--org", "acme", "-o", policy_path.to_str().unwrap()]));
    let mut policy: Value = serde_norway::from_slice(&std::fs::read(&policy_path).unwrap()).unwrap();
    each_keyless(&mut policy, &|keyless| keyless["ctlog"] = json!({"ignoreSCT": true}));
    std::fs::write(&policy_path, serde_norway::to_string(&policy).unwrap()).unwrap();
    let resource = dir.path().join("pod.yaml");
    std::fs::write(
        &resource,
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: forged, namespace: default}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n"),
    )
    .unwrap();
    let applied = sigstack(dir.path())
        .args(["apply", "--policy"])
        .arg(&policy_path)
        .arg("--resource")
        .arg(&resource)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&applied.stdout);
    assert!(!applied.status.success(), "apply admitted the forgery:\n{text}");
    assert!(text.contains("check-cosign-signature") && text.contains("not a CA"), "{text}");
    let object: Value = serde_norway::from_slice(&std::fs::read(&resource).unwrap()).unwrap();
    let webhook = sigstack_e2e::webhook::Webhook::start_with_env(dir.path(), &policy_path, &[]);
    let denied = webhook.admit(&object).expect_err("the webhook admitted the forgery");
    assert!(denied.contains("not a CA"), "{denied}");
    drop(stack);
}
