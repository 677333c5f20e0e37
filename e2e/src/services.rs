//! Every service's router, built in-process on a private state directory, and one way to call them
//! without a socket. The bad-input suite sweeps them, and the fuzz targets (fuzz/) feed them
//! arbitrary bytes through [`crate::fuzz`]; a crash either finds becomes a file under
//! fuzz/regressions/ that `tests/services/fuzz_regressions.rs` replays on every test run.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sigstack_admission::{ImageInfo, ImageVerifier, SignatureCheck, VerifiedSignature, VerifyFailure};
use tower::ServiceExt;

/// The services under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The OIDC issuer.
    Oidc,
    /// The CA.
    Fulcio,
    /// The transparency log.
    Rekor,
    /// The admission webhook (HTTP layer; TLS is the binary's).
    Webhook,
    /// The TUF repository (static files).
    Tuf,
    /// The Rekor v2 (tiles) log.
    RekorV2,
    /// The timestamp authority.
    Tsa,
}

impl Service {
    /// All of them.
    pub const ALL: [Service; 7] = [
        Service::Oidc,
        Service::Fulcio,
        Service::Rekor,
        Service::Webhook,
        Service::Tuf,
        Service::RekorV2,
        Service::Tsa,
    ];
}

/// A verifier for the webhook that finds nothing and never touches a network.
struct NothingSigned;

impl ImageVerifier for NothingSigned {
    fn resolve(&self, _: &ImageInfo) -> Result<String, VerifyFailure> {
        Ok(format!("sha256:{}", "0".repeat(64)))
    }
    fn signatures(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        Err(VerifyFailure("no signatures found".into()))
    }
    fn attestations(&self, _: &ImageInfo, _: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        Err(VerifyFailure("no matching attestations: ".into()))
    }
}

/// The routers, on one state directory that lives as long as the process.
pub struct Routers {
    _dir: tempfile::TempDir,
    oidc: Router,
    fulcio: Router,
    rekor: Router,
    webhook: Router,
    tuf: Router,
    rekor_v2: Router,
    tsa: Router,
    runtime: tokio::runtime::Runtime,
}

/// The GitHub Actions issuer the CA trusts here (tokens come from the in-process issuer).
pub use crate::GITHUB_ISSUER as ISSUER;

impl Routers {
    /// The process-wide instance (fuzz targets call it once per input).
    pub fn shared() -> &'static Routers {
        static ROUTERS: OnceLock<Routers> = OnceLock::new();
        ROUTERS.get_or_init(|| Routers::new().expect("build the routers"))
    }

    fn new() -> anyhow::Result<Routers> {
        let dir = tempfile::tempdir()?;
        let issuer = sigstack_oidc::Issuer::open(&dir.path().join("oidc"), sigstack_oidc::IssuerConfig::new(ISSUER))?;
        let verifier = sigstack_fulcio::TokenVerifier::new(vec![sigstack_fulcio::OidcIssuer {
            issuer_url: ISSUER.into(),
            kind: sigstack_fulcio::IssuerKind::GithubActions,
            audience: "sigstore".into(),
            keys: sigstack_fulcio::KeySource::Jwks(issuer.jwks()),
        }]);
        let ca = sigstack_fulcio::CertificateAuthority::load_or_generate(&dir.path().join("fulcio"))?;
        let fulcio = sigstack_fulcio::router(Arc::new(sigstack_fulcio::Fulcio::new(ca, verifier)));
        let rekor =
            sigstack_rekor::router(sigstack_rekor::TransparencyLog::open(&dir.path().join("rekor"), "rekor.test")?);
        let policy = include_str!("../../policy/verify-signed-images.yaml");
        let policies = sigstack_admission::load_policy_set("policy/verify-signed-images.yaml", policy)?;
        let webhook = sigstack_admission::webhook::router(sigstack_admission::webhook::WebhookState {
            policies: Arc::new(policies),
            verifier: Arc::new(NothingSigned),
            decisions: None,
        });
        let oidc = sigstack_oidc::router(Arc::new(issuer));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let published = runtime.block_on(sigstack_tuf::publish(
            &dir.path().join("tuf"),
            &[("trusted_root.json", b"{}"), ("signing_config.v0.2.json", b"{}")],
        ))?;
        let tuf = sigstack_tuf::router(&published.repo_dir);
        let rekor_v2 = sigstack_rekor::v2::router(sigstack_rekor::v2::TileLog::open(
            &dir.path().join("rekor-v2"),
            "rekor-v2.test",
            Default::default(),
        )?);
        let tsa = sigstack_tsa::router(Arc::new(sigstack_tsa::TimestampAuthority::load_or_generate(
            &dir.path().join("tsa"),
        )?));
        Ok(Routers { _dir: dir, oidc, fulcio, rekor, webhook, tuf, rekor_v2, tsa, runtime })
    }

    /// Sends `request` to `service`; returns the status and the body.
    pub fn call(&self, service: Service, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let router = match service {
            Service::Oidc => &self.oidc,
            Service::Fulcio => &self.fulcio,
            Service::Rekor => &self.rekor,
            Service::Webhook => &self.webhook,
            Service::Tuf => &self.tuf,
            Service::RekorV2 => &self.rekor_v2,
            Service::Tsa => &self.tsa,
        };
        self.runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("routers are infallible");
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
            (status, body)
        })
    }
}
