//! The engine with a fake verifier: Kyverno's semantics for defaults, validation, count, autogen,
//! skips, Audit and failurePolicy, independent of any registry.

use std::collections::HashMap;

use serde_json::{Value, json};
use sigstack_admission::{
    ImageInfo, ImageVerifier, RuleStatus, SignatureCheck, VerifiedSignature, VerifyFailure, evaluate, load_policies,
};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// Images by `registry/path`: the signatures and attestation types they carry, or unreachable.
#[derive(Default)]
struct Fake {
    signed: HashMap<String, (Vec<VerifiedSignature>, Vec<String>)>,
    unreachable: bool,
}

impl Fake {
    fn with(mut self, image: &str, san: &str, issuer: &str, attestations: &[&str]) -> Self {
        let sig = VerifiedSignature { sans: vec![san.into()], issuer: issuer.into() };
        self.signed.insert(image.into(), (vec![sig], attestations.iter().map(|s| s.to_string()).collect()));
        self
    }
}

impl ImageVerifier for Fake {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        if self.unreachable {
            Err(VerifyFailure::Unreachable("dial tcp: connection refused".into()))
        } else {
            Ok(DIGEST.into())
        }
    }
    fn signatures(&self, image: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        match self.signed.get(&format!("{}/{}", image.registry, image.path)) {
            Some((sigs, _)) => Ok(sigs.clone()),
            None => Err(VerifyFailure::NotFound("no signatures found".into())),
        }
    }
    fn attestations(
        &self,
        image: &ImageInfo,
        kind: &str,
        _: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        match self.signed.get(&format!("{}/{}", image.registry, image.path)) {
            Some((sigs, kinds)) if kinds.iter().any(|k| k == kind) => Ok(sigs.clone()),
            _ => Err(VerifyFailure::NotFound("no attestations found".into())),
        }
    }
}

const GH: &str = "https://token.actions.githubusercontent.com";

fn policy(extra_entry: &str, action: &str) -> String {
    format!(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {{name: p}}
spec:
  validationFailureAction: {action}
  failurePolicy: Fail
  rules:
    - name: sig
      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          skipImageReferences: ["ghcr.io/acme/skipped*"]
          {extra_entry}
          attestors:
            - count: 1
              entries:
                - keyless: {{subject: "https://github.com/acme/*", issuer: "{GH}", rekor: {{url: "https://rekor.test"}}}}
                - keyless: {{subject: "https://github.com/other/*", issuer: "{GH}", rekor: {{url: "https://rekor.test"}}}}
          attestations:
            - type: https://spdx.dev/Document
              attestors:
                - entries:
                    - keyless: {{subject: "https://github.com/acme/*", issuer: "{GH}", roots: "PEM"}}
"#
    )
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn signed() -> Fake {
    Fake::default().with(
        "ghcr.io/acme/app",
        "https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main",
        GH,
        &["https://spdx.dev/Document"],
    )
}

#[test]
fn count_one_of_two_entries_admits_and_pins_keeping_the_tag() {
    let policies = load_policies("p.yaml", &policy("", "Enforce")).unwrap();
    let decision = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &signed());
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    assert_eq!(decision.results[0].status, RuleStatus::Pass);
    assert_eq!(
        decision.patches[0],
        json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("ghcr.io/acme/app:v1@{DIGEST}")})
    );
    assert_eq!(
        decision.mutated["metadata"]["annotations"]["kyverno.io/verify-images"],
        format!("{{\"ghcr.io/acme/app@{DIGEST}\":\"pass\"}}")
    );
}

#[test]
fn unmatched_images_produce_no_response_and_skips_skip() {
    let policies = load_policies("p.yaml", &policy("", "Enforce")).unwrap();
    let decision = evaluate(&policies, &pod("nginx"), None, "CREATE", &signed());
    assert!(decision.results.is_empty(), "Kyverno produces no rule response for unmatched images");
    assert!(decision.blocked.is_none());
    let decision = evaluate(&policies, &pod("ghcr.io/acme/skipped:v1"), None, "CREATE", &Fake::default());
    assert_eq!(decision.results[0].status, RuleStatus::Skip);
}

#[test]
fn audit_reports_but_does_not_block_and_errors_follow_failure_policy() {
    let policies = load_policies("p.yaml", &policy("mutateDigest: false", "Audit")).unwrap();
    let decision = evaluate(&policies, &pod("ghcr.io/acme/unsigned:v1"), None, "CREATE", &Fake::default());
    assert_eq!(decision.results[0].status, RuleStatus::Fail);
    assert!(decision.blocked.is_none(), "Audit never blocks on failures");
    let unreachable = Fake { unreachable: true, ..Fake::default() };
    let decision = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &unreachable);
    assert_eq!(decision.results[0].status, RuleStatus::Error);
    assert!(decision.blocked.is_some(), "errors block under failurePolicy Fail, even in Audit");
    let ignore = load_policies(
        "p.yaml",
        &policy("mutateDigest: false", "Audit").replace("failurePolicy: Fail", "failurePolicy: Ignore"),
    )
    .unwrap();
    assert!(evaluate(&ignore, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &unreachable).blocked.is_none());
}

