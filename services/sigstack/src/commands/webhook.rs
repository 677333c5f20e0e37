//! `sigstack webhook`: the AdmissionReview server over HTTPS, with a serving certificate from its
//! own serving CA (never the code-signing CA), and `sigstack webhook manifests` for a real cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;

use crate::StateDirArg;
use crate::commands::admission::read_policies;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum WebhookCommand {
    /// Print the Mutating/ValidatingWebhookConfiguration (with caBundle) for a cluster to call this webhook.
    Manifests(ManifestArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// Policy file, or a directory of them.
    #[arg(long, value_name = "FILE_OR_DIR")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    listen: crate::commands::ListenArgs,
    /// HTTPS port.
    #[arg(long, default_value_t = 8443)]
    port: u16,
    /// Extra DNS names for the serving certificate (e.g. the host name the cluster uses).
    #[arg(long = "dns", value_name = "NAME")]
    dns_names: Vec<String>,
    #[command(flatten)]
    verifier: crate::commands::admission::VerifierArgs,
}

#[derive(Debug, clap::Args)]
struct ManifestArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// Base URL the API server reaches the webhook at, e.g. https://172.18.0.1:8443.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    url: String,
    /// Judge only namespaces carrying this label (KEY=VALUE) [default: every namespace but kube-system].
    #[arg(long, value_name = "KEY=VALUE")]
    namespace_label: Option<String>,
}

struct ServingCert {
    ca_pem: String,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// The serving CA and certificate, made once per state directory.
fn serving_cert(state_dir: &Path, extra_dns: &[String]) -> anyhow::Result<ServingCert> {
    let dir = state_dir.join("webhook");
    sigstack_state::ensure_private_dir(&dir)?;
    let (ca_path, cert_path, key_path) = (dir.join("serving-ca.pem"), dir.join("serving.pem"), dir.join("serving.key"));
    if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
        use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "sigstack");
        name.push(DnType::CommonName, "sigstack webhook serving CA (not for production)");
        ca_params.distinguished_name = name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let mut names =
            vec!["localhost".to_string(), "127.0.0.1".to_string(), "sigstack-webhook.sigstack.svc".to_string()];
        names.extend(extra_dns.iter().cloned());
        let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut server_params = CertificateParams::new(names)?;
        server_params.distinguished_name.push(DnType::CommonName, "sigstack webhook (not for production)");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer)?;
        sigstack_state::write_public(&ca_path, ca_cert.pem().as_bytes())?;
        sigstack_state::write_public(&cert_path, format!("{}{}", server_cert.pem(), ca_cert.pem()).as_bytes())?;
        sigstack_state::write_private(&key_path, server_key.serialize_pem().as_bytes())?;
    }
    let ca_pem = std::fs::read_to_string(&ca_path).with_context(|| format!("read {}", ca_path.display()))?;
    Ok(ServingCert { ca_pem, cert_path, key_path })
}

