//! `sigstack-bench`: drives a release `sigstack` over loopback and prints one table (and JSON):
//! crypto limit, cold start, issuer, CA and log throughput and latency at several concurrencies,
//! proof latency / restart / memory at scale, the whole flow, admission latency, and the same CA
//! and log workloads against the @sigstore/mock peer. Every run is bounded in time.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use clap::Parser;

mod cluster;
mod containers;
mod real;
mod v2;
mod verifier;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The sigstack binary (release build).
    #[arg(long)]
    sigstack: PathBuf,
    /// Where sigstore-js (@sigstore/mock) is installed, for the peer.
    #[arg(long)]
    node_prefix: Option<PathBuf>,
    /// Seconds per load measurement.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Largest log size for the scale figures.
    #[arg(long, default_value_t = 1_000_000)]
    max_entries: u64,
    /// Write the results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Creates per case for admission through the real API server.
    #[arg(long, default_value_t = 30)]
    admission_creates: usize,
    /// Run only the section of admission through the real API server.
    #[arg(long)]
    cluster_only: bool,
    /// Run only the whole-flow section (build to admission, and a full policy probe run).
    #[arg(long)]
    flow_only: bool,
    /// Run only the section of Rekor v2 and the timestamp authority.
    #[arg(long)]
    v2_only: bool,
    /// Run only sigstack beside the real servers (timestamp-authority, Fulcio, rekor-tiles).
    #[arg(long)]
    real_servers_only: bool,
    /// Run only the verifier's section (bundles verified per second, in-process).
    #[arg(long)]
    verifier_only: bool,
    /// Run only the section of container images and start-up (needs a Docker engine).
    #[arg(long)]
    containers_only: bool,
    /// Instead of the benchmark: concurrency 256 against issuer, CA and log at once for this many
    /// seconds, reporting errors, resident memory and open file descriptors before and after.
    #[arg(long, value_name = "SECONDS")]
    load_seconds: Option<u64>,
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The reliability load run: 256 workers split over the three services, fresh log entries made
/// by each worker as it goes (so the run needs no pre-generated set), for `seconds`.
async fn combined_load(args: &Args, seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (stack, _) = start_stack(&args.sigstack, dir.path(), &["--no-registry"])?;
    let pid = stack.child.id();
    let url = |name: &str| stack.description["services"][name].as_str().unwrap_or_default().to_string();
    let ca_bodies = Arc::new(ca_requests(&tokens(&args.sigstack, dir.path(), 64)?));
    let client = reqwest::Client::builder().pool_max_idle_per_host(512).build()?;
    // Warm up, then take the baseline.
    let _ = load(&client, &format!("{}/api/v2/signingCert", url("fulcio")), ca_bodies.clone(), 16, 1, false).await;
    let (rss_before, fds_before) = (rss_mb(pid), open_fds(pid));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..256usize {
        let client = client.clone();
        let (oidc, fulcio, rekor) = (url("oidc"), url("fulcio"), url("rekor"));
        let ca_bodies = ca_bodies.clone();
        tasks.spawn(async move {
            let (service, mut ok, mut errors) = (worker % 3, 0u64, 0u64);
            let pair = key();
            let rng = SystemRandom::new();
            let pem = B64.encode(pem_lf("PUBLIC KEY", pair.public_key().as_der().expect("spki").as_ref()));
            let mut n = 0u64;
            while Instant::now() < deadline {
                let request = match service {
                    0 => client.post(format!("{oidc}/token")).json(&json!({"repository": "load/app"})),
                    1 => client.post(format!("{fulcio}/api/v2/signingCert")).json(&ca_bodies[worker % ca_bodies.len()]),
                    _ => {
                        n += 1;
                        let data = format!("load {worker} {n} {}", std::process::id());
                        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data.as_bytes());
                        let signature = pair.sign(&rng, data.as_bytes()).expect("sign");
                        client.post(format!("{rekor}/api/v1/log/entries")).json(&json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                            "data": {"hash": {"algorithm": "sha256", "value": digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()}},
                            "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": pem}}}}))
                    }
                };
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        ok += 1;
                    }
                    _ => errors += 1,
                }
            }
            (service, ok, errors)
        });
    }
    let mut totals = [(0u64, 0u64); 3];
    while let Some(result) = tasks.join_next().await {
        let (service, ok, errors) = result?;
        totals[service].0 += ok;
        totals[service].1 += errors;
    }
    // Close the client's pooled connections first: what stays open after that would be a leak.
    drop(client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, fds_after) = (rss_mb(pid), open_fds(pid));
    println!("load: concurrency 256 for {seconds} s against issuer, CA and log at once");
    for (name, (ok, errors)) in ["issuer", "CA", "log"].iter().zip(totals) {
        println!("  {name:<8} {ok:>9} requests ({:.0}/s), {errors} errors", ok as f64 / seconds as f64);
    }
    println!(
        "  resident memory {rss_before:.0} MB -> {rss_after:.0} MB; open file descriptors {fds_before} -> {fds_after}"
    );
    let errors: u64 = totals.iter().map(|t| t.1).sum();
    drop(stack);
    if errors > 0 {
        bail!("{errors} errors under load");
    }
    Ok(())
}

