//! Attachments (附件): content-hashed, resumable uploads, a step of the
//! submission that references them.
//!
//! The protocol (tus-like, keyed by the content's SHA-256):
//!
//! 1. `PUT /v1/attachments/{sha256}` with `{"size", "media_type"}` declares
//!    the upload, or finds the resident's upload of that content, and
//!    answers its state `{sha256, size, media_type, received, complete}`:
//!    `received` is where the next chunk starts (the resume point). An
//!    incomplete upload declared with another size restarts from byte 0;
//!    a complete one declared with another size is `409 attachment_conflict`.
//! 2. `PUT /v1/attachments/{sha256}/chunks/{offset}` with the raw bytes
//!    (`application/octet-stream`, at most `max_chunk_bytes`) appends them if
//!    `offset == received`. A chunk lying inside the stored bytes is a retry
//!    and changes nothing (200). Another offset is `409 offset_mismatch`
//!    (details carry `received`); bytes past the declared size are
//!    `422 beyond_size`. When the last byte arrives the content is hashed:
//!    a mismatch drops every byte (`422 hash_mismatch`, the upload restarts
//!    at 0), a match completes the upload.
//! 3. `GET /v1/attachments/{sha256}` answers the state again (after a cut
//!    connection: continue from `received`).
//!
//! Uploads are per resident: another resident's upload of the same content
//! is invisible (404) and cannot be referenced. A submission's attachment
//! field (`{sha256, size, media_type, name}`) must name a complete upload of
//! the submitting resident with that size, else the field fails with
//! `attachment_missing` (upload, then retry the same submission). The
//! operator reads a submission's attachments through the submission only.

use crate::limits::ClientAddr;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::act::Act;
use super::auth::{Operator, Resident};
use super::operator::allow_reviewer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::roles::Action;
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::{AttachmentLink, ChunkOutcome, ChunkVerdict, Upload, UploadStart};

/// The longest media type accepted, in bytes.
pub const MEDIA_TYPE_MAX_LEN: usize = 255;

/// Whether `s` is 64 lower-case hex digits.
pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_sha256(s: &str) -> ApiResult<()> {
    if valid_sha256(s) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_sha256",
            "the SHA-256 must be 64 lower-case hex digits",
        ))
    }
}

/// RFC 6838 restricted-name: a letter or digit, then up to 126 of
/// `A-Z a-z 0-9 ! # $ & - ^ _ . +`.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=127).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
}

/// Whether `s` is a `type/subtype` media type without parameters (RFC 6838
/// names, at most [`MEDIA_TYPE_MAX_LEN`] bytes): safe to serve back as a
/// `Content-Type`.
pub fn valid_media_type(s: &str) -> bool {
    s.len() <= MEDIA_TYPE_MAX_LEN
        && s.split_once('/')
            .is_some_and(|(t, sub)| restricted_name(t) && restricted_name(sub))
}

/// The state of an upload, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// SHA-256 of the whole content.
    pub sha256: String,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared media type (lower-case).
    pub media_type: String,
    /// Bytes stored: the offset the next chunk must start at.
    pub received: u64,
    /// Every byte arrived and the content hashes to `sha256`.
    pub complete: bool,
}

impl From<Upload> for UploadState {
    fn from(u: Upload) -> Self {
        Self {
            sha256: u.sha256,
            size: u.size,
            media_type: u.media_type,
            received: u.received,
            complete: u.complete,
        }
    }
}

/// Body of an upload declaration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// The content's size in bytes (1..=`max_attachment_bytes`).
    pub size: u64,
    /// Its media type, `type/subtype` (compared case-insensitively).
    pub media_type: String,
}

/// Refuses a declaration that would take the resident past its attachment
/// storage (413 `attachment_quota_exceeded`) or its incomplete uploads past
/// their cap (409 `too_many_pending_uploads`). Checked before the upload is
/// started: concurrent declarations of one resident may overshoot by their
/// number, no more (each is bounded by `max_attachment_bytes`).
async fn check_quota(
    state: &SharedState,
    resident_id: &str,
    sha256: &str,
    size: u64,
) -> ApiResult<()> {
    let (r, s) = (resident_id.to_owned(), sha256.to_owned());
    let (bytes, pending) = blocking(state, move |st| st.upload_usage(&r, &s)).await?;
    let quota = state.config.max_resident_attachment_bytes;
    if bytes.saturating_add(size) > quota {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_quota_exceeded",
            "the resident's attachment storage is full",
        )
        .with_details(json!({"quota_bytes": quota, "used_bytes": bytes})));
    }
    let max_pending = state.config.max_pending_uploads;
    if pending >= max_pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_pending_uploads",
            "finish an upload before starting another",
        )
        .with_details(json!({"max_pending": max_pending})));
    }
    Ok(())
}

