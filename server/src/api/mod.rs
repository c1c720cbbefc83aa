//! HTTP API: routes, and the layers every request passes (body limit, gzip,
//! tracing, metrics); and the admin router ([`admin_router`]: `/metrics`). Errors are typed JSON ([`crate::error::ApiError`]). The
//! OpenAPI document is [`openapi`], served at `/openapi.json`.

pub mod act;
pub mod attachments;
pub mod auth;
pub mod bundles;
pub mod catalog;
pub mod evaluations;
pub mod lexicon;
pub mod openapi;
pub mod operator;
pub mod operators;
pub mod submissions;
pub mod trust;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::middleware;
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate as _, SizeAbove};
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ApiResult};
use crate::state::{SharedState, blocking};

/// `GET /healthz`: the store answers and trust data is loaded.
pub async fn health(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let head = blocking(&state, |s| s.catalog_changes(u64::MAX - 1, 1))
        .await?
        .head;
    let bundle = state
        .trust
        .read()
        .map_err(|_| ApiError::internal("trust lock poisoned"))?
        .bundle
        .as_ref()
        .map(|b| b.version());
    Ok(Json(
        json!({"status": "ok", "catalog_head": head, "trust_bundle_version": bundle}),
    ))
}

/// `GET /livez`: the process serves HTTP. Touches nothing else, so it is
/// the cheapest request there is (a liveness probe, and the load
/// benchmark's no-op baseline).
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// A known path with a method it does not serve: typed 405 (the router
/// still sets `Allow`).
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

/// The admin router: `GET /metrics` only. Served on its own listener
/// (`serve --admin-addr`, meant for a loopback or internal address), never
/// on the public API address (ADR 0160).
pub fn admin_router() -> Router {
    crate::metrics::handle();
    Router::new()
        .route("/metrics", get(crate::metrics::serve))
        .fallback(not_found)
}

/// The application router.
pub fn router(state: SharedState) -> Router {
    let limit = state.config.max_body_bytes;
    let chunk_limit = state.config.max_chunk_bytes;
    let (request_timeout, body_timeout) = (state.config.request_timeout, state.config.body_timeout);
    // Installs the metrics recorder (once per process) before any request.
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(live))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/catalog/changes", get(catalog::changes))
        .route("/v1/catalog/guides/{id}", get(catalog::guide))
        .route("/v1/catalog/lexicon", get(lexicon::public))
        .route("/v1/catalog/bundles", get(bundles::public))
        .route("/v1/trust/bundle", get(trust::bundle))
        .route("/v1/trust/status-lists", get(trust::status_lists))
        .route("/v1/devices/enrol", post(auth::enrol))
        .route("/v1/auth/challenge", post(auth::challenge))
        .route("/v1/auth/token", post(auth::token))
        .route("/v1/submissions", get(submissions::list))
        .route(
            "/v1/submissions/{client_id}",
            put(submissions::submit).get(submissions::get),
        )
        .route(
            "/v1/submissions/{client_id}/nonce",
            post(submissions::nonce),
        )
        .route("/v1/bundle-submissions", get(bundles::list))
        .route(
            "/v1/bundle-submissions/{client_id}",
            put(bundles::submit).get(bundles::get),
        )
        .route(
            "/v1/bundle-submissions/{client_id}/nonce",
            post(bundles::nonce),
        )
        .route(
            "/v1/attachments/{sha256}",
            put(attachments::declare).get(attachments::status),
        )
        // Raw chunk bodies have their own limit (inside the global one,
        // which it replaces for this route).
        .route(
            "/v1/attachments/{sha256}/chunks/{offset}",
            put(attachments::put_chunk).layer(DefaultBodyLimit::max(chunk_limit)),
        )
        .route(
            "/v1/submissions/{client_id}/rating/{rating_id}",
            put(evaluations::rate),
        )
        .route("/v1/events", get(submissions::events))
        .route("/v1/wallet", get(submissions::wallet))
        .route(
            "/v1/operator/guides/{id}",
            put(operator::put_guide).delete(operator::delete_guide),
        )
        .route(
            "/v1/operator/operators",
            post(operators::add).get(operators::list),
        )
        .route(
            "/v1/operator/operators/{name}",
            axum::routing::delete(operators::revoke),
        )
        .route("/v1/operator/lexicon", get(lexicon::list))
        .route(
            "/v1/operator/lexicon/entries/{term}",
            put(lexicon::put_entry).delete(lexicon::delete_entry),
        )
        .route("/v1/operator/bundles/{id}", put(bundles::put))
        .route("/v1/operator/residents", post(operator::put_resident))
        .route("/v1/operator/trust-bundle", put(operator::put_trust_bundle))
        .route("/v1/operator/licences", post(operator::issue_licence))
        .route(
            "/v1/operator/licences/{licence_id}/status",
            post(operator::licence_status),
        )
        .route(
            "/v1/operator/submissions/{tracking}/transition",
            post(operator::transition),
        )
        .route(
            "/v1/operator/submissions/{tracking}/attachments",
            get(attachments::submission_links),
        )
        .route(
            "/v1/operator/submissions/{tracking}/attachments/{sha256}",
            get(attachments::submission_content),
        )
        .route("/v1/operator/evaluations/cases", get(evaluations::cases))
        .route(
            "/v1/operator/evaluations/cases/{id}/answer",
            post(evaluations::answer),
        )
        .route("/v1/operator/evaluations/stats", get(evaluations::stats))
        .route(
            "/v1/operator/calendar/{year}",
            put(evaluations::put_calendar),
        )
        // After every route: applies to the routes added so far.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        // A body that trickles in is cut off (slow-loris), and no request
        // holds a connection past `request_timeout` (408).
        .layer(MapRequestBodyLayer::new(axum::body::Body::new))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Small bodies (receipts, errors) are not worth a deflate state:
        // gzip from 1 KiB (catalog pages, guides, status lists).
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(1024)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE),
            ),
        )
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}
