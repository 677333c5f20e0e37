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
        let sig = VerifiedSignature { sans: vec![san.into()], issuer: issuer.into(), ..Default::default() };
        self.signed.insert(image.into(), (vec![sig], attestations.iter().map(|s| s.to_string()).collect()));
        self
    }
}

/// Signs with keys: signatures verify only for the PEM keys in `good`.
struct KeyFake {
    good: Vec<&'static str>,
}

impl ImageVerifier for KeyFake {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        Ok(DIGEST.into())
    }
    fn signatures(&self, _: &ImageInfo, check: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        let key = check.public_key.expect("a keys attestor passes its key");
        if self.good.iter().any(|g| g.trim() == key) {
            Ok(vec![VerifiedSignature::default()])
        } else {
            Err(VerifyFailure(
                "no matching signatures: the signature does not verify over the payload with the key".into(),
            ))
        }
    }
    fn attestations(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        Err(VerifyFailure("no matching attestations: ".into()))
    }
}

impl ImageVerifier for Fake {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        if self.unreachable { Err(VerifyFailure("dial tcp: connection refused".into())) } else { Ok(DIGEST.into()) }
    }
    fn signatures(&self, image: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        match self.signed.get(&format!("{}/{}", image.registry, image.path)) {
            Some((sigs, _)) => Ok(sigs.clone()),
            None => Err(VerifyFailure("no signatures found".into())),
        }
    }
    fn attestations(&self, image: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        match self.signed.get(&format!("{}/{}", image.registry, image.path)) {
            Some((sigs, kinds)) if !kinds.is_empty() => Ok(kinds
                .iter()
                .flat_map(|kind| {
                    sigs.iter().map(move |sig| VerifiedSignature {
                        statement: Some(json!({"predicateType": kind, "predicate": {}})),
                        ..sig.clone()
                    })
                })
                .collect()),
            _ => Err(VerifyFailure("no matching attestations: ".into())),
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
fn audit_reports_but_does_not_block_and_registry_failures_are_failures() {
    let policies = load_policies("p.yaml", &policy("mutateDigest: false", "Audit")).unwrap();
    let decision = evaluate(&policies, &pod("ghcr.io/acme/unsigned:v1"), None, "CREATE", &Fake::default());
    assert_eq!(decision.results[0].status, RuleStatus::Fail);
    assert!(decision.blocked.is_none(), "Audit never blocks on failures");
    // An unreachable registry is a rule failure, not an error, whatever failurePolicy says: what the
    // real Kyverno v1.19 answers through the API server (e2e/tests/cluster/real_admission.rs).
    let unreachable = Fake { unreachable: true, ..Fake::default() };
    let ignore = load_policies(
        "p.yaml",
        &policy("mutateDigest: false", "Enforce").replace("failurePolicy: Fail", "failurePolicy: Ignore"),
    )
    .unwrap();
    let decision = evaluate(&ignore, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &unreachable);
    assert_eq!(decision.results[0].status, RuleStatus::Fail);
    let message = decision.blocked.expect("blocked under Enforce even with failurePolicy Ignore");
    assert!(
        message.contains("failed to verify image ghcr.io/acme/app:v1: .attestors[0].entries[0].keyless: dial tcp"),
        "{message}"
    );
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
    assert!(blocked.contains("p:\n  sig: 'failed to verify image ghcr.io/acme/app:v1: .attestors[0].entries[0].keyless: subject mismatch: expected https://github.com/acme/*"), "{blocked}");
    let no_sbom = Fake::default().with(
        "ghcr.io/acme/app",
        "https://github.com/acme/a/.github/workflows/r.yml@refs/heads/main",
        GH,
        &[],
    );
    let blocked = evaluate(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &no_sbom).blocked.unwrap();
    // No attestation at all: cosign's "no matching attestations: " inside Kyverno's count message.
    assert!(blocked.contains("image attestations verification failed, verifiedCount: 0, requiredCount: 1, error: no matching attestations: "), "{blocked}");
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
            "expected one of `publicKeys`",
        ),
        (
            policy("", "Enforce").replace(
                "- keyless: {subject: \"https://github.com/other/*\", issuer: \"https://token.actions.githubusercontent.com\", rekor: {url: \"https://rekor.test\"}}",
                "- keys: {kms: \"awskms:///alias/x\"}",
            ),
            "keys.kms is not supported",
        ),
        (
            policy("", "Enforce").replace(
                "- keyless: {subject: \"https://github.com/other/*\", issuer: \"https://token.actions.githubusercontent.com\", rekor: {url: \"https://rekor.test\"}}",
                "- keys: {publicKeys: \"not a key\"}",
            ),
            "no PEM public key",
        ),
        (
            policy("", "Enforce").replace("roots: \"PEM\"", "roots: \"PEM\", additionalExtensions: {buildTrigger: push}"),
            "unsupported extension \"buildTrigger\"",
        ),
        (
            policy("", "Enforce").replace(
                "            - type: https://spdx.dev/Document",
                "            - type: https://spdx.dev/Document\n              conditions: [{all: [{key: \"{{ spdxVersion }}\", operator: Matches, value: x}]}]",
            ),
            "operator \"Matches\" is not one of",
        ),
        ("not: [valid".to_string(), "p.yaml"),
    ];
    for (yaml, needle) in cases {
        let error = load_policies("p.yaml", &yaml).unwrap_err().to_string();
        assert!(error.contains(needle), "{error} lacks {needle}");
    }
}

