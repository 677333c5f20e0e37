//! The explorer's router without a socket, pointed at a stack that is not running: every page
//! still answers (saying what it could not reach), unknown pages are 404, and trust files outside
//! the directory's own listing cannot be reached.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sigstack_explorer::{Explorer, ExplorerConfig, router};
use tower::ServiceExt;

async fn get(explorer: &Arc<Explorer>, path: &str) -> (StatusCode, String) {
    let response = router(explorer.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    (status, String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned())
}

fn explorer(dir: &std::path::Path) -> Arc<Explorer> {
    std::fs::create_dir_all(dir.join("trust")).unwrap();
    std::fs::write(dir.join("trust/rekor.pub"), "-----BEGIN PUBLIC KEY-----\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "not a trust file").unwrap();
    let services = [("rekor", "http://127.0.0.1:9"), ("registry", "http://127.0.0.1:9")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(Explorer::new(ExplorerConfig {
        services,
        trust_dir: dir.join("trust"),
        state_dir: dir.to_path_buf(),
        env: vec![("SIGSTACK_REKOR_URL".into(), "http://127.0.0.1:9".into())],
        identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
    }))
}

#[tokio::test]
async fn pages_answer_even_when_the_stack_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let explorer = explorer(dir.path());
    for path in ["/", "/log", "/registry", "/admission", "/search?q=acme", "/search"] {
        let (status, body) = get(&explorer, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("sigstack explorer"), "{path}");
        assert!(
            !body.contains("src=\"http") && !body.contains("href=\"http"),
            "{path}: a page links outside the explorer"
        );
    }
    let (_, overview) = get(&explorer, "/").await;
    assert!(overview.contains("✘ GET http://127.0.0.1:9"), "a service that is down is shown down");
    let (_, log) = get(&explorer, "/log").await;
    assert!(log.contains("trusted_root.json"), "the log page says the trust files are missing: {log}");
}

#[tokio::test]
async fn unknown_pages_and_paths_out_of_the_trust_directory_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let explorer = explorer(dir.path());
    let (status, body) = get(&explorer, "/trust/rekor.pub").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "-----BEGIN PUBLIC KEY-----\n"));
    for path in [
        "/nope",
        "/trust/secret.txt",
        "/trust/..%2Fsecret.txt",
        "/trust/%2e%2e%2fsecret.txt",
        "/certificate/v3/1",
        "/certificate/v1/x",
        "/certificate/v1/99999999999999999999",
    ] {
        let (status, body) = get(&explorer, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("not a trust file"), "{path}");
    }
}
