//! The data key across the FFI: a foreign trait the app implements to keep
//! the key that seals the resident's personal data, wrapped by its platform
//! keystore (Android Keystore AES-GCM; the iOS Keychain, this device only),
//! forwarded to core's [`CoreDataKeyStore`].
//!
//! Every method is async and returns a `Result`: a platform exception
//! becomes a [`DataKeyStoreError`] (an unexpected one, through uniffi's
//! `UnexpectedUniFFICallbackError`, becomes `Failure`), never a panic.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use zhangban_core::client::data_key::{
    DataKeyError, DataKeyFuture, DataKeyStore as CoreDataKeyStore,
    SoftwareDataKeyStore as CoreSoftwareDataKeyStore,
};

/// Why the app's key store could not give or keep the data key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum DataKeyStoreError {
    /// The wrapped key can no longer be unwrapped (the wrapping key was
    /// invalidated or wiped): the data sealed under it is lost.
    #[error("the data key is not available")]
    Unavailable,
    /// The user did not authenticate (cancelled, locked out).
    #[error("the user did not authorise the data key")]
    NotAuthorised,
    /// Any other failure, with the platform's reason (no personal data).
    #[error("data key store failure: {reason}")]
    Failure {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for DataKeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failure { reason: e.reason }
    }
}

impl From<DataKeyStoreError> for DataKeyError {
    fn from(e: DataKeyStoreError) -> Self {
        match e {
            DataKeyStoreError::Unavailable => Self::Unavailable,
            DataKeyStoreError::NotAuthorised => Self::NotAuthorised,
            DataKeyStoreError::Failure { reason } => Self::Failure(reason),
        }
    }
}

impl From<DataKeyError> for DataKeyStoreError {
    fn from(e: DataKeyError) -> Self {
        match e {
            DataKeyError::Unavailable => Self::Unavailable,
            DataKeyError::NotAuthorised => Self::NotAuthorised,
            DataKeyError::Failure(reason) => Self::Failure { reason },
        }
    }
}

/// The app's keeper of the data key (32 bytes) that seals the resident's
/// personal data in the store. The library makes the key and hands it over
/// once; the app wraps it with a key that never leaves its platform
/// keystore and gives it back, unwrapped, when the library opens the store.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait DataKeyStore: Send + Sync {
    /// The key kept before, unwrapped; `None` if none was ever kept.
    async fn load_key(&self) -> Result<Option<Vec<u8>>, DataKeyStoreError>;
    /// Keeps `key` (wrapped), replacing any key kept before.
    async fn store_key(&self, key: Vec<u8>) -> Result<(), DataKeyStoreError>;
}

/// Core's view of the app's data key store.
pub(crate) struct ForeignDataKeys(pub(crate) Arc<dyn DataKeyStore>);

impl fmt::Debug for ForeignDataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignDataKeys")
    }
}

impl CoreDataKeyStore for ForeignDataKeys {
    fn load_key(&self) -> DataKeyFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move { self.0.load_key().await.map_err(DataKeyError::from) })
    }
    fn store_key(&self, key: Vec<u8>) -> DataKeyFuture<'_, ()> {
        Box::pin(async move { self.0.store_key(key).await.map_err(DataKeyError::from) })
    }
}

/// The NON-HARDWARE fallback: the data key in a file (0600, in a 0700
/// directory) at `dir`. For tests, tools and inspector devices only;
/// whoever copies that directory with the store reads the store. An app
/// passes its platform implementation instead.
#[derive(Debug, uniffi::Object)]
pub struct SoftwareDataKeyStore {
    inner: CoreSoftwareDataKeyStore,
}

#[uniffi::export]
impl SoftwareDataKeyStore {
    /// Opens (creating it 0700) the key directory `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>, DataKeyStoreError> {
        Ok(Arc::new(Self {
            inner: CoreSoftwareDataKeyStore::open(Path::new(&dir))?,
        }))
    }
}

#[async_trait::async_trait]
impl DataKeyStore for SoftwareDataKeyStore {
    async fn load_key(&self) -> Result<Option<Vec<u8>>, DataKeyStoreError> {
        Ok(CoreDataKeyStore::load_key(&self.inner).await?)
    }
    async fn store_key(&self, key: Vec<u8>) -> Result<(), DataKeyStoreError> {
        Ok(CoreDataKeyStore::store_key(&self.inner, key).await?)
    }
}
