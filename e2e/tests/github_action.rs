//! The GitHub Action (action.yml) as a runner calls it: its main step with temporary
//! `$GITHUB_ENV`, `$GITHUB_OUTPUT` and `$GITHUB_STATE` files and `INPUT_*` variables, the job's
//! later steps using what it exported (cosign v3 signs with the emulated workflow identity and
//! verifies), then its post step, after which nothing of the stack runs. actionlint checks the
//! action and the example workflow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sigstack_e2e::{GITHUB_ISSUER, cache_dir, cosign, run_ok, sigstack_bin, workspace_root};

fn actionlint() -> PathBuf {
    if let Some(path) = std::env::var_os("SIGSTACK_ACTIONLINT") {
        return PathBuf::from(path);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache_dir().join("bin"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("actionlint-")))
        .collect();
    found.sort();
    found.pop().expect("actionlint is not installed: run scripts/install.sh actionlint")
}

/// `NAME=value` lines of a runner file (`$GITHUB_ENV`, `$GITHUB_OUTPUT`, `$GITHUB_STATE`).
fn runner_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_action_and_the_example_workflow_pass_actionlint() {
    let root = workspace_root();
    let output = Command::new(actionlint())
        .current_dir(&root)
        .arg(".github/workflows/supply-chain-example.yml")
        .output()
        .unwrap();
    assert!(output.status.success(), "actionlint:\n{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn main_step_exports_a_stack_cosign_uses_and_the_post_step_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let files: BTreeMap<&str, PathBuf> =
        ["GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"].iter().map(|n| (*n, dir.path().join(n))).collect();
    for path in files.values() {
        std::fs::write(path, "").unwrap();
    }
    let runner = |script: &str, extra: &[(String, String)]| {
        let mut command = Command::new("node");
        command
            .arg(workspace_root().join("action").join(script))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("RUNNER_TEMP", dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "someone/else")
            .env("GITHUB_REF", "refs/heads/feature")
            // The inputs, named as the runner names them (hyphens kept).
            .env("INPUT_REGISTRY", "true")
            .env("INPUT_STATE-DIR", "")
            .env("INPUT_REPOSITORY", "acme/widget")
            .env("INPUT_WORKFLOW", ".github/workflows/release.yml")
            .env("INPUT_REF", "refs/heads/main")
            .env("INPUT_BINARY", sigstack_bin())
            .envs(files.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .envs(extra.iter().cloned());
        run_ok(&mut command)
    };
    runner("main.js", &[]);
    let env = runner_file(&files["GITHUB_ENV"]);
    let outputs = runner_file(&files["GITHUB_OUTPUT"]);
    let state = runner_file(&files["GITHUB_STATE"]);
    let state_dir = PathBuf::from(&outputs["state-dir"]);
    assert!(state_dir.join("stack.json").exists(), "the stack runs after the main step");
    assert_eq!(outputs["rekor-url"], env["SIGSTACK_REKOR_URL"]);
    assert!(outputs["registry-url"].starts_with("http://127.0.0.1:"), "{outputs:?}");
    assert!(Path::new(&outputs["trusted-root"]).exists());

    // A later step: cosign v3 with nothing but the exported environment; first the ready token,
    // then the emulated GitHub Actions ambient endpoint (no token given at all).
    std::fs::write(dir.path().join("artifact.txt"), "built in a workflow\n").unwrap();
    let identity = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main";
    for (bundle, ambient) in [("ready.json", false), ("ambient.json", true)] {
        let mut sign = Command::new(cosign("v3"));
        sign.current_dir(dir.path()).env_clear().env("HOME", dir.path()).envs(&env);
        sign.args(["sign-blob", "--yes", "--bundle", bundle]);
        sign.args([
            "--signing-config",
            &env["SIGSTACK_SIGNING_CONFIG"],
            "--trusted-root",
            &env["SIGSTACK_TRUSTED_ROOT"],
        ]);
        if !ambient {
            sign.args(["--identity-token", &env["SIGSTORE_ID_TOKEN"]]);
        }
        run_ok(sign.arg("artifact.txt"));
        let mut verify = Command::new(cosign("v3"));
        verify.current_dir(dir.path()).env_clear().env("HOME", dir.path());
        verify.args(["verify-blob", "--bundle", bundle, "--trusted-root", &env["SIGSTACK_TRUSTED_ROOT"]]);
        verify.args(["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER, "artifact.txt"]);
        run_ok(&mut verify);
    }

    // The post step, with the state the main step saved, as the runner passes it back.
    let pid = state["pid"].clone();
    runner("post.js", &[("STATE_pid".into(), pid.clone()), ("STATE_state_dir".into(), state["state_dir"].clone())]);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the stack's process is gone after the post step");
    assert!(!state_dir.join("stack.json").exists(), "the stack stopped cleanly");
}
