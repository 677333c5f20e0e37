use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sigstack_state::StateError;

use crate::model::*;

/// Every file [`write_trust_dir`] writes, relative to the trust directory.
pub const TRUST_FILES: &[&str] = &[
    "trusted_root.json",
    "signing_config.v0.2.json",
    "trust_config.json",
    "fulcio-chain.pem",
    "rekor.pub",
    "ctlog.pub",
    "cosign.env",
];

/// What a stack's trust files are made of.
#[derive(Debug, Clone)]
pub struct TrustFiles<'a> {
    /// Issuer URL (signing config `oidcUrls`).
    pub oidc_url: &'a str,
    /// CA URL.
    pub fulcio_url: &'a str,
    /// Log URL.
    pub rekor_url: &'a str,
    /// The CA chain above leaves, DER, issuer first and root last.
    pub ca_chain: &'a [&'a [u8]],
    /// CT log key, DER SPKI (P-256).
    pub ctlog_key: &'a [u8],
    /// Transparency log key, DER SPKI (P-256).
    pub rekor_key: &'a [u8],
    /// Start of every validity range (RFC 3339): the root's notBefore, so it is stable across
    /// restarts and before every SCT and integrated time.
    pub valid_from: &'a str,
}

const OPERATOR: &str = "sigstack";
const P256: &str = "PKIX_ECDSA_P256_SHA_256";

impl TrustFiles<'_> {
    fn since(&self) -> TimeRange {
        TimeRange { start: self.valid_from.to_string(), end: None }
    }

    fn log(&self, url: &str, spki: &[u8]) -> TransparencyLogInstance {
        TransparencyLogInstance {
            base_url: url.to_string(),
            hash_algorithm: "SHA2_256".into(),
            public_key: PublicKey { raw_bytes: B64.encode(spki), key_details: P256.into(), valid_for: self.since() },
            log_id: LogId { key_id: B64.encode(digest(&SHA256, spki).as_ref()) },
        }
    }

    fn service(&self, url: &str) -> Service {
        Service { url: url.to_string(), major_api_version: 1, valid_for: self.since(), operator: OPERATOR.into() }
    }

    /// The trusted root.
    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot {
            media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
            tlogs: vec![self.log(self.rekor_url, self.rekor_key)],
            certificate_authorities: vec![CertificateAuthority {
                subject: DistinguishedName {
                    organization: "sigstack".into(),
                    common_name: "sigstack test CA (not for production)".into(),
                },
                uri: self.fulcio_url.to_string(),
                cert_chain: CertificateChain {
                    certificates: self
                        .ca_chain
                        .iter()
                        .map(|der| RawCertificate { raw_bytes: B64.encode(der) })
                        .collect(),
                },
                valid_for: self.since(),
            }],
            ctlogs: vec![self.log(self.fulcio_url, self.ctlog_key)],
            timestamp_authorities: vec![],
        }
    }

    /// The signing config: Fulcio and Rekor v1 (no v2 log, no TSA; clients then use the SET's
    /// integrated time).
    pub fn signing_config(&self) -> SigningConfig {
        SigningConfig {
            media_type: SIGNING_CONFIG_MEDIA_TYPE.into(),
            ca_urls: vec![self.service(self.fulcio_url)],
            oidc_urls: vec![self.service(self.oidc_url)],
            rekor_tlog_urls: vec![self.service(self.rekor_url)],
            tsa_urls: vec![],
            rekor_tlog_config: ServiceSelector { selector: Selector::Any },
            tsa_config: ServiceSelector { selector: Selector::Any },
        }
    }
}

use sigstack_wire::pem_lf as pem;

