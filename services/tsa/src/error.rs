use sigstack_state::StateError;

/// Everything the TSA can refuse or fail at; mapped to HTTP in one place (`http.rs`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The request is malformed or asks for what this TSA does not do.
    #[error("{0}")]
    BadRequest(String),
    /// Key material could not be loaded or stored.
    #[error("TSA key storage: {0}")]
    State(#[from] StateError),
    /// Building or signing a response failed (not a client's fault).
    #[error("timestamping failed: {0}")]
    Internal(String),
}

/// Why a timestamp was refused by [`crate::verify_timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// Not a DER TimeStampResp with a granted token.
    #[error("malformed timestamp: {0}")]
    Malformed(String),
    /// The token's imprint is not of the timestamped data.
    #[error("the timestamp is for other data (message imprint mismatch)")]
    Imprint,
    /// The token is not signed by the trusted TSA (signature, signed attributes, chain).
    #[error("the timestamp is not signed by the trusted timestamp authority: {0}")]
    Signer(String),
}
