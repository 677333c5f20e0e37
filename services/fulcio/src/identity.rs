//! OIDC token verification against configured issuers, and the identity a token proves.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::Encode;
use der::asn1::{Ia5String, ObjectIdentifier, Utf8StringRef};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::{FulcioError, TokenError, oid};

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 30;
const GITHUB_URL: &str = "https://github.com";

/// How an issuer's tokens map to an identity (Fulcio's issuer types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssuerKind {
    /// GitHub Actions: SAN = `https://github.com/` + `job_workflow_ref`; proof of possession over `sub`.
    GithubActions,
    /// A human: SAN = `email` (which must be verified); proof of possession over the email.
    Email,
    /// Generic: SAN = `sub` as a URI; proof of possession over `sub`.
    Sub,
}

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys known in-process (the local issuer of the same stack): no network access.
    Jwks(JwkSet),
    /// A JWKS document URL.
    JwksUrl(String),
    /// An issuer base URL whose `/.well-known/openid-configuration` names the `jwks_uri`.
    DiscoveryUrl(String),
}

/// One configured issuer.
#[derive(Debug, Clone)]
pub struct OidcIssuer {
    /// The exact `iss` value.
    pub issuer_url: String,
    /// How its tokens become identities.
    pub kind: IssuerKind,
    /// The required `aud` (Sigstore's client id, `sigstore`, by default).
    pub audience: String,
    /// Where its keys come from.
    pub keys: KeySource,
}

/// The SAN of a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A URI SAN (workflow identities).
    Uri {
        /// The URI.
        uri: String,
        /// Sigstore extensions, OID → `extnValue` bytes.
        extensions: Vec<(ObjectIdentifier, Vec<u8>)>,
    },
    /// An rfc822Name SAN (people).
    Email {
        /// The address.
        email: String,
        /// Sigstore extensions, OID → `extnValue` bytes.
        extensions: Vec<(ObjectIdentifier, Vec<u8>)>,
    },
}

impl Identity {
    /// The SAN value (URI or email).
    pub fn san(&self) -> &str {
        match self {
            Identity::Uri { uri, .. } => uri,
            Identity::Email { email, .. } => email,
        }
    }

    /// DER of the SubjectAltName extension value.
    pub(crate) fn san_der(&self) -> Result<Vec<u8>, FulcioError> {
        let ia5 = |value: &str| {
            Ia5String::new(value).map_err(|_| FulcioError::InvalidRequest(format!("identity {value:?} is not ASCII")))
        };
        let name = match self {
            Identity::Uri { uri, .. } => GeneralName::UniformResourceIdentifier(ia5(uri)?),
            Identity::Email { email, .. } => GeneralName::Rfc822Name(ia5(email)?),
        };
        Ok(SubjectAltName(vec![name]).to_der()?)
    }

    /// The identity a leaf carries: its SAN and its Sigstore extensions as the CA wrote them. For
    /// issuing the same identity again at another time (`sigstack policy probe`'s certificate
    /// that has since expired).
    pub fn of_leaf(der: &[u8]) -> Result<Identity, FulcioError> {
        use der::Decode;
        let invalid = |what: String| FulcioError::InvalidRequest(what);
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| invalid(format!("not a DER certificate: {e}")))?;
        let mut san = None;
        let mut extensions = Vec::new();
        for extension in cert.tbs_certificate.extensions.iter().flatten() {
            if extension.extn_id == oid::SUBJECT_ALT_NAME {
                let names = SubjectAltName::from_der(extension.extn_value.as_bytes())?;
                san = names.0.into_iter().find_map(|name| match name {
                    GeneralName::UniformResourceIdentifier(uri) => {
                        Some(Identity::Uri { uri: uri.to_string(), extensions: Vec::new() })
                    }
                    GeneralName::Rfc822Name(email) => {
                        Some(Identity::Email { email: email.to_string(), extensions: Vec::new() })
                    }
                    _ => None,
                });
            } else if oid::sigstore_number(&extension.extn_id).is_some() {
                extensions.push((extension.extn_id, extension.extn_value.as_bytes().to_vec()));
            }
        }
        match san.ok_or_else(|| invalid("the certificate names no URI or email".into()))? {
            Identity::Uri { uri, .. } => Ok(Identity::Uri { uri, extensions }),
            Identity::Email { email, .. } => Ok(Identity::Email { email, extensions }),
        }
    }

    /// The Sigstore extensions, in the order they are written.
    pub fn extensions(&self) -> impl Iterator<Item = (ObjectIdentifier, Vec<u8>)> + '_ {
        let (Identity::Uri { extensions, .. } | Identity::Email { extensions, .. }) = self;
        extensions.iter().cloned()
    }
}

