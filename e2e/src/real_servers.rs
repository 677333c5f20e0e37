//! The real Sigstore servers as test peers (issue 29): started on loopback, killed when dropped,
//! and one table per comparison of what sigstack's service and the real one answered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::run_ok;

/// A real server process and its URL; killed when dropped.
pub struct RealServer {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now (for servers that cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Spawns `command`, which logs to standard error, and reads its log until a line contains
/// `ready`; returns the server with that line, or `None` when it stopped or found its port taken
/// first (the caller tries again on other ports). The rest of the log is drained so the server
/// never blocks on a full pipe.
pub fn start_logged(command: &mut Command, url: impl Fn(&str) -> String, ready: &str) -> Option<RealServer> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {command:?} (scripts/install.sh builds the real servers): {e}"));
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut found = None;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if line.contains(ready) {
            found = Some(url(&line));
            break;
        }
        if line.contains("address already in use") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    match found {
        Some(url) => Some(RealServer { child, url }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// POSTs `body` as `content_type` to `url`; returns (status, body).
pub fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (request, response) = (dir.path().join("request"), dir.path().join("response"));
    std::fs::write(&request, body).unwrap();
    let status = run_ok(
        Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&response)
            .args(["-w", "%{http_code}", "-X", "POST", "-H", &format!("Content-Type: {content_type}"), "--data-binary"])
            .arg(format!("@{}", request.display()))
            .arg(url),
    );
    (status.trim().parse().unwrap(), std::fs::read(&response).unwrap_or_default())
}

/// A refusal as a table cell: status, gRPC code when there is one, message.
pub fn describe(name: &str, status: u16, body: &[u8], granted: &str) -> String {
    if status < 300 {
        return format!("{status} {granted}");
    }
    let error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = error["message"].as_str().unwrap_or_else(|| panic!("{name}: an error without a message: {error}"));
    let message: String = message.replace('|', "/").chars().take(140).collect();
    match &error["code"] {
        Value::Number(code) if code.as_u64() != Some(status.into()) => format!("{status} (gRPC {code}) {message}"),
        _ => format!("{status} {message}"),
    }
}

/// The table of one comparison: a row per request, and the requests answered with another status
/// than the real server's that are not listed as different on purpose.
pub struct Differential {
    rows: Vec<String>,
    different: Vec<String>,
    on_purpose: &'static [&'static str],
}

impl Differential {
    /// A table comparing sigstack with `real`; `on_purpose` names the requests documented as
    /// answered differently.
    pub fn new(real: &str, on_purpose: &'static [&'static str]) -> Differential {
        Differential {
            rows: vec![format!("| request | sigstack | {real} |"), "|---|---|---|".into()],
            different: Vec::new(),
            on_purpose,
        }
    }

    /// One request's two answers.
    pub fn record(&mut self, name: &str, ours: (u16, String), real: (u16, String)) {
        self.rows.push(format!("| {name} | {} | {} |", ours.1, real.1));
        if ours.0 != real.0 && !self.on_purpose.contains(&name) {
            self.different.push(format!("{name}: sigstack {}, real {}", ours.1, real.1));
        }
    }

    /// Writes the table to `~/.cache/sigstack/logs/<log>` and fails on any undocumented difference.
    pub fn finish(self, log: &str) {
        let path = crate::cache_dir().join("logs").join(log);
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        let table = self.rows.join("\n") + "\n";
        std::fs::write(&path, &table).unwrap();
        assert!(
            self.different.is_empty(),
            "sigstack answers differently from the real server:\n{}\n\n{table}",
            self.different.join("\n")
        );
    }
}

/// The real Rekor v1 (sigstore/rekor's server) and what it needs: Debian's MariaDB on a unix
/// socket in a directory of its own (Trillian's schema loaded in bootstrap mode, no grant tables:
/// nothing else can reach it), Trillian's log server and signer, and rekor-server in front with an
/// in-memory signer, a tree it creates itself and its search index in the same database. All are
/// killed when dropped. rekor-server binds its metrics on the fixed port 2112 as well, so only one
/// runs at a time.
pub struct RealRekorV1 {
    // Dropped in order: rekor-server first, the database last, then the lock.
    _servers: Vec<RealServer>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
    /// rekor-server's base URL.
    pub url: String,
}

