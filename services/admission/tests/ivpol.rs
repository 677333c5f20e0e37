//! ImageValidatingPolicies with a fake verifier: Kyverno's CEL functions, `required`, digests,
//! autogen, actions and the refusals, independent of any registry (the real Kyverno judges the
//! same semantics in e2e/tests/cluster).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sigstack_admission::{
    ImageInfo, ImageVerifier, Phase, PolicySet, RequestInfo, RuleStatus, SignatureCheck, VerifiedSignature,
    VerifyFailure, evaluate_policy_set, load_policy_set,
};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const GH: &str = "https://token.actions.githubusercontent.com";

/// Images by `registry/path`: the signing identity's SAN and the SPDX version of its SBOM; every
/// verifier call is counted.
#[derive(Default)]
struct Fake {
    signed: HashMap<String, (String, String)>,
    calls: Mutex<Vec<String>>,
    unreachable: bool,
    /// The `certificate` and `certificate_chain` each signature check carried.
    certificates: Mutex<Vec<(Option<String>, Option<String>)>>,
}

impl Fake {
    fn with(mut self, image: &str, san: &str, spdx: &str) -> Self {
        self.signed.insert(image.into(), (san.into(), spdx.into()));
        self
    }
    fn signature(&self, image: &ImageInfo) -> Option<(VerifiedSignature, String)> {
        self.signed.get(&format!("{}/{}", image.registry, image.path)).map(|(san, spdx)| {
            (VerifiedSignature { sans: vec![san.clone()], issuer: GH.into(), ..Default::default() }, spdx.clone())
        })
    }
}

impl ImageVerifier for Fake {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        if self.unreachable { Err(VerifyFailure("dial tcp: connection refused".into())) } else { Ok(DIGEST.into()) }
    }
    fn signatures(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        assert!(check.detect_bundles, "an ImageValidatingPolicy reads bundles first");
        self.certificates
            .lock()
            .unwrap()
            .push((check.certificate.map(str::to_string), check.certificate_chain.map(str::to_string)));
        self.calls.lock().unwrap().push(format!("signatures {}", image.matching_string()));
        Ok(self.signature(image).map(|(s, _)| vec![s]).unwrap_or_default())
    }
    fn attestations(&self, image: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        self.calls.lock().unwrap().push(format!("attestations {}", image.matching_string()));
        Ok(self
            .signature(image)
            .map(|(s, spdx)| {
                vec![VerifiedSignature {
                    statement: Some(
                        json!({"predicateType": "https://spdx.dev/Document", "predicate": {"spdxVersion": spdx}}),
                    ),
                    ..s
                }]
            })
            .unwrap_or_default())
    }
}

fn policy(extra_spec: &str, validations: &str) -> PolicySet {
    load_policy_set("p.yaml", &policy_yaml(extra_spec, validations)).unwrap()
}

fn policy_yaml(extra_spec: &str, validations: &str) -> String {
    format!(
        r#"
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {{name: check}}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods]
  matchImageReferences:
    - glob: "reg.test/acme/*"
  attestors:
    - name: gha
      cosign:
        keyless:
          identities:
            - issuer: {GH}
              subjectRegExp: "^https://github.com/acme/"
          roots: "unused by the fake"
  attestations:
    - name: sbom
      intoto: {{type: https://spdx.dev/Document}}
{extra_spec}
  validations:
{validations}
"#
    )
}

const SIGNED: &str = r#"    - expression: images.containers.map(i, verifyImageSignatures(i, [attestors.gha])).all(n, n > 0)
      message: must be signed"#;

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
}

fn judge(set: &PolicySet, object: &Value, verifier: Arc<Fake>, phase: Phase) -> sigstack_admission::Decision {
    let request = RequestInfo::for_object(object, "CREATE", None);
    evaluate_policy_set(set, object, &request, verifier, phase)
}

fn acme() -> Arc<Fake> {
    Arc::new(Fake::default().with(
        "reg.test/acme/app",
        "https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main",
        "SPDX-2.3",
    ))
}

