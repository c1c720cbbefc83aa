//! The search lexicon (ADR 0181): phones fetch the current document with
//! the catalog (`GET /v1/catalog/lexicon`, ETag = its version, 304 when it
//! has not changed); publishers add, replace, remove and list entries. The
//! lexicon is district-wide, so the publisher role is checked without a
//! department scope. Each change is the next version, committed with its
//! audit row (`lexicon.put`, `lexicon.delete`), and each entry passes the
//! rules a phone applies on receipt ([`Lexicon::check`]) before it is
//! stored, so the server never serves a document phones would refuse.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use zhangban_core::search::lexicon::{Entry, Lexicon, LexiconError};

use super::act::Act;
use super::auth::Operator;
use super::catalog::{not_modified, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::roles::{Action, Target};
use crate::state::{SharedState, blocking};
use crate::store::operators::{OperatorWrite, Written};

/// The ETag of lexicon version `v`.
pub fn etag(version: u64) -> String {
    format!("\"lexicon-{version}\"")
}

/// An entry as an operator sends it (the term is the path's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRequest {
    /// The official words the term stands for (1..=8).
    pub targets: Vec<String>,
    /// Whether each target also finds the term.
    #[serde(default)]
    pub two_way: bool,
    /// Where the usage is seen (at most 200 characters).
    #[serde(default)]
    pub source: Option<String>,
}

/// Checks one entry with the core's rules (the same a phone applies to the
/// whole document); 422 `invalid_entry` with the rule it breaks.
pub fn check_entry(entry: &Entry) -> ApiResult<()> {
    let one = Lexicon {
        version: 0,
        stopwords: Vec::new(),
        entries: vec![entry.clone()],
        note: None,
    };
    one.check().map_err(|e| {
        let why = match e {
            LexiconError::BadEntry { why, .. } => why,
            LexiconError::TooManyEntries(_) => "too many entries",
            LexiconError::Malformed(_) => "malformed",
        };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            format!("the entry breaks a lexicon rule: {why}"),
        )
        .with_details(json!({"rule": why}))
    })
}

async fn current(state: &SharedState) -> ApiResult<Lexicon> {
    blocking(state, |s| s.lexicon())
        .await?
        .ok_or_else(|| ApiError::not_found("no lexicon"))
}

/// `GET /v1/catalog/lexicon`: the current lexicon, ETag its version.
pub async fn public(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Response> {
    let version = blocking(&state, |s| s.lexicon_version())
        .await?
        .ok_or_else(|| ApiError::not_found("no lexicon"))?;
    if not_modified(&headers, &etag(version)) {
        return Ok(with_etag(
            StatusCode::NOT_MODIFIED.into_response(),
            &etag(version),
        ));
    }
    // Read again as one snapshot: the ETag names the document sent.
    let lexicon = current(&state).await?;
    let tag = etag(lexicon.version);
    Ok(with_etag(Json(lexicon).into_response(), &tag))
}

/// `GET /v1/operator/lexicon` (publisher): the current lexicon.
pub async fn list(op: Operator, State(state): State<SharedState>) -> ApiResult<Json<Lexicon>> {
    let mut act = Act::new(op, Action::ListLexicon);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        Ok(Json(current(&state).await?))
    }
    .await;
    act.settle(&state, result).await
}

fn check_term(term: &str) -> ApiResult<()> {
    if term.chars().count() > zhangban_core::search::lexicon::MAX_TERM_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_entry",
            "the entry breaks a lexicon rule: word longer than 32 characters",
        )
        .with_details(json!({"rule": "word longer than 32 characters"})));
    }
    Ok(())
}

/// `PUT /v1/operator/lexicon/entries/{term}` (publisher): adds or replaces
/// the term's entry; answers the new version.
pub async fn put_entry(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(term): ApiPath<String>,
    ApiJson(req): ApiJson<EntryRequest>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::PutLexiconEntry);
    act.target("term", &term);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        check_term(&term)?;
        let entry = Entry {
            term: term.clone(),
            targets: req.targets,
            two_way: req.two_way,
            source: req.source,
        };
        check_entry(&entry)?;
        let write = OperatorWrite::PutLexiconEntry {
            entry,
            actor: act.who().name.clone(),
            at: state.clock.now(),
        };
        let Written::Version(version) = act.write(&state, write).await? else {
            return Err(ApiError::internal("a lexicon change returned no version"));
        };
        Ok(Json(json!({"term": term, "version": version})))
    }
    .await;
    act.settle(&state, result).await
}

/// `DELETE /v1/operator/lexicon/entries/{term}` (publisher): removes the
/// term's entry; answers the new version.
pub async fn delete_entry(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(term): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::DeleteLexiconEntry);
    act.target("term", &term);
    let result = async {
        act.allow(&state, Target::Unscoped).await?;
        let write = OperatorWrite::DeleteLexiconEntry {
            term: term.clone(),
            actor: act.who().name.clone(),
            at: state.clock.now(),
        };
        let written = act.write(&state, write).await.map_err(|e| {
            if e.code == "not_found" {
                ApiError::not_found("no entry for this term")
            } else {
                e
            }
        })?;
        let Written::Version(version) = written else {
            return Err(ApiError::internal("a lexicon change returned no version"));
        };
        Ok(Json(
            json!({"term": term, "version": version, "deleted": true}),
        ))
    }
    .await;
    act.settle(&state, result).await
}
