//! `sigstack policy probe`: attack a supply-chain admission policy with every artifact it should
//! refuse, built, signed and published in a stack's registry, and print its report card.
//!
//! Layers: the probe set (what each artifact is and what the organisation's policy should do with
//! it) and its building on a stack; the policy's intent read from its own text; the judges
//! (sigstack's evaluator in-process, the real Kyverno CLI); the card and its three renderings.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use sigstack_admission::{ImageVerifier, Phase, PolicySet, RequestInfo, evaluate_policy_set};
use sigstack_pipeline::{Format, ImageSource, Registry, Services};

use crate::testkit::Stack;

/// The SBOM attestations' predicate type.
const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";

/// What the organisation's policy should do with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// An adversarial artifact: refused.
    Refused,
    /// A control, properly signed and attested in one of the formats: admitted (a refusal means
    /// the policy cannot read that format, which the card reports without failing).
    Admitted,
    /// The policy states no intent for this (it requires no attestation, or does not pin the
    /// branch): reported, not scored.
    Unstated,
}

/// One artifact and the resource that runs it.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Short name.
    pub name: String,
    /// `control`, `registry`, `signature`, `attestation`, `tags`, `containers`.
    pub group: &'static str,
    /// What it is, in a sentence.
    pub what: String,
    /// The Pod or controller.
    pub resource: Value,
    /// What the policy should do.
    pub expect: Expect,
    /// Why, from the policy's intent.
    pub because: String,
}

/// What the policy's own text says it wants.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Intent {
    /// It refuses images outside the organisation's registry path.
    pub registry_restricted: bool,
    /// It requires an SBOM (SPDX) attestation.
    pub requires_sbom: bool,
    /// It checks what the SBOM says (attestation `conditions`, or `extractPayload` in CEL).
    pub checks_sbom_content: bool,
    /// Its identities pin a branch (`@refs/heads/...`).
    pub pins_branch: bool,
}

impl Intent {
    /// Read from the policy rendered for the stack, whose organisation's images are
    /// `registry/org/`.
    pub fn read(policy: &PolicySet, rendered_text: &str, registry: &str, org: &str) -> Intent {
        let path = format!("{registry}/{org}/");
        let restricted_by_rule = policy.cluster_policies.iter().any(|p| {
            p.spec.rules.iter().any(|r| r.validate.as_ref().is_some_and(|v| v.pattern.to_string().contains(&path)))
        });
        let restricted_by_cel = policy.image_validating.iter().any(|p| {
            p.spec.validations.iter().any(|v| v.expression.contains("object.") && v.expression.contains(&path))
        });
        Intent {
            registry_restricted: restricted_by_rule || restricted_by_cel,
            requires_sbom: rendered_text.contains(SPDX_DOCUMENT) || rendered_text.contains("spdxjson"),
            checks_sbom_content: policy.cluster_policies.iter().any(|p| {
                p.spec
                    .rules
                    .iter()
                    .flat_map(|r| &r.verify_images)
                    .flat_map(|e| &e.attestations)
                    .any(|a| !a.conditions.is_empty())
            }) || policy
                .image_validating
                .iter()
                .any(|p| p.spec.validations.iter().any(|v| v.expression.contains("extractPayload"))),
            pins_branch: rendered_text.contains("@refs/heads/"),
        }
    }
}

