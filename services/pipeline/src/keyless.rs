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

/// A P-256 key (PKCS#8 DER) and the certificate chain issued for it (leaf first, PEM).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The private key.
    pub pkcs8: Vec<u8>,
    /// Leaf, intermediate, root.
    pub chain: Vec<String>,
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
        Self::with_chain(key, rng, &chain)
    }

    /// A key with a certificate chain issued for it earlier (leaf first, PEM).
    pub(crate) fn from_parts(key: &SigningKey) -> anyhow::Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.pkcs8)
            .map_err(|e| anyhow::anyhow!("the signing key is not a P-256 PKCS#8 key: {e}"))?;
        Self::with_chain(pair, SystemRandom::new(), &key.chain)
    }

    fn with_chain(key: EcdsaKeyPair, rng: SystemRandom, chain: &[String]) -> anyhow::Result<Self> {
        let (leaf_pem, rest) = chain.split_first().context("empty certificate chain")?;
        let leaf_der = pem::parse(leaf_pem).context("leaf PEM")?.into_contents();
        let rest_der: Vec<Vec<u8>> =
            rest.iter().map(|c| pem::parse(c).map(|p| p.into_contents())).collect::<Result<_, _>>()?;
        // Checked against the trust when the signature is verified; here only its identity is read.
        let identity = sigstack_verify::CertificateIdentity::of(&leaf_der)
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
