//! The client's rich error. The FFI maps it to a small public error (code +
//! message); messages here never carry personal data (form values, names,
//! licence contents) — only codes, ids the app already knows, and counts.

use crate::credential::Rejection;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local database failed.
    #[error("local store: {0}")]
    Store(String),
    /// The server could not be reached (offline, timeout, connection cut).
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("server refused ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
        /// Its message (no personal data by the server's contract).
        message: String,
    },
    /// The server sent something that does not hold together (bad checksum,
    /// malformed page): nothing of it was applied.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Trust data or a licence did not verify.
    #[error("verification failed: {}", .0.code())]
    Verification(Rejection),
    /// The device is not enrolled yet.
    #[error("device not enrolled")]
    NotEnrolled,
    /// No such item (guide, draft, licence, outbox entry).
    #[error("not found: {0}")]
    NotFound(String),
    /// The form does not validate (the same validator the server runs):
    /// every field error, with stable codes and no values.
    #[error("the form has {} error(s)", .0.len())]
    Form(Vec<crate::guide::FieldError>),
    /// The draft was already submitted (under `client_id`): it is locked,
    /// and the change was not saved or sent. Correct a rejected submission
    /// with `Client::correct`; start a new application from a new draft.
    #[error("the draft was already submitted as {client_id}: it is locked")]
    DraftSubmitted {
        /// The submission's client id (a random id the app already knows).
        client_id: String,
    },
    /// The caller's input is not acceptable (e.g. a form that does not validate).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The device key could not sign or be created (the app's keystore
    /// failed, the key is gone, or the user did not authorise).
    #[error("holder keystore: {0}")]
    Keystore(crate::credential::SignError),
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<crate::search::SearchError> for ClientError {
    fn from(e: crate::search::SearchError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<serde_json::Error> for ClientError {
    fn from(e: serde_json::Error) -> Self {
        Self::Store(format!("json: {e}"))
    }
}

/// Result alias.
pub type ClientResult<T> = Result<T, ClientError>;
