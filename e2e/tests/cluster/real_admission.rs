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
    /// A Kyverno bug this case shows: Kyverno's (wrong) verdict is the opposite of `admitted`,
    /// which sigstack keeps; the table and the README name it.
    kyverno_bug: Option<&'static str>,
}

/// A case without a known Kyverno bug.
fn case(name: &str, variant: &'static str, resource: String, admitted: bool, reason: &'static str) -> Case {
    Case { name: name.to_string(), variant, resource, admitted, reason, kyverno_bug: None }
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
    let other_ca_chain = std::fs::read_to_string(other_dir.path().join("trust/fulcio-chain.pem")).unwrap();
    drop(other);
    // sigstack's own Sigstore bundles (--format bundle), as cosign v3 attaches them.
    w.build("acme/bundled", "v1");
    for command in ["sign", "attest"] {
        w.sigstack(&[command, "acme/bundled:v1", "--repo", "acme/bundled", "--format", "bundle"]);
    }
    // cosign v2 (legacy .sig/.att, through Fulcio v1) and cosign v3 in its default mode (a Sigstore
    // bundle as an OCI referrer), both with an acme workflow identity.
    let trust = w.state.join("trust");
    let leaf_path = w.dir.path().join("cosign2-leaf.pem");
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
        // cosign v2 keeps its signing certificate, for certificate attestors.
        let keep = ["--output-certificate", leaf_path.to_str().unwrap()];
        let keep: &[&str] = if major == "v2" { &keep } else { &[] };
        w.cosign(major, &[&["sign"][..], keep, &common, &[image.as_str()]].concat());
        let predicate = ["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()];
        w.cosign(major, &[&predicate[..], &common, &[image.as_str()]].concat());
    }

    // cosign v3 through a stack that runs Rekor v2 and a timestamp authority (bundles with a v2
    // entry and an RFC 3161 timestamp), pushed into this registry; trusted through its root.
    let tiles_dir = tempfile::tempdir().unwrap();
    let tiles = Stack::start(tiles_dir.path(), &["--no-registry", "--rekor", "v2"]).unwrap();
    let built = w.build("acme/tiles", "v1");
    let image = format!("{}/acme/tiles@{built}", w.registry);
    let jwt = token(tiles_dir.path(), &["--repo", "acme/tiles"]);
    let tiles_trust = tiles_dir.path().join("trust");
    for args in [vec!["sign"], vec!["attest", "--type", "spdxjson", "--predicate", sbom.to_str().unwrap()]] {
        let mut command = cosign_command("v3", tiles_dir.path());
        command.args(&args).args(["--yes", "--allow-insecure-registry", "--identity-token", &jwt]);
        command.arg("--signing-config").arg(tiles_trust.join("signing_config.v0.2.json"));
        command.arg("--trusted-root").arg(tiles_trust.join("trusted_root.json"));
        run_ok(command.arg(&image));
    }
    let tiles_root = std::fs::read_to_string(tiles_trust.join("trusted_root.json")).unwrap();
    drop(tiles);

    // Signed with a cosign key pair (cosign v2, legacy .sig, logged), for key attestors.
    let keys = w.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut generate = cosign_command("v2", &w.state);
    generate.current_dir(&keys).env("COSIGN_PASSWORD", "").args(["generate-key-pair"]);
    run_ok(&mut generate);
    let keyed = w.build("acme/keyed", "v1");
    let mut sign_with_key = cosign_command("v2", &w.state);
    sign_with_key.env("COSIGN_PASSWORD", "").args([
        "sign",
        "--yes",
        "--allow-insecure-registry",
        "--key",
        keys.join("cosign.key").to_str().unwrap(),
        "--rekor-url",
        w.stack.url("rekor").as_str(),
        &format!("{}/acme/keyed@{keyed}", w.registry),
    ]);
    run_ok(&mut sign_with_key);
    let public_key = std::fs::read_to_string(keys.join("cosign.pub")).unwrap();

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

    // The ImageValidatingPolicy variants: Kyverno's copy goes to the API server, sigstack's to its
    // webhook; each names its own namespace in a matchCondition (sigstack's webhook cannot read
    // namespace labels), and both carry the same policy name, so their messages compare.
    let rendered_ivpol = w.dir.path().join("rendered-ivpol.yaml");
    w.sigstack(&["policy", "render", "--type", "ivpol", "--org", "acme", "-o", rendered_ivpol.to_str().unwrap()]);
    let ivpol_source: Value = serde_norway::from_slice(&std::fs::read(&rendered_ivpol).unwrap()).unwrap();
    let cluster_dir = w.dir.path().join("cluster-policies");
    std::fs::create_dir_all(&cluster_dir).unwrap();
    for entry in std::fs::read_dir(&policies_dir).unwrap().flatten() {
        std::fs::copy(entry.path(), cluster_dir.join(entry.file_name())).unwrap();
    }
    let material = Material {
        public_key,
        leaf: std::fs::read_to_string(&leaf_path).unwrap(),
        ca_chain: std::fs::read_to_string(trust.join("fulcio-chain.pem")).unwrap(),
        other_ca_chain,
        tiles_root,
    };
    let ivpol_variants = ivpol_variants(&ivpol_source, &w.registry, &material);
    for (name, policy) in &ivpol_variants {
        for (judge, dir) in [("kyverno", &cluster_dir), ("sigstack", &policies_dir)] {
            let mut copy = policy.clone();
            copy["spec"]["matchConditions"] = json!([{
                "name": "judge", "expression": format!("request.namespace == '{}'", namespace(name, judge))
            }]);
            std::fs::write(dir.join(format!("{name}.yaml")), serde_norway::to_string(&copy).unwrap()).unwrap();
        }
    }

    // ---- The judges. ----
    let cluster = Cluster::start(&w.state, &["--kyverno", "--kyverno-namespace-label", &format!("{JUDGE}=kyverno")]);
    // The stack's trusted root for type SigstoreBundle, as `eval "$(sigstack env)"` sets it.
    let trusted_root = w.state.join("trust/trusted_root.json").display().to_string();
    let webhook = Webhook::start_with_env(&w.state, &policies_dir, &[("SIGSTACK_TRUSTED_ROOT".into(), trusted_root)]);
    let manifests =
        w.sigstack(&["webhook", "manifests", "--url", &webhook.url, "--namespace-label", &format!("{JUDGE}=sigstack")]);
    cluster.ok(&["apply", "-f", "-"], Some(&manifests));
    for name in variants.iter().map(|v| v.name).chain(ivpol_variants.iter().map(|(n, _)| *n)) {
        for judge in ["kyverno", "sigstack"] {
            cluster.namespace(&namespace(name, judge), &[(JUDGE, judge)]);
        }
    }
    // Kyverno validates policies in a webhook of its own, which may answer a moment after it registers.
    sigstack_e2e::wait_for_condition(
        "kubectl apply of the policies to succeed (Kyverno's policy webhook)",
        std::time::Duration::from_secs(60),
        || cluster.run(&["apply", "-f", cluster_dir.to_str().unwrap()], None).0,
    );
    cluster.wait_for_kyverno_policies();
    cluster.wait_for_image_validating_policies();

    // ---- The matrix. ----
    let reg = |repo: &str, tag: &str| w.image(repo, tag);
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
        let kyverno = create_case(&cluster, &namespace(case.variant, "kyverno"), &case.resource);
        let sigstack = create_case(&cluster, &namespace(case.variant, "sigstack"), &case.resource);
        rows.push(Row { case, kyverno, sigstack });
    }

    let ivpol_cases = ivpol_cases(w, &digest);
    for case in ivpol_cases {
        let kyverno = create_case(&cluster, &namespace(case.variant, "kyverno"), &case.resource);
        let sigstack = create_case(&cluster, &namespace(case.variant, "sigstack"), &case.resource);
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
        if let Some(bug) = case.kyverno_bug {
            // Kyverno's known wrong answer, asserted so a fixed Kyverno is noticed; sigstack's is
            // the right one.
            if kyverno.allowed == case.admitted {
                problems.push(format!("{name}: Kyverno no longer shows its bug ({bug}): update the case and README"));
            }
            if sigstack.allowed != case.admitted {
                problems.push(format!("{name}: sigstack {}: {}", verdict(sigstack), sigstack.reason()));
            }
            continue;
        }
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
        let message = if let Some(bug) = row.case.kyverno_bug {
            format!("**Kyverno bug**: {bug}")
        } else if row.kyverno.allowed {
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

/// Creates the case's resource; an `ephemeral:POD:IMAGE` case first creates the Pod (which must be
/// admitted), then adds an ephemeral container running IMAGE through `pods/ephemeralcontainers`, as
/// `kubectl debug` does.
fn create_case(cluster: &Cluster, namespace: &str, resource: &str) -> Admission {
    let Some(rest) = resource.strip_prefix("ephemeral:") else {
        return cluster.create(namespace, resource);
    };
    let (pod_yaml, image) = rest.split_once("\n---image:").expect("ephemeral:POD\n---image:IMAGE");
    let created = cluster.create(namespace, pod_yaml);
    if !created.allowed {
        return created;
    }
    let name = created.object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let (allowed, _, stderr) = cluster.run(
        &["debug", "-n", namespace, &name, "--image", image.trim(), "--container", "debugger", "--profile", "general"],
        None,
    );
    let object = if allowed {
        serde_json::from_str(&cluster.run(&["get", "pod", "-n", namespace, &name, "-o", "json"], None).1)
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    Admission { allowed, object, message: stderr.trim().to_string() }
}

/// Trust material the variants name.
struct Material {
    /// cosign's key pair's public key (acme/keyed).
    public_key: String,
    /// cosign v2's signing certificate of acme/cosign2.
    leaf: String,
    /// This stack's and another stack's Fulcio chains.
    ca_chain: String,
    other_ca_chain: String,
    /// The trusted root of the stack that signed acme/tiles (Rekor v2, a TSA).
    tiles_root: String,
}

/// The shipped ImageValidatingPolicy (rendered for the stack) and its variants: another way to
/// select images, key and certificate attestors, each validation action, `required` and the
/// digest settings, the registry check removed, a CEL subject, ephemeral containers, a referrer
/// attestation, `keyless.roots` and another trusted root.
fn ivpol_variants(source: &Value, registry: &str, material: &Material) -> Vec<(&'static str, Value)> {
    let named = |name: &str, mut policy: Value| {
        policy["metadata"]["name"] = json!(if name == "iv" { POLICY.to_string() } else { format!("{POLICY}-{name}") });
        policy
    };
    let edit = |name: &'static str, change: &dyn Fn(&mut Value)| {
        let mut policy = source.clone();
        change(&mut policy);
        (name, named(name, policy))
    };
    let cosign = source["spec"]["attestors"][0]["cosign"].clone();
    // The attestor without its keyless identities but `verifier`, and only the registry and
    // signature validations (the attestations were made with other keys).
    let signatures_by = |p: &mut Value, verifier: (&str, Value)| {
        let mut attestor = cosign.clone();
        attestor.as_object_mut().unwrap().remove("keyless");
        attestor[verifier.0] = verifier.1;
        p["spec"]["attestors"] = json!([{"name": "github", "cosign": attestor}]);
        let validations = p["spec"]["validations"].as_array().unwrap()[..2].to_vec();
        p["spec"]["validations"] = json!(validations);
    };
    vec![
        edit("iv", &|_| {}),
        edit("iv-expr", &|p| {
            p["spec"]["matchImageReferences"] = json!([{"expression": format!("ref.startsWith('{registry}/acme/')")}]);
        }),
        edit("iv-key", &|p| signatures_by(p, ("key", json!({"data": material.public_key})))),
        edit("iv-cert", &|p| signatures_by(p, ("certificate", json!({"cert": {"value": material.leaf}})))),
        edit("iv-cert-chain", &|p| {
            signatures_by(p, ("certificate", json!({"certChain": {"value": material.ca_chain}})))
        }),
        edit("iv-cert-chain-other", &|p| {
            signatures_by(p, ("certificate", json!({"certChain": {"value": material.other_ca_chain}})))
        }),
        edit("iv-cert-chained", &|p| {
            let both = json!({"cert": {"value": material.leaf}, "certChain": {"value": material.ca_chain}});
            signatures_by(p, ("certificate", both))
        }),
        edit("iv-referrer", &|p| {
            p["spec"]["attestations"] = json!([{"name": "sbom", "referrer": {"type": "application/spdx+json"}}]);
        }),
        edit("iv-roots", &|p| {
            p["spec"]["attestors"][0]["cosign"]["keyless"]["roots"] = json!(material.other_ca_chain);
        }),
        edit("iv-tiles", &|p| {
            p["spec"]["attestors"][0]["cosign"]["trustedRoot"] = json!({"value": material.tiles_root});
        }),
        edit("iv-audit", &|p| p["spec"]["validationActions"] = json!(["Audit"])),
        edit("iv-warn", &|p| p["spec"]["validationActions"] = json!(["Warn"])),
        edit("iv-noverify", &|p| {
            let first = p["spec"]["validations"][0].clone();
            p["spec"]["validations"] = json!([first]);
        }),
        edit("iv-optional", &|p| {
            let first = p["spec"]["validations"][0].clone();
            p["spec"]["validations"] = json!([first]);
            p["spec"]["validationConfigurations"] = json!({"required": false});
        }),
        edit("iv-nodigest", &|p| {
            p["spec"]["validationConfigurations"] = json!({"mutateDigest": false, "verifyDigest": false});
        }),
        edit("iv-unmatched", &|p| {
            let rest = p["spec"]["validations"].as_array().unwrap()[1..].to_vec();
            p["spec"]["validations"] = json!(rest);
        }),
        edit("iv-subject-expr", &|p| {
            p["spec"]["attestors"][0]["cosign"]["keyless"]["identities"] = json!([{
                "issuer": "https://token.actions.githubusercontent.com",
                "subjectExpression": "'^https://github.com/' + 'acme' + '/'"
            }]);
        }),
        edit("iv-eph", &|p| {
            p["spec"]["matchConstraints"]["resourceRules"][0]["resources"] =
                json!(["pods", "pods/ephemeralcontainers"]);
        }),
    ]
}

/// The ImageValidatingPolicy cases, by variant.
fn ivpol_cases(w: &World, digest: &str) -> Vec<Case> {
    let reg = |repo: &str, tag: &str| w.image(repo, tag);
    let with_init = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: init}}\nspec:\n  initContainers: [{{name: i, image: \"{}\"}}]\n  containers: [{{name: c, image: \"{}\"}}]\n",
        reg("acme/unsigned", "v1"),
        reg("acme/app", "v1")
    );
    let ephemeral = |pod_name: &str, image: String| {
        format!("ephemeral:{}\n---image:{image}", pod(pod_name, &reg("acme/app", "v1")))
    };
    vec![
        case("iv-signed-and-attested", "iv", pod("signed", &reg("acme/app", "v1")), true, ""),
        case("iv-nginx-latest", "iv", pod("nginx", "nginx:latest"), false, "images must come from"),
        case("iv-unsigned", "iv", pod("unsigned", &reg("acme/unsigned", "v1")), false, "must be signed"),
        case("iv-no-sbom", "iv", pod("nosbom", &reg("acme/nosbom", "v1")), false, "SBOM attestation"),
        case("iv-other-org-workflow", "iv", pod("forked", &reg("acme/forked", "v1")), false, "must be signed"),
        case("iv-other-issuer", "iv", pod("person", &reg("acme/person", "v1")), false, "must be signed"),
        case("iv-sbom-not-spdx-2", "iv", pod("spdx3", &reg("acme/spdx3", "v1")), false, "SPDX 2.x"),
        case("iv-extra-attestation-by-other-identity", "iv", pod("twice", &reg("acme/twice", "v1")), true, ""),
        case("iv-tag-moved", "iv", pod("moved", &reg("acme/moved", "v1")), false, "must be signed"),
        case("iv-pinned-digest", "iv", pod("pinned", &format!("{}/acme/app@{digest}", w.registry)), true, ""),
        case("iv-another-stacks-ca", "iv", pod("foreign", &reg("acme/foreign", "v1")), false, "must be signed"),
        case("iv-deployment-signed", "iv", deployment("web", &reg("acme/app", "v1")), true, ""),
        case(
            "iv-deployment-unsigned",
            "iv",
            deployment("web-unsigned", &reg("acme/unsigned", "v1")),
            false,
            "must be signed",
        ),
        case("iv-cronjob-signed", "iv", cronjob("nightly", &reg("acme/app", "v1")), true, ""),
        case("iv-cronjob-nginx", "iv", cronjob("nightly-nginx", "nginx:latest"), false, "images must come from"),
        case("iv-cosign-v2-signed", "iv", pod("cosign2", &reg("acme/cosign2", "v1")), true, ""),
        case("iv-cosign-v3-default-bundle", "iv", pod("cosign3", &reg("acme/cosign3", "v1")), true, ""),
        case("iv-sigstack-format-bundle", "iv", pod("bundled", &reg("acme/bundled", "v1")), true, ""),
        case("iv-unsigned-init-container", "iv", with_init, false, "must be signed"),
        case("iv-expression-reference-signed", "iv-expr", pod("signed", &reg("acme/app", "v1")), true, ""),
        case(
            "iv-expression-reference-unsigned",
            "iv-expr",
            pod("unsigned", &reg("acme/unsigned", "v1")),
            false,
            "must be signed",
        ),
        case("iv-key-signed", "iv-key", pod("keyed", &reg("acme/keyed", "v1")), true, ""),
        case("iv-key-policy-keyless-image", "iv-key", pod("signed", &reg("acme/app", "v1")), false, "must be signed"),
        case("iv-cert-its-signature", "iv-cert", pod("cosign2", &reg("acme/cosign2", "v1")), true, ""),
        case("iv-cert-another-signature", "iv-cert", pod("signed", &reg("acme/app", "v1")), false, "must be signed"),
        case("iv-cert-bundle", "iv-cert", pod("cosign3", &reg("acme/cosign3", "v1")), false, "must be signed"),
        case("iv-cert-chained-signature", "iv-cert-chained", pod("cosign2", &reg("acme/cosign2", "v1")), true, ""),
        case("iv-cert-chain-any-identity", "iv-cert-chain", pod("forked", &reg("acme/forked", "v1")), true, ""),
        // A bundle needs an identity to verify against (sigstore-go), and a chain names none.
        case(
            "iv-cert-chain-bundle",
            "iv-cert-chain",
            pod("cosign3", &reg("acme/cosign3", "v1")),
            false,
            "must be signed",
        ),
        case(
            "iv-cert-chain-another-stacks-ca",
            "iv-cert-chain",
            pod("foreign", &reg("acme/foreign", "v1")),
            false,
            "must be signed",
        ),
        case(
            "iv-referrer-attestation",
            "iv-referrer",
            pod("signed", &reg("acme/app", "v1")),
            false,
            "SBOM attestation",
        ),
        Case {
            kyverno_bug: Some(
                "Kyverno 1.19.1 passes `keyless.roots` to cosign as RootCerts, which the trusted material it always builds overrides, so a certificate of any CA in the TUF trusted root is admitted; sigstack trusts exactly the roots, as the CRD documents",
            ),
            ..case("iv-roots-of-another-ca", "iv-roots", pod("signed", &reg("acme/app", "v1")), false, "must be signed")
        },
        Case {
            kyverno_bug: Some(
                "Kyverno 1.19.1 reads `certificate.certChain` only when the log is ignored (for the same reason as `keyless.roots`), so any CA of the TUF trusted root is accepted; sigstack trusts exactly the chain",
            ),
            ..case(
                "iv-cert-chain-of-another-ca",
                "iv-cert-chain-other",
                pod("cosign2", &reg("acme/cosign2", "v1")),
                false,
                "must be signed",
            )
        },
        case("iv-rekor-v2-tsa-bundle", "iv-tiles", pod("tiles", &reg("acme/tiles", "v1")), true, ""),
        case("iv-rekor-v2-root-v1-image", "iv-tiles", pod("signed", &reg("acme/app", "v1")), false, "must be signed"),
        case("iv-audit-unsigned", "iv-audit", pod("unsigned", &reg("acme/unsigned", "v1")), true, ""),
        case("iv-warn-unsigned", "iv-warn", pod("unsigned", &reg("acme/unsigned", "v1")), true, ""),
        case(
            "iv-required-but-never-verified",
            "iv-noverify",
            pod("signed", &reg("acme/app", "v1")),
            false,
            "is not verified",
        ),
        case("iv-required-false", "iv-optional", pod("signed", &reg("acme/app", "v1")), true, ""),
        case("iv-digest-checks-off", "iv-nodigest", pod("signed", &reg("acme/app", "v1")), true, ""),
        case("iv-unmatched-image-admitted", "iv-unmatched", pod("nginx", "nginx:latest"), true, ""),
        case("iv-subject-expression-signed", "iv-subject-expr", pod("signed", &reg("acme/app", "v1")), true, ""),
        Case {
            kyverno_bug: Some(
                "Kyverno 1.19.1 accepts `subjectExpression` in its CRD but never reads it (no code in the module does), so an identity of issuer + subjectExpression admits any subject of that issuer; sigstack matches the expression's value as a regexp, as the CRD documents",
            ),
            ..case(
                "iv-subject-expression-other-org",
                "iv-subject-expr",
                pod("forked", &reg("acme/forked", "v1")),
                false,
                "must be signed",
            )
        },
        case(
            "iv-ephemeral-unsigned",
            "iv-eph",
            ephemeral("debugged", reg("acme/unsigned", "v1")),
            false,
            "must be signed",
        ),
        case("iv-ephemeral-signed", "iv-eph", ephemeral("debugged-signed", reg("acme/app", "v1")), true, ""),
    ]
}
