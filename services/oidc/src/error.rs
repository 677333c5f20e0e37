use sigstack_state::StateError;

/// Everything the issuer can refuse or fail at. Mapped to HTTP in one place (`http.rs`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The token request is malformed or asks for something impossible.
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// The ambient-credentials endpoint was called without the right bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// Key material could not be loaded or stored.
    #[error("key storage: {0}")]
    State(#[from] StateError),
    /// Signing failed inside the crypto library (not a client's fault).
    #[error("signing failed: {0}")]
    Signing(String),
    /// A token whose claims cannot be read: not three base64url parts with a JSON payload.
    #[error("not a JWT: {0}")]
    NotAJwt(&'static str),
}