/// Held while a real Rekor v1 runs (its metrics port is fixed).
static REKOR_V1: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl RealRekorV1 {
    /// Starts the four processes under `dir`, once any other test's have stopped.
    pub fn start(dir: &std::path::Path) -> RealRekorV1 {
        let one_at_a_time = REKOR_V1.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tools = crate::rekor_v1_dir();
        let data = dir.join("mariadb");
        std::fs::create_dir_all(&data).unwrap();
        let schema = std::fs::read_to_string(tools.join("trillian-storage.sql"))
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/install.sh rekor-v1 builds it)", tools.display()));
        // Debian installs it in /usr/sbin, which a user's PATH may not hold.
        let mariadbd = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("mariadbd");
        let mut bootstrap = Command::new(mariadbd)
            .args(["--no-defaults", "--bootstrap", "--user=root"])
            .arg(format!("--datadir={}", data.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run mariadbd (scripts/install.sh rekor-v1 installs mariadb-server-core): {e}"));
        use std::io::Write;
        let sql = format!("CREATE DATABASE trillian;\nUSE trillian;\n{schema}\n");
        bootstrap.stdin.take().expect("stdin").write_all(sql.as_bytes()).unwrap();
        assert!(bootstrap.wait().unwrap().success(), "mariadbd --bootstrap with Trillian's schema failed");
        let socket = dir.join("mariadb.sock");
        let database = start_logged(
            Command::new(mariadbd)
                .args(["--no-defaults", "--skip-networking", "--skip-grant-tables", "--user=root"])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.join("mariadb.pid").display())),
            |_| String::new(),
            "ready for connections",
        )
        .expect("mariadbd did not start");
        let dsn = format!("root@unix({})/trillian?parseTime=true&interpolateParams=true", socket.display());
        let trillian = |binary: &str, extra: &[&str]| {
            for _ in 0..5 {
                let (rpc, http) = (free_port(), free_port());
                let mut command = Command::new(tools.join(binary));
                command
                    .args(["--quota_system=noop", "--storage_system=mysql", "--alsologtostderr"])
                    .arg(format!("--mysql_uri={dsn}"))
                    .arg(format!("--rpc_endpoint=127.0.0.1:{rpc}"))
                    .arg(format!("--http_endpoint=127.0.0.1:{http}"))
                    .args(extra);
                if let Some(server) = start_logged(&mut command, |_| rpc.to_string(), "RPC server starting on") {
                    return server;
                }
            }
            panic!("{binary} did not start");
        };
        let log_server = trillian("trillian_log_server", &[]);
        let signer = trillian("trillian_log_signer", &["--force_master", "--sequencer_interval=50ms"]);
        let rekor = (0..5)
            .find_map(|_| {
                let port = free_port();
                start_logged(
                    Command::new(tools.join("rekor-server"))
                        .args(["serve", "--rekor_server.address=127.0.0.1", "--rekor_server.signer=memory"])
                        .arg(format!("--port={port}"))
                        .args(["--trillian_log_server.address=127.0.0.1", "--search_index.storage_provider=mysql"])
                        .arg(format!("--trillian_log_server.port={}", log_server.url))
                        .arg(format!("--search_index.mysql.dsn={dsn}")),
                    |_| format!("http://127.0.0.1:{port}"),
                    "Serving rekor server at",
                )
            })
            .expect("rekor-server did not start");
        let url = rekor.url.clone();
        RealRekorV1 { _servers: vec![rekor, signer, log_server, database], _one_at_a_time: one_at_a_time, url }
    }
}

/// The clients as judges of a real server's answers: the stack's signing config and trusted root,
/// edited to name the real server (in place of, or beside, the stack's service), written for
/// cosign v3 (`--signing-config`, `--trusted-root`) and sigstore-python (`--trust-config`); each
/// client signs a blob through it, and every bundle must verify with the edited trusted root and
/// be refused by cosign with the stack's own.
pub struct ClientJudges {
    state: std::path::PathBuf,
    /// The blob the clients sign.
    pub artifact: std::path::PathBuf,
    signing_config: std::path::PathBuf,
    trusted_root: std::path::PathBuf,
    trust_config: std::path::PathBuf,
}