#[test]
fn a_signed_image_by_digest_passes_and_an_unsigned_one_fails_with_the_policys_message() {
    let set = policy("", SIGNED);
    let signed = pod(&[&format!("reg.test/acme/app@{DIGEST}")]);
    let decision = judge(&set, &signed, acme(), Phase::Validate);
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    assert_eq!(decision.results[0].status, RuleStatus::Pass);
    assert_eq!(decision.results[0].message, "success");

    let unsigned = pod(&[&format!("reg.test/acme/other@{DIGEST}")]);
    let decision = judge(&set, &unsigned, acme(), Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: must be signed"));
}

#[test]
fn tags_are_pinned_by_the_mutating_phase_and_refused_without_a_digest_by_the_validating_one() {
    let set = policy("", SIGNED);
    let tagged = pod(&["reg.test/acme/app:v1", "nginx:latest"]);
    let decision = judge(&set, &tagged, acme(), Phase::Validate);
    assert_eq!(
        decision.blocked.as_deref(),
        Some("Policy check failed: image reg.test/acme/app:v1 does not have a digest")
    );

    let mutated = judge(&set, &tagged, acme(), Phase::Mutate);
    assert!(mutated.blocked.is_none());
    // Only the image the references select is pinned; the tag is kept.
    assert_eq!(
        mutated.patches,
        vec![
            json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("reg.test/acme/app:v1@{DIGEST}")})
        ]
    );
    let both = judge(&set, &tagged, acme(), Phase::All);
    assert!(both.blocked.is_none(), "{:?}", both.results);
}

#[test]
fn an_unresolvable_tag_is_an_error_that_denies_under_deny() {
    let set = policy("", SIGNED);
    let fake = Arc::new(Fake { unreachable: true, ..Fake::default() });
    let decision = judge(&set, &pod(&["reg.test/acme/app:v1"]), fake, Phase::Mutate);
    let blocked = decision.blocked.expect("denied");
    assert!(
        blocked.starts_with(
            "Policy check error: failed to update digest: failed to resolve digest for image reg.test/acme/app:v1"
        ),
        "{blocked}"
    );
}

#[test]
fn required_refuses_an_image_no_policy_checked_and_not_when_turned_off() {
    let registry_only = "    - expression: object.spec.containers.all(c, c.image.startsWith('reg.test/'))";
    let image = format!("reg.test/acme/app@{DIGEST}");
    let decision = judge(&policy("", registry_only), &pod(&[&image]), acme(), Phase::Validate);
    assert_eq!(
        decision.blocked.as_deref(),
        Some(format!("Policy check failed: image {image} is not verified: no policy performed a signature or attestation check on it").as_str())
    );
    let optional = policy("  validationConfigurations: {required: false}", registry_only);
    assert!(judge(&optional, &pod(&[&image]), acme(), Phase::Validate).blocked.is_none());
}

