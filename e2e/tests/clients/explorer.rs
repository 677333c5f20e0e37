//! The explorer (issue 17) in a real browser: a stack with both logs runs the demo flow (build,
//! sign, attest in both formats, an unsigned image, `sigstack apply` admitting the signed Pod and
//! denying nginx:latest), then Debian's Chromium, driven by playwright-core, checks every page,
//! watches the log update live, saves screenshots (kept under the cache's screenshots/explorer;
//! `SIGSTACK_UPDATE_SCREENSHOTS=1` also refreshes docs/explorer for docs/explorer.md) and fails if any
//! request leaves the explorer.

use std::process::Command;

use serde_json::json;
use sigstack_e2e::{Stack, cache_dir, client_script, node_prefix, run_ok, sigstack, sigstack_bin, workspace_root};

const IDENTITY: &str = "https://github.com/sigstack-demo/app/.github/workflows/release.yml@refs/heads/main";

#[test]
fn the_explorer_shows_the_whole_chain_live_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--rekor", "both"]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(dir.path()).args(args)).trim().to_string();
    let digest = ok(&["build", "--name", "sigstack-demo/app", "--tag", "v1", "--app-version", "1.0.0"]);
    ok(&["sign", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    ok(&["attest", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    ok(&["build", "--name", "sigstack-demo/app", "--tag", "v2", "--app-version", "2.0.0"]);
    ok(&["sign", "sigstack-demo/app:v2", "--repo", "sigstack-demo/app", "--format", "bundle"]);
    ok(&["attest", "sigstack-demo/app:v2", "--repo", "sigstack-demo/app", "--format", "bundle"]);
    ok(&["build", "--name", "sigstack-demo/unsigned", "--tag", "v1", "--app-version", "u"]);
    let policy = dir.path().join("policy.yaml");
    ok(&["policy", "render", "--org", "sigstack-demo", "-o", policy.to_str().unwrap()]);
    let pods = dir.path().join("pods.yaml");
    std::fs::write(
        &pods,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: signed-app, namespace: default}}\nspec:\n  containers: [{{name: app, image: \"{registry}/sigstack-demo/app:v1\"}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: default}}\nspec:\n  containers: [{{name: web, image: \"nginx:latest\"}}]\n"
        ),
    )
    .unwrap();
    let apply =
        sigstack(dir.path()).args(["apply", "--policy"]).arg(&policy).arg("--resource").arg(&pods).output().unwrap();
    assert!(!apply.status.success(), "nginx:latest must be denied");

    let out = cache_dir().join("screenshots/explorer");
    let _ = std::fs::remove_dir_all(&out);
    let expect = json!({
        "identity": IDENTITY,
        "signed_section": "image-sigstack-demo-app-v1",
        "unsigned_section": "image-sigstack-demo-unsigned-v1",
        "denied_resource": "Pod/default/web",
        "admitted_resource": "Pod/default/signed-app",
        "search": digest,
    });
    let result = run_ok(
        Command::new("node")
            .arg(client_script("js/explorer.cjs"))
            .arg(node_prefix())
            .arg(stack.url("explorer"))
            .arg(&out)
            .arg(sigstack_bin())
            .arg(dir.path())
            .arg(expect.to_string()),
    );
    eprintln!("explorer in Chromium: {result}");
    for page in ["overview", "log", "certificate", "registry", "admission", "search"] {
        assert!(out.join(format!("{page}.png")).exists(), "no screenshot of {page}");
    }
    if std::env::var_os("SIGSTACK_UPDATE_SCREENSHOTS").is_some() {
        let docs = workspace_root().join("docs/explorer");
        std::fs::create_dir_all(&docs).unwrap();
        for page in ["overview", "log", "certificate", "registry", "admission"] {
            std::fs::copy(out.join(format!("{page}.png")), docs.join(format!("{page}.png"))).unwrap();
        }
    }
    drop(stack);
}
