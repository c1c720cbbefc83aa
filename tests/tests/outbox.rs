//! The exactly-once outbox end to end: real core clients (SQLite store,
//! reqwest shell) against the real server on loopback, with the server down,
//! and through a fault-injecting proxy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use zhangban_core::client::{Client, ClientStore, Draft, ManualClock, OutboxEntry};
use zhangban_core::outbox::OutboxState;
use zhangban_tests::proxy::{FaultPlan, FaultProxy};
use zhangban_tests::server::json_ok;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fillable_guides, filled_draft, system_now};

struct Phone {
    client: Client,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A client with its own store, enrolled and synced against `url` (the
/// server, or a proxy in front of it) while `server` is up.
async fn phone(server: &TestServer, url: &str) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(system_now()));
    let client = server
        .open_client_at(&dir.path().join("phone.db"), url, clock.clone())
        .await;
    client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    let report = client.sync().await.unwrap();
    assert_eq!(report.catalog.upserted, 1135);
    Phone {
        client,
        clock,
        _dir: dir,
    }
}

fn draft(guide: &zhangban_core::guide::Guide, i: usize, now: i64) -> Draft {
    filled_draft(&format!("draft-{i:04}"), guide, now).unwrap()
}

/// Flushes until nothing is pending, moving the client's clock past each
/// backoff; returns the number of flush rounds.
async fn flush_until_done(p: &Phone, max_rounds: usize) -> usize {
    for round in 1..=max_rounds {
        let r = p.client.flush().await.unwrap();
        if p.client.store().pending().unwrap().is_empty() {
            return round;
        }
        let next = r.next_attempt_at.unwrap_or(p.clock.now_secs());
        p.clock.set(next.max(p.clock.now_secs()) + 1);
    }
    panic!("outbox not drained after {max_rounds} flushes");
}

trait Now {
    fn now_secs(&self) -> i64;
}
impl Now for ManualClock {
    fn now_secs(&self) -> i64 {
        zhangban_core::client::Clock::now(self)
    }
}

/// The receipts the client stored, by client id.
fn client_receipts(p: &Phone) -> BTreeMap<String, String> {
    p.client.store().receipts().unwrap().into_iter().collect()
}

