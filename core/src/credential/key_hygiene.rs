//! Key hygiene: refuses Ed25519 public keys that decode to a curve point but
//! must never be trusted — the identity, the other points of small order
//! (eight in all, under several encodings), and non-canonical encodings
//! (a `y` coordinate ≥ p, or a sign bit set where `x` is 0).
//!
//! A small-order key lets anyone forge signatures that verify under the
//! cofactored equation, and its "holder" can be everyone; a non-canonical
//! encoding gives one point two thumbprints (two device ids, two `kid`s).
//! `verify_strict` already refuses signatures under small-order keys, but a
//! key that can never sign must also never be enrolled, listed in a trust
//! bundle or held as an issuer key: it would use up an activation, get
//! licence copies issued, or sit in a bundle as a trap.

use ed25519_dalek::VerifyingKey;

/// Why a public key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    /// The identity point (`y = 1`): every signature equation holds for it.
    #[error("the public key is the identity point")]
    Identity,
    /// A point of small order (1, 2, 4 or 8), e.g. all-zero bytes.
    #[error("the public key is a point of small order")]
    SmallOrder,
    /// The bytes are not the canonical encoding of their point.
    #[error("the public key is not canonically encoded")]
    NonCanonical,
}

impl WeakKey {
    /// A stable code for error responses and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Identity => "identity_key",
            Self::SmallOrder => "small_order_key",
            Self::NonCanonical => "non_canonical_key",
        }
    }
}

/// The canonical encoding of the identity point.
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// Checks an Ed25519 public key: refuses the identity, points of small
/// order and non-canonical encodings.
pub fn check_ed25519(key: &VerifyingKey) -> Result<(), WeakKey> {
    let bytes = key.to_bytes();
    let point = key.to_edwards();
    let canonical = point.compress().to_bytes();
    if canonical == IDENTITY {
        return Err(if bytes == IDENTITY {
            WeakKey::Identity
        } else {
            WeakKey::NonCanonical
        });
    }
    if key.is_weak() {
        return Err(WeakKey::SmallOrder);
    }
    if canonical != bytes {
        return Err(WeakKey::NonCanonical);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn key(bytes: [u8; 32]) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&bytes).ok()
    }

    /// `p + k` in little-endian, for `k` in 0..=18 (still below 2^255).
    fn p_plus(k: u8) -> [u8; 32] {
        let mut b = [0xffu8; 32];
        b[31] = 0x7f;
        // p = 2^255 - 19: low byte 0xed.
        b[0] = 0xed + k;
        b
    }

    #[test]
    fn a_generated_key_passes() {
        let seed = 12;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..64 {
            let k = ed25519_dalek::SigningKey::generate(&mut rng).verifying_key();
            assert_eq!(check_ed25519(&k), Ok(()), "seed {seed}");
        }
    }

    #[test]
    fn the_zero_key_is_small_order() {
        let k = key([0u8; 32]).expect("all-zero bytes decode to a point");
        assert_eq!(check_ed25519(&k), Err(WeakKey::SmallOrder));
    }

    #[test]
    fn the_identity_is_refused() {
        let k = key(IDENTITY).expect("the identity decodes");
        assert_eq!(check_ed25519(&k), Err(WeakKey::Identity));
    }

    #[test]
    fn every_small_order_encoding_is_refused() {
        // y = -1 (order 2), and the identity with the sign bit set.
        let mut minus_one = p_plus(0);
        minus_one[0] -= 1;
        let mut identity_neg = IDENTITY;
        identity_neg[31] |= 0x80;
        // The order-8 points (from the ed25519-dalek / Zcash test vectors).
        let order8 = [
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        ];
        let mut refused = 0;
        for bytes in [minus_one, identity_neg]
            .into_iter()
            .chain(order8.iter().map(|h| {
                let v: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                v.try_into().unwrap()
            }))
        {
            if let Some(k) = key(bytes) {
                assert!(check_ed25519(&k).is_err(), "{bytes:02x?}");
                refused += 1;
            }
        }
        assert_eq!(refused, 4, "every vector decodes and is refused");
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // y = p + k encodes the same point as y = k; some of those points
        // are of large order, so only the canonicity check catches them.
        let mut large_order = 0;
        for k in 0..=18u8 {
            let Some(vk) = key(p_plus(k)) else { continue };
            let got = check_ed25519(&vk);
            assert!(got.is_err(), "y = p + {k} accepted");
            if !vk.is_weak() {
                assert_eq!(got, Err(WeakKey::NonCanonical), "y = p + {k}");
                large_order += 1;
            }
        }
        assert!(large_order > 0, "no non-canonical large-order vector found");
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(WeakKey::SmallOrder.code(), "small_order_key");
        assert_eq!(WeakKey::Identity.code(), "identity_key");
        assert_eq!(WeakKey::NonCanonical.code(), "non_canonical_key");
    }
}
