//! The issuer as a client sees it: discovery, JWKS, validation of every kind of token it mints, the
//! ambient endpoint, persistence of keys across restarts, and stacks side by side.

use std::process::Command;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};
use sigstack_e2e::{GITHUB_ISSUER, Stack, get_json, sigstack};

/// Validates `token` the way a relying party does: discovery → jwks_uri → key by `kid` → signature,
/// audience, issuer and expiry.
async fn validate(discovery_url: &str, token: &str, issuer: &str) -> Value {
    let discovery = get_json(&format!("{discovery_url}/.well-known/openid-configuration"));
    let jwks: JwkSet = serde_json::from_value(get_json(discovery["jwks_uri"].as_str().unwrap())).unwrap();
    let header = decode_header(token).unwrap();
    assert!(matches!(header.alg, Algorithm::RS256 | Algorithm::ES256));
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("kid in JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["sigstore"]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "aud", "iss", "sub"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims
}

fn cli_token(state_dir: &std::path::Path, args: &[&str]) -> String {
    let output = sigstack(state_dir).arg("token").args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn tokens_of_every_profile_and_algorithm_validate_against_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let oidc = stack.url("oidc");
    let discovery = get_json(&format!("{oidc}/.well-known/openid-configuration"));
    assert_eq!(discovery["issuer"], oidc.as_str());
    let client = reqwest::Client::new();
    for alg in ["RS256", "ES256"] {
        // Minted over HTTP by the running issuer...
        let body: Value = client
            .post(format!("{oidc}/token"))
            .json(&json!({"alg": alg, "repository": "acme/widget"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let claims = validate(&oidc, body["token"].as_str().unwrap(), GITHUB_ISSUER).await;
        assert_eq!(claims["sub"], "repo:acme/widget:ref:refs/heads/main");
        assert!(claims.get("email").is_none());
        // ...and from the state directory's keys by the CLI: the same JWKS validates both.
        let token = cli_token(dir.path(), &["--alg", alg, "--repo", "acme/widget", "--ttl", "2m"]);
        let claims = validate(&oidc, &token, GITHUB_ISSUER).await;
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
        let token = cli_token(dir.path(), &["--alg", alg, "--profile", "email", "--email", "dev@acme.test"]);
        let claims = validate(&oidc, &token, &oidc).await;
        assert_eq!(claims["email"], "dev@acme.test");
        assert_eq!(claims["email_verified"], true);
    }
    assert!(stack.stop().unwrap().success());
}

#[tokio::test]
async fn ambient_endpoint_through_sigstack_env() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &[]).unwrap();
    let output = sigstack(dir.path()).arg("env").output().unwrap();
    assert!(output.status.success());
    let env = String::from_utf8(output.stdout).unwrap();
    let var = |name: &str| {
        let line = env.lines().find(|l| l.starts_with(&format!("export {name}="))).unwrap();
        line.split_once('=').unwrap().1.trim_matches('\'').to_string()
    };
    let (url, secret) = (var("ACTIONS_ID_TOKEN_REQUEST_URL"), var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"));
    assert_eq!(var("SIGSTACK_OIDC_URL"), stack.url("oidc"));
    let client = reqwest::Client::new();
    // cosign's request: URL + "&audience=sigstore", `bearer` in lower case.
    let response = client
        .get(format!("{url}&audience=sigstore"))
        .header("Authorization", format!("bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = validate(&stack.url("oidc"), body["value"].as_str().unwrap(), GITHUB_ISSUER).await;
    assert_eq!(claims["aud"], "sigstore");
    for (auth, needle) in [(Some("bearer nope"), "does not match"), (None, "missing Authorization")] {
        let mut request = client.get(format!("{url}&audience=sigstore"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
}

#[tokio::test]
async fn restart_keeps_the_jwks_and_stacks_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let first = Stack::start(dir.path(), &[]).unwrap();
    let other = Stack::start(other_dir.path(), &[]).unwrap();
    assert_ne!(first.url("oidc"), other.url("oidc"));
    let jwks = get_json(&format!("{}/.well-known/jwks", first.url("oidc")));
    let other_jwks = get_json(&format!("{}/.well-known/jwks", other.url("oidc")));
    assert_ne!(jwks, other_jwks, "a new state directory is a new trust domain");
    assert!(first.stop().unwrap().success());
    assert!(!dir.path().join("stack.json").exists(), "a stopped stack withdraws its description");
    let again = Stack::start(dir.path(), &[]).unwrap();
    let jwks_again = get_json(&format!("{}/.well-known/jwks", again.url("oidc")));
    assert_eq!(jwks, jwks_again);
}

#[test]
fn cli_rejects_bad_input_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["token", "--ttl=-5m"], "lifetime"),
        (&["token", "--ttl", "0"], "ttl_seconds"),
        (&["token", "--repo", "noslash"], "ORG/REPO"),
        (&["token", "--profile", "robot"], "github-actions"),
        (&["token", "--claim", "novalue"], "NAME=VALUE"),
        (&["env"], "no stack is running"),
    ];
    for (args, needle) in cases {
        let output = sigstack(dir.path()).args(*args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let help = Command::new(sigstack_e2e::sigstack_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["up", "serve", "token", "env"] {
        assert!(help.contains(command), "--help lacks {command}");
    }
}

#[tokio::test]
async fn serve_oidc_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = sigstack_e2e::serve(dir.path(), "oidc");
    // It reported its URL once bound, so it answers at once.
    let discovery: Value =
        reqwest::get(format!("{url}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(discovery["issuer"], url.as_str());
}
