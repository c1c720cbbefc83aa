//! Where the data key lives: a [`DataKeyStore`] that the app implements
//! over its platform keystore, in the manner of application-services'
//! `KeyManager`. The core makes the key (32 random bytes) and hands it over
//! once; the app keeps it wrapped by a key that never leaves secure
//! hardware (Android Keystore AES-GCM, the iOS Keychain with
//! `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`) and gives it back
//! when the core opens the store (ADR 0141).
//!
//! Shaped like [`super::keystore::HolderKeystore`]: asynchronous (an
//! unwrap may wait for the user to authenticate), a boxed future, every
//! call fallible and never a panic.
//!
//! [`SoftwareDataKeyStore`] is the NON-HARDWARE fallback: the key in a file
//! (0600) in the software keystore's 0700 directory beside the store
//! (`<store>.keys/`), for the CLI, tests and inspector devices (which keep
//! no personal data). Whoever copies that directory with the store reads the
//! store: a phone app passes its platform implementation instead.

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use zeroize::Zeroize as _;

/// Why the app's key store could not give or keep the data key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataKeyError {
    /// The key store cannot unwrap the key any more (its wrapping key was
    /// invalidated or wiped): the data sealed under it is lost.
    #[error("the data key is not available")]
    Unavailable,
    /// The user did not authenticate (cancelled, locked out): try again.
    #[error("the user did not authorise the data key")]
    NotAuthorised,
    /// Any other failure, with the platform's reason (no personal data).
    #[error("data key store: {0}")]
    Failure(String),
}

/// What a key store call returns: a boxed, sendable future.
pub type DataKeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DataKeyError>> + Send + 'a>>;

/// The app's keeper of the data key.
pub trait DataKeyStore: Send + Sync + Debug {
    /// The data key kept before (32 bytes), or `None` if none was ever kept.
    fn load_key(&self) -> DataKeyFuture<'_, Option<Vec<u8>>>;
    /// Keeps `key` (wrapping it), replacing any key kept before. Called once
    /// when a store is first sealed, and again only by the recovery path
    /// ([`super::Client::reset_personal_data`]).
    fn store_key(&self, key: Vec<u8>) -> DataKeyFuture<'_, ()>;
}

/// The file name of the software data key in the key directory.
pub const SOFTWARE_DATA_KEY_FILE: &str = "data-key.software-fallback";

/// The non-hardware fallback: the data key in a file (0600) in a 0700
/// directory. Only for the CLI, tests and inspector devices.
#[derive(Debug, Clone)]
pub struct SoftwareDataKeyStore {
    dir: PathBuf,
}

fn io(e: std::io::Error) -> DataKeyError {
    DataKeyError::Failure(format!("software data key: {}", e.kind()))
}

impl SoftwareDataKeyStore {
    /// Opens (creating it 0700) the key directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, DataKeyError> {
        super::files::private_dir(dir).map_err(io)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The software key directory beside the store at `store_path`
    /// (`<store>.keys/`, shared with the software holder keys).
    pub fn beside(store_path: &Path) -> Result<Self, DataKeyError> {
        Self::open(&super::session::legacy_key_dir(store_path))
    }

    /// The key file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(SOFTWARE_DATA_KEY_FILE)
    }

    fn load_sync(&self) -> Result<Option<Vec<u8>>, DataKeyError> {
        match std::fs::read(self.path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn store_sync(&self, mut key: Vec<u8>) -> Result<(), DataKeyError> {
        // A new file (0600, synced), then renamed over the old one: a crash
        // leaves either key whole, never half of one.
        let fresh = self.dir.join(format!("{SOFTWARE_DATA_KEY_FILE}.new"));
        let _ = std::fs::remove_file(&fresh);
        let written = super::files::write_secret(&fresh, &key);
        key.zeroize();
        written.map_err(io)?;
        std::fs::rename(&fresh, self.path()).map_err(io)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl DataKeyStore for SoftwareDataKeyStore {
    fn load_key(&self) -> DataKeyFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move { self.load_sync() })
    }
    fn store_key(&self, key: Vec<u8>) -> DataKeyFuture<'_, ()> {
        Box::pin(async move { self.store_sync(key) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_software_key_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SoftwareDataKeyStore::open(&dir.path().join("k")).unwrap();
        assert_eq!(keys.load_key().await.unwrap(), None);
        keys.store_key(vec![1; 32]).await.unwrap();
        assert_eq!(keys.load_key().await.unwrap(), Some(vec![1; 32]));
        keys.store_key(vec![2; 32]).await.unwrap();
        assert_eq!(keys.load_key().await.unwrap(), Some(vec![2; 32]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&keys.path()), 0o600);
            assert_eq!(mode(&dir.path().join("k")), 0o700);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(SOFTWARE_DATA_KEY_FILE)]
        );
    }
}
