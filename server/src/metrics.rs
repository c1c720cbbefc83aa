//! Prometheus metrics, served at `GET /metrics` in the text exposition format
//! on the admin listener only (`serve --admin-addr`, see [`crate::api::admin_router`]
//! and ADR 0160), never on the public API address.
//!
//! Recorded through the `metrics` facade and rendered by
//! `metrics-exporter-prometheus` (its recorder only).
//!
//! Every label has a bounded set of values, so no client can grow the
//! process or the exposition by sending odd requests:
//!
//! - `http_requests_total{method, route, status}`: every request; `method`
//!   is one of [`METHODS`] or `other`; `route` is the matched route template
//!   (`/v1/submissions/{client_id}`), never the raw path, so no id or
//!   personal data reaches a label; requests that match no route are counted
//!   under `route="unmatched"`.
//! - `http_request_duration_seconds{method, route}`: latency histogram.
//! - `zhangban_submissions_accepted_total`, `zhangban_submission_replays_total`,
//!   `zhangban_submissions_rejected_total{code}`,
//!   `zhangban_licence_verifications_failed_total{code}`: domain counters,
//!   labelled only with stable error codes.
//! - `zhangban_attachment_bytes_total` (bytes of attachment chunks stored),
//!   `zhangban_attachment_uploads_completed_total`,
//!   `zhangban_attachment_hash_mismatches_total` (uploads restarted because
//!   their content did not hash to the declared SHA-256).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Name of the request counter.
pub const REQUESTS: &str = "http_requests_total";
/// Name of the latency histogram.
pub const DURATION: &str = "http_request_duration_seconds";
/// Latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus handle: installs the global recorder on first
/// use (once per process), with a background thread doing the exporter's
/// upkeep so histogram samples do not pile up between scrapes. If another
/// recorder was installed first, a detached one is used and `/metrics`
/// shows only what it records (nothing).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics upkeep thread not started");
        }
        describe();
        handle.clone()
    })
}

fn describe() {
    ::metrics::describe_counter!(
        REQUESTS,
        "HTTP requests by method, matched route and status"
    );
    ::metrics::describe_histogram!(
        DURATION,
        ::metrics::Unit::Seconds,
        "HTTP request latency by method and matched route"
    );
    ::metrics::describe_counter!(
        "zhangban_submissions_accepted_total",
        "Submissions newly accepted (a receipt issued for the first time)"
    );
    ::metrics::describe_counter!(
        "zhangban_submission_replays_total",
        "Retries of an accepted submission answered with the stored receipt"
    );
    ::metrics::describe_counter!(
        "zhangban_submissions_rejected_total",
        "Submissions refused, by error code"
    );
    ::metrics::describe_counter!(
        "zhangban_licence_verifications_failed_total",
        "Attached licence presentations that failed verification, by rejection code"
    );
    ::metrics::describe_counter!(
        ATTACHMENT_BYTES,
        ::metrics::Unit::Bytes,
        "Bytes of attachment chunks stored (retries of stored chunks not counted)"
    );
    ::metrics::describe_counter!(
        ATTACHMENTS_COMPLETED,
        "Attachment uploads completed (every byte stored, the content hash checked)"
    );
    ::metrics::describe_counter!(
        ATTACHMENT_HASH_MISMATCHES,
        "Attachment uploads restarted from byte 0 because the content did not hash to the declared SHA-256"
    );
    // Shown from the first scrape on (the labelled ones appear with their first code).
    ::metrics::counter!("zhangban_submissions_accepted_total").increment(0);
    ::metrics::counter!("zhangban_submission_replays_total").increment(0);
    ::metrics::counter!(ATTACHMENT_BYTES).increment(0);
    ::metrics::counter!(ATTACHMENTS_COMPLETED).increment(0);
    ::metrics::counter!(ATTACHMENT_HASH_MISMATCHES).increment(0);
}

const ATTACHMENT_BYTES: &str = "zhangban_attachment_bytes_total";
const ATTACHMENTS_COMPLETED: &str = "zhangban_attachment_uploads_completed_total";
const ATTACHMENT_HASH_MISMATCHES: &str = "zhangban_attachment_hash_mismatches_total";

/// `bytes` of an attachment chunk were stored.
pub fn attachment_bytes(bytes: u64) {
    ::metrics::counter!(ATTACHMENT_BYTES).increment(bytes);
}

