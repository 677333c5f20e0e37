//! The real judges. One real kube-apiserver; the real Kyverno (v1.19, its controller unmodified)
//! and sigstack's webhook registered side by side, each judging its own namespaces (labels
//! `sigstack.dev/judge=kyverno|sigstack`); the same ClusterPolicies in both; the same images, signed
//! by sigstack, cosign v2 and cosign v3. Every case is created through the API server in both
//! namespaces, and the verdicts must agree case by case. The table goes to the test output and to
//! `$SIGSTACK_CACHE/logs/admission-agreement.md` (scripts/test.sh prints it).

use std::path::PathBuf;

use serde_json::{Value, json};
use sigstack_e2e::cluster::{Admission, Cluster};
use sigstack_e2e::resources::{deployment, each_keyless, pod};
use sigstack_e2e::webhook::Webhook;
use sigstack_e2e::{Stack, cache_dir, cosign_command, run_ok, sigstack, token};

const JUDGE: &str = "sigstack.dev/judge";
const POLICY: &str = "verify-signed-images";

/// One policy variant: the rendered policy, edited, restricted to its own two namespaces.
struct Variant {
    name: &'static str,
    edit: Box<dyn Fn(&mut Value)>,
}

struct Case {
    name: String,
    variant: &'static str,
    resource: String,
    admitted: bool,
    /// Said by both judges when denied.
    reason: &'static str,
}

struct Row {
    case: Case,
    kyverno: Admission,
    sigstack: Admission,
}

fn namespace(variant: &str, judge: &str) -> String {
    format!("{variant}-{judge}")
}

fn cronjob(name: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}}}\nspec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

