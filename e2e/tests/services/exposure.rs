//! A stack that mints any identity is reachable only from the tests (issue 26): every service,
//! the registry's port and the webhook refuse a request that names a foreign host (DNS
//! rebinding) unless `--allow-host` names it; a bind beyond loopback needs `--allow-network` and
//! warns; a client that never finishes its request head is cut off; the explorer's live view
//! stays bounded under many clients; `cluster down` leaves a pid that is no longer its own alone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sigstack_e2e::webhook::Webhook;
use sigstack_e2e::{Stack, run_ok, sigstack, sigstack_bin, workspace_root};

/// (status, body) of `GET url` sent with `Host: host`.
fn get_as(url: &str, host: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "-k", "-o", "-", "-w", "\n%{http_code}", "-H", &format!("Host: {host}"), url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// A path each service answers 200 on.
fn probe_path(service: &str) -> &'static str {
    match service {
        "tuf" => "/timestamp.json",
        "registry" => "/v2/",
        "rekor-v2" => "/checkpoint",
        _ => "/healthz",
    }
}

fn stack_services(stack: &Stack) -> Vec<(String, String)> {
    stack.description["services"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, url)| (name.clone(), url.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn every_service_refuses_a_foreign_host_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--rekor", "both"]).unwrap();
    let services = stack_services(&stack);
    for name in ["oidc", "fulcio", "rekor", "rekor-v2", "tsa", "tuf", "explorer", "registry"] {
        assert!(services.iter().any(|(n, _)| n == name), "the stack runs {name}: {services:?}");
    }
    for (name, url) in &services {
        let url = format!("{url}{}", probe_path(name));
        let (status, body) = get_as(&url, "evil.test");
        assert_eq!(status, 403, "{name} answered a rebinding request: {body}");
        let message: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: not JSON: {body}"));
        assert!(message["message"].as_str().unwrap().contains("--allow-host evil.test"), "{name}: {body}");
        for host in ["127.0.0.1", "localhost", url.trim_start_matches("http://").split('/').next().unwrap()] {
            assert_eq!(get_as(&url, host).0, 200, "{name} answers {host}");
        }
    }
    // The mint itself, as the attack would call it.
    let (status, _) = get_as(&format!("{}/token", stack.url("oidc")), "evil.test");
    assert_eq!(status, 403, "no token for a rebinding page");
    drop(stack);

    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--rekor", "both", "--allow-host", "sigstack.test"]).unwrap();
    for (name, url) in stack_services(&stack) {
        let url = format!("{url}{}", probe_path(&name));
        assert_eq!(get_as(&url, "sigstack.test:80").0, 200, "{name} answers the allowed host");
        assert_eq!(get_as(&url, "evil.test").0, 403, "{name} still refuses others");
    }
}

#[test]
fn the_webhook_refuses_a_foreign_host_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let _stack = Stack::start(dir.path(), &["--no-registry"]).unwrap();
    let policy = workspace_root().join("policy");
    let webhook = Webhook::start(dir.path(), &policy);
    let (status, body) = get_as(&format!("{}/healthz", webhook.url), "evil.test");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-host evil.test"), "{body}");
    assert_eq!(get_as(&format!("{}/healthz", webhook.url), "127.0.0.1").0, 200);
}

