//! Submissions (申报): idempotent by the client-generated id, validated with
//! core's form validator, with attached licence presentations verified with
//! core's verifier. Plus the resident's own views: submissions, the status
//! timeline feed and the wallet.

use crate::limits::ClientAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zhangban_core::credential::{NoncePolicy, Rejection, VerifyPolicy, verify_presentation};
use zhangban_core::guide::{
    AttachmentRef, FieldKind, FormField, Guide, validate_versioned_submission,
};

use super::auth::Resident;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::{
    AttachmentLink, NewSubmission, Receipt, StatusEvent, SubmissionRecord, Submitted, WalletEntry,
};

/// Whether a client id is acceptable: 8–64 of `A-Z a-z 0-9 - _`.
pub fn valid_client_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 400 `invalid_client_id` unless [`valid_client_id`].
pub(crate) fn check_client_id(id: &str) -> ApiResult<()> {
    if valid_client_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_client_id",
            "client id must be 8-64 characters of A-Z a-z 0-9 - _",
        ))
    }
}

/// A submission as the client sends it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionIn {
    /// The service guide.
    pub guide_id: String,
    /// The form schema version the values were filled against.
    pub form_version: u32,
    /// The values, by field name.
    pub values: Map<String, Value>,
}

/// A fresh nonce for the licence presentations of one submission.
#[derive(Debug, Serialize)]
pub struct NonceOut {
    /// The nonce to put in each key binding JWT.
    pub nonce: String,
    /// The `aud` to use: the service guide id.
    pub audience: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// Body of a nonce request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceIn {
    /// The service guide the submission is for.
    pub guide_id: String,
}

/// `POST /v1/submissions/{client_id}/nonce`: a nonce bound to this
/// resident, submission id and service item (see [`crate::nonce`]).
pub async fn nonce(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(body): ApiJson<NonceIn>,
) -> ApiResult<Json<NonceOut>> {
    check_client_id(&client_id)?;
    let expires_at = state.clock.now() + state.config.nonce_ttl;
    let nonce = state
        .nonce_key
        .issue(&who.resident_id, &client_id, &body.guide_id, expires_at);
    Ok(Json(NonceOut {
        nonce,
        audience: body.guide_id,
        expires_at,
    }))
}

/// The canonical hash of a request: a retry has the same, a reuse of the id does not.
fn request_hash(req: &SubmissionIn) -> ApiResult<String> {
    values_hash(&req.guide_id, req.form_version, &req.values)
}

/// The canonical hash of a guide id, a form version and values (a member
/// of a bundle is hashed as a single submission of its values would be).
pub(crate) fn values_hash(
    guide_id: &str,
    form_version: u32,
    values: &Map<String, Value>,
) -> ApiResult<String> {
    // serde_json's Map is ordered by key, so this serialisation is canonical.
    let v = serde_json::to_vec(&json!({"g": guide_id, "v": form_version, "x": values}))
        .map_err(ApiError::internal)?;
    Ok(sha256_hex(&v))
}

