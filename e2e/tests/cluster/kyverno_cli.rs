//! The original flow's CI check with the real Kyverno CLI (v1.19, unmodified): `kyverno apply` of
//! the rendered policy on policy/test/pods.yaml, and `kyverno test` of the committed offline layout
//! policy/test/local, against a stack of this test's own; `sigstack apply` on the same inputs
//! agrees with `kyverno apply`, rule by rule.

use std::path::{Path, PathBuf};
use std::process::Command;

use sigstack_e2e::{Stack, cache_dir, run_ok, sigstack, workspace_root};

/// The Kyverno CLI the scripts built (the same lookup as `sigstack policy probe`). Missing is a
/// loud failure.
fn kyverno_cli() -> PathBuf {
    sigstack::policy_probe::kyverno_cli().expect("the Kyverno CLI is not built: run scripts/install.sh kyverno")
}

fn kyverno(home: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(kyverno_cli())
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn the_real_kyverno_cli_passes_the_signed_pod_and_fails_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let stack = Stack::start(&state, &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(&state).args(args)).trim().to_string();
    ok(&["build", "--name", "sigstack-demo/app", "--tag", "v1"]);
    ok(&["sign", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    ok(&["attest", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    ok(&["build", "--name", "sigstack-demo/unsigned", "--tag", "v1", "--app-version", "unsigned"]);

    // `kyverno apply` of the rendered policy on policy/test/pods.yaml, its images in the stack's
    // registry.
    let policy = dir.path().join("policy.yaml");
    ok(&["policy", "render", "--org", "sigstack-demo", "-o", policy.to_str().unwrap()]);
    let pods = std::fs::read_to_string(workspace_root().join("policy/test/pods.yaml"))
        .unwrap()
        .replace("ghcr.io/sigstack-demo/", &format!("{registry}/sigstack-demo/"));
    let pods_file = dir.path().join("pods.yaml");
    std::fs::write(&pods_file, pods).unwrap();
    let home = dir.path().join("kyverno-home");
    std::fs::create_dir_all(&home).unwrap();
    let (_, applied) = kyverno(
        &home,
        &["apply", policy.to_str().unwrap(), "--resource", pods_file.to_str().unwrap(), "--detailed-results"],
    );
    println!("kyverno apply:\n{applied}");
    // Kyverno's summary: the signed Pod passes its five rule checks (the registry rule, both
    // verifications, and both validating-phase checks), nginx fails the registry rule.
    assert!(applied.contains("pass: 5, fail: 1, warn: 0, error: 0, skip: 0"), "kyverno apply:\n{applied}");
    assert!(
        applied.contains(
            "resource default/Pod/nginx failed:\n1 - restrict-image-registries validation error: images must come from"
        ),
        "{applied}"
    );

    // sigstack apply on the same inputs: the same verdict per Pod.
    let ours = sigstack(&state)
        .args(["apply", "--policy", policy.to_str().unwrap(), "--resource", pods_file.to_str().unwrap()])
        .output()
        .unwrap();
    let ours = String::from_utf8_lossy(&ours.stdout).into_owned();
    assert!(ours.contains("Pod/default/signed-app: ADMITTED"), "{ours}");
    assert!(ours.contains("Pod/default/nginx: DENIED"), "{ours}");
    let count = |status: &str| ours.lines().filter(|l| l.split_whitespace().nth(3) == Some(status)).count();
    assert_eq!(
        (count("pass"), count("fail")),
        (5, 1),
        "sigstack apply counts the rule checks as kyverno apply does:\n{ours}"
    );

    // `kyverno test` of the committed offline layout, its registry rewritten to this stack's.
    let layout = dir.path().join("local");
    std::fs::create_dir_all(&layout).unwrap();
    for file in ["kyverno-test.yaml", "pods.yaml"] {
        let text = std::fs::read_to_string(workspace_root().join("policy/test/local").join(file)).unwrap();
        std::fs::write(layout.join(file), text.replace("127.0.0.1:8095", &registry)).unwrap();
    }
    std::fs::copy(&policy, layout.join("policy.yaml")).unwrap();
    let (passed, tested) = kyverno(&home, &["test", layout.to_str().unwrap(), "--remove-color"]);
    println!("kyverno test:\n{tested}");
    assert!(passed, "kyverno test policy/test/local failed:\n{tested}");
    // Each expected result is checked for both webhook phases: 12 checks for the 5 results.
    assert!(tested.contains("Test Summary: 12 tests passed and 0 tests failed"), "{tested}");
    let report = cache_dir().join("logs/kyverno-cli.txt");
    let _ = std::fs::write(
        report,
        format!(
            "$ kyverno apply (rendered policy, policy/test/pods.yaml)\n{applied}\n$ kyverno test policy/test/local\n{tested}"
        ),
    );
}

/// A change to one `verifyImages` rule of a policy.
type RuleEdit<'a> = Box<dyn Fn(&mut serde_json::Value) + 'a>;

/// The `pass: N, fail: N, warn: N, error: N, skip: N` line of an `apply` output (either tool).
fn counts(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("pass: ") && l.contains("skip: "))
        .unwrap_or_else(|| panic!("no result counts in:\n{output}"))
        .to_string()
}

/// Two policy variants a new user writes, where sigstack used to disagree with Kyverno: images
/// skipped by `skipImageReferences` (Kyverno still pins them and its validating phase skips them:
/// admitted) and rule `preconditions` the Pod does not meet (the rules are skipped: admitted).
/// The real CLI and `sigstack apply` judge the same inputs; verdicts and counts must agree.
#[test]
fn skipped_images_and_unmet_preconditions_are_judged_as_the_real_kyverno_cli_judges_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let stack = Stack::start(&state, &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(&state).args(args)).trim().to_string();
    ok(&["build", "--name", "sigstack-demo/unsigned", "--tag", "v1", "--app-version", "unsigned"]);
    let policy = dir.path().join("policy.yaml");
    ok(&["policy", "render", "--org", "sigstack-demo", "-o", policy.to_str().unwrap()]);
    let rendered: serde_json::Value = serde_norway::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    let pod = |labels: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: unsigned\n  namespace: default\n{labels}spec:\n  containers:\n    - name: app\n      image: {registry}/sigstack-demo/unsigned:v1\n"
        )
    };
    let home = dir.path().join("kyverno-home");
    std::fs::create_dir_all(&home).unwrap();

    let variants: [(&str, RuleEdit<'_>, String); 3] = [
        (
            "skipImageReferences naming the unsigned image in both verifyImages rules",
            Box::new(|rule: &mut serde_json::Value| {
                rule["verifyImages"][0]["skipImageReferences"] =
                    serde_json::json!([format!("{registry}/sigstack-demo/unsigned*")]);
            }),
            pod(""),
        ),
        (
            "preconditions on a label the Pod lacks",
            Box::new(|rule: &mut serde_json::Value| {
                rule["preconditions"] = serde_json::json!({"all": [{
                    "key": "{{ request.object.metadata.labels.verify || '' }}", "operator": "Equals", "value": "yes"
                }]});
            }),
            pod(""),
        ),
        (
            "preconditions on a label the Pod carries",
            Box::new(|rule: &mut serde_json::Value| {
                rule["preconditions"] = serde_json::json!([{
                    "key": "{{ request.object.metadata.labels.verify || '' }}", "operator": "Equals", "value": "yes",
                    "message": "only Pods labelled verify=yes are checked"
                }]);
            }),
            pod("  labels:\n    verify: \"yes\"\n"),
        ),
    ];
    let mut report = String::new();
    for (i, (what, change, resource)) in variants.iter().enumerate() {
        let mut variant = rendered.clone();
        for rule in variant["spec"]["rules"].as_array_mut().unwrap() {
            if rule["verifyImages"].is_array() {
                change(rule);
            }
        }
        let policy_file = dir.path().join(format!("variant-{i}.yaml"));
        // JSON (which is YAML): serde_norway writes `yes` unquoted, which Kyverno's YAML 1.1
        // reader takes for a boolean (see docs/admission.md, "YAML 1.1 booleans").
        std::fs::write(&policy_file, serde_json::to_string_pretty(&variant).unwrap()).unwrap();
        let resource_file = dir.path().join(format!("pod-{i}.yaml"));
        std::fs::write(&resource_file, resource).unwrap();
        let (_, theirs) = kyverno(
            &home,
            &[
                "apply",
                policy_file.to_str().unwrap(),
                "--resource",
                resource_file.to_str().unwrap(),
                "--detailed-results",
            ],
        );
        let ours = sigstack(&state)
            .args(["apply", "--policy", policy_file.to_str().unwrap(), "--resource", resource_file.to_str().unwrap()])
            .output()
            .unwrap();
        let ours = String::from_utf8_lossy(&ours.stdout).into_owned();
        report.push_str(&format!("## {what}\n$ kyverno apply\n{theirs}\n$ sigstack apply\n{ours}\n"));
        let kyverno_admits = !theirs.contains("failed:");
        let sigstack_admits = ours.contains(": ADMITTED");
        assert_eq!(
            (sigstack_admits, counts(&ours)),
            (kyverno_admits, counts(&theirs)),
            "{what}: sigstack and the real Kyverno CLI disagree\nkyverno apply:\n{theirs}\nsigstack apply:\n{ours}"
        );
    }
    println!("{report}");
    let _ = std::fs::write(cache_dir().join("logs/kyverno-cli-variants.txt"), report);
}

/// The ImageValidatingPolicy through the real CLI: `kyverno apply` of the rendered policy on the
/// committed Pods (by digest: the CLI never pins tags) gives the same verdicts and counts as
/// `sigstack apply`, and `kyverno test policy/test/local-ivpol` passes.
#[test]
fn the_real_kyverno_cli_and_sigstack_apply_agree_on_the_image_validating_policy() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let stack = Stack::start(&state, &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let ok = |args: &[&str]| run_ok(sigstack(&state).args(args)).trim().to_string();
    let signed = ok(&["build", "--name", "sigstack-demo/app", "--tag", "v1"]);
    ok(&["sign", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    ok(&["attest", "sigstack-demo/app:v1", "--repo", "sigstack-demo/app"]);
    let unsigned = ok(&["build", "--name", "sigstack-demo/unsigned", "--tag", "v1", "--app-version", "unsigned"]);
    let layout = dir.path().join("local-ivpol");
    std::fs::create_dir_all(&layout).unwrap();
    for file in ["kyverno-test.yaml", "pods.yaml"] {
        let text = std::fs::read_to_string(workspace_root().join("policy/test/local-ivpol").join(file)).unwrap();
        std::fs::write(layout.join(file), text.replace("127.0.0.1:8095", &registry)).unwrap();
    }
    // The committed digests are those of sigstack's reproducible builds.
    let pods = std::fs::read_to_string(layout.join("pods.yaml")).unwrap();
    assert!(pods.contains(&format!("app@{signed}")) && pods.contains(&format!("unsigned@{unsigned}")), "{pods}");
    let policy = layout.join("policy.yaml");
    ok(&["policy", "render", "--type", "ivpol", "--org", "sigstack-demo", "-o", policy.to_str().unwrap()]);
    let home = dir.path().join("kyverno-home");
    std::fs::create_dir_all(&home).unwrap();
    let pods_file = layout.join("pods.yaml");
    let (_, theirs) = kyverno(
        &home,
        &["apply", policy.to_str().unwrap(), "--resource", pods_file.to_str().unwrap(), "--detailed-results"],
    );
    let ours = sigstack(&state)
        .args(["apply", "--policy", policy.to_str().unwrap(), "--resource", pods_file.to_str().unwrap()])
        .output()
        .unwrap();
    let ours = String::from_utf8_lossy(&ours.stdout).into_owned();
    println!("kyverno apply:\n{theirs}\nsigstack apply:\n{ours}");
    assert_eq!(counts(&theirs), "pass: 1, fail: 2, warn: 0, error: 0, skip: 0", "kyverno apply:\n{theirs}");
    assert_eq!(counts(&ours), counts(&theirs), "sigstack apply:\n{ours}");
    for (pod, admitted) in [("signed-app", true), ("nginx", false), ("unsigned-app", false)] {
        assert_eq!(theirs.contains(&format!("default/Pod/{pod} failed")), !admitted, "{pod}: {theirs}");
        let verdict = if admitted { "ADMITTED" } else { "DENIED" };
        assert!(ours.contains(&format!("Pod/default/{pod}: {verdict}")), "{pod}: {ours}");
    }
    // Kyverno's messages, word for word.
    for message in ["images must come from", "every image must be signed by a GitHub Actions workflow of sigstack-demo"]
    {
        assert!(theirs.contains(message) && ours.contains(message), "{message}:\n{theirs}\n{ours}");
    }

    let (passed, tested) = kyverno(&home, &["test", layout.to_str().unwrap(), "--remove-color"]);
    println!("kyverno test:\n{tested}");
    assert!(passed, "kyverno test policy/test/local-ivpol failed:\n{tested}");
    assert!(tested.contains("Test Summary: 3 tests passed and 0 tests failed"), "{tested}");
    let _ = std::fs::write(
        cache_dir().join("logs/kyverno-cli-ivpol.txt"),
        format!(
            "$ kyverno apply (rendered ImageValidatingPolicy)\n{theirs}\n$ sigstack apply\n{ours}\n$ kyverno test policy/test/local-ivpol\n{tested}"
        ),
    );
}

/// `sigstack policy probe --judge both` on the design's flawed original policy and on both of
/// ours: the original's card names both defects (Kyverno refuses it as written; it admits
/// nginx:latest), ours refuse every probe, and the real Kyverno CLI agrees with sigstack on every
/// probe of every card.
#[test]
fn policy_probe_cards_name_the_original_policys_defects_and_pass_ours() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Both logs, so the cards include the Rekor v2 + TSA bundle control.
    let _stack = Stack::start(&state, &["--rekor", "both"]).unwrap();
    let mut report = String::new();
    for (file, passes) in [
        ("policy/examples/original-policy.yaml", false),
        ("policy/verify-signed-images.yaml", true),
        ("policy/verify-signed-images-ivpol.yaml", true),
    ] {
        let markdown = dir.path().join("card.md");
        let output = sigstack(&state)
            .args(["policy", "probe", "--judge", "both", "--format", "json", "--policy"])
            .arg(workspace_root().join(file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let card: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{file}: not JSON ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr))
        });
        assert_eq!(output.status.success(), passes, "{file}: exit status\n{stdout}");
        assert_eq!(card["failed"], !passes, "{file}");
        let status = |name: &str| {
            card["probes"].as_array().unwrap().iter().find(|p| p["name"] == name).map(|p| p["status"].clone()).unwrap()
        };
        for probe in card["probes"].as_array().unwrap() {
            assert_ne!(probe["status"], "DISAGREE", "{file}: sigstack and the real Kyverno disagree on {probe}");
        }
        let findings = card["findings"].to_string();
        if passes {
            assert_eq!(card["score"]["refused"], card["score"]["of"], "{file}: {stdout}");
            assert_eq!(card["findings"], serde_json::json!([]), "{file}");
            assert_eq!(status("control-cosign-format"), "ok", "{file}");
        } else {
            assert!(findings.contains("as written, Kyverno refuses this policy"), "{findings}");
            assert!(findings.contains("Either Rekor URL or roots are required"), "{findings}");
            assert!(findings.contains("no registry restriction"), "{findings}");
            assert_eq!(status("nginx-latest"), "FINDING");
            assert_eq!(status("unsigned"), "ok");
        }
        let text = sigstack(&state)
            .args(["policy", "probe", "--format", "markdown", "-o", markdown.to_str().unwrap(), "--policy"])
            .arg(workspace_root().join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        assert!(text.contains("probes refused as they should be: "), "{text}");
        report.push_str(&format!("{text}\n"));
    }
    println!("{report}");
    let _ = std::fs::write(cache_dir().join("logs/policy-probe-cards.md"), report);
}
