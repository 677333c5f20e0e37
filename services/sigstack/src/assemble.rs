//! Assembling the services of a stack on a state directory: each service opened with its own keys,
//! its public part published for whoever writes the trust files, the trust files, the TUF
//! repository. Shared by `sigstack up` (all in one process), `sigstack serve` (one per process)
//! and the in-process stacks of [`crate::embedded`] and [`crate::testkit`].

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sigstack_fulcio::{CertificateAuthority, Fulcio, IssuerKind, IssuerSpec, KeySource, OidcIssuer, TokenVerifier};
use sigstack_oidc::{Issuer, IssuerConfig};

/// Default ports of the embedded stack, all on 127.0.0.1 (documented in README).
pub const DEFAULT_OIDC_PORT: u16 = 8091;
/// Default port of the CA.
pub const DEFAULT_FULCIO_PORT: u16 = 8092;
/// Default port of the log.
pub const DEFAULT_REKOR_PORT: u16 = 8093;
/// Default port of the TUF repository.
pub const DEFAULT_TUF_PORT: u16 = 8094;
/// Default port of the registry.
pub const DEFAULT_REGISTRY_PORT: u16 = 8095;
/// Default port of the timestamp authority.
pub const DEFAULT_TSA_PORT: u16 = 8096;
/// Default port of the Rekor v2 log.
pub const DEFAULT_REKOR_V2_PORT: u16 = 8097;
/// Default port of the explorer.
pub const DEFAULT_EXPLORER_PORT: u16 = 8098;

/// Which transparency logs a stack runs. A timestamp authority runs whenever a v2 log does: v2
/// entries carry no signed time, and cosign v3 refuses to sign to a v2 log without a TSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RekorVersions {
    /// Rekor v1 only: what production's default signing config lists.
    #[default]
    V1,
    /// Rekor v2 (tiles) and a timestamp authority only.
    V2,
    /// Both logs and the TSA; v2-capable clients sign to v2, others to v1, and v1 stays readable.
    Both,
}

impl RekorVersions {
    /// Whether a Rekor v1 log runs.
    pub fn v1(self) -> bool {
        matches!(self, RekorVersions::V1 | RekorVersions::Both)
    }

    /// Whether a Rekor v2 log (and so a TSA) runs.
    pub fn v2(self) -> bool {
        matches!(self, RekorVersions::V2 | RekorVersions::Both)
    }

    /// The value of `sigstack up --rekor`.
    pub fn as_arg(self) -> &'static str {
        match self {
            RekorVersions::V1 => "v1",
            RekorVersions::V2 => "v2",
            RekorVersions::Both => "both",
        }
    }
}

/// Read from `--rekor` (the command layer's parser; the library has no clap).
impl std::str::FromStr for RekorVersions {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "v1" => Ok(RekorVersions::V1),
            "v2" => Ok(RekorVersions::V2),
            "both" => Ok(RekorVersions::Both),
            other => Err(format!("{other:?} is not one of v1, v2, both")),
        }
    }
}

impl std::fmt::Display for RekorVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_arg())
    }
}

/// Opens the issuer of `state_dir` reachable at `issuer_url`, recording its configuration (the
/// OIDC crate's [`Issuer::open_and_record`]).
pub fn open_issuer(state_dir: &Path, issuer_url: String, github_issuer: &str) -> anyhow::Result<Arc<Issuer>> {
    let config = IssuerConfig { issuer_url, github_issuer: github_issuer.to_string(), email_issuer: None };
    let issuer = Issuer::open_and_record(&state_dir.join("oidc"), config).context("open the OIDC issuer")?;
    Ok(Arc::new(issuer))
}

/// The issuer of `state_dir` as it was last recorded ([`Issuer::open_recorded`]), at the default
/// port before any start.
pub fn open_recorded_issuer(state_dir: &Path) -> anyhow::Result<Issuer> {
    Ok(Issuer::open_recorded(&state_dir.join("oidc"), &format!("http://127.0.0.1:{DEFAULT_OIDC_PORT}"))?)
}

/// The issuers the local OIDC issuer stands for: GitHub's name (workflow identities) and its own
/// URL (email identities), both verified with `keys`.
pub fn local_issuers(github_issuer: &str, email_issuer: &str, keys: KeySource) -> Vec<OidcIssuer> {
    vec![
        OidcIssuer {
            issuer_url: github_issuer.to_string(),
            kind: IssuerKind::GithubActions,
            audience: sigstack_oidc::DEFAULT_AUDIENCE.into(),
            keys: keys.clone(),
        },
        OidcIssuer {
            issuer_url: email_issuer.to_string(),
            kind: IssuerKind::Email,
            audience: sigstack_oidc::DEFAULT_AUDIENCE.into(),
            keys,
        },
    ]
}

