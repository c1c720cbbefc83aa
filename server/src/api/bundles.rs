//! Life-event bundles (一件事一次办, ADR 0230) over HTTP.
//!
//! - `PUT /v1/operator/bundles/{id}` (publisher, district-wide: unscoped):
//!   publishes a bundle, checked whole against the catalog with core's
//!   [`merge`] (the same check a phone makes), committed with its audit row
//!   (`bundle.publish`).
//! - `GET /v1/catalog/bundles` (anyone): the published bundles, ETag the
//!   list's version, 304 while it has not changed.
//! - `PUT /v1/bundle-submissions/{client_id}` (resident): one application
//!   for the whole bundle, checked with core's [`fan_out`] (the shared
//!   validator on each member's projection of the merged form, as on the
//!   phone) and stored in one transaction as one ordinary submission per
//!   member that applies, each with its own tracking number and department,
//!   plus the bundle receipt. Every retry gets the same receipt.
//! - `POST /v1/bundle-submissions/{client_id}/nonce`: a nonce for the
//!   licence presentations of a bundle application, audience
//!   [`audience`]`(bundle id)`. A licence attached once (a shared licence
//!   field) is verified once and serves every member that takes it.
//! - `GET /v1/bundle-submissions[/{client_id}]`: the resident's own, with
//!   the members and the bundle's state derived from theirs.
//!
//! Each member is then an ordinary submission: reviewers move it with the
//! existing transition endpoint (their department's scope), and a member
//! returned for correction is handled alone.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zhangban_core::bundle::{Bundle, MergedForm, fan_out, merge};
use zhangban_core::guide::Guide;

use super::act::Act;
use super::auth::{Operator, Resident};
use super::catalog::{not_modified, with_etag};
use super::submissions::{
    NonceOut, attachment_links, check_attachments, check_client_id, check_licences, stored_receipt,
    today_cst, values_hash,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::limits::ClientAddr;
use crate::roles::{Action, Target};
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::bundles::member_client_id;
use crate::store::operators::{OperatorWrite, Written};
use crate::store::{
    BundleList, BundleReceipt, BundleRecord, BundleSubmitted, NewBundleMember, NewBundleSubmission,
    NewSubmission,
};

/// The ETag of bundle-list version `v`.
pub fn etag(version: u64) -> String {
    format!("\"bundles-{version}\"")
}

/// The audience (key binding `aud`, nonce binding) of a bundle
/// application's licence presentations.
pub fn audience(bundle_id: &str) -> String {
    format!("bundle:{bundle_id}")
}

/// What publishing a bundle did.
#[derive(Debug, Serialize)]
pub struct PublishedBundle {
    /// The bundle's id.
    pub id: String,
    /// The bundle's own version.
    pub version: u32,
    /// The bundle list's version after the call (the ETag phones see).
    pub list_version: u64,
    /// False when the same version and content were published already.
    pub changed: bool,
}

/// The member guides of `bundle` as the catalog has them now; a member not
/// in the catalog is left out (then [`merge`] reports it).
async fn member_guides(state: &SharedState, bundle: &Bundle) -> ApiResult<Vec<Guide>> {
    let mut guides = Vec::with_capacity(bundle.members.len());
    for m in &bundle.members {
        if let Some(g) = state.guide(&m.guide_id).await? {
            guides.push(Guide::clone(&g));
        }
    }
    Ok(guides)
}

/// `PUT /v1/operator/bundles/{id}` (publisher): publishes the bundle.
pub async fn put(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(bundle): ApiJson<Bundle>,
) -> ApiResult<Json<PublishedBundle>> {
    let mut act = Act::new(op, Action::PublishBundle);
    act.target("bundle", &id);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        if bundle.id != id {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "id_mismatch",
                "the bundle's id is not the path's",
            ));
        }
        let guides = member_guides(&state, &bundle).await?;
        merge(&bundle, &guides).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_bundle",
                format!("the bundle cannot be used: {e}"),
            )
            .with_details(json!({"rule": e.code()}))
        })?;
        let version = bundle.version;
        let write = OperatorWrite::PutBundle {
            bundle,
            at: state.clock.now(),
        };
        let Written::Bundle(put) = act.write(&state, write).await? else {
            return Err(ApiError::internal("publishing a bundle returned nothing"));
        };
        Ok(Json(PublishedBundle {
            id: id.clone(),
            version,
            list_version: put.list_version,
            changed: put.changed,
        }))
    }
    .await;
    act.settle(&state, result).await
}

