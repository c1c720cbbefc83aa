//! The SQLite store on its own: group commit keeps each write's outcome its
//! own, reads see every write that returned, and a database written by the
//! first schema upgrades in place with its submissions intact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rusqlite::{Connection, params};
use zhangban_server::store::sqlite::{MIGRATIONS, SqliteStore};
use zhangban_server::store::{NewSubmission, Store, StoreError, WalletEntry};

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
        at: 1_790_000_000,
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
