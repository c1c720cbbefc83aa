//! IETF Token Status List: a bit array (2 bits per licence here), zlib
//! compressed, carried in a `statuslist+jwt` signed by the licence's issuer
//! and cached by verifiers so that revocation works offline.
//!
//! Bit layout (draft-ietf-oauth-status-list §4.1): status `i` occupies bits
//! `(i * bits) % 8 ..` of byte `(i * bits) / 8`, least significant bits first.

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use super::jose::{CompactJws, b64d, b64e, header, int_claim, sign_compact, str_claim};
use super::keys::KeyPair;
use super::rejection::{Part, Rejection};
use super::trust_bundle::TrustBundle;

/// `typ` of a status list token.
pub const TYP_STATUS_LIST: &str = "statuslist+jwt";
/// Bits per status in lists we build.
pub const BITS: u8 = 2;
/// The largest decompressed list a verifier accepts (16 MiB = 64 Mi licences
/// at 2 bits): a guard against decompression bombs.
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
/// How long a list without `exp` may be used after its `iat`, by default.
pub const DEFAULT_MAX_AGE_SECS: i64 = 3 * 24 * 3600;

/// A licence's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0x00 VALID.
    Valid,
    /// 0x01 INVALID: revoked for good.
    Revoked,
    /// 0x02 SUSPENDED: temporarily not valid.
    Suspended,
}

impl Status {
    fn bits(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::Revoked => 1,
            Self::Suspended => 2,
        }
    }
}

/// Why a status list could not be built or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    /// `bits` is not 1, 2, 4 or 8.
    #[error("bits must be 1, 2, 4 or 8")]
    Bits,
    /// The index is beyond the list.
    #[error("index {0} is beyond the list")]
    OutOfRange(u64),
    /// The status needs more bits than the list has.
    #[error("status does not fit in the list's bits")]
    DoesNotFit,
}

/// A status bit array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl StatusList {
    /// An all-VALID list with room for `capacity` licences at 2 bits each.
    pub fn new(capacity: u64) -> Self {
        let bytes = capacity.saturating_mul(u64::from(BITS)).div_ceil(8);
        Self {
            bits: BITS,
            bytes: vec![0; usize::try_from(bytes).unwrap_or(MAX_LIST_BYTES)],
        }
    }

    /// A list over raw bytes.
    pub fn from_bytes(bits: u8, bytes: Vec<u8>) -> Result<Self, StatusListError> {
        if ![1, 2, 4, 8].contains(&bits) {
            return Err(StatusListError::Bits);
        }
        Ok(Self { bits, bytes })
    }

    /// Bits per status.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// How many statuses the list holds.
    pub fn len(&self) -> u64 {
        (self.bytes.len() as u64) * 8 / u64::from(self.bits)
    }

    /// Whether the list holds no status at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn locate(&self, index: u64) -> Option<(usize, u32, u8)> {
        if index >= self.len() {
            return None;
        }
        let bit = index * u64::from(self.bits);
        let byte = usize::try_from(bit / 8).ok()?;
        let shift = u32::try_from(bit % 8).ok()?;
        let mask = u8::try_from((1u16 << self.bits) - 1).ok()?;
        Some((byte, shift, mask))
    }

    /// The raw status value at `index`, or `None` beyond the list.
    pub fn get(&self, index: u64) -> Option<u8> {
        let (byte, shift, mask) = self.locate(index)?;
        self.bytes.get(byte).map(|b| (b >> shift) & mask)
    }

    /// Sets the status at `index`.
    pub fn set(&mut self, index: u64, status: Status) -> Result<(), StatusListError> {
        let (byte, shift, mask) = self
            .locate(index)
            .ok_or(StatusListError::OutOfRange(index))?;
        let value = status.bits();
        if value > mask {
            return Err(StatusListError::DoesNotFit);
        }
        let slot = self
            .bytes
            .get_mut(byte)
            .ok_or(StatusListError::OutOfRange(index))?;
        *slot = (*slot & !(mask << shift)) | (value << shift);
        Ok(())
    }

    /// `{"bits": 2, "lst": base64url(zlib(bytes))}`.
    pub fn to_json(&self) -> Value {
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::best());
        // Writing into a Vec cannot fail.
        let compressed = enc
            .write_all(&self.bytes)
            .and_then(|()| enc.finish())
            .unwrap_or_default();
        json!({"bits": self.bits, "lst": b64e(compressed)})
    }

    /// Reads `{"bits", "lst"}`, refusing bad encodings and lists that
    /// decompress beyond [`MAX_LIST_BYTES`].
    pub fn from_json(value: &Value) -> Result<Self, Rejection> {
        let bits = value
            .get("bits")
            .and_then(Value::as_u64)
            .and_then(|b| u8::try_from(b).ok())
            .ok_or(Rejection::StatusListMalformed)?;
        let lst = value
            .get("lst")
            .and_then(Value::as_str)
            .ok_or(Rejection::StatusListMalformed)?;
        let compressed = b64d(lst, Part::StatusList)?;
        let mut bytes = Vec::new();
        let limit = (MAX_LIST_BYTES as u64) + 1;
        ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| Rejection::StatusListMalformed)?;
        if bytes.len() > MAX_LIST_BYTES {
            return Err(Rejection::StatusListMalformed);
        }
        Self::from_bytes(bits, bytes).map_err(|_| Rejection::StatusListMalformed)
    }
}

