//! The service-guide catalog: a change feed since a cursor (versioned,
//! checksummed, with tombstones), single guides, ETags and `304 Not Modified`.
//! Compression (gzip) is applied by the router's layer.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{SharedState, blocking};

/// Largest page of changes.
pub const MAX_PAGE: u32 = 1000;

/// Query of the change feed.
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    /// Cursor: changes with a higher sequence number are returned.
    #[serde(default)]
    pub since: u64,
    /// Page size (1..=1000, default 500).
    pub limit: Option<u32>,
}

/// One change on the wire.
#[derive(Debug, Serialize)]
pub struct ChangeOut {
    /// Guide id.
    pub id: String,
    /// Sequence number of this change.
    pub seq: u64,
    /// SHA-256 hex of the guide JSON (empty for a tombstone).
    pub checksum: String,
    /// True when the guide was withdrawn.
    pub deleted: bool,
    /// The guide (absent for a tombstone).
    pub guide: Option<Box<RawValue>>,
}

/// A page of the feed.
#[derive(Debug, Serialize)]
pub struct ChangesOut {
    /// The cursor asked for.
    pub since: u64,
    /// The cursor to ask for next.
    pub next: u64,
    /// The catalog's newest sequence number.
    pub head: u64,
    /// Whether more changes follow `next`.
    pub more: bool,
    /// The changes.
    pub changes: Vec<ChangeOut>,
}

pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

pub(crate) fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /v1/catalog/changes?since=&limit=`
pub async fn changes(
    State(state): State<SharedState>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let since = q.since;
    let page = blocking(&state, move |s| s.catalog_changes(since, limit)).await?;
    let etag = format!("\"c{since}-{limit}-{}\"", page.head);
    if not_modified(&headers, &etag) {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag));
    }
    let next = page.changes.last().map_or(since, |c| c.seq);
    let more = next < page.head;
    let changes = page
        .changes
        .into_iter()
        .map(|c| {
            let guide = c
                .body
                .map(RawValue::from_string)
                .transpose()
                .map_err(ApiError::internal)?;
            Ok(ChangeOut {
                deleted: guide.is_none(),
                id: c.id,
                seq: c.seq,
                checksum: c.checksum,
                guide,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let out = ChangesOut {
        since,
        next,
        head: page.head,
        more,
        changes,
    };
    Ok(with_etag(Json(out).into_response(), &etag))
}

/// `GET /v1/catalog/guides/{id}`
pub async fn guide(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = blocking(&state, move |s| s.guide(&id)).await?;
    let (checksum, body) = found.ok_or_else(|| ApiError::not_found("no such guide"))?;
    let etag = format!("\"{checksum}\"");
    if not_modified(&headers, &etag) {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag));
    }
    let resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok(with_etag(resp, &etag))
}
