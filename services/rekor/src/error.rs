use sigstack_fulcio::FulcioError;
use sigstack_state::StateError;

/// Everything the log can refuse or fail at. Mapped to HTTP in one place (`http.rs`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RekorError {
    /// The proposed entry is malformed.
    #[error("invalid entry: {0}")]
    InvalidEntry(String),
    /// A kind Rekor knows (or a version of one) that this log does not take.
    #[error("unsupported entry type: {0}")]
    UnsupportedType(String),
    /// A kind that is not one of Rekor's at all: its API schema refuses it before any type code
    /// runs, with 422 (go-swagger's validation), and so does this log.
    #[error("invalid kind value: {0:?} (this log takes hashedrekord, dsse and intoto)")]
    UnknownKind(String),
    /// A signature in the entry does not verify.
    #[error("signature verification failed: {0}")]
    Signature(String),
    /// The same canonical entry is already in the log.
    #[error("an equivalent entry already exists in the log with UUID {uuid}")]
    Conflict {
        /// UUID of the existing entry.
        uuid: String,
    },
    /// The same canonical entry is already in the v2 log, at this index.
    #[error("an equivalent entry already exists in the log at index {log_index}")]
    Duplicate {
        /// Index of the existing entry.
        log_index: u64,
    },
    /// No such entry.
    #[error("{0}")]
    NotFound(String),
    /// A query parameter is out of range or malformed.
    #[error("{0}")]
    InvalidQuery(String),
    /// The log could not be written (disk full, read-only state directory...): nothing was acknowledged.
    #[error("log storage unavailable: {0}")]
    Storage(String),
    /// Key material could not be loaded or stored.
    #[error("log key storage: {0}")]
    State(#[from] StateError),
    /// Not a client's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FulcioError> for RekorError {
    fn from(e: FulcioError) -> Self {
        RekorError::InvalidEntry(e.to_string())
    }
}
