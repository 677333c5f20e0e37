//! The whole chain, hermetic: stack + registry up → build → push → SBOM → sign → attest → `sigstack
//! apply` of the rendered Kyverno policy. The signed Pod is admitted, pinned to its digest and
//! annotated; nginx:latest is denied by the registry rule; then the rejection matrix.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use sigstack_e2e::{Stack, run_ok, sigstack, workspace_root};

struct Flow {
    dir: tempfile::TempDir,
    _stack: Stack,
    registry: String,
}

impl Flow {
    fn start() -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack::start(dir.path(), &[]).unwrap();
        let registry = stack.url("registry").trim_start_matches("http://").to_string();
        Flow { dir, _stack: stack, registry }
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(sigstack(self.dir.path()).args(args)).trim().to_string()
    }

    fn policy(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("policy.yaml");
        if !path.exists() {
            self.ok(&["policy", "render", "--org", "acme", "-o", path.to_str().unwrap()]);
        }
        path
    }

    /// `sigstack apply` of one resource document; returns (exit ok, stdout, mutated resource).
    fn apply_with(&self, policy: &Path, resource: &str) -> (bool, String, Value) {
        let file = self.dir.path().join(format!("resource-{}.yaml", uuid_like()));
        std::fs::write(&file, resource.replace("REGISTRY", &self.registry)).unwrap();
        let mutated = self.dir.path().join("mutated.yaml");
        let output: Output = sigstack(self.dir.path())
            .args(["apply", "--policy"])
            .arg(policy)
            .arg("--resource")
            .arg(&file)
            .arg("-o")
            .arg(&mutated)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let mutated: Value =
            serde_norway::from_slice(&std::fs::read(&mutated).unwrap_or_default()).unwrap_or(Value::Null);
        (output.status.success(), stdout, mutated)
    }

    fn apply(&self, resource: &str) -> (bool, String, Value) {
        self.apply_with(&self.policy(), resource)
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

fn assert_denied(outcome: &(bool, String, Value), needle: &str) {
    assert!(!outcome.0, "admitted, expected a denial with {needle:?}:\n{}", outcome.1);
    assert!(outcome.1.contains("was blocked due to the following policies"), "{}", outcome.1);
    assert!(outcome.1.contains(needle), "denial lacks {needle:?}:\n{}", outcome.1);
}

#[test]
fn sign_attest_admit_and_the_rejection_matrix() {
    let flow = Flow::start();
    // The pipeline: build → push → SBOM → sign → attest.
    let digest = flow.ok(&["build", "--name", "acme/app", "--tag", "v1", "--app-version", "1"]);
    let sbom = flow.dir.path().join("sbom.json");
    flow.ok(&["sbom", "acme/app:v1", "-o", sbom.to_str().unwrap()]);
    flow.ok(&["sign", "acme/app:v1", "--repo", "acme/app"]);
    flow.ok(&["attest", "acme/app:v1", "--repo", "acme/app", "--sbom", sbom.to_str().unwrap()]);

    // The signed Pod is admitted, pinned to its digest (tag kept) and annotated.
    let admitted = flow.apply(&pod("signed-app", "REGISTRY/acme/app:v1"));
    assert!(admitted.0, "{}", admitted.1);
    let image = admitted.2["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
    assert_eq!(image, format!("{}/acme/app:v1@{digest}", flow.registry));
    let annotation: Value =
        serde_json::from_str(admitted.2["metadata"]["annotations"]["kyverno.io/verify-images"].as_str().unwrap())
            .unwrap();
    assert_eq!(annotation[format!("{}/acme/app@{digest}", flow.registry)], "pass");
    // policy/test/pods.yaml's nginx Pod is denied by the registry rule, for the right reason.
    assert_denied(
        &flow.apply(&pod("nginx", "nginx:latest")),
        "restrict-image-registries: 'validation error: images must come from",
    );

    // Unsigned image from the organisation's registry.
    flow.ok(&["build", "--name", "acme/unsigned", "--tag", "v1", "--app-version", "u"]);
    assert_denied(
        &flow.apply(&pod("unsigned", "REGISTRY/acme/unsigned:v1")),
        "check-cosign-signature: 'failed to verify image",
    );
    assert_denied(&flow.apply(&pod("unsigned", "REGISTRY/acme/unsigned:v1")), "no signatures found");

    // Signed, but no SBOM attestation.
    flow.ok(&["build", "--name", "acme/nosbom", "--tag", "v1", "--app-version", "n"]);
    flow.ok(&["sign", "acme/nosbom:v1", "--repo", "acme/nosbom"]);
    assert_denied(
        &flow.apply(&pod("nosbom", "REGISTRY/acme/nosbom:v1")),
        "attestations not found for predicate type https://spdx.dev/Document",
    );

    // Signed by another organisation's workflow.
    flow.ok(&["build", "--name", "acme/forked", "--tag", "v1", "--app-version", "f"]);
    flow.ok(&["sign", "acme/forked:v1", "--repo", "evil/forked"]);
    flow.ok(&["attest", "acme/forked:v1", "--repo", "evil/forked"]);
    assert_denied(
        &flow.apply(&pod("forked", "REGISTRY/acme/forked:v1")),
        "subject mismatch: expected https://github.com/acme/*",
    );

    // Signed with another issuer (an email identity of the stack's issuer).
    flow.ok(&["build", "--name", "acme/person", "--tag", "v1", "--app-version", "p"]);
    let email = run_ok(sigstack(flow.dir.path()).args(["token", "--profile", "email", "--email", "dev@acme.test"]))
        .trim()
        .to_string();
    flow.ok(&["sign", "acme/person:v1", "--identity-token", &email]);
    assert_denied(&flow.apply(&pod("person", "REGISTRY/acme/person:v1")), "mismatch");

    // The tag moved to an unsigned image after signing.
    flow.ok(&["build", "--name", "acme/app", "--tag", "v1", "--app-version", "moved"]);
    assert_denied(&flow.apply(&pod("moved", "REGISTRY/acme/app:v1")), "no signatures found");
    // Pinned by the signed digest: admitted, and nothing to patch.
    let pinned = flow.apply(&pod("pinned", &format!("REGISTRY/acme/app@{digest}")));
    assert!(pinned.0, "{}", pinned.1);
    assert_eq!(pinned.2["spec"]["containers"][0]["image"], format!("{}/acme/app@{digest}", flow.registry));

    // Deployments, through autogen: admitted (pinned in the template) and denied the same ways.
    let deploy = flow.apply(&deployment("web", &format!("REGISTRY/acme/app@{digest}")));
    assert!(deploy.0, "{}", deploy.1);
    assert!(deploy.1.contains("autogen-check-cosign-signature"), "{}", deploy.1);
    assert_denied(&flow.apply(&deployment("web", "REGISTRY/acme/unsigned:v1")), "autogen-check-cosign-signature");
    assert_denied(&flow.apply(&deployment("web", "nginx:latest")), "autogen-restrict-image-registries");
}

#[test]
fn foreign_trust_material_is_refused() {
    let flow = Flow::start();
    let other = tempfile::tempdir().unwrap();
    let other_stack = Stack::start(other.path(), &["--no-registry"]).unwrap();
    flow.ok(&["build", "--name", "acme/app", "--tag", "v1", "--app-version", "x"]);
    // Signed and attested by another stack's CA and log, into this stack's registry.
    let registry_url = format!("http://{}", flow.registry);
    for command in ["sign", "attest"] {
        run_ok(sigstack(other.path()).args([
            command,
            &format!("{}/acme/app:v1", flow.registry),
            "--repo",
            "acme/app",
            "--registry",
            &registry_url,
        ]));
    }
    assert_denied(&flow.apply(&pod("foreign", "REGISTRY/acme/app:v1")), "no matching signatures");

    // This stack's signature, but a policy holding another Rekor key.
    flow.ok(&["sign", "acme/app:v1", "--repo", "acme/app"]);
    flow.ok(&["attest", "acme/app:v1", "--repo", "acme/app"]);
    assert!(flow.apply(&pod("ours", "REGISTRY/acme/app:v1")).0, "this stack's own signature is admitted");
    let mut policy: Value = serde_norway::from_slice(&std::fs::read(flow.policy()).unwrap()).unwrap();
    let theirs = std::fs::read_to_string(other.path().join("trust/rekor.pub")).unwrap();
    fn swap_rekor_key(value: &mut Value, pem: &str) {
        match value {
            Value::Object(map) => {
                if let Some(keyless) = map.get_mut("keyless") {
                    keyless["rekor"]["pubkey"] = Value::String(pem.to_string());
                }
                map.values_mut().for_each(|v| swap_rekor_key(v, pem));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| swap_rekor_key(v, pem)),
            _ => {}
        }
    }
    swap_rekor_key(&mut policy, &theirs);
    let swapped = serde_norway::to_string(&policy).unwrap();
    let swapped_path = flow.dir.path().join("other-rekor.yaml");
    std::fs::write(&swapped_path, swapped).unwrap();
    assert_denied(
        &flow.apply_with(&swapped_path, &pod("ours", "REGISTRY/acme/app:v1")),
        "transparency log that is not trusted",
    );
    drop(other_stack);
}

#[test]
fn unreachable_registry_blocks_under_fail_and_admits_under_ignore() {
    let flow = Flow::start();
    let policy = std::fs::read_to_string(flow.policy()).unwrap();
    // A policy for an organisation registry that is down (nothing listens on port 1).
    let down = policy.replace(&flow.registry, "127.0.0.1:1");
    let fail = flow.dir.path().join("down-fail.yaml");
    std::fs::write(&fail, &down).unwrap();
    let outcome = flow.apply_with(&fail, &pod("down", "127.0.0.1:1/acme/app:v1"));
    assert_denied(&outcome, "failed to verify image 127.0.0.1:1/acme/app:v1");
    assert!(outcome.1.contains("error"), "{}", outcome.1);
    let ignore = flow.dir.path().join("down-ignore.yaml");
    std::fs::write(&ignore, down.replace("failurePolicy: Fail", "failurePolicy: Ignore")).unwrap();
    let outcome = flow.apply_with(&ignore, &pod("down", "127.0.0.1:1/acme/app:v1"));
    assert!(outcome.0, "failurePolicy Ignore admits on errors:\n{}", outcome.1);
}

#[test]
fn a_registry_that_never_answers_is_an_error_after_a_bounded_wait() {
    let flow = Flow::start();
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let policy = std::fs::read_to_string(flow.policy()).unwrap().replace(&flow.registry, &address);
    let path = flow.dir.path().join("silent.yaml");
    std::fs::write(&path, policy).unwrap();
    let outcome = flow.apply_with(&path, &pod("slow", &format!("{address}/acme/app:v1")));
    assert_denied(&outcome, &format!("failed to verify image {address}/acme/app:v1"));
    assert!(outcome.1.contains("timed out") || outcome.1.contains("error sending request"), "{}", outcome.1);
}

#[test]
fn rendered_policy_differs_from_the_source_only_in_trust_and_registry() {
    let flow = Flow::start();
    let rendered: Value = serde_norway::from_slice(&std::fs::read(flow.policy()).unwrap()).unwrap();
    let source_text = std::fs::read_to_string(workspace_root().join("policy/verify-signed-images.yaml")).unwrap();
    let source: Value = serde_norway::from_str(&source_text.replace("sigstack-demo", "acme")).unwrap();
    let rendered_bare = sigstack_admission::without_trust(&rendered, &flow.registry, "REGISTRY");
    let source_bare = sigstack_admission::without_trust(&source, "ghcr.io", "REGISTRY");
    assert_eq!(rendered_bare, source_bare);
    // And the rendered one carries all three pieces of inline trust in every keyless attestor.
    let text = serde_json::to_string(&rendered).unwrap();
    assert_eq!(text.matches("\"roots\"").count(), 2);
    assert_eq!(text.matches("\"ctlog\"").count(), 2);
    // The shipped policy itself passes Kyverno's policy validation as sigstack applies it.
    sigstack_admission::load_policies("policy/verify-signed-images.yaml", &source_text).unwrap();
    for file in ["policy/test/pods.yaml", "policy/test/kyverno-test.yaml"] {
        let _: Vec<Value> =
            serde_norway::Deserializer::from_str(&std::fs::read_to_string(workspace_root().join(file)).unwrap())
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
    }
}