fn pod(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn controller(kind: &str, name: &str, image: &str) -> Value {
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": image}]}});
    let (api, spec) = match kind {
        "CronJob" => ("batch/v1", json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}})),
        "Job" => ("batch/v1", json!({"template": template})),
        _ => ("apps/v1", json!({"selector": {"matchLabels": {"app": name}}, "template": template})),
    };
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// Builds and publishes the probes in `stack`'s registry under `org/probe-*`; `other` is a second
/// stack (another CA and log) that signs one probe. Progress goes to standard error.
pub async fn build_probes(stack: &Stack, other: &Stack, org: &str, intent: &Intent) -> anyhow::Result<Vec<Probe>> {
    let registry_url = stack.url("registry").context("the stack has no registry")?.to_string();
    let registry = Registry::new(&registry_url)?;
    let host = registry_url.trim_start_matches("http://").to_string();
    let services = Services::from_stack(stack.urls())?;
    let org_repo = format!("{org}/app");
    let token = |repository: &str, git_ref: Option<&str>| {
        stack.token(&sigstack_oidc::TokenRequest {
            repository: Some(repository.to_string()),
            git_ref: git_ref.map(str::to_string),
            ..Default::default()
        })
    };
    let email = stack.token(&sigstack_oidc::TokenRequest {
        profile: Some(sigstack_oidc::Profile::Email),
        email: Some(format!("developer@{org}.example")),
        ..Default::default()
    })?;
    let build = |name: &str, tag: &str| {
        let registry = &registry;
        let repository = format!("{org}/probe-{name}");
        let tag = tag.to_string();
        async move {
            let source = ImageSource::Demo { version: format!("probe-{repository}-{tag}") };
            let digest = sigstack_pipeline::build(registry, &repository, &tag, &source).await?.digest;
            anyhow::Ok((format!("{repository}:{tag}"), digest))
        }
    };
    let sign = |image: String, token: String, format: Format| {
        let (registry, services) = (&registry, &services);
        async move { sigstack_pipeline::sign(registry, services, &token, &image, format).await.map(|_| ()) }
    };
    let attest = |image: String, token: String, format: Format, spdx_version: Option<&'static str>| {
        let (registry, services) = (&registry, &services);
        async move {
            let (_, mut sbom) = sigstack_pipeline::sbom(registry, &image).await?;
            if let Some(version) = spdx_version {
                sbom["spdxVersion"] = json!(version);
            }
            sigstack_pipeline::attest(registry, services, &token, &image, SPDX_DOCUMENT, &sbom, format)
                .await
                .map(|_| ())
        }
    };
    let by_digest = |image: &str, digest: &str| format!("{host}/{}@{digest}", image.split(':').next().unwrap_or(image));
    let mut probes = Vec::new();
    let mut add = |name: &str, group: &'static str, what: String, resource: Value, expect: Expect, because: String| {
        eprintln!("  probe {name}: {what}");
        probes.push(Probe { name: name.to_string(), group, what, resource, expect, because });
    };
    let refuse = |why: &str| (Expect::Refused, why.to_string());
    let sbom_expect = |why: &str| {
        if intent.requires_sbom {
            (Expect::Refused, why.to_string())
        } else {
            (Expect::Unstated, "the policy requires no SBOM attestation".to_string())
        }
    };

    // Controls: what the organisation's CI makes, in both formats.
    let (legacy, legacy_digest) = build("signed", "v1").await?;
    sign_and_attest(&registry, &services, &token(&org_repo, None)?, &legacy, Format::Cosign).await?;
    let (e, b) = (Expect::Admitted, "signed and attested by the organisation's release workflow".to_string());
    add(
        "control-cosign-format",
        "control",
        "signed and SBOM-attested in cosign's .sig/.att format".into(),
        pod("control-cosign", &by_digest(&legacy, &legacy_digest)),
        e,
        b.clone(),
    );
    // Bundles logged in Rekor v1 (no timestamp), and in Rekor v2 with a TSA's when the stack runs one.
    let v1_only = Services { rekor_v2: None, tsa: None, ..services.clone() };
    let (bundled, bundled_digest) = build("bundle", "v1").await?;
    sign_and_attest(&registry, &v1_only, &token(&org_repo, None)?, &bundled, Format::Bundle).await?;
    add(
        "control-bundle-format",
        "control",
        "signed and SBOM-attested as Sigstore bundles (OCI referrers, cosign v3's default), Rekor v1".into(),
        pod("control-bundle", &by_digest(&bundled, &bundled_digest)),
        e,
        b.clone(),
    );
    if services.rekor_v2.is_some() && services.tsa.is_some() {
        let (tiles, tiles_digest) = build("bundle-rekor-v2", "v1").await?;
        sign_and_attest(&registry, &services, &token(&org_repo, None)?, &tiles, Format::Bundle).await?;
        add(
            "control-bundle-rekor-v2-tsa",
            "control",
            "signed and SBOM-attested as Sigstore bundles with Rekor v2 entries and RFC 3161 timestamps".into(),
            pod("control-bundle-v2", &by_digest(&tiles, &tiles_digest)),
            e,
            b,
        );
    } else {
        eprintln!(
            "  (the stack runs no Rekor v2 log and timestamp authority: the v2 + TSA bundle control is left out; start it with --rekor both)"
        );
    }
    let signed = by_digest(&legacy, &legacy_digest);

    // Registry: nothing outside the organisation's path.
    let (e, b) = refuse("only the organisation's registry path is admitted");
    for (name, image) in [
        ("nginx-latest", "nginx:latest".to_string()),
        (
            "nginx-by-digest",
            "nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31".to_string(),
        ),
        ("docker-hub-short-name", "busybox:1.36".to_string()),
        ("another-registry", format!("quay.io/{org}/app:v1")),
        ("org-name-in-another-registry", format!("registry.example.com/{org}/app:v1")),
    ] {
        add(name, "registry", image.clone(), pod(name, &image), e, b.clone());
    }

    // Signatures.
    let (unsigned, unsigned_digest) = build("unsigned", "v1").await?;
    add(
        "unsigned",
        "signature",
        "the organisation's path, never signed".into(),
        pod("unsigned", &by_digest(&unsigned, &unsigned_digest)),
        Expect::Refused,
        "every image must be signed by the organisation".into(),
    );
    let (forked, forked_digest) = build("other-org", "v1").await?;
    sign_and_attest(&registry, &services, &token("evil/app", None)?, &forked, Format::Cosign).await?;
    let (e, b) = refuse("only the organisation's workflows may sign");
    add(
        "signed-by-another-org",
        "signature",
        "signed and attested by a workflow of evil/app".into(),
        pod("other-org", &by_digest(&forked, &forked_digest)),
        e,
        b.clone(),
    );
    let (person, person_digest) = build("email", "v1").await?;
    sign_and_attest(&registry, &services, &email, &person, Format::Cosign).await?;
    add(
        "signed-by-a-person",
        "signature",
        "signed and attested by an email identity (another issuer)".into(),
        pod("email", &by_digest(&person, &person_digest)),
        e,
        b.clone(),
    );
    let (pr, pr_digest) = build("pull-request", "v1").await?;
    sign_and_attest(&registry, &services, &token(&org_repo, Some("refs/pull/1/merge"))?, &pr, Format::Cosign).await?;
    let (pe, pb) = if intent.pins_branch {
        refuse("the policy's identities pin a branch")
    } else {
        (Expect::Unstated, "the policy admits any ref of the organisation's workflows, pull requests included".into())
    };
    add(
        "signed-on-a-pull-request-ref",
        "signature",
        "signed and attested by the right workflow on refs/pull/1/merge".into(),
        pod("pull-request", &by_digest(&pr, &pr_digest)),
        pe,
        pb,
    );
    let (foreign, foreign_digest) = build("other-ca", "v1").await?;
    let other_services = Services::from_stack(other.urls())?;
    let other_token =
        other.token(&sigstack_oidc::TokenRequest { repository: Some(org_repo.clone()), ..Default::default() })?;
    sign_and_attest(&registry, &other_services, &other_token, &foreign, Format::Cosign).await?;
    add(
        "another-ca-and-log",
        "signature",
        "the right identity, but a certificate from another CA and entries in another log".into(),
        pod("other-ca", &by_digest(&foreign, &foreign_digest)),
        Expect::Refused,
        "only the trusted CA and log count".into(),
    );

    // The log: a signature never logged, and one whose certificate has expired with nothing to
    // prove when it was made (no log entry, no timestamp). Their SBOMs are logged as usual.
    let (unlogged, unlogged_digest) = build("no-log-entry", "v1").await?;
    let fresh =
        sigstack_pipeline::sign_unlogged(&registry, &services, &token(&org_repo, None)?, &unlogged, None).await?;
    attest(unlogged.clone(), token(&org_repo, None)?, Format::Cosign, None).await?;
    add(
        "signed-without-log-entry",
        "signature",
        "signed by the organisation's workflow, never logged (cosign's --tlog-upload=false)".into(),
        pod("no-log-entry", &by_digest(&unlogged, &unlogged_digest)),
        Expect::Refused,
        "a signature must be in the transparency log".into(),
    );
    match expired_key(stack, &fresh.certificate)? {
        Some(key) => {
            let (expired, expired_digest) = build("expired-certificate", "v1").await?;
            sigstack_pipeline::sign_unlogged(&registry, &services, "", &expired, Some(&key)).await?;
            attest(expired.clone(), token(&org_repo, None)?, Format::Cosign, None).await?;
            add(
                "expired-certificate-no-timestamp",
                "signature",
                "signed with the organisation's certificate after it expired: no log entry, no timestamp".into(),
                pod("expired-certificate", &by_digest(&expired, &expired_digest)),
                Expect::Refused,
                "nothing proves the signature was made while the certificate was valid".into(),
            );
        }
        None => {
            eprintln!("  (the stack's CA is not in its state directory: the expired-certificate probe is left out)")
        }
    }

    // Attestations.
    let (nosbom, nosbom_digest) = build("no-sbom", "v1").await?;
    sign(nosbom.clone(), token(&org_repo, None)?, Format::Cosign).await?;
    let (e, b) = sbom_expect("every image must carry the organisation's SBOM attestation");
    add(
        "signed-without-sbom",
        "attestation",
        "signed by the organisation, no attestation".into(),
        pod("no-sbom", &by_digest(&nosbom, &nosbom_digest)),
        e,
        b.clone(),
    );
    let (other_sbom, other_sbom_digest) = build("sbom-by-another", "v1").await?;
    sign(other_sbom.clone(), token(&org_repo, None)?, Format::Cosign).await?;
    attest(other_sbom.clone(), token("evil/app", None)?, Format::Cosign, None).await?;
    add(
        "sbom-by-another-identity",
        "attestation",
        "signed by the organisation, SBOM attested by evil/app".into(),
        pod("sbom-by-another", &by_digest(&other_sbom, &other_sbom_digest)),
        e,
        b.clone(),
    );
    let (provenance, provenance_digest) = build("other-predicate", "v1").await?;
    sign(provenance.clone(), token(&org_repo, None)?, Format::Cosign).await?;
    sigstack_pipeline::attest(
        &registry,
        &services,
        &token(&org_repo, None)?,
        &provenance,
        "https://slsa.dev/provenance/v1",
        &json!({"buildDefinition": {}}),
        Format::Cosign,
    )
    .await?;
    add(
        "attestation-of-another-type",
        "attestation",
        "signed by the organisation, only a SLSA provenance attestation".into(),
        pod("other-predicate", &by_digest(&provenance, &provenance_digest)),
        e,
        b.clone(),
    );
    let (spdx3, spdx3_digest) = build("spdx3", "v1").await?;
    sign(spdx3.clone(), token(&org_repo, None)?, Format::Cosign).await?;
    attest(spdx3.clone(), token(&org_repo, None)?, Format::Cosign, Some("SPDX-3.0")).await?;
    let conditions = if intent.checks_sbom_content {
        (Expect::Refused, "the SBOM must satisfy the policy's conditions on it".to_string())
    } else {
        (Expect::Unstated, "the policy does not look inside the SBOM".into())
    };
    add(
        "sbom-failing-conditions",
        "attestation",
        "signed by the organisation, SBOM declares SPDX-3.0".into(),
        pod("spdx3", &by_digest(&spdx3, &spdx3_digest)),
        conditions.0,
        conditions.1,
    );

    let (borrowed, borrowed_digest) = build("other-digest", "v1").await?;
    let (decoy, decoy_digest) = build("other-digest", "decoy").await?;
    sign(borrowed.clone(), token(&org_repo, None)?, Format::Cosign).await?;
    attest(decoy, token(&org_repo, None)?, Format::Cosign, None).await?;
    let repository = format!("{org}/probe-other-digest");
    copy_tag(
        &registry,
        &repository,
        &sigstack_pipeline::tag_for(&decoy_digest, "att"),
        &sigstack_pipeline::tag_for(&borrowed_digest, "att"),
    )
    .await?;
    let (e, b) = sbom_expect("an attestation counts only for the digest its statement names");
    add(
        "attestation-for-another-digest",
        "attestation",
        "signed by the organisation, its .att copied from another image's (the statement names that digest)".into(),
        pod("other-digest", &by_digest(&borrowed, &borrowed_digest)),
        e,
        b,
    );

    // Tags and digests.
    let (moved, _) = build("moved", "v1").await?;
    sign_and_attest(&registry, &services, &token(&org_repo, None)?, &moved, Format::Cosign).await?;
    let source = ImageSource::Demo { version: "probe-moved-after-signing".into() };
    sigstack_pipeline::build(&registry, &format!("{org}/probe-moved"), "v1", &source).await?;
    add(
        "tag-moved-after-signing",
        "tags",
        "signed as v1, then v1 moved to an unsigned image".into(),
        pod("moved", &format!("{host}/{moved}")),
        Expect::Refused,
        "the digest the tag names now is unsigned".into(),
    );
    let (pinned, _) = build("pinned", "v1").await?;
    sign_and_attest(&registry, &services, &token(&org_repo, None)?, &pinned, Format::Cosign).await?;
    let (_, other_digest) = build("pinned", "other").await?;
    add(
        "signed-tag-but-unsigned-digest",
        "tags",
        "`probe-pinned:v1@<digest of an unsigned image>`: the tag is signed, the digest runs".into(),
        pod("pinned", &format!("{host}/{pinned}@{other_digest}")),
        Expect::Refused,
        "the digest is what runs".into(),
    );

    let (child, child_digest) = build("index", "signed-child").await?;
    sign_and_attest(&registry, &services, &token(&org_repo, None)?, &child, Format::Cosign).await?;
    let (_, stray_digest) = build("index", "unsigned-child").await?;
    let index_digest =
        push_index(&registry, &format!("{org}/probe-index"), "v1", &[&child_digest, &stray_digest]).await?;
    add(
        "index-with-unsigned-child",
        "tags",
        "an unsigned multi-arch index of the organisation's signed image (amd64) and an unsigned one (arm64)".into(),
        pod("index", &format!("{host}/{org}/probe-index@{index_digest}")),
        Expect::Refused,
        "the index is what the Pod names, and a node may run any of its children".into(),
    );

    // Containers and controllers carrying the unsigned image.
    let unsigned_ref = by_digest(&unsigned, &unsigned_digest);
    let mut init = pod("init", &signed);
    init["spec"]["initContainers"] = json!([{"name": "init", "image": unsigned_ref}]);
    add(
        "unsigned-init-container",
        "containers",
        "a signed app with an unsigned init container".into(),
        init,
        Expect::Refused,
        "every container runs code".into(),
    );
    let mut ephemeral = pod("ephemeral", &signed);
    ephemeral["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": unsigned_ref}]);
    add(
        "unsigned-ephemeral-container",
        "containers",
        "a signed app with an unsigned ephemeral (debug) container".into(),
        ephemeral,
        Expect::Refused,
        "every container runs code".into(),
    );
    for kind in ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"] {
        let name = format!("unsigned-{}", kind.to_ascii_lowercase());
        add(
            &name,
            "containers",
            format!("a {kind} running the unsigned image"),
            controller(kind, &name, &unsigned_ref),
            Expect::Refused,
            "Pod controllers create the same Pods".into(),
        );
    }
    Ok(probes)
}

