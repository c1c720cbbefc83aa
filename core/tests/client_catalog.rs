//! Catalog sync, sans-IO: a page is checked (cursor continuity, checksums
//! over the exact bytes, ids, sequence) before anything is applied, and a
//! page is applied in one transaction with its cursor.

#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use sha2::{Digest as _, Sha256};
use zhangban_core::client::ClientStore;
use zhangban_core::client::api::CatalogPageIn;
use zhangban_core::client::catalog::{CatalogStep, CatalogSync};
use zhangban_core::guide::fixture::demo_catalog;

const FIXTURE: &str = include_str!("../../server/data/guang-an-service-items.json");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A page as the server would send it: guides `from..to` with sequence
/// numbers starting after `since`.
fn page(since: u64, guides: &[zhangban_core::guide::Guide], head: u64, more: bool) -> String {
    // Built as text, as the server does: each guide's bytes are exactly the
    // ones its checksum covers.
    let changes: Vec<String> = guides
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let body = serde_json::to_string(g).unwrap();
            format!(
                r#"{{"id":{},"seq":{},"checksum":"{}","deleted":false,"guide":{body}}}"#,
                json!(g.id),
                since + 1 + i as u64,
                hex(&Sha256::digest(body.as_bytes()))
            )
        })
        .collect();
    let next = since + guides.len() as u64;
    format!(
        r#"{{"since":{since},"next":{next},"head":{head},"more":{more},"changes":[{}]}}"#,
        changes.join(",")
    )
}

/// Edits a page through a JSON value (which reorders keys: every checksum
/// then mismatches), then puts the original guide bytes back where `keep`.
fn edit(text: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    f(&mut v);
    v.to_string()
}

fn parse(text: &str) -> CatalogPageIn {
    serde_json::from_str(text).unwrap()
}

#[test]
fn pages_apply_with_their_cursor_and_resume() {
    let guides = demo_catalog(FIXTURE, 1_790_000_000).unwrap();
    let store = ClientStore::in_memory().unwrap();
    let mut sync = CatalogSync::new(store.catalog_cursor().unwrap(), 3);
    assert_eq!(sync.next_step(), CatalogStep::Fetch { since: 0, limit: 3 });
    let p1 = parse(&page(0, &guides[0..3], 6, true));
    let b1 = sync.check(&p1).unwrap();
    store.apply_catalog(&b1).unwrap();
    sync.applied(&b1, true, 6, 100);
    assert_eq!(store.catalog_cursor().unwrap(), 3);
    assert_eq!(store.guide_count().unwrap(), 3);
    // A cut here: a new sync resumes from the stored cursor.
    let mut sync = CatalogSync::new(store.catalog_cursor().unwrap(), 3);
    assert_eq!(sync.next_step(), CatalogStep::Fetch { since: 3, limit: 3 });
    let p2 = parse(&page(3, &guides[3..6], 6, false));
    let b2 = sync.check(&p2).unwrap();
    store.apply_catalog(&b2).unwrap();
    sync.applied(&b2, false, 6, 100);
    assert_eq!(sync.next_step(), CatalogStep::Done);
    assert_eq!(store.guide_count().unwrap(), 6);
    assert_eq!(store.guide(&guides[4].id).unwrap().unwrap(), guides[4]);
    // Applying a page twice (a lost answer, a second sync) is refused, not doubled.
    refused(store.apply_catalog(&b2), "moved on meanwhile");
    // A tombstone removes the guide.
    let gone = guides[1].id.clone();
    let t = parse(
        &json!({"since": 6, "next": 7, "head": 7, "more": false,
                "changes": [{"id": gone, "seq": 7, "checksum": "", "deleted": true, "guide": null}]})
        .to_string(),
    );
    let sync = CatalogSync::new(6, 3);
    store.apply_catalog(&sync.check(&t).unwrap()).unwrap();
    assert!(store.guide(&gone).unwrap().is_none());
    assert_eq!(store.guide_count().unwrap(), 5);
}

/// Asserts that `r` is the protocol refusal named by `why` (a part of its
/// message), not any error: a check that fails for another reason than the
/// one a line names would otherwise pass unnoticed.
#[track_caller]
fn refused<T: std::fmt::Debug>(r: zhangban_core::client::ClientResult<T>, why: &str) {
    match r {
        Err(zhangban_core::client::ClientError::Protocol(m)) => {
            assert!(m.contains(why), "refused for `{m}`, expected `{why}`");
        }
        other => panic!("expected a protocol refusal `{why}`, got {other:?}"),
    }
}