/// What an issuer puts in a status list token.
#[derive(Debug, Clone)]
pub struct StatusListToken<'a> {
    /// The list's URI (`sub`), as licences reference it.
    pub uri: &'a str,
    /// The list.
    pub list: &'a StatusList,
    /// Issue time.
    pub iat: i64,
    /// Hard expiry after which verifiers must not use it.
    pub exp: Option<i64>,
    /// Suggested refresh interval in seconds.
    pub ttl: Option<i64>,
}

impl StatusListToken<'_> {
    /// Signs the token with the issuer's key (`kid` = its thumbprint).
    pub fn sign(&self, key: &KeyPair) -> String {
        let mut payload =
            json!({"sub": self.uri, "iat": self.iat, "status_list": self.list.to_json()});
        if let Some(exp) = self.exp {
            payload["exp"] = json!(exp);
        }
        if let Some(ttl) = self.ttl {
            payload["ttl"] = json!(ttl);
        }
        sign_compact(
            header(TYP_STATUS_LIST, Some(&key.kid())),
            &payload,
            key.signing_key(),
        )
    }
}

/// A status list whose token was verified against the trust bundle.
#[derive(Debug, Clone)]
pub struct VerifiedStatusList {
    /// `sub`: the URI licences reference.
    pub uri: String,
    /// The issuer (bundle id) that signed it.
    pub issuer_id: String,
    /// When it was issued.
    pub iat: i64,
    /// When it stops being usable.
    pub exp: Option<i64>,
    /// Suggested refresh interval.
    pub ttl: Option<i64>,
    /// The statuses.
    pub list: StatusList,
    /// The token as received, for storage.
    pub token: String,
    /// End of the signing key's window in the bundle: after it the key is
    /// retired, and a list it signed says nothing about the present.
    pub key_not_after: i64,
}