/// Puts the manifest under `from` also under `to`, in one repository (blobs are shared).
async fn copy_tag(registry: &Registry, repository: &str, from: &str, to: &str) -> anyhow::Result<()> {
    let (manifest, _) = registry
        .manifest(&registry.tagged(repository, from)?)
        .await?
        .with_context(|| format!("no {repository}:{from}"))?;
    let media_type = serde_json::from_slice::<Value>(&manifest)?["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    registry.push_manifest(&registry.tagged(repository, to)?, &manifest, &media_type).await?;
    Ok(())
}

/// Pushes an OCI image index of `children` (manifests of `repository`, as linux/amd64, then
/// linux/arm64) under `tag`; returns its digest.
async fn push_index(registry: &Registry, repository: &str, tag: &str, children: &[&str]) -> anyhow::Result<String> {
    let mut manifests = Vec::new();
    for (digest, architecture) in children.iter().zip(["amd64", "arm64"]) {
        let (manifest, _) = registry
            .manifest(&registry.tagged_digest(repository, digest)?)
            .await?
            .with_context(|| format!("no {repository}@{digest}"))?;
        let media_type = serde_json::from_slice::<Value>(&manifest)?["mediaType"].clone();
        manifests.push(json!({"mediaType": media_type, "digest": digest, "size": manifest.len(),
            "platform": {"architecture": architecture, "os": "linux"}}));
    }
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}))?;
    registry.push_manifest(&registry.tagged(repository, tag)?, &index, INDEX).await
}

