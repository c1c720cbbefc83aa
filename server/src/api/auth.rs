//! Device enrolment and authentication.
//!
//! 1. `POST /v1/devices/enrol` binds a device key to a resident with an
//!    activation code (the stand-in for real-name verification).
//! 2. `POST /v1/auth/challenge` gives the device a one-time challenge.
//! 3. `POST /v1/auth/token` exchanges the device's signature (ES256 raw
//!    `r‖s` for a P-256 key, Ed25519 for a legacy key) over
//!    `zhangban-auth-v1.<challenge id>.<nonce>` for a short-lived bearer token.
//!
//! Challenges are consumed on first use (no replay), tokens expire, tokens
//! are stored as SHA-256 hashes and activation codes as keyed hashes
//! ([`crate::activation`]); every refused activation gets one answer.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zhangban_core::credential::jose::{b64d, b64e};
use zhangban_core::credential::key_hygiene::check_ed25519;
use zhangban_core::credential::rejection::Part;
use zhangban_core::credential::{HolderKey, reenrolment_message};

use crate::activation;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::limits::{ClientAddr, Kind};
use crate::roles::{Principal, Role};
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::{Device, Enrolment, NewChallenge, Session, StoreError};

/// The message a device signs to get a token.
pub fn challenge_message(challenge_id: &str, nonce: &str) -> String {
    format!("zhangban-auth-v1.{challenge_id}.{nonce}")
}

/// 128 random bits, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64e(buf)
}

/// Enrolment request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The activation code given to the resident.
    pub activation_code: String,
    /// The device's public JWK: `EC`/`P-256` (a platform keystore key) or,
    /// for devices enrolled before hardware keys, `OKP`/`Ed25519`.
    pub device_jwk: Value,
    /// Re-enrolment: the device this one replaces, retired in the same
    /// transaction (ADR 0125).
    #[serde(default)]
    pub replaces: Option<Replaces>,
}

/// The old device of a re-enrolment and its proof of possession.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replaces {
    /// The old device's id.
    pub device_id: String,
    /// base64url raw signature by the old device key over
    /// [`reenrolment_message`]`(old id, new id)`.
    pub signature: String,
}

/// 403 `device_retired`: the device was re-enrolled away from; it gets no
/// challenge, no token and cannot enrol again.
pub fn device_retired() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "device_retired",
        "this device was replaced by a re-enrolment",
    )
}

/// 403 `reenrolment_refused`: the device to replace is not an active device
/// of the resident, or the old key did not sign the re-enrolment.
fn reenrolment_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "reenrolment_refused",
        "the device to replace did not sign this re-enrolment or cannot be replaced",
    )
}

/// Enrolment response.
#[derive(Debug, Serialize)]
pub struct EnrolResponse {
    /// The device id (the key's RFC 7638 thumbprint).
    pub device_id: String,
    /// The resident the device now belongs to.
    pub resident_id: String,
}

/// `POST /v1/devices/enrol`
pub async fn enrol(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> ApiResult<Json<EnrolResponse>> {
    // Every attempt counts, before anything is looked at: during a lockout
    // even the right code is refused.
    state.limiters.check(Kind::ActivationPerAddr, &addr)?;
    let key = HolderKey::from_jwk(&req.device_jwk)
        .map_err(|e| ApiError::bad_request("invalid_device_key", e.to_string()))?;
    check_device_key(&key)?;
    if req.activation_code.is_empty() || req.activation_code.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_activation_code",
            "activation code is empty or too long",
        ));
    }
    let device = Device {
        id: key.thumbprint(),
        resident_id: String::new(),
        jwk: key.to_jwk().to_string(),
    };
    // Every refusal (unknown, wrong, locked, expired, used up, not even a
    // code) gets the same answer.
    let refused = || ApiError::forbidden("activation code not accepted");
    let Ok(code) = activation::normalise(&req.activation_code) else {
        return Err(refused());
    };
    let replaces = match req.replaces {
        Some(r) => Some(proven_old_device(&state, &r, &device.id).await?),
        None => None,
    };
    let sealed = state.config.activation_key.seal(&code);
    let now = state.clock.now();
    let max_failures = state.config.max_activation_failures;
    let (outcome, revoked) = blocking(&state, move |s| match replaces {
        Some(old) => s.reenrol(&sealed, &device, &old, now, max_failures),
        None => Ok((s.enrol(&sealed, &device, now, max_failures)?, Vec::new())),
    })
    .await?;
    // The old device's tokens are gone from the store; drop them from this
    // replica's cache too (another replica's cache lets them go within
    // SESSION_CACHE_SECS).
    for hash in revoked {
        state.sessions.remove(&hash);
    }
    let enrolled = match outcome {
        Enrolment::Enrolled(d) => d,
        Enrolment::DeviceRetired => return Err(device_retired()),
        Enrolment::NotReplaceable => return Err(reenrolment_refused()),
        Enrolment::Refused(why) => {
            tracing::info!(reason = why.code(), "activation refused");
            ::metrics::counter!("zhangban_activations_refused_total", "reason" => why.code())
                .increment(1);
            return Err(refused());
        }
    };
    tracing::info!(device = %enrolled.id, "device enrolled");
    // Licences granted before this device existed: issue its copies now. A
    // failure here must not undo the enrolment; the next grant retries.
    if let Err(e) = crate::issuing::deliver(&state, &enrolled.resident_id).await {
        tracing::warn!(code = e.code, "licence delivery after enrolment failed");
    }
    Ok(Json(EnrolResponse {
        device_id: enrolled.id,
        resident_id: enrolled.resident_id,
    }))
}

