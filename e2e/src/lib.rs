//! Helpers for end-to-end tests: run the real `sigstack` binary as a child process and find what it
//! wrote. Tests talk to it only the way a user or a real client would: over HTTP and through files.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod containers;
pub mod crash;
pub mod fuzz;
pub mod real_servers;
pub mod resources;
pub mod rfc9162;
pub mod services;
pub mod tiles;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    e2e_dir().parent().expect("e2e lives in the workspace").to_path_buf()
}

/// Path of the `sigstack` binary: `$SIGSTACK_BIN`, else the workspace's debug build (built on demand).
pub fn sigstack_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SIGSTACK_BIN") {
        return PathBuf::from(bin);
    }
    static BUILD: std::sync::Once = std::sync::Once::new();
    let root = workspace_root();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "sigstack"])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p sigstack failed");
    });
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("debug/sigstack")
}

/// A `sigstack` command with its state directory set.
pub fn sigstack(state_dir: &Path) -> Command {
    let mut command = Command::new(sigstack_bin());
    command.env("SIGSTACK_STATE_DIR", state_dir);
    command
}

/// A running stack on ephemeral ports, stopped when dropped: in this process through the test kit
/// ([`Stack::start`], the default: fast, and many side by side share nothing), or as a `sigstack
/// up` child process ([`Stack::start_process`], for tests about the process itself: signals, kill -9).
pub struct Stack {
    inner: Inner,
    /// The state directory it runs on.
    pub state_dir: PathBuf,
    /// The parsed `stack.json`.
    pub description: serde_json::Value,
}

enum Inner {
    Process(Child),
    InProcess { runtime: Option<tokio::runtime::Runtime>, stack: Option<Box<sigstack::embedded::RunningStack>> },
}

