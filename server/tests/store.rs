//! The SQLite store on its own: group commit keeps each write's outcome its
//! own, reads see every write that returned, a database written by an
//! older schema upgrades in place with its submissions intact, and
//! attachment uploads append, resume and hash-check as documented.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rusqlite::{Connection, params};
use sha2::{Digest as _, Sha256};
use zhangban_server::state::sha256_hex;
use zhangban_server::store::prelude::*;
use zhangban_server::store::sqlite::{MIGRATIONS, SqliteStore};
use zhangban_server::store::{
    AttachmentLink, ChunkOutcome, ChunkVerdict, NewSubmission, StoreError, UploadStart, WalletEntry,
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
fn concurrent_writes_commit_together_but_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("z.db")).unwrap());
    store.put_resident("r1", "甲", 0).unwrap();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut fresh = 0;
                let mut conflicts = 0;
                for i in 0..40 {
                    let id = format!("client-{t:02}-{i:03}");
                    let s = store.submit(&submission(&id, "r1", "{}")).unwrap();
                    assert!(s.fresh);
                    fresh += 1;
                    // A retry: the same receipt, not stored again.
                    let again = store.submit(&submission(&id, "r1", "{}")).unwrap();
                    assert!(!again.fresh);
                    assert_eq!(again.receipt, s.receipt);
                    // The id reused for other content, or by another
                    // resident: refused, and nothing else in its batch is lost.
                    match store.submit(&submission(&id, "r1", "{\"x\":1}")) {
                        Err(StoreError::Conflict(_)) => conflicts += 1,
                        other => panic!("{other:?}"),
                    }
                    match store.submit(&submission(&id, "r2", "{}")) {
                        Err(StoreError::Conflict(_)) => conflicts += 1,
                        other => panic!("{other:?}"),
                    }
                    // Read-your-writes through the reader pool.
                    assert_eq!(store.receipt(&id).unwrap().unwrap().2, s.receipt);
                }
                (fresh, conflicts)
            })
        })
        .collect();
    let mut fresh = 0;
    for t in threads {
        let (f, c) = t.join().unwrap();
        fresh += f;
        assert_eq!(c, 80);
    }
    assert_eq!(fresh, 640);
    let mine = store.submissions_of("r1").unwrap();
    assert_eq!(mine.len(), 640);
    let mut tracking: Vec<_> = mine
        .iter()
        .map(|s| s.receipt.tracking_number.clone())
        .collect();
    tracking.sort();
    tracking.dedup();
    assert_eq!(tracking.len(), 640, "tracking numbers are unique");
    assert!(store.submissions_of("r2").unwrap().is_empty());
    assert_eq!(store.events_since("r1", 0, 1000).unwrap().len(), 640);
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

