//! Catalog sync end to end: through a proxy that cuts bodies and drops
//! responses the sync resumes from the last applied page and ends with
//! exactly the server's catalog; withdrawals and updates arrive as deltas
//! (tombstones leave the local search index too); gzip on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::Value;
use zhangban_core::client::{Client, ManualClock};
use zhangban_tests::proxy::{FaultPlan, FaultProxy};
use zhangban_tests::{TestServer, system_now};

async fn client(url: &str, server: &TestServer, dir: &tempfile::TempDir) -> Client {
    server
        .open_client_at(
            &dir.path().join("phone.db"),
            url,
            Arc::new(ManualClock::new(system_now())),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_sync_resumes_from_its_last_page_and_ends_with_the_servers_catalog() {
    let server = TestServer::start_demo().await;
    // Half of all responses cut mid-body or lost; some 503s.
    let mut plan = FaultPlan::clean();
    plan.cut_body = 300;
    plan.drop_response = 150;
    plan.server_error = 50;
    let proxy = FaultProxy::start(server.addr, plan, 99).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(&proxy.url(), &server, &dir).await;
    c.set_catalog_page_size(50);
    let (mut failures, mut pages, mut wire) = (0, 0, 0);
    let mut cursors = vec![0];
    let mut done = false;
    for _ in 0..200 {
        match c.sync_catalog().await {
            Ok(r) => {
                pages += r.pages;
                wire += r.wire_bytes;
                done = true;
                break;
            }
            Err(e) => {
                failures += 1;
                let cursor = c.store().catalog_cursor().unwrap();
                assert!(
                    cursor >= *cursors.last().unwrap(),
                    "the cursor never goes back"
                );
                assert_eq!(cursor % 50, 0, "applied whole pages only");
                cursors.push(cursor);
                // Whatever was applied stays applied: the cursor never goes back.
                assert!(
                    matches!(
                        e,
                        zhangban_core::client::ClientError::Network(_)
                            | zhangban_core::client::ClientError::Server { .. }
                            | zhangban_core::client::ClientError::Protocol(_)
                    ),
                    "{e}"
                );
            }
        }
    }
    assert!(done, "sync never completed");
    assert!(failures > 0, "the proxy cut at least one sync");
    assert_eq!(c.store().guide_count().unwrap(), 1135);
    assert_eq!(c.store().catalog_cursor().unwrap(), 1135);
    // Every cached guide is byte-for-byte the server's (its checksum).
    let direct = client(&server.base, &server, &tempfile::tempdir().unwrap()).await;
    direct.sync_catalog().await.unwrap();
    let ids: Vec<String> =
        zhangban_core::guide::demo_catalog(zhangban_server::setup::FIXTURE, system_now())
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
    for id in &ids {
        assert_eq!(c.guide(id).unwrap(), direct.guide(id).unwrap(), "{id}");
    }
    assert!(
        cursors.iter().any(|c| *c > 0),
        "progress survived the cuts: {cursors:?}"
    );
    println!(
        "synced after {failures} cut syncs (cursors {cursors:?}); last run {pages} pages, {wire} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_and_updates_arrive_as_deltas_with_gzip() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server.base, &server, &dir).await;
    let first = c.sync_catalog().await.unwrap();
    assert_eq!(first.upserted, 1135);
    let plain: u64 = {
        let raw = reqwest::get(format!(
            "{}/v1/catalog/changes?since=0&limit=500",
            server.base
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
        raw.len() as u64
    };
    assert!(
        first.wire_bytes * 3 < plain * first.pages as u64,
        "gzip: {} bytes on the wire for {} pages of ~{plain} bytes",
        first.wire_bytes,
        first.pages
    );

    // The operator withdraws one guide and republishes another, renamed.
    let http = reqwest::Client::new();
    let hits = c.search("户口迁移", 5).unwrap();
    let gone = hits[0].guide_id.clone();
    let resp = http
        .delete(format!("{}/v1/operator/guides/{gone}", server.base))
        .bearer_auth(server.operator_token_for("/v1/operator/guides"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let mut changed: Value = serde_json::to_value(
        c.guide(&c.search("教师资格认定", 1).unwrap()[0].guide_id)
            .unwrap(),
    )
    .unwrap();
    changed["name"] = "教师资格认定（托育机构）".into();
    changed["version"] = (changed["version"].as_u64().unwrap() + 1).into();
    let id = changed["id"].as_str().unwrap().to_owned();
    let resp = http
        .put(format!("{}/v1/operator/guides/{id}", server.base))
        .bearer_auth(server.operator_token_for("/v1/operator/guides"))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let delta = c.sync_catalog().await.unwrap();
    assert_eq!((delta.upserted, delta.deleted), (1, 1), "{delta:?}");
    assert!(delta.wire_bytes < first.wire_bytes / 50);
    assert!(c.guide(&gone).is_err());
    assert!(
        c.search("户口迁移", 5)
            .unwrap()
            .iter()
            .all(|h| h.guide_id != gone)
    );
    assert_eq!(c.search("托育机构", 5).unwrap()[0].guide_id, id);
    assert_eq!(c.store().guide_count().unwrap(), 1134);
    // Up to date: nothing more.
    let again = c.sync_catalog().await.unwrap();
    assert_eq!((again.upserted, again.deleted, again.pages), (0, 0, 1));
}

/// Two syncs at once on one client (a pull-to-refresh racing a background
/// sync) both succeed: the second waits for the first and then finds
/// nothing new, instead of failing on the page the first applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syncs_of_one_client_both_succeed() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(&server.base, &server, &dir).await;
    c.set_catalog_page_size(100);
    let (a, b) = tokio::join!(c.sync_catalog(), c.sync_catalog());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(c.store().catalog_cursor().unwrap(), 1135);
    assert_eq!(c.store().guide_count().unwrap(), 1135);
    assert_eq!(
        a.upserted + b.upserted,
        1135,
        "each guide applied by exactly one of them: {a:?} {b:?}"
    );
}
