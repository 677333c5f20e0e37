//! Container images and start-up (issue 15): building the sigstack image (the host's binary in the
//! Dockerfile's `prebuilt` stage) and the registry image from scratch, a stack container from
//! `docker run` to "sigstack is up", and compose.yaml from `up -d` to every service answering.
//! Needs the engine and base image `scripts/bench.sh --containers-only` prepares.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Report, median};

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stderr(Stdio::piped()).output()?;
    anyhow::ensure!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn timed(command: &mut Command) -> anyhow::Result<f64> {
    let start = Instant::now();
    run(command)?;
    Ok(start.elapsed().as_secs_f64())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn answers(url: &str) -> bool {
    Command::new("curl").args(["-fsS", "-o", "/dev/null", "-m", "1", url]).status().is_ok_and(|s| s.success())
}

pub fn images_and_start(sigstack: &Path, report: &mut Report) -> anyhow::Result<()> {
    println!(
        "\ncontainers (Docker {})",
        run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))?.trim()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let base = std::env::var("SIGSTACK_BASE_IMAGE").unwrap_or_else(|_| "debian:bookworm-slim".into());
    let context = tempfile::tempdir()?;
    run(Command::new("strip").arg("-o").arg(context.path().join("sigstack")).arg(sigstack))?;
    let image = "sigstack:bench";
    let build = timed(
        Command::new("docker")
            .args(["build", "--no-cache", "--network", "host", "--target", "prebuilt", "-t", image])
            .args(["--build-arg", &format!("BASE_IMAGE={base}"), "-f"])
            .arg(root.join("Dockerfile"))
            .arg(context.path()),
    )?;
    report.add(
        "image_build_sigstack_s",
        "sigstack image build (prebuilt binary, no cache)",
        format!("{build:.1} s"),
        "",
        json!(build),
    );
    let registry_image = "sigstack/docker-registry:bench";
    let registry_build = timed(
        Command::new("docker")
            .args(["build", "--no-cache", "--network", "host", "-t", registry_image])
            .args(["--build-arg", &format!("BASE_IMAGE={base}"), "-f"])
            .arg(root.join("scripts/docker/registry.Dockerfile"))
            .arg(root.join("scripts/docker")),
    )?;
    report.add(
        "image_build_registry_s",
        "registry image build (apt from the Debian archive, no cache)",
        format!("{registry_build:.1} s"),
        "",
        json!(registry_build),
    );

    // docker run → "sigstack is up" (host network, ephemeral ports, no registry).
    let mut starts = Vec::new();
    for _ in 0..5 {
        let state = tempfile::tempdir()?;
        let dir = state.path().to_str().unwrap_or_default().to_string();
        let start = Instant::now();
        let id = run(Command::new("docker")
            .args(["run", "-d", "--network", "host", "--user", "0:0", "-v"])
            .arg(format!("{dir}:{dir}"))
            .args([image, "up", "--state-dir", &dir, "--ephemeral-ports", "--no-registry"]))?;
        let id = id.trim();
        while !state.path().join("stack.json").exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        starts.push(start.elapsed().as_secs_f64() * 1000.0);
        run(Command::new("docker").args(["rm", "-f", id]))?;
    }
    let start = median(starts);
    report.add(
        "container_start_ms",
        "stack container: docker run → stack.json (median of 5)",
        format!("{start:.0} ms"),
        "",
        json!(start),
    );

    // compose.yaml: up -d → the TUF repository and the registry answer.
    let mut ups = Vec::new();
    for round in 0..3 {
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
        let project = format!("sigstack-bench-{}-{round}", std::process::id());
        let compose = |args: &[&str]| {
            let mut command = Command::new("docker-compose");
            command.arg("-f").arg(root.join("compose.yaml")).args(["-p", &project]).args(args);
            command.env("SIGSTACK_IMAGE", image).env("SIGSTACK_REGISTRY_IMAGE", registry_image);
            for (name, port) in ["OIDC", "FULCIO", "REKOR", "TUF", "REGISTRY"].iter().zip(&ports) {
                command.env(format!("SIGSTACK_{name}_PORT"), port.to_string());
            }
            command
        };
        let start = Instant::now();
        run(&mut compose(&["up", "-d", "--no-build"]))?;
        let tuf = format!("http://127.0.0.1:{}/timestamp.json", ports[3]);
        let registry = format!("http://127.0.0.1:{}/v2/", ports[4]);
        while !(answers(&tuf) && answers(&registry)) && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(50));
        }
        ups.push(start.elapsed().as_secs_f64());
        run(&mut compose(&["down", "-v"]))?;
    }
    let up = median(ups);
    report.add(
        "compose_up_s",
        "compose.yaml: up -d → all five services answer (median of 3)",
        format!("{up:.1} s"),
        "health checks every 2 s",
        json!(up),
    );
    run(Command::new("docker").args(["rmi", image, registry_image]))?;
    Ok(())
}
