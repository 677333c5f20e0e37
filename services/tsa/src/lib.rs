//! An RFC 3161 timestamp authority for local Sigstore stacks, with sigstore/timestamp-authority's
//! HTTP API (`POST /api/v1/timestamp` in DER or JSON, `GET /api/v1/timestamp/certchain`). Its
//! timestamps are verified by the verification core (`sigstack-verify`), like anyone's. The ASN.1 is RustCrypto's
//! (`x509-tsp`, `cms`, `cmpv2`, `x509-cert`); nothing here writes DER by hand.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod authority;
mod error;
mod http;
mod oid;

pub use authority::{DEFAULT_POLICY, HashAlgorithm, TimestampAuthority, TimestampRequest};
pub use error::TsaError;
pub use http::{MAX_BODY_BYTES, router};