/// `GET /v1/catalog/bundles`: the published bundles, ETag the list's version.
pub async fn public(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Response> {
    let version = blocking(&state, |s| s.bundles_version()).await?;
    if not_modified(&headers, &etag(version)) {
        return Ok(with_etag(
            StatusCode::NOT_MODIFIED.into_response(),
            &etag(version),
        ));
    }
    // Read again as one snapshot: the ETag names the list sent.
    let list: BundleList = blocking(&state, |s| s.bundles()).await?;
    let tag = etag(list.version);
    Ok(with_etag(Json(list).into_response(), &tag))
}

/// A bundle application as the phone sends it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSubmissionIn {
    /// The bundle.
    pub bundle_id: String,
    /// The bundle version the form was filled against.
    pub bundle_version: u32,
    /// The merged form's values: the bundle's questions (the answers that
    /// decide the conditional members), the shared facts, and each member's
    /// own fields as `<key>__<field>`.
    pub values: Map<String, Value>,
}

/// Body of a bundle nonce request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleNonceIn {
    /// The bundle the application is for.
    pub bundle_id: String,
}

/// `POST /v1/bundle-submissions/{client_id}/nonce`: a nonce for the
/// licence presentations of one bundle application (audience
/// [`audience`]).
pub async fn nonce(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(body): ApiJson<BundleNonceIn>,
) -> ApiResult<Json<NonceOut>> {
    check_client_id(&client_id)?;
    let audience = audience(&body.bundle_id);
    let expires_at = state.clock.now() + state.config.nonce_ttl;
    let nonce = state
        .nonce_key
        .issue(&who.resident_id, &client_id, &audience, expires_at);
    Ok(Json(NonceOut {
        nonce,
        audience,
        expires_at,
    }))
}

fn request_hash(req: &BundleSubmissionIn) -> ApiResult<String> {
    // serde_json's Map is ordered by key, so this serialisation is canonical.
    let v =
        serde_json::to_vec(&json!({"b": req.bundle_id, "v": req.bundle_version, "x": req.values}))
            .map_err(ApiError::internal)?;
    Ok(sha256_hex(&v))
}

