//! The explorer: a web page, served by the stack itself, that shows a whole sign → log → attest →
//! admit chain live, for demos and onboarding. It reads the stack as any client does (the URLs of
//! `stack.json`, the trust files) and checks what it shows: checkpoints with the logs' keys,
//! inclusion and consistency proofs, certificates and their SCTs, signatures on images.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod http;
mod live;
mod model;
mod pages;
mod source;

pub use http::router;
pub use live::Activity;
pub use model::{
    CertView, EntryView, Head, LogKind, SignerView, certificate, decode_body, extension_name, verify_v1_checkpoint,
};
pub use source::{Explorer, ExplorerConfig, ImageView, SbomSummary, SeenHead, sbom_summary};