const KEY_A: &str = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
const KEY_B: &str = "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----";

/// A one-rule Enforce policy over Pods whose `verifyImages` is `verify_images` (YAML indented for
/// its place).
fn one_rule(rule: &str, verify_images: &str) -> Vec<sigstack_admission::Policy> {
    let yaml = format!(
        r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {{name: p}}
spec:
  validationFailureAction: Enforce
  rules:
    - name: {rule}
      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
      verifyImages:
{verify_images}"#
    );
    load_policies("p.yaml", &yaml).unwrap()
}

fn keys_policy(keys: &str, count: &str) -> Vec<sigstack_admission::Policy> {
    let keys = keys.replace('\n', "\n                      ");
    one_rule(
        "keyed",
        &format!(
            r#"        - imageReferences: ["ghcr.io/acme/*"]
          attestors:
            - {count}
              entries:
                - keys:
                    publicKeys: |-
                      {keys}
                    rekor: {{ignoreTlog: true}}
"#
        ),
    )
}

#[test]
fn static_keys_expand_per_key_and_count_them() {
    let image = pod("ghcr.io/acme/app:v1");
    let one_good = KeyFake { good: vec![KEY_A] };
    // One key, the right one: admitted and pinned.
    let decision = evaluate(&keys_policy(KEY_A, "count: 0"), &image, None, "CREATE", &one_good);
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    assert_eq!(decision.mutated["spec"]["containers"][0]["image"], format!("ghcr.io/acme/app:v1@{DIGEST}"));
    // The wrong key.
    let decision = evaluate(&keys_policy(KEY_B, "count: 0"), &image, None, "CREATE", &one_good);
    let message = decision.blocked.unwrap();
    assert!(message.contains(".attestors[0].entries[0].keys: no matching signatures"), "{message}");
    // Two keys in one publicKeys: each is an entry; count absent (all) needs both, count 1 needs one.
    let both = format!("{KEY_A}\n{KEY_B}");
    let decision = evaluate(&keys_policy(&both, "count: 0"), &image, None, "CREATE", &one_good);
    assert!(decision.blocked.unwrap().contains(".attestors[0].entries[1].keys"));
    let decision = evaluate(&keys_policy(&both, "count: 1"), &image, None, "CREATE", &one_good);
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    let decision =
        evaluate(&keys_policy(&both, "count: 0"), &image, None, "CREATE", &KeyFake { good: vec![KEY_A, KEY_B] });
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    let decision = evaluate(&keys_policy(&both, "count: 1"), &image, None, "CREATE", &KeyFake { good: vec![] });
    assert!(decision.blocked.is_some());
}

/// Signed with GitHub workflow extensions, attested with an SPDX predicate.
struct ExtensionFake;

