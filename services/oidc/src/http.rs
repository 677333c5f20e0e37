//! The HTTP face of the issuer. All mapping of errors to statuses lives in `ApiError::into_response`.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sigstack_wire::{ErrorEnvelope, with_fallbacks};

use crate::{ACTIONS_TOKEN_PATH, Issuer, OidcError, Profile, SigningAlg, TokenRequest, parse_ttl};

/// Largest request body accepted (a token request is a few hundred bytes of claims).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The issuer's routes: discovery, JWKS, minting (`POST /token` JSON, `GET /token` raw JWT),
/// the GitHub Actions ambient endpoint, and JSON errors for everything else.
pub fn router(issuer: Arc<Issuer>) -> Router {
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks", get(jwks))
        .route("/token", post(mint_json).get(mint_query))
        .route(ACTIONS_TOKEN_PATH, get(actions_token))
        .route("/authorize", get(authorize))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
    with_fallbacks(router, ErrorEnvelope::Http).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(issuer)
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Json<serde_json::Value> {
    Json(issuer.discovery())
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    Json(issuer.jwks()).into_response()
}

async fn mint_json(
    State(issuer): State<Arc<Issuer>>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(request) = body?;
    let token = issuer.mint(&request)?;
    Ok(Json(json!({ "token": token })))
}

/// Query form of a token request, for `curl` and for the ambient endpoint: flat strings only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    profile: Option<String>,
    audience: Option<String>,
    ttl: Option<String>,
    alg: Option<String>,
    repository: Option<String>,
    workflow: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    event_name: Option<String>,
    environment: Option<String>,
    email: Option<String>,
    /// GitHub's request URL carries `api-version=2.0`; accepted and ignored.
    #[serde(rename = "api-version")]
    _api_version: Option<String>,
}

impl TryFrom<TokenQuery> for TokenRequest {
    type Error = OidcError;

    fn try_from(query: TokenQuery) -> Result<Self, OidcError> {
        Ok(TokenRequest {
            profile: query.profile.as_deref().map(Profile::parse).transpose()?,
            audience: query.audience,
            ttl_seconds: query.ttl.as_deref().map(parse_ttl).transpose()?,
            alg: query.alg.as_deref().map(SigningAlg::parse).transpose()?,
            repository: query.repository,
            workflow: query.workflow,
            git_ref: query.git_ref,
            sha: query.sha,
            event_name: query.event_name,
            environment: query.environment,
            email: query.email,
            ..TokenRequest::default()
        })
    }
}

async fn mint_query(
    State(issuer): State<Arc<Issuer>>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let token = issuer.mint(&TokenRequest::try_from(query)?)?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}

/// GitHub's ambient endpoint: bearer `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, `audience` in the query,
/// answer `{"value": "<jwt>"}` (cosign, sigstore-js and the `id` package all read `value`).
async fn actions_token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    issuer.check_actions_bearer(authorization)?;
    let Query(query) = query?;
    let mut request = TokenRequest::try_from(query)?;
    // The ambient endpoint stands in for GitHub Actions, so it only ever mints workflow tokens.
    if request.profile == Some(Profile::Email) {
        return Err(OidcError::InvalidRequest("the Actions endpoint mints github-actions tokens only".into()).into());
    }
    request.profile = Some(Profile::GithubActions);
    let token = issuer.mint(&request)?;
    Ok(Json(json!({ "value": token, "count": 1 })))
}

async fn authorize() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::BAD_REQUEST,
        message: "this issuer is non-interactive: mint tokens with POST /token, GET /token or `sigstack token`".into(),
    }
}

/// Every error response of the issuer, as `{"code": <status>, "message": "..."}`.
#[derive(Debug)]
enum ApiError {
    Oidc(OidcError),
    Rejected { status: StatusCode, message: String },
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        ApiError::Oidc(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // axum says 422 for well-formed JSON of the wrong shape; a client mistake either way.
        let status = match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        ApiError::Rejected { status, message: format!("invalid JSON body: {}", rejection.body_text()) }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Rejected { status: StatusCode::BAD_REQUEST, message: rejection.body_text() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Oidc(e @ (OidcError::InvalidRequest(_) | OidcError::NotAJwt(_))) => {
                (StatusCode::BAD_REQUEST, e.to_string())
            }
            ApiError::Oidc(e @ OidcError::Unauthorized(_)) => (StatusCode::UNAUTHORIZED, e.to_string()),
            ApiError::Oidc(e @ (OidcError::State(_) | OidcError::Signing(_))) => {
                tracing::error!(error = %e, "issuer failure");
                (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            ApiError::Rejected { status, message } => (status, message),
        };
        ErrorEnvelope::Http.response(status, message)
    }
}

#[cfg(test)]
mod tests;
