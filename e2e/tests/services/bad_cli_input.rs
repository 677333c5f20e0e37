//! Bad input on the command line and in the files it reads (policies, resources, keys, tokens,
//! ports, image references): every case exits non-zero with `sigstack: error: ...` naming the
//! problem, and nothing panics. Prints the number of cases.

use std::process::Command;

use sigstack_e2e::sigstack_bin;

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n";
const POLICY: &str = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {pattern: {spec: {containers: [{image: \"ghcr.io/*\"}]}}}\n";

#[test]
fn bad_cli_input_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let pod = file("pod.yaml", POD);
    let policy = file("policy.yaml", POLICY);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["apply".into(), "--policy".into(), "/nonexistent.yaml".into(), "--resource".into(), pod.clone()],
            "nonexistent",
        ),
        (
            vec!["apply".into(), "--policy".into(), file("bad.yaml", "not: [valid"), "--resource".into(), pod.clone()],
            "bad.yaml",
        ),
        (
            vec![
                "apply".into(),
                "--policy".into(),
                file("v2.yaml", &POLICY.replace("kyverno.io/v1", "kyverno.io/v2beta1")),
                "--resource".into(),
                pod.clone(),
            ],
            "apiVersion",
        ),
        (
            vec![
                "apply".into(),
                "--policy".into(),
                file("unknown.yaml", &POLICY.replace("  rules:", "  frobnicate: true\n  rules:")),
                "--resource".into(),
                pod.clone(),
            ],
            "frobnicate",
        ),
        (
            vec!["apply".into(), "--policy".into(), file("empty.yaml", ""), "--resource".into(), pod.clone()],
            "no policy",
        ),
        (
            vec!["apply".into(), "--policy".into(), file("list.yaml", "[1, 2]"), "--resource".into(), pod.clone()],
            "list.yaml",
        ),
        (
            vec![
                "apply".into(),
                "--policy".into(),
                policy.clone(),
                "--resource".into(),
                file("kindless.yaml", "metadata: {name: x}\n"),
            ],
            "without kind",
        ),
        (
            vec![
                "apply".into(),
                "--policy".into(),
                policy.clone(),
                "--resource".into(),
                file("broken.yaml", "kind: Pod\n  - : ]"),
            ],
            "not YAML",
        ),
        (vec!["token".into(), "--ttl=-5m".into()], "-5m"),
        (vec!["token".into(), "--profile".into(), "nope".into()], "nope"),
        (vec!["token".into(), "--claim".into(), "no-equals-sign".into()], "claim"),
        (vec!["serve".into(), "rekor".into(), "--port".into(), "99999".into()], "99999"),
        (vec!["up".into(), "--oidc-port".into(), "not-a-port".into()], "not-a-port"),
        (vec!["verify".into(), "--key".into(), file("notakey.pem", "hello"), "127.0.0.1:1/x:v1".into()], "notakey.pem"),
        (vec!["verify".into(), "127.0.0.1:1/x:v1".into()], "certificate-identity"),
        (vec!["policy".into(), "render".into(), "--org".into(), "acme".into()], "stack"),
        (vec!["sign".into(), "UPPER/Case::bad".into()], "error"),
        (vec!["probe".into(), "not a url".into()], "url"),
        (vec!["webhook".into(), "--policy".into(), file("bad2.yaml", "{{{"), "--port".into(), "0".into()], "bad2.yaml"),
        (vec!["nonsense-command".into()], "unrecognized subcommand"),
    ];
    let count = cases.len();
    let mut failures = Vec::new();
    for (args, needle) in cases {
        let output = Command::new(sigstack_bin())
            .args(&args)
            .env("SIGSTACK_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = args.join(" ");
        if output.status.success() {
            failures.push(format!("{what}: exited 0"));
        } else if stderr.contains("panicked") || output.status.code().is_none_or(|c| c > 2) {
            failures.push(format!("{what}: crashed ({:?}): {stderr}", output.status.code()));
        } else if !stderr.to_lowercase().contains(&needle.to_lowercase()) {
            failures.push(format!("{what}: error does not mention {needle:?}: {stderr}"));
        }
    }
    eprintln!("BAD CLI INPUT SUMMARY: {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases misbehaved:\n{}", failures.len(), failures.join("\n"));
}
