//! The registry beside `sigstack up` never outlives it: a stack killed with SIGKILL takes its
//! registry with it, and a registry some earlier run left behind is stopped by the next `up` on
//! the same state directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sigstack_e2e::{Stack, processes_with};

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    sigstack_e2e::wait_for_condition(what, Duration::from_secs(10), done)
}

fn registry_config(dir: &Path) -> String {
    dir.join("registry/config.yml").display().to_string()
}

#[test]
fn a_killed_stack_takes_its_registry_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = registry_config(dir.path());
    let stack = Stack::start_process(dir.path(), &[]).unwrap();
    assert_eq!(processes_with(&config).len(), 1, "one registry runs beside the stack");
    stack.kill();
    wait_until("the registry dies with its stack", || processes_with(&config).is_empty());
}

#[test]
fn up_stops_a_registry_an_earlier_run_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = registry_config(dir.path());
    Stack::start_process(dir.path(), &[]).unwrap().stop().unwrap();
    // What an older sigstack left after kill -9: the registry still serving this state directory,
    // in its own session, its pid recorded.
    let mut orphan = Command::new("setsid")
        .args(["docker-registry", "serve", &config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let orphan_pid = orphan.id();
    std::fs::write(dir.path().join("registry/registry.pid"), orphan_pid.to_string()).unwrap();
    wait_until("the orphan runs", || processes_with(&config).contains(&orphan_pid));

    let stack = Stack::start_process(dir.path(), &[]).unwrap();
    let running = processes_with(&config);
    assert!(!running.contains(&orphan_pid), "the orphan was stopped");
    orphan.wait().unwrap();
    assert_eq!(running.len(), 1, "only the new stack's registry serves the state directory");
    let registry = stack.url("registry");
    let answer = Command::new("curl").args(["-fsS", &format!("{registry}/v2/")]).output().unwrap();
    assert!(answer.status.success(), "the new registry answers");
    stack.stop().unwrap();
    wait_until("the registry stops with its stack", || processes_with(&config).is_empty());
}
