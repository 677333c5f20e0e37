use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sigstack_state::StateError;

use crate::model::*;

/// Every file [`write_trust_dir`] writes for a v1 stack, relative to the trust directory. A
/// stack with a v2 log adds `rekor-v2.pub`, one with a TSA `tsa-chain.pem`; a v2-only stack has
/// no `rekor.pub` (and `cosign.env` names no log key).
pub const TRUST_FILES: &[&str] = &[
    "trusted_root.json",
    "signing_config.v0.2.json",
    "trust_config.json",
    "fulcio-chain.pem",
    "rekor.pub",
    "ctlog.pub",
    "cosign.env",
];

/// A transparency log as the trust files name it.
#[derive(Debug, Clone, Copy)]
pub struct LogKey<'a> {
    /// Its base URL.
    pub url: &'a str,
    /// Its key, DER SPKI: P-256 for v1, Ed25519 for v2.
    pub spki: &'a [u8],
}

/// A Rekor v2 log: its checkpoint key ID comes from its name, not from the key alone.
#[derive(Debug, Clone, Copy)]
pub struct V2LogKey<'a> {
    /// URL and Ed25519 key.
    pub log: LogKey<'a>,
    /// The 32-byte checkpoint key ID (C2SP note key ID under the log's origin).
    pub key_id: &'a [u8],
}

/// A timestamp authority.
#[derive(Debug, Clone, Copy)]
pub struct TsaKey<'a> {
    /// The full timestamp URL (`.../api/v1/timestamp`), as signing configs list it.
    pub url: &'a str,
    /// Its chain, DER, leaf first and root last.
    pub chain: &'a [&'a [u8]],
    /// Start of its validity (RFC 3339).
    pub valid_from: &'a str,
}

/// What a stack's trust files are made of.
#[derive(Debug, Clone)]
pub struct TrustFiles<'a> {
    /// Issuer URL (signing config `oidcUrls`).
    pub oidc_url: &'a str,
    /// CA URL.
    pub fulcio_url: &'a str,
    /// The Rekor v1 log, if the stack runs one.
    pub rekor: Option<LogKey<'a>>,
    /// The Rekor v2 log, if the stack runs one.
    pub rekor_v2: Option<V2LogKey<'a>>,
    /// The timestamp authority, if the stack runs one.
    pub tsa: Option<TsaKey<'a>>,
    /// The CA chain above leaves, DER, issuer first and root last.
    pub ca_chain: &'a [&'a [u8]],
    /// CT log key, DER SPKI (P-256).
    pub ctlog_key: &'a [u8],
    /// Start of every validity range (RFC 3339): the root's notBefore, so it is stable across
    /// restarts and before every SCT and integrated time.
    pub valid_from: &'a str,
}

const OPERATOR: &str = "sigstack";
const P256: &str = "PKIX_ECDSA_P256_SHA_256";
const ED25519: &str = "PKIX_ED25519";