impl Stack {
    /// Starts a stack in this process on `state_dir` with free ports (sticky across restarts on
    /// the same directory, as `sigstack up --ephemeral-ports`). `extra_args` takes `up`'s
    /// `--no-registry`, `--registry URL`, `--rekor v1|v2|both` and `--rekor-v2-dsse`.
    pub fn start(state_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Stack> {
        use sigstack::assemble::RekorVersions;
        use sigstack::embedded::{Ports, RegistryChoice, RunningStack, StackOptions};
        let mut options = StackOptions { ports: Ports::Ephemeral, ..StackOptions::new(state_dir) };
        let mut args = extra_args.iter();
        while let Some(arg) = args.next() {
            match *arg {
                "--no-registry" => options.registry = RegistryChoice::None,
                "--registry" => {
                    options.registry = RegistryChoice::Url(args.next().context("--registry URL")?.to_string())
                }
                "--rekor" => {
                    options.rekor = match args.next().copied() {
                        Some("v1") => RekorVersions::V1,
                        Some("v2") => RekorVersions::V2,
                        Some("both") => RekorVersions::Both,
                        other => bail!("--rekor v1|v2|both, not {other:?}"),
                    }
                }
                "--rekor-v2-dsse" => options.rekor_v2_dsse = true,
                "--allow-host" => {
                    options.exposure.allow_hosts.push(args.next().context("--allow-host HOST")?.to_string())
                }
                other => bail!("Stack::start does not take {other:?} (use start_process)"),
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let stack = run_on(&runtime, RunningStack::start(options))?;
        let description = serde_json::to_value(&stack.description)?;
        Ok(Stack {
            inner: Inner::InProcess { runtime: Some(runtime), stack: Some(Box::new(stack)) },
            state_dir: state_dir.to_path_buf(),
            description,
        })
    }

    /// Starts `sigstack up --ephemeral-ports` as a child process and waits until `stack.json`
    /// names it. Its messages go to `state_dir/stack.log` (shown when it fails to start).
    pub fn start_process(state_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(state_dir)?;
        let log_path = state_dir.join("stack.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let child = sigstack(state_dir)
            .args(["up", "--ephemeral-ports"])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn sigstack up")?;
        let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut stack = Stack {
            inner: Inner::Process(child),
            state_dir: state_dir.to_path_buf(),
            description: serde_json::Value::Null,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let stack_file = state_dir.join("stack.json");
        loop {
            let Inner::Process(child) = &mut stack.inner else { unreachable!() };
            if let Some(status) = child.try_wait()? {
                bail!("sigstack up exited early with {status}:\n{}", log_text());
            }
            if let Ok(bytes) = std::fs::read(&stack_file)
                && let Ok(description) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && description["pid"] == child.id()
            {
                stack.description = description;
                return Ok(stack);
            }
            if Instant::now() > deadline {
                bail!("sigstack up did not write {} within 30 s:\n{}", stack_file.display(), log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Base URL of a service named in `stack.json`.
    pub fn url(&self, service: &str) -> String {
        self.description["services"][service]
            .as_str()
            .unwrap_or_else(|| panic!("no {service} in stack.json"))
            .to_string()
    }

    /// The pid of the `sigstack up` process (a process stack only).
    pub fn pid(&self) -> u32 {
        match &self.inner {
            Inner::Process(child) => child.id(),
            Inner::InProcess { .. } => std::process::id(),
        }
    }

    /// Kills the stack with SIGKILL, as a crash or a CI job's hard stop would, and reaps it (a
    /// process stack only).
    pub fn kill(mut self) {
        match &mut self.inner {
            Inner::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Inner::InProcess { .. } => panic!("kill needs Stack::start_process"),
        }
    }

    /// Stops the stack (SIGTERM for a process) and waits for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        match &mut self.inner {
            Inner::InProcess { runtime, stack } => {
                if let (Some(runtime), Some(stack)) = (runtime.as_ref(), stack.take()) {
                    run_on(runtime, (*stack).stop())?;
                }
                use std::os::unix::process::ExitStatusExt;
                Ok(std::process::ExitStatus::from_raw(0))
            }
            Inner::Process(child) => {
                let pid = child.id().to_string();
                let _ = Command::new("kill").args(["-TERM", &pid]).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    if let Some(status) = child.try_wait()? {
                        return Ok(status);
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        bail!("sigstack did not stop within 10 s of SIGTERM");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Runs `future` on `runtime`'s workers and waits for it, from sync tests and async ones alike (a
/// `block_on` inside a test's own runtime would panic). The registry child is spawned from a worker,
/// which lives as long as the runtime, so its parent-death signal does not fire early.
fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = send.send(future.await);
    });
    receive.recv().expect("the stack's runtime answered")
}

impl Drop for Stack {
    fn drop(&mut self) {
        let running = match &mut self.inner {
            Inner::Process(child) => matches!(child.try_wait(), Ok(None)),
            Inner::InProcess { stack, .. } => stack.is_some(),
        };
        if running {
            let _ = self.terminate();
        }
        // Without waiting: dropping a runtime inside an async test's runtime would panic, and the
        // stack has stopped already.
        if let Inner::InProcess { runtime, .. } = &mut self.inner
            && let Some(runtime) = runtime.take()
        {
            runtime.shutdown_background();
        }
    }
}

/// The Python interpreter of the venv the scripts install sigstore-python into. Fails loudly when
/// it is missing: real-client tests are never skipped.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("SIGSTACK_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sigstack/venv"));
    let python = venv.join("bin/python");
    assert!(python.exists(), "sigstore-python is not installed at {}: run scripts/install.sh python", venv.display());
    python
}

/// Path of a client script under `e2e/clients/`.
pub fn client_script(relative: &str) -> PathBuf {
    e2e_dir().join("clients").join(relative)
}

/// Pids of the processes whose command line mentions `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
        .collect()
}

/// Polls `ready` every 50 ms until it gives a value, and returns it; past `within`, the test fails
/// naming what it was waiting for, so no test can hang on a wait.
pub fn wait_until<T>(what: &str, within: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_until`] for a condition.
pub fn wait_for_condition(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    wait_until(what, within, || done().then_some(()))
}

/// Runs a command and returns its stdout, panicking with both streams when it fails.
pub fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Mints a token with `sigstack token` for the stack on `state_dir`.
pub fn token(state_dir: &Path, args: &[&str]) -> String {
    run_ok(sigstack(state_dir).arg("token").args(args)).trim().to_string()
}

/// The issuer name the stack's GitHub Actions tokens carry.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The `sigstore` CLI of sigstore-python, pointed at the stack on `state_dir` with its trust config.
pub fn sigstore_python(state_dir: &Path) -> Command {
    let mut command = Command::new(python().parent().expect("venv bin").join("sigstore"));
    command.arg("--trust-config").arg(state_dir.join("trust/trust_config.json"));
    command
}

/// A blocking GET of a JSON document.
pub fn get_json(url: &str) -> serde_json::Value {
    let output = Command::new("curl").args(["-fsS", url]).output().expect("run curl");
    assert!(output.status.success(), "GET {url}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// A cosign build the scripts installed: `major` is `v2` or `v3`. `$SIGSTACK_COSIGN_V2`/`_V3`
/// name it; otherwise the newest under `~/.cache/sigstack/bin`. Missing is a loud failure.
pub fn cosign(major: &str) -> PathBuf {
    installed_tool(&format!("SIGSTACK_COSIGN_{}", major.to_ascii_uppercase()), &format!("cosign-{major}."), "cosign")
}

/// rekor-cli as the scripts installed it (`$SIGSTACK_REKOR_CLI`, else the newest under
/// `~/.cache/sigstack/bin`). Missing is a loud failure.
pub fn rekor_cli() -> PathBuf {
    installed_tool("SIGSTACK_REKOR_CLI", "rekor-cli-", "rekor-cli")
}

/// actionlint as the scripts installed it (`$SIGSTACK_ACTIONLINT`, else the newest under
/// `~/.cache/sigstack/bin`). Missing is a loud failure.
pub fn actionlint() -> PathBuf {
    installed_tool("SIGSTACK_ACTIONLINT", "actionlint-", "actionlint")
}

/// sigstore-go's sigstore-conformance client (`sign-bundle`, `verify-bundle`) as the scripts
/// installed it (`$SIGSTACK_SIGSTORE_GO`, else the newest under `~/.cache/sigstack/bin`).
pub fn sigstore_go() -> PathBuf {
    installed_tool("SIGSTACK_SIGSTORE_GO", "sigstore-go-conformance-", "sigstore-go")
}

/// sigstore/timestamp-authority's server, the real TSA sigstack's is compared with, as the scripts
/// built it (`$SIGSTACK_TIMESTAMP_SERVER`, else the cached build).
pub fn timestamp_server() -> PathBuf {
    installed_tool("SIGSTACK_TIMESTAMP_SERVER", "timestamp-server-", "timestamp-server")
}

/// sigstore/fulcio, the real CA sigstack's is compared with (`$SIGSTACK_FULCIO`, else the cached build).
pub fn fulcio_server() -> PathBuf {
    installed_tool("SIGSTACK_FULCIO", "fulcio-", "fulcio")
}

/// sigstore/rekor-tiles' POSIX server, the real Rekor v2 sigstack's is compared with.
pub fn rekor_tiles_server() -> PathBuf {
    installed_tool("SIGSTACK_REKOR_TILES", "rekor-tiles-posix-", "rekor-tiles")
}

/// The directory of the real Rekor v1: rekor-server, Trillian's log server and signer and its
/// MySQL schema (`$SIGSTACK_REKOR_V1`, else the newest complete `rekor-v1-*` the scripts built).
/// Missing is a loud failure.
pub fn rekor_v1_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("SIGSTACK_REKOR_V1") {
        return PathBuf::from(path);
    }
    newest_cached("rekor-v1-", |p| p.join(".complete").exists(), "rekor-v1")
}

/// The cache directory of the scripts (`$SIGSTACK_CACHE`, else `~/.cache/sigstack`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SIGSTACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sigstack"))
}

/// A binary named by `var`, else the newest `<prefix>*` under the cache's `bin/`.
fn installed_tool(var: &str, prefix: &str, install_target: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    newest_cached(prefix, |p| p.is_file(), install_target)
}

/// The newest `<prefix>*` under the cache's `bin/` that `keep` accepts; missing is a loud failure
/// naming the install target.
fn newest_cached(prefix: &str, keep: impl Fn(&std::path::Path) -> bool, install_target: &str) -> PathBuf {
    let bin = cache_dir().join("bin");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&bin)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| keep(p) && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("{prefix}* is not installed in {}: run scripts/install.sh {install_target}", bin.display())
    })
}

/// Where the scripts install sigstore-js (`$SIGSTACK_NODE_PREFIX`, else `~/.cache/sigstack/node`).
/// Missing is a loud failure.
pub fn node_prefix() -> PathBuf {
    let prefix = std::env::var_os("SIGSTACK_NODE_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sigstack/node"));
    assert!(
        prefix.join("node_modules/.bin/sigstore").exists(),
        "sigstore-js is not installed in {}: run scripts/install.sh node",
        prefix.display()
    );
    prefix
}

/// Starts `sigstack serve rekor --port 0` on `state_dir` and returns it with its URL (read from
/// its first line of output).
pub fn serve_rekor(state_dir: &Path) -> (Child, String) {
    serve(state_dir, "rekor")
}

/// Starts `sigstack serve SERVICE --port 0` on `state_dir` and returns it with its URL (read from
/// its first line of output).
pub fn serve(state_dir: &Path, service: &str) -> (Child, String) {
    spawn_reporting_url(sigstack(state_dir).args(["serve", service, "--port", "0"]).stderr(Stdio::null()))
}

/// Spawns a server that binds port 0 and prints the URL it got on its first line of output (as
/// `sigstack serve` and `sigstack webhook` do), and returns it with that URL. No port is chosen
/// before the server binds it, so none can be taken in between.
pub fn spawn_reporting_url(command: &mut Command) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("{command:?} printed no URL first: {line:?}"));
    (child, url.to_string())
}

/// cosign with a private HOME (no TUF cache or config of this machine leaks in), no CI variables,
/// and, for v2, the legacy trust variables of `trust/cosign.env` of `state_dir`.
pub fn cosign_command(major: &str, state_dir: &Path) -> Command {
    let mut command = Command::new(cosign(major));
    command.env_clear().env("HOME", state_dir).env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if major == "v2" {
        let trust = state_dir.join("trust");
        command
            .env("SIGSTORE_ROOT_FILE", trust.join("fulcio-chain.pem"))
            .env("SIGSTORE_REKOR_PUBLIC_KEY", trust.join("rekor.pub"))
            .env("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", trust.join("ctlog.pub"));
    }
    command
}

/// Puts `manifest` under `tag` of `repository` with the registry API at `registry_url`, as an
/// attacker with push access could.
pub fn put_manifest(registry_url: &str, repository: &str, tag: &str, manifest: &serde_json::Value) {
    let url = format!("{registry_url}/v2/{repository}/manifests/{tag}");
    let output = Command::new("curl")
        .args([
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            "@-",
            &url,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(manifest.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .expect("run curl");
    assert!(output.status.success(), "PUT {url}");
}

/// Uploads a blob to `repository` (monolithic upload) and returns its digest.
pub fn put_blob(registry_url: &str, repository: &str, bytes: &[u8]) -> String {
    let hex: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{hex}");
    let start = Command::new("curl")
        .args(["-fsS", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .arg(format!("{registry_url}/v2/{repository}/blobs/uploads/"))
        .output()
        .expect("run curl");
    let headers = String::from_utf8_lossy(&start.stdout).to_string();
    let location = headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or(l.strip_prefix("location: ")))
        .expect("the registry answers an upload location")
        .trim()
        .to_string();
    let location = if location.starts_with("http") { location } else { format!("{registry_url}{location}") };
    let separator = if location.contains('?') { '&' } else { '?' };
    let dir = tempfile::tempdir().expect("temporary directory");
    let blob_file = dir.path().join("blob");
    std::fs::write(&blob_file, bytes).expect("write the blob");
    run_ok(
        Command::new("curl")
            .args(["-fsS", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary"])
            .arg(format!("@{}", blob_file.display()))
            .arg(format!("{location}{separator}digest={digest}")),
    );
    digest
}

/// The e2e crate's directory, read at run time (cargo sets it for tests), so a test binary shared
/// by two clones through one target directory reads this clone's files.
fn e2e_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}