#[test]
fn binding_beyond_loopback_needs_allow_network_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["serve", "oidc", "--port", "0"][..],
        &["up", "--ephemeral-ports", "--no-registry"],
        &["explorer", "--port", "0"],
    ] {
        let output = sigstack(dir.path()).args(command).args(["--host", "0.0.0.0"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?} --host 0.0.0.0 must not start");
        assert!(stderr.contains("refusing to listen on 0.0.0.0") && stderr.contains("--allow-network"), "{stderr}");
    }
    // Allowed, it starts, says what it exposes, and advertises a reachable URL, not 0.0.0.0.
    let mut child = sigstack(dir.path())
        .args(["serve", "oidc", "--port", "0", "--host", "0.0.0.0", "--allow-network"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first_line).unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WARNING") && stderr.contains("mint an identity token for any identity"), "{stderr}");
    assert!(!first_line.contains("0.0.0.0"), "advertised at a reachable address: {first_line}");
}

#[test]
fn a_client_that_never_finishes_its_request_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--no-registry"]).unwrap();
    let address = stack.url("oidc").trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    // The server closes the connection (after a 408 or without an answer) once the header-read
    // timeout passes; a server without one would keep it open until our own 30 s timeout.
    let read = slow.read_to_end(&mut rest);
    assert!(read.is_ok(), "the server closed the connection ({read:?})");
    assert!(started.elapsed() < Duration::from_secs(25), "cut off after {:?}", started.elapsed());
    // And the service still answers everyone else.
    assert_eq!(get_as(&format!("{}/healthz", stack.url("oidc")), "127.0.0.1").0, 200);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_explorer_stays_bounded_under_200_live_clients() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_process(dir.path(), &["--no-registry"]).unwrap();
    let pid = stack.description["pid"].as_u64().unwrap() as u32;
    let address = stack.url("explorer").trim_start_matches("http://").to_string();
    let before = rss_kib(pid);
    let mut streams = Vec::new();
    let (mut following, mut refused) = (0, 0);
    for _ in 0..200 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        match &head[9..12] {
            b"200" => following += 1,
            b"503" => refused += 1,
            other => panic!("unexpected status {}", String::from_utf8_lossy(other)),
        }
        streams.push(stream);
    }
    assert_eq!(following, 64, "at most 64 pages follow the stack live");
    assert_eq!(refused, 136, "the rest are told so");
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(pid);
    assert!(during < before + 32 * 1024, "resident memory {before} KiB → {during} KiB with 200 clients");
    drop(streams);
    // Places are given back: a new client follows again.
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = get_as_head(&address);
    assert_eq!(status, 200);
    drop(stack);
}

/// The status of a fresh `/events` request (the stream itself is not read).
fn get_as_head(address: &str) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    (String::from_utf8_lossy(&head[9..12]).parse().unwrap(), stream)
}

#[test]
fn explorer_pages_forbid_inline_code_framing_and_sniffing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path(), &["--no-registry"]).unwrap();
    for path in ["/", "/log", "/nope", "/assets/live.js"] {
        let headers = run_ok(
            Command::new("curl")
                .args(["-sS", "-D", "-", "-o", "/dev/null"])
                .arg(format!("{}{path}", stack.url("explorer"))),
        );
        let headers = headers.to_ascii_lowercase();
        assert!(
            headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {headers}"
        );
        assert!(headers.contains("x-content-type-options: nosniff"), "{path}");
        assert!(headers.contains("x-frame-options: deny"), "{path}");
    }
    let page = run_ok(Command::new("curl").args(["-sS"]).arg(stack.url("explorer")));
    assert!(!page.contains("<style>") && !page.contains("<script>"), "no inline style or script");
}

#[test]
fn cluster_down_leaves_a_pid_that_is_no_longer_its_own_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
    let description = serde_json::json!({
        "server": "https://127.0.0.1:1", "kubeconfig": "/nonexistent", "kubectl": "/nonexistent",
        "kyverno": false, "pid": stranger.id(),
    });
    std::fs::write(dir.path().join("cluster/cluster.json"), description.to_string()).unwrap();
    let output = run_ok(Command::new(sigstack_bin()).args(["cluster", "down", "--state-dir"]).arg(dir.path()));
    assert!(output.contains("now belongs to another program; left alone"), "{output}");
    assert!(stranger.try_wait().unwrap().is_none(), "the other program still runs");
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(!Path::new(&dir.path().join("cluster/cluster.json")).exists());
}

#[test]
fn state_directories_of_others_or_behind_links_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let output = sigstack(&link).args(["up", "--ephemeral-ports", "--no-registry"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("symbolic link"), "{stderr}");
}