/// `PUT /v1/attachments/{sha256}`: starts, or finds, the resident's upload
/// of this content.
pub async fn declare(
    who: Resident,
    State(state): State<SharedState>,
    addr: ClientAddr,
    ApiPath(sha256): ApiPath<String>,
    ApiJson(d): ApiJson<Declaration>,
) -> ApiResult<Json<UploadState>> {
    crate::limits::check_upload(&state, &addr, &who.resident_id)?;
    check_sha256(&sha256)?;
    let max = state.config.max_attachment_bytes;
    if d.size == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_size",
            "an attachment has at least one byte",
        ));
    }
    if d.size > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_too_large",
            "the attachment exceeds the largest size accepted",
        )
        .with_details(json!({"max_bytes": max})));
    }
    let media_type = d.media_type.to_ascii_lowercase();
    if !valid_media_type(&media_type) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_media_type",
            "the media type must be type/subtype without parameters",
        ));
    }
    check_quota(&state, &who.resident_id, &sha256, d.size).await?;
    let now = state.clock.now();
    let size = d.size;
    let start = blocking(&state, move |s| {
        s.begin_upload(&who.resident_id, &sha256, size, &media_type, now)
    })
    .await?;
    match start {
        UploadStart::Created(u) | UploadStart::Existing(u) | UploadStart::Restarted(u) => {
            Ok(Json(u.into()))
        }
        UploadStart::Conflict(u) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "attachment_conflict",
            "this content is already uploaded with another size",
        )
        .with_details(json!({"size": u.size}))),
    }
}

/// `GET /v1/attachments/{sha256}`: the state of the resident's upload (the
/// resume point).
pub async fn status(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath(sha256): ApiPath<String>,
) -> ApiResult<Json<UploadState>> {
    check_sha256(&sha256)?;
    blocking(&state, move |s| s.upload(&who.resident_id, &sha256))
        .await?
        .map(|u| Json(u.into()))
        .ok_or_else(|| ApiError::not_found("no such upload"))
}

/// The raw body of a chunk: `Content-Type: application/octet-stream`, at
/// most the chunk route's body limit.
#[derive(Debug)]
pub struct ChunkBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ChunkBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let octets = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
        if !octets {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/octet-stream",
            ));
        }
        match Bytes::from_request(req, state).await {
            Ok(b) if b.is_empty() => Err(ApiError::bad_request(
                "empty_chunk",
                "a chunk has at least one byte",
            )),
            Ok(b) => Ok(Self(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "chunk_too_large",
                "the chunk exceeds the largest chunk accepted",
            )),
            Err(_) => Err(ApiError::bad_request(
                "unreadable_body",
                "request body could not be read",
            )),
        }
    }
}

/// Whether the stored bytes of `u` followed by `chunk` hash to its SHA-256,
/// for a chunk that would complete it; `None` if it would not, or the
/// stored bytes changed meanwhile.
fn verdict(digest: Option<(Upload, Sha256)>, offset: u64, chunk: &[u8]) -> Option<ChunkVerdict> {
    let (u, mut h) = digest?;
    if u.complete || u.received != offset {
        return None;
    }
    h.update(chunk);
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(ChunkVerdict {
        generation: u.generation,
        received: u.received,
        matches: got == u.sha256,
    })
}

/// `PUT /v1/attachments/{sha256}/chunks/{offset}`: stores the bytes at
/// `offset` of the resident's upload.
pub async fn put_chunk(
    who: Resident,
    State(state): State<SharedState>,
    addr: ClientAddr,
    ApiPath((sha256, offset)): ApiPath<(String, u64)>,
    ChunkBody(data): ChunkBody,
) -> ApiResult<Json<UploadState>> {
    crate::limits::check_upload(&state, &addr, &who.resident_id)?;
    check_sha256(&sha256)?;
    let now = state.clock.now();
    let len = u64::try_from(data.len()).map_err(ApiError::internal)?;
    let outcome = blocking(&state, move |s| {
        let upload = s
            .upload(&who.resident_id, &sha256)?
            .ok_or(crate::store::StoreError::NotFound)?;
        // The last chunk: hash here (a reader, this blocking thread), so the
        // writer only compares.
        let last = offset.checked_add(len) == Some(upload.size)
            && offset == upload.received
            && !upload.complete;
        let verdict = if last {
            verdict(s.upload_digest(&who.resident_id, &sha256)?, offset, &data)
        } else {
            None
        };
        s.put_chunk(&who.resident_id, &sha256, offset, &data, verdict, now)
    })
    .await
    .map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::not_found("no such upload: declare it first")
        } else {
            e
        }
    })?;
    match outcome {
        ChunkOutcome::Appended(u) => {
            crate::metrics::attachment_bytes(len);
            Ok(Json(u.into()))
        }
        ChunkOutcome::Completed(u) => {
            crate::metrics::attachment_bytes(len);
            crate::metrics::attachment_completed();
            Ok(Json(u.into()))
        }
        ChunkOutcome::Unchanged(u) => Ok(Json(u.into())),
        ChunkOutcome::OffsetMismatch(u) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            "the chunk does not start where the stored bytes end",
        )
        .with_details(json!({"received": u.received}))),
        ChunkOutcome::BeyondSize(u) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "beyond_size",
            "the chunk ends beyond the declared size",
        )
        .with_details(json!({"size": u.size, "received": u.received}))),
        ChunkOutcome::HashMismatch(u) => {
            crate::metrics::attachment_hash_mismatch();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash_mismatch",
                "the content does not hash to its SHA-256; the upload restarts at byte 0",
            )
            .with_details(json!({"received": u.received})))
        }
    }
}

