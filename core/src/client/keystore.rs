//! Where the holder device key lives: a [`HolderKeystore`] that the app
//! implements over the platform keystore (Android Keystore with StrongBox
//! or TEE, the iOS Secure Enclave, HarmonyOS HUKS). The core never sees the
//! private key: it asks the keystore to create a key (and gets its public
//! JWK), and to sign a message (and gets a raw signature).
//!
//! The shape follows SpruceKit's `KeyStore`/`SigningKey` (a key named by
//! an alias, a public JWK, `sign(payload) -> bytes`) and the NL wallet's
//! `SigningKeyBridge` (one bridge object for every key, every call fallible,
//! the core checking what comes back). Differences: calls are async (a
//! keystore may ask the user to authenticate), and the signature comes back
//! in the JWS form (raw `r‖s`), which the app converts from DER; the core
//! still checks every signature against the key before using it.
//!
//! [`SoftwareKeystore`] is the non-hardware fallback: P-256 keys in files
//! (0600, in a 0700 directory, never in the database) for the CLI, tests,
//! and the migration of Ed25519 keys enrolled before hardware keys (ADR 0122).

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde_json::Value;

use crate::credential::SignError;
use crate::credential::holder_key::{HolderKey, HolderSigner, P256KeyPair, SoftwareHolderKey};

/// What a keystore call returns: a boxed, sendable future (the shape that
/// both `async-trait` and uniffi's foreign async traits produce).
pub type KeystoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SignError>> + Send + 'a>>;

/// The app's keystore for holder keys. Every method is fallible and
/// asynchronous; an implementation never panics on a platform failure but
/// returns a [`SignError`].
pub trait HolderKeystore: Send + Sync + Debug {
    /// Creates a new P-256 key under `alias` (replacing none: an existing
    /// alias is an error or returns the existing key's public JWK) and
    /// returns its public JWK (`{"kty":"EC","crv":"P-256","x":…,"y":…}`).
    fn create_key(&self, alias: String) -> KeystoreFuture<'_, String>;
    /// Signs `message` with the key under `alias`: ES256, raw `r‖s`
    /// (64 bytes; an implementation over a DER-producing API converts).
    fn sign(&self, alias: String, message: Vec<u8>) -> KeystoreFuture<'_, Vec<u8>>;
    /// Deletes the key under `alias` (no error if there is none).
    fn delete_key(&self, alias: String) -> KeystoreFuture<'_, ()>;
}

/// The alias prefix of keys the core creates in the app's keystore.
pub const HOLDER_KEY_ALIAS: &str = "zhangban-holder";
/// The alias, in the software keystore, of an Ed25519 key migrated out of
/// a store written before hardware keys.
pub const LEGACY_KEY_ALIAS: &str = "legacy-ed25519-device";

/// The non-hardware fallback keystore: keys as private JWK files in a
/// directory of their own. Only for the CLI, tests, and legacy keys moved
/// out of the database; a phone app passes its platform keystore instead.
#[derive(Debug, Clone)]
pub struct SoftwareKeystore {
    dir: PathBuf,
}

fn io(e: std::io::Error) -> SignError {
    SignError::Keystore(format!("software keystore: {}", e.kind()))
}

fn check_alias(alias: &str) -> Result<(), SignError> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SignError::Keystore("invalid key alias".into()))
    }
}

impl SoftwareKeystore {
    /// Opens (creating it 0700) the key directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, SignError> {
        crate::client::files::private_dir(dir).map_err(io)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The software keystore beside the store at `store_path`
    /// (`<store>.keys/`), for the CLI and tests.
    pub fn beside(store_path: &Path) -> Result<Self, SignError> {
        Self::open(&crate::client::session::legacy_key_dir(store_path))
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, alias: &str) -> Result<PathBuf, SignError> {
        check_alias(alias)?;
        Ok(self.dir.join(format!("{alias}.jwk")))
    }

    /// Stores `key` under `alias` (a new file, 0600); refuses to overwrite.
    pub fn put(&self, alias: &str, key: &SoftwareHolderKey) -> Result<(), SignError> {
        let path = self.path(alias)?;
        let text = key.to_private_jwk().to_string();
        crate::client::files::write_secret(&path, text.as_bytes()).map_err(io)
    }