fn unprocessable(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `PUT /v1/bundle-submissions/{client_id}`: submit a bundle once; every
/// retry gets the same receipt.
pub async fn submit(
    who: Resident,
    State(state): State<SharedState>,
    addr: ClientAddr,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(req): ApiJson<BundleSubmissionIn>,
) -> ApiResult<Json<BundleReceipt>> {
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
    req: BundleSubmissionIn,
) -> ApiResult<Json<BundleReceipt>> {
    check_client_id(&client_id)?;
    let hash = request_hash(&req)?;
    let new = match check(&state, &who, &client_id, &req, &hash).await {
        Ok(new) => new,
        // A retry of a stored application gets its receipt even if it
        // would not pass today (a newer bundle version, a nonce expired):
        // it was accepted when it was checked.
        Err(e) => {
            let cid = client_id.clone();
            return match blocking(&state, move |s| s.bundle_receipt(&cid)).await? {
                Some(stored) => {
                    crate::metrics::submission_replayed();
                    stored_receipt(stored, &who.resident_id, &hash).map(Json)
                }
                None => Err(e),
            };
        }
    };
    let cid = client_id.clone();
    match blocking(&state, move |s| s.submit_bundle(&new)).await {
        Ok(BundleSubmitted { receipt, fresh }) => {
            if fresh {
                crate::metrics::submission_accepted();
                tracing::info!(
                    tracking = %receipt.tracking_number,
                    members = receipt.members.len(),
                    "bundle accepted"
                );
            } else {
                crate::metrics::submission_replayed();
            }
            Ok(Json(receipt))
        }
        // The id is stored for another resident or another request (or a
        // member's id is taken).
        Err(e) if e.code == "conflict" => {
            match blocking(&state, move |s| s.bundle_receipt(&cid)).await? {
                Some(stored) => stored_receipt(stored, &who.resident_id, &hash).map(Json),
                None => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "client_id_taken",
                    "a member's client id is already used",
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The bundle's merged form as the catalog has it now, or why it cannot be
/// used (unknown bundle, stale version, a member guide withdrawn).
async fn merged_form(
    state: &SharedState,
    req: &BundleSubmissionIn,
) -> ApiResult<(Bundle, Vec<Guide>, MergedForm)> {
    let id = req.bundle_id.clone();
    let bundle = blocking(state, move |s| s.bundle(&id))
        .await?
        .ok_or_else(|| unprocessable("unknown_bundle", "no such bundle"))?;
    if bundle.version != req.bundle_version {
        return Err(unprocessable(
            "bundle_version_mismatch",
            "the bundle changed since the form was filled: sync the bundles and fill it again",
        )
        .with_details(json!({"current_version": bundle.version})));
    }
    let guides = member_guides(state, &bundle).await?;
    let form = merge(&bundle, &guides).map_err(|e| {
        unprocessable("bundle_unavailable", "the bundle cannot be used now")
            .with_details(json!({"rule": e.code()}))
    })?;
    Ok((bundle, guides, form))
}

/// Validates the merged form with core's [`fan_out`], verifies the attached
/// licences (each merged licence field once) and checks the attachments;
/// the application to store if all is well.
async fn check(
    state: &SharedState,
    who: &Resident,
    client_id: &str,
    req: &BundleSubmissionIn,
    hash: &str,
) -> ApiResult<NewBundleSubmission> {
    let (bundle, guides, form) = merged_form(state, req).await?;
    let now = state.clock.now();
    let (applications, mut errors): (Vec<_>, Vec<Value>) =
        match fan_out(&form, &req.values, today_cst(now)) {
            Ok(apps) => (apps, Vec::new()),
            Err(fields) => (
                Vec::new(),
                fields
                    .iter()
                    .map(|e| json!({"field": e.field, "kind": "form", "code": e.code.code(), "zh": e.code.zh(), "en": e.code.en()}))
                    .collect(),
            ),
        };
    let fields: Vec<_> = form.fields.iter().map(|f| f.field.clone()).collect();
    let audience = audience(&bundle.id);
    errors.extend(check_licences(state, who, client_id, &audience, &fields, &req.values).await?);
    let links = attachment_links(&fields, &req.values);
    errors.extend(check_attachments(state, who, &links).await?);
    if !errors.is_empty() {
        return Err(
            unprocessable("validation_failed", "the submission has errors")
                .with_details(json!({"fields": errors})),
        );
    }
    let mut members = Vec::with_capacity(applications.len());
    for app in applications {
        let guide = guides
            .iter()
            .find(|g| g.id == app.guide_id)
            .ok_or_else(|| ApiError::internal("a member's guide vanished"))?;
        let request_hash = values_hash(&app.guide_id, app.form_version, &app.values)?;
        let attachments = attachment_links(&guide.form.fields, &app.values);
        members.push(NewBundleMember {
            key: app.member,
            submission: NewSubmission {
                client_id: member_client_id(client_id, &app.guide_id),
                resident_id: who.resident_id.clone(),
                device_id: who.device_id.clone(),
                guide_id: app.guide_id,
                form_version: app.form_version,
                body: Value::Object(app.values).to_string(),
                request_hash,
                area_code: guide.area_code.clone(),
                department_code: guide.department_code.clone(),
                at: now,
                attachments,
            },
        });
    }
    let area_code = guides
        .first()
        .map(|g| g.area_code.clone())
        .unwrap_or_default();
    Ok(NewBundleSubmission {
        client_id: client_id.to_owned(),
        resident_id: who.resident_id.clone(),
        bundle_id: bundle.id,
        bundle_version: bundle.version,
        body: Value::Object(req.values.clone()).to_string(),
        request_hash: hash.to_owned(),
        area_code,
        at: now,
        members,
    })
}

/// `GET /v1/bundle-submissions`: the resident's bundle applications, newest
/// first, each with its members and derived state.
pub async fn list(
    who: Resident,
    State(state): State<SharedState>,
) -> ApiResult<Json<Vec<BundleRecord>>> {
    Ok(Json(
        blocking(&state, move |s| s.bundle_submissions_of(&who.resident_id)).await?,
    ))
}

/// `GET /v1/bundle-submissions/{client_id}`: one of the resident's.
pub async fn get(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath(client_id): ApiPath<String>,
) -> ApiResult<Json<BundleRecord>> {
    blocking(&state, move |s| {
        s.bundle_submission(&who.resident_id, &client_id)
    })
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::not_found("no such bundle submission"))
}
