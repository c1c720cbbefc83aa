//! The phone store's typed errors, each kind made for real on real SQLite
//! files (no fake errors): busy, full, corrupt, constraint and I/O are told
//! apart, and what an error says holds no stored value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rusqlite::Connection;
use zhangban_core::client::{ClientError, ClientStore, StoreError, StoreErrorKind};

/// A personal value that must never show in an error's words.
const NAME: &str = "张三丰";

fn kind_of(r: rusqlite::Result<impl Sized>) -> (StoreErrorKind, String) {
    let e = StoreError::from(r.err().expect("the statement must fail"));
    (e.kind, e.to_string())
}

fn table(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
    let path = dir.path().join("t.db");
    let c = Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB);")
        .unwrap();
    (path, c)
}

#[test]
fn another_connection_holding_the_write_lock_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, holder) = table(&dir);
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let (kind, words) = kind_of(other.execute("INSERT INTO t VALUES (?1, NULL)", [NAME]));
    assert_eq!(kind, StoreErrorKind::Busy, "{words}");
    assert!(kind.is_transient());
    assert!(!words.contains(NAME), "{words}");
    // The lock let go, the same write goes through.
    holder.execute_batch("ROLLBACK").unwrap();
    other
        .execute("INSERT INTO t VALUES (?1, NULL)", [NAME])
        .unwrap();
}

#[test]
fn a_store_at_its_size_limit_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = table(&dir);
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    c.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let big = vec![7u8; 64 * 1024];
    let (kind, words) = kind_of(c.execute(
        "INSERT INTO t VALUES (?1, ?2)",
        rusqlite::params![NAME, big],
    ));
    assert_eq!(kind, StoreErrorKind::Full, "{words}");
    assert!(!kind.is_transient());
    assert!(!words.contains(NAME), "{words}");
}

#[test]
fn a_duplicate_key_is_a_constraint_and_its_value_is_not_said() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = table(&dir);
    c.execute("INSERT INTO t VALUES (?1, NULL)", [NAME])
        .unwrap();
    let (kind, words) = kind_of(c.execute("INSERT INTO t VALUES (?1, NULL)", [NAME]));
    assert_eq!(kind, StoreErrorKind::Constraint, "{words}");
    assert!(!words.contains(NAME), "{words}");
}

#[test]
fn a_file_that_cannot_be_opened_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("t.db");
    let r = Connection::open_with_flags(&missing, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)));
    let (kind, words) = kind_of(r);
    assert_eq!(kind, StoreErrorKind::Io, "{words}");
    assert!(kind.is_transient());
}

#[test]
fn a_store_file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    match ClientStore::open(&path) {
        Err(ClientError::Store(e)) => {
            assert_eq!(e.kind, StoreErrorKind::Corrupt, "{e}");
            assert_eq!(e.to_string(), "local store (corrupt): sqlite NotADatabase");
            // The underlying SQLite error is kept for the device's logs.
            assert!(std::error::Error::source(&e).is_some());
        }
        Err(other) => panic!("expected a corrupt store, got {other:?}"),
        Ok(_) => panic!("a file of garbage opened as a store"),
    }
}

#[test]
fn a_store_with_a_damaged_page_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB);")
            .unwrap();
        for i in 0..200 {
            c.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                rusqlite::params![format!("{NAME}-{i}"), vec![1u8; 300]],
            )
            .unwrap();
        }
    }
    // Page 2 onwards (the table's b-tree) overwritten, the header kept.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 3 * page);
    for b in &mut bytes[page..3 * page] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let c = Connection::open(&path).unwrap();
    let r = c.query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
        r.get::<_, i64>(0)
    });
    let (kind, words) = kind_of(r);
    assert_eq!(kind, StoreErrorKind::Corrupt, "{words}");
    assert!(!words.contains(NAME), "{words}");
}

#[test]
fn only_a_failure_of_the_submission_itself_rejects_it_while_its_body_is_built() {
    use zhangban_core::client::flush::building_failed;
    use zhangban_core::outbox::SendOutcome;
    let code = |o: SendOutcome| match o {
        SendOutcome::Rejected { code, .. } => format!("rejected {code}"),
        SendOutcome::Transient { code, .. } => format!("queued {code}"),
        other => format!("{other:?}"),
    };
    let store = |kind| ClientError::Store(StoreError::new(kind, "wallet"));
    for (err, want) in [
        (store(StoreErrorKind::Busy), "queued store_busy"),
        (store(StoreErrorKind::Full), "queued store_full"),
        (store(StoreErrorKind::Corrupt), "queued store_corrupt"),
        (store(StoreErrorKind::Io), "queued store_io"),
        (
            ClientError::Corrupted("wallet".into()),
            "queued store_sealed_corrupt",
        ),
        (
            ClientError::DataKey(zhangban_core::client::DataKeyFault::NotAuthorised),
            "queued data_key_not_authorised",
        ),
        (
            ClientError::NotFound("wallet licence".into()),
            "rejected licence_not_in_wallet",
        ),
        (
            ClientError::Invalid("no such disclosure".into()),
            "rejected presentation_failed",
        ),
    ] {
        assert_eq!(code(building_failed(&err)), want, "{err:?}");
    }
}
