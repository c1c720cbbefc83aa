//! What is SQLite's alone: its migrations. A database written at every
//! older schema version upgrades in place with its data intact, a newer one
//! is refused, and no shipped migration changes. What every backend must
//! do (dedupe, feeds, uploads, durability, …) is in the conformance suite
//! (`store_conformance.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rusqlite::{Connection, params};
use zhangban_server::state::sha256_hex;
use zhangban_server::store::prelude::*;
use zhangban_server::store::sqlite::{MIGRATIONS, SqliteStore};
use zhangban_server::store::{
    AttachmentLink, ChunkOutcome, NewSubmission, StoreError, WalletEntry,
};

fn submission(client_id: &str, resident: &str, body: &str) -> NewSubmission {
    NewSubmission {
        client_id: client_id.to_owned(),
        resident_id: resident.to_owned(),
        device_id: "device".to_owned(),
        guide_id: "guide".to_owned(),
        form_version: 1,
        body: body.to_owned(),
        request_hash: format!("hash-of-{body}"),
        area_code: "511602000000".to_owned(),
        department_code: "dept".to_owned(),
        at: 1_790_000_000,
        attachments: Vec::new(),
    }
}

#[test]
fn a_first_schema_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(
            "INSERT INTO residents VALUES ('r1', '甲', 0);
             INSERT INTO submission_dedupe VALUES ('client-0001', 'r1', 'h',
               '{\"client_id\":\"client-0001\",\"tracking_number\":\"51160220260101000001\",\"guide_id\":\"g\",\"accepted_at\":5}', 5);
             INSERT INTO submissions VALUES ('client-0001', 'r1', 'd1', 'g', 1, '{\"a\":1}',
               '51160220260101000001', 'submitted', 5);
             INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
               VALUES ('client-0001', 'r1', '51160220260101000001', 'submitted', NULL, 5);
             INSERT INTO presentation_nonces VALUES ('n', 'r1', 'client-0002', 99);",
        )
        .unwrap();
        // Two copies of one licence for one device (a delivery race of the
        // first version): the upgrade keeps the first.
        for id in [1, 2] {
            c.execute(
                "INSERT INTO licences(id, licence_id, resident_id, device_id, issuer_id, vct, status_uri,
                   status_idx, sd_jwt, issued_at) VALUES (?1, 'L1', 'r1', 'd1', 'i', 'v', 'u', ?1, 'jwt', 0)",
                params![id],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    let subs = store.submissions_of("r1").unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].receipt.tracking_number, "51160220260101000001");
    assert_eq!(subs[0].values["a"], 1);
    assert_eq!(store.events_since("r1", 0, 10).unwrap().len(), 1);
    assert_eq!(
        store.licence_copies("L1").unwrap(),
        vec![("u".to_owned(), 1)]
    );
    // The upgraded schema refuses a second copy per device.
    let entry = WalletEntry {
        id: 0,
        licence_id: "L1".into(),
        device_id: "d1".into(),
        vct: "v".into(),
        sd_jwt: "jwt".into(),
        issued_at: 0,
    };
    assert!(matches!(
        store.put_licence("r1", &entry, "i", "u", 3),
        Err(StoreError::Conflict(_))
    ));
    // And the new submission path still works on the upgraded database.
    let s = store
        .submit(&submission("client-0002", "r1", "{}"))
        .unwrap();
    assert!(s.fresh);
    drop(store);
    // Reopening runs nothing twice.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.submissions_of("r1").unwrap().len(), 2);
}

fn link(field: &str, bytes: &[u8]) -> AttachmentLink {
    AttachmentLink {
        field: field.to_owned(),
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        media_type: "application/pdf".to_owned(),
        name: "scan.pdf".to_owned(),
    }
}

