//! The test cluster behind `sigstack cluster up|down|env`: a real Kubernetes API server (kube-apiserver and etcd, unmodified,
//! built from the Go module proxy by `scripts/install.sh kube`) on loopback, and optionally the real
//! Kyverno admission controller beside it, so that admission is judged by the components a
//! cluster runs. As controller-runtime's envtest does: no kubelet (Pods stay Pending, which is all
//! admission needs), no controller-manager, certificates and keys generated here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::stack::{StackDescription, open_state_dir};

/// What `sigstack cluster up` starts.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The state directory (the cluster lives in its `cluster/`).
    pub state_dir: PathBuf,
    /// Directory holding kube-apiserver, etcd and kubectl [default: the newest build under the cache].
    pub kube_bin: Option<PathBuf>,
    /// Also run the real Kyverno admission controller.
    pub kyverno: bool,
    /// Directory holding the kyverno binary and its CRDs [default: the newest build under the cache].
    pub kyverno_bin: Option<PathBuf>,
    /// Kyverno judges only namespaces carrying this label (KEY=VALUE).
    pub kyverno_namespace_label: Option<String>,
}

/// `DIR/cluster/cluster.json`: what clients of a running cluster need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterDescription {
    /// The API server's URL.
    pub server: String,
    /// An admin kubeconfig (system:masters).
    pub kubeconfig: PathBuf,
    /// kubectl of the same build.
    pub kubectl: PathBuf,
    /// Whether the real Kyverno runs beside it.
    pub kyverno: bool,
    /// The `cluster up` process.
    pub pid: u32,
}

const CLUSTER_FILE: &str = "cluster.json";
const KYVERNO_NAMESPACE: &str = "kyverno";

/// The newest directory under the cache's `bin/` named `<prefix>*` that holds `file`.
fn cached_tool_dir(prefix: &str, file: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("SIGSTACK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sigstack")))?;
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(cache.join("bin"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .filter(|p| p.join(file).is_file() && p.join(".complete").exists())
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn tool_dir(given: &Option<PathBuf>, prefix: &str, file: &str, install: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        if !dir.join(file).is_file() {
            bail!("{} has no {file}", dir.display());
        }
        return Ok(dir.clone());
    }
    cached_tool_dir(prefix, file).with_context(|| {
        format!("no {file} build found under ~/.cache/sigstack/bin: build it with `scripts/install.sh {install}` (first build takes many minutes)")
    })
}

/// A loopback port free at the moment of asking (see [`up`] for when it is taken meanwhile).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The serving CA and certificate of the API server (SANs 127.0.0.1 and localhost), the
/// service-account signing key, and the admin token, made fresh for each `up`.
struct Credentials {
    ca_pem: String,
    token: String,
}

fn generate_credentials(dir: &Path) -> anyhow::Result<Credentials> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "sigstack test cluster CA (not for production)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, common_name: &str, usages: Vec<rcgen::ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = usages;
        anyhow::Ok((params.signed_by(&key, &issuer)?, key))
    };
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let loopback = || vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let (server_cert, server_key) = leaf(
        [loopback(), vec!["kubernetes.default.svc".into()]].concat(),
        "kube-apiserver (sigstack test cluster)",
        vec![ServerAuth],
    )?;
    // etcd takes only clients with a certificate of this CA (the API server's): a local user
    // cannot go around the API server's RBAC by writing to etcd. Its peer port likewise.
    let (etcd_cert, etcd_key) = leaf(loopback(), "etcd (sigstack test cluster)", vec![ServerAuth, ClientAuth])?;
    let (etcd_client_cert, etcd_client_key) =
        leaf(Vec::new(), "kube-apiserver etcd client (sigstack test cluster)", vec![ClientAuth])?;
    let service_account_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let token = {
        use aws_lc_rs::rand::SecureRandom;
        let mut bytes = [0u8; 24];
        aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("random token"))?;
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    sigstack_state::write_public(&dir.join("pki/ca.crt"), ca_cert.pem().as_bytes())?;
    sigstack_state::write_public(&dir.join("pki/apiserver.crt"), server_cert.pem().as_bytes())?;
    sigstack_state::write_private(&dir.join("pki/apiserver.key"), server_key.serialize_pem().as_bytes())?;
    sigstack_state::write_public(&dir.join("pki/etcd.crt"), etcd_cert.pem().as_bytes())?;
    sigstack_state::write_private(&dir.join("pki/etcd.key"), etcd_key.serialize_pem().as_bytes())?;
    sigstack_state::write_public(&dir.join("pki/etcd-client.crt"), etcd_client_cert.pem().as_bytes())?;
    sigstack_state::write_private(&dir.join("pki/etcd-client.key"), etcd_client_key.serialize_pem().as_bytes())?;
    sigstack_state::write_private(&dir.join("pki/sa.key"), service_account_key.serialize_pem().as_bytes())?;
    sigstack_state::write_public(&dir.join("pki/sa.pub"), service_account_key.public_key_pem().as_bytes())?;
    sigstack_state::write_private(
        &dir.join("pki/tokens.csv"),
        format!("{token},admin,admin,system:masters\n").as_bytes(),
    )?;
    Ok(Credentials { ca_pem: ca_cert.pem(), token })
}

