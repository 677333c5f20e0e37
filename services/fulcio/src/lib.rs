//! A Fulcio-style certificate authority for local Sigstore stacks.
//!
//! It verifies an OIDC token against the configured issuers, checks the caller's proof of
//! possession (or CSR self-signature), and issues a 10-minute code-signing certificate with
//! Fulcio's profile (empty subject, one critical SAN, the Sigstore OID extensions) and exactly one
//! embedded SCT from its own CT log key. Real clients (cosign, sigstore-python, sigstore-js, the
//! `sigstore` crate) accept it as they accept Fulcio.
//!
//! Domain code ([`CertificateAuthority`], [`TokenVerifier`], [`SubjectKey`]) has no HTTP in it;
//! [`router`] is the thin axum layer.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod ca;
mod error;
mod http;
mod identity;
mod keys;
mod oid;
mod sct;
mod service;

pub use ca::{CaMaterial, CertificateAuthority, IssuedChain};
pub use error::{FulcioError, TokenError};
pub use http::{MAX_BODY_BYTES, router};
pub use identity::{Identity, IssuerKind, IssuerSpec, KeySource, OidcIssuer, Principal, TokenVerifier};
pub use keys::{KeyKind, SubjectKey, Verifier, verify_csr};
pub use sct::{AddedPrecert, CtLog, precert_signed_data};
pub use service::{Fulcio, KeyProof};

/// Constants a verifier needs to find what this CA writes.
pub mod oids {
    pub use crate::oid::*;
}
