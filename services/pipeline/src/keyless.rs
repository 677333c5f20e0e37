//! Keyless signing, client side: an ephemeral P-256 key, a certificate from the CA for the token's
//! identity, entries in the log. Over HTTP only, as cosign does.

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// Where the stack's CA and log are.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// CA base URL.
    pub fulcio: String,
    /// Rekor v1 base URL (empty when the stack runs only a v2 log).
    pub rekor: String,
    /// Rekor v2 base URL: bundles are logged there when there is one.
    pub rekor_v2: Option<String>,
    /// Timestamp authority base URL.
    pub tsa: Option<String>,
}

impl Services {
    /// The services of a stack from its `stack.json` map (`fulcio`, `rekor`, `rekor-v2`, `tsa`).
    pub fn from_stack(services: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Services> {
        let fulcio = services.get("fulcio").cloned().context("the stack has no CA (fulcio)")?;
        anyhow::ensure!(
            services.contains_key("rekor") || services.contains_key("rekor-v2"),
            "the stack has no transparency log"
        );
        Ok(Services {
            fulcio,
            rekor: services.get("rekor").cloned().unwrap_or_default(),
            rekor_v2: services.get("rekor-v2").cloned(),
            tsa: services.get("tsa").cloned(),
        })
    }

    /// Where bundles go: the v2 log when there is one (with the TSA), else v1.
    pub(crate) fn signing(&self) -> crate::sigstore_bundle::SigningServices {
        let tsa = self.tsa.as_ref().map(|url| format!("{}/api/v1/timestamp", url.trim_end_matches('/')));
        let rekor = match &self.rekor_v2 {
            Some(url) => (url.clone(), 2),
            None => (self.rekor.clone(), 1),
        };
        crate::sigstore_bundle::SigningServices { fulcio: self.fulcio.clone(), rekor, tsa }
    }

    /// The cosign format's signatures carry a Rekor v1 SET: refused plainly without a v1 log.
    pub(crate) fn require_v1(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.rekor.is_empty(),
            "this stack runs no Rekor v1 log (started with --rekor v2): the cosign format needs v1's signed entry \
             timestamp; use --format bundle (a v2 entry and a signed timestamp), or start the stack with --rekor both"
        );
        Ok(())
    }
}

/// What verification trusts: the stack's `trusted_root.json`, or the inline material of a Kyverno
/// attestor.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// CA certificates above leaves, issuer first, root last (DER): the chain to build when a
    /// signature carries none.
    pub ca_chain: Vec<Vec<u8>>,
    /// Certificates a chain may end in, any of them (DER): each CA's root of a trusted root, or
    /// every certificate of a Kyverno `roots` bundle.
    pub anchors: Vec<Vec<u8>>,
    /// The Rekor v1 log key (DER SPKI); empty when only v2 logs are trusted.
    pub rekor_key: Vec<u8>,
    /// The CT log key (DER SPKI).
    pub ctlog_key: Vec<u8>,
    /// Rekor v2 logs.
    pub rekor_v2: Vec<TileLogKey>,
    /// Timestamp authorities, each chain leaf first and root last (DER).
    pub timestamp_authorities: Vec<Vec<Vec<u8>>>,
}

/// A Rekor v2 log as a verifier knows it.
#[derive(Debug, Clone)]
pub struct TileLogKey {
    /// The checkpoint key ID (`logId.keyId`).
    pub key_id: Vec<u8>,
    /// The 32-byte Ed25519 checkpoint key.
    pub public_key: Vec<u8>,
    /// The checkpoints' name: the bare host of the log's base URL, as sigstore-go takes it.
    pub origin: String,
}