/// A fresh key with a certificate for the identity of `certificate` (PEM) issued by the stack's own
/// CA twenty minutes ago, so expired now (Fulcio's certificates live ten minutes); `None` when
/// the CA's key is not in the stack's state directory (a stack of separate containers).
fn expired_key(stack: &Stack, certificate: &str) -> anyhow::Result<Option<sigstack_pipeline::SigningKey>> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let ca_dir = stack.state_dir().join("fulcio");
    if !ca_dir.join("ca.json").exists() {
        return Ok(None);
    }
    let ca = sigstack_fulcio::CertificateAuthority::load_or_generate(&ca_dir)?;
    let leaf = pem::parse(certificate).context("the certificate's PEM")?.into_contents();
    let identity = sigstack_fulcio::Identity::of_leaf(&leaf)?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let spki = pair.public_key().as_der().map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = sigstack_fulcio::SubjectKey::from_spki_der(spki.as_ref())?;
    let issued_at = std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60);
    let chain = ca.issue(&key, &identity, issued_at)?.pem();
    Ok(Some(sigstack_pipeline::SigningKey { pkcs8: pkcs8.as_ref().to_vec(), chain }))
}

/// Signs `image` and attests its own SPDX SBOM as one identity, through `services` (this stack's,
/// or another stack's for the other-CA probe).
async fn sign_and_attest(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    format: Format,
) -> anyhow::Result<()> {
    sigstack_pipeline::sign(registry, services, token, image, format).await?;
    let (_, sbom) = sigstack_pipeline::sbom(registry, image).await?;
    sigstack_pipeline::attest(registry, services, token, image, SPDX_DOCUMENT, &sbom, format).await?;
    Ok(())
}

