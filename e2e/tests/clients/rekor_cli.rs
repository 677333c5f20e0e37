//! rekor-cli (v1.5, Rekor's own client, unmodified) as a test peer of the log: loginfo with its
//! stored-state consistency checks across entries and a restart, upload, get by index and by both
//! UUID forms, verify, search by artifact hash, by image digest (an attestation's subject) and by
//! public key, a duplicate upload, and its refusals of a wrong log key and of tampered state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sigstack_e2e::{Stack, rekor_cli, run_ok, sigstack};

/// rekor-cli with a private HOME (its tree state lives in `~/.rekor/state.json`) and a config file
/// holding the log's key as `rekor_server_public_key` (it has no flag for it).
struct RekorCli {
    home: PathBuf,
    config: PathBuf,
}

impl RekorCli {
    fn new(dir: &Path, public_key_pem: &str) -> RekorCli {
        let home = dir.join("rekor-cli-home");
        std::fs::create_dir_all(&home).unwrap();
        let config = home.join("rekor.yaml");
        let indented: String = public_key_pem.lines().map(|l| format!("  {l}\n")).collect();
        std::fs::write(&config, format!("rekor_server_public_key: |\n{indented}")).unwrap();
        RekorCli { home, config }
    }

    fn run(&self, url: &str, args: &[&str]) -> Output {
        Command::new(rekor_cli())
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--config")
            .arg(&self.config)
            .args(["--rekor_server", url])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, url: &str, args: &[&str]) -> String {
        let output = self.run(url, args);
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "rekor-cli {args:?} failed:\n{text}");
        text
    }

    fn refused(&self, url: &str, args: &[&str], needle: &str) {
        let output = self.run(url, args);
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!output.status.success(), "rekor-cli {args:?} was expected to fail:\n{text}");
        assert!(text.contains(needle), "rekor-cli {args:?}: expected {needle:?} in:\n{text}");
    }
}

fn openssl(args: &[&str]) {
    run_ok(Command::new("openssl").args(args));
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn line_value<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
        .trim()
}

