//! Verifying a licence presentation, offline: strict parsing, the issuer's
//! key from the trust bundle, its window and authorization for the licence
//! type, validity with skew, every disclosure, key binding to the holder
//! device, and status from cached status lists.
//!
//! Verification never reads the clock: `now` (Unix seconds) is an argument.
//! The order of checks is fixed so that the verdict is the most useful one:
//! the verifier's own trust data first (a wrong clock makes every other
//! answer meaningless), then authenticity, then validity, then status.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

use super::claims::{
    NEVER_DISCLOSABLE, check_identity, is_valid_claim_name, type_code_of_vct, validity_edge,
};
use super::holder_key::HolderKey;
use super::issuer::StatusReference;
use super::jose::{CompactJws, int_claim, sha256_b64, str_claim};
use super::licence_id::LicenceId;
use super::rejection::{Part, Rejection};
use super::sd_jwt::{Disclosure, SD_ALG, TYP_KB_JWT, TYP_SD_JWT_VC, split};
use super::status_list::{DEFAULT_MAX_AGE_SECS, StatusListCache};
use super::trust_bundle::{DEFAULT_SKEW_SECS, TrustBundle, TrustedIssuer};

/// The `aud` of presentations shown to an inspector (亮证).
pub const AUD_INSPECTION: &str = "inspection";
/// Default freshness window for a key binding JWT, in seconds.
pub const DEFAULT_KB_MAX_AGE_SECS: i64 = 90;

/// Which nonce a key binding JWT must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoncePolicy {
    /// Exactly this nonce (one the verifier issued).
    Exact(String),
    /// Any non-empty nonce (the holder made one up; the caller keeps a replay
    /// cache of the nonces it has seen).
    Any,
}

/// Whether a key binding JWT is required, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBindingPolicy {
    /// A KB-JWT must be present, for `audience`, with a nonce per `nonce`.
    Required {
        /// Expected `aud`.
        audience: String,
        /// Expected nonce.
        nonce: NoncePolicy,
    },
    /// No KB-JWT is required (a wallet checking a licence it received, a
    /// printable presentation). One that is present is still verified
    /// (signature, `sd_hash`, time) and reported.
    NotRequired,
}

/// How strict to be. [`VerifyPolicy::inspection`] and
/// [`VerifyPolicy::wallet`] are the usual starting points.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    /// Key binding requirement.
    pub key_binding: KeyBindingPolicy,
    /// Allowed clock skew (seconds) for `iat`/`nbf`/`exp` and the bundle's issue time.
    pub skew: i64,
    /// How old a KB-JWT may be (seconds, in addition to `skew`).
    pub kb_max_age: i64,
    /// If set, the licence must be bound (`cnf`) to exactly this key.
    pub expected_holder: Option<HolderKey>,
    /// How old a status list without `exp` may be (seconds).
    pub status_max_age: i64,
    /// Whether a licence must carry a status reference (government licences
    /// must be revocable, so: yes by default).
    pub require_status: bool,
}

impl VerifyPolicy {
    /// An inspector or relying party: key binding required for `audience` with `nonce`.
    pub fn required(audience: impl Into<String>, nonce: NoncePolicy) -> Self {
        Self {
            key_binding: KeyBindingPolicy::Required {
                audience: audience.into(),
                nonce,
            },
            skew: DEFAULT_SKEW_SECS,
            kb_max_age: DEFAULT_KB_MAX_AGE_SECS,
            expected_holder: None,
            status_max_age: DEFAULT_MAX_AGE_SECS,
            require_status: true,
        }
    }

    /// An inspector: `aud` = "inspection", any fresh nonce (the caller keeps the replay cache).
    pub fn inspection() -> Self {
        Self::required(AUD_INSPECTION, NoncePolicy::Any)
    }

    /// A wallet checking a licence it received: no key binding.
    pub fn wallet() -> Self {
        Self {
            key_binding: KeyBindingPolicy::NotRequired,
            ..Self::inspection()
        }
    }
}

/// What a verified key binding said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBindingInfo {
    /// When the holder made the presentation.
    pub iat: i64,
    /// For whom.
    pub aud: String,
    /// The nonce.
    pub nonce: String,
}

