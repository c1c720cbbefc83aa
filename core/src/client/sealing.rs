//! Personal data sealed at rest: each personal value in the phone's store
//! (a wallet copy, a draft's body, an outbox body, an attachment …) is
//! encrypted with XChaCha20-Poly1305 under the random 256-bit data key that
//! the app keeps (see [`super::data_key`]), ADR 0140.
//!
//! A sealed value is `version (1 byte) ‖ nonce (24 random bytes) ‖
//! ciphertext with its 16-byte tag`. The associated data binds it to the
//! version, its table, its column and its row's key, so a sealed value
//! copied into another row or column does not open. A stored canary (a
//! known text sealed under the key, in meta) tells a wrong or lost key from
//! a corrupted value (ADR 0142).
//!
//! Rows that must be found by a personal value (a wallet copy by its
//! licence id) are keyed by a keyed index: HMAC-SHA256 under a key derived
//! from the data key, so the index neither reveals the value nor can be
//! computed without the key.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::{Zeroize as _, Zeroizing};

/// The format version of a sealed value (its first byte).
pub const SEAL_VERSION: u8 = 1;
/// Bytes of a data key.
pub const DATA_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// What the canary seals (public: its secrecy is not needed, only that it
/// opens under the right key).
const CANARY_TEXT: &[u8] = b"zhangban personal data key canary v1";

/// The data key: 32 random bytes, zeroized when dropped; never printed.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_BYTES]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// A key from bytes the app kept; `None` unless exactly 32 bytes. The
    /// caller's buffer is zeroized either way.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Option<Self> {
        let out = <[u8; DATA_KEY_BYTES]>::try_from(bytes.as_slice())
            .ok()
            .map(|a| Self(Zeroizing::new(a)));
        bytes.zeroize();
        out
    }

    /// The key's bytes (to hand to the app's key store, which wraps them).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short, or a version this code does not know.
    #[error("sealed value is malformed")]
    Malformed,
    /// The tag does not verify: another key, another row, or altered bytes.
    #[error("sealed value does not open")]
    Tampered,
    /// Too large to seal (beyond the AEAD's limit; never for a value the
    /// store accepts).
    #[error("value too large to seal")]
    TooLarge,
}

/// Where a sealed value lives: its table, column and row key (the
/// associated data). The row key is the row's primary key as text.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The table.
    pub table: &'a str,
    /// The column.
    pub column: &'a str,
    /// The row's key.
    pub row: &'a str,
}

impl<'a> Slot<'a> {
    /// The slot `table.column` of row `row`.
    pub fn new(table: &'a str, column: &'a str, row: &'a str) -> Self {
        Self { table, column, row }
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(32 + self.table.len() + self.column.len() + self.row.len());
        ad.extend_from_slice(b"zhangban-seal");
        ad.push(SEAL_VERSION);
        // Lengths first: no two different slots give the same bytes.
        for part in [self.table, self.column, self.row] {
            ad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

/// Seals and opens personal values under one data key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    index_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <HmacSha256 as hmac::Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl Sealer {
    /// A sealer over `key`. The AEAD uses the key itself; the keyed index
    /// uses a key derived from it (HMAC-SHA256 with a fixed label).
    pub fn new(key: &DataKey) -> Self {
        let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.0.as_ref()));
        let index_key = Zeroizing::new(hmac(key.0.as_ref(), &[b"zhangban-index-key-v1"]));
        Self { cipher, index_key }
    }

    /// Seals `plaintext` for `slot`: version ‖ 24-byte random nonce ‖ ciphertext.
    pub fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ad = slot.associated_data();
        let payload = Payload {
            msg: plaintext,
            aad: &ad,
        };
        // Encryption fails only for messages beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| OpenError::TooLarge)?;
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Seals text.
    pub fn seal_str(&self, slot: Slot<'_>, text: &str) -> Result<Vec<u8>, OpenError> {
        self.seal(slot, text.as_bytes())
    }

