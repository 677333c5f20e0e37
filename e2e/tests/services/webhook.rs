//! `sigstack webhook` as kube-apiserver sees it: HTTPS with its own serving CA, AdmissionReview v1
//! bodies, Kyverno's two phases (/mutate verifies and patches, /validate runs validate rules and the
//! digest/annotation checks), bad bodies, and the webhook configuration manifests. The full
//! rejection matrix runs through the webhook in admission.rs.

use std::process::Command;

use serde_json::{Value, json};
use sigstack_e2e::webhook::{Webhook, review};
use sigstack_e2e::{Stack, run_ok, sigstack, sigstack_bin};

fn pod(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

#[test]
fn admission_review_through_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(dir.path()).args(args)).trim().to_string();
    let digest = ok(&["build", "--name", "acme/app", "--tag", "v1"]);
    ok(&["sign", "acme/app:v1", "--repo", "acme/app"]);
    ok(&["attest", "acme/app:v1", "--repo", "acme/app"]);
    let policy = dir.path().join("policy.yaml");
    ok(&["policy", "render", "--org", "acme", "-o", policy.to_str().unwrap()]);
    let webhook = Webhook::start(dir.path(), &policy);

    // The signed Pod: /mutate allows with a JSON patch pinning the digest and annotating; /validate
    // of the patched object allows.
    let mutated = webhook.admit(&pod("signed", &format!("{registry}/acme/app:v1"))).unwrap();
    assert_eq!(mutated["spec"]["containers"][0]["image"], format!("{registry}/acme/app:v1@{digest}"));
    assert!(mutated["metadata"]["annotations"]["kyverno.io/verify-images"].as_str().unwrap().contains("\"pass\""));

    // nginx matches no imageReferences: the mutating phase has nothing to verify, the validating
    // phase's registry rule denies it (as in Kyverno, where validate rules run there).
    let nginx = pod("nginx", "nginx:latest");
    let (_, body) = webhook.post("/mutate", &review(&nginx).to_string());
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let denied = webhook.admit(&nginx).unwrap_err();
    assert!(denied.starts_with("/validate: ") && denied.contains("restrict-image-registries"), "{denied}");

    // The validating phase on its own: a signed image sent straight to /validate, tag only (the
    // mutating webhook never pinned it) or pinned without the annotation, is denied.
    for (image, needle) in [
        (format!("{registry}/acme/app:v1"), "missing digest for"),
        (format!("{registry}/acme/app@{digest}"), "unverified image"),
    ] {
        let (_, body) = webhook.post("/validate", &review(&pod("direct", &image)).to_string());
        let message = body["response"]["status"]["message"].as_str().unwrap_or_default();
        assert_eq!(body["response"]["allowed"], false, "{body}");
        assert!(message.contains(needle), "{message}");
    }

    // Bad input: a clear 400, never a crash.
    for (body, needle) in [
        ("{not json".to_string(), "not JSON"),
        (
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}).to_string(),
            "admission.k8s.io/v1",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x"}})
                .to_string(),
            "request.object",
        ),
    ] {
        let (status, response) = webhook.post("/mutate", &body);
        assert_eq!(status, 400, "{response}");
        assert!(response["message"].as_str().unwrap().contains(needle), "{response}");
    }
    assert!(webhook.admit(&pod("signed", &format!("{registry}/acme/app:v1"))).is_ok(), "still serving");

    // The manifests carry the serving CA (not the code-signing CA) as caBundle.
    let manifests = run_ok(Command::new(sigstack_bin()).env("SIGSTACK_STATE_DIR", dir.path()).args([
        "webhook",
        "manifests",
        "--url",
        "https://172.18.0.1:8443",
    ]));
    let ca = std::fs::read_to_string(&webhook.ca).unwrap();
    use base64::Engine;
    assert!(manifests.contains(&base64::engine::general_purpose::STANDARD.encode(&ca)));
    assert!(
        manifests.contains("kind: MutatingWebhookConfiguration")
            && manifests.contains("kind: ValidatingWebhookConfiguration")
    );
    assert!(!ca.contains(&std::fs::read_to_string(dir.path().join("trust/fulcio-chain.pem")).unwrap()[..64]));
}