impl ImageVerifier for ExtensionFake {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        Ok(DIGEST.into())
    }
    fn signatures(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        Ok(vec![VerifiedSignature {
            sans: vec!["https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main".into()],
            issuer: GH.into(),
            extensions: [(2, "push".to_string()), (5, "acme/app".to_string()), (6, "refs/heads/main".to_string())]
                .into_iter()
                .collect(),
            statement: None,
        }])
    }
    fn attestations(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        let mut signed = self.signatures(image, check)?;
        signed[0].statement =
            Some(json!({"predicateType": "https://spdx.dev/Document", "predicate": {"spdxVersion": "SPDX-2.3",
            "packages": [{"name": "a", "licenseConcluded": "MIT"}]}}));
        Ok(signed)
    }
}

fn keyless_policy(keyless_extra: &str, conditions: &str) -> Vec<sigstack_admission::Policy> {
    one_rule(
        "attested",
        &format!(
            r#"        - imageReferences: ["ghcr.io/acme/*"]
          attestations:
            - type: https://spdx.dev/Document
              conditions: {conditions}
              attestors:
                - entries:
                    - keyless:
                        subject: "https://github.com/acme/*"
                        issuer: "{GH}"
                        roots: PEM
                        {keyless_extra}
"#
        ),
    )
}

#[test]
fn additional_extensions_and_attestation_conditions() {
    let image = pod("ghcr.io/acme/app:v1");
    let admitted = |p: &[sigstack_admission::Policy]| evaluate(p, &image, None, "CREATE", &ExtensionFake).blocked;
    assert_eq!(
        admitted(&keyless_policy(
            "additionalExtensions: {githubWorkflowRepository: \"acme/*\", githubWorkflowTrigger: push}",
            "[]"
        )),
        None
    );
    let denied = admitted(&keyless_policy("additionalExtensions: {githubWorkflowRef: refs/tags/*}", "[]")).unwrap();
    assert!(
        denied.contains("extension mismatch: expected refs/tags/* for key githubWorkflowRef, received refs/heads/main"),
        "{denied}"
    );
    let by_oid =
        admitted(&keyless_policy("additionalExtensions: {\"1.3.6.1.4.1.57264.1.5\": \"evil/*\"}", "[]")).unwrap();
    assert!(
        by_oid.contains("extension mismatch: expected evil/* for key 1.3.6.1.4.1.57264.1.5, received acme/app"),
        "{by_oid}"
    );

    let spdx23 = r#"[{all: [{key: "{{ spdxVersion }}", operator: Equals, value: "SPDX-2.3"}, {key: "{{ packages[].licenseConcluded }}", operator: AllNotIn, value: ["GPL-*"]}]}]"#;
    assert_eq!(admitted(&keyless_policy("", spdx23)), None);
    let spdx3 = r#"[{all: [{key: "{{ spdxVersion }}", operator: Equals, value: "SPDX-3.*", message: "SBOMs must be SPDX 3"}]}]"#;
    let denied = admitted(&keyless_policy("", spdx3)).unwrap();
    assert!(
        denied.contains(".attestations[0].attestors[0].entries[0].keyless: attestation checks failed for ghcr.io/acme/app:v1 and predicate https://spdx.dev/Document: SBOMs must be SPDX 3"),
        "{denied}"
    );
    let missing = r#"[{any: [{key: "{{ builder.id }}", operator: Equals, value: "x"}]}]"#;
    assert!(admitted(&keyless_policy("", missing)).unwrap().contains("Unknown key"));
}

