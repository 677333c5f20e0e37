//! CEL for ImageValidatingPolicies: cel-rust (the `cel` crate) evaluates the expressions;
//! Kyverno's image-verification functions (`pkg/cel/libs/imageverify/impl.go`) are registered on
//! top and verify through the admission crate's [`ImageVerifier`], as the ClusterPolicy engine does.
//!
//! - `verifyImageSignatures(image, attestors) -> int`: how many attestors verified a signature;
//!   0 for an image no `matchImageReferences` selects (and nothing recorded).
//! - `verifyAttestationSignatures(image, attestation, attestors) -> int`: the same for an in-toto
//!   attestation of the attestation's predicate type; the verified predicates are kept for
//! - `extractPayload(image, attestation)`: the in-toto statement (cosign's
//!   `AttestationToPayloadJSON`; the predicate is `.predicate`), only after a successful
//!   verification of that image and attestation in the same evaluation.
//! - `getImageData(image)`: registry, repository, tag and digest of the image.
//!
//! Every attempt is recorded per image (monotonic: once verified, verified) for `required`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cel::objects::Value as CelValue;
use cel::{Context, ExecutionError, Program};
use serde_json::Value;

use super::spec::{Attestation, Attestor, Identity, MatchImageReference};
use crate::image::ImageInfo;
use crate::policy::{CtLogSettings, RekorSettings};
use crate::verify_images::{ImageVerifier, SignatureCheck, VerifiedSignature};

/// A JSON value as CEL sees it.
pub(crate) fn to_cel(value: &Value) -> CelValue {
    cel::to_value(value).unwrap_or(CelValue::Null)
}

/// A CEL value as JSON (maps with string keys, lists, scalars).
pub(crate) fn to_json(value: &CelValue) -> Result<Value, String> {
    value.json().map_err(|e| format!("the value cannot be read as JSON: {e}"))
}

/// Compiles `source`, naming the field in the error.
pub(crate) fn compile(field: &str, source: &str) -> Result<Program, String> {
    Program::compile(source).map_err(|e| format!("{field}: cannot compile CEL {source:?}: {e}"))
}

/// Runs `program` in `context`; a runtime error reads as cel-go words it (Kyverno's messages
/// carry it), so `field` is only for errors cel-go would have caught when compiling.
pub(crate) fn run(field: &str, program: &Program, context: &Context<'_, '_>) -> Result<CelValue, String> {
    program.execute(context).map_err(|e| go_words(field, e))
}

/// cel-go's wording of the common runtime errors (`no such key: x`, `no such overload`), and a
/// Kyverno function's own message for its errors.
fn go_words(field: &str, error: ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => {
            format!("{field}: undeclared reference to '{name}' (in container '')")
        }
        ExecutionError::NoSuchOverload(_) => "no such overload".into(),
        ExecutionError::FunctionError { message, .. } => message,
        other => format!("{field}: {other}"),
    }
}

/// Image references: gobwas/glob globs (whole string, `*` crosses `/`) or CEL over `ref`.
pub(crate) struct ImageMatcher {
    rules: Vec<ImageRule>,
}

enum ImageRule {
    Glob(globset::GlobMatcher),
    Expression(Program),
}