#[test]
fn rekor_cli_accepts_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let stack = Stack::start(&state, &[]).unwrap();
    let url = stack.url("rekor");
    let key_pem = std::fs::read_to_string(state.join("trust/rekor.pub")).unwrap();
    let cli = RekorCli::new(dir.path(), &key_pem);

    // First loginfo: no stored state yet; it is stored for the next call.
    let first = cli.ok(&url, &["loginfo"]);
    assert!(first.contains("Verification Successful!"), "{first}");
    assert!(cli.home.join(".rekor/state.json").exists(), "rekor-cli stored the tree state");

    // An artifact signed with OpenSSL, uploaded as a hashedrekord.
    let key = dir.path().join("key.pem");
    let public = dir.path().join("pub.pem");
    let artifact = dir.path().join("artifact.txt");
    let signature = dir.path().join("artifact.sig");
    std::fs::write(&artifact, "an artifact signed with openssl\n").unwrap();
    openssl(&["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key.to_str().unwrap()]);
    openssl(&["ec", "-in", key.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        key.to_str().unwrap(),
        "-out",
        signature.to_str().unwrap(),
        artifact.to_str().unwrap(),
    ]);
    let signed = [
        "--type",
        "hashedrekord",
        "--pki-format",
        "x509",
        "--artifact",
        artifact.to_str().unwrap(),
        "--signature",
        signature.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ];
    let uploaded = cli.ok(&url, &[&["upload"][..], &signed].concat());
    let location = line_value(&uploaded, "Created entry at index").to_string();
    let (index, rest) = location.split_once(',').unwrap();
    let uuid = rest.trim().rsplit('/').next().unwrap().to_string();
    assert_eq!(uuid.len(), 80, "rekor-cli prints the 80-hex UUID: {uploaded}");

    // A duplicate is reported as such, pointing at the same entry.
    let again = cli.ok(&url, &[&["upload"][..], &signed].concat());
    assert!(again.contains("Entry already exists") && again.contains(&uuid[16..]), "{again}");

    // get by index and by both UUID forms; verify by artifact, index and UUID.
    for get in [["--log-index", index], ["--uuid", &uuid], ["--uuid", &uuid[16..]]] {
        let got = cli.ok(&url, &[&["get"][..], &get].concat());
        assert!(got.contains(&format!("Index: {index}")) && got.contains(&uuid[16..]), "{got}");
    }
    let verified = cli.ok(&url, &[&["verify"][..], &signed].concat());
    assert!(verified.contains(&format!("Entry Hash: {}", &uuid[16..])), "{verified}");
    cli.ok(&url, &["verify", "--log-index", index]);
    cli.ok(&url, &["verify", "--uuid", &uuid]);

    // An image attested by sigstack: its digest finds the attestation (the statement's subject).
    let built = run_ok(sigstack(&state).args(["build", "--name", "acme/app", "--tag", "v1"])).trim().to_string();
    run_ok(sigstack(&state).args(["sign", "acme/app:v1", "--repo", "acme/app"]));
    run_ok(sigstack(&state).args(["attest", "acme/app:v1", "--repo", "acme/app"]));
    let by_image = cli.ok(&url, &["search", "--sha", &built]);
    assert_eq!(
        by_image.lines().filter(|l| l.trim().len() == 80).count(),
        1,
        "one attestation names the image:\n{by_image}"
    );

    let by_artifact = cli.ok(&url, &["search", "--sha", &sha256_hex(&artifact)]);
    assert!(by_artifact.contains(&uuid), "{by_artifact}");
    let by_artifact_file = cli.ok(&url, &["search", "--artifact", artifact.to_str().unwrap()]);
    assert!(by_artifact_file.contains(&uuid), "{by_artifact_file}");
    let by_key = cli.ok(&url, &["search", "--public-key", public.to_str().unwrap(), "--pki-format", "x509"]);
    assert!(by_key.contains(&uuid), "{by_key}");

    // The second loginfo proves the new tree consistent with the tree it stored the first time
    // (rekor-cli fetches /api/v1/log/proof and fails on any inconsistency; see the refusals below).
    let second = cli.ok(&url, &["loginfo"]);
    assert!(second.contains("Verification Successful!"), "{second}");

    // Across a restart on the same state directory (same port, same URL, same tree).
    stack.stop().unwrap();
    let stack = Stack::start(&state, &[]).unwrap();
    assert_eq!(stack.url("rekor"), url, "ephemeral ports are sticky across restarts");
    let after_restart = cli.ok(&url, &["loginfo"]);
    assert!(after_restart.contains("Verification Successful!"), "{after_restart}");
    cli.ok(&url, &["verify", "--uuid", &uuid]);

    // Refusals: a config naming another key; a stored state the log never had (same size, another
    // root); a stored state of a larger tree than the log's.
    let other = RekorCli::new(&dir.path().join("other"), &std::fs::read_to_string(&public).unwrap());
    other.refused(&url, &["loginfo"], "signature on tree head did not verify");
    let state_file = cli.home.join(".rekor/state.json");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let mut tampered = stored.clone();
    tampered.as_object_mut().unwrap().values_mut().for_each(tamper_root);
    std::fs::write(&state_file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    cli.refused(&url, &["loginfo"], "old root hash does not match STH hash");
    let mut larger = stored.clone();
    larger
        .as_object_mut()
        .unwrap()
        .values_mut()
        .for_each(|checkpoint| edit_note_line(checkpoint, 1, |size| (size.parse::<u64>().unwrap() + 10).to_string()));
    std::fs::write(&state_file, serde_json::to_vec(&larger).unwrap()).unwrap();
    cli.refused(&url, &["loginfo"], "larger than the verified tree size");
    drop(stack);
}

/// Rewrites line `line` of a checkpoint rekor-cli stored (the signed note as text: origin, size,
/// base64 root, blank line, signature; its signature is not checked again when loaded).
fn edit_note_line(checkpoint: &mut serde_json::Value, line: usize, edit: impl Fn(&str) -> String) {
    let text = checkpoint.as_str().expect("rekor-cli stores checkpoints as note text");
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    lines[line] = edit(&lines[line]);
    *checkpoint = serde_json::Value::String(lines.join("\n"));
}

/// Flips a bit of the root hash of a stored checkpoint.
fn tamper_root(checkpoint: &mut serde_json::Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    edit_note_line(checkpoint, 2, |root| {
        let mut bytes = b64.decode(root).unwrap();
        bytes[0] ^= 1;
        b64.encode(bytes)
    });
}
