//! Rekor's v1 REST surface. All error mapping lives in `ApiError::into_response`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
// JSON as Rekor's Go server writes it: compact, with a trailing newline. The `sigstore` crate
// (0.15) parses create responses by slicing that exact text (`entries_api::parse_response` drops
// the last two bytes, `}` and `\n`), so the newline is part of the wire format.
use sigstack_wire::{ErrorEnvelope, GoJson, pem_lf, with_fallbacks};

use crate::{LogEntry, RekorError, TransparencyLog, canonicalize, canonicalize_entry};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most UUIDs, indexes or entries one retrieve request may ask for (Rekor's own limit).
const MAX_RETRIEVE: usize = 10;

/// The log's routes.
pub fn router(log: TransparencyLog) -> Router {
    let router = Router::new()
        .route("/api/v1/log/entries", post(create_entry).get(entry_by_index))
        .route("/api/v1/log/entries/{uuid}", get(entry_by_uuid))
        .route("/api/v1/log/entries/retrieve", post(retrieve))
        .route("/api/v1/index/retrieve", post(search_index))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/log/proof", get(consistency))
        .route("/api/v1/log/publicKey", get(public_key))
        .route("/healthz", get(|| async { GoJson(json!({"status": "ok"})) }));
    with_fallbacks(router, ErrorEnvelope::Http).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(log)
}

fn one(uuid: String, entry: LogEntry) -> Value {
    let mut map = Map::new();
    map.insert(uuid, serde_json::to_value(entry).unwrap_or_default());
    Value::Object(map)
}

fn parse_json(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| RekorError::InvalidEntry(format!("body is not JSON: {e}")).into())
}

/// A search body: a JSON object (go-swagger refuses anything else with 400).
fn parse_query_object(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    match parse_json(body)? {
        object @ Value::Object(_) => Ok(object),
        other => Err(RekorError::InvalidQuery(format!("the body must be a JSON object, not {other}")).into()),
    }
}

async fn create_entry(
    State(log): State<TransparencyLog>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let proposed = parse_json(body)?;
    let canonical = canonicalize_entry(&proposed)?;
    let (uuid, entry) = log.append(canonical.body, canonical.statement).await?;
    let location = format!("/api/v1/log/entries/{uuid}");
    let mut response = (StatusCode::CREATED, GoJson(one(uuid.clone(), entry))).into_response();
    if let (Ok(etag), Ok(location)) = (HeaderValue::from_str(&uuid), HeaderValue::from_str(&location)) {
        response.headers_mut().insert(header::ETAG, etag);
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexQuery {
    log_index: Option<String>,
}

fn parse_count(name: &str, value: &str) -> Result<u64, RekorError> {
    value
        .parse::<u64>()
        .map_err(|_| RekorError::InvalidQuery(format!("{name} must be a non-negative integer, got {value:?}")))
}

async fn entry_by_index(
    State(log): State<TransparencyLog>,
    query: Result<Query<IndexQuery>, QueryRejection>,
) -> Result<GoJson<Value>, ApiError> {
    let Query(query) = query?;
    let index =
        query.log_index.ok_or_else(|| RekorError::InvalidQuery("logIndex query parameter is required".into()))?;
    let (uuid, entry) = log.entry_by_index(parse_count("logIndex", &index)?)?;
    Ok(GoJson(one(uuid, entry)))
}

/// Accepts the 64-hex leaf hash or the 80-hex `treeID || leaf hash` form.
fn leaf_of(log: &TransparencyLog, uuid: &str) -> Result<[u8; 32], RekorError> {
    // Hex first: the tree prefix is cut by byte offset (cargo fuzz found the panic on multi-byte
    // characters at that offset).
    if !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RekorError::InvalidQuery(format!("entry UUID {uuid:?} is not hex (64 or 80 hex digits)")));
    }
    let hex = match uuid.len() {
        64 => uuid,
        80 => {
            let tree = &uuid[..16];
            if i64::from_str_radix(tree, 16).ok() != Some(log.tree_id()) {
                return Err(RekorError::NotFound(format!(
                    "UUID {uuid} belongs to another tree (this log is tree {:016x})",
                    log.tree_id()
                )));
            }
            &uuid[16..]
        }
        _ => {
            return Err(RekorError::InvalidQuery(format!(
                "entry UUID must be 64 or 80 hex digits, got {} characters",
                uuid.len()
            )));
        }
    };
    let mut leaf = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        leaf[i] = std::str::from_utf8(chunk)
            .ok()
            .and_then(|t| u8::from_str_radix(t, 16).ok())
            .ok_or_else(|| RekorError::InvalidQuery(format!("entry UUID {uuid:?} is not hex")))?;
    }
    Ok(leaf)
}

