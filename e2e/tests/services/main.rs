//! End-to-end tests that need only sigstack itself (and Debian's registry): every service's
//! answers to bad input, crash and disk-full recovery, the webhook, security defaults, the scripts.
//! One test binary per group of what the tests need (issue 25): each links the whole workspace.

mod apply;
mod architecture;
mod bad_cli_input;
mod bad_input;
mod conformance;
mod exposure;
mod fuzz_regressions;
mod oidc;
mod policy_probe;
mod registry_child;
mod rekor_crash;
mod rekor_disk;
mod rekor_v2_crash;
mod scripts;
mod security_defaults;
mod webhook;
