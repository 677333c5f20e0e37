//! The HTTP face of the TSA (sigstore/timestamp-authority's v1 API). All error mapping lives in
//! `ApiError::into_response`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sigstack_wire::{ErrorEnvelope, GoJson, pem_lf, with_fallbacks};

use crate::{TimestampAuthority, TimestampRequest, TsaError};

/// Largest request accepted (a TimeStampReq is about 60 bytes; the public TSA allows 1 KiB of JSON).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The TSA's routes.
pub fn router(tsa: Arc<TimestampAuthority>) -> Router {
    let router = Router::new()
        .route("/api/v1/timestamp", post(timestamp))
        .route("/api/v1/timestamp/certchain", get(certchain))
        .route("/healthz", get(|| async { GoJson(serde_json::json!({"status": "ok"})) }));
    with_fallbacks(router, ErrorEnvelope::Http).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(tsa)
}

async fn timestamp(
    State(tsa): State<Arc<TimestampAuthority>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        let (status, message) = sigstack_wire::body_rejection(&rejection);
        ApiError::Status(status, message)
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // timestamp-authority's generated API layer answers an empty body before parsing it, with 422
    // and these words; sigstack answers as it does (the side-by-side test holds the two together).
    if body.is_empty()
        && (content_type.starts_with("application/json") || content_type.starts_with("application/timestamp-query"))
    {
        return Err(ApiError::Status(StatusCode::UNPROCESSABLE_ENTITY, "request in body is required".into()));
    }
    // sigstore-js sends JSON; sigstore-go, sigstore-python, cosign and openssl send DER.
    let request = if content_type.starts_with("application/json") {
        TimestampRequest::from_json(&body)?
    } else if content_type.starts_with("application/timestamp-query") || content_type.is_empty() {
        TimestampRequest::from_der(&body)?
    } else {
        return Err(ApiError::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?}: send application/timestamp-query (DER) or application/json"),
        ));
    };
    let response = tsa.timestamp(&request, std::time::SystemTime::now())?;
    Ok(([(header::CONTENT_TYPE, "application/timestamp-reply")], response).into_response())
}

async fn certchain(State(tsa): State<Arc<TimestampAuthority>>) -> Response {
    let chain: String = tsa.chain_der().iter().map(|der| pem_lf("CERTIFICATE", der)).collect();
    ([(header::CONTENT_TYPE, "application/pem-certificate-chain")], chain).into_response()
}

enum ApiError {
    Tsa(TsaError),
    Status(StatusCode, String),
}

impl From<TsaError> for ApiError {
    fn from(e: TsaError) -> Self {
        ApiError::Tsa(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Tsa(e @ TsaError::BadRequest(_)) => (StatusCode::BAD_REQUEST, e.to_string()),
            ApiError::Tsa(e @ (TsaError::State(_) | TsaError::Internal(_))) => {
                tracing::error!(error = %e, "TSA failure");
                (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            ApiError::Status(status, message) => (status, message),
        };
        ErrorEnvelope::Http.response(status, message)
    }
}