fn json(value: &impl serde::Serialize) -> Result<Vec<u8>, StateError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| StateError::corrupt(Path::new("trust"), e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Writes every trust file into `dir` (atomically, world-readable).
pub fn write_trust_dir(dir: &Path, files: &TrustFiles<'_>) -> Result<(), StateError> {
    let trusted_root = files.trusted_root();
    let signing_config = files.signing_config();
    let client = ClientTrustConfig {
        media_type: CLIENT_TRUST_CONFIG_MEDIA_TYPE.into(),
        trusted_root: trusted_root.clone(),
        signing_config: signing_config.clone(),
    };
    sigstack_state::write_public(&dir.join("trusted_root.json"), &json(&trusted_root)?)?;
    sigstack_state::write_public(&dir.join("signing_config.v0.2.json"), &json(&signing_config)?)?;
    sigstack_state::write_public(&dir.join("trust_config.json"), &json(&client)?)?;
    // cosign v2's SIGSTORE_ROOT_FILE and Kyverno's `roots`: root first, then the intermediate.
    let chain: String = files.ca_chain.iter().rev().map(|der| pem("CERTIFICATE", der)).collect();
    sigstack_state::write_public(&dir.join("fulcio-chain.pem"), chain.as_bytes())?;
    sigstack_state::write_public(&dir.join("rekor.pub"), pem("PUBLIC KEY", files.rekor_key).as_bytes())?;
    sigstack_state::write_public(&dir.join("ctlog.pub"), pem("PUBLIC KEY", files.ctlog_key).as_bytes())?;
    let env = format!(
        "# cosign v2 trust without TUF: `. {}`\nexport SIGSTORE_ROOT_FILE={}\nexport SIGSTORE_REKOR_PUBLIC_KEY={}\nexport SIGSTORE_CT_LOG_PUBLIC_KEY_FILE={}\n",
        dir.join("cosign.env").display(),
        shell_quote(&dir.join("fulcio-chain.pem")),
        shell_quote(&dir.join("rekor.pub")),
        shell_quote(&dir.join("ctlog.pub")),
    );
    sigstack_state::write_public(&dir.join("cosign.env"), env.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_with_the_exact_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let files = TrustFiles {
            oidc_url: "http://127.0.0.1:1",
            fulcio_url: "http://127.0.0.1:2",
            rekor_url: "http://127.0.0.1:3",
            ca_chain: &[b"intermediate", b"root"],
            ctlog_key: b"ct key",
            rekor_key: b"rekor key",
            valid_from: "2026-01-01T00:00:00Z",
        };
        write_trust_dir(dir.path(), &files).unwrap();
        for name in TRUST_FILES {
            assert!(dir.path().join(name).exists(), "{name}");
        }
        let root: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("trusted_root.json")).unwrap()).unwrap();
        assert_eq!(root["mediaType"], "application/vnd.dev.sigstore.trustedroot+json;version=0.1");
        assert_eq!(root["tlogs"][0]["hashAlgorithm"], "SHA2_256");
        assert_eq!(root["tlogs"][0]["logId"]["keyId"], B64.encode(digest(&SHA256, b"rekor key").as_ref()));
        assert_eq!(root["ctlogs"][0]["publicKey"]["validFor"]["start"], "2026-01-01T00:00:00Z");
        let chain = &root["certificateAuthorities"][0]["certChain"]["certificates"];
        assert_eq!(chain[0]["rawBytes"], B64.encode(b"intermediate"));
        assert_eq!(chain[1]["rawBytes"], B64.encode(b"root"), "root last");
        let config: ClientTrustConfig =
            serde_json::from_slice(&std::fs::read(dir.path().join("trust_config.json")).unwrap()).unwrap();
        assert_eq!(config.media_type, CLIENT_TRUST_CONFIG_MEDIA_TYPE);
        assert_eq!(config.signing_config.media_type, SIGNING_CONFIG_MEDIA_TYPE);
        assert_eq!(config.signing_config.rekor_tlog_urls[0].major_api_version, 1);
        assert_eq!(config.signing_config.ca_urls[0].operator, "sigstack");
        let env = std::fs::read_to_string(dir.path().join("cosign.env")).unwrap();
        assert!(env.contains("export SIGSTORE_ROOT_FILE='"));
        assert!(env.contains("SIGSTORE_REKOR_PUBLIC_KEY"));
        assert!(env.contains("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE"));
    }
}