/// What a verified token proves: who, and what the proof of possession must sign.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The string the client signs for proof of possession (`email` or `sub`).
    pub challenge: String,
    /// The certificate identity.
    pub identity: Identity,
}

struct VerificationKey {
    algorithm: Option<String>,
    key: DecodingKey,
}

type KeyMap = Arc<HashMap<String, Arc<VerificationKey>>>;

/// Verifies OIDC tokens against configured issuers, caching their keys.
pub struct TokenVerifier {
    issuers: HashMap<String, OidcIssuer>,
    keys: RwLock<HashMap<String, KeyMap>>,
    http: reqwest::Client,
}

impl TokenVerifier {
    /// A verifier that trusts exactly `issuers`.
    pub fn new(issuers: Vec<OidcIssuer>) -> Self {
        let mut keys = HashMap::new();
        for issuer in &issuers {
            if let KeySource::Jwks(set) = &issuer.keys {
                keys.insert(issuer.issuer_url.clone(), key_map(set));
            }
        }
        TokenVerifier {
            issuers: issuers.into_iter().map(|i| (i.issuer_url.clone(), i)).collect(),
            keys: RwLock::new(keys),
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default(),
        }
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &OidcIssuer> {
        self.issuers.values()
    }

    /// Verifies `token` (signature, algorithm, issuer, audience, times, required claims) and
    /// returns the principal it proves. `jku`/`x5u`/`jwk` headers are never consulted: keys come
    /// only from configuration.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let (header, claims) = decode_unverified(token)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none").to_string();
        let algorithm = match alg.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            _ => return Err(TokenError::Algorithm(alg)),
        };
        let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
        let issuer = self.issuers.get(iss).ok_or_else(|| TokenError::UnknownIssuer(iss.to_string()))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let key = self.key_for(issuer, kid, &alg).await?;
        if key.algorithm.as_deref().is_some_and(|a| a != alg) {
            return Err(TokenError::Algorithm(format!(
                "{alg} (the key with this kid is for {})",
                key.algorithm.as_deref().unwrap_or("?")
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_audience(&[&issuer.audience]);
        validation.set_issuer(&[&issuer.issuer_url]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid("nbf is in the future"),
            ErrorKind::InvalidAudience => TokenError::Audience(issuer.audience.clone()),
            ErrorKind::InvalidIssuer => TokenError::UnknownIssuer(iss.to_string()),
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
            ErrorKind::InvalidAlgorithm => TokenError::Algorithm(alg.clone()),
            _ => TokenError::Invalid(e.to_string()),
        })?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64)
            && iat > now + LEEWAY_SECONDS
        {
            return Err(TokenError::NotYetValid("iat is in the future"));
        }
        principal(issuer, &claims)
    }

    async fn key_for(
        &self,
        issuer: &OidcIssuer,
        kid: Option<&str>,
        alg: &str,
    ) -> Result<Arc<VerificationKey>, TokenError> {
        let cached = self.keys.read().ok().and_then(|keys| keys.get(&issuer.issuer_url).cloned());
        if let Some(found) = cached.as_ref().and_then(|map| pick_key(map, kid, alg)) {
            return Ok(found);
        }
        // Unknown kid with a remote source: the issuer may have rotated keys, fetch once more.
        let url = match &issuer.keys {
            KeySource::Jwks(_) => return Err(TokenError::UnknownKey(kid.unwrap_or("").to_string())),
            KeySource::JwksUrl(url) => url.clone(),
            KeySource::DiscoveryUrl(base) => {
                let discovery: Value = self
                    .fetch_json(&format!("{}/.well-known/openid-configuration", base.trim_end_matches('/')))
                    .await?;
                discovery["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| TokenError::KeyFetch("discovery document has no jwks_uri".into()))?
                    .to_string()
            }
        };
        let set: JwkSet = serde_json::from_value(self.fetch_json(&url).await?)
            .map_err(|e| TokenError::KeyFetch(format!("{url}: {e}")))?;
        let map = key_map(&set);
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(issuer.issuer_url.clone(), map.clone());
        }
        pick_key(&map, kid, alg).ok_or_else(|| TokenError::UnknownKey(kid.unwrap_or("").to_string()))
    }

    async fn fetch_json(&self, url: &str) -> Result<Value, TokenError> {
        let response = self.http.get(url).send().await.map_err(|e| TokenError::KeyFetch(format!("{url}: {e}")))?;
        let response = response.error_for_status().map_err(|e| TokenError::KeyFetch(format!("{url}: {e}")))?;
        response.json().await.map_err(|e| TokenError::KeyFetch(format!("{url}: {e}")))
    }
}

fn key_map(set: &JwkSet) -> KeyMap {
    let mut map = HashMap::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{index}"));
        map.insert(kid, Arc::new(VerificationKey { algorithm: jwk_algorithm(jwk), key }));
    }
    Arc::new(map)
}