impl VerifiedStatusList {
    /// Verifies a status list token: strict JWS, `kid` of a key in the
    /// bundle, signature, `sub` listed for that issuer, well-formed list.
    /// Freshness is judged at use, with the verifier's clock.
    pub fn verify(token: &str, bundle: &TrustBundle) -> Result<Self, Rejection> {
        let jws = CompactJws::parse(token, TYP_STATUS_LIST, Part::StatusList)?;
        let kid = jws.kid().ok_or(Rejection::StatusListSignature)?;
        let (issuer, key) = bundle
            .key_by_kid(kid)
            .ok_or(Rejection::StatusListSignature)?;
        if !jws.verify(&key.key) {
            return Err(Rejection::StatusListSignature);
        }
        let uri = str_claim(&jws.payload, "sub")?;
        if !issuer.status_lists.iter().any(|u| u == uri) {
            return Err(Rejection::StatusListIssuerMismatch);
        }
        let iat = int_claim(&jws.payload, "iat")?.ok_or(Rejection::MissingClaim("iat"))?;
        if iat < key.not_before || iat > key.not_after {
            return Err(Rejection::StatusListKeyOutsideWindow);
        }
        let exp = int_claim(&jws.payload, "exp")?;
        let ttl = int_claim(&jws.payload, "ttl")?;
        let list = StatusList::from_json(
            jws.payload
                .get("status_list")
                .ok_or(Rejection::MissingClaim("status_list"))?,
        )?;
        Ok(Self {
            uri: uri.to_owned(),
            issuer_id: issuer.id.clone(),
            iat,
            exp,
            ttl,
            list,
            token: token.to_owned(),
            key_not_after: key.not_after,
        })
    }

    /// Whether the list may be used at `now`: not dated in the future
    /// (beyond `skew`), signed by a key not yet retired, and fresh
    /// ([`Self::is_fresh`]). The typed reason says which.
    pub fn check_usable(&self, now: i64, skew: i64, max_age: i64) -> Result<(), Rejection> {
        if self.iat > now.saturating_add(skew) {
            return Err(Rejection::StatusListFromFuture);
        }
        if now > self.key_not_after.saturating_add(skew) {
            return Err(Rejection::StatusListKeyOutsideWindow);
        }
        if !self.is_fresh(now, skew, max_age) {
            return Err(Rejection::StatusListStale);
        }
        Ok(())
    }

    /// Whether the list may still be used at `now` (with `skew` and, for
    /// lists without `exp`, `max_age`).
    pub fn is_fresh(&self, now: i64, skew: i64, max_age: i64) -> bool {
        match self.exp {
            Some(exp) => now <= exp.saturating_add(skew),
            None => now <= self.iat.saturating_add(max_age).saturating_add(skew),
        }
    }
}

/// The most lists with one `iat` a cache keeps for one URI (distinct
/// tokens an issuer signed within one second).
pub const MAX_SAME_IAT: usize = 8;

/// The verifier's offline cache of verified status lists, keyed by URI.
///
/// Rules (ADR 0101):
/// - a strictly older list never replaces a newer one (no rollback);
/// - with the time known ([`Self::insert_token_at`]), a list dated in the
///   future beyond the skew is refused, and a cached one that is in the
///   future is replaced by any present-dated list, so a list signed with a
///   wrong clock cannot pin the cache;
/// - two lists with the same `iat` and different contents are both kept
///   (up to [`MAX_SAME_IAT`]) and a licence's status is the most severe any
///   of them gives (revoked over suspended over valid): an issuer that
///   revokes and republishes within one second is not ignored, and no
///   argument or arrival order can un-revoke a licence.
#[derive(Debug, Clone, Default)]
pub struct StatusListCache {
    lists: HashMap<String, Vec<VerifiedStatusList>>,
}

