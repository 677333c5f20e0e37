//! The whole chain, hermetic: stack + registry up → build → push → SBOM → sign → attest → `sigstack
//! apply` of the rendered Kyverno policy. The signed Pod is admitted, pinned to its digest and
//! annotated; nginx:latest is denied by the registry rule; then the rejection matrix. Every case
//! runs through both front doors: `sigstack apply` and `sigstack webhook` (AdmissionReview bodies as
//! kube-apiserver sends them, /mutate then /validate), which must agree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use sigstack_e2e::resources::each_keyless;
use sigstack_e2e::webhook::Webhook;
use sigstack_e2e::{Stack, cosign_command, run_ok, sigstack, workspace_root};

struct Flow {
    dir: tempfile::TempDir,
    stack: Stack,
    registry: String,
    webhooks: RefCell<HashMap<PathBuf, Webhook>>,
    /// Environment of both front doors (`apply` and the webhook).
    env: Vec<(String, String)>,
}

/// Separates `sigstack apply`'s output from the webhook's answer in an outcome's text.
const WEBHOOK: &str = "\n[webhook] ";

impl Flow {
    fn start() -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack::start(dir.path(), &[]).unwrap();
        let registry = stack.url("registry").trim_start_matches("http://").to_string();
        Flow { dir, stack, registry, webhooks: RefCell::new(HashMap::new()), env: Vec::new() }
    }

    /// The rendered policy, edited by `edit`, written as `name`.
    fn edited_policy(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut policy: Value = serde_norway::from_slice(&std::fs::read(self.policy()).unwrap()).unwrap();
        edit(&mut policy);
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_norway::to_string(&policy).unwrap()).unwrap();
        path
    }

    fn webhook_admit(&self, policy: &Path, object: &Value) -> Result<Value, String> {
        let mut webhooks = self.webhooks.borrow_mut();
        let webhook = webhooks
            .entry(policy.to_path_buf())
            .or_insert_with(|| Webhook::start_with_env(self.dir.path(), policy, &self.env));
        webhook.admit(object)
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

    /// `sigstack apply` of one resource document, and the same resource through the webhook;
    /// returns (admitted, apply's stdout + the webhook's answer, mutated resource).
    fn apply_with(&self, policy: &Path, resource: &str) -> (bool, String, Value) {
        let file = self.dir.path().join(format!("resource-{}.yaml", uuid_like()));
        let resource = resource.replace("REGISTRY", &self.registry);
        std::fs::write(&file, &resource).unwrap();
        let mutated = self.dir.path().join("mutated.yaml");
        let output: Output = sigstack(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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
        let object: Value = serde_norway::from_str(&resource).unwrap();
        let through_webhook = self.webhook_admit(policy, &object);
        match &through_webhook {
            Ok(webhook_mutated) => {
                assert!(output.status.success(), "the webhook admitted what apply denied:\n{stdout}");
                assert_eq!(webhook_mutated, &mutated, "the webhook's patch differs from apply's mutation");
            }
            Err(message) => assert!(!output.status.success(), "apply admitted what the webhook denied: {message}"),
        }
        let answer = through_webhook.err().unwrap_or_else(|| "allowed".into());
        (output.status.success(), format!("{stdout}{WEBHOOK}{answer}"), mutated)
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

/// Runs a command that must fail; returns its standard error.
fn run_fails(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "succeeded: {:?}", command);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Denied by both front doors, each saying `needle`.
fn assert_denied(outcome: &(bool, String, Value), needle: &str) {
    assert!(!outcome.0, "admitted, expected a denial with {needle:?}:\n{}", outcome.1);
    let (apply, webhook) = outcome.1.split_once(WEBHOOK).unwrap();
    for (door, text) in [("apply", apply), ("webhook", webhook)] {
        assert!(text.contains("was blocked due to the following policies"), "{door}: {text}");
        assert!(text.contains(needle), "{door}'s denial lacks {needle:?}:\n{text}");
    }
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
        "image attestations verification failed, verifiedCount: 0, requiredCount: 1, error: no matching attestations: ",
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

    // Signed and attested, but the SBOM is not SPDX 2.x: the attestation's condition refuses it.
    flow.ok(&["build", "--name", "acme/spdx3", "--tag", "v1", "--app-version", "s"]);
    flow.ok(&["sign", "acme/spdx3:v1", "--repo", "acme/spdx3"]);
    let mut document: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    document["spdxVersion"] = json!("SPDX-3.0");
    let spdx3 = flow.dir.path().join("spdx3.json");
    std::fs::write(&spdx3, document.to_string()).unwrap();
    flow.ok(&["attest", "acme/spdx3:v1", "--repo", "acme/spdx3", "--sbom", spdx3.to_str().unwrap()]);
    let outcome = flow.apply(&pod("spdx3", "REGISTRY/acme/spdx3:v1"));
    assert_denied(&outcome, "attestation checks failed for");
    assert_denied(&outcome, "the SBOM must be an SPDX 2.x document");

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
    let theirs = std::fs::read_to_string(other.path().join("trust/rekor.pub")).unwrap();
    let swapped_path = flow.edited_policy("other-rekor.yaml", |policy| {
        each_keyless(policy, &|keyless| keyless["rekor"]["pubkey"] = Value::String(theirs.clone()))
    });
    assert_denied(
        &flow.apply_with(&swapped_path, &pod("ours", "REGISTRY/acme/app:v1")),
        "rekor log public key not found for payload",
    );
    drop(other_stack);
}

#[test]
fn an_unreachable_registry_blocks_whatever_the_failure_policy() {
    let flow = Flow::start();
    // A policy for an organisation registry that is down (nothing listens on port 1).
    let down = |name: &str, failure_policy: &str, checks: bool| {
        let registry = flow.registry.clone();
        flow.edited_policy(name, |policy| {
            let text = serde_json::to_string(policy).unwrap().replace(&registry, "127.0.0.1:1");
            *policy = serde_json::from_str(&text).unwrap();
            policy["spec"]["failurePolicy"] = json!(failure_policy);
            if !checks {
                for rule in policy["spec"]["rules"].as_array_mut().unwrap() {
                    for entry in rule.get_mut("verifyImages").and_then(Value::as_array_mut).into_iter().flatten() {
                        entry["verifyDigest"] = json!(false);
                        entry["required"] = json!(false);
                    }
                }
            }
        })
    };
    let image = pod("down", "127.0.0.1:1/acme/app:v1");
    // The real Kyverno (e2e/tests/cluster/real_admission.rs) fails an unreachable registry whatever
    // failurePolicy says: the connection error cosign returns is not the bare net.OpError its
    // handleRegistryErrors turns into an error. sigstack follows it.
    for (file, failure_policy, checks) in [
        ("down-fail.yaml", "Fail", true),
        ("down-ignore.yaml", "Ignore", true),
        ("down-unchecked.yaml", "Ignore", false),
    ] {
        let outcome = flow.apply_with(&down(file, failure_policy, checks), &image);
        assert_denied(
            &outcome,
            "failed to verify image 127.0.0.1:1/acme/app:v1: .attestors[0].entries[0].keyless: Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
        );
    }
}

#[test]
fn a_registry_that_never_answers_is_an_error_after_a_bounded_wait() {
    let mut flow = Flow::start();
    // The wait is bounded and configurable; the default (8 s per request) is what users get.
    flow.env.push(("SIGSTACK_REGISTRY_TIMEOUT".into(), "1".into()));
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

/// Kyverno's other attestor and check kinds against real signatures: `keys` with cosign v2's
/// `sign --key` (logged, and with `--tlog-upload=false` under `rekor.ignoreTlog`), the
/// githubWorkflow* `additionalExtensions` and `ctlog.ignoreSCT` on this stack's keyless signatures.
#[test]
fn keys_extensions_and_the_ignore_switches() {
    let flow = Flow::start();
    let dir = flow.dir.path();
    let cosign = |args: &[&str]| {
        let mut command = cosign_command("v2", dir);
        command.env("COSIGN_PASSWORD", "").current_dir(dir).args(args);
        command
    };
    let keys = |name: &str| {
        let prefix = dir.join(name);
        run_ok(&mut cosign(&["generate-key-pair", "--output-key-prefix", prefix.to_str().unwrap()]));
        std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap()
    };
    let (ours, theirs) = (keys("ours"), keys("theirs"));
    let rekor_url = flow.stack.url("rekor");
    let rekor_pem = std::fs::read_to_string(dir.join("trust/rekor.pub")).unwrap();
    let key_sign = |image: &str, extra: &[&str]| {
        let digest = flow.ok(&["build", "--name", image, "--tag", "v1", "--app-version", image]);
        let reference = format!("{}/{image}@{digest}", flow.registry);
        let key = dir.join("ours.key");
        run_ok(
            cosign(&["sign", "--yes", "--allow-insecure-registry", "--key", key.to_str().unwrap()])
                .args(["--rekor-url", &rekor_url])
                .args(extra)
                .arg(&reference),
        );
        digest
    };
    let logged = key_sign("acme/keyed", &[]);
    key_sign("acme/unlogged", &["--tlog-upload=false"]);
    // sigstack verify --key agrees with cosign's format, with and without the log.
    let public_key = dir.join("ours.pub");
    flow.ok(&["verify", "--key", public_key.to_str().unwrap(), "acme/keyed:v1"]);
    flow.ok(&["verify", "--key", public_key.to_str().unwrap(), "--insecure-ignore-tlog", "acme/unlogged:v1"]);
    let wrong =
        run_fails(sigstack(dir).args(["verify", "--key", dir.join("theirs.pub").to_str().unwrap(), "acme/keyed:v1"]));
    assert!(wrong.contains("does not verify over the payload with the key"), "{wrong}");
    let unlogged = run_fails(sigstack(dir).args(["verify", "--key", public_key.to_str().unwrap(), "acme/unlogged:v1"]));
    assert!(unlogged.contains("bundle"), "{unlogged}");

    let keyed_policy = |name: &str, pems: &str, rekor: Value| {
        let policy = json!({
            "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "keyed-images"},
            "spec": {"validationFailureAction": "Enforce", "failurePolicy": "Fail", "rules": [{
                "name": "check-key-signature",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "verifyImages": [{
                    "imageReferences": [format!("{}/acme/*", flow.registry)],
                    "attestors": [{"count": 1, "entries": [{"keys": {"publicKeys": pems, "rekor": rekor}}]}]
                }]
            }]}
        });
        let path = dir.join(name);
        std::fs::write(&path, serde_norway::to_string(&policy).unwrap()).unwrap();
        path
    };
    let with_log = json!({"url": rekor_url, "pubkey": rekor_pem});
    let ours_policy = keyed_policy("keys-ours.yaml", &ours, with_log.clone());
    let admitted = flow.apply_with(&ours_policy, &pod("keyed", "REGISTRY/acme/keyed:v1"));
    assert!(admitted.0, "{}", admitted.1);
    assert_eq!(admitted.2["spec"]["containers"][0]["image"], format!("{}/acme/keyed:v1@{logged}", flow.registry));
    assert_denied(
        &flow.apply_with(
            &keyed_policy("keys-theirs.yaml", &theirs, with_log.clone()),
            &pod("k", "REGISTRY/acme/keyed:v1"),
        ),
        ".attestors[0].entries[0].keys: no matching signatures",
    );
    // Both keys in one publicKeys with count 1: one entry per key, ours verifies.
    let both = keyed_policy("keys-both.yaml", &format!("{theirs}{ours}"), with_log.clone());
    assert!(flow.apply_with(&both, &pod("keyed", "REGISTRY/acme/keyed:v1")).0);
    // Not in the log: refused while the log is checked, admitted under ignoreTlog.
    assert_denied(&flow.apply_with(&ours_policy, &pod("unlogged", "REGISTRY/acme/unlogged:v1")), "bundle");
    let no_tlog = keyed_policy("keys-no-tlog.yaml", &ours, json!({"ignoreTlog": true}));
    assert!(flow.apply_with(&no_tlog, &pod("unlogged", "REGISTRY/acme/unlogged:v1")).0);

    // Keyless: this stack's certificates carry the GitHub workflow extensions.
    flow.ok(&["build", "--name", "acme/app", "--tag", "v1", "--app-version", "1"]);
    flow.ok(&["sign", "acme/app:v1", "--repo", "acme/app"]);
    flow.ok(&["attest", "acme/app:v1", "--repo", "acme/app"]);
    let with_extensions = |name: &str, extensions: Value, ctlog: Option<Value>| {
        flow.edited_policy(name, |policy| {
            each_keyless(policy, &|keyless| {
                keyless["additionalExtensions"] = extensions.clone();
                if let Some(ctlog) = &ctlog {
                    keyless["ctlog"] = ctlog.clone();
                }
            });
        })
    };
    let app = pod("app", "REGISTRY/acme/app:v1");
    let matching = with_extensions(
        "ext-ok.yaml",
        json!({"githubWorkflowRepository": "acme/*", "githubWorkflowTrigger": "push", "issuer": "https://token.actions.githubusercontent.com"}),
        None,
    );
    assert!(flow.apply_with(&matching, &app).0);
    assert_denied(
        &flow.apply_with(&with_extensions("ext-ref.yaml", json!({"githubWorkflowRef": "refs/tags/v*"}), None), &app),
        "extension mismatch: expected refs/tags/v* for key githubWorkflowRef, received refs/heads/main",
    );
    // A CT key that is not the stack's: the SCT check refuses; ignoreSCT admits.
    let other_ct = theirs.clone();
    assert_denied(
        &flow.apply_with(&with_extensions("ct-wrong.yaml", json!({}), Some(json!({"pubkey": other_ct}))), &app),
        "SCT",
    );
    let ignore_sct =
        with_extensions("ct-ignored.yaml", json!({}), Some(json!({"pubkey": other_ct, "ignoreSCT": true})));
    assert!(flow.apply_with(&ignore_sct, &app).0);
}
