//! The audit trail's hash chain against direct tampering (ADR 0166): a trail
//! written by the store, then the SQLite file changed with rusqlite behind
//! the server's back, then `zhangban-server audit verify` run on the data
//! directory as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::{Connection, params};
use zhangban_server::audit::{self, AuditEntry};
use zhangban_server::setup;
use zhangban_server::store::operators::OperatorWrite;
use zhangban_server::store::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_zhangban-server");
const ROWS: i64 = 10;

fn entry(n: i64) -> AuditEntry {
    AuditEntry {
        at: 1_775_000_000 + n,
        actor: format!("op-{}", n % 3),
        role: "issuer".into(),
        action: "licence.revoke".into(),
        target: format!("{{\"licence\":\"L{n}\"}}"),
        outcome: "ok".into(),
    }
}

/// A data directory whose trail has [`ROWS`] rows (the bootstrap's and
/// nine actions), the store closed.
fn trail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = setup::open(dir.path(), Some("audit-test-token".into())).unwrap();
    d.store.ensure_bootstrap("00", 1_775_000_000).unwrap();
    for n in 2..=ROWS {
        d.store.audited(&entry(n), OperatorWrite::None).unwrap();
    }
    drop(d);
    dir
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("zhangban.db")).unwrap()
}

fn verify(dir: &Path, head: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("ZHANGBAN_DATA_DIR")
        .args(["audit", "verify", "--data-dir"])
        .arg(dir);
    if let Some(h) = head {
        cmd.args(["--head", h]);
    }
    cmd.output().unwrap()
}

fn broken(dir: &Path, expected: &str) {
    let out = verify(dir, None);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?}, got {stderr}"
    );
}

fn head(dir: &Path) -> String {
    let out = verify(dir, None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["rows"], ROWS);
    v["head"].as_str().unwrap().to_owned()
}

fn row_hash(c: &Connection, seq: i64) -> String {
    c.query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_untouched_trail_verifies() {
    let dir = trail();
    let h = head(dir.path());
    assert_eq!(h, row_hash(&db(dir.path()), ROWS));
    // And so it does with its own head recorded.
    assert_eq!(verify(dir.path(), Some(&h)).status.code(), Some(0));
}

#[test]
fn an_update_in_the_middle_names_the_row() {
    let dir = trail();
    db(dir.path())
        .execute(
            "UPDATE audit SET outcome = 'refused:out_of_scope' WHERE seq = 5",
            [],
        )
        .unwrap();
    broken(dir.path(), "row 5 was edited");
}

#[test]
fn an_update_with_its_hash_recomputed_names_the_row() {
    let dir = trail();
    let c = db(dir.path());
    let prev = audit::from_hex(&row_hash(&c, 4)).unwrap();
    let mut e = entry(5);
    e.actor = "someone-else".into();
    let forged = audit::to_hex(&audit::row_hash(&e, &prev));
    c.execute(
        "UPDATE audit SET actor = ?1, hash = ?2 WHERE seq = 5",
        params![e.actor, forged],
    )
    .unwrap();
    broken(dir.path(), "row 5 was edited");
}

#[test]
fn a_delete_in_the_middle_names_the_row() {
    let dir = trail();
    db(dir.path())
        .execute("DELETE FROM audit WHERE seq = 5", [])
        .unwrap();
    broken(dir.path(), "row 5 was deleted");
}

#[test]
fn an_insert_in_the_middle_names_the_row() {
    // A well-formed forgery: the rows after it renumbered to make room, the
    // forged row linked to row 4 with a correct hash of its own.
    let dir = trail();
    let c = db(dir.path());
    c.execute_batch(
        "UPDATE audit SET seq = seq + 1000 WHERE seq >= 5;
         UPDATE audit SET seq = seq - 999 WHERE seq >= 1005;",
    )
    .unwrap();
    let prev = audit::from_hex(&row_hash(&c, 4)).unwrap();
    let e = entry(99);
    let row = audit::chain(5, e.clone(), &prev);
    c.execute(
        "INSERT INTO audit(seq, at, actor, role, action, target, outcome, prev, hash)
         VALUES (5, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.at, e.actor, e.role, e.action, e.target, e.outcome, row.prev, row.hash
        ],
    )
    .unwrap();
    broken(dir.path(), "row 5 was inserted out of order");

    // A careless one (made-up link) at the end of the renumbered range.
    let dir = trail();
    let c = db(dir.path());
    c.execute_batch(
        "UPDATE audit SET seq = seq + 1000 WHERE seq >= 7;
         UPDATE audit SET seq = seq - 999 WHERE seq >= 1007;",
    )
    .unwrap();
    let row = audit::chain(7, e.clone(), &[9; 32]);
    c.execute(
        "INSERT INTO audit(seq, at, actor, role, action, target, outcome, prev, hash)
         VALUES (7, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.at, e.actor, e.role, e.action, e.target, e.outcome, row.prev, row.hash
        ],
    )
    .unwrap();
    broken(dir.path(), "row 7 was inserted out of order");
}

#[test]
fn rows_cut_from_the_end_are_caught_by_a_recorded_head() {
    let dir = trail();
    let recorded = head(dir.path());
    db(dir.path())
        .execute("DELETE FROM audit WHERE seq >= 9", [])
        .unwrap();
    // The chain alone cannot tell (ADR 0166)…
    assert_eq!(verify(dir.path(), None).status.code(), Some(0));
    // …the head recorded earlier can.
    let out = verify(dir.path(), Some(&recorded));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("not in the chain")
    );
    // A malformed head is a usage error.
    assert_eq!(verify(dir.path(), Some("xyz")).status.code(), Some(2));
}

#[test]
fn a_missing_data_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(&dir.path().join("nowhere"), None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn migration_6_records_the_department_of_older_submissions() {
    use zhangban_server::store::sqlite::{MIGRATIONS, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zhangban.db");
    {
        let c = Connection::open(&path).unwrap();
        for sql in MIGRATIONS.iter().take(5) {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 5).unwrap();
        c.execute_batch(
            r#"INSERT INTO guides VALUES ('g1', 1, 'c', '{"department_code":"D-1"}', 0);
               INSERT INTO guides VALUES ('g2', 2, '', NULL, 1);
               INSERT INTO submission_dedupe VALUES ('s1', 'r', 'h', '{}', 0);
               INSERT INTO submission_dedupe VALUES ('s2', 'r', 'h', '{}', 0);
               INSERT INTO submissions VALUES ('s1', 'r', 'd', 'g1', 1, '{}', 'T1', 'submitted', 0);
               INSERT INTO submissions VALUES ('s2', 'r', 'd', 'g2', 1, '{}', 'T2', 'submitted', 0);"#,
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(
        store.submission_department("T1").unwrap().as_deref(),
        Some("D-1")
    );
    // Its guide already withdrawn: no department, so no reviewer in scope.
    assert_eq!(
        store.submission_department("T2").unwrap().as_deref(),
        Some("")
    );
    assert_eq!(store.submission_department("T3").unwrap(), None);
    // The audit trail starts empty and the operators table exists.
    assert!(store.audit_log(&Default::default()).unwrap().is_empty());
    assert!(store.operators().unwrap().is_empty());
}
