use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{OidcError, SigningAlg};

/// The issuer name GitHub Actions puts in `iss`; tokens carry it by default so a policy written for
/// production GitHub identities works unchanged against the local stack.
pub const DEFAULT_GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience every Sigstore client asks for (Fulcio's `client-id`).
pub const DEFAULT_AUDIENCE: &str = "sigstore";
const DEFAULT_REPOSITORY: &str = "sigstack-demo/app";
const DEFAULT_WORKFLOW: &str = ".github/workflows/release.yml";
const DEFAULT_REF: &str = "refs/heads/main";
const DEFAULT_EMAIL: &str = "developer@sigstack.test";
const DEFAULT_TTL_SECONDS: i64 = 600;
/// GitHub's tokens live minutes; a day is long enough for any demo and short enough to stay a token.
const MAX_TTL_SECONDS: i64 = 24 * 3600;

/// Which claim set a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A GitHub Actions workflow token (`sub` = `repo:ORG/REPO:ref:REF`, no `email`).
    #[default]
    GithubActions,
    /// A human identity: `email`, `email_verified: true`.
    Email,
}

impl Profile {
    /// Parses `github-actions` or `email`.
    pub fn parse(name: &str) -> Result<Self, OidcError> {
        match name {
            "github-actions" | "github" => Ok(Profile::GithubActions),
            "email" => Ok(Profile::Email),
            other => Err(OidcError::InvalidRequest(format!("unknown profile {other:?}: use github-actions or email"))),
        }
    }
}

/// What a caller asks the issuer to mint. Every field is optional; the defaults give a valid
/// GitHub Actions token for `sigstack-demo/app`'s release workflow on `refs/heads/main`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `github-actions` (default) or `email`.
    pub profile: Option<Profile>,
    /// `aud`; default `sigstore`.
    pub audience: Option<String>,
    /// Lifetime in seconds (1 s to 24 h); default 600.
    pub ttl_seconds: Option<i64>,
    /// `RS256` (default) or `ES256`.
    pub alg: Option<SigningAlg>,
    /// `iss` override; default the profile's issuer.
    pub issuer: Option<String>,
    /// GitHub: `ORG/REPO`.
    pub repository: Option<String>,
    /// GitHub: the workflow file, e.g. `.github/workflows/release.yml`.
    pub workflow: Option<String>,
    /// GitHub: the git ref, e.g. `refs/heads/main` or `refs/tags/v1.0.0`.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// GitHub: the commit SHA (40 hex); default derived from repository and ref.
    pub sha: Option<String>,
    /// GitHub: `event_name`; default `push`.
    pub event_name: Option<String>,
    /// GitHub: the deployment environment; changes `sub` to `repo:ORG/REPO:environment:ENV`.
    pub environment: Option<String>,
    /// Email profile: the address.
    pub email: Option<String>,
    /// Claims set last, over everything above; `null` removes a claim. For deliberately bad tokens.
    pub claims: Option<Map<String, Value>>,
}

/// Parses a lifetime such as `600`, `90s`, `10m`, `2h`.
pub fn parse_ttl(text: &str) -> Result<i64, OidcError> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let multiplier = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(OidcError::InvalidRequest(format!("invalid lifetime {text:?}: use e.g. 90s, 10m or 1h")));
        }
    };
    let value: i64 = digits
        .parse()
        .map_err(|_| OidcError::InvalidRequest(format!("invalid lifetime {text:?}: use e.g. 90s, 10m or 1h")))?;
    value.checked_mul(multiplier).ok_or_else(|| OidcError::InvalidRequest(format!("lifetime {text:?} is too long")))
}

/// Where the claims come from besides the request: the issuer names and the clock.
pub(crate) struct ClaimContext<'a> {
    pub(crate) github_issuer: &'a str,
    pub(crate) email_issuer: &'a str,
    pub(crate) now: i64,
    pub(crate) jti: String,
    pub(crate) run_id: u64,
}