/// Opens the CA of `state_dir` trusting `issuers` (plus any in the `issuer_config` file).
pub fn open_fulcio(
    state_dir: &Path,
    mut issuers: Vec<OidcIssuer>,
    issuer_config: Option<&Path>,
) -> anyhow::Result<Arc<Fulcio>> {
    if let Some(path) = issuer_config {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        issuers.extend(IssuerSpec::parse_list(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    let ca = CertificateAuthority::load_or_generate(&state_dir.join("fulcio")).context("open the CA")?;
    Ok(Arc::new(Fulcio::new(ca, TokenVerifier::new(issuers))))
}

/// Opens the log of `state_dir`, reachable at `public_url`.
///
/// Checkpoints are signed under the host of that URL (`<host> - <treeID>`, signature line
/// `— <host> ...`), as Rekor signs under its hostname: @sigstore/verify 3 accepts a checkpoint
/// signature only if its name matches the log's `baseUrl` in the trusted root.
pub fn open_rekor(state_dir: &Path, public_url: &str) -> anyhow::Result<sigstack_rekor::TransparencyLog> {
    sigstack_rekor::TransparencyLog::open(&state_dir.join("rekor"), sigstack_wire::url_hostname(public_url))
        .context("open the transparency log")
}

/// Opens the Rekor v2 log of `state_dir`, reachable at `public_url`. Its checkpoints are named
/// by the bare host of that URL: sigstore-go verifies them under `url.Hostname()` of the log's
/// `baseUrl`, port dropped.
pub fn open_rekor_v2(
    state_dir: &Path,
    public_url: &str,
    options: sigstack_rekor::v2::TileLogOptions,
) -> anyhow::Result<sigstack_rekor::v2::TileLog> {
    sigstack_rekor::v2::TileLog::open(&state_dir.join("rekor-v2"), sigstack_wire::url_hostname(public_url), options)
        .context("open the Rekor v2 log")
}

/// Opens the timestamp authority of `state_dir`.
pub fn open_tsa(state_dir: &Path) -> anyhow::Result<Arc<sigstack_tsa::TimestampAuthority>> {
    Ok(Arc::new(
        sigstack_tsa::TimestampAuthority::load_or_generate(&state_dir.join("tsa"))
            .context("open the timestamp authority")?,
    ))
}

/// The URLs a stack's clients use.
pub struct StackUrls<'a> {
    /// The issuer.
    pub oidc: &'a str,
    /// The CA.
    pub fulcio: &'a str,
    /// The Rekor v1 log, if the stack runs one.
    pub rekor: Option<&'a str>,
    /// The Rekor v2 log, if the stack runs one.
    pub rekor_v2: Option<&'a str>,
    /// The timestamp authority's base URL, if the stack runs one.
    pub tsa: Option<&'a str>,
}

/// What the CA publishes for the trust writer: `STATE/public/fulcio.json`.
///
/// No key is shared between services: each generates and keeps its own private key, and writes
/// only its public part here. Whoever writes the trust files (`up`, or `serve tuf` in
/// one-container-per-service setups) reads these, so split services produce the same trust files.
#[derive(serde::Serialize, serde::Deserialize)]
struct FulcioPublic {
    /// Intermediate then root, base64 DER.
    ca_chain: Vec<String>,
    /// CT log key, base64 DER SPKI.
    ctlog_key: String,
    valid_from: String,
}

/// What the log publishes: `STATE/public/rekor.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct RekorPublic {
    /// Log key, base64 DER SPKI.
    key: String,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(field: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).with_context(|| format!("{field} is not base64"))
}

/// What the v2 log publishes: `STATE/public/rekor-v2.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct RekorV2Public {
    /// Ed25519 checkpoint key, base64 DER SPKI.
    key: String,
    /// Checkpoint key ID, base64.
    key_id: String,
}

/// What the TSA publishes: `STATE/public/tsa.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct TsaPublic {
    /// Leaf to root, base64 DER.
    chain: Vec<String>,
    valid_from: String,
}

/// Writes the v2 log's public part for the trust writer.
pub fn publish_rekor_v2(state_dir: &Path, log: &sigstack_rekor::v2::TileLog) -> anyhow::Result<()> {
    let public = RekorV2Public { key: b64(&log.public_key_der()?), key_id: b64(&log.key_id()) };
    sigstack_state::write_public(&state_dir.join("public/rekor-v2.json"), &serde_json::to_vec_pretty(&public)?)?;
    Ok(())
}

/// Writes the TSA's public part for the trust writer.
pub fn publish_tsa(state_dir: &Path, tsa: &sigstack_tsa::TimestampAuthority) -> anyhow::Result<()> {
    let public =
        TsaPublic { chain: tsa.chain_der().iter().map(|der| b64(der)).collect(), valid_from: tsa.valid_from()? };
    sigstack_state::write_public(&state_dir.join("public/tsa.json"), &serde_json::to_vec_pretty(&public)?)?;
    Ok(())
}