/// A judge's answer for one probe.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Admitted (else denied).
    pub admitted: bool,
    /// The denial, or what was admitted.
    pub reason: String,
}

/// sigstack's evaluator, both webhook phases as an API server would call them.
pub fn judge_sigstack(
    policy: &PolicySet,
    probes: &[Probe],
    verifier: Arc<dyn ImageVerifier + Send + Sync>,
) -> Vec<Verdict> {
    probes
        .iter()
        .map(|probe| {
            let request = RequestInfo::for_object(&probe.resource, "CREATE", None);
            let decision = evaluate_policy_set(policy, &probe.resource, &request, Arc::clone(&verifier), Phase::All);
            match decision.blocked {
                Some(message) => Verdict { admitted: false, reason: one_line(&message) },
                None => Verdict {
                    admitted: true,
                    reason: format!(
                        "admitted as {}",
                        sigstack_admission::resource_images(&decision.mutated).join(", ")
                    ),
                },
            }
        })
        .collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The real Kyverno CLI (`kubectl-kyverno apply --policy-report`) on the same resources: a probe is
/// denied when any result for it failed or erred.
pub fn judge_kyverno(cli: &Path, policy_file: &Path, probes: &[Probe], work: &Path) -> anyhow::Result<Vec<Verdict>> {
    let resources = work.join("probe-resources.yaml");
    let text: Vec<String> = probes.iter().map(|p| serde_norway::to_string(&p.resource)).collect::<Result<_, _>>()?;
    std::fs::write(&resources, text.join("---\n"))?;
    let home = work.join("kyverno-home");
    std::fs::create_dir_all(&home)?;
    let output = Command::new(cli)
        .env("HOME", &home)
        .args(["apply"])
        .arg(policy_file)
        .arg("--resource")
        .arg(&resources)
        .args(["--policy-report", "--output-format", "json"])
        .output()
        .with_context(|| format!("run {}", cli.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let start = stdout.find('{').with_context(|| {
        format!("kyverno apply printed no report:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr))
    })?;
    let report: Value = serde_json::from_str(stdout[start..].trim()).context("kyverno's policy report is not JSON")?;
    let mut denials: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for result in report["results"].as_array().into_iter().flatten() {
        if !matches!(result["result"].as_str(), Some("fail" | "error")) {
            continue;
        }
        for resource in result["resources"].as_array().into_iter().flatten() {
            let key =
                format!("{}/{}", resource["kind"].as_str().unwrap_or(""), resource["name"].as_str().unwrap_or(""));
            denials.entry(key).or_default().push(format!(
                "{}/{}: {}",
                result["policy"].as_str().unwrap_or(""),
                result["rule"].as_str().unwrap_or(""),
                one_line(result["message"].as_str().unwrap_or(""))
            ));
        }
    }
    Ok(probes
        .iter()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p.resource["kind"].as_str().unwrap_or(""),
                p.resource["metadata"]["name"].as_str().unwrap_or("")
            );
            match denials.get(&key) {
                Some(reasons) => Verdict { admitted: false, reason: reasons.join("; ") },
                None => Verdict { admitted: true, reason: "admitted".into() },
            }
        })
        .collect())
}

/// One row of the card.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The probe.
    pub probe: Probe,
    /// sigstack's answer (`--judge sigstack|both`).
    pub sigstack: Option<Verdict>,
    /// The real Kyverno's (`--judge kyverno|both`).
    pub kyverno: Option<Verdict>,
}

