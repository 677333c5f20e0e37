//! The container engine as a test peer (issue #15): the engine `scripts/test.sh` started (or the
//! user's own, through `DOCKER_HOST`) and the images it built. Missing is a loud failure, never a
//! skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run_ok;

fn engine_name() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "the default socket".into())
}

/// Fails the test at once, in one line, when no engine answers: a contributor running one test
/// with `cargo test` learns what is missing without a page of backtrace.
pub fn require_engine() {
    match Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output() {
        Ok(output) if output.status.success() => {}
        Ok(_) => panic!(
            "no Docker engine answers at {}: run scripts/test.sh (it starts one), or start Docker and set DOCKER_HOST",
            engine_name()
        ),
        Err(e) => panic!("no docker CLI ({e}): run scripts/test.sh, which installs and starts the engine"),
    }
}

/// The image named by `$variable`, which must exist in the engine.
fn image(variable: &str, default: &str) -> String {
    require_engine();
    let image = std::env::var(variable).unwrap_or_else(|_| default.to_string());
    let output = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &image]).output();
    match output {
        Ok(output) if output.status.success() => image,
        _ => panic!(
            "image {image} (${variable}) is not in the Docker engine at {}: run scripts/test.sh, which builds the images",
            engine_name()
        ),
    }
}

/// The sigstack image (`$SIGSTACK_IMAGE`, the scripts' `sigstack:dev`).
pub fn sigstack_image() -> String {
    image("SIGSTACK_IMAGE", "sigstack:dev")
}

/// The registry image (`$SIGSTACK_REGISTRY_IMAGE`, here Debian's docker-registry).
pub fn registry_image() -> String {
    image("SIGSTACK_REGISTRY_IMAGE", "sigstack/docker-registry:bookworm")
}

/// Loopback ports free at the moment of asking (oidc, fulcio, rekor, tuf, registry), for the
/// containers' published ports, which must be known before they start; [`Compose::up`] chooses
/// again when one was taken meanwhile.
fn free_ports() -> [u16; 5] {
    std::array::from_fn(|_| {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("its address").port()
    })
}

/// Waits until `url` answers 2xx.
pub fn wait_for(url: &str, within: Duration) {
    crate::wait_for_condition(&format!("{url} to answer"), within, || {
        Command::new("curl").args(["-fsS", "-o", "/dev/null", "-m", "2", url]).status().is_ok_and(|s| s.success())
    });
}

/// compose.yaml brought up for real under a project name of its own, with every published port
/// a free one; `down -v` when dropped.
pub struct Compose {
    /// The project name (`-p`).
    pub project: String,
    /// Host ports: oidc, fulcio, rekor, tuf, registry.
    pub ports: [u16; 5],
    file: PathBuf,
    images: [String; 2],
}

impl Compose {
    /// The compose.yaml of `root`, not started yet. Needs the engine and both images.
    pub fn new(root: &Path) -> Compose {
        Compose {
            project: format!("sigstack-e2e-{}", std::process::id()),
            ports: free_ports(),
            file: root.join("compose.yaml"),
            images: [sigstack_image(), registry_image()],
        }
    }

