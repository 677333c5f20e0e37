//! sigstack beside the real servers it stands in for (issue 29): timestamps (sigstack's TSA vs
//! sigstore/timestamp-authority v2.1.3), certificates (sigstack's CA vs Fulcio v1.8.8, both trusting
//! one sigstack issuer) and Rekor v2 appends (sigstack vs rekor-tiles v2.3.0 on its POSIX backend),
//! with the same load generator and the same requests, each server pinned to core 1 with `taskset`
//! when the machine has it (the load generator runs beside it). Cold start to the first answer, and
//! resident memory after the load.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use base64::engine::general_purpose::STANDARD as B64;

use crate::{Args, Report, load, rss_mb};

/// A server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    started_in: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` run on core 1 when `taskset` exists (it execs, so the pid is the server's).
fn pinned(program: &Path) -> Command {
    if Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success()) {
        let mut command = Command::new("taskset");
        command.arg("-c").arg("1").arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Where a server's URL comes from: a line of its output with `marker` and the URL on it, or a port
/// chosen before it started (servers that cannot report one).
enum Url<'a> {
    Reported { from_stderr: bool, marker: &'a str },
    Known(String),
}

/// Spawns `command`, finds its URL, and times the start to its first HTTP answer (any status).
fn start(mut command: Command, url: Url<'_>) -> anyhow::Result<Server> {
    let started = Instant::now();
    let url = match url {
        Url::Known(url) => {
            let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
            return wait_for_answer(&mut child, &url, started).map(|started_in| Server { child, url, started_in });
        }
        Url::Reported { from_stderr, marker } => (from_stderr, marker),
    };
    let (from_stderr, marker) = url;
    let mut child = if from_stderr {
        command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?
    };
    let output: Box<dyn std::io::Read + Send> = match from_stderr {
        true => Box::new(child.stderr.take().expect("stderr")),
        false => Box::new(child.stdout.take().expect("stdout")),
    };
    let mut lines = BufReader::new(output).lines();
    let url = loop {
        let line = lines.next().ok_or_else(|| anyhow::anyhow!("{command:?} stopped before serving"))??;
        if line.contains(marker)
            && let Some(at) = line.find("http://")
        {
            break line[at..].split(|c: char| c.is_whitespace() || c == '"').next().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let started_in = wait_for_answer(&mut child, &url, started)?;
    Ok(Server { child, url, started_in })
}

/// Time from `started` until `url` gives any HTTP answer.
fn wait_for_answer(child: &mut Child, url: &str, started: Instant) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // curl exits 0 on any HTTP answer without -f: the server is up.
        if Command::new("curl").args(["-sS", "-o", "/dev/null", url]).stderr(Stdio::null()).status()?.success() {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(child.try_wait()?.is_none(), "{url}: the server exited");
        anyhow::ensure!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tool(var: &str, cached: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sigstack/bin").join(cached)
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// One side-by-side measurement: both servers, the path, the requests (fresh for each load when
/// `distinct`: a log takes an entry once).
struct Comparison<'a, F: Fn() -> Vec<Value>> {
    key: &'a str,
    what: &'a str,
    servers: [(&'a str, &'a Server); 2],
    path: &'a str,
    requests: F,
    distinct: bool,
}

/// One load at each concurrency against both servers; a row per concurrency with the ratio.
async fn compare<F: Fn() -> Vec<Value>>(report: &mut Report, comparison: Comparison<'_, F>, seconds: u64) {
    let Comparison { key, what, servers, path, requests, distinct } = comparison;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("http client");
    for c in [1, 16, 64] {
        let mut figures = Vec::new();
        for (_, server) in servers {
            figures.push(
                load(&client, &format!("{}{path}", server.url), Arc::new(requests()), c, seconds, distinct).await,
            );
        }
        let (ours, theirs) = (&figures[0], &figures[1]);
        report.add(
            &format!("{key}_c{c}"),
            &format!("{what}, concurrency {c}: sigstack / {} (p99 ms)", servers[1].0),
            format!("{:.0} / {:.0} /s", ours.rate, theirs.rate),
            &format!(
                "{:.1}x the throughput, p99 {:.2} / {:.2} ms; errors {} / {}",
                ours.rate / theirs.rate.max(1e-9),
                ours.p99,
                theirs.p99,
                ours.errors,
                theirs.errors
            ),
            json!({"sigstack": {"rate": ours.rate, "p50_ms": ours.p50, "p99_ms": ours.p99, "errors": ours.errors},
                   servers[1].0: {"rate": theirs.rate, "p50_ms": theirs.p50, "p99_ms": theirs.p99, "errors": theirs.errors}}),
        );
    }
    for (name, server) in servers {
        report.add(
            &format!("{key}_start_{}", name.replace([' ', '.'], "_")),
            &format!("{name}: cold start to first answer / resident memory after"),
            format!("{:.0} ms / {:.0} MB", server.started_in.as_secs_f64() * 1000.0, rss_mb(server.child.id())),
            "",
            json!({"start_ms": server.started_in.as_secs_f64() * 1000.0, "rss_mb": rss_mb(server.child.id())}),
        );
    }
}

pub(crate) async fn side_by_side(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    println!("sigstack beside the real servers (same load generator, same requests; servers on core 1)");
    let dir = tempfile::tempdir()?;

    // Timestamps.
    let mut ours = pinned(&args.sigstack);
    ours.args(["serve", "tsa", "--port", "0", "--state-dir"]).arg(dir.path().join("tsa"));
    let ours = start(ours, Url::Reported { from_stderr: false, marker: "listening on" })?;
    let mut real = pinned(&tool("SIGSTACK_TIMESTAMP_SERVER", "timestamp-server-v2.1.3"));
    real.args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--timestamp-signer",
        "memory",
        "--disable-ntp-monitoring",
    ]);
    let real = start(real, Url::Reported { from_stderr: true, marker: "Serving timestamp server at" })?;
    let timestamps = || {
        (0..1024u32)
            .map(|i| {
                let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &i.to_be_bytes());
                json!({"artifactHash": B64.encode(hash.as_ref()), "hashAlgorithm": "sha256", "certificates": true, "nonce": i})
            })
            .collect()
    };
    let servers = [("sigstack", &ours), ("timestamp-authority v2.1.3", &real)];
    let comparison = Comparison {
        key: "real_tsa",
        what: "timestamps/s",
        servers,
        path: "/api/v1/timestamp",
        requests: timestamps,
        distinct: false,
    };
    compare(report, comparison, args.seconds).await;
    drop((ours, real));

    // Certificates. Both CAs trust one sigstack issuer, whose tokens name its own URL as `iss` (the
    // mode Fulcio needs to find its discovery document); sigstack's CA is told with --issuer-config.
    let mut issuer = Command::new(&args.sigstack);
    issuer.args(["serve", "oidc", "--port", "0", "--state-dir"]).arg(dir.path().join("oidc"));
    let issuer = start(issuer, Url::Reported { from_stderr: false, marker: "listening on" })?;
    let tokens: Vec<String> = (0..64)
        .map(|_| {
            let output = Command::new(&args.sigstack)
                .args(["token", "--state-dir"])
                .arg(dir.path().join("oidc"))
                .args(["--issuer", &issuer.url, "--repo", "acme/app", "--ttl", "1h"])
                .output()?;
            anyhow::ensure!(output.status.success(), "sigstack token: {}", String::from_utf8_lossy(&output.stderr));
            Ok(String::from_utf8(output.stdout)?.trim().to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    let sigstack_config = dir.path().join("sigstack-issuers.json");
    std::fs::write(
        &sigstack_config,
        json!([{"issuer": issuer.url, "type": "github-actions", "discovery_url": issuer.url}]).to_string(),
    )?;
    let mut ours = pinned(&args.sigstack);
    ours.args(["serve", "fulcio", "--port", "0", "--issuer-config"])
        .arg(&sigstack_config)
        .arg("--state-dir")
        .arg(dir.path().join("ca"));
    let ours = start(ours, Url::Reported { from_stderr: false, marker: "listening on" })?;
    let fulcio_config = dir.path().join("fulcio.json");
    std::fs::write(
        &fulcio_config,
        json!({"OIDCIssuers": {issuer.url.as_str(): {"IssuerURL": issuer.url, "ClientID": "sigstore", "Type": "github-workflow"}}})
            .to_string(),
    )?;
    let (http, grpc, metrics) = (free_port(), free_port(), free_port());
    let mut real = pinned(&tool("SIGSTACK_FULCIO", "fulcio-v1.8.8"));
    real.args(["serve", "--ca", "ephemeralca", "--ct-log-url", "", "--log_type", "prod", "--host", "127.0.0.1"])
        .args(["--port", &http.to_string(), "--grpc-host", "127.0.0.1", "--grpc-port", &grpc.to_string()])
        .args(["--metrics-port", &metrics.to_string(), "--legacy-unix-domain-socket"])
        .arg(dir.path().join("fulcio-legacy.sock"))
        .arg("--config-path")
        .arg(&fulcio_config);
    let real = start(real, Url::Known(format!("http://127.0.0.1:{http}")))?;
    let comparison = Comparison {
        key: "real_fulcio",
        what: "certificates/s",
        servers: [("sigstack", &ours), ("fulcio v1.8.8", &real)],
        path: "/api/v2/signingCert",
        requests: || crate::ca_requests(&tokens),
        distinct: false,
    };
    compare(report, comparison, args.seconds).await;
    drop((ours, real, issuer));

    // Rekor v2 appends.
    let mut ours = pinned(&args.sigstack);
    ours.args(["serve", "rekor-v2", "--port", "0", "--state-dir"]).arg(dir.path().join("v2"));
    let ours = start(ours, Url::Reported { from_stderr: false, marker: "listening on" })?;
    let key = dir.path().join("rekor-tiles.pem");
    Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key).status()?;
    let (http, grpc, metrics) = (free_port(), free_port(), free_port());
    let mut real = pinned(&tool("SIGSTACK_REKOR_TILES", "rekor-tiles-posix-v2.3.0"));
    real.args(["serve", "--hostname", "127.0.0.1", "--storage-dir"])
        .arg(dir.path().join("tiles"))
        .arg("--signer-filepath")
        .arg(&key)
        .args(["--http-port", &http.to_string(), "--grpc-port", &grpc.to_string()])
        .args([
            "--http-metrics-port",
            &metrics.to_string(),
            "--checkpoint-interval",
            "100ms",
            "--batch-max-age",
            "10ms",
        ]);
    let real = start(real, Url::Known(format!("http://127.0.0.1:{http}")))?;
    let per_run = 40_000;
    let comparison = Comparison {
        key: "real_rekor_v2",
        what: "Rekor v2 durable appends/s",
        servers: [("sigstack", &ours), ("rekor-tiles v2.3.0", &real)],
        path: "/api/v2/log/entries",
        requests: || crate::v2::v2_requests(per_run),
        distinct: true,
    };
    compare(report, comparison, args.seconds).await;
    Ok(())
}