/// Today in China Standard Time (UTC+8).
pub(crate) fn today_cst(now: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(now.saturating_add(8 * 3600), 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

fn licence_error(field: &str, r: &Rejection) -> Value {
    crate::metrics::licence_verification_failed(&r.code());
    json!({"field": field, "kind": "licence", "code": r.code(), "class": r.class().code(), "zh": r.zh(), "en": r.en()})
}

/// Verifies every licence attached to the submission (the licence fields
/// among `fields`, each once), with `audience` the key binding's `aud` and
/// the nonce's binding (a guide id, or a bundle's audience); returns
/// per-field errors.
pub(crate) async fn check_licences(
    state: &SharedState,
    who: &Resident,
    client_id: &str,
    audience: &str,
    fields: &[FormField],
    values: &Map<String, Value>,
) -> ApiResult<Vec<Value>> {
    let refs: Vec<(String, Vec<String>, String)> = fields
        .iter()
        .filter_map(|f| match &f.kind {
            FieldKind::LicenceRef { licence_types } => values
                .get(&f.name)
                .and_then(|v| v.get("presentation"))
                .and_then(Value::as_str)
                .map(|p| (f.name.clone(), licence_types.clone(), p.to_owned())),
            _ => None,
        })
        .collect();
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let now = state.clock.now();
    let holder = state.device_key(&who.device_id).await?;
    let mut policy = VerifyPolicy::required(audience.to_owned(), NoncePolicy::Any);
    policy.expected_holder = Some(holder);
    let trust = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?;
    let Some(bundle) = &trust.bundle else {
        return Ok(refs
            .iter()
            .map(|(f, _, _)| licence_error(f, &Rejection::BundleStale))
            .collect());
    };
    let mut errors = Vec::new();
    for (field, types, presentation) in refs {
        match verify_presentation(&presentation, bundle, &trust.status, &policy, now) {
            Err(r) => errors.push(licence_error(&field, &r)),
            Ok(v) => {
                let nonce_ok = v.key_binding.as_ref().is_some_and(|kb| {
                    state
                        .nonce_key
                        .check(&kb.nonce, &who.resident_id, client_id, audience, now)
                        .is_ok()
                });
                if !nonce_ok {
                    errors.push(licence_error(&field, &Rejection::KeyBindingNonce));
                } else if !types.is_empty() && !types.contains(&v.vct) {
                    crate::metrics::licence_verification_failed("licence_type_not_accepted");
                    errors.push(json!({"field": field, "kind": "licence", "code": "licence_type_not_accepted",
                        "class": "untrusted_issuer", "zh": "该证照不能用于此项材料", "en": "This licence type is not accepted here"}));
                }
            }
        }
    }
    Ok(errors)
}

/// `PUT /v1/submissions/{client_id}`: submit once; every retry gets the same receipt.
pub async fn submit(
    who: Resident,
    State(state): State<SharedState>,
    addr: ClientAddr,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(req): ApiJson<SubmissionIn>,
) -> ApiResult<Json<Receipt>> {
    crate::limits::check_upload(&state, &addr, &who.resident_id)?;
    let result = submit_checked(who, state, client_id, req).await;
    if let Err(e) = &result {
        crate::metrics::submission_rejected(e.code);
    }
    result
}

async fn submit_checked(
    who: Resident,
    state: SharedState,
    client_id: String,
    req: SubmissionIn,
) -> ApiResult<Json<Receipt>> {
    check_client_id(&client_id)?;
    let hash = request_hash(&req)?;

    let (guide, attachments) = match check(&state, &who, &client_id, &req).await {
        Ok(checked) => checked,
        // A retry of a stored submission gets its receipt even if it would
        // not pass today (its nonce expired, a licence was revoked since,
        // the guide was withdrawn): it was accepted when it was checked.
        Err(e) => {
            let cid = client_id.clone();
            return match blocking(&state, move |s| s.receipt(&cid)).await? {
                Some(stored) => {
                    let receipt = stored_receipt(stored, &who.resident_id, &hash)?;
                    crate::metrics::submission_replayed();
                    Ok(Json(receipt))
                }
                None => Err(e),
            };
        }
    };
    let new = NewSubmission {
        client_id,
        resident_id: who.resident_id,
        device_id: who.device_id,
        guide_id: req.guide_id,
        form_version: req.form_version,
        body: Value::Object(req.values).to_string(),
        request_hash: hash.clone(),
        area_code: guide.area_code.clone(),
        department_code: guide.department_code.clone(),
        at: state.clock.now(),
        attachments,
    };
    let resident_id = new.resident_id.clone();
    let cid = new.client_id.clone();
    let receipt = match blocking(&state, move |s| s.submit(&new)).await {
        Ok(Submitted { receipt, fresh }) => {
            if fresh {
                crate::metrics::submission_accepted();
                tracing::info!(tracking = %receipt.tracking_number, "submission accepted");
            } else {
                crate::metrics::submission_replayed();
            }
            receipt
        }
        // The id is stored for another resident or another request.
        Err(e) if e.code == "conflict" => {
            return match blocking(&state, move |s| s.receipt(&cid)).await? {
                Some(stored) => stored_receipt(stored, &resident_id, &hash).map(Json),
                None => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    Ok(Json(receipt))
}

/// What a stored (owner, request hash, receipt) means for this request: the
/// receipt for a retry, or why the id cannot be used.
pub(crate) fn stored_receipt<R>(
    (owner, stored_hash, receipt): (String, String, R),
    resident_id: &str,
    hash: &str,
) -> ApiResult<R> {
    if owner != resident_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "client_id_taken",
            "this client id is already used",
        ));
    }
    if stored_hash != hash {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "client_id_reused",
            "this client id was used for another submission",
        ));
    }
    Ok(receipt)
}