/// The container image of a stored Pod, Deployment or CronJob.
fn stored_image(object: &Value) -> String {
    ["/spec", "/spec/template/spec", "/spec/jobTemplate/spec/template/spec"]
        .iter()
        .find_map(|p| object.pointer(&format!("{p}/containers/0/image")).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

/// Replaces every occurrence of `from` in the policy's strings.
fn replace_text(policy: &mut Value, from: &str, to: &str) {
    let text = serde_json::to_string(policy).unwrap().replace(from, to);
    *policy = serde_json::from_str(&text).unwrap();
}

struct World {
    dir: tempfile::TempDir,
    state: PathBuf,
    stack: Stack,
    registry: String,
}

impl World {
    fn sigstack(&self, args: &[&str]) -> String {
        run_ok(sigstack(&self.state).args(args)).trim().to_string()
    }

    fn image(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.registry)
    }

    /// Builds `repo:tag` (a distinct image per call).
    fn build(&self, repo: &str, tag: &str) -> String {
        self.sigstack(&["build", "--name", repo, "--tag", tag, "--app-version", &format!("{repo}-{tag}")])
    }

    fn sign_and_attest(&self, repo: &str, tag: &str, identity_repo: &str) {
        let image = format!("{repo}:{tag}");
        self.sigstack(&["sign", &image, "--repo", identity_repo]);
        self.sigstack(&["attest", &image, "--repo", identity_repo]);
    }

    fn cosign(&self, major: &str, args: &[&str]) {
        let mut command = cosign_command(major, &self.state);
        command.args(args);
        run_ok(&mut command);
    }
}

#[test]
fn real_kyverno_and_sigstack_agree_through_a_real_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let stack = Stack::start(&state, &[]).unwrap();
    let registry = stack.url("registry").trim_start_matches("http://").to_string();
    let world = World { dir, state, stack, registry };
    let w = &world;

    // ---- The images, as CI and attackers would make them. ----
    let digest = w.build("acme/app", "v1");
    let sbom = w.dir.path().join("sbom.json");
    w.sigstack(&["sbom", "acme/app:v1", "-o", sbom.to_str().unwrap()]);
    w.sign_and_attest("acme/app", "v1", "acme/app");
    w.build("acme/unsigned", "v1");
    w.build("acme/nosbom", "v1");
    w.sigstack(&["sign", "acme/nosbom:v1", "--repo", "acme/nosbom"]);
    w.build("acme/forked", "v1");
    w.sign_and_attest("acme/forked", "v1", "evil/forked");
    w.build("acme/person", "v1");
    let email = w.sigstack(&["token", "--profile", "email", "--email", "dev@acme.test"]);
    for command in ["sign", "attest"] {
        w.sigstack(&[command, "acme/person:v1", "--identity-token", &email]);
    }
    w.build("acme/spdx3", "v1");
    w.sigstack(&["sign", "acme/spdx3:v1", "--repo", "acme/spdx3"]);
    let mut spdx3: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    spdx3["spdxVersion"] = json!("SPDX-3.0");
    let spdx3_path = w.dir.path().join("spdx3.json");
    std::fs::write(&spdx3_path, spdx3.to_string()).unwrap();
    w.sigstack(&["attest", "acme/spdx3:v1", "--repo", "acme/spdx3", "--sbom", spdx3_path.to_str().unwrap()]);
    // Its organisation's signature and SBOM, plus a second SPDX attestation by another identity.
    w.build("acme/twice", "v1");
    w.sign_and_attest("acme/twice", "v1", "acme/twice");
    w.sigstack(&["attest", "acme/twice:v1", "--repo", "evil/app"]);
    // Signed, then the tag moved to an unsigned image.
    w.build("acme/moved", "v1");
    w.sign_and_attest("acme/moved", "v1", "acme/moved");
    w.build("acme/moved", "v1-moved");
    let moved_to = w.sigstack(&["build", "--name", "acme/moved", "--tag", "v1", "--app-version", "moved"]);
    assert!(!moved_to.is_empty());
    // Signed and attested by another stack's CA and log, pushed into this registry.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Stack::start(other_dir.path(), &["--no-registry"]).unwrap();
    w.build("acme/foreign", "v1");
    for command in ["sign", "attest"] {
        run_ok(sigstack(other_dir.path()).args([
            command,
            &w.image("acme/foreign", "v1"),
            "--repo",
            "acme/foreign",
            "--registry",
            &format!("http://{}", w.registry),
        ]));
    }
    let other_rekor_key = std::fs::read_to_string(other_dir.path().join("trust/rekor.pub")).unwrap();
    drop(other);
    // sigstack's own Sigstore bundles (--format bundle), as cosign v3 attaches them.
    w.build("acme/bundled", "v1");
    for command in ["sign", "attest"] {
        w.sigstack(&[command, "acme/bundled:v1", "--repo", "acme/bundled", "--format", "bundle"]);
    }
    // cosign v2 (legacy .sig/.att, through Fulcio v1) and cosign v3 in its default mode (a Sigstore
    // bundle as an OCI referrer), both with an acme workflow identity.
    let trust = w.state.join("trust");
    for (major, repo) in [("v2", "acme/cosign2"), ("v3", "acme/cosign3")] {
        let built = w.build(repo, "v1");
        let image = format!("{}/{repo}@{built}", w.registry);
        let jwt = token(&w.state, &["--repo", repo]);
        let mut common = vec!["--yes", "--allow-insecure-registry", "--identity-token", jwt.as_str()];
        let (fulcio, rekor) = (w.stack.url("fulcio"), w.stack.url("rekor"));
        let (signing_config, trusted_root) = (trust.join("signing_config.v0.2.json"), trust.join("trusted_root.json"));
        if major == "v2" {
            common.extend(["--fulcio-url", fulcio.as_str(), "--rekor-url", rekor.as_str()]);
        } else {
            common.extend(["--signing-config", signing_config.to_str().unwrap()]);
            common.extend(["--trusted-root", trusted_root.to_str().unwrap()]);
        }
        w.cosign(major, &[&["sign"][..], &common, &[image.as_str()]].concat());
        let predicate = ["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()];
        w.cosign(major, &[&predicate[..], &common, &[image.as_str()]].concat());
    }

    // ---- The policies: the rendered one and its variants, each judged in its own namespaces. ----
    let rendered = w.dir.path().join("rendered.yaml");
    w.sigstack(&["policy", "render", "--org", "acme", "-o", rendered.to_str().unwrap()]);
    let rendered_bundle = w.dir.path().join("rendered-bundle.yaml");
    let bundle_source = sigstack_e2e::workspace_root().join("policy/verify-signed-images-bundle.yaml");
    w.sigstack(&[
        "policy",
        "render",
        "--org",
        "acme",
        "--policy",
        bundle_source.to_str().unwrap(),
        "-o",
        rendered_bundle.to_str().unwrap(),
    ]);
    let bundle_policy: Value = serde_norway::from_slice(&std::fs::read(&rendered_bundle).unwrap()).unwrap();
    let registry = w.registry.clone();
    let down = |failure_policy: &'static str, checks: bool| -> Box<dyn Fn(&mut Value)> {
        let registry = registry.clone();
        Box::new(move |policy: &mut Value| {
            replace_text(policy, &registry, "127.0.0.1:1");
            policy["spec"]["failurePolicy"] = json!(failure_policy);
            for rule in policy["spec"]["rules"].as_array_mut().unwrap() {
                for entry in rule.get_mut("verifyImages").and_then(Value::as_array_mut).into_iter().flatten() {
                    entry["verifyDigest"] = json!(checks);
                    entry["required"] = json!(checks);
                }
            }
        })
    };
    let variants = vec![
        Variant { name: "main", edit: Box::new(|_| {}) },
        Variant {
            name: "rekor",
            edit: Box::new(move |policy| {
                each_keyless(policy, &|keyless| keyless["rekor"]["pubkey"] = json!(other_rekor_key.clone()))
            }),
        },
        Variant { name: "down-fail", edit: down("Fail", true) },
        Variant { name: "down-ignore", edit: down("Ignore", true) },
        Variant { name: "down-unchecked", edit: down("Ignore", false) },
        Variant { name: "bundle", edit: Box::new(move |policy| *policy = bundle_policy.clone()) },
    ];
    let policies_dir = w.dir.path().join("policies");
    std::fs::create_dir_all(&policies_dir).unwrap();
    let source: Value = serde_norway::from_slice(&std::fs::read(&rendered).unwrap()).unwrap();
    for variant in &variants {
        let mut policy = source.clone();
        (variant.edit)(&mut policy);
        if variant.name != "main" && variant.name != "bundle" {
            policy["metadata"]["name"] = json!(format!("{POLICY}-{}", variant.name));
        }
        let namespaces = json!([namespace(variant.name, "kyverno"), namespace(variant.name, "sigstack")]);
        for rule in policy["spec"]["rules"].as_array_mut().unwrap() {
            for any in rule["match"]["any"].as_array_mut().unwrap() {
                any["resources"]["namespaces"] = namespaces.clone();
            }
        }
        std::fs::write(policies_dir.join(format!("{}.yaml", variant.name)), serde_norway::to_string(&policy).unwrap())
            .unwrap();
    }

    // ---- The judges. ----
    let cluster = Cluster::start(&w.state, &["--kyverno", "--kyverno-namespace-label", &format!("{JUDGE}=kyverno")]);
    // The stack's trusted root for type SigstoreBundle, as `eval "$(sigstack env)"` sets it.
    let trusted_root = w.state.join("trust/trusted_root.json").display().to_string();
    let webhook = Webhook::start_with_env(&w.state, &policies_dir, &[("SIGSTACK_TRUSTED_ROOT".into(), trusted_root)]);
    let manifests =
        w.sigstack(&["webhook", "manifests", "--url", &webhook.url, "--namespace-label", &format!("{JUDGE}=sigstack")]);
    cluster.ok(&["apply", "-f", "-"], Some(&manifests));
    for variant in &variants {
        for judge in ["kyverno", "sigstack"] {
            cluster.namespace(&namespace(variant.name, judge), &[(JUDGE, judge)]);
        }
    }
    // Kyverno validates policies in a webhook of its own, which may answer a moment after it registers.
    sigstack_e2e::wait_for_condition(
        "kubectl apply of the policies to succeed (Kyverno's policy webhook)",
        std::time::Duration::from_secs(60),
        || cluster.run(&["apply", "-f", policies_dir.to_str().unwrap()], None).0,
    );
    cluster.wait_for_kyverno_policies();

    // ---- The matrix. ----
    let reg = |repo: &str, tag: &str| w.image(repo, tag);
    let case = |name: &str, variant, resource: String, admitted, reason| Case {
        name: name.to_string(),
        variant,
        resource,
        admitted,
        reason,
    };
    let cases = vec![
        case("signed-and-attested", "main", pod("signed", &reg("acme/app", "v1")), true, ""),
        case("nginx-latest", "main", pod("nginx", "nginx:latest"), false, "restrict-image-registries"),
        case("unsigned", "main", pod("unsigned", &reg("acme/unsigned", "v1")), false, "no signatures found"),
        case("no-sbom", "main", pod("nosbom", &reg("acme/nosbom", "v1")), false, "require-sbom-attestation"),
        case("other-org-workflow", "main", pod("forked", &reg("acme/forked", "v1")), false, "subject mismatch"),
        case("other-issuer", "main", pod("person", &reg("acme/person", "v1")), false, "mismatch"),
        case("sbom-not-spdx-2", "main", pod("spdx3", &reg("acme/spdx3", "v1")), false, "SPDX 2.x"),
        case(
            "extra-attestation-by-other-identity",
            "main",
            pod("twice", &reg("acme/twice", "v1")),
            false,
            "subject mismatch",
        ),
        case("tag-moved", "main", pod("moved", &reg("acme/moved", "v1")), false, "no signatures found"),
        case("pinned-digest", "main", pod("pinned", &format!("{}/acme/app@{digest}", w.registry)), true, ""),
        case("another-stacks-ca", "main", pod("foreign", &reg("acme/foreign", "v1")), false, "check-cosign-signature"),
        case("deployment-signed", "main", deployment("web", &reg("acme/app", "v1")), true, ""),
        case(
            "deployment-unsigned",
            "main",
            deployment("web-unsigned", &reg("acme/unsigned", "v1")),
            false,
            "autogen-check-cosign-signature",
        ),
        case("cronjob-signed", "main", cronjob("nightly", &reg("acme/app", "v1")), true, ""),
        case(
            "cronjob-nginx",
            "main",
            cronjob("nightly-nginx", "nginx:latest"),
            false,
            "autogen-cronjob-restrict-image-registries",
        ),
        case("cosign-v2-signed", "main", pod("cosign2", &reg("acme/cosign2", "v1")), true, ""),
        case(
            "cosign-v3-default-bundle",
            "main",
            pod("cosign3", &reg("acme/cosign3", "v1")),
            false,
            "no signatures found",
        ),
        case("foreign-log-key", "rekor", pod("signed", &reg("acme/app", "v1")), false, "check-cosign-signature"),
        // The SigstoreBundle variant (cosign v3's default format; Kyverno takes its trusted root from
        // the stack's TUF repository, sigstack from --trusted-root).
        case("bundle-policy-cosign-v3-default", "bundle", pod("cosign3", &reg("acme/cosign3", "v1")), true, ""),
        case("bundle-policy-sigstack-format-bundle", "bundle", pod("bundled", &reg("acme/bundled", "v1")), true, ""),
        case(
            "bundle-policy-legacy-signature",
            "bundle",
            pod("legacy", &reg("acme/app", "v1")),
            false,
            "sigstore bundle verification failed",
        ),
        case(
            "bundle-policy-other-org",
            "bundle",
            pod("forked", &reg("acme/forked", "v1")),
            false,
            "sigstore bundle verification failed",
        ),
        case(
            "registry-down-fail",
            "down-fail",
            pod("down", "127.0.0.1:1/acme/app:v1"),
            false,
            "failed to verify image 127.0.0.1:1/acme/app:v1",
        ),
        // The real Kyverno fails an unreachable registry whatever failurePolicy says.
        case(
            "registry-down-ignore",
            "down-ignore",
            pod("down", "127.0.0.1:1/acme/app:v1"),
            false,
            "connection refused",
        ),
        case(
            "registry-down-ignore-unchecked",
            "down-unchecked",
            pod("down", "127.0.0.1:1/acme/app:v1"),
            false,
            "connection refused",
        ),
    ];
    let mut rows = Vec::new();
    for case in cases {
        let kyverno = cluster.create(&namespace(case.variant, "kyverno"), &case.resource);
        let sigstack = cluster.create(&namespace(case.variant, "sigstack"), &case.resource);
        rows.push(Row { case, kyverno, sigstack });
    }

    let table = agreement_table(&rows);
    println!("{table}");
    let report = cache_dir().join("logs/admission-agreement.md");
    let _ = std::fs::create_dir_all(report.parent().unwrap());
    let _ = std::fs::write(&report, &table);

    let mut problems = Vec::new();
    for row in &rows {
        let Row { case, kyverno, sigstack } = row;
        let name = &case.name;
        if kyverno.allowed != sigstack.allowed {
            problems.push(format!("{name}: Kyverno {} but sigstack {}", verdict(kyverno), verdict(sigstack)));
        }
        if kyverno.allowed != case.admitted {
            problems.push(format!(
                "{name}: expected {}, Kyverno {}: {}",
                if case.admitted { "admitted" } else { "denied" },
                verdict(kyverno),
                kyverno.reason()
            ));
        }
        // The same words: users compare sigstack's denials with Kyverno's.
        let same = |a: &Admission, judge: &str| a.reason().replace(&format!("-{judge}/"), "/");
        if !kyverno.allowed && !sigstack.allowed && same(kyverno, "kyverno") != same(sigstack, "sigstack") {
            problems.push(format!(
                "{name}: the messages differ:\n  Kyverno:  {}\n  sigstack: {}",
                kyverno.reason(),
                sigstack.reason()
            ));
        }
        for (judge, answer) in [("Kyverno", kyverno), ("sigstack", sigstack)] {
            if !answer.allowed && !answer.reason().contains(case.reason) {
                problems.push(format!("{name}: {judge}'s denial lacks {:?}: {}", case.reason, answer.reason()));
            }
        }
        if kyverno.allowed && sigstack.allowed {
            // The same object stored: the image pinned the same way, the same verdict annotation.
            let (k, s) = (stored_image(&kyverno.object), stored_image(&sigstack.object));
            if k != s {
                problems.push(format!("{name}: stored image differs: Kyverno {k}, sigstack {s}"));
            }
            let annotations = |o: &Value| o["metadata"]["annotations"]["kyverno.io/verify-images"].clone();
            if annotations(&kyverno.object) != annotations(&sigstack.object) {
                problems.push(format!(
                    "{name}: verify-images annotation differs: Kyverno {}, sigstack {}",
                    annotations(&kyverno.object),
                    annotations(&sigstack.object)
                ));
            }
        }
    }
    // What a REST client sees: the same HTTP status from both judges (201 created, 400 denied).
    for (name, image, expected) in
        [("status-signed", reg("acme/app", "v1"), 201), ("status-nginx", "nginx:latest".to_string(), 400)]
    {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": image}]}});
        for judge in ["kyverno", "sigstack"] {
            let status = cluster.create_status(&namespace("main", judge), &pod);
            if status != expected {
                problems.push(format!("{name}: {judge} answered HTTP {status}, expected {expected}"));
            }
        }
    }
    let signed = &rows[0];
    assert!(signed.kyverno.allowed, "the signed Pod is admitted: {}", signed.kyverno.message);
    assert_eq!(
        stored_image(&signed.kyverno.object),
        format!("{}/acme/app:v1@{digest}", w.registry),
        "pinned to its digest, tag kept"
    );
    assert!(problems.is_empty(), "the judges disagree:\n{}\n\n{table}", problems.join("\n"));
    drop(webhook);
    drop(cluster);
}

fn verdict(answer: &Admission) -> &'static str {
    if answer.allowed { "admitted" } else { "denied" }
}

/// The agreement table in Markdown: case, each verdict, and Kyverno's message (sigstack's too
/// where its wording differs).
fn agreement_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | sigstack | Kyverno | message (Kyverno's; sigstack's where it differs) |\n|---|---|---|---|\n",
    );
    for row in rows {
        let (k, s) = (row.kyverno.reason(), row.sigstack.reason());
        let clean = |m: &str| m.replace('\n', " ").replace('|', "\\|").split_whitespace().collect::<Vec<_>>().join(" ");
        let message = if row.kyverno.allowed {
            format!("admitted as {}", stored_image(&row.kyverno.object))
        } else if clean(&k).replace("-kyverno/", "/") == clean(&s).replace("-sigstack/", "/") {
            clean(&k)
        } else {
            format!("Kyverno: {} — sigstack: {}", clean(&k), clean(&s))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.case.name,
            verdict(&row.sigstack),
            verdict(&row.kyverno),
            message
        ));
    }
    out
}
