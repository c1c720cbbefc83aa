//! The device's identity and its short-lived server token.
//!
//! The device key is made at enrolment and kept in the store. (On a phone
//! the platform keystore is the better home; the FFI can move it there
//! behind the same calls.) Tokens live in memory only: each is obtained by
//! signing a one-time server challenge, and a new one is fetched shortly
//! before expiry or after a 401.

use std::sync::Mutex;

use ed25519_dalek::Signer as _;
use serde_json::Value;

use super::api::{ApiFailure, ServerApi};
use super::error::{ClientError, ClientResult};
use super::store::ClientStore;
use crate::credential::KeyPair;
use crate::credential::jose::b64e;

const KEY_META: &str = "device_key";
const DEVICE_META: &str = "device_id";
const RESIDENT_META: &str = "resident_id";
/// A token is renewed this long before it expires.
const RENEW_MARGIN_SECS: i64 = 60;

/// The enrolled device.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    /// Its key.
    pub key: KeyPair,
    /// Its id (the key's thumbprint).
    pub device_id: String,
    /// The resident it belongs to.
    pub resident_id: String,
}

/// The message a device signs for a token (the server's `challenge_message`).
pub fn challenge_message(challenge_id: &str, nonce: &str) -> String {
    format!("zhangban-auth-v1.{challenge_id}.{nonce}")
}

impl ClientStore {
    /// The enrolled device, if any.
    pub fn device(&self) -> ClientResult<Option<DeviceIdentity>> {
        let (Some(jwk), Some(device_id), Some(resident_id)) = (
            self.meta(KEY_META)?,
            self.meta(DEVICE_META)?,
            self.meta(RESIDENT_META)?,
        ) else {
            return Ok(None);
        };
        let jwk: Value = serde_json::from_str(&jwk)?;
        let key = KeyPair::from_private_jwk(&jwk)
            .map_err(|e| ClientError::Store(format!("device key: {e}")))?;
        Ok(Some(DeviceIdentity {
            key,
            device_id,
            resident_id,
        }))
    }

    /// Records the enrolled device.
    pub fn set_device(&self, d: &DeviceIdentity) -> ClientResult<()> {
        let jwk = d.key.to_private_jwk().to_string();
        self.tx(|tx| {
            super::store::set_meta_in(tx, KEY_META, &jwk)?;
            super::store::set_meta_in(tx, DEVICE_META, &d.device_id)?;
            super::store::set_meta_in(tx, RESIDENT_META, &d.resident_id)
        })
    }
}

/// Enrols a new device key with an activation code and stores it. Enrolling
/// again with the same stored key is idempotent on the server.
pub async fn enrol(
    store: &ClientStore,
    api: &ServerApi,
    activation_code: &str,
) -> ClientResult<DeviceIdentity> {
    let key = match store.device()? {
        Some(d) => d.key,
        None => KeyPair::generate(&mut rand::rngs::OsRng),
    };
    let out = api
        .enrol(activation_code, &key.public().to_jwk())
        .await
        .map_err(failure)?;
    if out.device_id != key.public().thumbprint() {
        return Err(ClientError::Protocol(
            "server enrolled another device id".into(),
        ));
    }
    let d = DeviceIdentity {
        key,
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
        let sig = device
            .key
            .signing_key()
            .sign(challenge_message(&c.challenge_id, &c.nonce).as_bytes());
        let t = api
            .token(&device.device_id, &c.challenge_id, &b64e(sig.to_bytes()))
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
    }
}