impl Row {
    /// The verdict scored: sigstack's, or Kyverno's when it judges alone.
    fn verdict(&self) -> &Verdict {
        static NONE: Verdict = Verdict { admitted: true, reason: String::new() };
        self.sigstack.as_ref().or(self.kyverno.as_ref()).unwrap_or(&NONE)
    }

    fn both(&self) -> bool {
        self.sigstack.is_some() && self.kyverno.is_some()
    }

    /// `ok`, `FINDING` (admitted, should be refused), `over-strict` (a control refused),
    /// `unstated`, and `DISAGREE` when the two judges differ.
    pub fn status(&self) -> &'static str {
        if let (Some(s), Some(k)) = (&self.sigstack, &self.kyverno)
            && s.admitted != k.admitted
        {
            return "DISAGREE";
        }
        match (self.probe.expect, self.verdict().admitted) {
            (Expect::Refused, false) | (Expect::Admitted, true) => "ok",
            (Expect::Refused, true) => "FINDING",
            (Expect::Admitted, false) => "over-strict",
            (Expect::Unstated, _) => "unstated",
        }
    }
}

/// The report card of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// The policy file(s).
    pub policy: String,
    /// What the policy's text says.
    pub intent: Intent,
    /// Findings about the policy itself (refused as written, no registry restriction).
    pub findings: Vec<String>,
    /// One per probe.
    pub rows: Vec<Row>,
}

