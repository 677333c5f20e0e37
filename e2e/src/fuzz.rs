//! The fuzz harnesses: one function per target, shared by the libFuzzer binaries in fuzz/ (nightly,
//! `scripts/fuzz.sh`) and the regression test that replays fuzz/seeds and fuzz/regressions on
//! stable. Each panics exactly when the code under test misbehaves: a panic inside it, or a 5xx for
//! input a client sent.

use axum::body::Body;
use axum::http::{Method, Request};

use crate::services::{Routers, Service};

/// A harness: panics when the code under test misbehaves on `data`.
pub type Harness = fn(&[u8]);

/// Every target by name, as fuzz/Cargo.toml names the binaries.
pub const TARGETS: &[(&str, Harness)] = &[
    ("log_entry", log_entry),
    ("log_http", log_http),
    ("signing_cert", signing_cert),
    ("csr", csr),
    ("policy", policy),
    ("admission_review", admission_review),
    ("log_v2_http", log_v2_http),
    ("timestamp", timestamp),
];

fn request(method: Method, uri: &str, body: &[u8]) -> Option<Request<Body>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .ok()
}

fn no_server_error(service: Service, request: Option<Request<Body>>) {
    // An input that is not even a valid URI never reaches a service: nothing to test.
    let Some(request) = request else { return };
    let what = format!("{} {}", request.method(), request.uri());
    let (status, body) = Routers::shared().call(service, request);
    assert!(!status.is_server_error(), "{service:?} answered {status} to {what}: {}", String::from_utf8_lossy(&body));
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok() || status.is_success(), "{what}: not JSON");
}

/// Log entry canonicalisation (hashedrekord, dsse, intoto) on arbitrary JSON.
pub fn log_entry(data: &[u8]) {
    if let Ok(proposed) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = sigstack_rekor::canonicalize(&proposed);
    }
}

/// The log's HTTP surface: the first byte picks the endpoint, the rest is its body, query or path.
pub fn log_http(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let request = match selector % 6 {
        0 => request(Method::POST, "/api/v1/log/entries", rest),
        1 => request(Method::GET, &format!("/api/v1/log/proof?{text}"), b""),
        2 => request(Method::GET, &format!("/api/v1/log/entries?{text}"), b""),
        3 => request(Method::GET, &format!("/api/v1/log/entries/{text}"), b""),
        4 => request(Method::POST, "/api/v1/log/entries/retrieve", rest),
        _ => request(Method::POST, "/api/v1/index/retrieve", rest),
    };
    no_server_error(Service::Rekor, request);
}

/// Rekor v2's HTTP surface: entries (first byte even) or tile paths (odd).
pub fn log_v2_http(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let request = match selector % 2 {
        0 => request(Method::POST, "/api/v2/log/entries", rest),
        _ => request(Method::GET, &format!("/tile/{}", String::from_utf8_lossy(rest)), b""),
    };
    no_server_error(Service::RekorV2, request);
}

/// Timestamp requests, DER (first byte even) or JSON (odd).
pub fn timestamp(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let content_type = if selector % 2 == 0 { "application/timestamp-query" } else { "application/json" };
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/timestamp")
        .header("content-type", content_type)
        .body(Body::from(rest.to_vec()))
        .ok();
    no_server_error(Service::Tsa, request);
}

/// Certificate requests, v2 and v1 (JSON, base64 CSRs and keys, tokens).
pub fn signing_cert(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let path = if selector % 2 == 0 { "/api/v2/signingCert" } else { "/api/v1/signingCert" };
    no_server_error(Service::Fulcio, request(Method::POST, path, rest));
}

/// A CSR (PEM or DER) as the v2 request carries it.
pub fn csr(data: &[u8]) {
    let _ = sigstack_fulcio::verify_csr("certificateSigningRequest", data);
}

/// Policy files.
pub fn policy(data: &[u8]) {
    let _ = sigstack_admission::load_policies("fuzz.yaml", &String::from_utf8_lossy(data));
}

/// AdmissionReview bodies to both webhook phases.
pub fn admission_review(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let path = if selector % 2 == 0 { "/mutate" } else { "/validate" };
    no_server_error(Service::Webhook, request(Method::POST, path, rest));
}