    /// `docker-compose ARGS` with this project's file, name, images and ports.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker-compose");
        command.arg("-f").arg(&self.file).args(["-p", &self.project]).args(args);
        command.env("SIGSTACK_IMAGE", &self.images[0]).env("SIGSTACK_REGISTRY_IMAGE", &self.images[1]);
        for (name, port) in ["OIDC", "FULCIO", "REKOR", "TUF", "REGISTRY"].iter().zip(self.ports) {
            command.env(format!("SIGSTACK_{name}_PORT"), port.to_string());
        }
        command
    }

    /// `up -d` (never building: the scripts built the images) and waits until the TUF repository
    /// and the registry answer on their published ports. The host ports must be chosen before
    /// the containers start (the stack writes them into its trust files), so one that another
    /// process took in between is met by choosing them again, never by a failed test.
    pub fn up(&mut self) {
        for attempt in 1.. {
            let output = self.command(&["up", "-d", "--no-build"]).output().expect("run docker-compose");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                break;
            }
            let taken = stderr.contains("address already in use") || stderr.contains("port is already allocated");
            assert!(taken && attempt < 5, "docker-compose up failed ({})\n{stderr}", output.status);
            let _ = self.command(&["down", "-v", "--remove-orphans"]).output();
            self.ports = free_ports();
        }
        wait_for(&format!("{}/timestamp.json", self.url(3)), Duration::from_secs(120));
        wait_for(&format!("{}/v2/", self.url(4)), Duration::from_secs(60));
    }

    /// The published URL of service `index` (oidc, fulcio, rekor, tuf, registry).
    pub fn url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[index])
    }

    /// The id of the container of `service`.
    pub fn container(&self, service: &str) -> String {
        run_ok(&mut self.command(&["ps", "-q", service])).trim().to_string()
    }

    /// Copies `/state/trust` out of the `tuf` container into `dir`.
    pub fn copy_trust(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        run_ok(Command::new("docker").arg("cp").arg(format!("{}:/state/trust", self.container("tuf"))).arg(dir));
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.command(&["down", "-v", "--remove-orphans"]).output();
    }
}

/// The Docker API version testcontainers 0.28 speaks (bollard 0.21's default, with no
/// negotiation).
pub const TESTCONTAINERS_API_VERSION: &str = "1.53";

/// The engine's newest API version (`GET /version`), e.g. `1.41` for Debian 12's 20.10.
pub fn engine_api_version() -> String {
    let version = run_ok(Command::new("docker").args(["version", "--format", "{{.Server.APIVersion}}"]));
    version.trim().to_string()
}

/// A unix socket in front of the engine that rewrites each request's `/v1.NN/` path prefix to the
/// engine's version. testcontainers 0.28 pins API 1.53 and an engine older than that (Debian 12's
/// docker.io 20.10 speaks 1.41) refuses every request with "client version 1.53 is too new"; the
/// calls testcontainers makes here (create, start, logs, inspect, remove) mean the same in both.
/// A user's current Docker needs none of this: [`docker_host_for_testcontainers`] only starts it
/// for an older engine.
pub struct ApiVersionShim {
    /// `unix://...` of the shim's socket.
    pub docker_host: String,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// The `DOCKER_HOST` testcontainers should use: the engine's own when it speaks
/// [`TESTCONTAINERS_API_VERSION`], else a shim's.
pub fn docker_host_for_testcontainers() -> (String, Option<ApiVersionShim>) {
    let engine = engine_api_version();
    let current = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let parse = |v: &str| v.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    if parse(&engine) >= parse(TESTCONTAINERS_API_VERSION) {
        return (current, None);
    }
    let engine_socket = PathBuf::from(current.strip_prefix("unix://").expect("the engine listens on a unix socket"));
    let shim = ApiVersionShim::start(engine_socket, engine);
    (shim.docker_host.clone(), Some(shim))
}

impl ApiVersionShim {
    fn start(engine_socket: PathBuf, engine_version: String) -> ApiVersionShim {
        let dir = tempfile::tempdir().expect("a directory for the shim's socket");
        let socket = dir.path().join("docker.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::UnixListener::bind(&socket).expect("bind the shim's socket")
        };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let engine_socket = engine_socket.clone();
                let engine_version = engine_version.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(request, engine_socket.clone(), engine_version.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ApiVersionShim { docker_host: format!("unix://{}", socket.display()), _dir: dir, _runtime: runtime }
    }
}

async fn forward(
    mut request: hyper::Request<hyper::body::Incoming>,
    engine_socket: PathBuf,
    engine_version: String,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let rewritten = match path_and_query.strip_prefix("/v1.").and_then(|rest| rest.split_once('/')) {
        Some((_, rest)) => format!("/v{engine_version}/{rest}"),
        None => path_and_query,
    };
    *request.uri_mut() = rewritten.parse()?;
    let upstream = tokio::net::UnixStream::connect(&engine_socket).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(upstream)).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}