/// A licence that passed every check, with only what was disclosed.
#[derive(Debug, Clone)]
pub struct VerifiedLicence {
    /// `iss`.
    pub issuer_id: String,
    /// The issuer's name from the trust bundle.
    pub issuer_name: String,
    /// The licence type.
    pub vct: String,
    /// Issue time.
    pub iat: i64,
    /// Validity start.
    pub nbf: Option<i64>,
    /// Validity end (`None`: 长期有效).
    pub exp: Option<i64>,
    /// The disclosed claims.
    pub claims: BTreeMap<String, Value>,
    /// The holder device key (`cnf`), if the licence is bound.
    pub holder: Option<HolderKey>,
    /// The key binding, if the presentation had one (`None`: unbound).
    pub key_binding: Option<KeyBindingInfo>,
    /// The status reference that was checked.
    pub status: Option<StatusReference>,
}

/// Verifies a presentation (or an issued SD-JWT) against the trust bundle and
/// cached status lists at `now`.
pub fn verify_presentation(
    text: &str,
    bundle: &TrustBundle,
    status_lists: &StatusListCache,
    policy: &VerifyPolicy,
    now: i64,
) -> Result<VerifiedLicence, Rejection> {
    let skew = policy.skew;
    let parts = split(text)?;
    bundle.check_time(now, skew)?;

    // -- authenticity of the issuer-signed JWT --
    let jws = CompactJws::parse(parts.issuer_jwt, TYP_SD_JWT_VC, Part::IssuerJwt)?;
    let kid = jws.kid().ok_or(Rejection::MissingKid)?;
    let iss = str_claim(&jws.payload, "iss")?;
    let issuer = bundle.issuer(iss).ok_or(Rejection::IssuerUnknown)?;
    let key = match bundle.key_by_kid(kid) {
        Some((owner, key)) if owner.id == issuer.id => key,
        _ => return Err(Rejection::UnknownKid),
    };
    if !jws.verify(&key.key) {
        return Err(Rejection::BadSignature);
    }
    let payload = &jws.payload;

    // -- trust: key window and type authorization --
    let iat = int_claim(payload, "iat")?.ok_or(Rejection::MissingClaim("iat"))?;
    if iat < key.not_before || iat > key.not_after {
        return Err(Rejection::IssuerKeyOutsideWindow);
    }
    let vct = str_claim(payload, "vct")?;
    if !issuer.licence_types.iter().any(|t| t == vct) {
        return Err(Rejection::IssuerNotAuthorizedForType);
    }

    // -- validity --
    let nbf = int_claim(payload, "nbf")?;
    let exp = int_claim(payload, "exp")?;
    if iat > now.saturating_add(skew) {
        return Err(Rejection::IssuedInFuture);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(Rejection::NotYetValid);
    }
    if exp.is_some_and(|exp| exp < now.saturating_sub(skew)) {
        return Err(Rejection::Expired);
    }

    // -- disclosures --
    let claims = disclose(payload, &parts.disclosures)?;
    check_disclosed_consistency(&claims, vct, issuer, nbf, exp)?;

    // -- holder binding --
    let holder = match payload.get("cnf") {
        None => None,
        Some(cnf) => Some(
            cnf.get("jwk")
                .and_then(|jwk| HolderKey::from_jwk(jwk).ok())
                .ok_or(Rejection::InvalidClaim("cnf"))?,
        ),
    };
    let key_binding = match (parts.kb_jwt, &policy.key_binding) {
        (None, KeyBindingPolicy::Required { .. }) => return Err(Rejection::KeyBindingMissing),
        (None, KeyBindingPolicy::NotRequired) => None,
        (Some(kb), kb_policy) => {
            let holder = holder.as_ref().ok_or(Rejection::HolderKeyMissing)?;
            Some(verify_key_binding(
                kb,
                holder,
                parts.sd_hash_input,
                kb_policy,
                policy,
                now,
            )?)
        }
    };
    if let Some(expected) = &policy.expected_holder {
        if holder.as_ref() != Some(expected) {
            return Err(Rejection::WrongHolder);
        }
    }

    // -- status --
    let status = status_reference(payload)?;
    match &status {
        None if policy.require_status => return Err(Rejection::MissingClaim("status")),
        None => {}
        Some(reference) => check_status(reference, &issuer.id, status_lists, policy, now)?,
    }

    Ok(VerifiedLicence {
        issuer_id: issuer.id.clone(),
        issuer_name: issuer.name.clone(),
        vct: vct.to_owned(),
        iat,
        nbf,
        exp,
        claims,
        holder,
        key_binding,
        status,
    })
}

