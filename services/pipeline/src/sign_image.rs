//! Signing and attesting an image, whatever the format: resolve the image to its digest once, get
//! a certificate, then write cosign's legacy tags or a Sigstore bundle attached as an OCI referrer.
//! The formats' modules do the writing; this one only dispatches (the mirror of verify_image).

use serde_json::{Value, json};

use crate::bundle::{COSIGN_SIGN_PREDICATE, attached, attest_bundle};
use crate::cosign::{ImageDigest, attest_legacy, sign_legacy};
use crate::keyless::{KeylessSigner, Services, SigningKey};
use crate::oci::Registry;
use crate::sigstore_bundle::SigningServices;

/// How a signature or attestation is attached to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// cosign's legacy tags (`sha256-<hex>.sig` / `.att`): what cosign v2 writes and Kyverno's
    /// default `type: Cosign` reads.
    #[default]
    Cosign,
    /// A Sigstore bundle (v0.3) as an OCI referrer: what cosign v3 writes by default and Kyverno's
    /// `type: SigstoreBundle` reads. Signatures are DSSE statements of type
    /// `https://sigstore.dev/cosign/sign/v1`, as cosign v3 makes them.
    Bundle,
}

/// What `sign` did.
#[derive(Debug, Clone)]
pub struct SignOutcome {
    /// The signed digest.
    pub digest: String,
    /// The tag the signature manifest is under.
    pub tag: String,
    /// The certificate identity.
    pub identity: String,
    /// Log index of the entry (none for [`sign_unlogged`]).
    pub log_index: Option<u64>,
    /// Signatures now attached to the digest.
    pub signatures: usize,
    /// The signing certificate (PEM).
    pub certificate: String,
}

/// What `attest` did.
#[derive(Debug, Clone)]
pub struct AttestOutcome {
    /// The attested digest.
    pub digest: String,
    /// The tag the attestation manifest is under.
    pub tag: String,
    /// The certificate identity.
    pub identity: String,
    /// Log index of the entry.
    pub log_index: u64,
    /// The predicate type.
    pub predicate_type: String,
}

/// What both formats start from: the image's digest (signatures name it, never a tag) and a
/// certificate for the token's identity.
struct Prepared {
    digest: String,
    repository: String,
    http: reqwest::Client,
    signer: KeylessSigner,
}

async fn prepare(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    key: Option<&SigningKey>,
) -> anyhow::Result<Prepared> {
    let reference = registry.reference(image)?;
    let digest = registry.resolve(&reference).await?;
    let repository = reference.repository().to_string();
    let http = reqwest::Client::new();
    let signer = match key {
        Some(key) => KeylessSigner::from_parts(key)?,
        None => KeylessSigner::new(&http, &services.fulcio, token).await?,
    };
    Ok(Prepared { digest, repository, http, signer })
}

/// Signs `image` keylessly: resolves it to its digest first, then signs a simple-signing payload
/// naming that digest (`Format::Cosign`), or a statement naming it in a bundle (`Format::Bundle`).
pub async fn sign(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    format: Format,
) -> anyhow::Result<SignOutcome> {
    let Prepared { digest, repository, http, signer } = prepare(registry, services, token, image, None).await?;
    match format {
        Format::Bundle => {
            // cosign v3's image signature: an in-toto v1 statement with an empty predicate.
            let statement = json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"digest": {"sha256": digest.trim_start_matches("sha256:")}, "annotations": {}}],
                "predicateType": COSIGN_SIGN_PREDICATE,
                "predicate": {}
            });
            let bundles = SigningServices::of(services);
            let (log_index, referrer) =
                attest_bundle(registry, &bundles, &http, &signer, &repository, &digest, &statement).await?;
            let signatures = attached(registry, &repository, &digest).await.map(|b| b.len()).unwrap_or(1);
            Ok(SignOutcome {
                digest,
                tag: referrer,
                identity: signer.identity,
                log_index: Some(log_index),
                signatures,
                certificate: signer.leaf_pem,
            })
        }
        Format::Cosign => {
            let image = ImageDigest { registry, repository: &repository, digest: &digest };
            let (tag, log_index, signatures) = sign_legacy(&image, Some(services), &http, &signer).await?;
            Ok(SignOutcome {
                digest,
                tag,
                identity: signer.identity,
                log_index,
                signatures,
                certificate: signer.leaf_pem,
            })
        }
    }
}

/// Signs `image` in cosign's format without a log entry (cosign's `--tlog-upload=false`): the
/// layer carries the certificate and chain but no log bundle. The certificate is a fresh one for
/// `token` from the CA in `services`, or `key`'s (one issued earlier; `token` is then unused). For
/// adversarial artifacts: a verifier that needs the log refuses it.
pub async fn sign_unlogged(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    key: Option<&SigningKey>,
) -> anyhow::Result<SignOutcome> {
    let Prepared { digest, repository, http, signer } = prepare(registry, services, token, image, key).await?;
    let image = ImageDigest { registry, repository: &repository, digest: &digest };
    let (tag, log_index, signatures) = sign_legacy(&image, None, &http, &signer).await?;
    Ok(SignOutcome { digest, tag, identity: signer.identity, log_index, signatures, certificate: signer.leaf_pem })
}

/// Attests `image` with `predicate` of `predicate_type`: an in-toto statement naming the image
/// digest, in a DSSE envelope signed keylessly and logged, attached in `format`.
pub async fn attest(
    registry: &Registry,
    services: &Services,
    token: &str,
    image: &str,
    predicate_type: &str,
    predicate: &Value,
    format: Format,
) -> anyhow::Result<AttestOutcome> {
    let Prepared { digest, repository, http, signer } = prepare(registry, services, token, image, None).await?;
    let (tag, log_index) = match format {
        Format::Bundle => {
            let statement = json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"digest": {"sha256": digest.trim_start_matches("sha256:")}}],
                "predicateType": predicate_type,
                "predicate": predicate
            });
            let bundles = SigningServices::of(services);
            let (log_index, referrer) =
                attest_bundle(registry, &bundles, &http, &signer, &repository, &digest, &statement).await?;
            (referrer, log_index)
        }
        Format::Cosign => {
            let image = ImageDigest { registry, repository: &repository, digest: &digest };
            attest_legacy(&image, services, &http, &signer, predicate_type, predicate).await?
        }
    };
    Ok(AttestOutcome { digest, tag, identity: signer.identity, log_index, predicate_type: predicate_type.into() })
}
