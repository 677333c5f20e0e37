//! sigstack as a library: a whole local Sigstore stack (issuer, CA, log, TUF repository, registry)
//! in one process, and a kit for tests that want one per test.
//!
//! The `sigstack` binary is a command line over this library; [`testkit::Stack`] gives a test its
//! own stack on ephemeral ports in a temporary directory, stopped and removed when dropped.
#![warn(missing_docs)]

pub mod assemble;
pub mod child;
pub mod cluster;
pub mod embedded;
pub mod env;
pub mod policy_probe;
pub mod registry;
pub mod server;
pub mod stack;
pub mod testkit;
pub mod verifier;
