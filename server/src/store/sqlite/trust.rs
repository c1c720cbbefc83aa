//! [`TrustStore`] on SQLite: trust bundles by version and server secrets.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, owned, to_i64};
use crate::store::{StoreResult, TrustStore};

pub(super) fn put_trust_bundle_in(
    c: &Connection,
    version: u64,
    jws: &str,
    at: i64,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO trust_bundles(version, jws, published_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(version) DO NOTHING",
        params![to_i64(version), jws, at],
    )?;
    Ok(())
}

impl TrustStore for SqliteStore {
    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()> {
        let jws = owned(jws);
        self.write(move |c| put_trust_bundle_in(c, version, &jws, at))
    }

    fn trust_bundle(&self) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT jws FROM trust_bundles ORDER BY version DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn secret(&self, name: &str, fresh: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        let (name, fresh) = (owned(name), fresh.to_vec());
        self.write(move |c| {
            c.execute(
                "INSERT INTO server_secrets(name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO NOTHING",
                params![name, fresh, now],
            )?;
            Ok(c.query_row(
                "SELECT value FROM server_secrets WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?)
        })
    }
}