/// The attachments the values reference (well-formed values of the
/// attachment fields among `fields`; the form validator reports the others).
pub(crate) fn attachment_links(
    fields: &[FormField],
    values: &Map<String, Value>,
) -> Vec<AttachmentLink> {
    fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Attachment { .. }))
        .filter_map(|f| {
            let a = AttachmentRef::deserialize(values.get(&f.name)?).ok()?;
            a.is_well_formed().then(|| AttachmentLink {
                field: f.name.clone(),
                sha256: a.sha256,
                size: a.size,
                media_type: a.media_type.to_ascii_lowercase(),
                name: a.name,
            })
        })
        .collect()
}

/// Per-field `attachment_missing` errors for the links that do not name a
/// complete upload of the resident's with that size.
pub(crate) async fn check_attachments(
    state: &SharedState,
    who: &Resident,
    links: &[AttachmentLink],
) -> ApiResult<Vec<Value>> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let hashes: Vec<String> = links.iter().map(|l| l.sha256.clone()).collect();
    let resident_id = who.resident_id.clone();
    let uploads = blocking(state, move |s| s.uploads(&resident_id, &hashes)).await?;
    Ok(links
        .iter()
        .filter(|l| {
            !uploads
                .iter()
                .any(|u| u.sha256 == l.sha256 && u.size == l.size && u.complete)
        })
        .map(|l| {
            json!({"field": l.field, "kind": "attachment", "code": "attachment_missing",
                "zh": "附件尚未上传完成，请上传后重新提交", "en": "The attachment has not been uploaded yet; upload it and submit again"})
        })
        .collect())
}

/// Validates the form, verifies the attached licences and checks that the
/// attachments are uploaded; the guide and the attachment links if all is well.
async fn check(
    state: &SharedState,
    who: &Resident,
    client_id: &str,
    req: &SubmissionIn,
) -> ApiResult<(Arc<Guide>, Vec<AttachmentLink>)> {
    let guide = state.guide(&req.guide_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_guide",
            "no such service guide",
        )
    })?;
    let now = state.clock.now();
    let mut errors: Vec<Value> = match validate_versioned_submission(&guide.form, req.form_version, &req.values, today_cst(now)) {
        Ok(()) => Vec::new(),
        Err(fields) => fields
            .iter()
            .map(|e| json!({"field": e.field, "kind": "form", "code": e.code.code(), "zh": e.code.zh(), "en": e.code.en()}))
            .collect(),
    };
    errors.extend(
        check_licences(
            state,
            who,
            client_id,
            &guide.id,
            &guide.form.fields,
            &req.values,
        )
        .await?,
    );
    let links = attachment_links(&guide.form.fields, &req.values);
    errors.extend(check_attachments(state, who, &links).await?);
    if errors.is_empty() {
        Ok((guide, links))
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the submission has errors",
        )
        .with_details(json!({"fields": errors})))
    }
}

/// `GET /v1/submissions`: the resident's submissions, newest first.
pub async fn list(
    who: Resident,
    State(state): State<SharedState>,
) -> ApiResult<Json<Vec<SubmissionRecord>>> {
    Ok(Json(
        blocking(&state, move |s| s.submissions_of(&who.resident_id)).await?,
    ))
}

/// `GET /v1/submissions/{client_id}`
pub async fn get(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath(client_id): ApiPath<String>,
) -> ApiResult<Json<SubmissionRecord>> {
    blocking(&state, move |s| s.submission(&who.resident_id, &client_id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such submission"))
}

/// Cursor query.
#[derive(Debug, Deserialize)]
pub struct SinceQuery {
    /// Events with a higher sequence number are returned.
    #[serde(default)]
    pub since: u64,
    /// Page size (1..=1000, default 500).
    pub limit: Option<u32>,
}

/// `GET /v1/events?since=`: status events of the resident's submissions.
pub async fn events(
    who: Resident,
    State(state): State<SharedState>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be 1..=1000",
        ));
    }
    let since = q.since;
    let events: Vec<StatusEvent> = blocking(&state, move |s| {
        s.events_since(&who.resident_id, since, limit)
    })
    .await?;
    let next = events.last().map_or(since, |e| e.seq);
    Ok(Json(
        json!({"since": since, "next": next, "events": events}),
    ))
}

/// `GET /v1/wallet`: licences issued to the resident (copies for every device).
pub async fn wallet(
    who: Resident,
    State(state): State<SharedState>,
) -> ApiResult<Json<Vec<WalletEntry>>> {
    Ok(Json(
        blocking(&state, move |s| s.wallet(&who.resident_id)).await?,
    ))
}
