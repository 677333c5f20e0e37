//! `sigstack policy probe` builds what it says it builds: each probe's image carries exactly the
//! signatures and attestations its description names (checked with the verifier, not with a
//! policy), so a report card can be trusted.

use serde_json::Value;
use sigstack::policy_probe::{Expect, Intent, Probe, build_probes};
use sigstack::testkit::{RekorVersions, Stack};
use sigstack_pipeline::Registry;

const GH: &str = "https://token.actions.githubusercontent.com";
const SPDX: &str = "https://spdx.dev/Document";

fn image_of(probe: &Probe) -> String {
    [
        "/spec/containers/0/image",
        "/spec/template/spec/containers/0/image",
        "/spec/jobTemplate/spec/template/spec/containers/0/image",
    ]
    .iter()
    .find_map(|p| probe.resource.pointer(p).and_then(Value::as_str))
    .unwrap_or_default()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_probe_is_built_as_described() {
    let stack = Stack::builder().registry(true).rekor(RekorVersions::Both).start().await.unwrap();
    let other = Stack::builder().registry(false).start().await.unwrap();
    let intent =
        Intent { registry_restricted: true, requires_sbom: true, checks_sbom_content: true, pins_branch: false };
    let probes = build_probes(&stack, &other, "acme", &intent).await.unwrap();
    let find = |name: &str| probes.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no probe {name}"));
    let workflow =
        |repo: &str, git_ref: &str| format!("https://github.com/{repo}/.github/workflows/release.yml@{git_ref}");
    let org = workflow("acme/app", "refs/heads/main");
    let signed_by = |name: &str, identity: &str| {
        let image = image_of(find(name));
        let stack = &stack;
        let identity = identity.to_string();
        async move { stack.verify(&image, &identity, GH).await }
    };
    let attested_by = |name: &str, identity: &str| {
        let image = image_of(find(name));
        let stack = &stack;
        let identity = identity.to_string();
        async move { stack.verify_attestation(&image, SPDX, &identity, GH).await }
    };

    // Controls: signed and attested by the organisation, in each format and log.
    for control in ["control-cosign-format", "control-bundle-format", "control-bundle-rekor-v2-tsa"] {
        let verified = signed_by(control, &org).await.unwrap_or_else(|e| panic!("{control}: {e}"));
        assert!(attested_by(control, &org).await.is_ok(), "{control}");
        assert_eq!(find(control).expect, Expect::Admitted);
        // Rekor v2 entries carry no integrated time; v1's do.
        let v2 = control == "control-bundle-rekor-v2-tsa";
        assert_eq!(verified[0].integrated_time.is_none(), v2, "{control}: {:?}", verified[0].integrated_time);
    }
    // Signatures: by whom the description says, and by no one else.
    assert!(signed_by("unsigned", &org).await.is_err());
    let evil = workflow("evil/app", "refs/heads/main");
    assert!(
        signed_by("signed-by-another-org", &evil).await.is_ok()
            && attested_by("signed-by-another-org", &evil).await.is_ok()
    );
    assert!(signed_by("signed-by-another-org", &org).await.is_err());
    assert!(signed_by("signed-by-a-person", &org).await.is_err(), "the person's image is not the workflow's");
    let issuer = stack.url("oidc").unwrap().to_string();
    let person = stack.verify(&image_of(find("signed-by-a-person")), "developer@acme.example", &issuer).await;
    assert!(person.is_ok(), "signed by the email identity, from the stack's own issuer: {person:?}");
    let pr = workflow("acme/app", "refs/pull/1/merge");
    assert!(signed_by("signed-on-a-pull-request-ref", &pr).await.is_ok());
    // The right identity, but this stack's trust refuses the other stack's CA.
    let foreign = signed_by("another-ca-and-log", &org).await.unwrap_err().to_string();
    assert!(foreign.contains("certificate chain") || foreign.contains("log"), "{foreign}");
    // No log entry: the layer has the organisation's certificate and no log bundle; the expired
    // one's certificate ended before now.
    let registry_url = stack.url("registry").unwrap().to_string();
    let registry = Registry::new(&registry_url).unwrap();
    let sig_layer = |name: &str| {
        let image = image_of(find(name));
        let registry = &registry;
        async move {
            let (repository, digest) = image.split_once('@').unwrap();
            let repository = repository.split_once('/').unwrap().1;
            let tag = sigstack_pipeline::tag_for(digest, "sig");
            let (manifest, _) = registry.manifest(&registry.tagged(repository, &tag).unwrap()).await.unwrap().unwrap();
            serde_json::from_slice::<Value>(&manifest).unwrap()["layers"][0]["annotations"].clone()
        }
    };
    for name in ["signed-without-log-entry", "expired-certificate-no-timestamp"] {
        let refused = signed_by(name, &org).await.unwrap_err().to_string();
        assert!(refused.contains("bundle"), "{name}: {refused}");
        let annotations = sig_layer(name).await;
        assert!(annotations.get("dev.sigstore.cosign/bundle").is_none(), "{name}: {annotations}");
        let leaf = pem::parse(annotations["dev.sigstore.cosign/certificate"].as_str().unwrap()).unwrap();
        let identity = sigstack_verify::CertificateIdentity::of(leaf.contents()).unwrap();
        assert_eq!(identity.san, std::slice::from_ref(&org), "{name}");
        let now = sigstack_verify::now();
        let expired = identity.validity.1 < now;
        assert_eq!(expired, name.starts_with("expired"), "{name}: {:?} at {now}", identity.validity);
        assert!(attested_by(name, &org).await.is_ok(), "{name}: its SBOM is logged as usual");
    }
    // Attestations.
    assert!(
        signed_by("signed-without-sbom", &org).await.is_ok() && attested_by("signed-without-sbom", &org).await.is_err()
    );
    assert!(signed_by("attestation-for-another-digest", &org).await.is_ok());
    let borrowed = attested_by("attestation-for-another-digest", &org).await.unwrap_err().to_string();
    assert!(borrowed.contains("sha256:"), "the statement names another digest: {borrowed}");
    assert!(
        attested_by("sbom-by-another-identity", &evil).await.is_ok()
            && attested_by("sbom-by-another-identity", &org).await.is_err()
    );
    assert!(attested_by("attestation-of-another-type", &org).await.is_err());
    let provenance = stack
        .verify_attestation(&image_of(find("attestation-of-another-type")), "https://slsa.dev/provenance/v1", &org, GH)
        .await;
    assert!(provenance.is_ok(), "{provenance:?}");
    let spdx3 = attested_by("sbom-failing-conditions", &org).await.unwrap();
    let statement = spdx3[0].statement.clone().unwrap_or_default();
    assert_eq!(statement["predicate"]["spdxVersion"], "SPDX-3.0");
    // Tags: the moved tag names an unsigned image; the pinned reference's digest is unsigned.
    assert!(signed_by("tag-moved-after-signing", &org).await.is_err());
    assert!(signed_by("signed-tag-but-unsigned-digest", &org).await.is_err());
    // The index: unsigned, of the organisation's signed image and an unsigned one.
    let index = image_of(find("index-with-unsigned-child"));
    assert!(signed_by("index-with-unsigned-child", &org).await.is_err());
    let (repository, digest) = index.split_once('@').unwrap();
    let repository = repository.split_once('/').unwrap().1;
    let (bytes, _) = registry.manifest(&registry.tagged_digest(repository, digest).unwrap()).await.unwrap().unwrap();
    let children: Vec<String> = serde_json::from_slice::<Value>(&bytes).unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{repository}@{}", registry_url.trim_start_matches("http://"), m["digest"].as_str().unwrap())
        })
        .collect();
    assert_eq!(children.len(), 2);
    assert!(stack.verify(&children[0], &org, GH).await.is_ok() && stack.verify(&children[1], &org, GH).await.is_err());
    // Containers: each carries the unsigned image where the description says.
    let unsigned = image_of(find("unsigned"));
    assert_eq!(find("unsigned-init-container").resource["spec"]["initContainers"][0]["image"], unsigned.as_str());
    assert_eq!(
        find("unsigned-ephemeral-container").resource["spec"]["ephemeralContainers"][0]["image"],
        unsigned.as_str()
    );
    for kind in ["deployment", "statefulset", "daemonset", "job", "cronjob"] {
        assert_eq!(image_of(find(&format!("unsigned-{kind}"))), unsigned, "{kind}");
    }
    // Registry probes name images outside the organisation's registry path.
    let registry = stack.url("registry").unwrap().trim_start_matches("http://").to_string();
    for probe in probes.iter().filter(|p| p.group == "registry") {
        assert!(!image_of(probe).starts_with(&format!("{registry}/acme/")), "{}", probe.name);
    }
    other.stop().await.unwrap();
    stack.stop().await.unwrap();
}