async fn entry_by_uuid(
    State(log): State<TransparencyLog>,
    uuid: Result<Path<String>, PathRejection>,
) -> Result<GoJson<Value>, ApiError> {
    let Path(uuid) = uuid?;
    let (uuid, entry) = log.entry_by_leaf(&leaf_of(&log, &uuid)?)?;
    Ok(GoJson(one(uuid, entry)))
}

/// `{"entryUUIDs": [...]}`, `{"logIndexes": [...]}` or `{"entries": [proposed entries]}`; cosign v2
/// searches by proposed entry, so those are canonicalised and matched by leaf hash. Entries not in
/// the log are left out of the answer, as Rekor does.
async fn retrieve(
    State(log): State<TransparencyLog>,
    body: Result<Bytes, BytesRejection>,
) -> Result<GoJson<Value>, ApiError> {
    let request = parse_query_object(body)?;
    if ["entryUUIDs", "logIndexes", "entries"].iter().all(|k| request.get(k).is_none_or(Value::is_null)) {
        return Err(RekorError::InvalidQuery("give at least one of entryUUIDs, logIndexes, entries".into()).into());
    }
    let mut found = Vec::new();
    let list = |name: &str| -> Result<Option<Vec<Value>>, RekorError> {
        match request.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if items.len() <= MAX_RETRIEVE => Ok(Some(items.clone())),
            Some(Value::Array(_)) => {
                Err(RekorError::InvalidQuery(format!("{name} may hold at most {MAX_RETRIEVE} items")))
            }
            Some(_) => Err(RekorError::InvalidQuery(format!("{name} must be an array"))),
        }
    };
    for uuid in list("entryUUIDs")?.unwrap_or_default() {
        let uuid =
            uuid.as_str().ok_or_else(|| RekorError::InvalidQuery("entryUUIDs must hold strings".into()))?.to_string();
        match log.entry_by_leaf(&leaf_of(&log, &uuid)?) {
            Ok((uuid, entry)) => found.push(one(uuid, entry)),
            Err(RekorError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for index in list("logIndexes")?.unwrap_or_default() {
        // Rekor's logIndexes are int64 with minimum 0.
        let index = index.as_u64().filter(|i| i64::try_from(*i).is_ok()).ok_or_else(|| {
            RekorError::InvalidQuery(format!("logIndexes must hold integers from 0 to {}, got {index}", i64::MAX))
        })?;
        match log.entry_by_index(index) {
            Ok((uuid, entry)) => found.push(one(uuid, entry)),
            Err(RekorError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for proposed in list("entries")?.unwrap_or_default() {
        let leaf = crate::merkle::leaf_hash(&canonicalize(&proposed)?);
        match log.entry_by_leaf(&leaf) {
            Ok((uuid, entry)) => found.push(one(uuid, entry)),
            Err(RekorError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(GoJson(Value::Array(found)))
}

/// `{"hash"?, "publicKey"?: {"format": "x509", "content": b64}, "email"?, "subject"?, "operator"?: "and"|"or"}`
/// (rekor openapi.yaml `SearchIndex`); answers the matching entry UUIDs.
async fn search_index(
    State(log): State<TransparencyLog>,
    body: Result<Bytes, BytesRejection>,
) -> Result<GoJson<Value>, ApiError> {
    let query = parse_query_object(body)?;
    let text = |name: &str| -> Result<Option<String>, RekorError> {
        match query.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.to_ascii_lowercase())),
            Some(_) => Err(RekorError::InvalidQuery(format!("{name} must be a non-empty string"))),
        }
    };
    let all = match text("operator")?.as_deref() {
        None | Some("or") => false,
        Some("and") => true,
        Some(other) => {
            return Err(RekorError::InvalidQuery(format!("operator must be \"and\" or \"or\", got {other:?}")).into());
        }
    };
    let mut keys = Vec::new();
    if let Some(hash) = text("hash")? {
        // Rekor's util.PrefixSHA: a bare digest gets its algorithm from its length.
        const DIGESTS: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];
        let (algorithm, digest) = match hash.split_once(':') {
            Some(prefixed) => prefixed,
            None => match DIGESTS.iter().find(|(_, length)| *length == hash.len()) {
                Some((algorithm, _)) => (*algorithm, hash.as_str()),
                None => {
                    let n = hash.len();
                    return Err(
                        RekorError::InvalidQuery(format!("hash of {n} hex digits is not SHA-256/384/512")).into()
                    );
                }
            },
        };
        let Some((_, expected)) = DIGESTS.iter().find(|(name, _)| *name == algorithm) else {
            return Err(RekorError::InvalidQuery(format!("hash algorithm {algorithm:?} is not sha256/384/512")).into());
        };
        if digest.len() != *expected || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RekorError::InvalidQuery(format!("hash: {algorithm} needs {expected} hex digits")).into());
        }
        keys.push(format!("{algorithm}:{digest}"));
    }
    if let Some(key) = query.get("publicKey").filter(|k| !k.is_null()) {
        let format = key.get("format").and_then(Value::as_str).unwrap_or("");
        if format != "x509" {
            return Err(
                RekorError::InvalidQuery(format!("publicKey.format {format:?} is not supported (use x509)")).into()
            );
        }
        let content = key.get("content").and_then(Value::as_str).unwrap_or("");
        let verifier =
            sigstack_fulcio::Verifier::parse("publicKey.content", content.as_bytes()).map_err(RekorError::from)?;
        keys.push(crate::index::key_hash(&verifier));
    }
    keys.extend(text("email")?);
    keys.extend(text("subject")?);
    if keys.is_empty() {
        return Err(RekorError::InvalidQuery("give at least one of hash, publicKey, email, subject".into()).into());
    }
    Ok(GoJson(json!(log.search(&keys, all)?)))
}

async fn log_info(State(log): State<TransparencyLog>) -> Result<GoJson<Value>, ApiError> {
    Ok(GoJson(serde_json::to_value(log.info()?).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofQuery {
    first_size: Option<String>,
    last_size: Option<String>,
    #[serde(rename = "treeID")]
    tree_id: Option<String>,
}

async fn consistency(
    State(log): State<TransparencyLog>,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<GoJson<Value>, ApiError> {
    let Query(query) = query?;
    if let Some(tree) = query.tree_id.as_deref() {
        let tree =
            tree.parse::<i64>().map_err(|_| RekorError::InvalidQuery(format!("treeID {tree:?} is not an integer")))?;
        if tree != log.tree_id() {
            return Err(RekorError::NotFound(format!("tree {tree} is not in this log (tree {})", log.tree_id())).into());
        }
    }
    let first = parse_count("firstSize", query.first_size.as_deref().unwrap_or("1"))?;
    let last = match query.last_size.as_deref() {
        Some(last) => parse_count("lastSize", last)?,
        None => return Err(RekorError::InvalidQuery("lastSize query parameter is required".into()).into()),
    };
    let (root, hashes) = log.consistency(first, last)?;
    Ok(GoJson(json!({"rootHash": root, "hashes": hashes})))
}

async fn public_key(State(log): State<TransparencyLog>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem_lf("PUBLIC KEY", log.public_key_der())).into_response()
}

/// Error responses as Rekor writes them: `{"code": <HTTP status>, "message": "..."}`.
enum ApiError {
    Rekor(RekorError),
    Status(StatusCode, String),
}

impl From<RekorError> for ApiError {
    fn from(e: RekorError) -> Self {
        ApiError::Rekor(e)
    }
}

/// A query string or path that does not parse (found by fuzzing: a repeated parameter, a path
/// that is not percent-encoded UTF-8) is the client's mistake, answered in the same JSON as every
/// other error.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let (status, message) = sigstack_wire::body_rejection(&rejection);
        ApiError::Status(status, message)
    }
}

/// The status of a log error, the same in v1 and v2 except for storage failures (rekor-tiles
/// answers those as gRPC Unavailable, 503; v1 as 507).
pub(crate) fn error_status(e: &RekorError, storage: StatusCode) -> StatusCode {
    match e {
        RekorError::InvalidEntry(_)
        | RekorError::UnsupportedType(_)
        | RekorError::Signature(_)
        | RekorError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
        RekorError::UnknownKind(_) => StatusCode::UNPROCESSABLE_ENTITY,
        RekorError::Conflict { .. } | RekorError::Duplicate { .. } => StatusCode::CONFLICT,
        RekorError::NotFound(_) => StatusCode::NOT_FOUND,
        RekorError::Storage(_) => storage,
        _ => {
            tracing::error!(error = %e, "log failure");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut location = None;
        let (status, message) = match self {
            ApiError::Rekor(e) => {
                if let RekorError::Conflict { uuid } = &e {
                    location = Some(format!("/api/v1/log/entries/{uuid}"));
                }
                (error_status(&e, StatusCode::INSUFFICIENT_STORAGE), e.to_string())
            }
            ApiError::Status(status, message) => (status, message),
        };
        let mut response = ErrorEnvelope::Http.response(status, message);
        if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}
