//! What every sigstack service writes the same way, in one place: PEM as Go and pyca write it,
//! JSON as Go's encoder writes it, and the JSON error envelope with its fallbacks for unknown
//! routes and methods; and the names every service answers to (the DNS-rebinding check). Each
//! service still maps its own error enum to a status in one `match`; this crate only shapes the
//! answer.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod host;

pub use host::{AllowedHosts, require_allowed_host};

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// PEM with LF line endings and 64-column base64. The `pem` crate writes CRLF by default, which
/// @sigstore/mock's parser refuses and which is not byte-for-byte what Rekor stores for a key.
pub fn pem_lf(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// JSON followed by a newline, as Go's `json.Encoder` writes it. The `sigstore` crate slices
/// Rekor's answers expecting exactly that shape.
pub struct GoJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for GoJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(mut body) => {
                body.push(b'\n');
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Err(e) => ErrorEnvelope::Http.response(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding JSON: {e}")),
        }
    }
}

/// The shape of a service's error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorEnvelope {
    /// `{"code": <HTTP status>, "message": "..."}`: Rekor's go-swagger errors, and the issuer, the
    /// admission webhook and the TUF repository.
    Http,
    /// gRPC-gateway's `{"code": <gRPC code>, "message": "...", "details": []}`: Fulcio.
    GrpcGateway,
}

impl ErrorEnvelope {
    /// The error answer with `status` and a message a person can act on.
    pub fn response(self, status: StatusCode, message: impl Into<String>) -> Response {
        let message = message.into();
        let body = match self {
            ErrorEnvelope::Http => json!({"code": status.as_u16(), "message": message}),
            ErrorEnvelope::GrpcGateway => json!({"code": grpc_code(status), "message": message, "details": []}),
        };
        (status, GoJson(body)).into_response()
    }
}

/// The gRPC status code gRPC-gateway pairs with an HTTP status (runtime/errors.go, reversed).
fn grpc_code(status: StatusCode) -> u16 {
    const INVALID_ARGUMENT: u16 = 3;
    const NOT_FOUND: u16 = 5;
    const ALREADY_EXISTS: u16 = 6;
    const RESOURCE_EXHAUSTED: u16 = 8;
    const UNIMPLEMENTED: u16 = 12;
    const INTERNAL: u16 = 13;
    const UNAVAILABLE: u16 = 14;
    const UNAUTHENTICATED: u16 = 16;
    match status {
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::NOT_FOUND => NOT_FOUND,
        StatusCode::CONFLICT => ALREADY_EXISTS,
        StatusCode::METHOD_NOT_ALLOWED => UNIMPLEMENTED,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        s if s.is_client_error() => INVALID_ARGUMENT,
        _ => INTERNAL,
    }
}

/// Adds JSON answers for unknown routes (404) and wrong methods (405) to `router`, in `envelope`.
pub fn with_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>, envelope: ErrorEnvelope) -> Router<S> {
    router
        .fallback(move |uri: Uri| async move {
            envelope.response(StatusCode::NOT_FOUND, format!("no such endpoint: {}", uri.path()))
        })
        .method_not_allowed_fallback(move |uri: Uri| async move {
            envelope.response(StatusCode::METHOD_NOT_ALLOWED, format!("method not allowed on {}", uri.path()))
        })
}

/// The message for a body axum could not read (too large, wrong length): its status stays.
pub fn body_rejection(rejection: &axum::extract::rejection::BytesRejection) -> (StatusCode, String) {
    (rejection.status(), format!("request body: {}", rejection.body_text()))
}

/// The bare host of a URL as Go's `url.Hostname()` gives it (no port, no IPv6 brackets): the name
/// sigstore-go verifies log checkpoints under.
pub fn url_hostname(url: &str) -> &str {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = without_scheme.split(['/', '?', '#']).next().unwrap_or(without_scheme);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(host, _port)| host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_as_go_gives_them() {
        assert_eq!(url_hostname("http://127.0.0.1:8097"), "127.0.0.1");
        assert_eq!(url_hostname("https://log2025-1.rekor.sigstore.dev/api/v2"), "log2025-1.rekor.sigstore.dev");
        assert_eq!(url_hostname("http://[::1]:80/x"), "::1");
        assert_eq!(url_hostname("http://user@host:1"), "host");
    }
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn answer(router: Router, method: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.last(), Some(&b'\n'), "Go-style JSON ends with a newline");
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_the_envelope() {
        let http = with_fallbacks(Router::new().route("/x", get(|| async { "x" })), ErrorEnvelope::Http);
        let (status, body) = answer(http.clone(), "GET", "/nope").await;
        assert_eq!(
            (status, &body),
            (StatusCode::NOT_FOUND, &json!({"code": 404, "message": "no such endpoint: /nope"}))
        );
        let (status, body) = answer(http, "DELETE", "/x").await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::METHOD_NOT_ALLOWED, Some(405)));

        let grpc = with_fallbacks(Router::new().route("/x", get(|| async { "x" })), ErrorEnvelope::GrpcGateway);
        let (status, body) = answer(grpc, "GET", "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"code": 5, "message": "no such endpoint: /nope", "details": []}));
    }

    #[test]
    fn pem_is_lf_and_64_columns() {
        let text = pem_lf("PUBLIC KEY", &[7u8; 100]);
        assert!(!text.contains('\r'));
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n") && text.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
    }
}