/// Writes the CA's public part for the trust writer.
pub fn publish_fulcio(state_dir: &Path, fulcio: &Fulcio) -> anyhow::Result<()> {
    let ca = fulcio.ca();
    let public = FulcioPublic {
        ca_chain: ca.ca_chain_der().iter().map(|der| b64(der)).collect(),
        ctlog_key: b64(ca.ctlog().public_key_der()),
        valid_from: ca.valid_from()?,
    };
    sigstack_state::write_public(&state_dir.join("public/fulcio.json"), &serde_json::to_vec_pretty(&public)?)?;
    Ok(())
}

/// Writes the log's public part for the trust writer.
pub fn publish_rekor(state_dir: &Path, rekor: &sigstack_rekor::TransparencyLog) -> anyhow::Result<()> {
    let public = RekorPublic { key: b64(rekor.public_key_der()) };
    sigstack_state::write_public(&state_dir.join("public/rekor.json"), &serde_json::to_vec_pretty(&public)?)?;
    Ok(())
}

/// Reads a public part, waiting up to `wait` for its service to write it.
fn read_public<T: serde::de::DeserializeOwned>(path: &Path, wait: std::time::Duration) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Some(bytes) = sigstack_state::read_optional(path)? {
            return serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()));
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} did not appear within {}s: is its service running on this state directory?",
                path.display(),
                wait.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Writes every trust file of a stack into `state_dir/trust`, from the public parts the CA and the
/// log wrote (waiting up to `wait` for them).
pub fn write_trust(
    state_dir: &Path,
    urls: &StackUrls<'_>,
    wait: std::time::Duration,
) -> anyhow::Result<std::path::PathBuf> {
    let fulcio: FulcioPublic = read_public(&state_dir.join("public/fulcio.json"), wait)?;
    let ca_chain = fulcio.ca_chain.iter().map(|c| unb64("ca_chain", c)).collect::<anyhow::Result<Vec<_>>>()?;
    let ca_chain: Vec<&[u8]> = ca_chain.iter().map(Vec::as_slice).collect();
    let ctlog_key = unb64("ctlog_key", &fulcio.ctlog_key)?;
    let rekor_key = match urls.rekor {
        Some(_) => Some(unb64("key", &read_public::<RekorPublic>(&state_dir.join("public/rekor.json"), wait)?.key)?),
        None => None,
    };
    let rekor_v2 = match urls.rekor_v2 {
        Some(_) => {
            let public: RekorV2Public = read_public(&state_dir.join("public/rekor-v2.json"), wait)?;
            Some((unb64("key", &public.key)?, unb64("key_id", &public.key_id)?))
        }
        None => None,
    };
    let tsa = match urls.tsa {
        Some(url) => {
            let public: TsaPublic = read_public(&state_dir.join("public/tsa.json"), wait)?;
            let chain = public.chain.iter().map(|c| unb64("chain", c)).collect::<anyhow::Result<Vec<_>>>()?;
            Some((format!("{}/api/v1/timestamp", url.trim_end_matches('/')), chain, public.valid_from))
        }
        None => None,
    };
    let tsa_chain: Vec<&[u8]> = tsa.iter().flat_map(|(_, chain, _)| chain.iter().map(Vec::as_slice)).collect();
    let files = sigstack_trust::TrustFiles {
        oidc_url: urls.oidc,
        fulcio_url: urls.fulcio,
        rekor: urls.rekor.zip(rekor_key.as_deref()).map(|(url, spki)| sigstack_trust::LogKey { url, spki }),
        rekor_v2: urls.rekor_v2.zip(rekor_v2.as_ref()).map(|(url, (spki, key_id))| sigstack_trust::V2LogKey {
            log: sigstack_trust::LogKey { url, spki },
            key_id,
        }),
        tsa: tsa.as_ref().map(|(url, _, valid_from)| sigstack_trust::TsaKey { url, chain: &tsa_chain, valid_from }),
        ca_chain: &ca_chain,
        ctlog_key: &ctlog_key,
        valid_from: &fulcio.valid_from,
    };
    let dir = state_dir.join("trust");
    sigstack_trust::write_trust_dir(&dir, &files)?;
    Ok(dir)
}

/// Publishes the stack's trusted root and signing config as TUF targets (new metadata versions
/// each start), and writes the initial TUF root to `trust/root.json` for clients to bootstrap.
pub async fn publish_tuf(state_dir: &Path, trust_dir: &Path) -> anyhow::Result<sigstack_tuf::Published> {
    let read = |name: &str| std::fs::read(trust_dir.join(name)).with_context(|| format!("read {name}"));
    let trusted_root = read("trusted_root.json")?;
    let signing_config = read("signing_config.v0.2.json")?;
    let published = sigstack_tuf::publish(
        &state_dir.join("tuf"),
        &[("trusted_root.json", &trusted_root), ("signing_config.v0.2.json", &signing_config)],
    )
    .await
    .context("publish the TUF repository")?;
    sigstack_state::write_public(&trust_dir.join("root.json"), &published.root_json)?;
    Ok(published)
}
