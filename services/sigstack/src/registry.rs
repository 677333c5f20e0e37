//! The real distribution registry (Debian's `docker-registry`) as a child of `sigstack up`: its
//! own config (the packaged one enables htpasswd), storage in the state directory, 127.0.0.1 only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The registry binary, if installed.
pub fn find_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("docker-registry"))
        .find(|candidate| candidate.is_file())
}

const PID_FILE: &str = "registry.pid";

/// Stops a registry of this state directory that is still running: one left by a `sigstack up`
/// that died before its child could (an older version, or a system without parent-death signals).
/// Called before ports are chosen, so the sticky registry port is free again.
pub fn stop_leftover(state_dir: &Path) {
    let dir = state_dir.join("registry");
    let config = dir.join("config.yml").display().to_string();
    if let Some(pid) = crate::child::stop_leftover(&dir.join(PID_FILE), &["serve", &config]) {
        eprintln!("sigstack: stopped the registry an earlier run left behind (pid {pid})");
    }
}

/// A running registry; killed when dropped.
pub struct Registry {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Registry {
    /// Starts `binary` on `127.0.0.1:port` with storage under `state_dir/registry`, and waits until
    /// `/v2/` answers.
    pub async fn start(binary: &Path, state_dir: &Path, port: u16) -> anyhow::Result<Registry> {
        let dir = state_dir.join("registry");
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("create {}", dir.display()))?;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        let config_path = dir.join("config.yml");
        sigstack_state::write_public(&config_path, config.as_bytes())?;
        let log = std::fs::File::create(dir.join("registry.log")).context("create registry.log")?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // kill_on_drop covers every orderly exit; the parent-death signal covers kill -9.
        crate::child::die_with_parent(&mut command);
        let child = command.spawn().with_context(|| format!("start {}", binary.display()))?;
        crate::child::record(&dir.join(PID_FILE), child.id())?;
        let url = format!("http://127.0.0.1:{port}");
        let mut registry = Registry { child, url };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = registry.child.try_wait()? {
                bail!("docker-registry exited with {status}; see {}", dir.join("registry.log").display());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on port {port} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the registry.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