/// An attachment upload completed.
pub fn attachment_completed() {
    ::metrics::counter!(ATTACHMENTS_COMPLETED).increment(1);
}

/// An attachment's content did not hash to its SHA-256 (the upload restarted).
pub fn attachment_hash_mismatch() {
    ::metrics::counter!(ATTACHMENT_HASH_MISMATCHES).increment(1);
}

/// The methods counted under their own name; any other is `other`.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The `method` label of a request: its name if it is one of [`METHODS`],
/// else `other` (a client may send any token as a method).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    let name = method.as_str();
    METHODS
        .iter()
        .find(|m| **m == name)
        .copied()
        .unwrap_or("other")
}

/// Middleware recording the request counter and latency histogram. Added
/// with `Router::layer`, so it runs after routing and sees [`MatchedPath`].
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16().to_string();
    ::metrics::counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(DURATION, "method" => method, "route" => route).record(elapsed);
    resp
}

/// `GET /metrics`: the Prometheus text exposition format. Served on the
/// admin listener only.
pub async fn serve() -> Response {
    let body = handle().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// A submission was accepted for the first time (a new receipt).
pub fn submission_accepted() {
    ::metrics::counter!("zhangban_submissions_accepted_total").increment(1);
}

/// A retry of an accepted submission got the stored receipt.
pub fn submission_replayed() {
    ::metrics::counter!("zhangban_submission_replays_total").increment(1);
}

/// A submission was refused with the given stable error code
/// (`validation_failed`, `client_id_reused`, `unknown_guide` …).
pub fn submission_rejected(code: &'static str) {
    ::metrics::counter!("zhangban_submissions_rejected_total", "code" => code).increment(1);
}

/// An attached licence presentation failed verification with the given
/// stable rejection code (`Rejection::code()`, or `licence_type_not_accepted`).
pub fn licence_verification_failed(code: &str) {
    ::metrics::counter!("zhangban_licence_verifications_failed_total", "code" => code.to_owned())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;

    use super::*;

    #[tokio::test]
    async fn requests_are_labelled_by_route_template_not_raw_path() {
        let h = handle();
        let app = Router::new()
            .route("/things/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(track));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        for path in [
            "/things/secret-id-1234",
            "/things/other-5678",
            "/nowhere-9999",
        ] {
            client
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .expect("request");
        }
        let text = h.render();
        let line = |parts: &[&str]| {
            text.lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
        };
        let ok = line(&[
            REQUESTS,
            "method=\"GET\"",
            "route=\"/things/{id}\"",
            "status=\"200\"",
        ])
        .unwrap_or_else(|| panic!("no request counter line in\n{text}"));
        assert!(ok.ends_with(" 2"), "{ok}");
        assert!(
            line(&[REQUESTS, "route=\"unmatched\"", "status=\"404\""]).is_some(),
            "{text}"
        );
        assert!(
            line(&[
                "http_request_duration_seconds_bucket",
                "route=\"/things/{id}\"",
                "le="
            ])
            .is_some(),
            "latency is a histogram with buckets:\n{text}"
        );
        for raw in ["secret-id-1234", "other-5678", "nowhere-9999"] {
            assert!(!text.contains(raw), "raw path {raw} leaked into a label");
        }
    }

    #[test]
    fn domain_counters_are_rendered() {
        let h = handle();
        submission_accepted();
        submission_replayed();
        submission_rejected("validation_failed");
        licence_verification_failed("kb_nonce");
        attachment_bytes(5);
        attachment_completed();
        attachment_hash_mismatch();
        let text = h.render();
        for name in [
            ATTACHMENT_BYTES,
            ATTACHMENTS_COMPLETED,
            ATTACHMENT_HASH_MISMATCHES,
        ] {
            assert!(text.contains(&format!("{name} ")), "{name}: {text}");
        }
        assert!(
            text.contains("zhangban_submissions_accepted_total "),
            "{text}"
        );
        assert!(
            text.contains("zhangban_submission_replays_total "),
            "{text}"
        );
        assert!(
            text.contains("zhangban_submissions_rejected_total{code=\"validation_failed\"}"),
            "{text}"
        );
        assert!(
            text.contains("zhangban_licence_verifications_failed_total{code=\"kb_nonce\"}"),
            "{text}"
        );
    }
}
