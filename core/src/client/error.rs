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
    /// The personal data in the store cannot be opened now: the data key is
    /// missing or wrong (the canary says which), or the app's key store
    /// failed. Nothing was changed; the catalog and search still work.
    #[error("data key: {}", .0.code())]
    DataKey(DataKeyFault),
    /// A sealed value failed to open although the data key is right: the
    /// store is corrupted (or was tampered with) there. Carries the table.
    #[error("sealed {0} is corrupted")]
    Corrupted(String),
}

/// Why the personal data is locked (see [`ClientError::DataKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKeyFault {
    /// The store is sealed but the app's key store has no key (or can no
    /// longer unwrap it): the sealed data is lost unless the key comes back;
    /// [`super::Client::reset_personal_data`] starts again.
    Missing,
    /// The app's key store gave a key that does not open the canary: another
    /// store's key, or a restored backup of the wrong device.
    WrongKey,
    /// The user did not authenticate: try again ([`super::Client::unlock`]).
    NotAuthorised,
    /// The app's key store failed (its reason, no personal data): try again.
    KeyStore(String),
}

impl DataKeyFault {
    /// The stable code: `missing`, `wrong_key`, `not_authorised`, `key_store`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::WrongKey => "wrong_key",
            Self::NotAuthorised => "not_authorised",
            Self::KeyStore(_) => "key_store",
        }
    }
}

impl From<super::data_key::DataKeyError> for DataKeyFault {
    fn from(e: super::data_key::DataKeyError) -> Self {
        match e {
            super::data_key::DataKeyError::Unavailable => Self::Missing,
            super::data_key::DataKeyError::NotAuthorised => Self::NotAuthorised,
            super::data_key::DataKeyError::Failure(m) => Self::KeyStore(m),
        }
    }
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
