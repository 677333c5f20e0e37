//! The admission crate's image verifier, done with the pipeline's verification (the same code as
//! `sigstack verify`): how a Kyverno attestor becomes trust and checks, how registries are reached
//! (go-containerregistry's loopback rule), and how registry failures are worded as Kyverno's.

use sigstack_admission::{ImageInfo, ImageVerifier, SignatureCheck, VerifiedSignature, VerifyFailure};
use sigstack_pipeline::{Checks, IdentityPolicy, Registry, Trust, VerifyError};

/// The scheme go-containerregistry (Kyverno's registry client) uses for `registry` (`host[:port]`):
/// plain HTTP for loopback names, HTTPS for everything else.
pub fn registry_scheme(registry: &str) -> &'static str {
    let host = registry.split(':').next().unwrap_or("");
    if host == "localhost" || host == "127.0.0.1" { "http" } else { "https" }
}

/// Verification through the registry with the same code as `sigstack verify`.
pub struct PipelineVerifier {
    /// Its own runtime for registry I/O (the engine is synchronous); `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    registry_timeout: std::time::Duration,
    /// The trusted root of `type: SigstoreBundle`.
    bundle_trust: Option<Trust>,
}

impl PipelineVerifier {
    /// A verifier that waits `registry_timeout_seconds` for a registry's answers and verifies
    /// Sigstore bundles with `bundle_trust`.
    pub fn new(registry_timeout_seconds: u64, bundle_trust: Option<Trust>) -> anyhow::Result<Self> {
        Ok(PipelineVerifier {
            runtime: Some(tokio::runtime::Builder::new_current_thread().enable_all().build()?),
            registry_timeout: std::time::Duration::from_secs(registry_timeout_seconds.max(1)),
            bundle_trust,
        })
    }

