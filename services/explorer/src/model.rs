//! What the explorer shows, decoded from what the stack's services answer: log entries (v1 and
//! v2 bodies), the certificates in them, checkpoints. No HTTP here: these are pure functions of
//! bytes and the stack's trust material, unit-tested on their own.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::Decode;
use serde_json::Value;
use sigstack_fulcio::{KeyKind, SubjectKey};
use sigstack_pipeline::Trust;

/// Which log an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Rekor v1.
    V1,
    /// Rekor v2 (tiles).
    V2,
}

impl LogKind {
    /// As the page names it.
    pub fn name(self) -> &'static str {
        match self {
            LogKind::V1 => "Rekor v1",
            LogKind::V2 => "Rekor v2",
        }
    }

    /// As URLs name it.
    pub fn slug(self) -> &'static str {
        match self {
            LogKind::V1 => "v1",
            LogKind::V2 => "v2",
        }
    }
}

/// A certificate the CA issued, decoded and checked.
#[derive(Debug, Clone)]
pub struct CertView {
    /// Subject alternative names.
    pub san: Vec<String>,
    /// OIDC issuer.
    pub issuer: Option<String>,
    /// Validity (unix seconds).
    pub not_before: u64,
    /// Validity end (unix seconds).
    pub not_after: u64,
    /// Sigstore extensions: (arc number, name, value).
    pub extensions: Vec<(u32, &'static str, String)>,
    /// The key in it.
    pub key_type: String,
    /// Whether its chain ends in the stack's CA (Err: why not).
    pub chain: Result<(), String>,
    /// Whether its embedded SCT verifies with the stack's CT key.
    pub sct: Result<(), String>,
}

/// Who signed an entry.
#[derive(Debug, Clone)]
pub enum SignerView {
    /// A Fulcio certificate.
    Certificate(Box<CertView>),
    /// A bare public key.
    Key(String),
    /// Nothing readable.
    Unknown(String),
}

impl SignerView {
    /// The identity to show in one line.
    pub fn identity(&self) -> String {
        match self {
            SignerView::Certificate(cert) => cert.san.join(", "),
            SignerView::Key(kind) => format!("a bare {kind} key"),
            SignerView::Unknown(why) => why.clone(),
        }
    }

    /// The certificate, if there is one.
    pub fn certificate(&self) -> Option<&CertView> {
        match self {
            SignerView::Certificate(cert) => Some(cert),
            _ => None,
        }
    }
}

/// A log entry, decoded.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// The log.
    pub log: LogKind,
    /// Its index.
    pub index: u64,
    /// v1 UUID (tree ID and leaf hash).
    pub uuid: Option<String>,
    /// `hashedrekord`, `dsse`, ...
    pub kind: String,
    /// `0.0.1`, `0.0.2`.
    pub version: String,
    /// What it is about: the artifact digest (hashedrekord) or the DSSE payload digest.
    pub digest: Option<String>,
    /// Who signed it.
    pub signer: SignerView,
    /// When the log integrated it (v1; v2 entries carry no time, a TSA gives it).
    pub integrated_time: Option<i64>,
    /// The inclusion check against the current checkpoint: Ok(what was checked) or Err(why not).
    pub inclusion: Result<String, String>,
}

/// Fulcio's names for the Sigstore OID arc 1.3.6.1.4.1.57264.1 (fulcio docs/oid-info.md).
pub fn extension_name(arc: u32) -> &'static str {
    match arc {
        1 => "Issuer (deprecated)",
        2 => "GitHub Workflow Trigger (deprecated)",
        3 => "GitHub Workflow SHA (deprecated)",
        4 => "GitHub Workflow Name (deprecated)",
        5 => "GitHub Workflow Repository (deprecated)",
        6 => "GitHub Workflow Ref (deprecated)",
        8 => "Issuer",
        9 => "Build Signer URI",
        10 => "Build Signer Digest",
        11 => "Runner Environment",
        12 => "Source Repository URI",
        13 => "Source Repository Digest",
        14 => "Source Repository Ref",
        15 => "Source Repository Identifier",
        16 => "Source Repository Owner URI",
        17 => "Source Repository Owner Identifier",
        18 => "Build Config URI",
        19 => "Build Config Digest",
        20 => "Build Trigger",
        21 => "Run Invocation URI",
        22 => "Source Repository Visibility At Signing",
        23 => "Deployment Environment",
        _ => "Sigstore extension",
    }
}

fn key_type(key: &SubjectKey) -> String {
    match key.kind() {
        KeyKind::P256 => "ECDSA P-256",
        KeyKind::P384 => "ECDSA P-384",
        KeyKind::P521 => "ECDSA P-521",
        KeyKind::Rsa => "RSA",
        KeyKind::Ed25519 => "Ed25519",
        _ => "other",
    }
    .to_string()
}

/// Decodes and checks a certificate against the stack's CA chain and CT key.
pub fn certificate(der_bytes: &[u8], trust: &Trust) -> Result<CertView, String> {
    let cert = x509_cert::Certificate::from_der(der_bytes).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let (not_before, not_after) =
        (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs());
    let pem = sigstack_wire::pem_lf("CERTIFICATE", der_bytes);
    let parsed = sigstack_fulcio::Verifier::parse("certificate", pem.as_bytes()).map_err(|e| e.to_string())?;
    let checked = sigstack_verify::verify_certificate(trust, der_bytes, &[], not_before + 1);
    let sct = match &checked {
        Ok(leaf) => {
            sigstack_verify::sct::verify_embedded_scts(trust, der_bytes, &leaf.issuer_spki).map_err(|e| e.to_string())
        }
        Err(_) => Err("not checked: the certificate does not chain to the trusted root".into()),
    };
    Ok(match checked {
        Ok(verified) => CertView {
            san: verified.identity.san.clone(),
            issuer: verified.identity.issuer.clone(),
            not_before,
            not_after,
            extensions: verified
                .identity
                .extensions
                .iter()
                .map(|(arc, value)| (*arc, extension_name(*arc), value.clone()))
                .collect(),
            key_type: key_type(&verified.key),
            chain: Ok(()),
            sct,
        },
        Err(e) => CertView {
            san: parsed.subjects(),
            issuer: None,
            not_before,
            not_after,
            extensions: Vec::new(),
            key_type: key_type(&parsed.key),
            chain: Err(e.to_string()),
            sct,
        },
    })
}

