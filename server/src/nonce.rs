//! Presentation nonces without server state.
//!
//! A licence attached to a submission must carry, in its key binding JWT, a
//! nonce the server issued for that submission. Rather than storing nonces
//! (a durable write per submission, and a table to prune), the nonce is
//! `expiry ‖ HMAC-SHA256(key, resident, client id, service item, expiry)`
//! truncated to 128 bits. Checking it recomputes the tag: a nonce is only
//! good for the resident, submission id and service item it was issued for,
//! until its expiry. Single use follows from idempotency: the only
//! submission that can carry it is the one with that client id, which is
//! stored once and answered with the stored receipt ever after.
//!
//! The key lives in the store (`Store::secret`), so every replica sharing
//! the database accepts every replica's nonces and a restart keeps them
//! valid.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the truncated tag.
const TAG_BYTES: usize = 16;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not a nonce this server issued for this submission.
    #[error("nonce not issued for this submission")]
    Invalid,
    /// Issued for it, but past its expiry.
    #[error("nonce expired")]
    Expired,
}

/// The HMAC key nonces are issued and checked with.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A key from 32 secret bytes; `None` for another length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    fn mac(
        &self,
        resident: &str,
        client_id: &str,
        guide_id: &str,
        expires_at: i64,
    ) -> Hmac<Sha256> {
        // Length-prefixed fields: no two different tuples give the same input.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(b"zhangban presentation nonce v1");
        for field in [resident, client_id, guide_id] {
            mac.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.update(&expires_at.to_be_bytes());
        mac
    }

    /// A nonce for this (resident, submission, service item), good until `expires_at`.
    pub fn issue(
        &self,
        resident: &str,
        client_id: &str,
        guide_id: &str,
        expires_at: i64,
    ) -> String {
        let tag = self
            .mac(resident, client_id, guide_id, expires_at)
            .finalize()
            .into_bytes();
        let mut raw = Vec::with_capacity(8 + TAG_BYTES);
        raw.extend_from_slice(&expires_at.to_be_bytes());
        raw.extend_from_slice(tag.get(..TAG_BYTES).unwrap_or_default());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce (in constant time) for this submission at `now`.
    pub fn check(
        &self,
        nonce: &str,
        resident: &str,
        client_id: &str,
        guide_id: &str,
        now: i64,
    ) -> Result<(), NonceError> {
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| NonceError::Invalid)?;
        if raw.len() != 8 + TAG_BYTES {
            return Err(NonceError::Invalid);
        }
        let (exp, tag) = raw.split_at(8);
        let exp: [u8; 8] = exp.try_into().map_err(|_| NonceError::Invalid)?;
        let expires_at = i64::from_be_bytes(exp);
        self.mac(resident, client_id, guide_id, expires_at)
            .verify_truncated_left(tag)
            .map_err(|_| NonceError::Invalid)?;
        if expires_at < now {
            return Err(NonceError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> NonceKey {
        NonceKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn bound_to_everything_it_covers() {
        let k = key(7);
        let n = k.issue("r1", "client-0001", "g1", 1000);
        assert_eq!(n.len(), 32);
        assert_eq!(k.check(&n, "r1", "client-0001", "g1", 1000), Ok(()));
        assert_eq!(
            k.check(&n, "r1", "client-0001", "g1", 1001),
            Err(NonceError::Expired)
        );
        assert_eq!(
            k.check(&n, "r2", "client-0001", "g1", 0),
            Err(NonceError::Invalid)
        );
        assert_eq!(
            k.check(&n, "r1", "client-0002", "g1", 0),
            Err(NonceError::Invalid)
        );
        assert_eq!(
            k.check(&n, "r1", "client-0001", "g2", 0),
            Err(NonceError::Invalid)
        );
        assert_eq!(
            key(8).check(&n, "r1", "client-0001", "g1", 0),
            Err(NonceError::Invalid)
        );
        // Field boundaries are unambiguous.
        let m = k.issue("r1c", "lient-0001", "g1", 1000);
        assert_ne!(m, n);
    }

    #[test]
    fn tampering_is_refused() {
        let k = key(1);
        let n = k.issue("r", "client-01", "g", 5000);
        // A later expiry with the old tag.
        let mut raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        raw[7] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            k.check(&forged, "r", "client-01", "g", 0),
            Err(NonceError::Invalid)
        );
        for bad in ["", "AAAA", "not base64 !", &n[..31], &format!("{n}A")] {
            assert_eq!(
                k.check(bad, "r", "client-01", "g", 0),
                Err(NonceError::Invalid),
                "{bad}"
            );
        }
    }
}
