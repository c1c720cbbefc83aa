//! The store conformance suite (`tests/conformance/`) run against SQLite:
//! a file database in a temporary directory, opened (and reopened) with
//! [`SqliteStore::open`], as the server runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod conformance;

use zhangban_server::store::sqlite::SqliteStore;

/// A SQLite database file of its own, removed with the directory.
#[derive(Debug)]
pub struct SqliteFile {
    dir: tempfile::TempDir,
}

impl SqliteFile {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl conformance::Backend for SqliteFile {
    type Store = SqliteStore;

    fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("zhangban.db")).unwrap()
    }
}

mod sqlite {
    use super::SqliteFile;

    store_conformance_tests!(SqliteFile::new());
}

/// A PostgreSQL database of its own, dropped with this value; every open
/// is a new pool (a new "replica") on it.
#[derive(Debug)]
pub struct PgDatabase {
    db: zhangban_tests::postgres::TestDatabase,
}

impl PgDatabase {
    fn new() -> Self {
        Self {
            db: zhangban_tests::postgres::TestDatabase::create(),
        }
    }
}

impl conformance::Backend for PgDatabase {
    type Store = zhangban_server::store::postgres::PgStore;

    fn open(&self) -> Self::Store {
        let mut options = zhangban_server::store::postgres::PgOptions::new(self.db.url());
        options.pool_size = 8;
        zhangban_server::store::postgres::PgStore::connect(&options).unwrap()
    }
}

mod postgres {
    use super::PgDatabase;

    store_conformance_tests!(PgDatabase::new());
}