pub fn run(args: WebhookArgs) -> anyhow::Result<()> {
    if let Some(WebhookCommand::Manifests(manifests)) = args.command {
        return print_manifests(manifests);
    }
    let serve = args.serve;
    let policy = serve.policy.context("give --policy FILE_OR_DIR (e.g. the output of `sigstack policy render`)")?;
    let policies = read_policies(&policy)?;
    let state_dir = crate::stack::open_state_dir(&serve.state.state_dir)?;
    let cert = serving_cert(&state_dir, &serve.dns_names)?;
    let verifier = serve.verifier.verifier()?;
    let state = sigstack_admission::webhook::WebhookState {
        policies: Arc::new(policies),
        verifier: Arc::new(verifier),
        decisions: Some(sigstack_admission::DecisionLog::in_state_dir(&state_dir)),
    };
    let exposure = serve.listen.exposure();
    exposure.check_bind(serve.listen.host, "the webhook")?;
    // It answers to loopback, the address it binds, the certificate's names and --allow-host.
    let allowed = exposure.allowed_hosts(serve.listen.host, serve.dns_names.iter().map(String::as_str));
    let router = crate::server::guarded(
        sigstack_admission::webhook::router(state).layer(axum::middleware::from_fn(limit_reviews)),
        Arc::new(allowed),
    );
    tokio::runtime::Runtime::new()?.block_on(async {
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert.cert_path, &cert.key_path)
            .await
            .context("load the serving certificate")?;
        // Bound before the address is printed, so `--port 0` reports the port it got.
        let host = serve.listen.host;
        let listener = std::net::TcpListener::bind(SocketAddr::new(host, serve.port))
            .with_context(|| format!("bind {host}:{}", serve.port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        println!(
            "sigstack webhook listening on https://{address} (serving CA {})",
            state_dir.join("webhook/serving-ca.pem").display()
        );
        let handle = axum_server::Handle::new();
        let shutdown = handle.clone();
        // Ctrl-C and SIGTERM alike (what a supervisor sends): reviews in flight are answered.
        tokio::spawn(async move {
            crate::server::shutdown_signal().await;
            shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        });
        let mut server = axum_server::from_tcp_rustls(listener, tls)?;
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(crate::server::HEADER_READ_TIMEOUT);
        server.handle(handle).serve(router.into_make_service()).await.context("webhook server")
    })
}

/// Reviews judged at once: each may fetch from the registry, so a burst must not open unbounded
/// connections. Further reviews wait for a turn, up to [`REVIEW_QUEUE_WAIT`].
const MAX_CONCURRENT_REVIEWS: usize = 32;
/// How long a review waits for a turn before it is answered 503 (the API server then applies the
/// webhook's failurePolicy).
const REVIEW_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn limit_reviews(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_REVIEWS);
    match tokio::time::timeout(REVIEW_QUEUE_WAIT, TURNS.acquire()).await {
        Ok(Ok(_turn)) => next.run(request).await,
        _ => sigstack_wire::ErrorEnvelope::Http.response(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "more than {MAX_CONCURRENT_REVIEWS} reviews in flight for {} s; try again",
                REVIEW_QUEUE_WAIT.as_secs()
            ),
        ),
    }
}

fn print_manifests(args: ManifestArgs) -> anyhow::Result<()> {
    let state_dir = crate::stack::open_state_dir(&args.state.state_dir)?;
    let cert = serving_cert(&state_dir, &[])?;
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(cert.ca_pem);
    let url = args.url.trim_end_matches('/');
    let selector = match args.namespace_label.as_deref().map(|l| l.split_once('=')) {
        Some(Some((key, value))) => format!("    namespaceSelector:\n      matchLabels: {{{key}: {value}}}\n"),
        Some(None) => anyhow::bail!("--namespace-label must be KEY=VALUE"),
        None => "    namespaceSelector:\n      matchExpressions:\n        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}\n".into(),
    };
    let rules = "    rules:\n      - apiGroups: [\"\", \"apps\", \"batch\"]\n        apiVersions: [\"v1\"]\n        operations: [CREATE, UPDATE]\n        resources: [pods, pods/ephemeralcontainers, deployments, statefulsets, daemonsets, replicasets, replicationcontrollers, jobs, cronjobs]\n";
    for (kind, name, path) in [
        ("MutatingWebhookConfiguration", "mutate", "mutate"),
        ("ValidatingWebhookConfiguration", "validate", "validate"),
    ] {
        print!(
            "---\napiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: sigstack-{name}\nwebhooks:\n  - name: {name}.sigstack.dev\n    clientConfig:\n      url: {url}/{path}\n      caBundle: {ca_bundle}\n{rules}    failurePolicy: Fail\n    sideEffects: None\n    admissionReviewVersions: [v1]\n    timeoutSeconds: 30\n{selector}"
        );
    }
    Ok(())
}
