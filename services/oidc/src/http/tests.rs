use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::IssuerConfig;

fn issuer(dir: &std::path::Path) -> Arc<Issuer> {
    Arc::new(Issuer::open(dir, IssuerConfig::new("http://127.0.0.1:9")).unwrap())
}

async fn call(app: Router, request: Request<Body>) -> (StatusCode, serde_json::Value, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), text)
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn discovery_points_at_the_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(issuer(dir.path()));
    let (status, doc, _) =
        call(app.clone(), Request::get("/.well-known/openid-configuration").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], "http://127.0.0.1:9");
    assert_eq!(doc["jwks_uri"], "http://127.0.0.1:9/.well-known/jwks");
    let (status, jwks, _) = call(app, Request::get("/.well-known/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn mint_json_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(issuer(dir.path()));
    let (status, body, _) = call(app.clone(), post_json("/token", r#"{"repository":"acme/w","alg":"ES256"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims_of(body["token"].as_str().unwrap());
    assert_eq!(claims["repository"], "acme/w");
    let (status, _, text) =
        call(app, Request::get("/token?profile=email&email=a@b.test&ttl=5m").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let claims = claims_of(&text);
    assert_eq!(claims["email"], "a@b.test");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(issuer(dir.path()));
    let cases = [
        (post_json("/token", r#"{"profile":"robot"}"#), StatusCode::BAD_REQUEST, "profile"),
        (post_json("/token", r#"{"ttl_seconds":-1}"#), StatusCode::BAD_REQUEST, "ttl_seconds"),
        (post_json("/token", r#"{"repository": 5}"#), StatusCode::BAD_REQUEST, "repository"),
        (post_json("/token", r#"{"nonsense": 1}"#), StatusCode::BAD_REQUEST, "nonsense"),
        (post_json("/token", r#"{"alg":"HS256"}"#), StatusCode::BAD_REQUEST, "alg"),
        (post_json("/token", "{not json"), StatusCode::BAD_REQUEST, "JSON"),
        (Request::post("/token").body(Body::from("{}")).unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type"),
        (Request::get("/token?profile=robot").body(Body::empty()).unwrap(), StatusCode::BAD_REQUEST, "profile"),
        (Request::get("/token?ttl=-3m").body(Body::empty()).unwrap(), StatusCode::BAD_REQUEST, "lifetime"),
        (Request::get("/token?bogus=1").body(Body::empty()).unwrap(), StatusCode::BAD_REQUEST, "bogus"),
        (Request::get("/nowhere").body(Body::empty()).unwrap(), StatusCode::NOT_FOUND, "/nowhere"),
        (Request::delete("/token").body(Body::empty()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, "method"),
        (Request::get("/authorize").body(Body::empty()).unwrap(), StatusCode::BAD_REQUEST, "non-interactive"),
    ];
    for (request, expected, needle) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body, text) = call(app.clone(), request).await;
        assert_eq!(status, expected, "{what}: {text}");
        assert_eq!(body["code"], expected.as_u16(), "{what}: {text}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{what}: {text} lacks {needle}");
    }
}

#[tokio::test]
async fn ambient_endpoint_requires_the_bearer_and_honours_audience() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let secret = issuer.actions_request_token().to_string();
    let url = issuer.actions_token_url();
    let path = url.trim_start_matches("http://127.0.0.1:9");
    assert!(path.contains('?'), "cosign appends &audience=, so the URL needs a query already");
    let app = router(issuer);
    let with_auth = |auth: Option<&str>| {
        let mut builder = Request::get(format!("{path}&audience=sigstore"));
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(Body::empty()).unwrap()
    };
    let (status, body, _) = call(app.clone(), with_auth(Some(&format!("bearer {secret}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims_of(body["value"].as_str().unwrap())["aud"], "sigstore");
    let (status, body, _) = call(app.clone(), with_auth(Some(&format!("Bearer {secret}")))).await;
    assert_eq!(status, StatusCode::OK, "scheme is case-insensitive: {body}");
    let (status, body, _) = call(app.clone(), with_auth(Some("bearer wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("does not match"));
    let (status, body, _) = call(app.clone(), with_auth(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("missing Authorization"));
    let request = Request::get(format!("{path}&audience=other&repository=acme/x"))
        .header("authorization", format!("bearer {secret}"))
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(app, request).await;
    assert_eq!(status, StatusCode::OK);
    let claims = claims_of(body["value"].as_str().unwrap());
    assert_eq!(claims["aud"], "other");
    assert_eq!(claims["repository"], "acme/x");
}
