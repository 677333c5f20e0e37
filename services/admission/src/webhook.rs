//! The AdmissionReview v1 front door, Kyverno's two phases: `/mutate` verifies images and answers
//! with the JSON patch (digest pins, annotation) or denies, as Kyverno's mutating webhook does;
//! `/validate` runs the `validate` rules and checks the mutated object's digests and
//! `kyverno.io/verify-images` annotation, allowing or denying with Kyverno's message. TLS is the
//! binary's business.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use sigstack_wire::{ErrorEnvelope, with_fallbacks};

use crate::{ImageVerifier, Phase, PolicySet, RequestInfo, evaluate_policy_set};

/// What the webhook evaluates with.
#[derive(Clone)]
pub struct WebhookState {
    /// The policies, of either type.
    pub policies: Arc<PolicySet>,
    /// Signature verification.
    pub verifier: Arc<dyn ImageVerifier + Send + Sync>,
    /// Where decisions are recorded for the explorer, if anywhere.
    pub decisions: Option<crate::DecisionLog>,
}

/// Largest AdmissionReview accepted: kube-apiserver's own request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// `/mutate`, `/validate` and `/healthz`; JSON errors for everything else.
pub fn router(state: WebhookState) -> Router {
    let router = Router::new()
        .route("/mutate", post(|s, b| review(s, b, true)))
        .route("/validate", post(|s, b| review(s, b, false)))
        .route("/healthz", axum::routing::get(|| async { Json(json!({"status": "ok"})) }));
    with_fallbacks(router, ErrorEnvelope::Http).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

/// Every error answer of the webhook: `{"code", "message"}` with the status.
fn error(status: StatusCode, message: String) -> Response {
    ErrorEnvelope::Http.response(status, message)
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

async fn review(State(state): State<WebhookState>, body: Result<Bytes, BytesRejection>, mutate: bool) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), format!("cannot read the body: {}", rejection.body_text())),
    };
    let review: Value = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return bad_request(format!(
            "expected an admission.k8s.io/v1 AdmissionReview, got apiVersion {} kind {}",
            review["apiVersion"], review["kind"]
        ));
    }
    let request = &review["request"];
    let Some(uid) = request["uid"].as_str().map(str::to_string) else {
        return bad_request("request.uid is missing".into());
    };
    let object = request["object"].clone();
    if !object.is_object() {
        return bad_request("request.object is missing".into());
    }
    let namespace = request["namespace"].as_str().map(str::to_string);
    let operation = request["operation"].as_str().unwrap_or("CREATE").to_string();
    // What the API server says of the request (resource, subresource) beyond the object: an
    // ImageValidatingPolicy's matchConstraints read it (`pods/ephemeralcontainers`).
    let mut info = RequestInfo::for_object(&object, &operation, namespace.as_deref());
    if let Some(resource) = request["resource"].as_object() {
        info.group = resource.get("group").and_then(Value::as_str).unwrap_or_default().to_string();
        info.version = resource.get("version").and_then(Value::as_str).unwrap_or_default().to_string();
        info.resource = resource.get("resource").and_then(Value::as_str).unwrap_or_default().to_string();
    }
    info.sub_resource = request["subResource"].as_str().unwrap_or_default().to_string();
    info.old_object = Some(request["oldObject"].clone()).filter(|o| o.is_object());
    // Verification does registry I/O with its own runtime: keep it off the async workers.
    let decision = tokio::task::spawn_blocking(move || {
        let phase = if mutate { Phase::Mutate } else { Phase::Validate };
        let decision = evaluate_policy_set(&state.policies, &object, &info, Arc::clone(&state.verifier), phase);
        if let Some(log) = &state.decisions {
            let source = if mutate { "webhook /mutate" } else { "webhook /validate" };
            let record = crate::AdmissionRecord::new(source, &object, namespace.as_deref(), &decision);
            if let Err(e) = log.append(&record) {
                eprintln!("sigstack webhook: cannot record the decision for the explorer: {e}");
            }
        }
        decision
    })
    .await;
    let decision = match decision {
        Ok(decision) => decision,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("evaluation failed: {e}")),
    };
    let mut response = match (&decision.blocked, mutate) {
        // Kyverno's denial: a Failure status without a code, which the API server answers with
        // 400 Bad Request (what clients and the real Kyverno's users see).
        (Some(message), _) => {
            json!({"uid": uid, "allowed": false, "status": {"status": "Failure", "message": message}})
        }
        (None, true) if !decision.patches.is_empty() => json!({
            "uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": B64.encode(serde_json::to_vec(&decision.patches).unwrap_or_default())
        }),
        (None, _) => json!({"uid": uid, "allowed": true}),
    };
    if !decision.warnings.is_empty() {
        response["warnings"] = json!(decision.warnings);
    }
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})).into_response()
}