/// `GET /v1/operator/submissions/{tracking}/attachments`: the attachments a
/// submission references.
///
/// A reviewer of the submission's department; every read is audited.
pub async fn submission_links(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(tracking): ApiPath<String>,
) -> ApiResult<Json<Vec<AttachmentLink>>> {
    let mut act = Act::new(op, Action::ReadSubmissionAttachments);
    act.target("submission", &tracking);
    let result = async {
        allow_reviewer(&state, &mut act, &tracking).await?;
        blocking(&state, move |s| s.submission_attachments(&tracking))
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::not_found("no such submission"))
    }
    .await;
    act.settle(&state, result).await
}

/// `Content-Disposition: attachment` with the resident's file name (RFC 6266
/// / RFC 8187 `filename*`), and the hash as the plain-ASCII fallback name.
fn disposition(link: &AttachmentLink) -> HeaderValue {
    let mut encoded = String::with_capacity(link.name.len() * 3);
    for b in link.name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{encoded}",
        link.sha256
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /v1/operator/submissions/{tracking}/attachments/{sha256}`: the bytes
/// of an attachment the submission references, with its media type.
///
/// A reviewer of the submission's department; every read is audited.
pub async fn submission_content(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath((tracking, sha256)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let mut act = Act::new(op, Action::ReadSubmissionAttachments);
    act.target("submission", &tracking)
        .target("sha256", &sha256);
    let result = async {
        allow_reviewer(&state, &mut act, &tracking).await?;
        content_of(&state, tracking, sha256).await
    }
    .await;
    act.settle(&state, result).await
}

async fn content_of(state: &SharedState, tracking: String, sha256: String) -> ApiResult<Response> {
    check_sha256(&sha256)?;
    let (link, bytes) = blocking(state, move |s| s.submission_attachment(&tracking, &sha256))
        .await?
        .ok_or_else(|| ApiError::not_found("no such attachment of this submission"))?;
    // A corrupt store must not serve other bytes under this hash.
    if sha256_hex(&bytes) != link.sha256 {
        return Err(ApiError::internal(
            "stored attachment does not match its hash",
        ));
    }
    let media_type = if valid_media_type(&link.media_type) {
        HeaderValue::from_str(&link.media_type).ok()
    } else {
        None
    }
    .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, media_type);
    h.insert(header::CONTENT_DISPOSITION, disposition(&link));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(valid_sha256(&"0a".repeat(32)));
        assert!(!valid_sha256(&"0A".repeat(32)));
        assert!(!valid_sha256(&"0a".repeat(31)));
        assert!(valid_media_type("application/pdf"));
        assert!(valid_media_type("image/svg+xml"));
        assert!(valid_media_type("application/vnd.ms-excel"));
        for bad in [
            "pdf",
            "/pdf",
            "image/",
            "image/png; q=1",
            "image/png/x",
            "图片/png",
            "image/ png",
            "text/plain\r\n",
        ] {
            assert!(!valid_media_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn disposition_is_a_header_value_for_any_name() {
        let link = AttachmentLink {
            field: "f".into(),
            sha256: "ab".repeat(32),
            size: 1,
            media_type: "application/pdf".into(),
            name: "户口本 \"首页\"\r\n.pdf".into(),
        };
        let v = disposition(&link);
        let s = v.to_str().expect("ascii");
        assert!(s.starts_with("attachment; filename=\""), "{s}");
        assert!(s.contains("filename*=UTF-8''%E6%88%B7"), "{s}");
        assert!(!s.contains('\r') && !s.contains(" \""), "{s}");
    }
}