impl ImageMatcher {
    /// Compiles the policy's `matchImageReferences`.
    pub(crate) fn new(references: &[MatchImageReference]) -> Result<ImageMatcher, String> {
        let mut rules = Vec::new();
        for (i, reference) in references.iter().enumerate() {
            let field = format!("spec.matchImageReferences[{i}]");
            if let Some(glob) = &reference.glob {
                let glob = globset::GlobBuilder::new(glob)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("{field}.glob: {e}"))?;
                rules.push(ImageRule::Glob(glob.compile_matcher()));
            } else if let Some(expression) = &reference.expression {
                rules.push(ImageRule::Expression(compile(&format!("{field}.expression"), expression)?));
            }
        }
        Ok(ImageMatcher { rules })
    }

    /// Kyverno's `matching.MatchImage`: true for every image when there are no rules.
    pub(crate) fn matches(&self, image: &str) -> Result<bool, String> {
        if self.rules.is_empty() {
            return Ok(true);
        }
        for rule in &self.rules {
            let matched = match rule {
                ImageRule::Glob(glob) => glob.is_match(image),
                ImageRule::Expression(program) => {
                    let mut context = Context::default();
                    context.add_variable_from_value("ref", image.to_string());
                    match program.execute(&context) {
                        Ok(CelValue::Bool(b)) => b,
                        Ok(other) => {
                            return Err(format!("matchImageReferences expression returned {other:?}, not a bool"));
                        }
                        Err(e) => return Err(format!("matchImageReferences expression: {e}")),
                    }
                }
            };
            if matched {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Per request: the verifier and the verification outcomes every policy shares (Kyverno's
/// `ImageVerificationResults`), so a catch-all `required` policy sees another policy's checks.
pub(crate) struct RequestState {
    pub(crate) verifier: Arc<dyn ImageVerifier + Send + Sync>,
    /// image → verified (true once any real check passed).
    pub(crate) verifications: Mutex<BTreeMap<String, bool>>,
}

impl RequestState {
    fn record(&self, image: &str, verified: bool) {
        if let Ok(mut map) = self.verifications.lock() {
            let slot = map.entry(image.to_string()).or_insert(false);
            *slot = *slot || verified;
        }
    }

    /// Whether `image` was verified, and whether anything tried.
    pub(crate) fn status(&self, image: &str) -> (bool, bool) {
        match self.verifications.lock().ok().and_then(|m| m.get(image).copied()) {
            Some(verified) => (verified, true),
            None => (false, false),
        }
    }
}

/// What the CEL functions of one policy evaluation share.
pub(crate) struct PolicyFunctions {
    pub(crate) request: Arc<RequestState>,
    pub(crate) matcher: Arc<ImageMatcher>,
    pub(crate) attestations: BTreeMap<String, Attestation>,
    /// (image, attestation) → verified predicates.
    payloads: Mutex<BTreeMap<(String, String), Value>>,
}

impl PolicyFunctions {
    pub(crate) fn new(
        request: Arc<RequestState>,
        matcher: Arc<ImageMatcher>,
        attestations: BTreeMap<String, Attestation>,
    ) -> PolicyFunctions {
        PolicyFunctions { request, matcher, attestations, payloads: Mutex::new(BTreeMap::new()) }
    }

    /// Registers Kyverno's functions in `context`.
    pub(crate) fn register(self: &Arc<Self>, context: &mut Context<'_, '_>) {
        let this = Arc::clone(self);
        let add = context.add_function(
            "verifyImageSignatures",
            move |image: Arc<String>, attestors: Arc<Vec<CelValue>>| -> Result<CelValue, ExecutionError> {
                this.verify_signatures(&image, &attestors)
                    .map(CelValue::Int)
                    .map_err(|e| ExecutionError::function_error("verifyImageSignatures", e))
            },
        );
        let this = Arc::clone(self);
        let add2 = context.add_function(
            "verifyAttestationSignatures",
            move |image: Arc<String>,
                  attestation: Arc<String>,
                  attestors: Arc<Vec<CelValue>>|
                  -> Result<CelValue, ExecutionError> {
                this.verify_attestations(&image, &attestation, &attestors)
                    .map(CelValue::Int)
                    .map_err(|e| ExecutionError::function_error("verifyAttestationSignatures", e))
            },
        );
        let this = Arc::clone(self);
        let add3 = context.add_function(
            "extractPayload",
            move |image: Arc<String>, attestation: Arc<String>| -> Result<CelValue, ExecutionError> {
                this.payload(&image, &attestation)
                    .map(|v| to_cel(&v))
                    .map_err(|e| ExecutionError::function_error("extractPayload", e))
            },
        );
        let this = Arc::clone(self);
        let add4 =
            context.add_function("getImageData", move |image: Arc<String>| -> Result<CelValue, ExecutionError> {
                this.image_data(&image)
                    .map(|v| to_cel(&v))
                    .map_err(|e| ExecutionError::function_error("getImageData", e))
            });
        // The names are not cel-rust built-ins, so registering cannot conflict.
        debug_assert!(add.is_ok() && add2.is_ok() && add3.is_ok() && add4.is_ok());
    }

    /// The image as the registry names it, pinned (a tag is resolved, as Kyverno's image data
    /// loader does).
    fn pinned(&self, image: &str) -> Result<ImageInfo, String> {
        let info = ImageInfo::parse(image)?;
        if info.digest.is_some() {
            return Ok(info);
        }
        let digest = self.request.verifier.resolve(&info).map_err(|e| format!("failed to get imagedata: {}", e.0))?;
        Ok(ImageInfo { digest: Some(digest), ..info })
    }

    fn attestors(list: &[CelValue]) -> Result<Vec<Attestor>, String> {
        list.iter()
            .map(|value| {
                let json = to_json(value)?;
                serde_json::from_value(json).map_err(|e| format!("not an attestor (pass attestors.<name>): {e}"))
            })
            .collect()
    }

    fn verify_signatures(&self, image: &str, attestors: &[CelValue]) -> Result<i64, String> {
        if !self.matcher.matches(image)? {
            return Ok(0);
        }
        let attestors = Self::attestors(attestors)?;
        let pinned = self.pinned(image)?;
        let mut count = 0;
        for attestor in &attestors {
            let trust = Trust::of(attestor);
            let check = trust.check();
            // A failed attestor only counts as unverified (Kyverno logs the reason at V(6)).
            if let Ok(signatures) = self.request.verifier.signatures(&pinned, &check)
                && signatures.iter().any(|s| identity_matches(attestor, s))
            {
                count += 1;
            }
        }
        if !attestors.is_empty() {
            self.request.record(image, count > 0);
        }
        Ok(count)
    }

    fn verify_attestations(&self, image: &str, attestation: &str, attestors: &[CelValue]) -> Result<i64, String> {
        if !self.matcher.matches(image)? {
            return Ok(0);
        }
        let wanted = self
            .attestations
            .get(attestation)
            .ok_or_else(|| format!("attestation not found in policy: {attestation}"))?;
        let attestors = Self::attestors(attestors)?;
        let pinned = self.pinned(image)?;
        let Some(intoto) = &wanted.intoto else {
            // Kyverno's cosign verifier refuses a referrer attestation ("only supports intoto
            // referrers"), which counts as an attestor that did not verify; notary, which reads
            // them, is refused when the policy loads.
            if !attestors.is_empty() {
                self.request.record(image, false);
            }
            return Ok(0);
        };
        let mut count = 0;
        for attestor in &attestors {
            let trust = Trust::of(attestor);
            let Ok(verified) = self.request.verifier.attestations(&pinned, &trust.check()) else {
                continue;
            };
            // cosign keeps the attestations whose certificate matches an identity; Kyverno then
            // wants one of the predicate type.
            let mut found = false;
            for statement in
                verified.iter().filter(|s| identity_matches(attestor, s)).filter_map(|s| s.statement.as_ref())
            {
                if statement["predicateType"].as_str() == Some(intoto.kind.as_str()) {
                    found = true;
                    if let Ok(mut payloads) = self.payloads.lock() {
                        // cosign's AttestationToPayloadJSON: the whole statement for a URI type.
                        payloads.insert((image.to_string(), attestation.to_string()), statement.clone());
                    }
                }
            }
            if found {
                count += 1;
            }
        }
        if !attestors.is_empty() {
            self.request.record(image, count > 0);
        }
        Ok(count)
    }

    fn payload(&self, image: &str, attestation: &str) -> Result<Value, String> {
        if !self.attestations.contains_key(attestation) {
            return Err(format!("attestation not found in policy: {attestation}"));
        }
        self.payloads
            .lock()
            .ok()
            .and_then(|p| p.get(&(image.to_string(), attestation.to_string())).cloned())
            .ok_or_else(|| {
                "failed to get payload: intoto attestation payload cannot be fetch before verifying intoto attestation"
                    .into()
            })
    }

    fn image_data(&self, image: &str) -> Result<Value, String> {
        let info = ImageInfo::parse(image)?;
        let pinned = self.pinned(image)?;
        Ok(serde_json::json!({
            "image": image,
            "resolvedImage": format!("{}@{}", info.without_digest(), pinned.digest.clone().unwrap_or_default()),
            "registry": info.registry,
            "repository": info.path,
            "tag": info.tag.clone().unwrap_or_default(),
            "digest": pinned.digest.unwrap_or_default(),
        }))
    }
}

/// cosign's `CheckCertificatePolicy` with `CheckOpts.Identities`: one identity whose issuer
/// (exact, else unanchored regexp, else any) and subject (exact SAN, else unanchored regexp over
/// the SANs, else any) both match; no identities, any certificate. Key-signed signatures carry no
/// certificate and have no identity to match.
fn identity_matches(attestor: &Attestor, signature: &VerifiedSignature) -> bool {
    let Some(keyless) = attestor.cosign.as_ref().and_then(|c| c.keyless.as_ref()) else {
        return true;
    };
    if keyless.identities.is_empty() {
        return true;
    }
    keyless.identities.iter().any(|identity| one_identity_matches(identity, signature))
}

fn one_identity_matches(identity: &Identity, signature: &VerifiedSignature) -> bool {
    let regexp = |pattern: &str, value: &str| regex::Regex::new(pattern).is_ok_and(|re| re.is_match(value));
    let issuer = match (&identity.issuer, &identity.issuer_regexp) {
        (Some(exact), _) if !exact.is_empty() => *exact == signature.issuer,
        (_, Some(pattern)) if !pattern.is_empty() => regexp(pattern, &signature.issuer),
        _ => true,
    };
    let subject = match (&identity.subject, &identity.subject_regexp) {
        (Some(exact), _) if !exact.is_empty() => signature.sans.iter().any(|san| san == exact),
        (_, Some(pattern)) if !pattern.is_empty() => signature.sans.iter().any(|san| regexp(pattern, san)),
        _ => true,
    };
    issuer && subject
}

/// The trust an attestor names, as the verifier's [`SignatureCheck`] reads it.
struct Trust<'a> {
    attestor: &'a Attestor,
    rekor: RekorSettings,
    ctlog: CtLogSettings,
}

impl<'a> Trust<'a> {
    fn of(attestor: &'a Attestor) -> Trust<'a> {
        let ctlog = attestor.cosign.as_ref().and_then(|c| c.ctlog.clone()).unwrap_or_default();
        Trust {
            attestor,
            rekor: RekorSettings {
                url: ctlog.url.clone(),
                pubkey: ctlog.rekor_pub_key.clone(),
                ignore_tlog: ctlog.insecure_ignore_tlog,
            },
            ctlog: CtLogSettings { pubkey: ctlog.ctlog_pub_key.clone(), ignore_sct: ctlog.insecure_ignore_sct },
        }
    }

    fn check(&self) -> SignatureCheck<'_> {
        let cosign = self.attestor.cosign.as_ref();
        let certificate = cosign.and_then(|c| c.certificate.as_ref());
        SignatureCheck {
            roots: cosign.and_then(|c| c.keyless.as_ref()).and_then(|k| k.roots.as_deref()),
            public_key: cosign.and_then(|c| c.key.as_ref()).and_then(|k| k.data.as_deref()),
            rekor: Some(&self.rekor),
            ctlog: Some(&self.ctlog),
            sigstore_bundle: false,
            detect_bundles: true,
            trusted_root: cosign.and_then(|c| c.trusted_root.as_ref()).and_then(|t| t.value.as_deref()),
            tsa_chain: cosign.and_then(|c| c.ctlog.as_ref()).and_then(|c| c.tsa_cert_chain.as_deref()),
            certificate: certificate.and_then(|c| c.cert.as_ref()).and_then(|c| c.value.as_deref()),
            certificate_chain: certificate.and_then(|c| c.cert_chain.as_ref()).and_then(|c| c.value.as_deref()),
            has_identities: cosign.and_then(|c| c.keyless.as_ref()).is_some_and(|k| !k.identities.is_empty()),
        }
    }
}
