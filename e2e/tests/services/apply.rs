//! `sigstack apply` names the images of every admitted kind the way the admission crate reads
//! them: Pods, Pod controllers, and CronJobs (whose Pod template lies one level deeper).

use sigstack_e2e::{run_ok, sigstack_bin};

#[test]
fn admitted_cronjobs_and_deployments_print_their_images() {
    let dir = tempfile::tempdir().unwrap();
    // A policy that judges ConfigMaps only: every workload below is admitted untouched.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: configmaps-only}\nspec:\n  \
         validationFailureAction: Enforce\n  rules:\n    - name: labelled\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      \
         validate: {message: labelled, pattern: {metadata: {labels: {team: '?*'}}}}\n",
    )
    .unwrap();
    let resources = dir.path().join("resources.yaml");
    std::fs::write(
        &resources,
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly, namespace: default}\nspec:\n  schedule: '0 * * * *'\n  \
         jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          \
         containers: [{name: c, image: 'registry.example/acme/job:v1'}]\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  selector: {matchLabels: {app: web}}\n  \
         template:\n    metadata: {labels: {app: web}}\n    spec:\n      initContainers: [{name: i, image: 'registry.example/acme/init:v1'}]\n      \
         containers: [{name: c, image: 'registry.example/acme/web:v1'}]\n",
    )
    .unwrap();
    let output = run_ok(
        std::process::Command::new(sigstack_bin())
            .arg("apply")
            .arg("--policy")
            .arg(&policy)
            .arg("--resource")
            .arg(&resources),
    );
    assert!(output.contains("CronJob/default/nightly: ADMITTED, image registry.example/acme/job:v1"), "{output}");
    assert!(
        output.contains(
            "Deployment/default/web: ADMITTED, image registry.example/acme/init:v1, registry.example/acme/web:v1"
        ),
        "{output}"
    );
}
