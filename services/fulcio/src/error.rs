use sigstack_state::StateError;

/// Why a token was refused. Each variant names the check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts with JSON header and payload.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is `none`, HMAC, or otherwise not RS256/ES256/ES384/PS256.
    #[error("unsupported token algorithm {0:?}: only asymmetric algorithms (RS256, ES256, ...) are accepted")]
    Algorithm(String),
    /// `iss` is not a configured issuer.
    #[error("unknown issuer {0:?}: not configured in this CA")]
    UnknownIssuer(String),
    /// No key with this `kid` at the issuer.
    #[error("unknown signing key (kid {0:?}) for this issuer")]
    UnknownKey(String),
    /// The issuer's keys could not be fetched.
    #[error("cannot fetch the issuer's keys: {0}")]
    KeyFetch(String),
    /// Signature does not verify.
    #[error("token signature verification failed")]
    Signature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not yet valid ({0})")]
    NotYetValid(&'static str),
    /// `aud` does not contain the expected audience.
    #[error("token audience does not match: expected {0:?}")]
    Audience(String),
    /// A claim the issuer type requires is missing or of the wrong type.
    #[error("token lacks required claim {0:?}")]
    MissingClaim(String),
    /// Email tokens must carry `email_verified: true`.
    #[error("email address in token is not verified (email_verified must be true)")]
    EmailNotVerified,
    /// Any other validation failure.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Everything the CA can refuse or fail at. Mapped to HTTP in one place (`http.rs`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FulcioError {
    /// No token in the body or the `Authorization` header.
    #[error("no identity token: send credentials.oidcIdentityToken or Authorization: Bearer <jwt>")]
    MissingToken,
    /// The token failed verification.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The request is malformed (bad JSON shape, base64, PEM, DER...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The subject public key is of a type or size this CA does not certify.
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    /// The proof of possession does not verify with the given key.
    #[error("proof of possession failed: the signature over {0:?} does not verify with the given public key")]
    ProofOfPossession(String),
    /// The CSR's self-signature does not verify.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// Key material could not be loaded or stored.
    #[error("CA key storage: {0}")]
    State(#[from] StateError),
    /// Building or signing a certificate failed (not a client's fault).
    #[error("certificate issuance failed: {0}")]
    Internal(String),
}

impl From<der::Error> for FulcioError {
    fn from(e: der::Error) -> Self {
        FulcioError::Internal(format!("DER encoding: {e}"))
    }
}
