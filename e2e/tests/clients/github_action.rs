//! The GitHub Action (action.yml) as a runner calls it: its main step with temporary
//! `$GITHUB_ENV`, `$GITHUB_OUTPUT` and `$GITHUB_STATE` files and `INPUT_*` variables, the job's
//! later steps using what it exported (cosign v3 signs with the emulated workflow identity and
//! verifies), then its post step, after which nothing of the stack runs. actionlint checks the
//! action and the example workflow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sigstack_e2e::{GITHUB_ISSUER, actionlint, cosign, run_ok, sigstack_bin, workspace_root};

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

/// What the main step wrote: the runner's temporary directory (holding its files) and the
/// contents of `$GITHUB_ENV`, `$GITHUB_OUTPUT` and `$GITHUB_STATE`.
struct Run {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    state: BTreeMap<String, String>,
}

fn run_action(script: &str, dir: &Path, export_client_env: &str, extra: &[(String, String)]) {
    let files: BTreeMap<&str, PathBuf> =
        ["GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"].iter().map(|n| (*n, dir.join(n))).collect();
    let mut command = Command::new("node");
    command
        .arg(workspace_root().join("action").join(script))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("RUNNER_TEMP", dir)
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
        .env("INPUT_EXPORT-CLIENT-ENV", export_client_env)
        .envs(files.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .envs(extra.iter().cloned());
    run_ok(&mut command);
}

fn main_step(export_client_env: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for name in ["GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    run_action("main.js", dir.path(), export_client_env, &[]);
    let file = |name: &str| runner_file(&dir.path().join(name));
    let (env, outputs, state) = (file("GITHUB_ENV"), file("GITHUB_OUTPUT"), file("GITHUB_STATE"));
    Run { dir, env, outputs, state }
}

/// The post step, with the state the main step saved, as the runner passes it back.
fn post_step(run: &Run) {
    let pid = run.state["pid"].clone();
    let state = [("STATE_pid".into(), pid.clone()), ("STATE_state_dir".into(), run.state["state_dir"].clone())];
    run_action("post.js", run.dir.path(), "false", &state);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the stack's process is gone after the post step");
    assert!(!Path::new(&run.outputs["state-dir"]).join("stack.json").exists(), "the stack stopped cleanly");
}

#[test]
fn by_default_only_the_stacks_own_variables_reach_the_job() {
    let run = main_step("false");
    assert!(run.env.contains_key("SIGSTACK_REKOR_URL") && run.env.contains_key("SIGSTACK_TRUSTED_ROOT"));
    let foreign: Vec<&String> = run.env.keys().filter(|k| !k.starts_with("SIGSTACK_")).collect();
    assert!(foreign.is_empty(), "only SIGSTACK_* variables by default, not {foreign:?}");
    post_step(&run);
}

#[test]
fn main_step_exports_a_stack_cosign_uses_and_the_post_step_stops_it() {
    let run = main_step("true");
    for name in ["SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "SIGSTORE_ROOT_FILE"] {
        assert!(run.env.contains_key(name), "export-client-env exports {name}");
    }
    let (dir, env, outputs) = (&run.dir, &run.env, &run.outputs);
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
        sign.current_dir(dir.path()).env_clear().env("HOME", dir.path()).envs(env);
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

    post_step(&run);
}
