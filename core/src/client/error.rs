//! The client's rich error. The FFI maps it to a small public error (code +
//! message); messages here never carry personal data (form values, names,
//! licence contents) — only codes, ids the app already knows, and counts.

use crate::credential::Rejection;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local database failed; its kind tells busy from full from
    /// corrupt ([`StoreErrorKind`]).
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl ClientError {
    /// A store failure of kind [`StoreErrorKind::Other`] with a fixed
    /// description (never a stored value).
    pub fn store_other(what: impl Into<String>) -> Self {
        Self::Store(StoreError::other(what))
    }
}

/// What kind of store failure it was: what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// Another connection holds the database (`SQLITE_BUSY`,
    /// `SQLITE_LOCKED`): nothing changed; try again later.
    Busy,
    /// The disk (or the database's size limit) is full (`SQLITE_FULL`):
    /// nothing changed; the user must free space.
    Full,
    /// The database file is damaged or is not a database
    /// (`SQLITE_CORRUPT`, `SQLITE_NOTADB`): the reset path.
    Corrupt,
    /// A constraint refused the write (`SQLITE_CONSTRAINT`): a bug or a
    /// race; nothing changed.
    Constraint,
    /// The operating system failed a read or a write (`SQLITE_IOERR`,
    /// `SQLITE_CANTOPEN`, a file's mode): may pass; try again later.
    Io,
    /// Anything else: a stored row that does not decode, a schema newer
    /// than this app, a poisoned lock.
    Other,
}

impl StoreErrorKind {
    /// The stable code: `busy`, `full`, `corrupt`, `constraint`, `io`, `other`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Full => "full",
            Self::Corrupt => "corrupt",
            Self::Constraint => "constraint",
            Self::Io => "io",
            Self::Other => "other",
        }
    }

    /// Whether the same operation may succeed later without anyone acting
    /// on the store (busy, I/O).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Busy | Self::Io)
    }

    /// Classifies an SQLite failure once, by its primary result code.
    pub fn of_sqlite(e: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => Self::Busy,
            Some(C::DiskFull) => Self::Full,
            Some(C::DatabaseCorrupt | C::NotADatabase) => Self::Corrupt,
            Some(C::ConstraintViolation) => Self::Constraint,
            Some(C::SystemIoFailure | C::CannotOpen) => Self::Io,
            _ => Self::Other,
        }
    }
}

/// A failure of the phone's store: its [`StoreErrorKind`], a fixed
/// description of what failed (no stored value, no personal data) and the
/// underlying error as the [`std::error::Error::source`] (for logs on the
/// device; the FFI never shows it).
#[derive(Debug, thiserror::Error)]
#[error("local store ({}): {what}", .kind.code())]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// What failed, in fixed words.
    pub what: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A failure of kind `kind` described by `what`.
    pub fn new(kind: StoreErrorKind, what: impl Into<String>) -> Self {
        Self {
            kind,
            what: what.into(),
            source: None,
        }
    }

    /// A failure of kind [`StoreErrorKind::Other`].
    pub fn other(what: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Other, what)
    }

    /// A failure of a file operation (creating the store, setting a mode).
    pub fn io(what: &str, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::StorageFull => StoreErrorKind::Full,
            _ => StoreErrorKind::Io,
        };
        Self {
            kind,
            what: format!("{what}: {}", e.kind()),
            source: Some(Box::new(e)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = StoreErrorKind::of_sqlite(&e);
        // SQLite's own words (e.g. "database is locked", a constraint's
        // column names) carry no values; bound parameters never show.
        let what = match &e {
            rusqlite::Error::SqliteFailure(f, _) => format!("sqlite {:?}", f.code),
            rusqlite::Error::QueryReturnedNoRows => "no row".to_owned(),
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => {
                "a stored value has the wrong type".to_owned()
            }
            _ => "sqlite".to_owned(),
        };
        Self {
            kind,
            what,
            source: Some(Box::new(e)),
        }
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<crate::search::SearchError> for ClientError {
    fn from(e: crate::search::SearchError) -> Self {
        match e {
            crate::search::SearchError::Index(e) => Self::Store(e.into()),
        }
    }
}

impl From<serde_json::Error> for ClientError {
    fn from(e: serde_json::Error) -> Self {
        // A stored JSON row that does not decode (serde's message may quote
        // the value, so only its category is kept).
        Self::Store(StoreError {
            kind: StoreErrorKind::Other,
            what: format!("stored json: {:?}", e.classify()),
            source: None,
        })
    }
}

/// Result alias.
pub type ClientResult<T> = Result<T, ClientError>;