/// The server's submissions of the demo resident, client id → tracking number.
fn server_receipts(s: &TestServer) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in s.submissions() {
        assert!(
            out.insert(
                r.receipt.client_id.clone(),
                r.receipt.tracking_number.clone()
            )
            .is_none(),
            "client id {} stored twice",
            r.receipt.client_id
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_made_offline_are_accepted_once_the_server_is_up() {
    let mut server = TestServer::start_demo().await;
    let url = server.base.clone();
    let p = phone(&server, &url).await;
    let now = p.clock.now_secs();
    let guides = fillable_guides(&p.client, now);
    assert!(guides.len() >= 10, "only {} fillable guides", guides.len());

    server.stop().await;
    let mut ids = Vec::new();
    for (i, g) in guides.iter().take(10).enumerate() {
        ids.push(p.client.submit(&draft(g, i, now)).unwrap());
    }
    // A double tap queues nothing new.
    assert_eq!(p.client.submit(&draft(&guides[0], 0, now)).unwrap(), ids[0]);

    let r = p.client.flush().await.unwrap();
    assert!(r.offline, "{r:?}");
    assert_eq!(r.accepted, 0);
    assert_eq!(r.sent, 1, "the flush stops at the first unreachable send");
    let entries = p.client.outbox().unwrap();
    assert_eq!(entries.len(), 10);
    assert!(entries.iter().all(|e| e.state.is_pending()));
    let failed: Vec<&OutboxEntry> = entries
        .iter()
        .filter(|e| e.state == OutboxState::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("network"));
    // The others wait for the same retry time instead of hammering.
    let next = r.next_attempt_at.unwrap();
    assert!(next > now);
    assert!(entries.iter().all(|e| e.next_attempt_at == next));
    // Nothing is due before that time.
    let r = p.client.flush().await.unwrap();
    assert_eq!(r.sent, 0);

    server.restart().await;
    p.clock.set(next);
    let r = p.client.flush().await.unwrap();
    assert_eq!(r.accepted, 10, "{r:?}");
    assert!(!r.offline);
    assert!(p.client.store().pending().unwrap().is_empty());

    let mine = client_receipts(&p);
    let theirs = server_receipts(&server);
    assert_eq!(mine.len(), 10);
    assert_eq!(mine, theirs);
    for id in &ids {
        let e = p.client.store().outbox_entry(id).unwrap().unwrap();
        assert_eq!(e.state, OutboxState::Accepted);
        assert_eq!(e.tracking_number.as_ref(), theirs.get(id));
    }
    // Flushing again sends nothing.
    assert_eq!(p.client.flush().await.unwrap().sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_submission_does_not_block_the_rest_and_can_be_corrected() {
    let server = TestServer::start_demo().await;
    let url = server.base.clone();
    let p = phone(&server, &url).await;
    let now = p.clock.now_secs();
    let guides = fillable_guides(&p.client, now);
    let good = draft(&guides[0], 0, now);
    let id_good = p.client.submit(&good).unwrap();

    // A draft that passed local validation against an older form version
    // the server no longer takes: queue it directly (as an old app would
    // have), first in line.
    let mut stale = draft(&guides[1], 1, now);
    stale.form_version += 7;
    let id_stale = p
        .client
        .store()
        .queue(&stale, "stale-form-version-0001", now - 10)
        .unwrap();
    let r = p.client.flush().await.unwrap();
    assert_eq!((r.accepted, r.rejected), (1, 1), "{r:?}");
    let e = p.client.store().outbox_entry(&id_stale).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Rejected);
    assert_eq!(e.last_error.as_deref(), Some("validation_failed"));
    assert!(e.errors.is_some());
    assert_eq!(
        p.client
            .store()
            .outbox_entry(&id_good)
            .unwrap()
            .unwrap()
            .state,
        OutboxState::Accepted
    );
    // Rejected entries are not retried.
    assert_eq!(p.client.flush().await.unwrap().sent, 0);

    // The resident fills it again against the form as cached now.
    p.client.correct(&id_stale, &stale.values).unwrap();
    let e = p.client.store().outbox_entry(&id_stale).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Queued);
    assert_eq!(e.form_version, guides[1].form.version);
    assert_eq!(
        (e.attempts, e.errors.clone(), e.last_error.clone()),
        (0, None, None)
    );
    let r = p.client.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    assert_eq!(client_receipts(&p), server_receipts(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_submissions_through_a_hostile_proxy_arrive_exactly_once() {
    let server = TestServer::start_demo().await;
    let proxy = FaultProxy::start(server.addr, FaultPlan::hostile(), 20_261_202)
        .await
        .unwrap();
    proxy.set_faults(false);
    let p = phone(&server, &proxy.url()).await;
    proxy.set_faults(true);
    let now = p.clock.now_secs();
    let guides = fillable_guides(&p.client, now);
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(
            p.client
                .submit(&draft(&guides[i % guides.len()], i, now))
                .unwrap(),
        );
    }
    let rounds = flush_until_done(&p, 2_000).await;

    let counts = &proxy.counts;
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let mine = client_receipts(&p);
    let theirs = server_receipts(&server);
    assert_eq!(
        theirs.len(),
        500,
        "server holds {} submissions",
        theirs.len()
    );
    assert_eq!(mine.len(), 500);
    assert_eq!(mine, theirs, "every receipt matches the server's record");
    for id in &ids {
        assert!(mine.contains_key(id));
    }
    // The faults really fired, of every kind that matters here.
    assert!(
        n(&counts.dropped_responses) > 0 && n(&counts.dropped_requests) > 0,
        "{counts:?}"
    );
    assert!(n(&counts.duplicated) > 0 && n(&counts.cut_bodies) > 0 && n(&counts.server_errors) > 0);
    println!("500 submissions in {rounds} flush rounds through {counts:?}");
}

#[tokio::test]
async fn store_opened_by_the_first_schema_upgrades_with_queued_submissions_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let old = ClientStore::open_at_version(&path, 1).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);
        let d = Draft {
            id: "draft-old".into(),
            guide_id: "g-1".into(),
            form_version: 1,
            values: serde_json::from_str(r#"{"applicant_name":"测试"}"#).unwrap(),
            created_at: 100,
            updated_at: 100,
        };
        drop(old);
        // Written as the first release wrote it.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO drafts(id, guide_id, form_version, body, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 100, 100)",
            rusqlite::params![
                d.id,
                d.guide_id,
                d.form_version,
                serde_json::Value::Object(d.values.clone()).to_string()
            ],
        )
        .unwrap();
        c.execute(
            "INSERT INTO outbox(client_id, draft_id, guide_id, form_version, body, state, attempts,
                 next_attempt_at, last_error, created_at, updated_at)
             VALUES ('client-id-from-v1', ?1, ?2, ?3, ?4, 'failed', 3, 160, 'network', 100, 150)",
            rusqlite::params![
                d.id,
                d.guide_id,
                d.form_version,
                serde_json::Value::Object(d.values).to_string()
            ],
        )
        .unwrap();
    }
    let store = zhangban_tests::open_store(&path).await;
    assert_eq!(
        store.schema_version().unwrap(),
        zhangban_core::client::store::MIGRATIONS.len()
    );
    let pending = store.pending().unwrap();
    assert_eq!(pending.len(), 1);
    let e = &pending[0];
    assert_eq!(e.client_id, "client-id-from-v1");
    assert_eq!(e.state, OutboxState::Failed);
    assert_eq!((e.attempts, e.next_attempt_at), (3, 160));
    assert_eq!(e.last_error.as_deref(), Some("network"));
    assert_eq!(e.values["applicant_name"], "测试");
    assert_eq!(e.wire, None);
    assert_eq!(e.errors, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_upload_in_resumable_chunks_through_a_hostile_proxy() {
    use zhangban_core::guide::FieldKind;
    let server = TestServer::start_demo().await;
    let proxy = FaultProxy::start(server.addr, FaultPlan::hostile(), 7)
        .await
        .unwrap();
    proxy.set_faults(false);
    let p = phone(&server, &proxy.url()).await;
    proxy.set_faults(true);
    let now = p.clock.now_secs();
    // Guides that require a file (and no licence).
    let guides: Vec<_> = zhangban_core::guide::demo_catalog(zhangban_server::setup::FIXTURE, now)
        .unwrap()
        .into_iter()
        .filter_map(|g| p.client.guide(&g.id).ok())
        .filter(|g| {
            g.form
                .fields
                .iter()
                .any(|f| f.required && matches!(f.kind, FieldKind::Attachment { .. }))
        })
        .filter(|g| zhangban_tests::fill_with_files(&p.client, g, now, 1, 0).is_some())
        .take(12)
        .collect();
    assert_eq!(guides.len(), 12);
    let mut files = Vec::new();
    for (i, g) in guides.iter().enumerate() {
        // 600 KiB: three chunks each.
        let values =
            zhangban_tests::fill_with_files(&p.client, g, now, 600 * 1024, i as u64 + 1).unwrap();
        let d = Draft {
            id: format!("draft-file-{i}"),
            guide_id: g.id.clone(),
            form_version: g.form.version,
            values,
            created_at: now,
            updated_at: now,
        };
        let id = p.client.submit(&d).unwrap();
        files.push((id, d.values));
    }
    flush_until_done(&p, 500).await;
    let theirs = server_receipts(&server);
    assert_eq!(theirs.len(), 12);
    assert_eq!(client_receipts(&p), theirs);
    let http = reqwest::Client::new();
    for (id, values) in &files {
        let tracking = &theirs[id];
        let links: serde_json::Value = json_ok(
            http.get(format!(
                "{}/v1/operator/submissions/{tracking}/attachments",
                server.base
            ))
            .bearer_auth(server.operator_token_for("/v1/operator/submissions")),
        )
        .await;
        let links = links.as_array().unwrap();
        assert!(!links.is_empty());
        for l in links {
            let sha = l["sha256"].as_str().unwrap();
            assert!(values.values().any(|v| v["sha256"] == sha));
            let bytes = http
                .get(format!(
                    "{}/v1/operator/submissions/{tracking}/attachments/{sha}",
                    server.base
                ))
                .bearer_auth(server.operator_token_for("/v1/operator/submissions"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(bytes.len(), 600 * 1024);
            assert_eq!(
                p.client.store().attachment_data(sha).unwrap().unwrap(),
                bytes.to_vec(),
                "the server holds exactly the phone's bytes"
            );
        }
    }
    let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n(&proxy.counts.cut_bodies) + n(&proxy.counts.dropped_responses) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_stuck_by_a_clock_that_jumped_back_is_healed_by_the_liveness_check() {
    let mut server = TestServer::start_demo().await;
    let url = server.base.clone();
    let p = phone(&server, &url).await;
    let real = p.clock.now_secs();
    let guides = fillable_guides(&p.client, real);
    // The phone's clock is a month ahead while it is offline.
    server.stop().await;
    p.clock.set(real + 30 * 86_400);
    let id = p.client.submit(&draft(&guides[0], 0, real)).unwrap();
    assert!(p.client.flush().await.unwrap().offline);
    // The clock is set right; the retry date now lies a month away.
    server.restart().await;
    p.clock.set(real);
    assert_eq!(p.client.flush().await.unwrap().sent, 0);
    assert!(
        p.client.check_liveness(false, 300).unwrap().is_none(),
        "offline is not stuck"
    );
    let heal = p.client.check_liveness(true, 300).unwrap().unwrap();
    assert_eq!(heal.reset, vec![id.clone()]);
    let r = p.client.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");
    assert!(p.client.check_liveness(true, 300).unwrap().is_none());
    assert_eq!(client_receipts(&p), server_receipts(&server));
}