impl Card {
    /// (refused as they should be, probes that should be refused).
    pub fn score(&self) -> (usize, usize) {
        let scored: Vec<&Row> = self.rows.iter().filter(|r| r.probe.expect == Expect::Refused).collect();
        (scored.iter().filter(|r| !r.verdict().admitted).count(), scored.len())
    }

    /// Whether CI should fail: a probe admitted that should have been refused, a finding about
    /// the policy, or a disagreement between the judges.
    pub fn failed(&self) -> bool {
        !self.findings.is_empty() || self.rows.iter().any(|r| matches!(r.status(), "FINDING" | "DISAGREE"))
    }

    fn score_line(&self) -> String {
        let (refused, of) = self.score();
        format!("probes refused as they should be: {refused}/{of}")
    }

    /// Plain text for a terminal.
    pub fn text(&self) -> String {
        let mut out = format!("Report card for {}\n", self.policy);
        for finding in &self.findings {
            out.push_str(&format!("  FINDING  {finding}\n"));
        }
        let both = self.rows.iter().any(Row::both);
        out.push_str(&format!(
            "\n{:<12} {:<32} {:<9} {:<9}{} {}\n",
            "STATUS",
            "PROBE",
            "EXPECTED",
            "SIGSTACK",
            if both { " KYVERNO  " } else { "" },
            "WHY"
        ));
        for row in &self.rows {
            let expected = match row.probe.expect {
                Expect::Refused => "refuse",
                Expect::Admitted => "admit",
                Expect::Unstated => "-",
            };
            let said = |v: &Verdict| if v.admitted { "admitted" } else { "refused" };
            let kyverno = match (&row.kyverno, both) {
                (Some(k), true) => format!(" {:<9}", said(k)),
                _ => String::new(),
            };
            let why = match (row.verdict().admitted, row.probe.expect) {
                (true, Expect::Refused) => format!("should be refused: {}", row.probe.because),
                (true, _) => row.probe.because.clone(),
                (false, _) => row.verdict().reason.clone(),
            };
            out.push_str(&format!(
                "{:<12} {:<32} {:<9} {:<9}{kyverno} {}\n",
                row.status(),
                row.probe.name,
                expected,
                said(row.verdict()),
                truncate(&why, 160)
            ));
        }
        out.push_str(&format!("\n{}\n", self.score_line()));
        out
    }

