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

use super::act::Act;
use super::auth::Operator;
use crate::activation;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiText};
use crate::issuing;
use crate::roles::{Action, Target};
use crate::state::{SharedState, blocking};
use crate::store::operators::{OperatorWrite, ResidentActivation, Written};
use crate::store::{StatusEvent, WalletEntry};

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

/// The department code of the stored live guide `id`, if there is one
/// (read fresh, not from the cache: it decides a publisher's scope).
async fn stored_department(state: &SharedState, id: &str) -> ApiResult<Option<String>> {
    let i = id.to_owned();
    let Some((_, body)) = blocking(state, move |s| s.guide(&i)).await? else {
        return Ok(None);
    };
    let guide: Value = serde_json::from_str(&body).map_err(ApiError::internal)?;
    Ok(Some(
        guide
            .get("department_code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// `PUT /v1/operator/guides/{id}`: a publisher of the guide's department
/// (and, when it replaces a guide, of the replaced guide's department too).
pub async fn put_guide(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(guide): ApiJson<Guide>,
) -> ApiResult<Json<PublishedGuide>> {
    let mut act = Act::new(op, Action::PublishGuide);
    act.target("guide", &id);
    let result = publish_guide(&state, &mut act, id, guide).await;
    act.settle(&state, result).await
}

async fn publish_guide(
    state: &SharedState,
    act: &mut Act,
    id: String,
    guide: Guide,
) -> ApiResult<Json<PublishedGuide>> {
    act.allow(state, Target::Unscoped).await?;
    act.target("department", &guide.department_code);
    act.allow(state, Target::Department(&guide.department_code))
        .await?;
    if let Some(old) = stored_department(state, &id).await? {
        if old != guide.department_code {
            act.target("replaced_department", &old);
            act.allow(state, Target::Department(&old)).await?;
        }
    }
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
    let write = OperatorWrite::PutGuide {
        id: id.clone(),
        checksum: checksum.clone(),
        body,
    };
    let Written::Seq(seq) = act.write(state, write).await? else {
        return Err(ApiError::internal(
            "publishing a guide returned no sequence",
        ));
    };
    state.guides.remove(&id);
    Ok(Json(PublishedGuide { id, seq, checksum }))
}

/// `DELETE /v1/operator/guides/{id}`: leaves a tombstone in the feed. A
/// publisher of the guide's department.
pub async fn delete_guide(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::WithdrawGuide);
    act.target("guide", &id);
    let result = withdraw_guide(&state, &mut act, id).await;
    act.settle(&state, result).await
}

async fn withdraw_guide(state: &SharedState, act: &mut Act, id: String) -> ApiResult<Json<Value>> {
    act.allow(state, Target::Unscoped).await?;
    let department = stored_department(state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("not found"))?;
    act.target("department", &department);
    act.allow(state, Target::Department(&department)).await?;
    let Written::Seq(seq) = act
        .write(state, OperatorWrite::DeleteGuide { id: id.clone() })
        .await?
    else {
        return Err(ApiError::internal(
            "withdrawing a guide returned no sequence",
        ));
    };
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
    op: Operator,
    State(state): State<SharedState>,
    ApiJson(r): ApiJson<NewResident>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut act = Act::new(op, Action::AddResident);
    act.target("resident", &r.id);
    let result = add_resident(&state, &mut act, r).await;
    act.settle(&state, result).await
}

async fn add_resident(
    state: &SharedState,
    act: &mut Act,
    r: NewResident,
) -> ApiResult<(StatusCode, Json<Value>)> {
    act.allow(state, Target::Unscoped).await?;
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
    // The resident and the code are written together, with the audit row.
    // A generated code whose id is taken is drawn again (ids are 20 bits).
    let mut attempt = 0;
    let code = loop {
        let code = supplied.clone().unwrap_or_else(activation::generate);
        let write = OperatorWrite::PutResident(ResidentActivation {
            id: r.id.clone(),
            name: r.name.clone(),
            code: state.config.activation_key.seal(&code),
            expires_at: expires,
            uses,
            at: now,
        });
        let stored = act.write(state, write).await;
        match stored {
            Ok(_) => break code,
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
    op: Operator,
    State(state): State<SharedState>,
    ApiText(jws): ApiText,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::PublishTrustBundle);
    let result = publish_trust_bundle(&state, &mut act, jws).await;
    act.settle(&state, result).await
}

async fn publish_trust_bundle(
    state: &SharedState,
    act: &mut Act,
    jws: String,
) -> ApiResult<Json<Value>> {
    act.allow(state, Target::Unscoped).await?;
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
    act.target("version", version.to_string());
    let now = state.clock.now();
    act.write(
        state,
        OperatorWrite::PutTrustBundle {
            version,
            jws,
            at: now,
        },
    )
    .await?;
    let s = std::sync::Arc::clone(state);
    tokio::task::spawn_blocking(move || s.reload_trust())
        .await
        .map_err(ApiError::internal)??;
    issuing::ensure_status_lists(state).await?;
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
/// An issuer scoped to the request's issuer.
pub async fn issue_licence(
    op: Operator,
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> ApiResult<(StatusCode, Json<Vec<WalletEntry>>)> {
    let mut act = Act::new(op, Action::IssueLicence);
    act.target("issuer", &req.issuer_id)
        .target("resident", &req.resident_id);
    if let Some(id) = req.claims.get("licence_id").and_then(Value::as_str) {
        act.target("licence", id);
    }
    let result = async {
        act.allow(&state, Target::Issuer(&req.issuer_id)).await?;
        let copies = issuing::grant(
            &state,
            &mut act,
            &req.resident_id,
            &req.issuer_id,
            req.vct,
            req.claims,
        )
        .await?;
        Ok((StatusCode::CREATED, Json(copies)))
    }
    .await;
    act.settle(&state, result).await
}

/// A status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `valid`, `suspended` or `revoked`.
    pub status: String,
}

/// `POST /v1/operator/licences/{licence_id}/status`
/// An issuer scoped to the licence's issuer.
pub async fn licence_status(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(licence_id): ApiPath<String>,
    ApiJson(change): ApiJson<StatusChange>,
) -> ApiResult<Json<Value>> {
    let (status, action) = match change.status.as_str() {
        "valid" => (Status::Valid, Action::ReinstateLicence),
        "suspended" => (Status::Suspended, Action::SuspendLicence),
        "revoked" => (Status::Revoked, Action::RevokeLicence),
        // Not an action at all: nothing to authorize or audit.
        _ => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is valid, suspended or revoked",
            ));
        }
    };
    let mut act = Act::new(op, action);
    act.target("licence", &licence_id);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        let lid = licence_id.clone();
        let grant = blocking(&state, move |s| s.grant(&lid))
            .await?
            .ok_or_else(|| ApiError::not_found("no such licence"))?;
        act.target("issuer", &grant.issuer_id);
        act.allow(&state, Target::Issuer(&grant.issuer_id)).await?;
        let copies = issuing::set_status(&state, &mut act, &licence_id, status).await?;
        Ok(Json(
            json!({"licence_id": licence_id, "status": change.status, "copies": copies}),
        ))
    }
    .await;
    act.settle(&state, result).await
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
/// A reviewer scoped to the department of the submission's guide.
pub async fn transition(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(tracking): ApiPath<String>,
    ApiJson(t): ApiJson<Transition>,
) -> ApiResult<Json<StatusEvent>> {
    let mut act = Act::new(op, Action::TransitionSubmission);
    act.target("submission", &tracking)
        .target("state", &t.state);
    let result = transition_in(&state, &mut act, tracking, t).await;
    act.settle(&state, result).await
}

/// Authorizes a reviewer for the submission `tracking`: its guide's
/// department must be in scope. `not_found` if there is no such submission.
pub async fn allow_reviewer(state: &SharedState, act: &mut Act, tracking: &str) -> ApiResult<()> {
    act.allow(state, Target::Unscoped).await?;
    let tr = tracking.to_owned();
    // The department recorded when the submission was made: republishing
    // or withdrawing its guide later moves no submission between reviewers.
    let department = blocking(state, move |s| s.submission_department(&tr))
        .await?
        .ok_or_else(|| ApiError::not_found("no such submission"))?;
    act.target("department", &department);
    act.allow(state, Target::Department(&department)).await
}

async fn transition_in(
    state: &SharedState,
    act: &mut Act,
    tracking: String,
    t: Transition,
) -> ApiResult<Json<StatusEvent>> {
    allow_reviewer(state, act, &tracking).await?;
    if t.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::bad_request(
            "note_too_long",
            "note is at most 500 characters",
        ));
    }
    let tr = tracking.clone();
    let current = blocking(state, move |s| s.state_of(&tr))
        .await?
        .ok_or_else(|| ApiError::not_found("no such submission"))?;
    if !may_transition(&current, &t.state) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("{current} → {} is not allowed", t.state),
        ));
    }
    let write = OperatorWrite::Transition {
        tracking,
        from: current,
        to: t.state,
        note: t.note,
        at: state.clock.now(),
    };
    let Written::Event(event) = act.write(state, write).await? else {
        return Err(ApiError::internal("a transition returned no event"));
    };
    Ok(Json(event))
}