fn jwk_algorithm(jwk: &Jwk) -> Option<String> {
    jwk.common.key_algorithm.map(|a| a.to_string())
}

/// The key named by `kid`; without a `kid`, the only key fit for `alg`, if there is exactly one.
fn pick_key(map: &HashMap<String, Arc<VerificationKey>>, kid: Option<&str>, alg: &str) -> Option<Arc<VerificationKey>> {
    match kid {
        Some(kid) => map.get(kid).cloned(),
        None => {
            let mut fitting = map.values().filter(|k| k.algorithm.as_deref().is_none_or(|a| a == alg));
            let first = fitting.next()?;
            fitting.next().is_none().then(|| first.clone())
        }
    }
}

type JsonObject = Map<String, Value>;

fn decode_unverified(token: &str) -> Result<(JsonObject, JsonObject), TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("a JWT has three dot-separated parts".into()));
    };
    let part = |name: &str, text: &str| -> Result<Map<String, Value>, TokenError> {
        let bytes =
            URL_SAFE_NO_PAD.decode(text).map_err(|_| TokenError::Malformed(format!("{name} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(format!("{name} is not a JSON object")))
    };
    Ok((part("header", header)?, part("payload", payload)?))
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, TokenError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TokenError::MissingClaim(name.into()))
}

/// Claims real Fulcio requires of a GitHub Actions token (fulcio pkg/identity/github/principal.go).
const GITHUB_REQUIRED: &[&str] = &[
    "job_workflow_ref",
    "sha",
    "event_name",
    "repository",
    "workflow",
    "ref",
    "job_workflow_sha",
    "runner_environment",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "repository_visibility",
    "workflow_ref",
    "workflow_sha",
    "run_id",
    "run_attempt",
];

fn raw(n: u32, value: &str) -> (ObjectIdentifier, Vec<u8>) {
    (oid::sigstore(n), value.as_bytes().to_vec())
}

fn utf8(n: u32, value: &str) -> Result<(ObjectIdentifier, Vec<u8>), TokenError> {
    let der = Utf8StringRef::new(value).and_then(|s| s.to_der()).map_err(|e| TokenError::Invalid(e.to_string()))?;
    Ok((oid::sigstore(n), der))
}

fn principal(issuer: &OidcIssuer, claims: &Map<String, Value>) -> Result<Principal, TokenError> {
    let iss = issuer.issuer_url.as_str();
    let sub = string_claim(claims, "sub")?;
    match issuer.kind {
        IssuerKind::GithubActions => {
            for name in GITHUB_REQUIRED {
                string_claim(claims, name)?;
            }
            let claim = |name: &str| string_claim(claims, name);
            let github = |path: &str| format!("{GITHUB_URL}/{path}");
            let san = github(claim("job_workflow_ref")?);
            let run_url = format!(
                "{GITHUB_URL}/{}/actions/runs/{}/attempts/{}",
                claim("repository")?,
                claim("run_id")?,
                claim("run_attempt")?
            );
            // .1–.6 are raw bytes, .8 on DER UTF8String (fulcio pkg/certificate/extensions.go).
            let mut extensions = vec![
                raw(1, iss),
                raw(2, claim("event_name")?),
                raw(3, claim("sha")?),
                raw(4, claim("workflow")?),
                raw(5, claim("repository")?),
                raw(6, claim("ref")?),
                utf8(8, iss)?,
                utf8(9, &san)?,
                utf8(10, claim("job_workflow_sha")?)?,
                utf8(11, claim("runner_environment")?)?,
                utf8(12, &github(claim("repository")?))?,
                utf8(13, claim("sha")?)?,
                utf8(14, claim("ref")?)?,
                utf8(15, claim("repository_id")?)?,
                utf8(16, &github(claim("repository_owner")?))?,
                utf8(17, claim("repository_owner_id")?)?,
                utf8(18, &github(claim("workflow_ref")?))?,
                utf8(19, claim("workflow_sha")?)?,
                utf8(20, claim("event_name")?)?,
                utf8(21, &run_url)?,
                utf8(22, claim("repository_visibility")?)?,
            ];
            if let Ok(environment) = claim("environment") {
                extensions.push(utf8(23, environment)?);
            }
            extensions.push(utf8(24, sub)?);
            Ok(Principal { challenge: sub.to_string(), identity: Identity::Uri { uri: san, extensions } })
        }
        IssuerKind::Email => {
            let email = string_claim(claims, "email")?;
            let verified = match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
            if !verified {
                return Err(TokenError::EmailNotVerified);
            }
            let extensions = vec![raw(1, iss), utf8(8, iss)?, utf8(24, sub)?];
            Ok(Principal {
                challenge: email.to_string(),
                identity: Identity::Email { email: email.to_string(), extensions },
            })
        }
        IssuerKind::Sub => {
            if !sub.contains("://") {
                return Err(TokenError::Invalid(format!(
                    "sub {sub:?} is not a URI, which this issuer type needs for the SAN"
                )));
            }
            let extensions = vec![raw(1, iss), utf8(8, iss)?, utf8(24, sub)?];
            Ok(Principal { challenge: sub.to_string(), identity: Identity::Uri { uri: sub.to_string(), extensions } })
        }
    }
}

/// One entry of an issuer configuration file (`--issuer-config`), e.g.
/// `{"issuer": "https://accounts.example", "type": "email", "discovery_url": "https://accounts.example"}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    /// The exact `iss` value.
    pub issuer: String,
    /// `github-actions`, `email` or `sub`.
    #[serde(rename = "type")]
    pub kind: IssuerKind,
    /// Required audience; default `sigstore`.
    #[serde(default)]
    pub audience: Option<String>,
    /// Where the JWKS is.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Where discovery is (the issuer base URL); used when `jwks_url` is absent.
    #[serde(default)]
    pub discovery_url: Option<String>,
}

impl IssuerSpec {
    /// Parses a JSON array of issuer entries.
    pub fn parse_list(json: &[u8]) -> Result<Vec<OidcIssuer>, String> {
        let specs: Vec<IssuerSpec> = serde_json::from_slice(json).map_err(|e| format!("issuer configuration: {e}"))?;
        specs.into_iter().map(IssuerSpec::into_issuer).collect()
    }

    fn into_issuer(self) -> Result<OidcIssuer, String> {
        let keys = match (self.jwks_url, self.discovery_url) {
            (Some(url), _) => KeySource::JwksUrl(url),
            (None, Some(url)) => KeySource::DiscoveryUrl(url),
            (None, None) => KeySource::DiscoveryUrl(self.issuer.clone()),
        };
        Ok(OidcIssuer {
            audience: self.audience.unwrap_or_else(|| "sigstore".into()),
            issuer_url: self.issuer,
            kind: self.kind,
            keys,
        })
    }
}
