use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use sigstack_state::load_or_create_private;

use crate::claims::ClaimContext;
use crate::{DEFAULT_GITHUB_ISSUER, OidcError, SigningKeys, TokenRequest};

/// Where [`Issuer::open_and_record`] keeps the configuration, in the issuer's key directory.
const RECORDED_CONFIG_FILE: &str = "issuer.json";

/// Path of the emulated `ACTIONS_ID_TOKEN_REQUEST_URL`, without its query.
pub const ACTIONS_TOKEN_PATH: &str = "/actions/token";

/// How the issuer names itself. Persisted by the binary so `sigstack token` mints what the running issuer would.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IssuerConfig {
    /// Where this issuer is reachable (`http://127.0.0.1:PORT`): the discovery `issuer`, and the
    /// `iss` of email tokens unless `email_issuer` is set.
    pub issuer_url: String,
    /// `iss` of GitHub Actions tokens; by default GitHub's own.
    pub github_issuer: String,
    /// `iss` of email tokens, when it must differ from `issuer_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_issuer: Option<String>,
}

impl IssuerConfig {
    /// The configuration of an issuer reachable at `issuer_url`, with every default.
    pub fn new(issuer_url: impl Into<String>) -> Self {
        IssuerConfig { issuer_url: issuer_url.into(), github_issuer: DEFAULT_GITHUB_ISSUER.into(), email_issuer: None }
    }
}

/// The mock issuer: keys, names and the shared secret of the ambient-token endpoint.
pub struct Issuer {
    keys: SigningKeys,
    config: IssuerConfig,
    actions_request_token: String,
}

impl Issuer {
    /// Opens the issuer whose keys live in `key_dir` (created on first use).
    pub fn open(key_dir: &Path, config: IssuerConfig) -> Result<Self, OidcError> {
        sigstack_state::ensure_private_dir(key_dir)?;
        let keys = SigningKeys::load_or_generate(key_dir)?;
        let actions_request_token = load_or_create_private(
            &key_dir.join("actions-request-token"),
            || Ok(format!("sigstack-actions-{}", uuid::Uuid::new_v4().simple()).into_bytes()),
            |bytes| String::from_utf8(bytes.to_vec()).map(|s| s.trim().to_string()).map_err(|e| e.to_string()),
        )?;
        Ok(Issuer { keys, config, actions_request_token })
    }

    /// Opens the issuer of `key_dir` and records `config` there (`issuer.json`), so that a
    /// later [`Issuer::open_recorded`] (`sigstack token`, `sigstack env`) mints and describes
    /// exactly what this one serves.
    pub fn open_and_record(key_dir: &Path, config: IssuerConfig) -> Result<Self, OidcError> {
        let issuer = Issuer::open(key_dir, config)?;
        let json = serde_json::to_vec_pretty(&issuer.config).map_err(|e| OidcError::Signing(e.to_string()))?;
        sigstack_state::write_public(&key_dir.join(RECORDED_CONFIG_FILE), &json)?;
        Ok(issuer)
    }

