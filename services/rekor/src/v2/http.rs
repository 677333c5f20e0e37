//! Rekor v2's HTTP surface (rekor-tiles' gRPC gateway and its static tile files). All error
//! mapping lives in `ApiError::into_response`, in the gateway's `{code, message, details}` shape.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sigstack_wire::{ErrorEnvelope, GoJson, with_fallbacks};

use super::{TileLog, TilePath};
use crate::RekorError;

/// Largest request body accepted (rekor-tiles' default is 4 MiB too).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The v2 log's routes. Reads are served both at the root (as the tiles of a static bucket, where
/// clients look) and under `/api/v2` (the gateway's paths).
pub fn router(log: TileLog) -> Router {
    let router = Router::new()
        .route("/api/v2/log/entries", post(create_entry))
        .route("/checkpoint", get(checkpoint))
        .route("/api/v2/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/api/v2/tile/{*path}", get(tile))
        .route("/healthz", get(|| async { GoJson(serde_json::json!({"status": "SERVING"})) }));
    with_fallbacks(router, ErrorEnvelope::GrpcGateway).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(log)
}

async fn create_entry(State(log): State<TileLog>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        let (status, message) = sigstack_wire::body_rejection(&rejection);
        ApiError::Status(status, message)
    })?;
    let entry = log.create_entry(&body).await?;
    Ok((StatusCode::CREATED, GoJson(entry)).into_response())
}

async fn checkpoint(State(log): State<TileLog>) -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log.checkpoint()?).into_response())
}

async fn tile(State(log): State<TileLog>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&path).map_err(|e| ApiError::Status(StatusCode::BAD_REQUEST, e))?;
    match log.tile(&tile)? {
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()),
        None => Err(ApiError::Status(
            StatusCode::NOT_FOUND,
            format!("{} is not in the tree yet (log size {})", tile.to_path(), log.size()?),
        )),
    }
}

enum ApiError {
    Rekor(RekorError),
    Status(StatusCode, String),
}

impl From<RekorError> for ApiError {
    fn from(e: RekorError) -> Self {
        ApiError::Rekor(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut log_index = None;
        let (status, message) = match self {
            ApiError::Rekor(e) => {
                if let RekorError::Duplicate { log_index: index } = &e {
                    log_index = Some(*index);
                }
                (crate::http::error_status(&e, StatusCode::SERVICE_UNAVAILABLE), e.to_string())
            }
            ApiError::Status(status, message) => (status, message),
        };
        let mut response = ErrorEnvelope::GrpcGateway.response(status, message);
        // rekor-tiles' duplicate answer: clients read the existing entry's index from this header.
        if let Some(index) = log_index.and_then(|i| HeaderValue::from_str(&i.to_string()).ok()) {
            response.headers_mut().insert("x-log-index", index);
        }
        response
    }
}