    /// Kyverno's `SigstoreBundle` path: every bundle attached to the image, verified with the
    /// trusted root (transparency log unless ignoreTlog; sigstore-go checks no SCT here); the ones
    /// that verify, of any predicate type. None verifying is an empty answer, not an error: Kyverno
    /// then says "no matching signatures found".
    fn bundles(&self, image: &ImageInfo, check: &SignatureCheck<'_>) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        let trust = self.bundle_trust.as_ref().ok_or_else(|| {
            VerifyFailure(
                "type SigstoreBundle needs a trusted root: give --trusted-root (or SIGSTACK_TRUSTED_ROOT, set by `sigstack env`); sigstack never fetches the public-good one".into(),
            )
        })?;
        let registry = self.registry(image)?;
        let reference = format!("{}/{}@{}", image.registry, image.path, image.digest.clone().unwrap_or_default());
        let checks = Checks { tlog: !check.rekor.is_some_and(|r| r.ignore_tlog), sct: false, public_key: None };
        let verified = self.runtime().block_on(sigstack_pipeline::verify_bundles(
            &registry,
            trust,
            &reference,
            &IdentityPolicy::default(),
            &checks,
        ));
        Self::none_is_empty(verified)
    }

    fn registry(&self, image: &ImageInfo) -> Result<Registry, VerifyFailure> {
        Registry::with_timeout(
            &format!("{}://{}", registry_scheme(&image.registry), image.registry),
            self.registry_timeout,
        )
        .map_err(|e| VerifyFailure(e.to_string()))
    }

    /// The trust an attestor entry names (every certificate of its `roots` an anchor, as in the
    /// pool Kyverno hands cosign), and which checks run.
    fn trust(check: &SignatureCheck<'_>) -> Result<(Trust, Checks), VerifyFailure> {
        let missing = |what: &str| {
            VerifyFailure(format!(
                "{what} is not set: sigstack verifies only with inline trust material and never fetches the public-good Sigstore keys"
            ))
        };
        let der = |text: &str, what: &str| -> Result<Vec<Vec<u8>>, VerifyFailure> {
            pem::parse_many(text)
                .map(|blocks| blocks.into_iter().map(|b| b.into_contents()).collect())
                .map_err(|e| VerifyFailure(format!("{what}: {e}")))
        };
        let first = |text: &str, what: &str| der(text, what)?.into_iter().next().ok_or_else(|| missing(what));
        let tlog = !check.rekor.is_some_and(|r| r.ignore_tlog);
        let sct = !check.ctlog.is_some_and(|c| c.ignore_sct);
        // Without a tlog check the log key is never read.
        let rekor_key = match check.rekor.and_then(|r| r.pubkey.as_deref()) {
            Some(pem) if tlog => Some(first(pem, "rekor.pubkey")?),
            None if tlog => return Err(missing("rekor.pubkey (or rekor.ignoreTlog)")),
            _ => None,
        };
        if let Some(public_key) = check.public_key {
            let key = first(public_key, "keys.publicKeys")?;
            let checks = Checks { tlog, sct: false, public_key: Some(key) };
            return Ok((Trust::from_keys(&[], rekor_key.as_deref(), None), checks));
        }
        let ctlog_key = match check.ctlog.and_then(|c| c.pubkey.as_deref()) {
            Some(pem) if sct => Some(first(pem, "ctlog.pubkey")?),
            None if sct => return Err(missing("keyless.ctlog.pubkey (or ctlog.ignoreSCT)")),
            _ => None,
        };
        let roots = check.roots.ok_or_else(|| missing("keyless.roots"))?;
        let roots = der(roots, "roots")?;
        let trust = Trust::from_keys(&roots, rekor_key.as_deref(), ctlog_key.as_deref());
        Ok((trust, Checks { tlog, sct, public_key: None }))
    }

    /// A verification failure in the words Kyverno's messages carry. A refused connection reads
    /// as go-containerregistry's ping, which with `--allowInsecureRegistry` tries HTTPS then HTTP.
    fn failure(error: VerifyError) -> VerifyFailure {
        match error {
            VerifyError::Registry { host, refused: true, .. } => VerifyFailure(format!(
                "Get \"https://{host}/v2/\": dial tcp {host}: connect: connection refused; Get \"http://{host}/v2/\": dial tcp {host}: connect: connection refused"
            )),
            other => VerifyFailure(other.to_string()),
        }
    }

    /// The trust of an ImageValidatingPolicy's cosign attestor, as Kyverno's `checkOptions`
    /// builds it: the attestor's `trustedRoot`, else the trusted root this verifier was given
    /// (standing in for Kyverno's TUF, which sigstack never fetches), with `keyless.roots`,
    /// `ctlog.rekorPubKey` and `ctlog.ctLogPubKey` replacing the CAs, logs and CT logs, and
    /// `ctlog.tsaCertChain` adding a timestamp authority; a `certificate.cert` stands for its key.
    fn attestor_trust(&self, check: &SignatureCheck<'_>) -> Result<(Trust, Checks), VerifyFailure> {
        let der = |text: &str, what: &str| -> Result<Vec<Vec<u8>>, VerifyFailure> {
            pem::parse_many(text)
                .map(|blocks| blocks.into_iter().map(|b| b.into_contents()).collect())
                .map_err(|e| VerifyFailure(format!("{what}: {e}")))
        };
        let mut trust = match check.trusted_root {
            Some(json) => {
                let root: sigstack_trust::TrustedRoot = serde_json::from_str(json)
                    .map_err(|e| VerifyFailure(format!("cosign.trustedRoot is not a sigstore trusted root: {e}")))?;
                Trust::from_trusted_root(&root).map_err(|e| VerifyFailure(format!("cosign.trustedRoot: {e}")))?
            }
            None => self.bundle_trust.clone().unwrap_or_default(),
        };
        if let Some(roots) = check.roots {
            // Kyverno 1.19.1 sets them as cosign's RootCerts, which its trusted material always
            // overrides, so it admits certificates of other CAs (a Kyverno bug, docs/admission.md);
            // sigstack trusts exactly the roots, as the CRD documents.
            trust.certificate_authorities =
                Trust::from_keys(&der(roots, "keyless.roots")?, None, None).certificate_authorities;
        }
        let tlog = !check.rekor.is_some_and(|r| r.ignore_tlog);
        let sct = !check.ctlog.is_some_and(|c| c.ignore_sct);
        if let Some(pem) = check.rekor.and_then(|r| r.pubkey.as_deref()) {
            let key = der(pem, "ctlog.rekorPubKey")?.into_iter().next();
            trust.tlogs = Trust::from_keys(&[], key.as_deref(), None).tlogs;
        }
        if let Some(pem) = check.ctlog.and_then(|c| c.pubkey.as_deref()) {
            let key = der(pem, "ctlog.ctLogPubKey")?.into_iter().next();
            trust.ctlogs = Trust::from_keys(&[], None, key.as_deref()).ctlogs;
        }
        if let Some(chain) = check.tsa_chain {
            let chain = der(chain, "ctlog.tsaCertChain")?;
            trust.timestamp_authorities.push(sigstack_verify::TimestampAuthority { chain, valid: Default::default() });
        }
        let first = |pem: &str, what: &str| -> Result<Vec<u8>, VerifyFailure> {
            der(pem, what)?.into_iter().next().ok_or_else(|| VerifyFailure(format!("{what} holds no PEM block")))
        };
        let mut public_key = match check.public_key {
            Some(pem) => Some(first(pem, "cosign.key.data")?),
            None => None,
        };
        if let Some(chain) = check.certificate_chain {
            // The chain's certificates are the CAs, as the CRD documents. Kyverno 1.19.1 uses them
            // only when the log is ignored: otherwise cosign prefers the trusted root's CAs
            // (TrustedMaterial) to RootCerts, as for keyless.roots (a Kyverno bug, docs/admission.md).
            let chain = der(chain, "cosign.certificate.certChain")?;
            trust.certificate_authorities = Trust::from_keys(&chain, None, None).certificate_authorities;
        }
        if let Some(pem) = check.certificate {
            let leaf = first(pem, "cosign.certificate.cert")?;
            let refuse = |e: sigstack_verify::VerificationError| VerifyFailure(format!("cosign.certificate.cert: {e}"));
            if check.certificate_chain.is_some() {
                // cosign's ValidateAndUnpackCertWithChain: the certificate itself chains to a
                // trusted CA at its notBefore and carries an SCT.
                let at = sigstack_verify::CertificateIdentity::of(&leaf).map_err(refuse)?.validity.0;
                let checked = sigstack_verify::verify_certificate(&trust, &leaf, &[], at).map_err(refuse)?;
                if sct {
                    sigstack_verify::sct::verify_embedded_scts(&trust, &leaf, &checked.issuer_spki).map_err(refuse)?;
                }
            }
            let key = sigstack_verify::CertificateIdentity::key_of(&leaf).map_err(refuse)?;
            public_key = Some(key.spki_der().to_vec());
        }
        if public_key.is_none() && trust.certificate_authorities.is_empty() {
            return Err(VerifyFailure(
                "no certificate authority to verify with: give the attestor trustedRoot or keyless.roots, or run with --trusted-root (SIGSTACK_TRUSTED_ROOT), which stands in for Kyverno's TUF; sigstack never fetches the public-good one".into(),
            ));
        }
        let checks = Checks { tlog, sct: sct && public_key.is_none(), public_key };
        Ok((trust, checks))
    }

    /// Kyverno's ImageValidatingPolicy cosign verifier: the image's Sigstore bundles when it has
    /// any (then only those), else cosign's `.sig`/`.att` tags.
    fn detect(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
        attestations: bool,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        let registry = self.registry(image)?;
        let reference = format!("{}/{}@{}", image.registry, image.path, image.digest.clone().unwrap_or_default());
        let (trust, checks) = self.attestor_trust(check)?;
        let policy = IdentityPolicy::default();
        let bundles =
            self.runtime().block_on(sigstack_pipeline::verify_bundles(&registry, &trust, &reference, &policy, &checks));
        match bundles {
            // sigstore-go refuses to verify a certificate without an identity policy.
            Ok(_) if checks.public_key.is_none() && !check.has_identities => return Ok(Vec::new()),
            Ok(verified) => return Ok(verified.into_iter().map(verified_signature).collect()),
            Err(VerifyError::NoMatchingSignatures(_)) => return Ok(Vec::new()),
            Err(VerifyError::NoSignatures) => {}
            Err(e) => return Err(Self::failure(e)),
        }
        let verified = self.runtime().block_on(async {
            if attestations {
                sigstack_pipeline::verify_attestations(&registry, &trust, &reference, &policy, &checks).await
            } else {
                sigstack_pipeline::verify_signature(&registry, &trust, &reference, &policy, &checks).await
            }
        });
        Self::none_is_empty(verified)
    }

    fn run(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
        attestations: bool,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        if check.sigstore_bundle {
            return self.bundles(image, check);
        }
        if check.detect_bundles {
            return self.detect(image, check, attestations);
        }
        let registry = self.registry(image)?;
        let reference = format!("{}/{}@{}", image.registry, image.path, image.digest.clone().unwrap_or_default());
        let (trust, checks) = Self::trust(check)?;
        let policy = IdentityPolicy::default();
        let verified = self
            .runtime()
            .block_on(async {
                if attestations {
                    sigstack_pipeline::verify_attestations(&registry, &trust, &reference, &policy, &checks).await
                } else {
                    sigstack_pipeline::verify_signature(&registry, &trust, &reference, &policy, &checks).await
                }
            })
            .map_err(Self::failure)?;
        Ok(verified.into_iter().map(verified_signature).collect())
    }
}

