//! Fulcio's REST surface (v2 JSON and the v1 legacy API cosign v2 uses). All error mapping lives
//! in `ApiError::into_response`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;
use sigstack_wire::{ErrorEnvelope, with_fallbacks};

use crate::ca::cert_pem;
use crate::keys::verify_csr;
use crate::{Fulcio, FulcioError, KeyProof, SubjectKey};

/// Largest request body accepted; a CSR or an RSA-4096 key is a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// The CA's routes.
pub fn router(fulcio: Arc<Fulcio>) -> Router {
    let router = Router::new()
        .route("/api/v2/signingCert", post(signing_cert_v2))
        .route("/api/v1/signingCert", post(signing_cert_v1))
        .route("/api/v2/trustBundle", get(trust_bundle))
        .route("/api/v2/configuration", get(configuration))
        .route("/api/v1/rootCert", get(root_cert))
        .route("/ct/v1/add-pre-chain", post(add_pre_chain))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }));
    with_fallbacks(router, ErrorEnvelope::GrpcGateway).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(fulcio)
}

/// RFC 6962 §4.1 `add-pre-chain` input: base64 DER certificates, the precertificate first.
#[derive(Debug, Deserialize)]
struct AddChainRequest {
    chain: Vec<String>,
}

/// RFC 6962 §4.1 `add-pre-chain` output.
#[derive(Debug, Serialize)]
struct AddChainResponse {
    sct_version: u8,
    id: String,
    timestamp: u64,
    extensions: String,
    signature: String,
}

/// `CreateSigningCertificateRequest` (fulcio.proto), in gRPC-gateway JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertRequest {
    credentials: Option<Credentials>,
    public_key_request: Option<PublicKeyRequest>,
    certificate_signing_request: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    oidc_identity_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyRequest {
    public_key: PublicKey,
    proof_of_possession: String,
}

/// `algorithm` is accepted and ignored: Fulcio infers the algorithm from the key.
#[derive(Debug, Deserialize)]
#[expect(dead_code, reason = "`algorithm` is part of the request's shape; Fulcio infers the algorithm from the key")]
struct PublicKey {
    algorithm: Option<String>,
    content: String,
}

/// The v1 request (fulcio_legacy.proto): key content and signature are base64 `bytes` fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacySigningCertRequest {
    public_key: Option<PublicKey>,
    signed_email_address: Option<String>,
    certificate_signing_request: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertificate {
    signed_certificate_embedded_sct: SignedCertificateEmbeddedSct,
}

#[derive(Debug, Serialize)]
struct SignedCertificateEmbeddedSct {
    chain: CertificateChain,
}

#[derive(Debug, Serialize)]
struct CertificateChain {
    certificates: Vec<String>,
}

fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| FulcioError::InvalidRequest(format!("invalid JSON body: {e}")).into())
}

/// The token from the body if present, else `Authorization: Bearer` (sigstore-js sends the
/// former, cosign v3 and sigstore-python the latter).
fn token<'a>(body_token: Option<&'a str>, headers: &'a HeaderMap) -> Result<&'a str, FulcioError> {
    if let Some(token) = body_token.filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(FulcioError::MissingToken)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(FulcioError::MissingToken),
    }
}

fn decode_signature(field: &str, value: &str) -> Result<Vec<u8>, FulcioError> {
    B64.decode(value.trim()).map_err(|_| FulcioError::InvalidRequest(format!("{field} is not base64")))
}

fn key_proof(
    public_key: Option<(PublicKey, Option<String>)>,
    csr: Option<String>,
    proof_field: &str,
) -> Result<KeyProof, FulcioError> {
    match (public_key, csr) {
        (_, Some(csr)) => Ok(KeyProof::Csr(verify_csr("certificateSigningRequest", csr.as_bytes())?)),
        (Some((key, proof)), None) => {
            let proof = proof
                .ok_or_else(|| FulcioError::InvalidRequest(format!("{proof_field} is required with a public key")))?;
            Ok(KeyProof::PublicKey {
                key: SubjectKey::from_client_encoding("publicKey.content", key.content.as_bytes())?,
                proof: decode_signature(proof_field, &proof)?,
            })
        }
        (None, None) => Err(FulcioError::InvalidRequest(
            "request needs publicKeyRequest (key + proofOfPossession) or certificateSigningRequest".into(),
        )),
    }
}