/// The table, printed as it is measured, and its JSON twin.
#[derive(Default)]
struct Report {
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, key: &str, name: &str, value: String, note: &str, raw: Value) {
        println!("  {name:<62} {value:>24}  {note}");
        self.json.insert(key.into(), raw);
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn key() -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).expect("keygen");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("key")
}

/// Signs and verifies for a second each on one core: the bound every service's crypto implies.
fn crypto_limit(report: &mut Report) -> (f64, f64) {
    let pair = key();
    let rng = SystemRandom::new();
    let (mut signs, start) = (0u64, Instant::now());
    let mut last = Vec::new();
    while start.elapsed() < Duration::from_secs(1) {
        last = pair.sign(&rng, b"benchmark message").expect("sign").as_ref().to_vec();
        signs += 1;
    }
    let sign_rate = signs as f64 / start.elapsed().as_secs_f64();
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, pair.public_key().as_ref().to_vec());
    let (mut verifies, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_secs(1) {
        public.verify(b"benchmark message", &last).expect("verify");
        verifies += 1;
    }
    let verify_rate = verifies as f64 / start.elapsed().as_secs_f64();
    report.add(
        "crypto_p256_sign_per_s_per_core",
        "crypto limit: P-256 sign (aws-lc-rs, 1 core)",
        format!("{sign_rate:.0}/s"),
        "",
        json!(sign_rate),
    );
    report.add(
        "crypto_p256_verify_per_s_per_core",
        "crypto limit: P-256 verify (aws-lc-rs, 1 core)",
        format!("{verify_rate:.0}/s"),
        "",
        json!(verify_rate),
    );
    rustcrypto(report, sign_rate, verify_rate);
    (sign_rate, verify_rate)
}