impl TokenRequest {
    /// The signing algorithm asked for (RS256 by default).
    pub fn algorithm(&self) -> SigningAlg {
        self.alg.unwrap_or_default()
    }

    /// Builds the full claim set. Pure: the clock and identifiers come from `ctx`.
    pub(crate) fn claims(&self, ctx: &ClaimContext<'_>) -> Result<Map<String, Value>, OidcError> {
        let ttl = self.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
            return Err(OidcError::InvalidRequest(format!(
                "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {ttl} (use claims.exp for expired tokens)"
            )));
        }
        let audience = non_empty("audience", self.audience.as_deref(), DEFAULT_AUDIENCE)?;
        let profile = self.profile.unwrap_or_default();
        let mut claims = match profile {
            Profile::GithubActions => self.github_claims(ctx)?,
            Profile::Email => self.email_claims(ctx)?,
        };
        let common = json!({
            "aud": audience,
            "iat": ctx.now,
            "nbf": ctx.now,
            "exp": ctx.now + ttl,
            "jti": ctx.jti,
        });
        if let Value::Object(common) = common {
            claims.extend(common);
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), Value::String(non_empty("issuer", Some(issuer), "")?));
        }
        for (name, value) in self.claims.iter().flatten() {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        Ok(claims)
    }

    fn github_claims(&self, ctx: &ClaimContext<'_>) -> Result<Map<String, Value>, OidcError> {
        let repository = non_empty("repository", self.repository.as_deref(), DEFAULT_REPOSITORY)?;
        let Some((owner, name)) = repository.split_once('/') else {
            return Err(OidcError::InvalidRequest(format!("repository must be ORG/REPO, got {repository:?}")));
        };
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return Err(OidcError::InvalidRequest(format!("repository must be ORG/REPO, got {repository:?}")));
        }
        let workflow_path = non_empty("workflow", self.workflow.as_deref(), DEFAULT_WORKFLOW)?;
        if workflow_path.contains('@') {
            return Err(OidcError::InvalidRequest(format!(
                "workflow is a file path without @ref, got {workflow_path:?}"
            )));
        }
        let git_ref = non_empty("ref", self.git_ref.as_deref(), DEFAULT_REF)?;
        if !git_ref.starts_with("refs/") {
            return Err(OidcError::InvalidRequest(format!(
                "ref must be a full git ref such as refs/heads/main, got {git_ref:?}"
            )));
        }
        let sha = match &self.sha {
            Some(sha) if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => sha.to_ascii_lowercase(),
            Some(sha) => {
                return Err(OidcError::InvalidRequest(format!("sha must be 40 hex digits, got {sha:?}")));
            }
            None => stable_hex(&format!("{repository}@{git_ref}"), 40),
        };
        let event_name = non_empty("event_name", self.event_name.as_deref(), "push")?;
        // GitHub's `workflow` claim is the workflow's display name; the file stem stands in for it.
        let workflow_name = workflow_path
            .rsplit('/')
            .next()
            .unwrap_or(&workflow_path)
            .trim_end_matches(".yml")
            .trim_end_matches(".yaml");
        let workflow_ref = format!("{repository}/{workflow_path}@{git_ref}");
        let ref_type = if git_ref.starts_with("refs/tags/") { "tag" } else { "branch" };
        let sub = match &self.environment {
            Some(environment) => format!("repo:{repository}:environment:{environment}"),
            None => format!("repo:{repository}:ref:{git_ref}"),
        };
        // Every claim real Fulcio requires (pkg/identity/github/principal.go), all strings, no `email`.
        let claims = json!({
            "iss": ctx.github_issuer,
            "sub": sub,
            "ref": git_ref,
            "ref_type": ref_type,
            "ref_protected": "false",
            "sha": sha,
            "repository": repository,
            "repository_id": stable_id(&repository),
            "repository_owner": owner,
            "repository_owner_id": stable_id(owner),
            "repository_visibility": "public",
            "actor": owner,
            "actor_id": stable_id(owner),
            "workflow": workflow_name,
            "workflow_ref": workflow_ref,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_ref,
            "job_workflow_sha": sha,
            "event_name": event_name,
            "run_id": ctx.run_id.to_string(),
            "run_number": "1",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
        });
        let Value::Object(mut claims) = claims else { unreachable!("json! object literal") };
        if let Some(environment) = &self.environment {
            claims.insert("environment".into(), Value::String(environment.clone()));
        }
        Ok(claims)
    }

    fn email_claims(&self, ctx: &ClaimContext<'_>) -> Result<Map<String, Value>, OidcError> {
        let email = non_empty("email", self.email.as_deref(), DEFAULT_EMAIL)?;
        if !email.contains('@') {
            return Err(OidcError::InvalidRequest(format!("email must be an address, got {email:?}")));
        }
        let Value::Object(claims) = json!({
            "iss": ctx.email_issuer,
            "sub": email,
            "email": email,
            "email_verified": true,
        }) else {
            unreachable!("json! object literal")
        };
        Ok(claims)
    }
}

