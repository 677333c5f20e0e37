//! Admission through a real API server: `sigstack cluster up` start-up time (cached binaries), and
//! one decision for the same Pod and registry, judged by sigstack's webhook and by the real Kyverno
//! side by side, timed from the client as a create through the API server (curl's own timer, so
//! process start-up is not counted), median and p99 over repeated creates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::{Report, median, start_stack};

/// The newest complete build `<prefix>*` under the cache, holding `file`.
fn cached(prefix: &str, file: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("SIGSTACK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sigstack")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache.join("bin"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .filter(|p| p.join(file).is_file() && p.join(".complete").exists())
        .collect();
    found.sort();
    found.pop()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sigstack cluster up` on `state` and waits for cluster.json; returns it and the time taken.
fn cluster_up(bin: &Path, state: &Path, extra: &[&str]) -> anyhow::Result<(Running, Duration)> {
    let start = Instant::now();
    let child = Command::new(bin)
        .args(["cluster", "up", "--state-dir"])
        .arg(state)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let running = Running(child);
    let file = state.join("cluster/cluster.json");
    while !file.exists() {
        if start.elapsed() > Duration::from_secs(180) {
            bail!("the cluster did not come up within 180 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((running, start.elapsed()))
}

fn kubectl(state: &Path, kubectl: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(state.join("cluster/admin.kubeconfig"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(stdin.unwrap_or_default().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One create of `pod` in `namespace` through the API server; (HTTP status, seconds curl measured).
/// Creates `pod` in `namespace`: the HTTP status, the seconds it took, and the answer's body.
fn create_with_body(
    server: &str,
    token: &str,
    ca: &Path,
    namespace: &str,
    pod: &str,
) -> anyhow::Result<(u16, f64, String)> {
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code} %{time_total}", "--cacert"])
        .arg(ca)
        .args(["-H", &format!("Authorization: Bearer {token}"), "-H", "Content-Type: application/json"])
        .args(["-X", "POST", "--data-binary", pod, &format!("{server}/api/v1/namespaces/{namespace}/pods")])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, last) = text.rsplit_once('\n').context("curl's answer")?;
    let (code, seconds) = last.split_once(' ').context("curl's answer")?;
    Ok((code.parse()?, seconds.trim().parse()?, body.to_string()))
}

fn create(server: &str, token: &str, ca: &Path, namespace: &str, pod: &str) -> anyhow::Result<(u16, f64)> {
    create_with_body(server, token, ca, namespace, pod).map(|(status, seconds, _)| (status, seconds))
}

fn pod_json(name: &str, image: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": image}]}})
        .to_string()
}

/// The section of the benchmark table.
pub(crate) fn real_admission(sigstack: &Path, report: &mut Report, creates: usize) -> anyhow::Result<()> {
    let (Some(kube), Some(kyverno)) = (cached("kube-", "kube-apiserver"), cached("kyverno-", "kyverno")) else {
        println!("  (the real API server and Kyverno are not built: scripts/install.sh kube kyverno; section skipped)");
        return Ok(());
    };
    let kubectl_bin = kube.join("kubectl");
    // API server start-up, cold processes, cached binaries: median of 3.
    let mut starts = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        let (running, took) = cluster_up(sigstack, dir.path(), &["--kube-bin", kube.to_str().unwrap_or_default()])?;
        starts.push(took.as_secs_f64() * 1000.0);
        drop(running);
    }
    report.add(
        "apiserver_start_ms",
        "kube-apiserver + etcd start until /readyz (cached binaries)",
        format!("{:.1} s", median(starts.clone()) / 1000.0),
        "median of 3, `sigstack cluster up`, fresh certificates each",
        json!(median(starts)),
    );

    // A stack with a signed, attested image; the cluster with Kyverno; sigstack's webhook.
    let dir = tempfile::tempdir()?;
    let state = dir.path();
    let (_stack, _) = start_stack(sigstack, state, &[])?;
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(sigstack).args(args).env("SIGSTACK_STATE_DIR", state).output()?;
        if !output.status.success() {
            bail!("sigstack {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    run(&["build", "--name", "acme/app", "--tag", "v1"])?;
    run(&["sign", "acme/app:v1", "--repo", "acme/app"])?;
    run(&["attest", "acme/app:v1", "--repo", "acme/app"])?;
    // Both policy types, each judged in its own namespaces: the ClusterPolicy in `kyverno` and
    // `sigstack`, the ImageValidatingPolicy in `kyverno-iv` and `sigstack-iv` (a matchCondition
    // per judge: the API server gets Kyverno's copy, sigstack's webhook its own).
    let rendered = state.join("policy.yaml");
    run(&["policy", "render", "--org", "acme", "-o", rendered.to_str().unwrap_or_default()])?;
    let rendered_ivpol = state.join("policy-ivpol.yaml");
    run(&["policy", "render", "--type", "ivpol", "--org", "acme", "-o", rendered_ivpol.to_str().unwrap_or_default()])?;
    let mut cluster_policy: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(&rendered)?)?;
    for rule in cluster_policy["spec"]["rules"].as_array_mut().into_iter().flatten() {
        for any in rule["match"]["any"].as_array_mut().into_iter().flatten() {
            any["resources"]["namespaces"] = json!(["kyverno", "sigstack"]);
        }
    }
    let ivpol: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(&rendered_ivpol)?)?;
    let (policy, cluster_policies) = (state.join("sigstack-policies"), state.join("cluster-policies"));
    for (judge, dir) in [("sigstack", &policy), ("kyverno", &cluster_policies)] {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("cluster-policy.yaml"), serde_norway::to_string(&cluster_policy)?)?;
        let mut copy = ivpol.clone();
        copy["spec"]["matchConditions"] =
            json!([{"name": "judge", "expression": format!("request.namespace == '{judge}-iv'")}]);
        std::fs::write(dir.join("ivpol.yaml"), serde_norway::to_string(&copy)?)?;
    }
    let registry = std::fs::read_to_string(state.join("stack.json"))?;
    let registry: serde_json::Value = serde_json::from_str(&registry)?;
    let registry =
        registry["services"]["registry"].as_str().unwrap_or_default().trim_start_matches("http://").to_string();
    let kyverno_start = Instant::now();
    let (_cluster, _) = cluster_up(
        sigstack,
        state,
        &[
            "--kube-bin",
            kube.to_str().unwrap_or_default(),
            "--kyverno",
            "--kyverno-bin",
            kyverno.to_str().unwrap_or_default(),
            "--kyverno-namespace-label",
            "judge=kyverno",
        ],
    )?;
    let kyverno_ready = kyverno_start.elapsed();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _webhook = Running(
        Command::new(sigstack)
            .args(["webhook", "--port", &port.to_string(), "--policy", policy.to_str().unwrap_or_default()])
            .env("SIGSTACK_STATE_DIR", state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // The webhook makes its serving CA on first start, and so would `webhook manifests`: wait for
    // the webhook to listen, so both name the same CA.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !Command::new("curl")
        .args(["-sk", "-o", "/dev/null", &format!("https://127.0.0.1:{port}/healthz")])
        .status()
        .is_ok_and(|s| s.success())
    {
        if Instant::now() > deadline {
            bail!("sigstack's webhook did not start within 15 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let manifests = run(&[
        "webhook",
        "manifests",
        "--url",
        &format!("https://127.0.0.1:{port}"),
        "--namespace-label",
        "judge=sigstack",
    ])?;
    kubectl(state, &kubectl_bin, &["apply", "-f", "-"], Some(&manifests))?;
    for judge in ["kyverno", "sigstack"] {
        for name in [judge.to_string(), format!("{judge}-iv")] {
            let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"judge": judge}}});
            kubectl(state, &kubectl_bin, &["apply", "-f", "-"], Some(&namespace.to_string()))?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while kubectl(state, &kubectl_bin, &["apply", "-f", cluster_policies.to_str().unwrap_or_default()], None).is_err() {
        if Instant::now() > deadline {
            bail!("Kyverno did not take the policy");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let server = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(
        state.join("cluster/cluster.json"),
    )?)?["server"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kubeconfig = std::fs::read_to_string(state.join("cluster/admin.kubeconfig"))?;
    let token = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("token: ")).context("admin token")?.to_string();
    let ca = state.join("cluster/pki/ca.crt");
    // Until Kyverno's resource webhook takes the policy, its namespace admits unverified Pods: wait
    // for a denial of nginx there.
    for namespace in ["kyverno", "kyverno-iv"] {
        let deadline = Instant::now() + Duration::from_secs(90);
        while create(&server, &token, &ca, namespace, &pod_json(&format!("probe-{}", rand_suffix()), "nginx:latest"))?.0
            != 400
        {
            if Instant::now() > deadline {
                bail!("Kyverno's webhooks did not take the policy for {namespace} within 90 s");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let image = format!("{registry}/acme/app:v1");
    let mut medians: Vec<(&str, f64)> = Vec::new();
    for (kind, suffix, label) in [("", "", "ClusterPolicy"), ("ivpol_", "-iv", "ImageValidatingPolicy")] {
        for judge in ["sigstack", "kyverno"] {
            let namespace = format!("{judge}{suffix}");
            for (case, image, expect) in [("signed", image.as_str(), 201), ("nginx", "nginx:latest", 400)] {
                let mut times = Vec::new();
                for i in 0..creates {
                    let (status, seconds, body) =
                        create_with_body(&server, &token, &ca, &namespace, &pod_json(&format!("{case}-{i}"), image))?;
                    if status != expect {
                        bail!("{judge} ({label}): {case} answered {status}, expected {expect}: {body}");
                    }
                    times.push(seconds * 1000.0);
                }
                times.sort_by(|a, b| a.total_cmp(b));
                let p50 = times[times.len() / 2];
                let p99 = times[((times.len() as f64 - 1.0) * 0.99).round() as usize];
                if case == "signed" {
                    medians.push((kind, p50));
                }
                let verdict = if expect == 201 { "admitted, pinned" } else { "denied" };
                report.add(
                    &format!("apiserver_admission_{kind}{judge}_{case}_ms"),
                    &format!("API server create, {case} Pod, {label}, judged by {judge}"),
                    format!("{p50:.1} / {p99:.1} ms"),
                    &format!("p50 / p99 of {creates}; {verdict}"),
                    json!({"p50": p50, "p99": p99}),
                );
            }
        }
    }
    report.add(
        "kyverno_start_ms",
        "API server + the real Kyverno until its webhooks are registered",
        format!("{:.1} s", kyverno_ready.as_secs_f64()),
        "CRDs, namespace, ConfigMaps, controller, leader election",
        json!(kyverno_ready.as_secs_f64() * 1000.0),
    );
    for pair in medians.chunks(2) {
        if let [(kind, ours), (_, kyverno)] = pair {
            let label = if kind.is_empty() { "ClusterPolicy" } else { "ImageValidatingPolicy" };
            report.add(
                &format!("apiserver_admission_{kind}ratio"),
                &format!("signed Pod through the API server, {label}: Kyverno p50 / sigstack p50"),
                format!("{:.1}x", kyverno / ours.max(0.001)),
                "target >= 5x with the same verdict (both verify signature and SBOM attestation; Kyverno's verify cache off)",
                json!(kyverno / ours.max(0.001)),
            );
        }
    }
    Ok(())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}