    /// Markdown for a pull request.
    pub fn markdown(&self) -> String {
        let mut out = format!("### Report card: `{}`\n\n", self.policy);
        for finding in &self.findings {
            out.push_str(&format!("- **Finding:** {finding}\n"));
        }
        let both = self.rows.iter().any(Row::both);
        out.push_str(if both {
            "\n| status | probe | what | expected | sigstack | Kyverno | reason |\n|---|---|---|---|---|---|---|\n"
        } else {
            "\n| status | probe | what | expected | verdict | reason |\n|---|---|---|---|---|---|\n"
        });
        for row in &self.rows {
            let said = |v: &Verdict| if v.admitted { "admitted" } else { "refused" };
            let clean = |s: &str| s.replace('|', "\\|");
            let expected = format!("{:?}", row.probe.expect).to_ascii_lowercase();
            let kyverno = match (&row.kyverno, both) {
                (Some(k), true) => format!(" {} |", said(k)),
                _ => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |{kyverno} {} |\n",
                row.status(),
                row.probe.name,
                clean(&row.probe.what),
                expected,
                said(row.verdict()),
                clean(&truncate(&row.verdict().reason, 240))
            ));
        }
        out.push_str(&format!("\n**{}**\n", self.score_line()));
        out
    }

    /// JSON for machines.
    pub fn json(&self) -> Value {
        let (refused, of) = self.score();
        json!({
            "policy": self.policy,
            "intent": self.intent,
            "findings": self.findings,
            "probes": self.rows.iter().map(|r| json!({
                "name": r.probe.name, "group": r.probe.group, "what": r.probe.what,
                "expected": r.probe.expect, "because": r.probe.because, "status": r.status(),
                "sigstack": r.sigstack, "kyverno": r.kyverno,
            })).collect::<Vec<_>>(),
            "score": {"refused": refused, "of": of},
            "failed": self.failed(),
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    format!("{}…", text.chars().take(max).collect::<String>())
}

/// The Kyverno CLI the scripts built (`$SIGSTACK_KYVERNO_BIN/kubectl-kyverno`, else the newest
/// build under `~/.cache/sigstack/bin`).
pub fn kyverno_cli() -> anyhow::Result<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("SIGSTACK_KYVERNO_BIN") {
        return Ok(std::path::PathBuf::from(dir).join("kubectl-kyverno"));
    }
    let cache = std::env::var_os("SIGSTACK_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/sigstack")))
        .context("HOME is not set")?;
    let mut builds: Vec<std::path::PathBuf> = std::fs::read_dir(cache.join("bin"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kyverno-")))
        .filter(|p| p.join("kubectl-kyverno").is_file())
        .collect();
    builds.sort();
    match builds.pop() {
        Some(dir) => Ok(dir.join("kubectl-kyverno")),
        None => bail!("the Kyverno CLI is not built: run scripts/install.sh kyverno (or set SIGSTACK_KYVERNO_BIN)"),
    }
}
