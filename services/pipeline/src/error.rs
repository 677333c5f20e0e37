//! Why verifying an image's signatures accepted nothing, for both formats (cosign's tags and
//! Sigstore bundles as referrers).

/// Why verification accepted nothing. The texts are cosign's (pkg/cosign/verify.go), which
/// Kyverno's messages embed, so a policy's denial reads the same from both.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The registry could not be asked (unreachable, refused, an error answer).
    #[error("{message}")]
    Registry {
        /// What failed, as the registry client said it.
        message: String,
        /// `host:port` of the registry.
        host: String,
        /// The connection was refused (nothing listens).
        refused: bool,
    },
    /// The image has no signatures (no `.sig` tag, or an empty one).
    #[error("no signatures found")]
    NoSignatures,
    /// Signatures exist, none verifies: why, one reason per signature.
    #[error("no matching signatures: {}", .0.join("\n "))]
    NoMatchingSignatures(Vec<String>),
    /// No attestation verifies (none exists when the list is empty): why, one per attestation.
    #[error("no matching attestations: {}", .0.join("\n "))]
    NoMatchingAttestations(Vec<String>),
}

impl VerifyError {
    /// A registry failure from the client's error (`host`: the registry's `host:port`).
    pub fn registry(error: anyhow::Error, host: &str) -> VerifyError {
        // The connection error sits deep in the client's error chain (oci-client → reqwest →
        // hyper → io::Error); its kind, not its text, says it was refused.
        let refused = error.chain().any(|cause| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause);
            while let Some(e) = source {
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
                source = e.source();
            }
            false
        });
        VerifyError::Registry { message: format!("{error:#}"), host: host.to_string(), refused }
    }
}
