//! The artifact pipeline, client side: what CI does to prove an image, against a sigstack stack.
//!
//! It talks to the services only over HTTP, as a real client would, and writes signatures and
//! attestations in cosign's legacy registry format (`sha256-<hex>.sig` / `.att` tags, simple-signing
//! payloads and DSSE envelopes, the `dev.sigstore.cosign/*` annotations), so real cosign verifies
//! what it writes and it verifies what cosign writes. Verifying is the verification core's
//! (`sigstack-verify`): this crate finds the signatures on an image (cosign's tags, OCI referrers)
//! and hands each to it.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod bundle;
mod cosign;
mod error;
mod image;
mod keyless;
mod oci;
mod sbom;
mod sign_image;
mod sigstore_bundle;
mod verify;
mod verify_image;

pub use bundle::verify_bundles;
pub use cosign::tag_for;
pub use error::VerifyError;
pub use image::{BuildOutcome, ImageSource, build};
pub use keyless::{Services, SigningKey};
pub use oci::Registry;
pub use sbom::sbom;
// The verification core, re-exported so callers of the pipeline need one crate.
pub use sign_image::{AttestOutcome, Format, SignOutcome, attest, sign, sign_unlogged};
pub use sigstack_verify::{Artifact, Checks, IdentityPolicy, Trust, VerificationError, Verified, verify_bundle};
pub use sigstore_bundle::{SigningServices, read_signing_config, sign_bundle};
pub use verify::{verify_attestations, verify_signature};
pub use verify_image::{verify_image_attestations, verify_image_signatures};
