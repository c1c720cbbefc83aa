//! Operator and issuer endpoints (operator bearer token): publish and withdraw
//! guides, register residents with activation codes, publish the trust
//! bundle, issue / suspend / revoke licences, and move submissions through
//! their states.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zhangban_core::credential::key_hygiene::check_ed25519;
use zhangban_core::credential::{Status, TrustBundle};
use zhangban_core::guide::{FieldKind, Guide};

use super::auth::Operator;
use crate::activation;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiText};
use crate::issuing;
use crate::state::{SharedState, blocking};
use crate::store::{NewActivation, StatusEvent, WalletEntry};

/// The states a submission moves through, and which may follow which.
///
/// `submitted` (已提交) → `accepted` (受理) → `reviewing` (审查) →
/// `approved` | `denied` (办结); `accepted`/`reviewing` → `returned` (退回补正)
/// → `accepted` once corrected.
pub const TRANSITIONS: &[(&str, &[&str])] = &[
    ("submitted", &["accepted", "denied"]),
    ("accepted", &["reviewing", "returned", "denied"]),
    ("reviewing", &["approved", "denied", "returned"]),
    ("returned", &["accepted", "denied"]),
    ("approved", &[]),
    ("denied", &[]),
];

/// Whether `from` → `to` is allowed.
pub fn may_transition(from: &str, to: &str) -> bool {
    TRANSITIONS
        .iter()
        .any(|(f, next)| *f == from && next.contains(&to))
}

/// Result of publishing a guide.
#[derive(Debug, Serialize)]
pub struct PublishedGuide {
    /// Guide id.
    pub id: String,
    /// Catalog sequence number of this change.
    pub seq: u64,
    /// Checksum of the stored JSON.
    pub checksum: String,
}

/// Validates a guide and returns (id, checksum, canonical JSON).
pub fn prepare_guide(guide: &Guide) -> ApiResult<(String, String, String)> {
    guide.validate().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_guide",
            e.to_string(),
        )
    })?;
    let body = serde_json::to_string(guide).map_err(ApiError::internal)?;
    Ok((guide.id.clone(), guide.checksum(), body))
}

/// The largest `max_bytes` of the guide's attachment fields (0 if none).
pub fn largest_attachment(guide: &Guide) -> u64 {
    guide
        .form
        .fields
        .iter()
        .filter_map(|f| match f.kind {
            FieldKind::Attachment { max_bytes, .. } => Some(max_bytes),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// `PUT /v1/operator/guides/{id}`
pub async fn put_guide(
    _: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(guide): ApiJson<Guide>,
) -> ApiResult<Json<PublishedGuide>> {
    if guide.id != id {
        return Err(ApiError::bad_request(
            "id_mismatch",
            "the path id and the guide id differ",
        ));
    }
    let (id, checksum, body) = prepare_guide(&guide)?;
    let max = state.config.max_attachment_bytes;
    if largest_attachment(&guide) > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_guide",
            "an attachment field allows more bytes than this server accepts",
        )
        .with_details(json!({"max_attachment_bytes": max})));
    }
    let (i, c) = (id.clone(), checksum.clone());
    let seq = blocking(&state, move |s| s.put_guide(&i, &c, &body)).await?;
    state.guides.remove(&id);
    Ok(Json(PublishedGuide { id, seq, checksum }))
}

/// `DELETE /v1/operator/guides/{id}`: leaves a tombstone in the feed.
pub async fn delete_guide(
    _: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let i = id.clone();
    let seq = blocking(&state, move |s| s.delete_guide(&i)).await?;
    state.guides.remove(&id);
    Ok(Json(json!({"id": id, "seq": seq, "deleted": true})))
}

/// A resident to register.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResident {
    /// Resident id (from the real-name system).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The activation code to hand to the resident; omitted, the server
    /// generates one and returns it (once). A supplied code must meet the
    /// same bar as a generated one (16 Crockford base32 symbols, 9 distinct).
    pub activation_code: Option<String>,
    /// How many devices may enrol with it (default 3).
    pub uses: Option<u32>,
    /// Days the code stays valid (default 30).
    pub valid_days: Option<u32>,
}

