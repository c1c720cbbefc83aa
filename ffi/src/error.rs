//! The one public error: small, with stable variants, and free of personal
//! data (core's messages that may echo values are dropped here).

use zhangban_core::client::{ClientError, DataKeyFault, StoreErrorKind};

/// Why the resident's personal data is locked (see [`ZhangbanError::DataKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DataKeyProblem {
    /// The store is sealed but the app's key store has no key (or can no
    /// longer unwrap it): the data is lost unless the key comes back;
    /// `resetPersonalData` starts again.
    Missing,
    /// The key store gave a key that does not open this store.
    WrongKey,
    /// The user did not authenticate: `unlock` tries again.
    NotAuthorised,
    /// The key store failed: `unlock` tries again.
    KeyStore,
}

/// A form field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldProblem {
    /// The field's name (from the guide's form schema).
    pub field: String,
    /// The stable code (`required`, `pattern`, `out_of_range` …).
    pub code: String,
}

impl From<zhangban_core::guide::FieldError> for FieldProblem {
    fn from(f: zhangban_core::guide::FieldError) -> Self {
        Self {
            code: f.code.code().to_owned(),
            field: f.field,
        }
    }
}

/// Why a call failed. Each variant is a stable code; Kotlin sees
/// `ZhangbanException.Network` …, Swift `ZhangbanError.network` ….
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ZhangbanError {
    /// The server could not be reached (the call may be retried later).
    #[error("network unavailable")]
    Network,
    /// The server refused the request with a stable code.
    #[error("server refused: {status} {code}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
    },
    /// The device has not been enrolled yet.
    #[error("device not enrolled")]
    NotEnrolled,
    /// No such guide, licence or outbox entry on this device.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for (a kind and, for a guide, its public id).
        what: String,
    },
    /// The form has errors; nothing was queued.
    #[error("the form has {} error(s)", fields.len())]
    InvalidForm {
        /// The fields and why.
        fields: Vec<FieldProblem>,
    },
    /// A licence or trust data failed verification.
    #[error("verification failed: {code}")]
    Verification {
        /// The rejection's stable code.
        code: String,
    },
    /// The local store failed for a reason that may pass (busy with
    /// another write, an I/O error, …): nothing changed; try again later.
    #[error("local store error")]
    Store,
    /// The device's storage is full: nothing changed; the user must free
    /// space, then try again (ADR 0204).
    #[error("local storage full")]
    StorageFull,
    /// The server's answer could not be understood.
    #[error("protocol error")]
    Protocol,
    /// The draft was already submitted: it is locked and the change was
    /// not saved (correct a rejected submission with `correct`; a new
    /// application starts from a new draft id).
    #[error("the draft was already submitted as {client_id}")]
    DraftSubmitted {
        /// The submission it became.
        client_id: String,
    },
    /// An argument was not acceptable (a bad JWK, no field chosen …).
    #[error("invalid input: {reason}")]
    Invalid {
        /// Why (core's fixed text; never a submitted value).
        reason: String,
    },
    /// The device key could not be made or could not sign (the app's
    /// keystore failed, the key is gone, or the user did not authorise).
    #[error("holder keystore: {reason}")]
    Keystore {
        /// `key_unavailable`, `not_authorised`, or the keystore's reason.
        reason: String,
    },
    /// The resident's personal data is locked: the data key is missing or
    /// wrong, or the app's key store failed. Nothing was changed; the
    /// catalog and search still work.
    #[error("personal data locked: {problem:?}")]
    DataKey {
        /// Which of the cases; apps switch on it.
        problem: DataKeyProblem,
    },
    /// The store is corrupted: a sealed value does not open under the right
    /// key, or the database file itself is damaged (not a key problem).
    /// `resetPersonalData` is the way out (ADR 0204).
    #[error("local store corrupted")]
    Corrupted,
    /// The library itself failed (its runtime could not start, a task died).
    #[error("internal error")]
    Internal,
}

impl From<ClientError> for ZhangbanError {
    fn from(e: ClientError) -> Self {
        match e {
            // The one place a store failure's kind becomes what an app
            // does: full → free space, corrupt → the reset path, any other
            // kind → try again later (ADR 0204).
            ClientError::Store(e) => match e.kind {
                StoreErrorKind::Full => Self::StorageFull,
                StoreErrorKind::Corrupt => Self::Corrupted,
                StoreErrorKind::Busy
                | StoreErrorKind::Io
                | StoreErrorKind::Constraint
                | StoreErrorKind::Other => Self::Store,
            },
            ClientError::Network(_) => Self::Network,
            ClientError::Server { status, code, .. } => Self::Server { status, code },
            ClientError::Protocol(_) => Self::Protocol,
            ClientError::Verification(r) => Self::Verification { code: r.code() },
            ClientError::NotEnrolled => Self::NotEnrolled,
            ClientError::NotFound(what) => Self::NotFound { what },
            ClientError::Form(fields) => Self::InvalidForm {
                fields: fields.into_iter().map(Into::into).collect(),
            },
            ClientError::DraftSubmitted { client_id } => Self::DraftSubmitted { client_id },
            ClientError::Invalid(reason) => Self::Invalid { reason },
            ClientError::DataKey(fault) => Self::DataKey {
                problem: match fault {
                    DataKeyFault::Missing => DataKeyProblem::Missing,
                    DataKeyFault::WrongKey => DataKeyProblem::WrongKey,
                    DataKeyFault::NotAuthorised => DataKeyProblem::NotAuthorised,
                    DataKeyFault::KeyStore(_) => DataKeyProblem::KeyStore,
                },
            },
            ClientError::Corrupted(_) => Self::Corrupted,
            ClientError::Keystore(e) => Self::Keystore {
                reason: match e {
                    zhangban_core::credential::SignError::KeyUnavailable => {
                        "key_unavailable".into()
                    }
                    zhangban_core::credential::SignError::NotAuthorised => "not_authorised".into(),
                    other => other.to_string(),
                },
            },
        }
    }
}

impl From<serde_json::Error> for ZhangbanError {
    fn from(_: serde_json::Error) -> Self {
        Self::Invalid {
            reason: "not valid JSON of the expected shape".into(),
        }
    }
}

/// What an observer or logger the app implements may throw. The library
/// catches it (and any other exception the app's code throws, which uniffi
/// turns into [`ObserverError::Unexpected`]), logs that an observer failed
/// without the exception's text, and carries on: the work that was being
/// reported is never undone and the observer stays registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ObserverError {
    /// The observer reported a failure of its own.
    #[error("the observer failed")]
    Failed {
        /// The app's own text (never logged by the library).
        reason: String,
    },
    /// The observer threw an exception it did not declare.
    #[error("the observer threw")]
    Unexpected {
        /// The exception as the foreign side described it (never logged).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ObserverError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unexpected { reason: e.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhangban_core::client::StoreError;

    #[test]
    fn a_store_failure_maps_by_its_kind_and_says_nothing_more() {
        let of =
            |kind| ZhangbanError::from(ClientError::Store(StoreError::new(kind, "the wallet")));
        assert_eq!(of(StoreErrorKind::Full), ZhangbanError::StorageFull);
        assert_eq!(of(StoreErrorKind::Corrupt), ZhangbanError::Corrupted);
        for kind in [
            StoreErrorKind::Busy,
            StoreErrorKind::Io,
            StoreErrorKind::Constraint,
            StoreErrorKind::Other,
        ] {
            assert_eq!(of(kind), ZhangbanError::Store, "{kind:?}");
        }
        assert_eq!(of(StoreErrorKind::Busy).to_string(), "local store error");
    }
}