#[test]
fn extract_payload_needs_a_verification_first_and_then_reads_the_statement() {
    let image = format!("reg.test/acme/app@{DIGEST}");
    let early =
        "    - expression: images.containers.all(i, extractPayload(i, attestations.sbom).predicate.spdxVersion != '')";
    let decision = judge(&policy("", early), &pod(&[&image]), acme(), Phase::Validate);
    assert_eq!(
        decision.blocked.as_deref(),
        Some(
            "Policy check error: failed to evaluate policy: failed to get payload: intoto attestation payload cannot be fetch before verifying intoto attestation"
        )
    );
    let checked = r#"    - expression: images.containers.map(i, verifyAttestationSignatures(i, attestations.sbom, [attestors.gha])).all(n, n > 0)
    - expression: images.containers.all(i, extractPayload(i, attestations.sbom).predicate.spdxVersion.startsWith('SPDX-2.'))
      messageExpression: "'SBOM is ' + string(size(images.containers)) + ' image(s) old'""#;
    assert!(judge(&policy("", checked), &pod(&[&image]), acme(), Phase::Validate).blocked.is_none());
    let spdx3 = Arc::new(Fake::default().with("reg.test/acme/app", "https://github.com/acme/app", "SPDX-3.0"));
    let decision = judge(&policy("", checked), &pod(&[&image]), spdx3, Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: SBOM is 1 image(s) old"));
}

#[test]
fn identities_follow_cosign_exact_or_unanchored_regexp_and_another_org_fails() {
    let image = format!("reg.test/acme/app@{DIGEST}");
    let forked = Arc::new(Fake::default().with(
        "reg.test/acme/app",
        "https://github.com/evil/app/x@refs/heads/main",
        "SPDX-2.3",
    ));
    assert!(judge(&policy("", SIGNED), &pod(&[&image]), forked, Phase::Validate).blocked.is_some());
}

#[test]
fn images_outside_the_references_are_neither_checked_nor_required() {
    let fake = acme();
    let decision = judge(&policy("", SIGNED), &pod(&[&format!("nginx@{DIGEST}")]), Arc::clone(&fake), Phase::Validate);
    assert!(decision.blocked.is_none());
    assert!(fake.calls.lock().unwrap().is_empty(), "no verification for an unmatched image");
    // verifyImageSignatures on an unmatched image answers 0 without a check (Kyverno's MatchImage).
    let direct = "    - expression: verifyImageSignatures('nginx@sha256:1111111111111111111111111111111111111111111111111111111111111111', [attestors.gha]) == 0";
    assert!(judge(&policy("", direct), &pod(&[&format!("nginx@{DIGEST}")]), fake, Phase::Validate).blocked.is_none());
}

#[test]
fn match_image_references_by_expression_see_the_reference_as_ref() {
    let mut set = policy("", SIGNED);
    let by_expression: Value = json!([{"expression": "ref.startsWith('reg.test/acme/')"}]);
    set.image_validating[0].spec.match_image_references = serde_json::from_value(by_expression).unwrap();
    let decision = judge(&set, &pod(&[&format!("reg.test/acme/other@{DIGEST}")]), acme(), Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: must be signed"));
    assert!(judge(&set, &pod(&[&format!("nginx@{DIGEST}")]), acme(), Phase::Validate).blocked.is_none());
}

#[test]
fn controllers_get_the_autogenerated_copy_with_rewritten_object_paths() {
    let set = policy(
        "",
        "    - expression: object.spec.containers.all(c, c.image.startsWith('reg.test/'))\n      message: registry\n"
            .to_string()
            .as_str(),
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": format!("nginx@{DIGEST}")}]}}}});
    let decision = judge(&set, &deployment, acme(), Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: registry"));
    let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "default"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": format!("nginx@{DIGEST}")}]}}}}}});
    assert_eq!(
        judge(&set, &cronjob, acme(), Phase::Validate).blocked.as_deref(),
        Some("Policy check failed: registry")
    );
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}});
    assert!(judge(&set, &service, acme(), Phase::Validate).results.is_empty());
}

#[test]
fn warn_and_audit_never_deny_and_warn_tells_the_client() {
    let unsigned = pod(&[&format!("reg.test/acme/other@{DIGEST}")]);
    let warn = judge(&policy("  validationActions: [Warn]", SIGNED), &unsigned, acme(), Phase::Validate);
    assert!(warn.blocked.is_none());
    assert_eq!(warn.warnings, vec!["Policy check failed: must be signed".to_string()]);
    let audit = judge(&policy("  validationActions: [Audit]", SIGNED), &unsigned, acme(), Phase::Validate);
    assert!(audit.blocked.is_none() && audit.warnings.is_empty());
    assert_eq!(audit.results[0].status, RuleStatus::Fail);
}

#[test]
fn variables_and_match_conditions_are_cel() {
    let spec = "  matchConditions: [{name: labelled, expression: \"has(object.metadata.labels) && object.metadata.labels.check == 'yes'\"}]\n  variables: [{name: want, expression: \"'reg.test/'\"}]";
    let validations = "    - expression: object.spec.containers.all(c, c.image.startsWith(variables.want))";
    let set = policy(spec, validations);
    let mut nginx = pod(&[&format!("nginx@{DIGEST}")]);
    assert!(judge(&set, &nginx, acme(), Phase::Validate).results.is_empty(), "unlabelled: not matched");
    nginx["metadata"]["labels"] = json!({"check": "yes"});
    let decision = judge(&set, &nginx, acme(), Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: CEL expression validation failed at index 0"));
}

#[test]
fn what_sigstack_does_not_evaluate_is_refused_by_name() {
    let base = |attestor: &str| {
        format!(
            "apiVersion: policies.kyverno.io/v1\nkind: ImageValidatingPolicy\nmetadata: {{name: q}}\nspec:\n  matchConstraints: {{resourceRules: [{{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]}}\n  attestors: [{attestor}]\n  validations: [{{expression: 'true'}}]\n"
        )
    };
    for (attestor, field) in [
        ("{name: n, notary: {certs: {value: x}}}", "notary is not supported"),
        ("{name: c, cosign: {certificate: {cert: {value: x, expression: y}}}}", "exactly one of value or expression"),
        ("{name: k, cosign: {key: {kms: 'awskms:///x'}}}", "cosign.key.kms is not supported"),
        ("{name: a, cosign: {key: {data: x}, annotations: {a: b}}}", "cosign.annotations is not supported"),
        ("{name: s, cosign: {key: {data: x}, source: {repository: r}}}", "cosign.source is not supported"),
    ] {
        let error = load_policy_set("q.yaml", &base(attestor)).unwrap_err().to_string();
        assert!(error.contains(field), "{attestor}: {error}");
    }
    let json_mode =
        base("{name: k, cosign: {key: {data: x}}}").replace("spec:\n", "spec:\n  evaluation: {mode: JSON}\n");
    assert!(load_policy_set("q.yaml", &json_mode).unwrap_err().to_string().contains("spec.evaluation.mode"));
    let unknown = base("{name: k, cosign: {key: {data: x}}}").replace("spec:\n", "spec:\n  exceptions: []\n");
    assert!(load_policy_set("q.yaml", &unknown).unwrap_err().to_string().contains("unknown field `exceptions`"));
}

#[test]
fn a_certificate_attestor_passes_its_pem_from_a_value_or_an_expression_to_the_verifier() {
    let yaml = policy_yaml(
        "  variables: [{name: pem, expression: \"'CERT-' + object.metadata.name\"}]",
        "    - expression: images.containers.map(i, verifyImageSignatures(i, [attestors.pinned])).all(n, n > 0)",
    )
    .replace(
        "  attestations:\n",
        "    - name: pinned\n      cosign:\n        certificate:\n          cert: {expression: variables.pem}\n          certChain: {value: CHAIN}\n  attestations:\n",
    );
    let set = load_policy_set("p.yaml", &yaml).unwrap();
    let verifier = acme();
    let decision = judge(&set, &pod(&[&format!("reg.test/acme/app@{DIGEST}")]), verifier.clone(), Phase::Validate);
    assert!(decision.blocked.is_none(), "{:?}", decision.results);
    assert_eq!(*verifier.certificates.lock().unwrap(), [(Some("CERT-p".to_string()), Some("CHAIN".to_string()))]);
}

#[test]
fn a_referrer_attestation_counts_as_unverified_under_a_cosign_attestor_as_in_kyverno() {
    // Kyverno's cosign verifier reads in-toto attestations only; its error is logged and the
    // attestor not counted.
    let yaml = policy_yaml(
        "",
        "    - expression: images.containers.map(i, verifyAttestationSignatures(i, attestations.spdx, [attestors.gha])).all(n, n > 0)\n      message: needs an SBOM referrer",
    )
    .replace("  attestations:\n", "  attestations:\n    - name: spdx\n      referrer: {type: application/spdx+json}\n");
    let set = load_policy_set("p.yaml", &yaml).unwrap();
    let verifier = acme();
    let decision = judge(&set, &pod(&[&format!("reg.test/acme/app@{DIGEST}")]), verifier.clone(), Phase::Validate);
    assert_eq!(decision.blocked.as_deref(), Some("Policy check failed: needs an SBOM referrer"));
    assert!(verifier.calls.lock().unwrap().is_empty(), "nothing is fetched for it");
}

#[test]
fn an_undeclared_function_is_an_error_that_names_it() {
    let image = format!("reg.test/acme/app@{DIGEST}");
    let decision =
        judge(&policy("", "    - expression: imageverify.verify(object)"), &pod(&[&image]), acme(), Phase::Validate);
    let blocked = decision.blocked.expect("an error denies under Deny");
    assert!(blocked.starts_with("Policy check error: failed to evaluate policy:"), "{blocked}");
    assert!(blocked.contains("imageverify"), "{blocked}");
}