impl TrustFiles<'_> {
    fn since(&self) -> TimeRange {
        TimeRange { start: self.valid_from.to_string(), end: None }
    }

    fn log(&self, log: &LogKey<'_>) -> TransparencyLogInstance {
        TransparencyLogInstance {
            base_url: log.url.to_string(),
            hash_algorithm: "SHA2_256".into(),
            public_key: PublicKey {
                raw_bytes: B64.encode(log.spki),
                key_details: P256.into(),
                valid_for: self.since(),
            },
            log_id: LogId { key_id: B64.encode(digest(&SHA256, log.spki).as_ref()) },
            checkpoint_key_id: None,
        }
    }

    fn v2_log(&self, v2: &V2LogKey<'_>) -> TransparencyLogInstance {
        let key_id = LogId { key_id: B64.encode(v2.key_id) };
        TransparencyLogInstance {
            public_key: PublicKey {
                raw_bytes: B64.encode(v2.log.spki),
                key_details: ED25519.into(),
                valid_for: self.since(),
            },
            log_id: key_id.clone(),
            checkpoint_key_id: Some(key_id),
            ..self.log(&v2.log)
        }
    }

    fn service(&self, url: &str, major_api_version: u32) -> Service {
        Service { url: url.to_string(), major_api_version, valid_for: self.since(), operator: OPERATOR.into() }
    }

    /// The trusted root: the CA and its CT key, every log the stack runs, its TSA.
    pub fn trusted_root(&self) -> TrustedRoot {
        let chain = |certificates: &[&[u8]]| CertificateChain {
            certificates: certificates.iter().map(|der| RawCertificate { raw_bytes: B64.encode(der) }).collect(),
        };
        TrustedRoot {
            media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
            tlogs: self
                .rekor
                .iter()
                .map(|log| self.log(log))
                .chain(self.rekor_v2.iter().map(|v2| self.v2_log(v2)))
                .collect(),
            certificate_authorities: vec![CertificateAuthority {
                subject: DistinguishedName {
                    organization: "sigstack".into(),
                    common_name: "sigstack test CA (not for production)".into(),
                },
                uri: self.fulcio_url.to_string(),
                cert_chain: chain(self.ca_chain),
                valid_for: self.since(),
            }],
            ctlogs: vec![self.log(&LogKey { url: self.fulcio_url, spki: self.ctlog_key })],
            timestamp_authorities: self
                .tsa
                .iter()
                .map(|tsa| CertificateAuthority {
                    subject: DistinguishedName {
                        organization: "sigstack".into(),
                        common_name: "sigstack test timestamp authority (not for production)".into(),
                    },
                    uri: tsa.url.to_string(),
                    cert_chain: chain(tsa.chain),
                    valid_for: TimeRange { start: tsa.valid_from.to_string(), end: None },
                })
                .collect(),
        }
    }

    /// The signing config: the CA, the issuer, the logs (a v2 log first: clients take the
    /// highest API version they support, so v2-capable clients sign to it and older ones to v1)
    /// and the TSA.
    pub fn signing_config(&self) -> SigningConfig {
        SigningConfig {
            media_type: SIGNING_CONFIG_MEDIA_TYPE.into(),
            ca_urls: vec![self.service(self.fulcio_url, 1)],
            oidc_urls: vec![self.service(self.oidc_url, 1)],
            rekor_tlog_urls: self
                .rekor_v2
                .iter()
                .map(|v2| self.service(v2.log.url, 2))
                .chain(self.rekor.iter().map(|log| self.service(log.url, 1)))
                .collect(),
            tsa_urls: self.tsa.iter().map(|tsa| self.service(tsa.url, 1)).collect(),
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
    let rekor_pub = dir.join("rekor.pub");
    match &files.rekor {
        Some(log) => sigstack_state::write_public(&rekor_pub, pem("PUBLIC KEY", log.spki).as_bytes())?,
        // A v2-only stack: no v1 key may linger from an earlier start.
        None => drop(std::fs::remove_file(&rekor_pub)),
    }
    if let Some(v2) = &files.rekor_v2 {
        sigstack_state::write_public(&dir.join("rekor-v2.pub"), pem("PUBLIC KEY", v2.log.spki).as_bytes())?;
    }
    if let Some(tsa) = &files.tsa {
        let chain: String = tsa.chain.iter().map(|der| pem("CERTIFICATE", der)).collect();
        sigstack_state::write_public(&dir.join("tsa-chain.pem"), chain.as_bytes())?;
    }
    sigstack_state::write_public(&dir.join("ctlog.pub"), pem("PUBLIC KEY", files.ctlog_key).as_bytes())?;
    let rekor_line = match files.rekor {
        Some(_) => format!("export SIGSTORE_REKOR_PUBLIC_KEY={}\n", shell_quote(&rekor_pub)),
        None => String::new(),
    };
    let env = format!(
        "# cosign v2 trust without TUF: `. {}`\nexport SIGSTORE_ROOT_FILE={}\n{rekor_line}export SIGSTORE_CT_LOG_PUBLIC_KEY_FILE={}\n",
        dir.join("cosign.env").display(),
        shell_quote(&dir.join("fulcio-chain.pem")),
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
            rekor: Some(LogKey { url: "http://127.0.0.1:3", spki: b"rekor key" }),
            rekor_v2: None,
            tsa: None,
            ca_chain: &[b"intermediate", b"root"],
            ctlog_key: b"ct key",
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
        assert!(root["timestampAuthorities"].as_array().unwrap().is_empty());
        assert!(root["tlogs"][0].get("checkpointKeyId").is_none());
    }

    #[test]
    fn a_v2_log_and_a_tsa_are_listed_as_clients_expect() {
        let dir = tempfile::tempdir().unwrap();
        let files = TrustFiles {
            oidc_url: "http://127.0.0.1:1",
            fulcio_url: "http://127.0.0.1:2",
            rekor: Some(LogKey { url: "http://127.0.0.1:3", spki: b"v1 key" }),
            rekor_v2: Some(V2LogKey { log: LogKey { url: "http://127.0.0.1:4", spki: b"ed key" }, key_id: &[7u8; 32] }),
            tsa: Some(TsaKey {
                url: "http://127.0.0.1:5/api/v1/timestamp",
                chain: &[b"tsa leaf", b"tsa root"],
                valid_from: "2026-02-01T00:00:00Z",
            }),
            ca_chain: &[b"intermediate", b"root"],
            ctlog_key: b"ct key",
            valid_from: "2026-01-01T00:00:00Z",
        };
        write_trust_dir(dir.path(), &files).unwrap();
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap()
        };
        let root = read("trusted_root.json");
        let v2 = &root["tlogs"][1];
        assert_eq!(v2["baseUrl"], "http://127.0.0.1:4");
        assert_eq!(v2["publicKey"]["keyDetails"], "PKIX_ED25519");
        assert_eq!(v2["logId"]["keyId"], B64.encode([7u8; 32]));
        assert_eq!(v2["checkpointKeyId"]["keyId"], B64.encode([7u8; 32]));
        let tsa = &root["timestampAuthorities"][0];
        assert_eq!(tsa["uri"], "http://127.0.0.1:5/api/v1/timestamp");
        assert_eq!(tsa["certChain"]["certificates"][0]["rawBytes"], B64.encode(b"tsa leaf"), "leaf first");
        assert_eq!(tsa["validFor"]["start"], "2026-02-01T00:00:00Z");
        let config = read("signing_config.v0.2.json");
        let logs = config["rekorTlogUrls"].as_array().unwrap();
        assert_eq!(
            (logs[0]["url"].as_str(), logs[0]["majorApiVersion"].as_u64()),
            (Some("http://127.0.0.1:4"), Some(2))
        );
        assert_eq!(logs[1]["majorApiVersion"], 1);
        assert_eq!(config["tsaUrls"][0]["url"], "http://127.0.0.1:5/api/v1/timestamp");
        assert!(dir.path().join("rekor-v2.pub").exists() && dir.path().join("tsa-chain.pem").exists());
    }
}