#[test]
fn the_validate_phase_checks_digest_and_annotation() {
    use sigstack_admission::{Phase, evaluate_phase};
    let policies = load_policies("p.yaml", &policy("", "Enforce")).unwrap();
    let validate =
        |object: &Value| evaluate_phase(&policies, object, None, "CREATE", &Fake::default(), Phase::Validate);
    // After the mutating phase: pinned and annotated.
    let mutated = evaluate_phase(&policies, &pod("ghcr.io/acme/app:v1"), None, "CREATE", &signed(), Phase::Mutate);
    assert!(mutated.blocked.is_none(), "{:?}", mutated.results);
    assert!(validate(&mutated.mutated).blocked.is_none(), "{:?}", validate(&mutated.mutated).results);
    // A tag without digest, as if the mutating webhook never ran.
    let message = validate(&pod("ghcr.io/acme/app:v1")).blocked.unwrap();
    assert!(message.contains("missing digest for ghcr.io/acme/app:v1"), "{message}");
    // A digest, but no verify-images annotation, or one that says fail.
    let pinned = pod(&format!("ghcr.io/acme/app@{DIGEST}"));
    let message = validate(&pinned).blocked.unwrap();
    assert!(message.contains(&format!("unverified image ghcr.io/acme/app@{DIGEST}")), "{message}");
    let mut failed = pinned.clone();
    failed["metadata"]["annotations"] =
        json!({"kyverno.io/verify-images": format!("{{\"ghcr.io/acme/app@{DIGEST}\":\"fail\"}}")});
    assert!(validate(&failed).blocked.is_some());
    // The mutating phase runs no validate rules; the validating phase runs no signature checks.
    assert!(
        evaluate_phase(&policies, &pod("nginx"), None, "CREATE", &Fake::default(), Phase::Mutate).results.is_empty()
    );
}

/// Kyverno's table rows 11 and 13: without mutateDigest the annotation names the image as written,
/// and verifyDigest is the validating phase's "missing digest".
#[test]
fn without_mutate_digest_the_tag_stays_and_verify_digest_decides() {
    use sigstack_admission::{Phase, evaluate_phase};
    let image = pod("ghcr.io/acme/app:v1");
    let unpinned =
        load_policies("p.yaml", &policy("mutateDigest: false\n          verifyDigest: false", "Enforce")).unwrap();
    let decision = evaluate(&unpinned, &image, None, "CREATE", &signed());
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    assert_eq!(decision.mutated["spec"]["containers"][0]["image"], "ghcr.io/acme/app:v1");
    assert_eq!(
        decision.mutated["metadata"]["annotations"]["kyverno.io/verify-images"],
        r#"{"ghcr.io/acme/app:v1":"pass"}"#
    );

    let digest_required = load_policies("p.yaml", &policy("mutateDigest: false", "Enforce")).unwrap();
    let mutated = evaluate_phase(&digest_required, &image, None, "CREATE", &signed(), Phase::Mutate);
    assert!(mutated.blocked.is_none(), "the mutating phase verifies and lets it through");
    let message = evaluate(&digest_required, &image, None, "CREATE", &signed()).blocked.unwrap();
    assert!(message.contains("missing digest for ghcr.io/acme/app:v1"), "{message}");
    let pinned = pod(&format!("ghcr.io/acme/app@{DIGEST}"));
    assert!(evaluate(&digest_required, &pinned, None, "CREATE", &signed()).blocked.is_none());
}

/// Two SBOM attestations on the image, one by the organisation and one by a stranger: as the real
/// Kyverno does (its cosign verifier's attestation loop), every attestation of the type must match
/// the attestor, so the stranger's fails the rule.
struct TwoAttesters;

impl ImageVerifier for TwoAttesters {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        Ok(DIGEST.into())
    }
    fn signatures(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        Err(VerifyFailure("no signatures found".into()))
    }
    fn attestations(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        let attester = |san: &str, version: &str| VerifiedSignature {
            sans: vec![san.into()],
            issuer: GH.into(),
            statement: Some(
                json!({"predicateType": "https://spdx.dev/Document", "predicate": {"spdxVersion": version}}),
            ),
            ..Default::default()
        };
        Ok(vec![
            attester("https://github.com/stranger/x/.github/workflows/r.yml@refs/heads/main", "SPDX-3.0"),
            attester("https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main", "SPDX-2.3"),
        ])
    }
}

#[test]
fn every_attestation_of_the_type_must_match_the_attestor() {
    let spdx2 = r#"[{all: [{key: "{{ spdxVersion }}", operator: Equals, value: "SPDX-2.*"}]}]"#;
    let decision = evaluate(&keyless_policy("", spdx2), &pod("ghcr.io/acme/app:v1"), None, "CREATE", &TwoAttesters);
    let message = decision.blocked.expect("the stranger's attestation fails the rule");
    assert!(
        message.contains("image attestations verification failed, verifiedCount: 0, requiredCount: 1, error: subject mismatch: expected https://github.com/acme/*, received https://github.com/stranger/x/"),
        "{message}"
    );
}