fn signer_from_pem_b64(field: Option<&str>, trust: &Trust) -> SignerView {
    let Some(pem) = field.and_then(|b64| B64.decode(b64).ok()) else {
        return SignerView::Unknown("no signer in the entry".into());
    };
    match sigstack_fulcio::Verifier::parse("verifier", &pem) {
        Ok(verifier) => match &verifier.certificate_der {
            Some(der) => match certificate(der, trust) {
                Ok(view) => SignerView::Certificate(Box::new(view)),
                Err(e) => SignerView::Unknown(e),
            },
            None => SignerView::Key(key_type(&verifier.key)),
        },
        Err(e) => SignerView::Unknown(e.to_string()),
    }
}

fn signer_from_v2(verifier: &Value, trust: &Trust) -> SignerView {
    let raw = |v: &Value| v["rawBytes"].as_str().and_then(|b| B64.decode(b).ok());
    if let Some(der) = raw(&verifier["x509Certificate"]) {
        return match certificate(&der, trust) {
            Ok(view) => SignerView::Certificate(Box::new(view)),
            Err(e) => SignerView::Unknown(e),
        };
    }
    match raw(&verifier["publicKey"]).map(|der| SubjectKey::from_spki_der(&der)) {
        Some(Ok(key)) => SignerView::Key(key_type(&key)),
        _ => SignerView::Unknown("no signer in the entry".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The decodable part of an entry body: kind, version, digest, signer.
pub fn decode_body(body: &[u8], trust: &Trust) -> (String, String, Option<String>, SignerView) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ("?".into(), "?".into(), None, SignerView::Unknown("the body is not JSON".into()));
    };
    let kind = value["kind"].as_str().unwrap_or("?").to_string();
    let version = value["apiVersion"].as_str().unwrap_or("?").to_string();
    let spec = &value["spec"];
    let b64_digest = |v: &Value| v.as_str().and_then(|d| B64.decode(d).ok()).map(|d| format!("sha256:{}", hex(&d)));
    let (digest, signer) = match (kind.as_str(), version.as_str()) {
        ("hashedrekord", "0.0.1") => (
            spec["data"]["hash"]["value"].as_str().map(|h| format!("sha256:{h}")),
            signer_from_pem_b64(spec["signature"]["publicKey"]["content"].as_str(), trust),
        ),
        ("dsse", "0.0.1") => (
            spec["payloadHash"]["value"].as_str().map(|h| format!("sha256:{h}")),
            signer_from_pem_b64(spec["signatures"][0]["verifier"].as_str(), trust),
        ),
        ("intoto", _) => (
            spec["content"]["payloadHash"]["value"].as_str().map(|h| format!("sha256:{h}")),
            signer_from_pem_b64(spec["publicKey"].as_str(), trust),
        ),
        ("hashedrekord", "0.0.2") => {
            let entry = &spec["hashedRekordV002"];
            (b64_digest(&entry["data"]["digest"]), signer_from_v2(&entry["signature"]["verifier"], trust))
        }
        ("dsse", "0.0.2") => {
            let entry = &spec["dsseV002"];
            (b64_digest(&entry["payloadHash"]["digest"]), signer_from_v2(&entry["signatures"][0]["verifier"], trust))
        }
        _ => (None, SignerView::Unknown(format!("a {kind} {version} entry"))),
    };
    (kind, version, digest, signer)
}

/// A checked checkpoint: size and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: [u8; 32],
}

/// Verifies a Rekor v1 checkpoint (`<origin> - <treeID>`, ECDSA signature line) with the v1 key.
pub fn verify_v1_checkpoint(note: &str, trust: &Trust) -> Result<Head, String> {
    let log = trust.rekor_v1().ok_or("the trusted root lists no Rekor v1 log")?;
    let checkpoint = sigstack_verify::verify_note(note, &log.spki, &log.key_id, None).map_err(|e| e.to_string())?;
    Ok(Head { size: checkpoint.size, root: checkpoint.root })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_github_claims() {
        assert_eq!(extension_name(12), "Source Repository URI");
        assert_eq!(extension_name(20), "Build Trigger");
        assert_eq!(extension_name(99), "Sigstore extension");
    }

    #[test]
    fn bodies_that_are_not_entries_decode_to_a_reason() {
        let trust = Trust::default();
        let (kind, _, digest, signer) = decode_body(b"not json", &trust);
        assert_eq!((kind.as_str(), digest), ("?", None));
        assert!(matches!(signer, SignerView::Unknown(_)));
        let (kind, version, digest, _) = decode_body(
            br#"{"kind":"hashedrekord","apiVersion":"0.0.2","spec":{"hashedRekordV002":{"data":{"digest":"AAAA"}}}}"#,
            &trust,
        );
        assert_eq!(
            (kind.as_str(), version.as_str(), digest.as_deref()),
            ("hashedrekord", "0.0.2", Some("sha256:000000"))
        );
    }
}
