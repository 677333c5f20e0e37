//! The project's shell scripts pass shellcheck (installed by scripts/install.sh).

use std::process::Command;

use sigstack_e2e::workspace_root;

#[test]
fn scripts_pass_shellcheck() {
    let root = workspace_root();
    let mut scripts: Vec<_> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.push(root.join(".ci/run"));
    let output = Command::new("shellcheck")
        .arg("-x")
        .args(&scripts)
        .current_dir(&root)
        .output()
        .expect("shellcheck is installed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}
