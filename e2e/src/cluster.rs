//! A real Kubernetes API server (and the real Kyverno) for end-to-end tests: `sigstack cluster up`
//! as a child process, and kubectl (the same build) to talk to it, as a user would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sigstack;

/// A running `sigstack cluster up`, stopped when dropped.
pub struct Cluster {
    child: Child,
    /// `cluster/cluster.json`.
    pub description: Value,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// kubectl of the same build.
    pub kubectl: PathBuf,
    state_dir: PathBuf,
}

/// What the API server answered to a create.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Whether the object was created.
    pub allowed: bool,
    /// The stored object (when allowed).
    pub object: Value,
    /// kubectl's error output (when denied): `Error from server: admission webhook "..." denied the request: ...`.
    pub message: String,
}

impl Admission {
    /// The denial as the webhook wrote it, after `denied the request:` (the webhook's own name and
    /// kubectl's prefix removed, so two webhooks' answers can be compared).
    pub fn reason(&self) -> String {
        self.message.split_once("denied the request:").map_or(self.message.as_str(), |(_, r)| r).trim().to_string()
    }

    /// The name of the webhook that denied it.
    pub fn webhook(&self) -> String {
        self.message.split('"').nth(1).unwrap_or_default().to_string()
    }
}

impl Cluster {
    /// Runs `sigstack cluster up` on `state_dir` with `args` (e.g. `--kyverno`) and waits until it
    /// wrote `cluster.json` (the API server answers; Kyverno's webhooks are registered).
    pub fn start(state_dir: &Path, args: &[&str]) -> Cluster {
        std::fs::create_dir_all(state_dir).unwrap();
        let log_path = state_dir.join("cluster-up.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = sigstack(state_dir)
            .args(["cluster", "up"])
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn sigstack cluster up");
        let mut cluster = Cluster {
            child,
            description: Value::Null,
            kubeconfig: PathBuf::new(),
            kubectl: PathBuf::new(),
            state_dir: state_dir.to_path_buf(),
        };
        let file = state_dir.join("cluster/cluster.json");
        let description = crate::wait_until(
            &format!("sigstack cluster up to write {} (log: {})", file.display(), log_path.display()),
            Duration::from_secs(240),
            || {
                if let Ok(Some(status)) = cluster.child.try_wait() {
                    panic!(
                        "sigstack cluster up exited with {status}:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                let description = serde_json::from_slice::<Value>(&std::fs::read(&file).ok()?).ok()?;
                (description["pid"] == cluster.child.id()).then_some(description)
            },
        );
        cluster.kubeconfig = PathBuf::from(description["kubeconfig"].as_str().unwrap());
        cluster.kubectl = PathBuf::from(description["kubectl"].as_str().unwrap());
        cluster.description = description;
        cluster
    }

    /// What `sigstack cluster up` printed.
    pub fn startup_output(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("cluster-up.log")).unwrap_or_default()
    }

    /// A kubectl command for this cluster.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        command
    }

    /// Runs kubectl with `stdin`; returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        drop(input);
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// kubectl that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, stdout, stderr) = self.run(args, stdin);
        assert!(ok, "kubectl {args:?} failed:\n{stderr}");
        stdout
    }

    /// Creates `yaml` in `namespace` as `kubectl create` does, and reports what the API server
    /// answered (and stored).
    pub fn create(&self, namespace: &str, yaml: &str) -> Admission {
        let (allowed, stdout, stderr) = self.run(&["create", "-n", namespace, "-f", "-", "-o", "json"], Some(yaml));
        let object = if allowed { serde_json::from_str(&stdout).unwrap_or(Value::Null) } else { Value::Null };
        Admission { allowed, object, message: stderr.trim().to_string() }
    }

    /// The HTTP status the API server answers to a create of `object` (JSON) in `namespace`, as a
    /// REST client sees it (kubectl does not print it).
    pub fn create_status(&self, namespace: &str, object: &Value) -> u16 {
        let kubeconfig = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let token = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect("admin token").to_string();
        let server = self.description["server"].as_str().unwrap();
        let plural = format!("{}s", object["kind"].as_str().unwrap_or("pod").to_ascii_lowercase());
        let output = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(self.state_dir.join("cluster/pki/ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {token}"), "-H", "Content-Type: application/json"])
            .args(["-X", "POST", "--data-binary", &object.to_string()])
            .arg(format!("{server}/api/v1/namespaces/{namespace}/{plural}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0)
    }

    /// A namespace carrying `labels`.
    pub fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: serde_json::Map<String, Value> =
            labels.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        let namespace =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
        self.ok(&["apply", "-f", "-"], Some(&namespace.to_string()));
    }

    /// Waits until every ClusterPolicy is Ready and Kyverno's resource webhooks cover Pods.
    pub fn wait_for_kyverno_policies(&self) {
        crate::wait_for_condition(
            "Kyverno to report every ClusterPolicy Ready and its resource webhooks to cover Pods",
            Duration::from_secs(90),
            || {
                let policies: Value = serde_json::from_str(&self.ok(&["get", "clusterpolicies", "-o", "json"], None))
                    .unwrap_or(Value::Null);
                let ready = policies["items"].as_array().is_some_and(|items| {
                    !items.is_empty()
                        && items.iter().all(|p| {
                            p["status"]["conditions"]
                                .as_array()
                                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                        })
                });
                let hooks = |kind: &str, name: &str| {
                    self.run(&["get", kind, name, "-o", "jsonpath={.webhooks[*].rules[*].resources}"], None)
                        .1
                        .contains("pods")
                };
                ready
                    && hooks("mutatingwebhookconfigurations", "kyverno-resource-mutating-webhook-cfg")
                    && hooks("validatingwebhookconfigurations", "kyverno-resource-validating-webhook-cfg")
            },
        );
    }
}

impl Cluster {
    /// Waits until Kyverno reports every ImageValidatingPolicy ready and has registered its
    /// ImageValidatingPolicy webhooks.
    pub fn wait_for_image_validating_policies(&self) {
        crate::wait_for_condition(
            "Kyverno to report every ImageValidatingPolicy ready and register its ivpol webhooks",
            Duration::from_secs(90),
            || {
                let policies: Value =
                    serde_json::from_str(&self.ok(&["get", "imagevalidatingpolicies", "-o", "json"], None))
                        .unwrap_or(Value::Null);
                let ready = policies["items"].as_array().is_some_and(|items| {
                    !items.is_empty() && items.iter().all(|p| p["status"]["conditionStatus"]["ready"] == true)
                });
                let hooks = |kind: &str, name: &str| {
                    self.run(&["get", kind, name, "-o", "jsonpath={.webhooks[*].name}"], None).1.contains("ivpol.")
                };
                ready && hooks("validatingwebhookconfigurations", "kyverno-resource-validating-webhook-cfg")
            },
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