    /// Opens a value sealed for `slot`.
    pub fn open(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] != SEAL_VERSION {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
        let ad = slot.associated_data();
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &ad,
                },
            )
            .map_err(|_| OpenError::Tampered)
    }

    /// Opens sealed text.
    pub fn open_str(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<String, OpenError> {
        String::from_utf8(self.open(slot, sealed)?).map_err(|_| OpenError::Malformed)
    }

    /// The keyed index of `value` in `table` (64 hex digits): equal values
    /// give equal indexes under one key; without the key it says nothing.
    pub fn index(&self, table: &str, value: &str) -> String {
        hmac(
            self.index_key.as_ref(),
            &[table.as_bytes(), value.as_bytes()],
        )
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
    }

    /// A fresh canary for this key (stored in meta, base64url).
    pub fn canary(&self) -> Result<String, OpenError> {
        Ok(crate::credential::jose::b64e(
            self.seal(CANARY_SLOT, CANARY_TEXT)?,
        ))
    }

    /// Whether `stored` (a canary) opens under this key to the known text.
    pub fn canary_opens(&self, stored: &str) -> bool {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(stored)
            .ok()
            .and_then(|b| self.open(CANARY_SLOT, &b).ok())
            .is_some_and(|t| t == CANARY_TEXT)
    }
}

const CANARY_SLOT: Slot<'static> = Slot {
    table: "meta",
    column: "value",
    row: "data_key_canary",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_slot_under_its_key() {
        let key = DataKey::generate();
        let s = Sealer::new(&key);
        let slot = Slot::new("drafts", "body", "d1");
        let sealed = s
            .seal_str(slot, "{\"id_number\":\"110101199003074514\"}")
            .unwrap();
        assert_eq!(sealed[0], SEAL_VERSION);
        assert_eq!(sealed.len(), 1 + 24 + 34 + 16);
        assert_eq!(
            s.open_str(slot, &sealed).unwrap(),
            "{\"id_number\":\"110101199003074514\"}"
        );
        // Another row, column or table.
        for other in [
            Slot::new("drafts", "body", "d2"),
            Slot::new("drafts", "values", "d1"),
            Slot::new("outbox", "body", "d1"),
        ] {
            assert_eq!(s.open(other, &sealed), Err(OpenError::Tampered));
        }
        // Ambiguous concatenations are different slots.
        assert_eq!(
            s.open(Slot::new("drafts", "bodyd", "1"), &sealed),
            Err(OpenError::Tampered)
        );
        // Another key.
        let other = Sealer::new(&DataKey::generate());
        assert_eq!(other.open(slot, &sealed), Err(OpenError::Tampered));
        // Every single flipped bit, truncation, unknown version.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(s.open(slot, &bad).is_err(), "bit flip at {i} opened");
        }
        assert_eq!(s.open(slot, &sealed[..40]), Err(OpenError::Malformed));
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(s.open(slot, &v2), Err(OpenError::Malformed));
        // Two seals of the same text differ (random nonces).
        assert_ne!(
            s.seal_str(slot, "x").unwrap(),
            s.seal_str(slot, "x").unwrap()
        );
    }

    #[test]
    fn the_canary_tells_the_right_key() {
        let key = DataKey::from_bytes(vec![7; 32]).unwrap();
        let canary = Sealer::new(&key).canary().unwrap();
        assert!(Sealer::new(&DataKey::from_bytes(vec![7; 32]).unwrap()).canary_opens(&canary));
        assert!(!Sealer::new(&DataKey::from_bytes(vec![8; 32]).unwrap()).canary_opens(&canary));
        assert!(!Sealer::new(&key).canary_opens("not base64 !"));
        assert!(DataKey::from_bytes(vec![7; 31]).is_none());
        assert!(DataKey::from_bytes(vec![7; 33]).is_none());
    }

    #[test]
    fn the_keyed_index_is_stable_per_key_and_hides_the_value() {
        let a = Sealer::new(&DataKey::from_bytes(vec![1; 32]).unwrap());
        let b = Sealer::new(&DataKey::from_bytes(vec![2; 32]).unwrap());
        let id = "1.2.156.3005.2.11100000000000001.123456.0001.01.X";
        assert_eq!(a.index("wallet", id), a.index("wallet", id));
        assert_ne!(a.index("wallet", id), b.index("wallet", id));
        assert_ne!(a.index("wallet", id), a.index("other", id));
        assert_eq!(a.index("wallet", id).len(), 64);
        assert!(!a.index("wallet", id).contains("3005"));
    }
}
