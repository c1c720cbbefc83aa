//! The device's identity and its short-lived server token.
//!
//! The device key lives in the app's [`HolderKeystore`] (secure hardware on
//! a phone); the store keeps only its public JWK, its alias and where it
//! lives. A store written before hardware keys kept an Ed25519 private JWK
//! in meta `device_key`: opening it moves that key into the software
//! keystore's file beside the store and deletes the row ([`migrate_legacy_key`]).
//! Tokens live in memory only: each is obtained by signing a one-time
//! server challenge, and a new one is fetched shortly before expiry or
//! after a 401.

use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;

use super::api::{ApiFailure, ServerApi};
use super::error::{ClientError, ClientResult};
use super::keystore::{
    HOLDER_KEY_ALIAS, HolderKeystore, LEGACY_KEY_ALIAS, SoftwareKeystore, sign_checked,
};
use super::store::ClientStore;
use crate::credential::jose::b64e;
use crate::credential::{HolderKey, HolderSigner, SoftwareHolderKey};

/// The meta row of stores written before hardware keys: a private JWK.
const LEGACY_KEY_META: &str = "device_key";
const PUBLIC_KEY_META: &str = "device_public_jwk";
const ALIAS_META: &str = "device_key_alias";
const HOME_META: &str = "device_key_home";
const DEVICE_META: &str = "device_id";
const RESIDENT_META: &str = "resident_id";
/// A token is renewed this long before it expires.
const RENEW_MARGIN_SECS: i64 = 60;

/// Where the device's private key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHome {
    /// The app's keystore (secure hardware on a phone).
    App,
    /// The software keystore beside the store: an Ed25519 key migrated from
    /// a store written before hardware keys, until the device re-enrols.
    LegacySoftware,
}

impl KeyHome {
    fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::LegacySoftware => "legacy-software",
        }
    }
}

/// The enrolled device.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    /// Its public key (the licences' `cnf`).
    pub key: HolderKey,
    /// The key's alias in its keystore.
    pub alias: String,
    /// Which keystore holds the private key.
    pub home: KeyHome,
    /// Its id (the key's thumbprint).
    pub device_id: String,
    /// The resident it belongs to.
    pub resident_id: String,
}

/// The message a device signs for a token (the server's `challenge_message`).
pub fn challenge_message(challenge_id: &str, nonce: &str) -> String {
    format!("zhangban-auth-v1.{challenge_id}.{nonce}")
}

/// The software keystore directory of the store at `store_path`: `<store>.keys`.
pub fn legacy_key_dir(store_path: &Path) -> std::path::PathBuf {
    let mut name = store_path.file_name().unwrap_or_default().to_os_string();
    name.push(".keys");
    store_path.with_file_name(name)
}

impl ClientStore {
    /// The enrolled device, if any.
    pub fn device(&self) -> ClientResult<Option<DeviceIdentity>> {
        let (Some(jwk), Some(alias), Some(home), Some(device_id), Some(resident_id)) = (
            self.meta(PUBLIC_KEY_META)?,
            self.meta(ALIAS_META)?,
            self.meta(HOME_META)?,
            self.meta(DEVICE_META)?,
            self.meta(RESIDENT_META)?,
        ) else {
            return Ok(None);
        };
        let jwk: Value = serde_json::from_str(&jwk)?;
        let key = HolderKey::from_jwk(&jwk)
            .map_err(|e| ClientError::store_other(format!("device key: {e}")))?;
        let home = match home.as_str() {
            "app" => KeyHome::App,
            "legacy-software" => KeyHome::LegacySoftware,
            _ => return Err(ClientError::store_other("device key: unknown keystore")),
        };
        Ok(Some(DeviceIdentity {
            key,
            alias,
            home,
            device_id,
            resident_id,
        }))
    }

    /// Records the enrolled device (public key and alias only).
    pub fn set_device(&self, d: &DeviceIdentity) -> ClientResult<()> {
        let jwk = d.key.to_jwk().to_string();
        self.tx(|tx| {
            tx.execute("DELETE FROM meta WHERE key = ?1", [LEGACY_KEY_META])?;
            super::store::set_meta_in(tx, PUBLIC_KEY_META, &jwk)?;
            super::store::set_meta_in(tx, ALIAS_META, &d.alias)?;
            super::store::set_meta_in(tx, HOME_META, d.home.as_str())?;
            super::store::set_meta_in(tx, DEVICE_META, &d.device_id)?;
            super::store::set_meta_in(tx, RESIDENT_META, &d.resident_id)
        })
    }

    /// Whether the store still holds a private key row (written before
    /// hardware keys, not yet migrated).
    pub fn has_legacy_private_key(&self) -> ClientResult<bool> {
        Ok(self.meta(LEGACY_KEY_META)?.is_some())
    }
}

