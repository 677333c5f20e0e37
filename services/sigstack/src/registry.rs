//! The real distribution registry (Debian's `docker-registry`) as a child of `sigstack up`: its
//! own config (the packaged one enables htpasswd), storage in the state directory. It listens on a
//! unix socket in the state directory, which only this user reaches; sigstack serves the
//! registry's port itself and forwards to it ([`proxy_router`]), so the registry answers only to
//! the stack's names like every other service (the DNS-rebinding check) and its port is bound by
//! sigstack, never chosen and released.

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
    /// Starts `binary` on the unix socket [`socket_path`] with storage under
    /// `state_dir/registry`, and waits until it listens; `url` is where sigstack serves it.
    pub async fn start(binary: &Path, state_dir: &Path, url: String) -> anyhow::Result<Registry> {
        let dir = state_dir.join("registry");
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("create {}", dir.display()))?;
        let socket = socket_path(state_dir);
        // A unix socket path has a length limit (108 bytes on Linux): say so, not "invalid argument".
        anyhow::ensure!(
            socket.as_os_str().len() < 100,
            "the state directory's path is too long for the registry's socket ({}); use a shorter --state-dir",
            socket.display()
        );
        let _ = std::fs::remove_file(&socket);
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  net: unix\n  addr: {}\n",
            dir.join("data").display(),
            socket.display()
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
        let mut registry = Registry { child, url };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = registry.child.try_wait()? {
                bail!("docker-registry exited with {status}; see {}", dir.join("registry.log").display());
            }
            if tokio::net::UnixStream::connect(&socket).await.is_ok() {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not listen on {} within 15 s", socket.display());
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

/// The registry child's socket in `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("registry/registry.sock")
}

/// The registry's port as sigstack serves it: every request forwarded to the registry's socket
/// as it came (Host included, so the registry's Location headers name this port), the answer
/// streamed back.
pub fn proxy_router(socket: PathBuf) -> axum::Router {
    axum::Router::new().fallback(move |request: axum::extract::Request| forward(socket.clone(), request))
}

async fn forward(socket: PathBuf, request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let unavailable = |why: String| {
        sigstack_wire::ErrorEnvelope::Http
            .response(axum::http::StatusCode::BAD_GATEWAY, format!("the registry is not answering: {why}"))
    };
    let stream = match tokio::net::UnixStream::connect(&socket).await {
        Ok(stream) => stream,
        Err(e) => return unavailable(format!("{}: {e}", socket.display())),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return unavailable(e.to_string()),
        };
    tokio::spawn(connection);
    match sender.send_request(request).await {
        Ok(response) => response.map(axum::body::Body::new).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}
