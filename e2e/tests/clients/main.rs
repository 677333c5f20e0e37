//! End-to-end tests with the real Sigstore clients as judges: cosign v2 and v3, sigstore-python,
//! sigstore-go, sigstore-js, the Rust sigstore crate, rekor-cli, actionlint and Chromium, all
//! installed by scripts/install.sh.

mod admission;
mod cosign;
mod exec;
mod explorer;
mod forgery;
mod fulcio_clients;
mod github_action;
mod pipeline;
mod python_client;
mod real_fulcio;
mod real_rekor_v1;
mod real_rekor_v2;
mod real_tsa;
mod rekor_cli;
mod rekor_v2;
mod sigstore_crate;
mod tuf_and_js;