fn kubeconfig(server: &str, credentials: &Credentials) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(&credentials.ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sigstack\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {}\ncontexts:\n- name: sigstack\n  context:\n    cluster: sigstack\n    user: admin\ncurrent-context: sigstack\n",
        credentials.token
    )
}

/// A child that dies with `cluster up`, its output in `logs/<name>.log`.
fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, String)],
    dir: &Path,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(dir.join(format!("logs/{name}.log")))?;
    let mut command = tokio::process::Command::new(program);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    command.kill_on_drop(true);
    crate::child::die_with_parent(&mut command);
    let child = command.spawn().with_context(|| format!("start {}", program.display()))?;
    crate::child::record(&dir.join(format!("{name}.pid")), child.id())?;
    Ok(child)
}

/// Runs kubectl against the cluster; returns its stdout or an error with its stderr.
pub fn kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", kubectl.display()))?;
    if let Some(text) = stdin {
        child.stdin.take().context("kubectl stdin")?.write_all(text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls `ready` every 100 ms until it holds, `child` exits, or `limit` passes.
async fn wait_for(
    what: &str,
    limit: Duration,
    child: &mut tokio::process::Child,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "{what} exited with {status}; last lines of {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready within {} s (log: {})", limit.as_secs(), log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl ClusterDescription {
    /// The description of the cluster running on `state_dir`, or an error saying how to start one.
    pub fn require(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join("cluster").join(CLUSTER_FILE);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "no cluster is running on {} (start one with `sigstack cluster up --state-dir {}`)",
                state_dir.display(),
                state_dir.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a cluster description", path.display()))
    }
}

/// What the command line of a running `sigstack cluster up` contains.
const CLUSTER_MARKERS: &[&str] = &["sigstack", "cluster", "up"];

/// Stops the cluster `up` started on `state_dir` (SIGTERM to its process, once checked to be it).
pub fn down(state_dir: &Path) -> anyhow::Result<()> {
    let description = ClusterDescription::require(state_dir)?;
    // The recorded pid is signalled only while it is still `sigstack cluster up`: a pid the
    // system has since given to another program is left alone.
    let alive = |pid: u32| crate::child::running_with(pid, CLUSTER_MARKERS);
    if !alive(description.pid) {
        let _ = std::fs::remove_file(state_dir.join("cluster").join(CLUSTER_FILE));
        let other = Path::new(&format!("/proc/{}", description.pid)).exists();
        println!(
            "the cluster on {} was not running{}",
            state_dir.display(),
            if other {
                format!(" (pid {} now belongs to another program; left alone)", description.pid)
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    // SAFETY: kill(2) touches no memory; the pid was just checked to be the cluster's.
    unsafe { libc::kill(description.pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(description.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(description.pid) {
        bail!("the cluster (pid {}) did not stop within 20 s", description.pid);
    }
    println!("cluster stopped");
    Ok(())
}

/// etcd, the API server and Kyverno cannot bind port 0 and report theirs, so their ports are
/// chosen free beforehand; one another program takes in between makes a child fail to bind, and
/// the whole start is tried again on other ports (a fresh cluster each time anyway).
pub fn up(args: &ClusterOptions) -> anyhow::Result<()> {
    const ATTEMPTS: u32 = 3;
    for attempt in 1.. {
        match up_once(args) {
            Err(e) if attempt < ATTEMPTS && port_was_taken(&args.state_dir) => {
                eprintln!("sigstack: {e:#}\nsigstack: a port was taken meanwhile; starting again on other ports");
            }
            result => return result,
        }
    }
    unreachable!("the loop returns")
}

/// Whether a child of the last start failed because its port was taken.
fn port_was_taken(state_dir: &Path) -> bool {
    let logs = state_dir.join("cluster/logs");
    std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| std::fs::read_to_string(entry.path()).is_ok_and(|log| log.contains("address already in use")))
}

fn up_once(args: &ClusterOptions) -> anyhow::Result<()> {
    let state_dir = open_state_dir(&args.state_dir)?;
    let kube_bin = tool_dir(&args.kube_bin, "kube-", "kube-apiserver", "kube")?;
    let kyverno_bin =
        if args.kyverno { Some(tool_dir(&args.kyverno_bin, "kyverno-", "kyverno", "kyverno")?) } else { None };
    let dir = state_dir.join("cluster");
    if let Ok(previous) = ClusterDescription::require(&state_dir)
        && crate::child::running_with(previous.pid, CLUSTER_MARKERS)
        && previous.pid != std::process::id()
    {
        bail!(
            "a cluster already runs on {} (pid {}): `sigstack cluster down` first",
            state_dir.display(),
            previous.pid
        );
    }
    for name in ["kyverno", "kube-apiserver", "etcd"] {
        let markers = [dir.to_str().unwrap_or("cluster")];
        if let Some(pid) = crate::child::stop_leftover(&dir.join(format!("{name}.pid")), &markers) {
            eprintln!("sigstack: stopped the {name} an earlier run left behind (pid {pid})");
        }
    }
    // Every `up` is a fresh cluster: tests and demos must not inherit objects from an earlier one.
    let _ = std::fs::remove_dir_all(&dir);
    sigstack_state::ensure_private_dir(&dir)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    sigstack_state::ensure_private_dir(&dir.join("pki"))?;
    let credentials = generate_credentials(&dir)?;
    let (etcd_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
    let server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig_path = dir.join("admin.kubeconfig");
    sigstack_state::write_private(&kubeconfig_path, kubeconfig(&server, &credentials).as_bytes())?;
    let kubectl_path = kube_bin.join("kubectl");
    let started = Instant::now();

    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let etcd_url = format!("https://127.0.0.1:{etcd_port}");
        let peer_url = format!("https://127.0.0.1:{peer_port}");
        let pki = |f: &str| dir.join("pki").join(f).display().to_string();
        let etcd_args: Vec<String> = vec![
            format!("--cert-file={}", pki("etcd.crt")),
            format!("--key-file={}", pki("etcd.key")),
            format!("--trusted-ca-file={}", pki("ca.crt")),
            "--client-cert-auth".into(),
            format!("--peer-cert-file={}", pki("etcd.crt")),
            format!("--peer-key-file={}", pki("etcd.key")),
            format!("--peer-trusted-ca-file={}", pki("ca.crt")),
            "--peer-client-cert-auth".into(),
            "--name=default".into(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            // A throwaway test cluster: no fsync per write (envtest does the same).
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ];
        let mut etcd = spawn("etcd", &kube_bin.join("etcd"), &etcd_args, &[], &dir)?;
        wait_for("etcd", Duration::from_secs(30), &mut etcd, &dir.join("logs/etcd.log"), || {
            std::net::TcpStream::connect(("127.0.0.1", etcd_port)).is_ok()
        })
        .await?;

        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--etcd-cafile={}", pki("ca.crt")),
            format!("--etcd-certfile={}", pki("etcd-client.crt")),
            format!("--etcd-keyfile={}", pki("etcd-client.key")),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--cert-dir={}", dir.join("pki").display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            format!("--token-auth-file={}", pki("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            // A loopback advertise address is refused by the endpoint reconciler (envtest passes this too).
            "--endpoint-reconciler-type=none".into(),
            // No controller-manager creates ServiceAccounts here; admission of images is what runs.
            "--disable-admission-plugins=ServiceAccount".into(),
        ];
        let mut apiserver = spawn("kube-apiserver", &kube_bin.join("kube-apiserver"), &apiserver_args, &[], &dir)?;
        let readyz = |args: &[&str]| kubectl(&kubectl_path, &kubeconfig_path, args, None).is_ok_and(|out| out.trim() == "ok");
        wait_for("kube-apiserver", Duration::from_secs(90), &mut apiserver, &dir.join("logs/kube-apiserver.log"), || {
            readyz(&["get", "--raw=/readyz"])
        })
        .await?;
        let api_ready = started.elapsed();
        let version = kubectl(&kubectl_path, &kubeconfig_path, &["version", "-o", "json"], None)
            .ok()
            .and_then(|out| serde_json::from_str::<serde_json::Value>(&out).ok())
            .and_then(|v| v["serverVersion"]["gitVersion"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());

        let mut kyverno = None;
        if let Some(bin) = &kyverno_bin {
            kyverno = Some(start_kyverno(bin, &dir, &kubectl_path, &kubeconfig_path, &state_dir, args.kyverno_namespace_label.as_deref()).await?);
        }
        let description = ClusterDescription {
            server: server.clone(),
            kubeconfig: kubeconfig_path.clone(),
            kubectl: kubectl_path.clone(),
            kyverno: kyverno.is_some(),
            pid: std::process::id(),
        };
        sigstack_state::write_public(&dir.join(CLUSTER_FILE), &serde_json::to_vec_pretty(&description)?)?;
        println!("Kubernetes API server {version} ready at {server} ({:.1} s)", api_ready.as_secs_f64());
        if kyverno.is_some() {
            println!("Kyverno admission controller running (webhooks registered, {:.1} s)", started.elapsed().as_secs_f64());
        }
        println!("  kubeconfig {}", kubeconfig_path.display());
        println!("  kubectl    {}", kubectl_path.display());
        println!("  logs       {}", dir.join("logs").display());
        println!("Use it: export KUBECONFIG={}", kubeconfig_path.display());
        println!("Press Ctrl-C (or run `sigstack cluster down`) to stop.");

        let stopped = tokio::select! {
            () = crate::server::shutdown_signal() => Ok(()),
            status = apiserver.wait() => Err(anyhow::anyhow!("kube-apiserver exited ({}); see {}", status?, dir.join("logs/kube-apiserver.log").display())),
            status = etcd.wait() => Err(anyhow::anyhow!("etcd exited ({}); see {}", status?, dir.join("logs/etcd.log").display())),
        };
        let _ = std::fs::remove_file(dir.join(CLUSTER_FILE));
        // Kyverno first (its webhooks would otherwise fail closed against a stopping server), then
        // the API server, then its store.
        for mut child in kyverno.into_iter().chain([apiserver, etcd]) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        stopped
    })
}

/// Installs Kyverno's CRDs, namespace and ConfigMaps, starts its admission controller out of the
/// cluster (its own local-run mode: `--serverIP` makes it register its webhooks by URL on
/// loopback with a CA bundle of its own), and waits until its webhooks are registered.
async fn start_kyverno(
    bin: &Path,
    dir: &Path,
    kubectl_path: &Path,
    kubeconfig_path: &Path,
    state_dir: &Path,
    namespace_label: Option<&str>,
) -> anyhow::Result<tokio::process::Child> {
    let run = |args: &[&str], stdin: Option<&str>| kubectl(kubectl_path, kubeconfig_path, args, stdin);
    let crds = bin.join("crds");
    run(&["apply", "--server-side", "-R", "-f", crds.to_str().context("CRD path")?, "-o", "name"], None)
        .context("install Kyverno's CRDs")?;
    run(&["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"], None)?;
    let selector = match namespace_label.map(|l| l.split_once('=')) {
        Some(Some((key, value))) => serde_json::json!({"matchLabels": {key: value}}),
        Some(None) => bail!("--kyverno-namespace-label must be KEY=VALUE"),
        None => {
            serde_json::json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", KYVERNO_NAMESPACE]}]})
        }
    };
    // The `webhooks` key must be one JSON object (the Helm chart's array form is refused by the
    // controller: "cannot unmarshal array into Go value of type config.WebhookConfig").
    let webhooks = serde_json::json!({"namespaceSelector": selector}).to_string();
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KYVERNO_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": KYVERNO_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kyverno", "namespace": KYVERNO_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kyverno", "namespace": KYVERNO_NAMESPACE},
         "data": {"webhooks": webhooks, "excludeGroups": "system:nodes", "defaultRegistry": "docker.io", "generateSuccessEvents": "false"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kyverno-metrics", "namespace": KYVERNO_NAMESPACE}, "data": {}},
    ]});
    run(&["apply", "-f", "-", "-o", "name"], Some(&objects.to_string()))
        .context("create Kyverno's namespace and configuration")?;

    let port = free_port()?;
    let tuf_root = dir.join("kyverno-tuf");
    std::fs::create_dir_all(&tuf_root)?;
    let mut flags: Vec<String> = vec![
        format!("--kubeconfig={}", kubeconfig_path.display()),
        format!("--serverIP=127.0.0.1:{port}"),
        "--webhookServerHost=127.0.0.1".into(),
        format!("--webhookServerPort={port}"),
        "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca".into(),
        "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair".into(),
        // The stack's registry is plain HTTP.
        "--allowInsecureRegistry".into(),
        "--disableMetrics".into(),
        // Its metrics server listens even with --disableMetrics: a free loopback port, so two
        // clusters can run side by side.
        "--metricsHost=127.0.0.1".into(),
        format!("--metricsPort={}", free_port()?),
        "--controllerRuntimeMetricsAddress=0".into(),
        "--disableLogColor".into(),
        // Every admission is judged afresh: the tests move tags and re-sign images.
        "--imageVerifyCacheEnabled=false".into(),
    ];
    // `type: SigstoreBundle` takes its trusted root from TUF: the stack's repository, never the
    // public-good one.
    if let Ok(Some(stack)) = StackDescription::read(state_dir)
        && let Some(tuf) = stack.services.get("tuf")
    {
        flags.push("--enableTuf".into());
        flags.push(format!("--tufMirror={tuf}"));
        flags.push(format!("--tufRoot={}", stack.trust_dir.join("root.json").display()));
    }
    let env = [
        ("KYVERNO_NAMESPACE", KYVERNO_NAMESPACE.to_string()),
        ("KYVERNO_SERVICEACCOUNT_NAME", "kyverno".into()),
        ("KYVERNO_DEPLOYMENT", "kyverno".into()),
        ("KYVERNO_POD_NAME", "kyverno-local".into()),
        ("INIT_CONFIG", "kyverno".into()),
        ("METRICS_CONFIG", "kyverno-metrics".into()),
        ("KYVERNO_SVC", "kyverno-svc".into()),
        ("TUF_ROOT", tuf_root.display().to_string()),
        ("HOME", dir.display().to_string()),
    ];
    let mut child = spawn("kyverno", &bin.join("kyverno"), &flags, &env, dir)?;
    wait_for("kyverno", Duration::from_secs(120), &mut child, &dir.join("logs/kyverno.log"), || {
        run(&["get", "validatingwebhookconfigurations", "-o", "name"], None)
            .is_ok_and(|out| out.contains("kyverno-resource-validating-webhook-cfg"))
            && run(&["get", "mutatingwebhookconfigurations", "-o", "name"], None)
                .is_ok_and(|out| out.contains("kyverno-resource-mutating-webhook-cfg"))
    })
    .await?;
    Ok(child)
}