async fn signing_cert_v2(
    State(fulcio): State<Arc<Fulcio>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SigningCertificate>, ApiError> {
    let request: SigningCertRequest = parse_body(body)?;
    let body_token = request.credentials.as_ref().and_then(|c| c.oidc_identity_token.as_deref());
    let token = token(body_token, &headers)?.to_string();
    let public_key = request.public_key_request.map(|r| (r.public_key, Some(r.proof_of_possession)));
    let proof = key_proof(public_key, request.certificate_signing_request, "publicKeyRequest.proofOfPossession")?;
    let chain = fulcio.sign(&token, proof).await?;
    Ok(Json(SigningCertificate {
        signed_certificate_embedded_sct: SignedCertificateEmbeddedSct {
            chain: CertificateChain { certificates: chain.pem() },
        },
    }))
}

async fn signing_cert_v1(
    State(fulcio): State<Arc<Fulcio>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: LegacySigningCertRequest = parse_body(body)?;
    let token = token(None, &headers)?.to_string();
    let public_key = request.public_key.map(|key| (key, request.signed_email_address));
    let proof = key_proof(public_key, request.certificate_signing_request, "signedEmailAddress")?;
    let chain = fulcio.sign(&token, proof).await?;
    // Legacy API: 201, PEM chain leaf first; an empty SCT header means "embedded".
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, PEM_CHAIN)], chain.pem().concat()).into_response())
}

/// The CA's CT log key signs an SCT for another CA's precertificate (the real Fulcio's
/// `--ct-log-url` pointed here).
async fn add_pre_chain(
    State(fulcio): State<Arc<Fulcio>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AddChainResponse>, ApiError> {
    let request: AddChainRequest = parse_body(body)?;
    let chain = request
        .chain
        .iter()
        .enumerate()
        .map(|(i, c)| decode_signature(&format!("chain[{i}]"), c))
        .collect::<Result<Vec<_>, _>>()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let added = fulcio.ca().ctlog().add_pre_chain(&chain, now.as_millis() as u64)?;
    Ok(Json(AddChainResponse {
        sct_version: 0,
        id: B64.encode(added.log_id),
        timestamp: added.timestamp_ms,
        extensions: String::new(),
        signature: B64.encode(&added.signature),
    }))
}

async fn trust_bundle(State(fulcio): State<Arc<Fulcio>>) -> Json<serde_json::Value> {
    let certificates: Vec<String> = fulcio.ca().ca_chain_der().iter().map(|der| cert_pem(der)).collect();
    Json(json!({ "chains": [{ "certificates": certificates }] }))
}

async fn configuration(State(fulcio): State<Arc<Fulcio>>) -> Json<serde_json::Value> {
    Json(fulcio.configuration())
}

async fn root_cert(State(fulcio): State<Arc<Fulcio>>) -> Response {
    let chain: String = fulcio.ca().ca_chain_der().iter().map(|der| cert_pem(der)).collect();
    ([(header::CONTENT_TYPE, PEM_CHAIN)], chain).into_response()
}

/// Error responses in gRPC-gateway's shape, `{"code": <gRPC code>, "message": "...", "details": []}`,
/// with the HTTP status Fulcio's gateway would use.
#[derive(Debug)]
enum ApiError {
    Fulcio(FulcioError),
    Status(StatusCode, String),
}

impl From<FulcioError> for ApiError {
    fn from(e: FulcioError) -> Self {
        ApiError::Fulcio(e)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let (status, message) = sigstack_wire::body_rejection(&rejection);
        ApiError::Status(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Fulcio(e) => match &e {
                // Fulcio v1.8 answers every identity-token problem as InvalidArgument (400) with
                // this sentence (its Unauthenticated answer is "used in past"); sigstack says the
                // same and adds which check failed. The side-by-side test holds the two together.
                FulcioError::MissingToken | FulcioError::Token(_) => {
                    (StatusCode::BAD_REQUEST, format!("There was an error processing the identity token: {e}"))
                }
                FulcioError::InvalidRequest(_)
                | FulcioError::UnsupportedKey(_)
                | FulcioError::ProofOfPossession(_)
                | FulcioError::InvalidCsr(_) => (StatusCode::BAD_REQUEST, e.to_string()),
                FulcioError::State(_) | FulcioError::Internal(_) => {
                    tracing::error!(error = %e, "CA failure");
                    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
            },
            ApiError::Status(status, message) => (status, message),
        };
        ErrorEnvelope::GrpcGateway.response(status, message)
    }
}

#[cfg(test)]
mod tests;
