//! A mock OpenID Connect issuer for local Sigstore stacks.
//!
//! It mints tokens shaped like the ones GitHub Actions hands a workflow (the full claim set real
//! Fulcio requires, and no `email` claim, because clients sign `email` for proof of possession
//! when it is present) and plain email tokens, signs them with RS256 or ES256 keys kept in the
//! state directory, and serves discovery, the JWKS and an emulation of the Actions ambient-token
//! endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`).
//!
//! Domain code ([`Issuer`], [`TokenRequest`], [`SigningKeys`]) has no HTTP in it; [`router`] is
//! the thin axum layer on top, shared by the binary and the tests.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod claims;
mod error;
mod http;
mod issuer;
mod keys;

pub use claims::{DEFAULT_AUDIENCE, DEFAULT_GITHUB_ISSUER, Profile, TokenRequest, parse_ttl, unverified_claims};
pub use error::OidcError;
pub use http::{MAX_BODY_BYTES, router};
pub use issuer::{ACTIONS_TOKEN_PATH, Issuer, IssuerConfig};
pub use keys::{SigningAlg, SigningKeys};
