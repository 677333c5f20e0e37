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
