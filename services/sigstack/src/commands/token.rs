use anyhow::Context;
use serde_json::{Map, Value};
use sigstack_oidc::{Profile, SigningAlg, TokenRequest, parse_ttl};

use crate::StateDirArg;
use crate::commands::open_recorded_issuer;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    state: StateDirArg,
    /// Claim set: a GitHub Actions workflow token, or an email identity.
    #[arg(long, default_value = "github-actions", value_parser = ["github-actions", "email"])]
    profile: String,
    #[command(flatten)]
    workflow: super::WorkflowArgs,
    /// Commit SHA (40 hex) [default: derived from repo and ref].
    #[arg(long)]
    sha: Option<String>,
    /// Deployment environment (changes `sub` to repo:ORG/REPO:environment:ENV).
    #[arg(long)]
    environment: Option<String>,
    /// Email address, for --profile email [default: developer@sigstack.test].
    #[arg(long)]
    email: Option<String>,
    /// Audience (`aud`).
    #[arg(long, default_value = sigstack_oidc::DEFAULT_AUDIENCE)]
    audience: String,
    /// Lifetime, e.g. 90s, 10m, 1h.
    #[arg(long, default_value = "10m")]
    ttl: String,
    /// Signing algorithm.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    alg: String,
    /// `iss` override (a token from an issuer the CA does not know, for negative tests).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Set a claim last, as NAME=JSON (or NAME=text); NAME=null removes it. Repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Print the claims (decoded) to stderr as well.
    #[arg(long)]
    show_claims: bool,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let issuer = open_recorded_issuer(&args.state.state_dir)?;
    let mut overrides = Map::new();
    for claim in &args.claims {
        let (name, value) = claim.split_once('=').with_context(|| format!("--claim {claim:?} is not NAME=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        overrides.insert(name.to_string(), value);
    }
    let request = TokenRequest {
        profile: Some(Profile::parse(&args.profile)?),
        audience: Some(args.audience),
        ttl_seconds: Some(parse_ttl(&args.ttl)?),
        alg: Some(SigningAlg::parse(&args.alg)?),
        issuer: args.issuer,
        repository: args.workflow.repo,
        workflow: args.workflow.workflow,
        git_ref: args.workflow.git_ref,
        sha: args.sha,
        environment: args.environment,
        email: args.email,
        claims: (!overrides.is_empty()).then_some(overrides),
        ..TokenRequest::default()
    };
    let token = issuer.mint(&request)?;
    if args.show_claims {
        eprintln!("{}", serde_json::to_string_pretty(&decode_claims(&token)?)?);
    }
    println!("{token}");
    Ok(())
}

fn decode_claims(token: &str) -> anyhow::Result<Value> {
    Ok(sigstack_oidc::unverified_claims(token)?)
}
