//! The data directory is the operator's alone (ADR 0167): 0700, and the
//! database (with its WAL and shared-memory files), the secrets, the keys
//! and the demo tokens 0600 — on a fresh directory, and on one an older
//! version left world-readable.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use zhangban_server::clock::{Clock as _, SystemClock};
use zhangban_server::setup;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("issuers")), 0o700);
    for name in ["zhangban.db", "operator-token", "activation-key"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    for entry in walk(dir) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            assert_eq!(m, 0o600, "{}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_fresh_demo_data_directory_is_owner_only_with_the_database_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = setup::open(&dir, None).unwrap();
    assert!(setup::demo(&dir, d.store.as_ref(), SystemClock.now()).unwrap());
    // Written while open: the WAL and shared-memory files exist now.
    assert!(dir.join("zhangban.db-wal").exists() && dir.join("zhangban.db-shm").exists());
    assert_private(&dir);
    assert!(dir.join("demo-operators/demo-admin.token").exists());
    assert!(dir.join("root.key.json").exists());
}

#[test]
fn an_existing_world_readable_directory_is_tightened_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(dir.join("issuers")).unwrap();
    // What an older version (or a careless umask) left behind.
    {
        let c = rusqlite::Connection::open(dir.join("zhangban.db")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    std::fs::write(dir.join("operator-token"), "old-token").unwrap();
    std::fs::write(dir.join("issuers/README"), "not a key").unwrap();
    for (p, m) in [
        (dir.clone(), 0o755),
        (dir.join("issuers"), 0o755),
        (dir.join("zhangban.db"), 0o644),
        (dir.join("operator-token"), 0o644),
        (dir.join("issuers/README"), 0o644),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let d = setup::open(&dir, None).unwrap();
    assert_eq!(d.operator_token, "old-token", "the existing token is kept");
    assert_private(&dir);
}
