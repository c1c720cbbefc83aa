//! Issuing a licence as an SD-JWT VC: every licence field becomes a
//! selectively disclosable claim with a fresh 128-bit salt, decoy digests hide
//! how many fields there are, and the always-visible claims are `iss`, `iat`,
//! `nbf`, `exp`, `vct`, `cnf` (the holder device key) and `status`.

use rand::{CryptoRng, RngCore};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::claims::{self, ClaimsError};
use super::holder_key::HolderKey;
use super::jose::{b64e, header, sign_compact};
use super::keys::KeyPair;
use super::licence_id::LicenceId;
use super::sd_jwt::{Disclosure, SD_ALG, TYP_SD_JWT_VC};

/// Where a licence's status lives: index `idx` of the list at `uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReference {
    /// The status list URI (`sub` of its token).
    pub uri: String,
    /// The licence's index in it.
    pub idx: u64,
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct LicenceRequest {
    /// The licence type (`vct`); it must be one the trust bundle lets this issuer issue.
    pub vct: String,
    /// The licence fields (GB/T 36903 metadata and face fields), all disclosable.
    pub claims: BTreeMap<String, Value>,
    /// The holder device's public key (`cnf.jwk`).
    pub holder: HolderKey,
    /// The status list entry.
    pub status: StatusReference,
    /// The issuing body's code (ZZBFJGDM) as the trust bundle lists it for
    /// this issuer: the licence identifier must name it.
    pub issuer_code: String,
}

/// Why a licence could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The claims are not a valid licence.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// `vct` is empty.
    #[error("vct must not be empty")]
    EmptyType,
    /// The licence's validity has already ended at issue time.
    #[error("the licence's validity ends before it is issued")]
    AlreadyExpired,
    /// The holder key is a small-order (weak) point: a signature under it
    /// proves nothing about a device, so such a licence would bind to no one.
    #[error("the holder key is a weak (small-order) key")]
    WeakHolderKey,
}

/// A licence issuer: an id (`iss`) and its signing key.
#[derive(Debug, Clone)]
pub struct Issuer {
    id: String,
    key: KeyPair,
}

impl Issuer {
    /// An issuer with its bundle id and key.
    pub fn new(id: impl Into<String>, key: KeyPair) -> Self {
        Self { id: id.into(), key }
    }

    /// The `iss` value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The signing key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// Issues a licence at `now`. The result is the SD-JWT with every
    /// disclosure, ending in `~`, as the holder's wallet stores it.
    pub fn issue<R: RngCore + CryptoRng>(
        &self,
        request: &LicenceRequest,
        now: i64,
        rng: &mut R,
    ) -> Result<String, IssueError> {
        if request.vct.trim().is_empty() {
            return Err(IssueError::EmptyType);
        }
        let validity = claims::validate(&request.claims)?;
        let id: LicenceId = request
            .claims
            .get("licence_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .parse()
            .map_err(ClaimsError::from)?;
        claims::check_identity(&id, &request.vct, &request.issuer_code)?;
        // A P-256 holder key was checked when parsed (on the curve, not the
        // identity); an Ed25519 one must not be a weak point.
        if let super::holder_key::HolderKey::Ed25519(k) = &request.holder {
            if k.verifying_key().is_weak() {
                return Err(IssueError::WeakHolderKey);
            }
        }
        if validity.expires.is_some_and(|exp| exp < now) {
            return Err(IssueError::AlreadyExpired);
        }

        let mut disclosures = Vec::with_capacity(request.claims.len());
        let mut digests = Vec::with_capacity(request.claims.len() + 4);
        for (name, value) in &request.claims {
            let d = Disclosure::new(random_b64(rng), name.clone(), value.clone());
            digests.push(d.digest());
            disclosures.push(d);
        }
        // Decoys: pad to a multiple of four (5 to 8 fields all show 8
        // digests), so the number of fields is hidden within a bucket of
        // four. (Padding "above" the count would hide no more, and cost the
        // QR code four digests for a typical licence.)
        let decoys = (4 - (digests.len() % 4)) % 4;
        for _ in 0..decoys {
            digests.push(b64e(sha2_of_random(rng)));
        }
        digests.sort_unstable();

        let mut payload = Map::new();
        payload.insert("iss".into(), json!(self.id));
        payload.insert("iat".into(), json!(now));
        payload.insert("nbf".into(), json!(validity.not_before.unwrap_or(now)));
        if let Some(exp) = validity.expires {
            payload.insert("exp".into(), json!(exp));
        }
        payload.insert("vct".into(), json!(request.vct));
        payload.insert("cnf".into(), json!({"jwk": request.holder.to_jwk()}));
        payload.insert(
            "status".into(),
            json!({"status_list": {"idx": request.status.idx, "uri": request.status.uri}}),
        );
        payload.insert("_sd_alg".into(), json!(SD_ALG));
        payload.insert("_sd".into(), json!(digests));

        let jwt = sign_compact(
            header(TYP_SD_JWT_VC, Some(&self.key.kid())),
            &Value::Object(payload),
            self.key.signing_key(),
        );
        let mut out = jwt;
        out.push('~');
        for d in &disclosures {
            out.push_str(&d.encoded);
            out.push('~');
        }
        Ok(out)
    }
}

/// A fresh 128-bit salt, base64url.
fn random_b64<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    b64e(salt)
}

/// A decoy digest: SHA-256 over fresh random bytes, as RFC 9901 §4.2.5 suggests.
fn sha2_of_random<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; 32] {
    use sha2::Digest as _;
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    sha2::Sha256::digest(seed).into()
}