fn non_empty(field: &str, value: Option<&str>, default: &str) -> Result<String, OidcError> {
    match value {
        None => Ok(default.to_string()),
        Some(v) if v.trim().is_empty() => Err(OidcError::InvalidRequest(format!("{field} must not be empty"))),
        Some(v) => Ok(v.to_string()),
    }
}

fn stable_digest(input: &str) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes())
}

/// A hex string derived from `input`, so the same repository always gets the same commit SHA.
fn stable_hex(input: &str, len: usize) -> String {
    stable_digest(input).as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()[..len].to_string()
}

/// A numeric id derived from a name, like GitHub's `repository_id`: stable, 9 digits, a string.
fn stable_id(name: &str) -> String {
    let digest = stable_digest(name);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    (100_000_000 + u64::from_be_bytes(first) % 900_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ClaimContext<'static> {
        ClaimContext {
            github_issuer: DEFAULT_GITHUB_ISSUER,
            email_issuer: "http://127.0.0.1:1",
            now: 1_700_000_000,
            jti: "jti-1".into(),
            run_id: 42,
        }
    }

    /// The claims real Fulcio refuses a GitHub token without (fulcio pkg/identity/github/principal.go).
    const FULCIO_REQUIRED: &[&str] = &[
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

    #[test]
    fn github_profile_has_every_claim_fulcio_requires_as_strings_and_no_email() {
        let request = TokenRequest { repository: Some("acme/widget".into()), ..Default::default() };
        let claims = request.claims(&ctx()).unwrap();
        for name in FULCIO_REQUIRED.iter().chain(&["run_number", "actor", "actor_id", "ref_type"]) {
            assert!(claims.get(*name).is_some_and(Value::is_string), "{name} missing or not a string");
        }
        assert!(!claims.contains_key("email"));
        assert_eq!(claims["iss"], DEFAULT_GITHUB_ISSUER);
        assert_eq!(claims["sub"], "repo:acme/widget:ref:refs/heads/main");
        assert_eq!(claims["aud"], "sigstore");
        assert_eq!(claims["job_workflow_ref"], "acme/widget/.github/workflows/release.yml@refs/heads/main");
        assert_eq!(claims["repository_owner"], "acme");
        assert_eq!(claims["ref_type"], "branch");
        assert_eq!(claims["exp"], 1_700_000_600);
        assert_eq!(claims["sha"].as_str().unwrap().len(), 40);
        assert_eq!(claims["sha"], claims["workflow_sha"]);
    }

    #[test]
    fn github_profile_follows_tag_refs_and_environments() {
        let request = TokenRequest {
            git_ref: Some("refs/tags/v1.2.3".into()),
            environment: Some("prod".into()),
            workflow: Some(".github/workflows/ci.yaml".into()),
            ..Default::default()
        };
        let claims = request.claims(&ctx()).unwrap();
        assert_eq!(claims["ref_type"], "tag");
        assert_eq!(claims["sub"], "repo:sigstack-demo/app:environment:prod");
        assert_eq!(claims["environment"], "prod");
        assert_eq!(claims["workflow"], "ci");
    }

    #[test]
    fn email_profile() {
        let request =
            TokenRequest { profile: Some(Profile::Email), email: Some("a@b.test".into()), ..Default::default() };
        let claims = request.claims(&ctx()).unwrap();
        assert_eq!(claims["email"], "a@b.test");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["sub"], "a@b.test");
        assert_eq!(claims["iss"], "http://127.0.0.1:1");
        assert!(!claims.contains_key("repository"));
    }

    #[test]
    fn overrides_set_and_remove_claims() {
        let mut overrides = Map::new();
        overrides.insert("exp".into(), json!(5));
        overrides.insert("sha".into(), Value::Null);
        let request = TokenRequest { claims: Some(overrides), audience: Some("other".into()), ..Default::default() };
        let claims = request.claims(&ctx()).unwrap();
        assert_eq!(claims["exp"], 5);
        assert_eq!(claims["aud"], "other");
        assert!(!claims.contains_key("sha"));
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let cases: Vec<(TokenRequest, &str)> = vec![
            (TokenRequest { ttl_seconds: Some(-5), ..Default::default() }, "ttl_seconds"),
            (TokenRequest { ttl_seconds: Some(0), ..Default::default() }, "ttl_seconds"),
            (TokenRequest { repository: Some("noslash".into()), ..Default::default() }, "ORG/REPO"),
            (TokenRequest { git_ref: Some("main".into()), ..Default::default() }, "full git ref"),
            (TokenRequest { sha: Some("xyz".into()), ..Default::default() }, "40 hex"),
            (TokenRequest { audience: Some("".into()), ..Default::default() }, "audience"),
            (
                TokenRequest { profile: Some(Profile::Email), email: Some("nobody".into()), ..Default::default() },
                "address",
            ),
        ];
        for (request, needle) in cases {
            let err = request.claims(&ctx()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("600").unwrap(), 600);
        assert_eq!(parse_ttl("90s").unwrap(), 90);
        assert_eq!(parse_ttl("10m").unwrap(), 600);
        assert_eq!(parse_ttl("2h").unwrap(), 7200);
        assert!(parse_ttl("-1m").is_err());
        assert!(parse_ttl("10d").is_err());
        assert!(parse_ttl("").is_err());
        assert!(parse_ttl("99999999999999999999h").is_err());
    }
}

/// A token's claims, read without verifying its signature: for showing a token and for the
/// proof-of-possession challenge a client signs. Verifying a token is the CA's business
/// (`sigstack_fulcio`), never this.
pub fn unverified_claims(token: &str) -> Result<serde_json::Value, OidcError> {
    use base64::Engine;
    let mut parts = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::NotAJwt("a JWT has three dot-separated parts"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OidcError::NotAJwt("its payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| OidcError::NotAJwt("its payload is not JSON"))?;
    if !claims.is_object() {
        return Err(OidcError::NotAJwt("its payload is not a JSON object"));
    }
    Ok(claims)
}

#[cfg(test)]
mod unverified_claims_tests {
    use super::unverified_claims;

    #[test]
    fn claims_are_read_and_anything_else_is_named() {
        // {"alg":"none"} . {"sub":"x"} . (empty signature)
        assert_eq!(unverified_claims("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.").unwrap()["sub"], "x");
        for (token, why) in [
            ("abc", "three dot-separated parts"),
            ("a.b.c.d", "three dot-separated parts"),
            ("a.!!.c", "not base64url"),
            ("a.bm90IGpzb24.c", "not JSON"),
            ("a.WzFd.c", "not a JSON object"),
        ] {
            let error = unverified_claims(token).unwrap_err().to_string();
            assert!(error.contains(why), "{token}: {error}");
        }
    }
}
