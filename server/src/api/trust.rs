//! Trust data as published by the operator: the root-signed trust bundle and
//! the issuers' status list tokens. Public: an inspector device syncs these
//! without an account.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::state::{SharedState, blocking};

/// `GET /v1/trust/bundle`: the trust bundle JWS.
pub async fn bundle(State(state): State<SharedState>) -> ApiResult<Response> {
    let jws = blocking(&state, |s| s.trust_bundle())
        .await?
        .ok_or_else(|| ApiError::not_found("no trust bundle published"))?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], jws).into_response())
}

/// A published status list.
#[derive(Debug, Serialize)]
pub struct StatusListOut {
    /// Its URI (`sub`).
    pub uri: String,
    /// The signed `statuslist+jwt`.
    pub token: String,
}

/// `GET /v1/trust/status-lists`: every published status list token.
pub async fn status_lists(State(state): State<SharedState>) -> ApiResult<Json<Vec<StatusListOut>>> {
    let rows = blocking(&state, |s| s.status_lists()).await?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|r| r.token.map(|token| StatusListOut { uri: r.uri, token }))
            .collect(),
    ))
}
