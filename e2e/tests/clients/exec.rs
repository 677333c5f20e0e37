//! `sigstack exec`: a stack for the life of one command. Exit codes pass through, signals stop the
//! command and then the stack (nothing left behind), two run side by side, a failed start runs
//! nothing, and real clients sign and verify inside it with no other set-up.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sigstack_e2e::{GITHUB_ISSUER, cosign, processes_with, python, sigstack_bin, wait_for_condition};

fn exec(args: &[&str]) -> std::process::Output {
    Command::new(sigstack_bin()).arg("exec").args(args).env_remove("SIGSTACK_STATE_DIR").output().unwrap()
}

#[test]
fn exit_codes_pass_through() {
    assert_eq!(exec(&["--no-registry", "--", "true"]).status.code(), Some(0));
    assert_eq!(exec(&["--no-registry", "--", "sh", "-c", "exit 7"]).status.code(), Some(7));
    // A command killed by a signal: 128 + the signal, as a shell reports it.
    assert_eq!(exec(&["--no-registry", "--", "sh", "-c", "kill -TERM $$"]).status.code(), Some(128 + 15));
}

#[test]
fn the_command_sees_the_stack() {
    let output = exec(&[
        "--",
        "sh",
        "-c",
        "curl -fsS \"$SIGSTACK_REKOR_URL/api/v1/log\" >/dev/null && curl -fsS \"$SIGSTACK_REGISTRY_URL/v2/\" >/dev/null \
         && test -f \"$SIGSTACK_TRUSTED_ROOT\" && test -n \"$SIGSTORE_ID_TOKEN\" && echo \"$SIGSTACK_STATE_DIR\"",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let state_dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(!Path::new(&state_dir).exists(), "the temporary state directory {state_dir} is removed afterwards");
}

#[test]
fn a_failed_start_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let output = exec(&["--state-dir", not_a_dir.to_str().unwrap(), "--", "touch", marker.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the stack did not start; the command was not run"), "{stderr}");
    assert!(!marker.exists(), "the command must not run when the stack does not start");
}

#[test]
fn sigterm_and_ctrl_c_leave_no_process_behind() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let needle = format!("sleep 3{}", std::process::id() % 10);
        let mut child = Command::new(sigstack_bin())
            .args(["exec", "--state-dir", state.to_str().unwrap(), "--", "sh", "-c", &needle])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_condition("the command to start", Duration::from_secs(20), || {
            processes_with(&needle).len() >= 2 && state.join("stack.json").exists()
        });
        let registry_config = state.join("registry/config.yml").display().to_string();
        assert_eq!(processes_with(&registry_config).len(), 1, "a registry runs beside the stack");
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + if signal == "-TERM" { 15 } else { 2 }), "{signal}: the command's status");
        wait_for_condition(&format!("every process to end after {signal}"), Duration::from_secs(10), || {
            processes_with(&needle).is_empty() && processes_with(&registry_config).is_empty()
        });
        assert!(!state.join("stack.json").exists(), "{signal}: the stack stopped");
    }
}

#[test]
fn a_ctrl_c_while_the_stack_starts_never_runs_the_command_nor_ends_in_success() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let mut child = Command::new(sigstack_bin())
            .args(["exec", "--state-dir"])
            .arg(dir.path().join("state"))
            .args(["--", "touch"])
            .arg(&marker)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Inside the stack's start (keys are generated, the registry starts): long before the
        // command could run.
        std::thread::sleep(Duration::from_millis(30));
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "an interrupted exec must not succeed: {status}");
        assert!(!marker.exists(), "the command ran after the interrupt");
    }
}

#[test]
fn two_side_by_side_and_real_clients_inside() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        std::fs::write(dir.path().join("artifact.txt"), "signed inside sigstack exec\n").unwrap();
    }
    let venv_bin = python().parent().unwrap().to_path_buf();
    let identity = "https://github.com/sigstack-demo/app/.github/workflows/release.yml@refs/heads/main";
    // cosign v3 and sigstore-python, configured by nothing but the environment exec sets.
    let script = format!(
        r#"set -e
export HOME="$SIGSTACK_STATE_DIR"
{cosign} sign-blob --yes --signing-config "$SIGSTACK_SIGNING_CONFIG" --trusted-root "$SIGSTACK_TRUSTED_ROOT" \
  --identity-token "$SIGSTORE_ID_TOKEN" --bundle cosign.json artifact.txt
{cosign} verify-blob --trusted-root "$SIGSTACK_TRUSTED_ROOT" --bundle cosign.json \
  --certificate-identity {identity} --certificate-oidc-issuer {GITHUB_ISSUER} artifact.txt
{venv}/sigstore --trust-config "$SIGSTACK_TRUST_CONFIG" sign --bundle python.json artifact.txt
{venv}/sigstore --trust-config "$SIGSTACK_TRUST_CONFIG" verify identity --bundle python.json \
  --cert-identity {identity} --cert-oidc-issuer {GITHUB_ISSUER} artifact.txt
echo "$SIGSTACK_REKOR_URL"
"#,
        cosign = cosign("v3").display(),
        venv = venv_bin.display(),
    );
    let run = |dir: &Path| {
        Command::new(sigstack_bin())
            .args(["exec", "--no-registry", "--", "sh", "-c", &script])
            .current_dir(dir)
            .env_remove("SIGSTACK_STATE_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (run(dirs[0].path()), run(dirs[1].path()));
    let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    for output in [&first, &second] {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let url =
        |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().to_string();
    assert_ne!(url(&first), url(&second), "two stacks side by side have their own ports");
}