/// The old device of a re-enrolment once its key is shown to have signed
/// [`reenrolment_message`] for `new_device_id`; every failure is
/// [`reenrolment_refused`].
async fn proven_old_device(
    state: &SharedState,
    r: &Replaces,
    new_device_id: &str,
) -> ApiResult<String> {
    if r.device_id.is_empty() || r.device_id.len() > 128 {
        return Err(reenrolment_refused());
    }
    let did = r.device_id.clone();
    let old = blocking(state, move |s| s.device(&did))
        .await?
        .ok_or_else(reenrolment_refused)?;
    let jwk: Value = serde_json::from_str(&old.jwk).map_err(ApiError::internal)?;
    let key = HolderKey::from_jwk(&jwk).map_err(ApiError::internal)?;
    let sig = b64d(&r.signature, Part::KeyBinding)
        .ok()
        .filter(|b| b.len() == 64)
        .ok_or_else(reenrolment_refused)?;
    let message = reenrolment_message(&old.id, new_device_id);
    if !key.verify(message.as_bytes(), &sig) {
        return Err(reenrolment_refused());
    }
    Ok(old.id)
}

/// 403 `device_retired` if the device is retired.
async fn refuse_retired(state: &SharedState, device_id: &str) -> ApiResult<()> {
    let did = device_id.to_owned();
    match blocking(state, move |s| s.retirement(&did)).await? {
        Some(_) => Err(device_retired()),
        None => Ok(()),
    }
}

/// Challenge request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The enrolled device.
    pub device_id: String,
}