/// Checks every disclosure against `_sd` (RFC 9901 §7.1) and returns the
/// disclosed claims.
fn disclose(
    payload: &Map<String, Value>,
    encoded: &[&str],
) -> Result<BTreeMap<String, Value>, Rejection> {
    match payload.get("_sd_alg") {
        None => {}
        Some(Value::String(alg)) if alg == SD_ALG => {}
        Some(_) => return Err(Rejection::UnsupportedDigestAlgorithm),
    }
    let mut digests = HashSet::new();
    match payload.get("_sd") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let d = item.as_str().ok_or(Rejection::InvalidClaim("_sd"))?;
                if !digests.insert(d) {
                    return Err(Rejection::DigestDuplicate);
                }
            }
        }
        Some(_) => return Err(Rejection::InvalidClaim("_sd")),
    }
    let mut seen = HashSet::new();
    let mut claims = BTreeMap::new();
    for text in encoded {
        if !seen.insert(*text) {
            return Err(Rejection::DisclosureDuplicate);
        }
        let d = Disclosure::parse(text)?;
        if !digests.contains(d.digest().as_str()) {
            return Err(Rejection::DisclosureNotReferenced);
        }
        if NEVER_DISCLOSABLE.contains(&d.name.as_str()) {
            return Err(Rejection::ReservedClaimName);
        }
        if !is_valid_claim_name(&d.name) {
            return Err(Rejection::ClaimNameInvalid);
        }
        if payload.contains_key(&d.name) || claims.contains_key(&d.name) {
            return Err(Rejection::ClaimNameConflict);
        }
        claims.insert(d.name, d.value);
    }
    Ok(claims)
}

/// Disclosed metadata must agree with what the issuer signed visibly and
/// with the bundle: a licence identifier with a wrong check character, or
/// whose type / issuer code contradicts `vct` or the bundle's issuer (whether
/// or not `licence_type_code` / `issuer_code` are disclosed too), an issuer
/// name other than the bundle's, or validity dates other than `nbf` / `exp`
/// are a forgery even from a trusted key: a person reads these fields.
fn check_disclosed_consistency(
    claims: &BTreeMap<String, Value>,
    vct: &str,
    issuer: &TrustedIssuer,
    nbf: Option<i64>,
    exp: Option<i64>,
) -> Result<(), Rejection> {
    let text = |name: &'static str| -> Result<Option<&str>, Rejection> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Rejection::InvalidClaim(name)),
        }
    };
    if let Some(s) = text("licence_id")? {
        let id = s
            .parse::<LicenceId>()
            .map_err(|_| Rejection::InvalidClaim("licence_id"))?;
        check_identity(&id, vct, &issuer.code)
            .map_err(|_| Rejection::InvalidClaim("licence_id"))?;
    }
    if let Some(code) = text("licence_type_code")? {
        if type_code_of_vct(vct) != code {
            return Err(Rejection::InvalidClaim("licence_type_code"));
        }
    }
    if let Some(code) = text("issuer_code")? {
        if code != issuer.code {
            return Err(Rejection::InvalidClaim("issuer_code"));
        }
    }
    if let Some(name) = text("issuer_name")? {
        if name != issuer.name {
            return Err(Rejection::InvalidClaim("issuer_name"));
        }
    }
    for (name, visible) in [("valid_from", nbf), ("valid_until", exp)] {
        if let Some(value) = claims.get(name) {
            let edge = validity_edge(name, value).map_err(|_| Rejection::InvalidClaim(name))?;
            // valid_from absent at issue makes nbf = iat; present, it is the day's start.
            if edge != visible {
                return Err(Rejection::InvalidClaim(name));
            }
        }
    }
    Ok(())
}