/// The same operations with RustCrypto's p256, to show why aws-lc-rs is the backend.
fn rustcrypto(report: &mut Report, aws_sign: f64, aws_verify: f64) {
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::elliptic_curve::Generate;
    let key = p256::ecdsa::SigningKey::generate();
    let verifying = *key.verifying_key();
    let (mut signs, start) = (0u64, Instant::now());
    let mut last: p256::ecdsa::Signature = key.sign(b"benchmark message");
    while start.elapsed() < Duration::from_secs(1) {
        last = key.sign(b"benchmark message");
        signs += 1;
    }
    let sign_rate = signs as f64 / start.elapsed().as_secs_f64();
    let (mut verifies, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_secs(1) {
        verifying.verify(b"benchmark message", &last).expect("verify");
        verifies += 1;
    }
    let verify_rate = verifies as f64 / start.elapsed().as_secs_f64();
    report.add(
        "rustcrypto_p256_sign_per_s",
        "RustCrypto p256 sign (1 core)",
        format!("{sign_rate:.0}/s"),
        &format!("aws-lc-rs is {:.1}x", aws_sign / sign_rate),
        json!(sign_rate),
    );
    report.add(
        "rustcrypto_p256_verify_per_s",
        "RustCrypto p256 verify (1 core)",
        format!("{verify_rate:.0}/s"),
        &format!("aws-lc-rs is {:.1}x", aws_verify / verify_rate),
        json!(verify_rate),
    );
}

struct Stack {
    child: Child,
    description: Value,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn start_stack(bin: &Path, dir: &Path, extra: &[&str]) -> anyhow::Result<(Stack, Duration)> {
    let start = Instant::now();
    let child = Command::new(bin)
        .args(["up", "--ephemeral-ports", "--state-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let file = dir.join("stack.json");
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(description) = serde_json::from_str::<Value>(&text)
            && description["pid"] == child.id()
        {
            return Ok((Stack { child, description }, start.elapsed()));
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("stack did not start");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn cold_start(bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    let (mut fresh, mut existing) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let dir = tempfile::tempdir()?;
        let (stack, took) = start_stack(bin, dir.path(), &["--no-registry"])?;
        fresh.push(took.as_secs_f64() * 1000.0);
        drop(stack);
        let (stack, took) = start_stack(bin, dir.path(), &["--no-registry"])?;
        existing.push(took.as_secs_f64() * 1000.0);
        drop(stack);
    }
    let (fresh, existing) = (median(fresh), median(existing));
    report.add(
        "cold_start_fresh_ms",
        "cold start, fresh state dir (keys generated), median of 5",
        format!("{fresh:.0} ms"),
        "target < 200 ms",
        json!(fresh),
    );
    report.add(
        "cold_start_existing_ms",
        "cold start, existing state dir, median of 5",
        format!("{existing:.0} ms"),
        "target < 200 ms",
        json!(existing),
    );
    Ok(())
}

/// A stack per test: the test kit's in-process start and stop (fresh temporary directory each),
/// and what `sigstack exec` adds to a command that does nothing, so a suite of 20 tests with a
/// stack each can be costed.
async fn stack_per_test(bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    let mut starts = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let stack = sigstack::testkit::Stack::builder().start().await?;
        starts.push(start.elapsed().as_secs_f64() * 1000.0);
        stack.stop().await?;
    }
    let started = median(starts.clone());
    report.add(
        "testkit_start_ms",
        "test kit: Stack::builder().start() in-process, median of 20",
        format!("{started:.0} ms"),
        &format!("fresh keys each; 20 tests with a stack each: {:.1} s of starts", starts.iter().sum::<f64>() / 1000.0),
        json!(started),
    );
    let time = |args: &[&str]| -> anyhow::Result<f64> {
        let start = Instant::now();
        let status = Command::new(args[0]).args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        anyhow::ensure!(status.success(), "{args:?} failed");
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    };
    let bin = bin.to_str().unwrap_or_default();
    let mut overheads = Vec::new();
    for _ in 0..10 {
        overheads.push(time(&[bin, "exec", "--no-registry", "--", "true"])? - time(&["true"])?);
    }
    let overhead = median(overheads);
    report.add(
        "exec_overhead_ms",
        "sigstack exec --no-registry -- true, minus true, median of 10",
        format!("{overhead:.0} ms"),
        "start, environment, stop, temporary directory removed",
        json!(overhead),
    );
    Ok(())
}

struct Load {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: u64,
}

/// Runs `concurrency` workers, each sending request `i` from `requests` in turn, for `seconds`;
/// with `distinct`, no request is sent twice (log entries: a repeat is a 409). Any 2xx counts
/// (the peer's Fulcio answers 201 where Fulcio answers 200).
async fn load(
    client: &reqwest::Client,
    url: &str,
    requests: Arc<Vec<Value>>,
    concurrency: usize,
    seconds: u64,
    distinct: bool,
) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, requests, next) = (client.clone(), url.to_string(), requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = requests.get(i % requests.len()) else { break };
                if i >= requests.len() && distinct {
                    break; // log entries must be distinct
                }
                let start = Instant::now();
                match client.post(&url).json(body).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(start.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await.unwrap_or_default();
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    all.sort();
    Load { rate: all.len() as f64 / elapsed, p50: percentile(&all, 0.5), p99: percentile(&all, 0.99), errors }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default()).unwrap_or(Value::Null)
}

use sigstack_wire::pem_lf;

/// CA requests in sigstore-js's shape (token in the body), each with its own key and proof.
pub(crate) fn ca_requests(tokens: &[String]) -> Vec<Value> {
    let rng = SystemRandom::new();
    tokens
        .iter()
        .map(|token| {
            let pair = key();
            let sub = claims(token)["sub"].as_str().unwrap_or_default().to_string();
            let proof = pair.sign(&rng, sub.as_bytes()).expect("sign");
            let spki = pair.public_key().as_der().expect("spki");
            json!({"credentials": {"oidcIdentityToken": token},
                   "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem_lf("PUBLIC KEY", spki.as_ref())},
                                        "proofOfPossession": B64.encode(proof.as_ref())}})
        })
        .collect()
}

/// Distinct, valid hashedrekord entries.
fn log_requests(count: usize) -> Vec<Value> {
    let pair = key();
    let rng = SystemRandom::new();
    let pem = B64.encode(pem_lf("PUBLIC KEY", pair.public_key().as_der().expect("spki").as_ref()));
    (0..count)
        .map(|i| {
            let data = format!("benchmark entry {i} {}", std::process::id());
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data.as_bytes());
            let signature = pair.sign(&rng, data.as_bytes()).expect("sign");
            json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()}},
                "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": pem}}}})
        })
        .collect()
}

