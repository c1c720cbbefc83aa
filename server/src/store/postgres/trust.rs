//! [`TrustStore`] on PostgreSQL: trust bundles by version and the server
//! secrets every replica shares (the first stored wins).

use super::Tx;

use super::{PgStore, to_i64};
use crate::store::{StoreResult, TrustStore};

pub(super) fn put_trust_bundle_in(
    tx: &mut Tx<'_>,
    version: u64,
    jws: &str,
    at: i64,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO trust_bundles(version, jws, published_at) VALUES ($1, $2, $3)
         ON CONFLICT (version) DO NOTHING",
        &[&to_i64(version), &jws, &at],
    )?;
    Ok(())
}

impl TrustStore for PgStore {
    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()> {
        self.write(|tx| put_trust_bundle_in(tx, version, jws, at))
    }

    fn trust_bundle(&self) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT jws FROM trust_bundles ORDER BY version DESC LIMIT 1",
                    &[],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn secret(&self, name: &str, fresh: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        self.write(|tx| {
            // A concurrent first writer on another replica: this insert waits
            // for it, does nothing, and the select below reads its value.
            tx.execute(
                "INSERT INTO server_secrets(name, value, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh, &now],
            )?;
            Ok(tx
                .query_one("SELECT value FROM server_secrets WHERE name = $1", &[&name])?
                .get(0))
        })
    }
}
