//! The holder keystore across the FFI: a foreign trait the app implements
//! over its platform keystore (Android Keystore with StrongBox or TEE; the
//! iOS Secure Enclave), forwarded to core's [`CoreKeystore`].
//!
//! Every method is async and returns a `Result`: a platform exception
//! becomes a [`KeystoreError`] (an unexpected one, through uniffi's
//! `UnexpectedUniFFICallbackError`, becomes `Failure`), never a panic. What
//! comes back is checked by core before use (a signature by another key, or
//! DER where raw `r‖s` is required, is refused).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use zhangban_core::client::keystore::{
    HolderKeystore as CoreKeystore, KeystoreFuture, SoftwareKeystore as CoreSoftwareKeystore,
};
use zhangban_core::credential::SignError;

/// Why the app's keystore could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeystoreError {
    /// The key is gone (wiped, invalidated by a new biometric enrolment,
    /// never made): the device must re-enrol.
    #[error("the holder key is not available")]
    KeyUnavailable,
    /// The user did not authenticate (cancelled, locked out).
    #[error("the user did not authorise the signature")]
    NotAuthorised,
    /// Any other keystore failure, with the platform's reason (no personal data).
    #[error("keystore failure: {reason}")]
    Failure {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeystoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failure { reason: e.reason }
    }
}

impl From<KeystoreError> for SignError {
    fn from(e: KeystoreError) -> Self {
        match e {
            KeystoreError::KeyUnavailable => Self::KeyUnavailable,
            KeystoreError::NotAuthorised => Self::NotAuthorised,
            KeystoreError::Failure { reason } => Self::Keystore(reason),
        }
    }
}

impl From<SignError> for KeystoreError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::KeyUnavailable => Self::KeyUnavailable,
            SignError::NotAuthorised => Self::NotAuthorised,
            other => Self::Failure {
                reason: other.to_string(),
            },
        }
    }
}

/// The app's keystore for the device (holder) key: P-256, ideally in
/// secure hardware. The core names keys by alias and never sees a private key.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait HolderKeystore: Send + Sync {
    /// Creates a P-256 key under `alias` (or returns the existing one's) and
    /// returns its public JWK as JSON text: `{"kty":"EC","crv":"P-256","x":…,"y":…}`.
    async fn create_key(&self, alias: String) -> Result<String, KeystoreError>;
    /// Signs `message` with the key under `alias`: ECDSA P-256 with SHA-256,
    /// returned as raw `r‖s` (64 bytes; convert from DER).
    async fn sign(&self, alias: String, message: Vec<u8>) -> Result<Vec<u8>, KeystoreError>;
    /// Deletes the key under `alias` (no error if there is none).
    async fn delete_key(&self, alias: String) -> Result<(), KeystoreError>;
}

/// Core's view of the app's keystore.
pub(crate) struct ForeignKeystore(pub(crate) Arc<dyn HolderKeystore>);

impl fmt::Debug for ForeignKeystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignKeystore")
    }
}

impl CoreKeystore for ForeignKeystore {
    fn create_key(&self, alias: String) -> KeystoreFuture<'_, String> {
        Box::pin(async move { self.0.create_key(alias).await.map_err(SignError::from) })
    }
    fn sign(&self, alias: String, message: Vec<u8>) -> KeystoreFuture<'_, Vec<u8>> {
        Box::pin(async move { self.0.sign(alias, message).await.map_err(SignError::from) })
    }
    fn delete_key(&self, alias: String) -> KeystoreFuture<'_, ()> {
        Box::pin(async move { self.0.delete_key(alias).await.map_err(SignError::from) })
    }
}

/// The NON-HARDWARE fallback keystore: P-256 keys in files (0600, in a 0700
/// directory) at `dir`. For tests and tools only; an app passes its platform
/// keystore implementation instead.
#[derive(Debug, uniffi::Object)]
pub struct SoftwareKeystore {
    inner: CoreSoftwareKeystore,
}

#[uniffi::export]
impl SoftwareKeystore {
    /// Opens (creating it 0700) the key directory `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>, KeystoreError> {
        Ok(Arc::new(Self {
            inner: CoreSoftwareKeystore::open(Path::new(&dir))?,
        }))
    }
}

#[async_trait::async_trait]
impl HolderKeystore for SoftwareKeystore {
    async fn create_key(&self, alias: String) -> Result<String, KeystoreError> {
        Ok(CoreKeystore::create_key(&self.inner, alias).await?)
    }
    async fn sign(&self, alias: String, message: Vec<u8>) -> Result<Vec<u8>, KeystoreError> {
        Ok(CoreKeystore::sign(&self.inner, alias, message).await?)
    }
    async fn delete_key(&self, alias: String) -> Result<(), KeystoreError> {
        Ok(CoreKeystore::delete_key(&self.inner, alias).await?)
    }
}
