//! Child processes that must not outlive `sigstack` (the registry beside `up`, etcd and the API
//! server of `cluster up`), and the pid files that let a later start clean up after a crash.

use std::path::Path;
use std::time::{Duration, Instant};

/// Makes the child receive SIGKILL when this process dies, however it dies (kill -9 included):
/// Linux's parent-death signal, set in the child between fork and exec.
///
/// The signal follows the *thread* that forked, so callers spawn from the thread that lives as long
/// as the process (the `block_on` thread of the binary's runtime).
pub fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only calls async-signal-safe
    // functions (prctl, getppid, _exit); it touches no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then nobody would ever signal us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Whether `pid` is a running process whose command line contains every one of `markers`.
pub fn running_with(pid: u32, markers: &[&str]) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    markers.iter().all(|m| cmdline.contains(m))
}

/// Stops the process recorded in `pid_file` if it still runs with `markers` on its command line (a
/// child left behind by an earlier run that could not clean up), and returns its pid. A pid that
/// now belongs to another program is left alone.
pub fn stop_leftover(pid_file: &Path, markers: &[&str]) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let _ = std::fs::remove_file(pid_file);
    if !running_with(pid, markers) {
        return None;
    }
    // SAFETY: kill(2) touches no memory; the pid was just checked to run with `markers`.
    let signal = |sig| unsafe { libc::kill(pid as libc::pid_t, sig) };
    signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while running_with(pid, markers) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if running_with(pid, markers) {
        signal(libc::SIGKILL);
        while running_with(pid, markers) && Instant::now() < deadline + Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(pid)
}

/// Records a child's pid for [`stop_leftover`].
pub fn record(pid_file: &Path, pid: Option<u32>) -> anyhow::Result<()> {
    if let Some(pid) = pid {
        sigstack_state::write_public(pid_file, pid.to_string().as_bytes())?;
    }
    Ok(())
}