    /// Opens the issuer of `key_dir` as it was last recorded, or at `fallback_url` with every
    /// default before any start recorded it.
    pub fn open_recorded(key_dir: &Path, fallback_url: &str) -> Result<Self, OidcError> {
        let path = key_dir.join(RECORDED_CONFIG_FILE);
        let config = match sigstack_state::read_optional(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| sigstack_state::StateError::corrupt(&path, format!("not an issuer configuration: {e}")))?,
            None => IssuerConfig::new(fallback_url),
        };
        Issuer::open(key_dir, config)
    }

    /// The configuration this issuer runs with.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The `iss` of email tokens.
    pub fn email_issuer(&self) -> &str {
        self.config.email_issuer.as_deref().unwrap_or(&self.config.issuer_url)
    }

    /// Mints a signed token for `request` at the current time.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, OidcError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
        self.mint_at(request, now)
    }

    /// Mints a signed token for `request` as if the time were `now` (unix seconds).
    pub fn mint_at(&self, request: &TokenRequest, now: i64) -> Result<String, OidcError> {
        let id = uuid::Uuid::new_v4();
        let ctx = ClaimContext {
            github_issuer: &self.config.github_issuer,
            email_issuer: self.email_issuer(),
            now,
            jti: id.to_string(),
            run_id: 1_000_000_000 + (id.as_u128() % 9_000_000_000) as u64,
        };
        let claims = request.claims(&ctx)?;
        self.keys.sign(request.algorithm(), &Value::Object(claims))
    }

    /// The public keys.
    pub fn jwks(&self) -> JwkSet {
        self.keys.jwks()
    }

    /// The signing keys (for tests and for verifiers in the same process).
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The OpenID Provider Metadata served at `/.well-known/openid-configuration`.
    pub fn discovery(&self) -> Value {
        let base = self.config.issuer_url.trim_end_matches('/');
        json!({
            "issuer": base,
            "jwks_uri": format!("{base}/.well-known/jwks"),
            // Required by OpenID Discovery; the issuer is non-interactive and answers with how to mint instead.
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid"],
            "claims_supported": [
                "sub", "aud", "exp", "iat", "iss", "jti", "nbf", "email", "email_verified",
                "ref", "ref_type", "ref_protected", "sha", "repository", "repository_id", "repository_owner",
                "repository_owner_id", "repository_visibility", "run_id", "run_number", "run_attempt",
                "runner_environment", "actor", "actor_id", "workflow", "workflow_ref", "workflow_sha",
                "job_workflow_ref", "job_workflow_sha", "event_name", "environment"
            ],
        })
    }

    /// The secret to put in `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn actions_request_token(&self) -> &str {
        &self.actions_request_token
    }

    /// The value for `ACTIONS_ID_TOKEN_REQUEST_URL`. It already has a query because cosign appends
    /// `&audience=...` literally (cosign pkg/providers/github), as GitHub's own URL allows.
    pub fn actions_token_url(&self) -> String {
        format!("{}{ACTIONS_TOKEN_PATH}?api-version=2.0", self.config.issuer_url.trim_end_matches('/'))
    }

    /// Checks an `Authorization` header value against the ambient-token secret.
    pub fn check_actions_bearer(&self, authorization: Option<&str>) -> Result<(), OidcError> {
        let Some(value) = authorization else {
            return Err(OidcError::Unauthorized(
                "missing Authorization header: send `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`".into(),
            ));
        };
        let presented = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(OidcError::Unauthorized("Authorization must use the bearer scheme".into()));
            }
        };
        aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), self.actions_request_token.as_bytes())
            .map_err(|_| OidcError::Unauthorized("bearer token does not match ACTIONS_ID_TOKEN_REQUEST_TOKEN".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_configuration_is_what_a_later_open_mints_with() {
        let dir = tempfile::tempdir().unwrap();
        let key_dir = dir.path().join("oidc");
        // Before any start: the fallback URL, every default.
        let before = Issuer::open_recorded(&key_dir, "http://127.0.0.1:8091").unwrap();
        assert_eq!(before.config().issuer_url, "http://127.0.0.1:8091");
        let config = IssuerConfig {
            issuer_url: "http://127.0.0.1:40001".into(),
            github_issuer: "https://issuer.example".into(),
            email_issuer: None,
        };
        let running = Issuer::open_and_record(&key_dir, config).unwrap();
        let later = Issuer::open_recorded(&key_dir, "http://127.0.0.1:8091").unwrap();
        assert_eq!(later.config().issuer_url, "http://127.0.0.1:40001");
        assert_eq!(later.config().github_issuer, "https://issuer.example");
        assert_eq!(
            serde_json::to_value(later.jwks()).unwrap(),
            serde_json::to_value(running.jwks()).unwrap(),
            "the same keys"
        );
        std::fs::write(key_dir.join(RECORDED_CONFIG_FILE), "{not json").unwrap();
        let error = Issuer::open_recorded(&key_dir, "http://127.0.0.1:8091").err().unwrap().to_string();
        assert!(error.contains("issuer.json") && error.contains("not an issuer configuration"), "{error}");
    }
}