#[test]
fn messages_name_the_attestor_and_the_mismatch() {
    let policies = load_policies("p.yaml", &policy("", "Enforce")).unwrap();
    let wrong = Fake::default().with(
        "ghcr.io/acme/app",
        "https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main",
        GH,
        &[],
    );
    let blocked = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &wrong).blocked.unwrap();
    assert!(blocked.starts_with("resource Pod/ns/p was blocked due to the following policies"), "{blocked}");
    assert!(blocked.contains("p:\n  sig: 'failed to verify image ghcr.io/acme/app:v1: .attestors[0].entries[0].keyless: no matching signatures: subject mismatch: expected https://github.com/acme/*"), "{blocked}");
    let no_sbom = Fake::default().with(
        "ghcr.io/acme/app",
        "https://github.com/acme/a/.github/workflows/r.yml@refs/heads/main",
        GH,
        &[],
    );
    let blocked = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &no_sbom).blocked.unwrap();
    assert!(blocked.contains("attestations not found for predicate type https://spdx.dev/Document"), "{blocked}");
    let other_issuer = Fake::default().with(
        "ghcr.io/acme/app",
        "https://github.com/acme/a/.github/workflows/r.yml@refs/heads/main",
        "https://accounts.example",
        &[],
    );
    let blocked = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &other_issuer).blocked.unwrap();
    assert!(
        blocked.contains(
            "issuer mismatch: expected https://token.actions.githubusercontent.com, received https://accounts.example"
        ),
        "{blocked}"
    );
}

#[test]
fn autogen_covers_controllers_and_cronjobs() {
    let policies = load_policies("p.yaml", &policy("", "Enforce")).unwrap();
    let template = json!({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "ghcr.io/acme/app:v1"}]}});
    for (kind, resource, rule, pointer) in [
        (
            "Deployment",
            json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": template}}),
            "autogen-sig",
            "/spec/template/spec/containers/0/image",
        ),
        (
            "CronJob",
            json!({"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": template}}}}),
            "autogen-cronjob-sig",
            "/spec/jobTemplate/spec/template/spec/containers/0/image",
        ),
    ] {
        let decision = evaluate(&policies, &resource, None, "CREATE", &signed());
        assert_eq!(decision.results[0].rule, rule, "{kind}");
        assert_eq!(decision.patches[0]["path"], pointer, "{kind}");
        let denied = evaluate(&policies, &resource, None, "CREATE", &Fake::default());
        assert!(denied.blocked.unwrap().contains(&format!("{rule}: 'failed to verify image")), "{kind}");
    }
    let mut off = json!({"kind": "Deployment", "metadata": {"name": "d", "annotations": {"pod-policies.kyverno.io/autogen-controllers": "none"}}, "spec": {"template": template}});
    assert!(evaluate(&policies, &off, None, "CREATE", &Fake::default()).results.is_empty());
    off["kind"] = json!("ConfigMap");
    assert!(evaluate(&policies, &off, None, "CREATE", &Fake::default()).results.is_empty());
}

#[test]
fn kyvernos_policy_validation_and_unsupported_fields() {
    let cases = [
        (
            policy("", "Enforce").replace("rekor: {url: \"https://rekor.test\"}", ""),
            "Either Rekor URL or roots are required",
        ),
        (policy("", "Audit"), "mutateDigest must be set to false for 'Audit' failure action"),
        (
            policy("", "Enforce").replace("imageReferences: [\"ghcr.io/acme/*\"]", "imageReferences: []"),
            "An image reference is required",
        ),
        (policy("", "Enforce").replace("count: 1", "count: 3"), "count is larger"),
        (policy("", "Enforce").replace("kyverno.io/v1", "kyverno.io/v2beta1"), "apiVersion"),
        (policy("cosignOCI11: true", "Enforce"), "unknown field `cosignOCI11`"),
        (
            policy("", "Enforce").replace(
                "- keyless: {subject: \"https://github.com/other/*\"",
                "- keys: {subject: \"https://github.com/other/*\"",
            ),
            "unknown field `keys`",
        ),
        ("not: [valid".to_string(), "p.yaml"),
        (
            policy("", "Enforce").replace(
                "rekor: {url: \"https://rekor.test\"}",
                "rekor: {url: \"https://rekor.test\", ignoreTlog: true}",
            ),
            "ignoreTlog is not supported",
        ),
    ];
    for (yaml, needle) in cases {
        let error = load_policies("p.yaml", &yaml).unwrap_err().to_string();
        assert!(error.contains(needle), "{error} lacks {needle}");
    }
}