fn verify_key_binding(
    kb: &str,
    holder: &HolderKey,
    sd_hash_input: &str,
    kb_policy: &KeyBindingPolicy,
    policy: &VerifyPolicy,
    now: i64,
) -> Result<KeyBindingInfo, Rejection> {
    // The holder key's type decides the one algorithm (ADR 0120).
    let jws = CompactJws::parse_with_alg(kb, TYP_KB_JWT, Part::KeyBinding, holder.alg())?;
    if !jws.verify_holder(holder) {
        return Err(Rejection::KeyBindingSignature);
    }
    let p = &jws.payload;
    let iat = int_claim(p, "iat")?.ok_or(Rejection::MissingClaim("iat"))?;
    let aud = str_claim(p, "aud")?;
    let nonce = str_claim(p, "nonce")?;
    let sd_hash = str_claim(p, "sd_hash")?;
    if sd_hash != sha256_b64(sd_hash_input) {
        return Err(Rejection::KeyBindingSdHash);
    }
    if let KeyBindingPolicy::Required {
        audience,
        nonce: expected,
    } = kb_policy
    {
        if aud != audience {
            return Err(Rejection::KeyBindingAudience);
        }
        match expected {
            // An empty nonce binds to nothing, whatever the caller expects.
            NoncePolicy::Exact(n) if n != nonce || nonce.is_empty() => {
                return Err(Rejection::KeyBindingNonce);
            }
            NoncePolicy::Any if nonce.is_empty() => return Err(Rejection::KeyBindingNonce),
            _ => {}
        }
    }
    if iat > now.saturating_add(policy.skew) {
        return Err(Rejection::KeyBindingFuture);
    }
    if matches!(kb_policy, KeyBindingPolicy::Required { .. })
        && iat
            < now
                .saturating_sub(policy.kb_max_age)
                .saturating_sub(policy.skew)
    {
        return Err(Rejection::KeyBindingStale);
    }
    Ok(KeyBindingInfo {
        iat,
        aud: aud.to_owned(),
        nonce: nonce.to_owned(),
    })
}

fn status_reference(payload: &Map<String, Value>) -> Result<Option<StatusReference>, Rejection> {
    let Some(status) = payload.get("status") else {
        return Ok(None);
    };
    let list = status
        .get("status_list")
        .ok_or(Rejection::InvalidClaim("status"))?;
    let idx = list
        .get("idx")
        .and_then(Value::as_u64)
        .ok_or(Rejection::InvalidClaim("status"))?;
    let uri = list
        .get("uri")
        .and_then(Value::as_str)
        .ok_or(Rejection::InvalidClaim("status"))?;
    Ok(Some(StatusReference {
        uri: uri.to_owned(),
        idx,
    }))
}

fn check_status(
    reference: &StatusReference,
    issuer_id: &str,
    cache: &StatusListCache,
    policy: &VerifyPolicy,
    now: i64,
) -> Result<(), Rejection> {
    let lists = cache.get_all(&reference.uri);
    if lists.is_empty() {
        return Err(Rejection::StatusListMissing);
    }
    // Several lists share one `iat` only when the issuer signed different
    // contents within one second: the most severe status wins (ADR 0101).
    let mut worst: Result<(), Rejection> = Ok(());
    for list in lists {
        if list.issuer_id != issuer_id {
            return Err(Rejection::StatusListIssuerMismatch);
        }
        list.check_usable(now, policy.skew, policy.status_max_age)?;
        let here = match list.list.get(reference.idx) {
            None => Err(Rejection::StatusIndexOutOfRange),
            Some(0) => Ok(()),
            Some(1) => Err(Rejection::Revoked),
            Some(2) => Err(Rejection::Suspended),
            Some(_) => Err(Rejection::StatusUnrecognized),
        };
        if severity(&here) > severity(&worst) {
            worst = here;
        }
    }
    worst
}

/// Orders status outcomes: revoked > suspended > unrecognized > out of range > valid.
fn severity(outcome: &Result<(), Rejection>) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(Rejection::Revoked) => 4,
        Err(Rejection::Suspended) => 3,
        Err(Rejection::StatusUnrecognized) => 2,
        Err(_) => 1,
    }
}