impl ClientJudges {
    /// The stack's trust files of `state`, edited by `edit(signing_config, trusted_root)`, written
    /// under `dir`.
    pub fn new(dir: &std::path::Path, state: &std::path::Path, edit: impl FnOnce(&mut Value, &mut Value)) -> Self {
        let trust = state.join("trust");
        let read = |name: &str| serde_json::from_slice::<Value>(&std::fs::read(trust.join(name)).unwrap()).unwrap();
        let (mut signing, mut root) = (read("signing_config.v0.2.json"), read("trusted_root.json"));
        edit(&mut signing, &mut root);
        let mut config = read("trust_config.json");
        config["trustedRoot"] = root.clone();
        config["signingConfig"] = signing.clone();
        let write = |name: &str, value: &Value| {
            let path = dir.join(name);
            std::fs::write(&path, value.to_string()).unwrap();
            path
        };
        let artifact = dir.join("artifact.txt");
        std::fs::write(&artifact, b"judged by the clients\n").unwrap();
        ClientJudges {
            state: state.to_path_buf(),
            artifact,
            signing_config: write("judges-signing-config.json", &signing),
            trusted_root: write("judges-trusted-root.json", &root),
            trust_config: write("judges-trust-config.json", &config),
        }
    }

    fn sigstore_python() -> Command {
        Command::new(crate::python().parent().expect("venv bin").join("sigstore"))
    }

    /// cosign v3 and sigstore-python each sign the blob with `token` through the edited signing
    /// config; returns (client, bundle path).
    pub fn sign(&self, token: &str) -> Vec<(&'static str, std::path::PathBuf)> {
        let dir = self.artifact.parent().expect("a directory");
        let (cosign, python) = (dir.join("cosign-v3.sigstore.json"), dir.join("sigstore-python.sigstore.json"));
        run_ok(
            crate::cosign_command("v3", &self.state)
                .args(["sign-blob", "--yes", "--identity-token", token, "--signing-config"])
                .arg(&self.signing_config)
                .arg("--trusted-root")
                .arg(&self.trusted_root)
                .arg("--bundle")
                .arg(&cosign)
                .arg(&self.artifact),
        );
        run_ok(
            Self::sigstore_python()
                .arg("--trust-config")
                .arg(&self.trust_config)
                .args(["sign", "--identity-token", token, "--bundle"])
                .arg(&python)
                .arg(&self.artifact),
        );
        vec![("cosign v3", cosign), ("sigstore-python", python)]
    }

    /// `bundle` (made by `who`) verifies for `identity` of `issuer` with cosign v3 and
    /// sigstore-python on the edited trusted root, and cosign v3 refuses it on the stack's own.
    pub fn assert_verified(&self, who: &str, bundle: &std::path::Path, identity: &str, issuer: &str) {
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
        let cosign = |trusted_root: &std::path::Path| {
            crate::cosign_command("v3", &self.state)
                .args(["verify-blob", "--trusted-root"])
                .arg(trusted_root)
                .arg("--bundle")
                .arg(bundle)
                .args(["--certificate-identity", identity, "--certificate-oidc-issuer", issuer])
                .arg(&self.artifact)
                .output()
                .unwrap()
        };
        let accepted = cosign(&self.trusted_root);
        assert!(accepted.status.success(), "cosign v3 refused {who}'s bundle: {}", text(&accepted));
        let refused = cosign(&self.state.join("trust/trusted_root.json"));
        assert!(!refused.status.success(), "cosign v3 accepted {who}'s bundle with the stack's own trusted root");
        let python = Self::sigstore_python()
            .arg("--trust-config")
            .arg(&self.trust_config)
            .args(["verify", "identity", "--bundle"])
            .arg(bundle)
            .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
            .arg(&self.artifact)
            .output()
            .unwrap();
        assert!(python.status.success(), "sigstore-python refused {who}'s bundle: {}", text(&python));
    }
}