#[test]
fn a_bad_page_is_refused_whole() {
    let guides = demo_catalog(FIXTURE, 1_790_000_000).unwrap();
    let good = page(0, &guides[0..2], 2, false);
    let sync = CatalogSync::new(0, 10);
    assert!(sync.check(&parse(&good)).is_ok());
    // A guide changed in transit by one character (checksum of the original).
    let name = serde_json::to_string(&guides[0].name).unwrap();
    let tampered = good.replacen(&name, &name.replacen('企', "全", 1), 1);
    assert_ne!(tampered, good);
    refused(sync.check(&parse(&tampered)), "checksum mismatch");
    // A checksum that does not match the bytes.
    let sum = good.split("\"checksum\":\"").nth(1).unwrap()[..64].to_owned();
    refused(
        sync.check(&parse(&good.replacen(&sum, &"0".repeat(64), 1))),
        "checksum mismatch",
    );
    // A guide under another id (its checksum is right, its id is not).
    let other = guides[1].id.clone();
    let wrong_id = good.replacen(
        &format!("\"id\":\"{}\",\"seq\"", guides[0].id),
        &format!("\"id\":\"{other}\",\"seq\""),
        1,
    );
    refused(sync.check(&parse(&wrong_id)), "carries another id");
    // Not the page asked for.
    refused(
        CatalogSync::new(5, 10).check(&parse(&good)),
        "but 5 was asked",
    );
    // Sequence numbers out of order, or past `next`.
    refused(
        sync.check(&parse(&good.replacen("\"seq\":2", "\"seq\":1", 1))),
        "out of sequence",
    );
    refused(
        sync.check(&parse(&good.replacen("\"next\":2", "\"next\":1", 1))),
        "out of sequence",
    );
    // A change that is neither guide nor tombstone.
    refused(
        sync.check(&parse(&good.replacen(
            "\"deleted\":false",
            "\"deleted\":true",
            1,
        ))),
        "neither a guide nor a tombstone",
    );
    // Re-encoding a page (key order changes) breaks every checksum: refused.
    refused(
        sync.check(&parse(&edit(&good, |_| {}))),
        "checksum mismatch",
    );
    // An empty page claiming more.
    let e = json!({"since": 0, "next": 0, "head": 9, "more": true, "changes": []}).to_string();
    refused(sync.check(&parse(&e)), "empty page that claims more");
}

/// How many FTS5 segments the index table `table` holds (each segment's
/// rows in `<table>_data` carry its id in the bits above 37).
fn segments(c: &rusqlite::Connection, table: &str) -> i64 {
    c.query_row(
        &format!("SELECT count(DISTINCT rowid >> 37) FROM {table}_data WHERE rowid >> 37 > 0"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A page goes into each search index as one segment, written at commit:
/// no statement of the apply opens a savepoint (an upsert's `RETURNING`
/// did, and FTS5 writes its pending data out at every savepoint, which made
/// a segment of each guide, merged again and again). A re-sync that updates
/// guides re-indexes them (their old index rows deleted first).
#[test]
fn a_page_is_indexed_in_one_segment_not_one_per_guide() {
    let guides = demo_catalog(FIXTURE, 1_790_000_000).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let store = ClientStore::open(&path).unwrap();
    let sync = CatalogSync::new(0, 40);
    let batch = sync
        .check(&parse(&page(0, &guides[0..40], 40, false)))
        .unwrap();
    store.apply_catalog(&batch).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(segments(&c, "guide_fts"), 1);
    assert_eq!(segments(&c, "guide_pinyin"), 1);
    // The same guides again, renamed: updated in place and re-indexed.
    let renamed: Vec<_> = guides[0..40]
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g.name = format!("更新{}", g.name);
            g
        })
        .collect();
    let sync = CatalogSync::new(40, 40);
    let batch = sync.check(&parse(&page(40, &renamed, 80, false))).unwrap();
    store.apply_catalog(&batch).unwrap();
    assert_eq!(store.guide_count().unwrap(), 40);
    let count = |table: &str, expr: &str| -> i64 {
        c.query_row(
            &format!("SELECT count(*) FROM {table} WHERE {table} MATCH ?1"),
            [expr],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("guide_fts", "name:\"更新\""), 40);
    assert_eq!(count("guide_pinyin", "py_full:gengxin*"), 40);
    let rows: i64 = c
        .query_row("SELECT count(*) FROM guide_fts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 40, "one index row per guide, the old ones deleted");
    assert_eq!(store.search("更新", 50).unwrap().len(), 40);
}