/// Uploads `bytes` in one chunk (no verdict: the store hashes).
fn upload_all(store: &SqliteStore, resident: &str, bytes: &[u8]) {
    let sha = sha256_hex(bytes);
    store
        .begin_upload(resident, &sha, bytes.len() as u64, "application/pdf", 0)
        .unwrap();
    match store.put_chunk(resident, &sha, 0, bytes, None, 0).unwrap() {
        ChunkOutcome::Completed(u) => assert!(u.complete),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_schema_database_gains_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(MIGRATIONS[1]).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch(
            "INSERT INTO residents VALUES ('r1', '甲', 0);
             INSERT INTO submission_dedupe VALUES ('client-0001', 'r1', 'h',
               '{\"client_id\":\"client-0001\",\"tracking_number\":\"51160220260101000001\",\"guide_id\":\"g\",\"accepted_at\":5}', 5);
             INSERT INTO submissions VALUES ('client-0001', 'r1', 'd1', 'g', 1, '{\"a\":1}',
               '51160220260101000001', 'submitted', 5);",
        )
        .unwrap();
    }
    assert!(MIGRATIONS.len() >= 3);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    // The old submission is intact and references nothing.
    assert_eq!(store.submissions_of("r1").unwrap().len(), 1);
    assert_eq!(
        store
            .submission_attachments("51160220260101000001")
            .unwrap(),
        Some(vec![])
    );
    assert_eq!(store.submission_attachments("nope").unwrap(), None);
    // Uploads and links work on the upgraded database.
    let file = b"%PDF-1.4 upgraded".to_vec();
    upload_all(&store, "r1", &file);
    let mut s = submission("client-0002", "r1", "{}");
    s.attachments = vec![link("scan", &file)];
    let tracking = store.submit(&s).unwrap().receipt.tracking_number;
    drop(store);
    // Reopening runs nothing twice, and the link and bytes survive.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(
        store.submission_attachments(&tracking).unwrap(),
        Some(vec![link("scan", &file)])
    );
    let (l, bytes) = store
        .submission_attachment(&tracking, &sha256_hex(&file))
        .unwrap()
        .unwrap();
    assert_eq!(l, link("scan", &file));
    assert_eq!(bytes, file);
}

/// SHA-256 of each shipped migration's SQL, comments dropped and
/// whitespace collapsed: editing a shipped migration fails here (add the
/// next one instead). The values were taken from the SQL as it shipped,
/// when it was still written as Rust strings.
const SHIPPED: &[&str] = &[
    "1b962a10e345cb4dd819a336333abeae7be33577c1b4fb4a78f1048322672dd2",
    "846ff13e3de21b74a3645e52cc80a40e5650f1397a1638d50e0b7324c6a3b0a1",
    "4a9d83635f0406486378ec84344c21548d67ac6a09107b90d1782001e292e2fe",
    "57ce73a5aa337395b55dfe2dc44073f2974d3aa17d9139adcdd9e1081d5c6757",
    "a5d80beb48ad6315edd9926b4da2cb3d6333c2413cb1a3da71b0162624c648c4",
    "437e9494548b6154b7d04acc369f63a6d6349844d661347bfc4340c0e3a175ad",
    "08ff5470fc3407e927eda2f1683c84a052cf5586e133ebe9bea56af6db74014c",
    "168d35a231dcdb5a0707414ae0929d5ec145f4a3a5e4afb8eb56f567ffd03e0f",
    "bed7642373f54ef2bf78e6586c2a5a02365bdbe83db0d901bd513b40ae2665b7",
    "a5f6f5b0553816638b93c8988581dd1c97d9a9a00f53abc7d280541c421d730f",
];

fn sql_fingerprint(sql: &str) -> String {
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    let words: Vec<&str> = code.iter().flat_map(|l| l.split_whitespace()).collect();
    sha256_hex(words.join(" ").as_bytes())
}

#[test]
fn shipped_migrations_are_unchanged() {
    assert!(
        MIGRATIONS.len() >= SHIPPED.len(),
        "a shipped migration was removed"
    );
    for (i, (sql, pinned)) in MIGRATIONS.iter().zip(SHIPPED).enumerate() {
        assert_eq!(
            sql_fingerprint(sql),
            *pinned,
            "migration {} was edited after it shipped",
            i + 1
        );
    }
}

/// A database left at `version` by an older server: the first `version`
/// migrations applied, as that server applied them.
fn database_at_version(path: &std::path::Path, version: usize) {
    let c = Connection::open(path).unwrap();
    for sql in &MIGRATIONS[..version] {
        c.execute_batch(sql).unwrap();
    }
    c.pragma_update(None, "user_version", version).unwrap();
}

#[test]
fn a_database_at_every_older_version_upgrades_and_works() {
    for version in 0..MIGRATIONS.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        database_at_version(&path, version);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap() as usize,
            MIGRATIONS.len(),
            "from version {version}"
        );
        // Every domain writes and reads on the upgraded schema.
        store.put_guide("g1", "c1", "{}").unwrap();
        store.put_resident("r1", "甲", 0).unwrap();
        let s = store
            .submit(&submission("client-0001", "r1", "{}"))
            .unwrap();
        assert!(s.fresh, "from version {version}");
        let file = b"bytes".to_vec();
        upload_all(&store, "r1", &file);
        store.put_trust_bundle(1, "jws", 0).unwrap();
        store.ensure_status_list("u", "i", 8).unwrap();
        assert!(store.ensure_bootstrap("h", 0).is_ok());
        drop(store);
        // Reopening runs nothing twice.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.submissions_of("r1").unwrap().len(), 1);
        assert_eq!(store.audit_log(&Default::default()).unwrap().len(), 1);
    }
}

#[test]
fn a_database_newer_than_the_server_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    database_at_version(&path, MIGRATIONS.len());
    let newer = MIGRATIONS.len() + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Database(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let version: usize = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer);
}
