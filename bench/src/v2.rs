//! Rekor v2 and the timestamp authority (issue 16): durable v2 appends/s beside v1's, tile and
//! checkpoint read latency, timestamps/s. Same stack process, same loopback, same load driver.

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::{Args, Report, key, load, percentile, start_stack};

/// Distinct, valid `hashedRekordRequestV002` entries.
pub(crate) fn v2_requests(count: usize) -> Vec<Value> {
    let pair = key();
    let rng = SystemRandom::new();
    let spki = B64.encode(pair.public_key().as_der().expect("spki").as_ref());
    (0..count)
        .map(|i| {
            let data = format!("v2 benchmark entry {i} {}", std::process::id());
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data.as_bytes());
            let signature = pair.sign(&rng, data.as_bytes()).expect("sign");
            json!({"hashedRekordRequestV002": {"digest": B64.encode(digest.as_ref()),
                "signature": {"content": B64.encode(signature.as_ref()),
                    "verifier": {"publicKey": {"rawBytes": spki}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
        })
        .collect()
}

/// GET latency of `url`, `count` times one after another (p50 / p99 ms).
async fn read_latency(client: &reqwest::Client, url: &str, count: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut latencies = Vec::with_capacity(count);
    let mut bytes = 0;
    for _ in 0..count {
        let start = Instant::now();
        let body = client.get(url).send().await?.error_for_status()?.bytes().await?;
        latencies.push(start.elapsed());
        bytes = body.len();
    }
    latencies.sort();
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99), bytes))
}

pub(crate) async fn rekor_v2_and_tsa(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (stack, _) = start_stack(&args.sigstack, dir.path(), &["--no-registry", "--rekor", "both"])?;
    let url = |name: &str| stack.description["services"][name].as_str().unwrap_or_default().to_string();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    println!("Rekor v2 and the timestamp authority (stack with --rekor both)");

    let per_run = 40_000;
    let v1 = Arc::new(crate::log_requests(per_run));
    let l = load(&client, &format!("{}/api/v1/log/entries", url("rekor")), v1, 64, args.seconds, true).await;
    report.add(
        "log_v1_beside_v2_appends_per_s_c64",
        "Rekor v1 durable appends/s in the same stack, concurrency 64 (p50 / p99 ms)",
        format!("{:.0}/s ({:.2} / {:.2})", l.rate, l.p50, l.p99),
        &format!("errors {}", l.errors),
        json!({"rate": l.rate, "p50_ms": l.p50, "p99_ms": l.p99, "errors": l.errors}),
    );
    let entries = v2_requests(2 * per_run);
    for (run, c) in [16, 64].into_iter().enumerate() {
        let slice = Arc::new(entries[run * per_run..(run + 1) * per_run].to_vec());
        let l = load(&client, &format!("{}/api/v2/log/entries", url("rekor-v2")), slice, c, args.seconds, true).await;
        report.add(
            &format!("log_v2_appends_per_s_c{c}"),
            &format!("Rekor v2 durable appends/s, concurrency {c} (p50 / p99 ms)"),
            format!("{:.0}/s ({:.2} / {:.2})", l.rate, l.p50, l.p99),
            &format!("entry checked, fsynced, checkpoint signed (Ed25519) per batch; errors {}", l.errors),
            json!({"rate": l.rate, "p50_ms": l.p50, "p99_ms": l.p99, "errors": l.errors}),
        );
    }
    for (name, path) in
        [("checkpoint", "checkpoint"), ("full level-0 tile", "tile/0/000"), ("entry bundle", "tile/entries/000")]
    {
        let (p50, p99, bytes) = read_latency(&client, &format!("{}/{path}", url("rekor-v2")), 2000).await?;
        report.add(
            &format!("log_v2_read_{}_ms", path.replace('/', "_")),
            &format!("Rekor v2 read of the {name} (p50 / p99 ms)"),
            format!("{p50:.3} / {p99:.3}"),
            &format!("{bytes} bytes, sequential GETs"),
            json!({"p50_ms": p50, "p99_ms": p99, "bytes": bytes}),
        );
    }
    let (p50, p99, _) = read_latency(&client, &format!("{}/api/v1/log", url("rekor")), 2000).await?;
    report.add(
        "log_v1_read_loginfo_ms",
        "Rekor v1 GET /api/v1/log beside it (p50 / p99 ms)",
        format!("{p50:.3} / {p99:.3}"),
        "for comparison with the v2 checkpoint read",
        json!({"p50_ms": p50, "p99_ms": p99}),
    );

    let requests: Vec<Value> = (0..1024u32)
        .map(|i| {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &i.to_be_bytes());
            json!({"artifactHash": B64.encode(hash.as_ref()), "hashAlgorithm": "sha256", "certificates": true, "nonce": i})
        })
        .collect();
    let timestamps = Arc::new(requests);
    for c in [1, 16] {
        let l = load(&client, &format!("{}/api/v1/timestamp", url("tsa")), timestamps.clone(), c, args.seconds, false)
            .await;
        report.add(
            &format!("tsa_timestamps_per_s_c{c}"),
            &format!("TSA timestamps/s, concurrency {c} (p50 / p99 ms)"),
            format!("{:.0}/s ({:.2} / {:.2})", l.rate, l.p50, l.p99),
            &format!("one P-256 signature each, certificate included; errors {}", l.errors),
            json!({"rate": l.rate, "p50_ms": l.p50, "p99_ms": l.p99, "errors": l.errors}),
        );
    }
    drop(stack);
    Ok(())
}
