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