/// `POST /v1/operator/residents`
pub async fn put_resident(
    _: Operator,
    State(state): State<SharedState>,
    ApiJson(r): ApiJson<NewResident>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if r.id.is_empty() || r.id.len() > 64 {
        return Err(ApiError::bad_request("invalid_resident", "id 1..=64 chars"));
    }
    let supplied = match &r.activation_code {
        Some(text) => Some(
            activation::check_supplied(text)
                .map_err(|e| ApiError::bad_request("invalid_resident", e.to_string()))?,
        ),
        None => None,
    };
    let now = state.clock.now();
    let expires = now + i64::from(r.valid_days.unwrap_or(30)) * 86_400;
    let uses = r.uses.unwrap_or(3);
    let (id, name) = (r.id.clone(), r.name);
    let i = id.clone();
    blocking(&state, move |s| s.put_resident(&i, &name, now)).await?;
    // A generated code whose id is taken is drawn again (ids are 20 bits).
    let mut attempt = 0;
    let code = loop {
        let code = supplied.clone().unwrap_or_else(activation::generate);
        let sealed = state.config.activation_key.seal(&code);
        let i = id.clone();
        let stored = blocking(&state, move |s| {
            s.put_activation(&NewActivation {
                code: &sealed,
                resident_id: &i,
                expires_at: expires,
                uses,
            })
        })
        .await;
        match stored {
            Ok(()) => break code,
            Err(e) if e.code == "conflict" && supplied.is_none() && attempt < 8 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let mut body = json!({"id": r.id, "activation_expires_at": expires, "uses": uses});
    if supplied.is_none() {
        body["activation_code"] = json!(code.grouped());
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `PUT /v1/operator/trust-bundle` (body: the JWS): verified against the
/// pinned roots, refused on rollback, then served and used at once.
pub async fn put_trust_bundle(
    _: Operator,
    State(state): State<SharedState>,
    ApiText(jws): ApiText,
) -> ApiResult<Json<Value>> {
    let jws = jws.trim().to_owned();
    let current = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?
        .bundle
        .clone();
    let bundle = TrustBundle::verify(&jws, &state.roots, current.as_ref()).map_err(|r| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "trust_bundle_rejected",
            r.en(),
        )
        .with_details(json!({"reason": r.code()}))
    })?;
    refuse_weak_issuer_keys(&bundle)?;
    let version = bundle.version();
    let now = state.clock.now();
    blocking(&state, move |s| s.put_trust_bundle(version, &jws, now)).await?;
    state.reload_trust()?;
    issuing::ensure_status_lists(&state).await?;
    Ok(Json(json!({"version": version})))
}

/// Refuses a bundle listing an issuer key that must never be trusted (the
/// identity, a point of small order, a non-canonical encoding; ADR 0161):
/// the root signed it, but publishing it would plant a trap.
fn refuse_weak_issuer_keys(bundle: &TrustBundle) -> ApiResult<()> {
    for issuer in &bundle.content().issuers {
        for entry in &issuer.keys {
            let Some((_, key)) = bundle.key_by_kid(&entry.kid) else {
                continue;
            };
            if let Err(weak) = check_ed25519(&key.key) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "trust_bundle_rejected",
                    weak.to_string(),
                )
                .with_details(json!({"reason": weak.code(), "issuer": issuer.id})));
            }
        }
    }
    Ok(())
}

/// A licence to issue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The resident to issue to (every enrolled device gets a copy).
    pub resident_id: String,
    /// The issuer (its key must be held by this server).
    pub issuer_id: String,
    /// The licence type (default: the issuer's first).
    pub vct: Option<String>,
    /// The licence fields.
    pub claims: BTreeMap<String, Value>,
}

/// `POST /v1/operator/licences`: grants the licence and returns the copies
/// issued to the resident's enrolled devices (devices enrolled later get theirs then).
pub async fn issue_licence(
    _: Operator,
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> ApiResult<(StatusCode, Json<Vec<WalletEntry>>)> {
    let copies = issuing::grant(
        &state,
        &req.resident_id,
        &req.issuer_id,
        req.vct,
        req.claims,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(copies)))
}

/// A status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `valid`, `suspended` or `revoked`.
    pub status: String,
}

/// `POST /v1/operator/licences/{licence_id}/status`
pub async fn licence_status(
    _: Operator,
    State(state): State<SharedState>,
    ApiPath(licence_id): ApiPath<String>,
    ApiJson(change): ApiJson<StatusChange>,
) -> ApiResult<Json<Value>> {
    let status = match change.status.as_str() {
        "valid" => Status::Valid,
        "suspended" => Status::Suspended,
        "revoked" => Status::Revoked,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is valid, suspended or revoked",
            ));
        }
    };
    let copies = issuing::set_status(&state, &licence_id, status).await?;
    Ok(Json(
        json!({"licence_id": licence_id, "status": change.status, "copies": copies}),
    ))
}

/// A state change of a submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The new state.
    pub state: String,
    /// A note for the resident.
    pub note: Option<String>,
}

/// `POST /v1/operator/submissions/{tracking_number}/transition`
pub async fn transition(
    _: Operator,
    State(state): State<SharedState>,
    ApiPath(tracking): ApiPath<String>,
    ApiJson(t): ApiJson<Transition>,
) -> ApiResult<Json<StatusEvent>> {
    if t.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::bad_request(
            "note_too_long",
            "note is at most 500 characters",
        ));
    }
    let tr = tracking.clone();
    let current = blocking(&state, move |s| s.state_of(&tr))
        .await?
        .ok_or_else(|| ApiError::not_found("no such submission"))?;
    if !may_transition(&current, &t.state) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("{current} → {} is not allowed", t.state),
        ));
    }
    let now = state.clock.now();
    let event = blocking(&state, move |s| {
        s.transition(&tracking, &current, &t.state, t.note.as_deref(), now)
    })
    .await?;
    Ok(Json(event))
}
