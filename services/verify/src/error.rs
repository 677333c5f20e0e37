//! Why verification refused, one variant per check, so every message names the check that failed.

/// A refusal. The `Display` text starts with the check's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationError {
    /// The bundle or signature is malformed or of a version not read here.
    #[error("bundle: {0}")]
    Bundle(String),
    /// The trusted root (or the attestor's trust) is malformed or lacks what the check needs.
    #[error("trusted root: {0}")]
    Trust(String),
    /// The certificate path to a trusted CA (issuer not a CA, no anchor, pathLen, signatures).
    #[error("certificate chain: {0}")]
    Chain(String),
    /// The certificate is not for this use (extended or plain key usage).
    #[error("certificate usage: {0}")]
    Usage(String),
    /// A certificate or a trusted-root entry was not valid at the verified time.
    #[error("validity: {0}")]
    Validity(String),
    /// The embedded signed certificate timestamp.
    #[error("SCT: {0}")]
    Sct(String),
    /// The transparency log entry (its promise, or its content against the bundle).
    #[error("log entry: {0}")]
    LogEntry(String),
    /// The log that made the entry is not trusted. cosign's words (pkg/cosign/verify.go), which
    /// Kyverno's messages carry, so a denial reads the same from sigstack and Kyverno.
    #[error("error verifying bundle: verifying bundle: rekor log public key not found for payload")]
    UnknownLog,
    /// The Merkle inclusion proof.
    #[error("inclusion proof: {0}")]
    InclusionProof(String),
    /// The checkpoint (signed tree head) of an inclusion proof.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An RFC 3161 timestamp.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// The signer is not who the policy asks for.
    #[error("identity: {0}")]
    Identity(String),
    /// What was signed is not the artifact.
    #[error("artifact binding: {0}")]
    Artifact(String),
    /// The signature does not verify with the signer's key.
    #[error("signature: {0}")]
    Signature(String),
}
