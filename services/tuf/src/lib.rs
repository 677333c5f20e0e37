//! A TUF repository for a stack's trust material.
//!
//! Some clients take trust only through TUF (sigstore-js `verify`, `cosign initialize --mirror`),
//! so the stack publishes `trusted_root.json` and `signing_config.v0.2.json` as TUF targets, under
//! the names Sigstore clients look for, with root, targets, snapshot and timestamp metadata signed by
//! an Ed25519 key kept in the state directory (the key type every TUF client implements). The
//! metadata is built and signed by `tough`; this crate decides versions and expiry and serves the
//! files.
//!
//! Layout under the state directory: `tuf/key.pk8` (0600), `tuf/targets/` (the files published),
//! `tuf/repo/` (what is served: `N.root.json`, `N.targets.json`, `N.snapshot.json`,
//! `timestamp.json`, `targets/<sha256>.<name>`, consistent snapshots on).
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod repo;

pub use repo::{Published, ROOT_EXPIRY_DAYS, TOP_LEVEL_EXPIRY_DAYS, TufError, publish, router};
