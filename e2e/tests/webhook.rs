//! The admission cases once more through `sigstack webhook`: HTTPS with its own serving CA,
//! AdmissionReview v1 bodies shaped as kube-apiserver sends them, /mutate then /validate.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{Value, json};
use sigstack_e2e::{Stack, run_ok, sigstack, sigstack_bin};

struct Webhook {
    child: Child,
    url: String,
    ca: std::path::PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_webhook(state: &std::path::Path, policy: &std::path::Path) -> Webhook {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = sigstack(state)
        .args(["webhook", "--port", &port.to_string(), "--policy"])
        .arg(policy)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let ca = state.join("webhook/serving-ca.pem");
    for _ in 0..200 {
        let probe = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--cacert"])
            .arg(&ca)
            .arg(format!("{url}/healthz"))
            .status()
            .unwrap();
        if probe.success() {
            return Webhook { child, url, ca };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the webhook did not come up");
}

/// An AdmissionReview as kube-apiserver sends it for a CREATE.
fn review(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap();
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        other => panic!("{other}"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

fn post(webhook: &Webhook, path: &str, body: &str) -> (u16, Value) {
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "@-", "--cacert"])
        .arg(&webhook.ca)
        .arg(format!("{}{path}", webhook.url))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn pod(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

/// Applies an RFC 6902 patch of `replace`/`add` operations (all the webhook emits).
fn apply_patch(object: &Value, patch: &[Value]) -> Value {
    let mut object = object.clone();
    for op in patch {
        let path = op["path"].as_str().unwrap();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        let target = if parent.is_empty() { &mut object } else { object.pointer_mut(parent).unwrap() };
        match target {
            Value::Object(map) => {
                map.insert(key, op["value"].clone());
            }
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = op["value"].clone(),
            _ => panic!("patch into a scalar"),
        }
    }
    object
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
    ok(&["build", "--name", "acme/unsigned", "--tag", "v1", "--app-version", "u"]);
    let policy = dir.path().join("policy.yaml");
    ok(&["policy", "render", "--org", "acme", "-o", policy.to_str().unwrap()]);
    let webhook = start_webhook(dir.path(), &policy);

    // The signed Pod: /mutate allows with a JSON patch pinning the digest; /validate of the
    // patched object allows.
    let signed = pod("signed", &format!("{registry}/acme/app:v1"));
    let (status, body) = post(&webhook, "/mutate", &review(&signed).to_string());
    assert_eq!(status, 200);
    let response = &body["response"];
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], true, "{body}");
    assert_eq!(response["patchType"], "JSONPatch");
    let patch: Vec<Value> = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let mutated = apply_patch(&signed, &patch);
    assert_eq!(mutated["spec"]["containers"][0]["image"], format!("{registry}/acme/app:v1@{digest}"));
    assert!(mutated["metadata"]["annotations"]["kyverno.io/verify-images"].as_str().unwrap().contains("\"pass\""));
    let (_, body) = post(&webhook, "/validate", &review(&mutated).to_string());
    assert_eq!(body["response"]["allowed"], true, "{body}");

    // Denials carry Kyverno's message.
    for (object, needle) in [
        (pod("nginx", "nginx:latest"), "restrict-image-registries"),
        (pod("unsigned", &format!("{registry}/acme/unsigned:v1")), "no signatures found"),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "c", "image": format!("{registry}/acme/unsigned:v1")}]}}}}),
            "autogen-check-cosign-signature",
        ),
    ] {
        for path in ["/mutate", "/validate"] {
            let (status, body) = post(&webhook, path, &review(&object).to_string());
            assert_eq!(status, 200);
            let response = &body["response"];
            assert_eq!(response["allowed"], false, "{path}: {body}");
            assert_eq!(response["status"]["code"], 403);
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                message.contains("was blocked due to the following policies") && message.contains(needle),
                "{path}: {message}"
            );
        }
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
        let (status, response) = post(&webhook, "/mutate", &body);
        assert_eq!(status, 400, "{response}");
        assert!(response["message"].as_str().unwrap().contains(needle), "{response}");
    }
    let (status, _) = post(&webhook, "/mutate", &review(&signed).to_string());
    assert_eq!(status, 200, "still serving");

    // The manifests carry the serving CA (not the code-signing CA) as caBundle.
    let manifests = run_ok(Command::new(sigstack_bin()).env("SIGSTACK_STATE_DIR", dir.path()).args([
        "webhook",
        "manifests",
        "--url",
        "https://172.18.0.1:8443",
    ]));
    let ca = std::fs::read_to_string(&webhook.ca).unwrap();
    assert!(manifests.contains(&base64::engine::general_purpose::STANDARD.encode(&ca)));
    assert!(
        manifests.contains("kind: MutatingWebhookConfiguration")
            && manifests.contains("kind: ValidatingWebhookConfiguration")
    );
    assert!(!ca.contains(&std::fs::read_to_string(dir.path().join("trust/fulcio-chain.pem")).unwrap()[..64]));
}