impl Trust {
    /// Loads `trusted_root.json`.
    pub fn load(trusted_root: &std::path::Path) -> anyhow::Result<Trust> {
        let bytes = std::fs::read(trusted_root).with_context(|| format!("read {}", trusted_root.display()))?;
        let root: sigstack_trust::TrustedRoot = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a trusted root", trusted_root.display()))?;
        let decode = |b: &str| B64.decode(b).context("base64 in the trusted root");
        let chains = root
            .certificate_authorities
            .iter()
            .map(|ca| ca.cert_chain.certificates.iter().map(|c| decode(&c.raw_bytes)).collect())
            .collect::<anyhow::Result<Vec<Vec<Vec<u8>>>>>()?;
        anyhow::ensure!(!root.tlogs.is_empty(), "the trusted root has no log");
        let (v2, v1): (Vec<_>, Vec<_>) =
            root.tlogs.iter().partition(|log| log.public_key.key_details == "PKIX_ED25519");
        let rekor_v2 = v2
            .iter()
            .map(|log| {
                let spki = decode(&log.public_key.raw_bytes)?;
                anyhow::ensure!(spki.len() >= 32, "the v2 log key of {} is too short", log.base_url);
                Ok(TileLogKey {
                    key_id: decode(&log.log_id.key_id)?,
                    public_key: spki[spki.len() - 32..].to_vec(),
                    origin: sigstack_wire::url_hostname(&log.base_url).to_string(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Trust {
            anchors: chains.iter().filter_map(|chain| chain.last().cloned()).collect(),
            ca_chain: chains.into_iter().next().context("the trusted root has no CA")?,
            rekor_key: v1.first().map(|log| decode(&log.public_key.raw_bytes)).transpose()?.unwrap_or_default(),
            ctlog_key: decode(&root.ctlogs.first().context("the trusted root has no CT log")?.public_key.raw_bytes)?,
            rekor_v2,
            timestamp_authorities: root
                .timestamp_authorities
                .iter()
                .map(|tsa| tsa.cert_chain.certificates.iter().map(|c| decode(&c.raw_bytes)).collect())
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// An ephemeral key with its certificate.
pub(crate) struct KeylessSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Leaf certificate, PEM.
    pub(crate) leaf_pem: String,
    /// The CA chain above it, PEM (intermediate then root), as cosign's chain annotation holds.
    pub(crate) chain_pem: String,
    /// The SAN the CA wrote.
    pub(crate) identity: String,
}

use sigstack_wire::pem_lf as pem_block;

/// What the proof of possession signs: `email` if the token has a verified one, else `sub`
/// (what cosign and sigstore-js do).
fn challenge(token: &str) -> anyhow::Result<String> {
    let claims = sigstack_oidc::unverified_claims(token).context("the identity token")?;
    if let Some(email) = claims["email"].as_str() {
        return Ok(email.to_string());
    }
    claims["sub"].as_str().map(str::to_string).context("the identity token has no sub")
}

impl KeylessSigner {
    /// Gets a certificate for a fresh key from the CA at `fulcio`.
    pub(crate) async fn new(http: &reqwest::Client, fulcio: &str, token: &str) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let spki = key.public_key().as_der().map_err(|e| anyhow::anyhow!("{e}"))?;
        let proof = key.sign(&rng, challenge(token)?.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let request = json!({
            "credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": pem_block("PUBLIC KEY", spki.as_ref())},
                "proofOfPossession": B64.encode(proof.as_ref())
            }
        });
        let url = format!("{}/api/v2/signingCert", fulcio.trim_end_matches('/'));
        let response = http.post(&url).json(&request).send().await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body: Value = response.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
        if !status.is_success() {
            bail!(
                "the CA refused the certificate request ({status}): {}",
                body["message"].as_str().unwrap_or("no message")
            );
        }
        let chain: Vec<String> = body["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .context("the CA answered without a certificate chain")?
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let (leaf_pem, rest) = chain.split_first().context("empty certificate chain")?;
        let leaf_der = pem::parse(leaf_pem).context("leaf PEM")?.into_contents();
        let rest_der: Vec<Vec<u8>> =
            rest.iter().map(|c| pem::parse(c).map(|p| p.into_contents())).collect::<Result<_, _>>()?;
        let root = rest_der.last().context("no root in the chain")?.clone();
        let identity = sigstack_fulcio::verify_leaf(&leaf_der, &rest_der, &[root], sigstack_fulcio::now())
            .map_err(|e| anyhow::anyhow!("the CA's certificate: {e}"))?
            .san
            .first()
            .cloned()
            .unwrap_or_default();
        Ok(KeylessSigner {
            key,
            rng,
            leaf_pem: pem_block("CERTIFICATE", &leaf_der),
            chain_pem: rest_der.iter().map(|der| pem_block("CERTIFICATE", der)).collect(),
            identity,
        })
    }

    /// ECDSA-SHA256 signature (DER) over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.key.sign(&self.rng, message).map_err(|e| anyhow::anyhow!("{e}"))?.as_ref().to_vec())
    }
}

/// A log entry as the log answered it.
#[derive(Debug, Clone)]
pub(crate) struct LoggedEntry {
    pub(crate) body: String,
    pub(crate) integrated_time: i64,
    pub(crate) log_index: u64,
    pub(crate) log_id: String,
    pub(crate) signed_entry_timestamp: String,
    /// `verification.inclusionProof` as the log answered it.
    pub(crate) inclusion_proof: Value,
}

impl LoggedEntry {
    /// cosign's `dev.sigstore.cosign/bundle` annotation (pkg/cosign/bundle/rekor.go).
    pub(crate) fn cosign_bundle(&self) -> String {
        json!({
            "SignedEntryTimestamp": self.signed_entry_timestamp,
            "Payload": {"body": self.body, "integratedTime": self.integrated_time, "logIndex": self.log_index, "logID": self.log_id}
        })
        .to_string()
    }
}

/// Adds a proposed entry to the log at `rekor`.
pub(crate) async fn log_entry(http: &reqwest::Client, rekor: &str, proposed: &Value) -> anyhow::Result<LoggedEntry> {
    let url = format!("{}/api/v1/log/entries", rekor.trim_end_matches('/'));
    let response = http.post(&url).json(proposed).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!("the log refused the entry ({status}): {}", body["message"].as_str().unwrap_or("no message"));
    }
    let (_, entry) = body.as_object().and_then(|m| m.iter().next()).context("the log answered without an entry")?;
    Ok(LoggedEntry {
        body: entry["body"].as_str().context("entry body")?.to_string(),
        integrated_time: entry["integratedTime"].as_i64().context("integratedTime")?,
        log_index: entry["logIndex"].as_u64().context("logIndex")?,
        log_id: entry["logID"].as_str().context("logID")?.to_string(),
        signed_entry_timestamp: entry["verification"]["signedEntryTimestamp"].as_str().context("SET")?.to_string(),
        inclusion_proof: entry["verification"]["inclusionProof"].clone(),
    })
}