    /// The key under `alias`, if there is one.
    pub fn get(&self, alias: &str) -> Result<Option<SoftwareHolderKey>, SignError> {
        let path = self.path(alias)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let jwk: Value = serde_json::from_str(&text)
            .map_err(|_| SignError::Keystore("software keystore: unreadable key file".into()))?;
        SoftwareHolderKey::from_private_jwk(&jwk)
            .map(Some)
            .map_err(|_| SignError::Keystore("software keystore: invalid key file".into()))
    }

    /// Whether a key exists under `alias`.
    pub fn contains(&self, alias: &str) -> Result<bool, SignError> {
        Ok(self.path(alias)?.exists())
    }

    fn create_sync(&self, alias: &str) -> Result<String, SignError> {
        if let Some(existing) = self.get(alias)? {
            return Ok(existing.holder_key().to_jwk().to_string());
        }
        let key = SoftwareHolderKey::P256(P256KeyPair::generate(&mut rand::rngs::OsRng));
        self.put(alias, &key)?;
        Ok(key.holder_key().to_jwk().to_string())
    }

    fn sign_sync(&self, alias: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.get(alias)?
            .ok_or(SignError::KeyUnavailable)?
            .sign_raw(message)
    }

    fn delete_sync(&self, alias: &str) -> Result<(), SignError> {
        match std::fs::remove_file(self.path(alias)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

impl HolderKeystore for SoftwareKeystore {
    fn create_key(&self, alias: String) -> KeystoreFuture<'_, String> {
        Box::pin(async move { self.create_sync(&alias) })
    }
    fn sign(&self, alias: String, message: Vec<u8>) -> KeystoreFuture<'_, Vec<u8>> {
        Box::pin(async move { self.sign_sync(&alias, &message) })
    }
    fn delete_key(&self, alias: String) -> KeystoreFuture<'_, ()> {
        Box::pin(async move { self.delete_sync(&alias) })
    }
}

/// The keystore of a device that never holds a holder key (an inspector
/// device): every call fails with [`SignError::KeyUnavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeystore;

impl HolderKeystore for NoKeystore {
    fn create_key(&self, _alias: String) -> KeystoreFuture<'_, String> {
        Box::pin(async { Err(SignError::KeyUnavailable) })
    }
    fn sign(&self, _alias: String, _message: Vec<u8>) -> KeystoreFuture<'_, Vec<u8>> {
        Box::pin(async { Err(SignError::KeyUnavailable) })
    }
    fn delete_key(&self, _alias: String) -> KeystoreFuture<'_, ()> {
        Box::pin(async { Err(SignError::KeyUnavailable) })
    }
}

/// Signs `message` with the device key through `keystore` and checks the
/// result: 64 bytes, low-S for ES256, and a valid signature by `key` (a
/// keystore that signed with another key, or returned DER, is caught here).
pub async fn sign_checked(
    keystore: &dyn HolderKeystore,
    alias: &str,
    key: &HolderKey,
    message: &[u8],
) -> Result<Vec<u8>, SignError> {
    let raw = keystore.sign(alias.to_owned(), message.to_vec()).await?;
    let sig = crate::credential::holder_key::normalise_raw(key, raw)?;
    if key.verify(message, &sig) {
        Ok(sig)
    } else {
        Err(SignError::MalformedSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn software_keystore_creates_signs_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let ks = SoftwareKeystore::open(&dir.path().join("keys")).unwrap();
        let jwk = ks.create_key("a".into()).await.unwrap();
        let key = HolderKey::from_jwk(&serde_json::from_str(&jwk).unwrap()).unwrap();
        assert_eq!(key.alg(), "ES256");
        let again = ks.create_key("a".into()).await.unwrap();
        assert_eq!(jwk, again, "create is idempotent per alias");
        let sig = sign_checked(&ks, "a", &key, b"m").await.unwrap();
        assert!(key.verify(b"m", &sig));
        assert_eq!(
            ks.sign("../a".into(), b"m".to_vec()).await.unwrap_err(),
            SignError::Keystore("invalid key alias".into())
        );
        ks.delete_key("a".into()).await.unwrap();
        assert_eq!(
            ks.sign("a".into(), b"m".to_vec()).await.unwrap_err(),
            SignError::KeyUnavailable
        );
    }
}