fn tokens(bin: &Path, dir: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    (0..count)
        .map(|i| {
            let output = Command::new(bin)
                .args(["token", "--repo", &format!("bench/repo{i}"), "--ttl", "20m", "--state-dir"])
                .arg(dir)
                .output()?;
            Ok(String::from_utf8(output.stdout)?.trim().to_string())
        })
        .collect()
}

async fn services(args: &Args, report: &mut Report, sign_rate: f64, verify_rate: f64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (stack, _) = start_stack(&args.sigstack, dir.path(), &["--no-registry"])?;
    let url = |name: &str| stack.description["services"][name].as_str().unwrap_or_default().to_string();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let token_requests = Arc::new(vec![json!({"repository": "bench/app"})]);
    let tokens_load = load(&client, &format!("{}/token", url("oidc")), token_requests, 16, args.seconds, false).await;
    report.add(
        "oidc_tokens_per_s_c16",
        "OIDC tokens/s (RS256), concurrency 16",
        format!("{:.0}/s", tokens_load.rate),
        &format!("errors {}", tokens_load.errors),
        json!(tokens_load.rate),
    );

    let ca_bodies = Arc::new(ca_requests(&tokens(&args.sigstack, dir.path(), 64)?));
    // Per certificate: verify the token (RSA, cheap), verify the proof (1 P-256 verify), sign SCT and cert (2 signs).
    let ca_bound = 2.0 / (2.0 / sign_rate + 1.0 / verify_rate);
    let mut ca_c16 = 0.0;
    for c in [1, 16, 64] {
        let l =
            load(&client, &format!("{}/api/v2/signingCert", url("fulcio")), ca_bodies.clone(), c, args.seconds, false)
                .await;
        if c == 16 {
            ca_c16 = l.rate;
        }
        report.add(
            &format!("ca_certs_per_s_c{c}"),
            &format!("CA certificates/s, concurrency {c} (p50 / p99 ms)"),
            format!("{:.0}/s ({:.2} / {:.2})", l.rate, l.p50, l.p99),
            &format!(
                "{:.0}% of the 2-core crypto bound {:.0}/s; errors {}",
                100.0 * l.rate / ca_bound,
                ca_bound,
                l.errors
            ),
            json!({"rate": l.rate, "p50_ms": l.p50, "p99_ms": l.p99, "errors": l.errors}),
        );
    }
    // Distinct entries for each run (a repeat would be a 409), generated before the clock starts.
    let per_run = 40_000;
    let entries = Arc::new(log_requests(3 * per_run));
    // Per entry: verify its signature (1 P-256 verify) and sign the SET (1 sign); the checkpoint is one sign per batch.
    let log_bound = 2.0 / (1.0 / sign_rate + 1.0 / verify_rate);
    let mut log_c64 = 0.0;
    for (run, c) in [1, 16, 64].into_iter().enumerate() {
        let slice = Arc::new(entries[run * per_run..(run + 1) * per_run].to_vec());
        let l = load(&client, &format!("{}/api/v1/log/entries", url("rekor")), slice, c, args.seconds, true).await;
        if c == 64 {
            log_c64 = l.rate;
        }
        report.add(
            &format!("log_appends_per_s_c{c}"),
            &format!("log durable appends/s, concurrency {c} (p50 / p99 ms)"),
            format!("{:.0}/s ({:.2} / {:.2})", l.rate, l.p50, l.p99),
            &format!(
                "{:.0}% of the 2-core crypto bound {:.0}/s; errors {}",
                100.0 * l.rate / log_bound,
                log_bound,
                l.errors
            ),
            json!({"rate": l.rate, "p50_ms": l.p50, "p99_ms": l.p99, "errors": l.errors}),
        );
    }
    drop(stack);

    if let Some(prefix) = &args.node_prefix {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/server.cjs");
        let mut peer = Command::new("node")
            .arg(server)
            .arg(prefix)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(peer.stdout.take().context("peer stdout")?).read_line(&mut line)?;
        let base = format!("http://127.0.0.1:{port}");
        let ca = load(&client, &format!("{base}/api/v2/signingCert"), ca_bodies, 16, args.seconds, false).await;
        let log = load(
            &client,
            &format!("{base}/api/v1/log/entries"),
            Arc::new(log_requests(60_000)),
            64,
            args.seconds,
            true,
        )
        .await;
        let _ = peer.kill();
        let _ = peer.wait();
        report.add(
            "peer_ca_certs_per_s_c16",
            "peer @sigstore/mock CA certificates/s, c16",
            format!("{:.0}/s", ca.rate),
            &format!("sigstack/peer = {:.1}x (target >= 5x); errors {}", ca_c16 / ca.rate.max(0.001), ca.errors),
            json!({"rate": ca.rate, "ratio": ca_c16 / ca.rate.max(0.001)}),
        );
        report.add("peer_log_appends_per_s_c64", "peer @sigstore/mock log appends/s, c64", format!("{:.0}/s", log.rate), &format!("sigstack/peer = {:.1}x (target >= 2x); the peer keeps nothing on disk and returns fake proofs; errors {}", log_c64 / log.rate.max(0.001), log.errors), json!({"rate": log.rate, "ratio": log_c64 / log.rate.max(0.001)}));
    }
    Ok(())
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Fills a log in-process (the library's group-committed appends), then measures the served log.
async fn scale(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log_dir = dir.path().join("rekor");
    let mut filled = 0u64;
    let client = reqwest::Client::new();
    for target in [10_000u64, 100_000, 1_000_000].into_iter().filter(|t| *t <= args.max_entries) {
        {
            let log = sigstack_rekor::TransparencyLog::open(&log_dir, "127.0.0.1")?;
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            let chunk = 256u64;
            for worker in 0..chunk {
                let log = log.clone();
                let (from, to) = (filled, target);
                tasks.spawn(async move {
                    let mut i = from + worker;
                    while i < to {
                        log.append(format!("{{\"benchmark\":{i}}}").into_bytes(), None).await?;
                        i += chunk;
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(result) = tasks.join_next().await {
                result??;
            }
            let rate = (target - filled) as f64 / start.elapsed().as_secs_f64();
            println!("  (filled the log to {target} entries in-process at {rate:.0} appends/s)");
            filled = target;
        }
        let start = Instant::now();
        let mut child = Command::new(&args.sigstack)
            .args(["serve", "rekor", "--port", "0", "--state-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let restart = start.elapsed().as_secs_f64() * 1000.0;
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).context("url")?.to_string();
        let mut latencies = Vec::new();
        let mut fetches = Vec::new();
        for i in 0..2000u64 {
            let index = (i * 7_919) % target;
            let t = Instant::now();
            let response = client.get(format!("{url}/api/v1/log/entries?logIndex={index}")).send().await?;
            let _ = response.bytes().await?;
            fetches.push(t.elapsed());
            let t = Instant::now();
            let response =
                client.get(format!("{url}/api/v1/log/proof?firstSize={}&lastSize={target}", index + 1)).send().await?;
            let _ = response.bytes().await?;
            latencies.push(t.elapsed());
        }
        latencies.sort();
        fetches.sort();
        let rss = rss_mb(child.id());
        let _ = child.kill();
        let _ = child.wait();
        report.add(
            &format!("log_{target}_entry_fetch_ms"),
            &format!("entry fetch with inclusion proof at {target} entries, p50 / p99"),
            format!("{:.2} / {:.2} ms", percentile(&fetches, 0.5), percentile(&fetches, 0.99)),
            "includes a checkpoint-bound proof and a SET signature",
            json!({"p50_ms": percentile(&fetches, 0.5), "p99_ms": percentile(&fetches, 0.99)}),
        );
        report.add(
            &format!("log_{target}_consistency_proof_ms"),
            &format!("consistency proof at {target} entries, p50 / p99"),
            format!("{:.2} / {:.2} ms", percentile(&latencies, 0.5), percentile(&latencies, 0.99)),
            "target p99 < 1 ms (proof math, HTTP included)",
            json!({"p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)}),
        );
        report.add(
            &format!("log_{target}_restart_ms"),
            &format!("log restart at {target} entries"),
            format!("{restart:.0} ms"),
            "target < 1 s at 10^6",
            json!(restart),
        );
        report.add(
            &format!("log_{target}_rss_mb"),
            &format!("log resident memory at {target} entries"),
            format!("{rss:.0} MB"),
            "target < 256 MB at 10^6",
            json!(rss),
        );
    }
    Ok(())
}

/// The whole flow on a warm binary, step by step, and one admission decision.
fn flow(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (stack, _) = start_stack(&args.sigstack, dir.path(), &[])?;
    if stack.description["services"]["registry"].is_null() {
        println!("  (no registry: docker-registry is not installed; flow skipped)");
        return Ok(());
    }
    let run = |argv: &[&str]| -> anyhow::Result<f64> {
        let start = Instant::now();
        let output = Command::new(&args.sigstack).args(argv).env("SIGSTACK_STATE_DIR", dir.path()).output()?;
        if !output.status.success() && argv[0] != "apply" {
            bail!("{argv:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    };
    let sbom = dir.path().join("sbom.json");
    let policy = dir.path().join("policy.yaml");
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("build + push", vec!["build", "--name", "acme/app", "--tag", "v1"]),
        ("SBOM", vec!["sbom", "acme/app:v1", "-o", sbom.to_str().unwrap_or_default()]),
        ("sign", vec!["sign", "acme/app:v1", "--repo", "acme/app"]),
        ("attest", vec!["attest", "acme/app:v1", "--repo", "acme/app", "--sbom", sbom.to_str().unwrap_or_default()]),
        ("policy render", vec!["policy", "render", "--org", "acme", "-o", policy.to_str().unwrap_or_default()]),
    ];
    let mut total = 0.0;
    let mut parts = Vec::new();
    for (name, argv) in &steps {
        let ms = run(argv)?;
        total += ms;
        parts.push(format!("{name} {ms:.0}"));
    }
    let registry = stack.description["services"]["registry"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("http://")
        .to_string();
    let pods = dir.path().join("pod.yaml");
    std::fs::write(
        &pods,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default}}\nspec: {{containers: [{{name: c, image: \"{registry}/acme/app:v1\"}}]}}\n"
        ),
    )?;
    let admit = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap_or_default(),
        "--resource",
        pods.to_str().unwrap_or_default(),
    ])?;
    total += admit;
    report.add(
        "flow_total_ms",
        "whole flow: build → push → SBOM → sign → attest → admit",
        format!("{total:.0} ms"),
        &format!("target < 5 s; {} ms", parts.join(", ")),
        json!(total),
    );
    report.add(
        "admission_one_pod_ms",
        "admission decision for one Pod (sigstack apply, process)",
        format!("{admit:.0} ms"),
        "verifies signature and SBOM attestation against the registry",
        json!(admit),
    );
    // A full `sigstack policy probe` of each shipped policy on the running stack (build, sign and
    // publish every probe, then judge them with sigstack).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    for (kind, file) in [("cluster_policy", "verify-signed-images.yaml"), ("ivpol", "verify-signed-images-ivpol.yaml")]
    {
        let policy = workspace.join("policy").join(file);
        let start = Instant::now();
        let output = Command::new(&args.sigstack)
            .args(["policy", "probe", "--org", "acme", "--format", "json", "--policy"])
            .arg(&policy)
            .env("SIGSTACK_STATE_DIR", dir.path())
            .output()?;
        let took = start.elapsed().as_secs_f64() * 1000.0;
        let card: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        report.add(
            &format!("policy_probe_{kind}_ms"),
            &format!("`sigstack policy probe`, shipped {kind} policy, on a running stack"),
            format!("{:.1} s", took / 1000.0),
            &format!(
                "target < 60 s; {} probes built and judged, {}/{} refused",
                card["probes"].as_array().map_or(0, Vec::len),
                card["score"]["refused"],
                card["score"]["of"]
            ),
            json!(took),
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(seconds) = args.load_seconds {
        return combined_load(&args, seconds).await;
    }
    let mut report = Report::default();
    if args.v2_only {
        v2::rekor_v2_and_tsa(&args, &mut report).await?;
        return Ok(());
    }
    if args.containers_only {
        return containers::images_and_start(&args.sigstack, &mut report);
    }
    if args.flow_only {
        return flow(&args, &mut report);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    if args.verifier_only {
        return verifier::bundles_per_second(workspace, args.seconds, &mut report);
    }
    if args.real_servers_only {
        return real::side_by_side(&args, &mut report).await;
    }
    println!(
        "sigstack benchmark ({} cores, {} s per load run)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.seconds
    );
    if !args.cluster_only {
        let (sign_rate, verify_rate) = crypto_limit(&mut report);
        cold_start(&args.sigstack, &mut report)?;
        stack_per_test(&args.sigstack, &mut report).await?;
        services(&args, &mut report, sign_rate, verify_rate).await?;
        v2::rekor_v2_and_tsa(&args, &mut report).await?;
        flow(&args, &mut report)?;
        verifier::bundles_per_second(workspace, args.seconds, &mut report)?;
        real::side_by_side(&args, &mut report).await?;
    }
    cluster::real_admission(&args.sigstack, &mut report, args.admission_creates)?;
    if !args.cluster_only {
        containers::images_and_start(&args.sigstack, &mut report)?;
    }
    if !args.cluster_only {
        scale(&args, &mut report).await?;
    }
    if let Some(path) = &args.json {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(&Value::Object(report.json.clone()))?)?;
        println!("results written to {}", path.display());
    }
    Ok(())
}
