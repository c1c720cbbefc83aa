//! Operator lexicon changes reach a phone at its next sync and change its
//! results (issue 16, ADR 0181): a made-up colloquial term finds nothing
//! relevant; a publisher maps it to a guide's official name through the
//! API; after the phone's next catalog sync the same query finds that guide
//! first, through the synonym; removing the entry reverts it. In between,
//! syncs that change nothing cost a 304, and a phone that restarts keeps
//! the synced lexicon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_core::client::ManualClock;
use zhangban_core::search::{Lexicon, MatchKind};
use zhangban_tests::{TestServer, system_now};

/// A term nobody uses, so the built-in lexicon cannot know it.
const TERM: &str = "跑一趟证";

fn first_guide_named(server: &TestServer) -> (String, String) {
    let page = server.state.store.catalog_changes(0, 1000).unwrap();
    page.changes
        .iter()
        .filter_map(|c| c.body.as_deref())
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .map(|g| {
            (
                g["id"].as_str().unwrap().to_owned(),
                g["name"].as_str().unwrap().to_owned(),
            )
        })
        // A name a target may carry (at most 32 characters) and that the
        // term's characters do not already find.
        .find(|(_, name)| name.chars().count() <= 32 && !name.contains('证'))
        .expect("a guide with a short name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_lexicon_entry_changes_a_phones_results_after_its_next_sync() {
    let server = TestServer::start().await;
    let (guide_id, name) = first_guide_named(&server);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let phone = server.open_client(&path, clock.clone()).await;

    let first = phone.sync_catalog().await.unwrap();
    assert!(first.upserted > 0);
    // The server's first version is the built-in seed: nothing to fetch.
    assert_eq!(first.lexicon.version, Lexicon::builtin().version);
    assert!(!first.lexicon.updated, "{:?}", first.lexicon);
    assert_eq!(first.lexicon.fault, None);
    let before = phone.search(TERM, 10).unwrap();
    assert!(
        before.iter().all(|h| h.guide_id != guide_id),
        "{TERM} already finds {name}: {before:?}"
    );

    // A publisher adds the entry through the operator API.
    let resp = server
        .op(Method::PUT, &format!("/v1/operator/lexicon/entries/{TERM}"))
        .json(&json!({"targets": [name], "source": "end-to-end test"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let put: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{put}");
    let version = put["version"].as_u64().unwrap();
    assert_eq!(version, Lexicon::builtin().version + 1);

    // Before the phone syncs, nothing changes on it.
    assert!(
        phone
            .search(TERM, 10)
            .unwrap()
            .iter()
            .all(|h| h.guide_id != guide_id)
    );
    let second = phone.sync_catalog().await.unwrap();
    assert_eq!(second.upserted, 0, "the catalog did not change");
    assert!(second.lexicon.updated, "{:?}", second.lexicon);
    assert_eq!(second.lexicon.version, version);
    let hits = phone.search(TERM, 10).unwrap();
    let top = hits.first().unwrap_or_else(|| panic!("{TERM}: no hits"));
    assert_eq!(top.guide_id, guide_id, "{TERM}: {hits:?}");
    assert_eq!(top.matched, MatchKind::Synonym, "{top:?}");

    // A sync with nothing new is a 304: nothing fetched, nothing changed.
    let third = phone.sync_catalog().await.unwrap();
    assert!(!third.lexicon.updated);
    assert_eq!(third.lexicon.version, version);
    assert_eq!(third.lexicon.wire_bytes, 0, "{:?}", third.lexicon);

    // A restarted phone searches with the lexicon it stored.
    drop(phone);
    let phone = server.open_client(&path, clock.clone()).await;
    assert_eq!(phone.search(TERM, 10).unwrap()[0].guide_id, guide_id);

    // Removing the entry reverts the phone's results at its next sync.
    let resp = server
        .op(
            Method::DELETE,
            &format!("/v1/operator/lexicon/entries/{TERM}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fourth = phone.sync_catalog().await.unwrap();
    assert!(fourth.lexicon.updated);
    assert_eq!(fourth.lexicon.version, version + 1);
    let after = phone.search(TERM, 10).unwrap();
    assert!(
        after.iter().all(|h| h.guide_id != guide_id),
        "{TERM} still finds {name}: {after:?}"
    );
    // The built-in entries are still there (低保 → 最低生活保障).
    let lexicon = phone.store().lexicon().unwrap();
    assert!(lexicon.entries.iter().any(|e| e.term == "低保"));
    assert!(lexicon.entries.iter().all(|e| e.term != TERM));
}
