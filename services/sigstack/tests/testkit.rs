//! The test-kit example of docs/testing.md, as written there, plus what the kit promises: stacks side by side
//! share nothing, and a dropped stack leaves nothing behind.

use sigstack::testkit::Stack;

#[tokio::test]
async fn signed_images_verify() -> anyhow::Result<()> {
    let stack = Stack::builder().registry(true).start().await?;
    let digest = stack.build_image("acme/app", "v1", "1.0.0").await?;
    stack.sign("acme/app:v1", "acme/app").await?;
    stack.attest_sbom("acme/app:v1", "acme/app").await?;
    let identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let verified =
        stack.verify(&format!("acme/app@{digest}"), identity, "https://token.actions.githubusercontent.com").await?;
    assert_eq!(verified[0].digest, digest);
    // Another workflow's identity does not verify.
    let other = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main";
    assert!(stack.verify("acme/app:v1", other, "https://token.actions.githubusercontent.com").await.is_err());
    Ok(())
}

/// A v2-only stack: the kit signs and attests Sigstore bundles (a v2 entry and a signed timestamp
/// each) and verifies them through the same calls.
#[tokio::test]
async fn bundles_on_a_rekor_v2_stack_verify() -> anyhow::Result<()> {
    let stack = Stack::builder().registry(true).rekor(sigstack::assemble::RekorVersions::V2).start().await?;
    let digest = stack.build_image("acme/app", "v1", "1.0.0").await?;
    stack.sign("acme/app:v1", "acme/app").await?;
    stack.attest_sbom("acme/app:v1", "acme/app").await?;
    let identity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let issuer = "https://token.actions.githubusercontent.com";
    let signed = stack.verify(&format!("acme/app@{digest}"), identity, issuer).await?;
    assert_eq!(signed[0].digest, digest);
    assert_eq!(signed[0].integrated_time, None, "a v2 entry carries no time of its own");
    let attested = stack.verify_attestation("acme/app:v1", "https://spdx.dev/Document", identity, issuer).await?;
    assert_eq!(attested[0].predicate_type(), Some("https://spdx.dev/Document"));
    Ok(())
}

#[tokio::test]
async fn stacks_side_by_side_share_nothing_and_leave_nothing() -> anyhow::Result<()> {
    let (a, b) = (Stack::builder().start().await?, Stack::builder().start().await?);
    assert_ne!(a.state_dir(), b.state_dir());
    assert_ne!(a.url("rekor")?, b.url("rekor")?);
    let key = |s: &Stack| std::fs::read(s.trust_dir().join("rekor.pub")).unwrap();
    assert_ne!(key(&a), key(&b), "each stack has its own keys");
    let (dir, url) = (a.state_dir().to_path_buf(), a.url("rekor")?.to_string());
    drop(a);
    assert!(!dir.exists(), "a dropped stack's temporary directory is removed");
    assert!(reqwest::get(format!("{url}/api/v1/log")).await.is_err(), "a dropped stack stops serving");
    b.stop().await
}
