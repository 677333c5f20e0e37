//! The one verifier under every sigstack path (`verify`, `verify-attestation`, `verify-bundle`,
//! admission's attestors, the webhook): Sigstore material of any origin, judged as sigstore-go
//! judges it, with each refusal naming the check that failed.
//!
//! Layers, bottom up (no module imports one above it):
//! - [`VerificationError`] and the [`Trust`] a trusted root or a Kyverno attestor gives;
//! - the checks, each on its own: certificate paths per RFC 5280 with rustls-webpki ([`chain`]),
//!   embedded SCTs ([`sct`]), log entries with their promises, proofs and checkpoints ([`tlog`]),
//!   RFC 3161 timestamps ([`timestamp`]), identity ([`IdentityPolicy`]) and the binding of a signed
//!   payload to its artifact ([`Artifact`]);
//! - Sigstore bundles ([`verify_bundle`]) on top of them. cosign's legacy registry format, a
//!   sibling of the bundle format, lives in the pipeline crate and uses the same checks.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod artifact;
mod bundle;
pub mod chain;
mod encoding;
mod error;
mod identity;
mod note;
pub mod sct;
pub mod timestamp;
pub mod tlog;
mod trust;

pub use artifact::{Artifact, IN_TOTO, SignedContent, decode_hex, statement_covers};
pub use bundle::{Checks, Verified, verify_bundle};
pub use chain::{VerifiedCertificate, verify_certificate};
pub use error::VerificationError;
pub use identity::{CertificateIdentity, IdentityPolicy};
pub use note::{Checkpoint, verify_note};
pub use trust::{CertificateAuthority, CtLog, TimestampAuthority, TransparencyLog, Trust, Validity};

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