/// Moves a private key kept in the store (meta `device_key`, written before
/// hardware keys) into the software keystore `keys`, then, in one
/// transaction, records its public JWK and deletes the row. Idempotent: a
/// crash between the two steps finds the same key already in the file.
/// Returns whether a key was moved.
pub fn migrate_legacy_key(store: &ClientStore, keys: &SoftwareKeystore) -> ClientResult<bool> {
    let Some(text) = store.meta(LEGACY_KEY_META)? else {
        return Ok(false);
    };
    let jwk: Value = serde_json::from_str(&text)?;
    let key = SoftwareHolderKey::from_private_jwk(&jwk)
        .map_err(|e| ClientError::store_other(format!("device key: {e}")))?;
    match keys.get(LEGACY_KEY_ALIAS).map_err(ClientError::Keystore)? {
        Some(existing) if existing.holder_key() == key.holder_key() => {}
        Some(_) => {
            return Err(ClientError::store_other(
                "device key: another key is already in the legacy key file",
            ));
        }
        None => keys
            .put(LEGACY_KEY_ALIAS, &key)
            .map_err(ClientError::Keystore)?,
    }
    let public = key.holder_key();
    let (Some(device_id), Some(resident_id)) =
        (store.meta(DEVICE_META)?, store.meta(RESIDENT_META)?)
    else {
        return Err(ClientError::store_other("device key without an enrolment"));
    };
    store.set_device(&DeviceIdentity {
        key: public,
        alias: LEGACY_KEY_ALIAS.into(),
        home: KeyHome::LegacySoftware,
        device_id,
        resident_id,
    })?;
    // The deleted row's bytes must not survive in free pages or the WAL.
    store.scrub()?;
    Ok(true)
}

/// The device a re-enrolment replaces, and the keystore that holds its
/// key: the old key signs the re-enrolment so the server retires it.
#[derive(Clone, Copy, Debug)]
pub struct Replacing<'a> {
    /// The enrolled device being replaced.
    pub device: &'a DeviceIdentity,
    /// The keystore holding its private key.
    pub keystore: &'a dyn HolderKeystore,
}

/// Enrols the device with an activation code. A device already enrolled
/// enrols its key again (idempotent on the server); otherwise `keystore`
/// creates a new key under `alias` first. With `replaces`, the old key signs
/// [`crate::credential::reenrolment_message`] and the server retires the
/// old device in the same transaction (ADR 0125).
pub async fn enrol(
    store: &ClientStore,
    api: &ServerApi,
    keystore: &dyn HolderKeystore,
    activation_code: &str,
    fresh_alias: Option<&str>,
    replaces: Option<Replacing<'_>>,
) -> ClientResult<DeviceIdentity> {
    let (key, alias, home) = match (store.device()?, fresh_alias) {
        (Some(d), None) => (d.key, d.alias, d.home),
        (_, alias) => {
            let alias = alias.unwrap_or(HOLDER_KEY_ALIAS).to_owned();
            let jwk = keystore
                .create_key(alias.clone())
                .await
                .map_err(ClientError::Keystore)?;
            let jwk: Value = serde_json::from_str(&jwk).map_err(|_| {
                ClientError::Keystore(crate::credential::SignError::Keystore(
                    "the keystore returned a public key that is not JSON".into(),
                ))
            })?;
            let key = HolderKey::from_jwk(&jwk).map_err(|e| {
                ClientError::Keystore(crate::credential::SignError::Keystore(format!(
                    "the keystore returned an unusable public key: {e}"
                )))
            })?;
            (key, alias, KeyHome::App)
        }
    };
    let proof = match replaces {
        Some(old) => {
            let message =
                crate::credential::reenrolment_message(&old.device.device_id, &key.thumbprint());
            let sig = sign_checked(
                old.keystore,
                &old.device.alias,
                &old.device.key,
                message.as_bytes(),
            )
            .await
            .map_err(ClientError::Keystore)?;
            Some((old.device.device_id.clone(), b64e(sig)))
        }
        None => None,
    };
    let out = api
        .enrol(activation_code, &key.to_jwk(), proof.as_ref())
        .await
        .map_err(failure)?;
    if out.device_id != key.thumbprint() {
        return Err(ClientError::Protocol(
            "server enrolled another device id".into(),
        ));
    }
    let d = DeviceIdentity {
        key,
        alias,
        home,
        device_id: out.device_id,
        resident_id: out.resident_id,
    };
    store.set_device(&d)?;
    Ok(d)
}

/// A token cache for one device.
#[derive(Debug, Default)]
pub struct Session {
    token: Mutex<Option<(String, i64)>>,
}

impl Session {
    /// A valid token, fetching a new one if needed.
    pub async fn token(
        &self,
        api: &ServerApi,
        device: &DeviceIdentity,
        keystore: &dyn HolderKeystore,
        now: i64,
    ) -> Result<String, ApiFailure> {
        if let Ok(guard) = self.token.lock() {
            if let Some((t, exp)) = guard.as_ref() {
                if *exp - RENEW_MARGIN_SECS > now {
                    return Ok(t.clone());
                }
            }
        }
        let c = api.challenge(&device.device_id).await?;
        let message = challenge_message(&c.challenge_id, &c.nonce);
        let sig = sign_checked(keystore, &device.alias, &device.key, message.as_bytes())
            .await
            .map_err(|e| ApiFailure::Keystore(e.to_string()))?;
        let t = api
            .token(&device.device_id, &c.challenge_id, &b64e(sig))
            .await?;
        if let Ok(mut guard) = self.token.lock() {
            *guard = Some((t.token.clone(), t.expires_at));
        }
        Ok(t.token)
    }

    /// Forgets the token (after a 401).
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.token.lock() {
            *guard = None;
        }
    }
}

/// Maps a transport failure to the client error.
pub fn failure(f: ApiFailure) -> ClientError {
    match f {
        ApiFailure::Network(m) => ClientError::Network(m),
        ApiFailure::Http {
            status,
            code,
            message,
            ..
        } => ClientError::Server {
            status,
            code,
            message,
        },
        ApiFailure::Decode(m) => ClientError::Protocol(m),
        ApiFailure::Keystore(m) => ClientError::Keystore(crate::credential::SignError::Keystore(m)),
    }
}
