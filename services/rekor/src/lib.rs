//! A Rekor-style transparency log for local Sigstore stacks.
//!
//! An RFC 6962 Merkle tree over canonicalised entries (`hashedrekord` and `dsse` 0.0.1, with
//! Rekor's server-side canonicalisation), the Rekor v1 REST API, checkpoints as signed notes and
//! SETs, and durable storage in one append-only checksummed file: an entry is acknowledged only
//! after the batch holding it is fsynced (group commit, one checkpoint signature per batch).
//! [`v2`] is Rekor v2 (rekor-tiles) on the same storage and tree.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod entries;
mod error;
mod http;
mod index;
mod log;
pub mod merkle;
mod storage;
pub mod v2;

pub use entries::{Canonical, canonical_json, canonicalize, canonicalize_entry, pae};
pub use error::RekorError;
pub use http::{MAX_BODY_BYTES, router};
pub use log::{InclusionProof, LogEntry, LogInfo, TransparencyLog, Verification};