/// What the pipeline's verifier found, as the admission engine reads it.
fn verified_signature(v: sigstack_pipeline::Verified) -> VerifiedSignature {
    VerifiedSignature { sans: v.sans, issuer: v.issuer, extensions: v.extensions, statement: v.statement }
}

impl PipelineVerifier {
    /// What verified; nothing verifying is an empty answer, not an error (Kyverno then words the
    /// failure itself: "no matching signatures found", a count of 0).
    fn none_is_empty(
        verified: Result<Vec<sigstack_pipeline::Verified>, VerifyError>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        match verified {
            Ok(verified) => Ok(verified.into_iter().map(verified_signature).collect()),
            Err(
                VerifyError::NoSignatures
                | VerifyError::NoMatchingSignatures(_)
                | VerifyError::NoMatchingAttestations(_),
            ) => Ok(Vec::new()),
            Err(e) => Err(Self::failure(e)),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the verifier")
    }
}

/// The webhook drops its verifier inside its async server when it stops; a runtime dropped there
/// panics ("Cannot drop a runtime in a context where blocking is not allowed"), so it is shut down
/// in the background instead.
impl Drop for PipelineVerifier {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ImageVerifier for PipelineVerifier {
    fn resolve(&self, image: &ImageInfo) -> Result<String, VerifyFailure> {
        let registry = self.registry(image)?;
        let reference =
            format!("{}/{}:{}", image.registry, image.path, image.tag.clone().unwrap_or_else(|| "latest".into()));
        self.runtime()
            .block_on(async {
                let parsed = registry.reference(&reference)?;
                registry.resolve(&parsed).await
            })
            .map_err(|e| Self::failure(VerifyError::registry(e, &registry.host)))
    }

    fn signatures(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        self.run(image, check, false)
    }

    fn attestations(
        &self,
        image: &ImageInfo,
        check: &SignatureCheck<'_>,
    ) -> Result<Vec<VerifiedSignature>, VerifyFailure> {
        self.run(image, check, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http_as_in_go_containerregistry() {
        assert_eq!(registry_scheme("127.0.0.1:5000"), "http");
        assert_eq!(registry_scheme("localhost:5001"), "http");
        assert_eq!(registry_scheme("localhost"), "http");
        assert_eq!(registry_scheme("ghcr.io"), "https");
        assert_eq!(registry_scheme("registry.example:5000"), "https");
    }
}