/// A one-time challenge.
#[derive(Debug, Serialize)]
pub struct ChallengeResponse {
    /// Challenge id.
    pub challenge_id: String,
    /// Random nonce to sign.
    pub nonce: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// `POST /v1/auth/challenge`
pub async fn challenge(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> ApiResult<Json<ChallengeResponse>> {
    state.limiters.check(Kind::ChallengePerAddr, &addr)?;
    state
        .limiters
        .check(Kind::ChallengePerDevice, &req.device_id)?;
    let device_id = req.device_id.clone();
    let known = blocking(&state, move |s| s.device(&device_id)).await?;
    if known.is_none() {
        return Err(ApiError::unauthorized("unknown device"));
    }
    refuse_retired(&state, &req.device_id).await?;
    let challenge_id = random_token(16);
    let nonce = random_token(16);
    let now = state.clock.now();
    let expires_at = now + state.config.challenge_ttl;
    let max_pending = state.config.max_pending_challenges;
    let (cid, n, d) = (challenge_id.clone(), nonce.clone(), req.device_id);
    blocking(&state, move |s| {
        let challenge = NewChallenge {
            id: &cid,
            device_id: &d,
            nonce: &n,
            expires_at,
            max_pending,
        };
        s.put_challenge(&challenge, now)
    })
    .await?;
    Ok(Json(ChallengeResponse {
        challenge_id,
        nonce,
        expires_at,
    }))
}

/// Token request: the device's signature over [`challenge_message`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The device.
    pub device_id: String,
    /// The challenge it answers.
    pub challenge_id: String,
    /// base64url raw signature: ES256 `r‖s` (64 bytes, not DER) or Ed25519.
    pub signature: String,
}

/// A bearer token.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The token for `Authorization: Bearer`.
    pub token: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// `POST /v1/auth/token`
pub async fn token(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    state.limiters.check(Kind::TokenPerAddr, &addr)?;
    state.limiters.check(Kind::TokenPerDevice, &req.device_id)?;
    let cid = req.challenge_id.clone();
    // Taken (deleted) before checking: a challenge is good for one attempt only.
    let taken = blocking(&state, move |s| s.take_challenge(&cid)).await?;
    let now = state.clock.now();
    let Some((device_id, nonce, expires_at)) = taken else {
        return Err(ApiError::unauthorized("unknown or used challenge"));
    };
    if device_id != req.device_id || expires_at < now {
        return Err(ApiError::unauthorized(
            "challenge expired or for another device",
        ));
    }
    let did = device_id.clone();
    let device = blocking(&state, move |s| s.device(&did))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown device"))?;
    let jwk: Value = serde_json::from_str(&device.jwk).map_err(ApiError::internal)?;
    let key = HolderKey::from_jwk(&jwk).map_err(ApiError::internal)?;
    let sig = b64d(&req.signature, Part::KeyBinding)
        .ok()
        .filter(|b| b.len() == 64)
        .ok_or_else(|| ApiError::unauthorized("malformed signature"))?;
    let message = challenge_message(&req.challenge_id, &nonce);
    // The enrolled key's type decides the algorithm (ADR 0120).
    if !key.verify(message.as_bytes(), &sig) {
        return Err(ApiError::unauthorized("bad signature"));
    }
    refuse_retired(&state, &device.id).await?;
    let token = random_token(32);
    let session = Session {
        device_id,
        resident_id: device.resident_id,
        expires_at: now + state.config.token_ttl,
    };
    let hash = sha256_hex(token.as_bytes());
    // The store refuses a token for a device retired since the check above
    // (in the writer's order: no token outlives a re-enrolment).
    match blocking(&state, move |s| Ok(s.put_token(&hash, &session))).await? {
        Ok(()) => {}
        Err(StoreError::InvalidState(_)) => return Err(device_retired()),
        Err(e) => return Err(e.into()),
    }
    Ok(Json(TokenResponse {
        token,
        expires_at: now + state.config.token_ttl,
    }))
}

/// The token of an `Authorization` header value `Bearer <token>`. The
/// scheme is matched case-insensitively (RFC 9110 §11.1: `bearer`, `BEARER`
/// …), one or more spaces may follow it; anything else is no bearer token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    (!token.is_empty() && !token.contains(' ')).then_some(token)
}

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// Refuses a device key that must never be trusted: the identity, a point
/// of small order, a non-canonical encoding (ADR 0161).
fn check_device_key(key: &HolderKey) -> ApiResult<()> {
    // A P-256 key was checked when parsed (on the curve, not the identity);
    // an Ed25519 one is checked for weak points here.
    let HolderKey::Ed25519(key) = key else {
        return Ok(());
    };
    check_ed25519(key.verifying_key()).map_err(|weak| {
        ApiError::bad_request("weak_device_key", weak.to_string())
            .with_details(serde_json::json!({"reason": weak.code()}))
    })
}

/// An authenticated resident device (from a bearer token).
#[derive(Debug, Clone)]
pub struct Resident {
    /// Resident id.
    pub resident_id: String,
    /// Device id.
    pub device_id: String,
}

impl FromRequestParts<SharedState> for Resident {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let hash = sha256_hex(token.as_bytes());
        let now = state.clock.now();
        let session = match state.sessions.get(&hash, now) {
            Some(s) => Some(s),
            None => {
                let h = hash.clone();
                let found = blocking(state, move |s| s.session(&h)).await?;
                if let Some(s) = &found {
                    let until = s.expires_at.min(now + crate::state::SESSION_CACHE_SECS);
                    state.sessions.put(hash, s.clone(), until.max(now));
                }
                found
            }
        };
        match session {
            Some(s) if s.expires_at >= state.clock.now() => Ok(Self {
                resident_id: s.resident_id,
                device_id: s.device_id,
            }),
            Some(_) => Err(ApiError::unauthorized("token expired")),
            None => Err(ApiError::unauthorized("unknown token")),
        }
    }
}

/// An authenticated operator: a named credential with one role and its
/// scopes (ADR 0165). What it may do is decided by
/// [`crate::roles::authorize`], through [`super::act::Act`].
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

impl FromRequestParts<SharedState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::unauthorized("missing operator token"))?;
        // Tokens carry ≥ 256 random bits: their SHA-256 is looked up
        // directly (no guessing a hash prefix; ADR 0165). Revocation takes
        // effect at the next request: nothing is cached.
        let hash = sha256_hex(token.as_bytes());
        let found = blocking(state, move |s| s.operator_by_token(&hash)).await?;
        let record = found.ok_or_else(|| ApiError::forbidden("operator credentials required"))?;
        let role = Role::parse(&record.role)
            .ok_or_else(|| ApiError::internal("stored operator has an unknown role"))?;
        Ok(Self(Principal {
            name: record.name,
            role,
            scopes: record.scopes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc"] {
            assert_eq!(bearer_token(v), Some("abc"), "{v}");
        }
    }

    #[test]
    fn other_schemes_and_malformed_values_are_no_token() {
        for v in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
            "Token abc",
            "",
        ] {
            assert_eq!(bearer_token(v), None, "{v:?}");
        }
    }
}
