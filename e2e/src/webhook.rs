//! A `sigstack webhook` child and a client that calls it the way kube-apiserver does: AdmissionReview
//! v1 bodies over HTTPS checked against the serving CA, `/mutate` first, its JSON patch applied, then
//! `/validate` of the mutated object.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{Value, json};

use crate::sigstack;

/// A running `sigstack webhook` (killed on drop).
pub struct Webhook {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The serving CA certificate (PEM file).
    pub ca: PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// Starts `sigstack webhook --policy POLICY` for the stack in `state` and waits for /healthz.
    pub fn start(state: &Path, policy: &Path) -> Webhook {
        Self::start_with_env(state, policy, &[])
    }

    /// [`Webhook::start`] with extra environment variables (e.g. `SIGSTACK_REGISTRY_TIMEOUT`).
    pub fn start_with_env(state: &Path, policy: &Path, env: &[(String, String)]) -> Webhook {
        let (child, url) = crate::spawn_reporting_url(
            sigstack(state)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .args(["webhook", "--port", "0", "--policy"])
                .arg(policy)
                .stderr(Stdio::null()),
        );
        let mut webhook = Webhook { child, url, ca: state.join("webhook/serving-ca.pem") };
        crate::wait_for_condition("the webhook's /healthz", std::time::Duration::from_secs(10), || {
            if let Ok(Some(status)) = webhook.child.try_wait() {
                panic!("the webhook exited: {status}");
            }
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "--cacert"])
                .arg(&webhook.ca)
                .arg(format!("{}/healthz", webhook.url))
                .status()
                .is_ok_and(|s| s.success())
        });
        webhook
    }

    /// POSTs `body` to `path`; returns the HTTP status and the JSON body.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let output = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "@-"])
            .arg("--cacert")
            .arg(&self.ca)
            .arg(format!("{}{path}", self.url))
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

    /// What kube-apiserver does with `object`: /mutate, apply its patch, /validate. `Ok(mutated)` if
    /// both allow, else `Err(the denial message, prefixed with the phase that denied)`.
    pub fn admit(&self, object: &Value) -> Result<Value, String> {
        let (status, body) = self.post("/mutate", &review(object).to_string());
        assert_eq!(status, 200, "/mutate: {body}");
        let response = &body["response"];
        assert_eq!(response["uid"], UID);
        if response["allowed"] != true {
            assert_eq!(response["status"]["status"], "Failure", "{body}");
            return Err(format!("/mutate: {}", response["status"]["message"].as_str().unwrap_or_default()));
        }
        let mutated = match response["patch"].as_str() {
            Some(patch) => {
                assert_eq!(response["patchType"], "JSONPatch");
                let patch: Vec<Value> =
                    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(patch).unwrap()).unwrap();
                apply_patch(object, &patch)
            }
            None => object.clone(),
        };
        let (status, body) = self.post("/validate", &review(&mutated).to_string());
        assert_eq!(status, 200, "/validate: {body}");
        let response = &body["response"];
        if response["allowed"] != true {
            assert_eq!(response["status"]["status"], "Failure", "{body}");
            return Err(format!("/validate: {}", response["status"]["message"].as_str().unwrap_or_default()));
        }
        Ok(mutated)
    }
}

/// The request uid every review carries.
pub const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

/// An AdmissionReview as kube-apiserver sends it for a CREATE.
pub fn review(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap();
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        "Deployment" => ("apps", "deployments"),
        "CronJob" => ("batch", "cronjobs"),
        other => panic!("no resource name for {other}"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"].as_str().unwrap_or("default"),
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

/// Applies an RFC 6902 patch of `replace`/`add` operations (all the webhook emits).
pub fn apply_patch(object: &Value, patch: &[Value]) -> Value {
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
