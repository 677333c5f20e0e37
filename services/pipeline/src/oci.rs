//! Registry access through `oci-client`, with manifests kept as raw JSON so cosign's annotations
//! and media types pass through untouched.

use anyhow::Context;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// OCI image manifest media type.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPTED: &[&str] = &[
    OCI_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A registry client for one registry host.
pub struct Registry {
    client: Client,
    /// `host:port` of the registry.
    pub host: String,
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&sha256(bytes)))
}

impl Registry {
    /// A client for the registry at `url` (`http://127.0.0.1:PORT` or `https://...`), giving up on
    /// a registry that does not answer after 5 s to connect or 8 s to read.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Self::with_timeout(url, std::time::Duration::from_secs(8))
    }

    /// [`Registry::new`] with another read timeout (the connect timeout is at most 5 s).
    pub fn with_timeout(url: &str, read_timeout: std::time::Duration) -> anyhow::Result<Self> {
        let (scheme, host) = url.split_once("://").unwrap_or(("https", url));
        let host = host.trim_end_matches('/').to_string();
        let protocol = if scheme == "http" { ClientProtocol::Http } else { ClientProtocol::Https };
        // Bounded: a registry that stops answering is an error after seconds, never a hang
        // (admission then decides by failurePolicy).
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(read_timeout.min(std::time::Duration::from_secs(5))),
            read_timeout: Some(read_timeout),
            ..Default::default()
        };
        Ok(Registry { client: Client::new(config), host })
    }

    /// A reference in this registry: `repository:tag` or `repository@sha256:...`.
    pub fn reference(&self, image: &str) -> anyhow::Result<Reference> {
        let full = if image.starts_with(&self.host) { image.to_string() } else { format!("{}/{image}", self.host) };
        full.parse::<Reference>().with_context(|| format!("{image:?} is not an image reference"))
    }

    /// The digest a reference names now (a tag is resolved once; everything after keys on it).
    pub async fn resolve(&self, reference: &Reference) -> anyhow::Result<String> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_string());
        }
        self.client
            .fetch_manifest_digest(reference, &RegistryAuth::Anonymous)
            .await
            .with_context(|| format!("resolve {reference}"))
    }

    /// The raw manifest and its digest, or `None` if the tag or digest does not exist.
    pub async fn manifest(&self, reference: &Reference) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        match self.client.pull_manifest_raw(reference, &RegistryAuth::Anonymous, ACCEPTED).await {
            Ok((bytes, digest)) => Ok(Some((bytes.to_vec(), digest))),
            Err(oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_)) => Ok(None),
            Err(oci_client::errors::OciDistributionError::RegistryError { envelope, .. })
                if envelope.errors.iter().any(|e| format!("{:?}", e.code).contains("ManifestUnknown")) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("fetch manifest {reference}")),
        }
    }

    /// A blob by digest.
    pub async fn blob(&self, reference: &Reference, digest: &str) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.client.pull_blob(reference, digest, &mut out).await.with_context(|| format!("fetch blob {digest}"))?;
        if sha256_digest(&out) != digest {
            anyhow::bail!("blob {digest} does not match its digest");
        }
        Ok(out)
    }

    /// Uploads a blob; returns its digest.
    pub async fn push_blob(&self, reference: &Reference, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = sha256_digest(bytes);
        self.client
            .push_blob(reference, bytes.to_vec(), &digest)
            .await
            .with_context(|| format!("push blob {digest}"))?;
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag); returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> anyhow::Result<String> {
        let content_type = media_type.parse().context("media type")?;
        self.client
            .push_manifest_raw(reference, manifest.to_vec(), content_type)
            .await
            .with_context(|| format!("push manifest {reference}"))?;
        Ok(sha256_digest(manifest))
    }

    /// `repository:tag` in this registry.
    pub fn tagged(&self, repository: &str, tag: &str) -> anyhow::Result<Reference> {
        format!("{}/{repository}:{tag}", self.host).parse::<Reference>().context("reference")
    }

    /// `repository@digest` in this registry.
    pub fn tagged_digest(&self, repository: &str, digest: &str) -> anyhow::Result<Reference> {
        format!("{}/{repository}@{digest}", self.host).parse::<Reference>().context("reference")
    }
}