#[test]
fn server_secrets_are_created_once() {
    let store = SqliteStore::in_memory().unwrap();
    let a = store.secret("k", &[1; 32], 0).unwrap();
    let b = store.secret("k", &[2; 32], 1).unwrap();
    assert_eq!(a, vec![1; 32]);
    assert_eq!(b, a);
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

#[test]
fn chunks_append_at_the_end_and_the_last_is_hash_checked() {
    let store = SqliteStore::in_memory().unwrap();
    let file: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let sha = sha256_hex(&file);
    assert!(matches!(
        store.put_chunk("r1", &sha, 0, &file, None, 0),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .begin_upload("r1", &sha, 1000, "image/png", 0)
            .unwrap(),
        UploadStart::Created(_)
    ));
    let put = |offset: usize, end: usize, verdict| {
        store
            .put_chunk("r1", &sha, offset as u64, &file[offset..end], verdict, 0)
            .unwrap()
    };
    assert!(matches!(put(0, 400, None), ChunkOutcome::Appended(u) if u.received == 400));
    assert!(matches!(put(0, 400, None), ChunkOutcome::Unchanged(u) if u.received == 400));
    assert!(matches!(put(100, 200, None), ChunkOutcome::Unchanged(u) if u.received == 400));
    assert!(matches!(put(500, 600, None), ChunkOutcome::OffsetMismatch(u) if u.received == 400));
    assert!(matches!(put(300, 500, None), ChunkOutcome::OffsetMismatch(u) if u.received == 400));
    let mut long = file[400..].to_vec();
    long.push(0);
    assert!(matches!(
        store.put_chunk("r1", &sha, 400, &long, None, 0).unwrap(),
        ChunkOutcome::BeyondSize(_)
    ));
    assert!(matches!(
        store
            .put_chunk("r1", &sha, u64::MAX, &file[..1], None, 0)
            .unwrap(),
        ChunkOutcome::BeyondSize(_)
    ));

    // The caller's verdict for the current generation and stored length is
    // used as it is: a "no" drops every byte and starts a new generation.
    let (u, _) = store.upload_digest("r1", &sha).unwrap().unwrap();
    assert_eq!((u.generation, u.received), (0, 400));
    let no = ChunkVerdict {
        generation: 0,
        received: 400,
        matches: false,
    };
    match put(400, 1000, Some(no)) {
        ChunkOutcome::HashMismatch(u) => assert_eq!((u.received, u.generation), (0, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.upload("r1", &sha).unwrap().unwrap().received, 0);
    // A verdict for another generation or another stored length is ignored:
    // the store hashes the bytes itself (here they match).
    assert!(matches!(put(0, 400, None), ChunkOutcome::Appended(_)));
    let stale = ChunkVerdict {
        generation: 0,
        received: 400,
        matches: false,
    };
    match put(400, 1000, Some(stale)) {
        ChunkOutcome::Completed(u) => assert!(u.complete && u.received == 1000),
        other => panic!("{other:?}"),
    }
    let (u, bytes) = store.upload_content("r1", &sha).unwrap().unwrap();
    assert!(u.complete);
    assert_eq!(bytes.unwrap(), file);
    // The digest is of every stored byte.
    let (_, digest) = store.upload_digest("r1", &sha).unwrap().unwrap();
    assert_eq!(sha256_hex(&file), hex(&digest.finalize()));
    assert_eq!(
        sha256_hex(&file),
        hex(&Sha256::digest(&file)),
        "the helper agrees"
    );

    // Complete: a retry is unchanged, another size a conflict.
    assert!(matches!(put(400, 1000, None), ChunkOutcome::Unchanged(u) if u.complete));
    assert!(matches!(
        store.begin_upload("r1", &sha, 999, "image/png", 0).unwrap(),
        UploadStart::Conflict(u) if u.size == 1000
    ));
    // Another resident's upload of the same content is theirs alone.
    assert!(store.upload("r2", &sha).unwrap().is_none());
    assert!(
        store
            .uploads("r2", std::slice::from_ref(&sha))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .uploads("r1", std::slice::from_ref(&sha))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_wrong_verdict_cannot_complete_other_bytes() {
    // A verdict computed over a shorter prefix (a racing request appended
    // meanwhile) must not be applied to the longer one.
    let store = SqliteStore::in_memory().unwrap();
    let file: Vec<u8> = (0..100u8).collect();
    let sha = sha256_hex(&file);
    store.begin_upload("r1", &sha, 100, "image/png", 0).unwrap();
    store
        .put_chunk("r1", &sha, 0, &file[..50], None, 0)
        .unwrap();
    let lying = ChunkVerdict {
        generation: 0,
        received: 40,
        matches: false,
    };
    match store
        .put_chunk("r1", &sha, 50, &file[50..], Some(lying), 0)
        .unwrap()
    {
        ChunkOutcome::Completed(u) => assert!(u.complete),
        other => panic!("{other:?}"),
    }
    // And a store-side hash of wrong bytes restarts the upload.
    let other: Vec<u8> = (0..100u8).rev().collect();
    let sha2 = sha256_hex(&other);
    store
        .begin_upload("r1", &sha2, 100, "image/png", 0)
        .unwrap();
    match store.put_chunk("r1", &sha2, 0, &file, None, 0).unwrap() {
        ChunkOutcome::HashMismatch(u) => assert_eq!((u.received, u.generation), (0, 1)),
        other => panic!("{other:?}"),
    }
    // An incomplete upload declared with another size restarts too.
    store
        .put_chunk("r1", &sha2, 0, &other[..10], None, 0)
        .unwrap();
    match store.begin_upload("r1", &sha2, 90, "image/png", 0).unwrap() {
        UploadStart::Restarted(u) => assert_eq!((u.received, u.size, u.generation), (0, 90, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_submission_needs_complete_uploads_and_stores_nothing_otherwise() {
    let store = SqliteStore::in_memory().unwrap();
    let file = b"scan bytes".to_vec();
    let sha = sha256_hex(&file);
    store
        .begin_upload("r1", &sha, 10, "application/pdf", 0)
        .unwrap();
    store.put_chunk("r1", &sha, 0, &file[..5], None, 0).unwrap();
    let mut s = submission("client-0001", "r1", "{}");
    s.attachments = vec![link("scan", &file)];
    assert!(matches!(store.submit(&s), Err(StoreError::InvalidState(_))));
    assert!(store.receipt("client-0001").unwrap().is_none());
    assert!(store.submissions_of("r1").unwrap().is_empty());
    // Another resident's complete upload does not count.
    upload_all(&store, "r2", &file);
    assert!(matches!(store.submit(&s), Err(StoreError::InvalidState(_))));
    // Complete with another size does not count.
    store.put_chunk("r1", &sha, 5, &file[5..], None, 0).unwrap();
    let mut wrong = s.clone();
    wrong.attachments[0].size = 11;
    assert!(matches!(
        store.submit(&wrong),
        Err(StoreError::InvalidState(_))
    ));
    // Complete: accepted, the link recorded with it; a retry gets the receipt.
    let first = store.submit(&s).unwrap();
    assert!(first.fresh);
    let again = store.submit(&s).unwrap();
    assert!(!again.fresh);
    assert_eq!(again.receipt, first.receipt);
    let tracking = &first.receipt.tracking_number;
    assert_eq!(
        store.submission_attachments(tracking).unwrap(),
        Some(vec![link("scan", &file)])
    );
    assert!(
        store
            .submission_attachment(tracking, &sha256_hex(b"x"))
            .unwrap()
            .is_none()
    );
    // The failed attempts used no tracking number.
    assert!(tracking.ends_with("0000001"), "{tracking}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