impl StatusListCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies and stores a token (see the type's rules). Returns whether
    /// it was stored. Without the time, a future-dated list is stored and
    /// refused at use ([`VerifiedStatusList::check_usable`]); prefer
    /// [`Self::insert_token_at`] where the time is known.
    pub fn insert_token(&mut self, token: &str, bundle: &TrustBundle) -> Result<bool, Rejection> {
        let list = VerifiedStatusList::verify(token, bundle)?;
        Ok(self.insert(list))
    }

    /// Verifies and stores a token at `now`: a list whose `iat` is beyond
    /// `now + skew` is refused ([`Rejection::StatusListFromFuture`]), and a
    /// cached future-dated list gives way to this one.
    pub fn insert_token_at(
        &mut self,
        token: &str,
        bundle: &TrustBundle,
        now: i64,
        skew: i64,
    ) -> Result<bool, Rejection> {
        let list = VerifiedStatusList::verify(token, bundle)?;
        if list.iat > now.saturating_add(skew) {
            return Err(Rejection::StatusListFromFuture);
        }
        let cached_future = self
            .lists
            .get(&list.uri)
            .and_then(|group| group.first())
            .is_some_and(|held| held.iat > now.saturating_add(skew));
        if cached_future {
            self.lists.remove(&list.uri);
        }
        Ok(self.insert(list))
    }

    /// Stores a verified list unless a strictly newer one for its URI is
    /// present; a same-`iat` list with other content joins the group (the
    /// identical token is a no-op).
    pub fn insert(&mut self, list: VerifiedStatusList) -> bool {
        let group = self.lists.entry(list.uri.clone()).or_default();
        match group.first().map(|held| held.iat) {
            Some(iat) if iat > list.iat => false,
            Some(iat) if iat == list.iat => {
                if group.iter().any(|held| held.token == list.token) || group.len() >= MAX_SAME_IAT
                {
                    return false;
                }
                group.push(list);
                true
            }
            _ => {
                *group = vec![list];
                true
            }
        }
    }

    /// The (first) newest list for a URI.
    pub fn get(&self, uri: &str) -> Option<&VerifiedStatusList> {
        self.lists.get(uri).and_then(|group| group.first())
    }

    /// Every newest list for a URI (more than one when an issuer signed
    /// different lists with the same `iat`).
    pub fn get_all(&self, uri: &str) -> &[VerifiedStatusList] {
        self.lists.get(uri).map_or(&[], Vec::as_slice)
    }

    /// All lists.
    pub fn iter(&self) -> impl Iterator<Item = &VerifiedStatusList> {
        self.lists.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// draft-ietf-oauth-status-list §4.1 examples (1-bit and 2-bit lists).
    #[test]
    fn draft_examples_decode() {
        let one = StatusList::from_json(&json!({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})).unwrap();
        assert_eq!(one.as_bytes(), &[0xb9, 0xa3]);
        let expected1 = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        for (i, v) in expected1.iter().enumerate() {
            assert_eq!(one.get(i as u64), Some(*v), "index {i}");
        }
        assert_eq!(one.get(16), None);
        let two = StatusList::from_json(&json!({"bits": 2, "lst": "eNo76fITAAPfAgc"})).unwrap();
        let expected2 = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        for (i, v) in expected2.iter().enumerate() {
            assert_eq!(two.get(i as u64), Some(*v), "index {i}");
        }
    }

    #[test]
    fn set_get_round_trip_through_json() {
        let mut list = StatusList::new(1000);
        assert_eq!(list.len(), 1000);
        list.set(3, Status::Revoked).unwrap();
        list.set(4, Status::Suspended).unwrap();
        list.set(999, Status::Revoked).unwrap();
        list.set(4, Status::Valid).unwrap();
        list.set(4, Status::Suspended).unwrap();
        assert_eq!(
            list.set(1000, Status::Revoked),
            Err(StatusListError::OutOfRange(1000))
        );
        let back = StatusList::from_json(&list.to_json()).unwrap();
        assert_eq!(back, list);
        assert_eq!(back.get(3), Some(1));
        assert_eq!(back.get(4), Some(2));
        assert_eq!(back.get(5), Some(0));
        assert_eq!(back.get(999), Some(1));
    }

    #[test]
    fn decompression_bomb_is_refused() {
        let zeros = vec![0u8; MAX_LIST_BYTES + 1];
        let bomb = StatusList::from_bytes(8, zeros).unwrap().to_json();
        assert_eq!(
            StatusList::from_json(&bomb),
            Err(Rejection::StatusListMalformed)
        );
        assert_eq!(
            StatusList::from_json(&json!({"bits": 3, "lst": "eNrbuRgAAhcBXQ"})),
            Err(Rejection::StatusListMalformed)
        );
        assert_eq!(
            StatusList::from_json(&json!({"bits": 2, "lst": b64e(b"not zlib")})),
            Err(Rejection::StatusListMalformed)
        );
    }
}
