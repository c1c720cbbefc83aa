//! [`CatalogStore`] on PostgreSQL: one row per guide carrying its latest
//! feed position, taken from the `catalog` counter row under its lock, so
//! positions commit in order across replicas (ADR 0221).

use super::Tx;

use super::{PgStore, next_counter, to_i64, to_u64};
use crate::store::{CatalogChange, CatalogPage, CatalogStore, StoreError, StoreResult};

pub(super) fn put_guide_in(
    tx: &mut Tx<'_>,
    id: &str,
    checksum: &str,
    body: &str,
) -> StoreResult<u64> {
    let existing = tx.query_opt(
        "SELECT seq, checksum, deleted FROM guides WHERE id = $1",
        &[&id],
    )?;
    if let Some(row) = existing {
        let (old_seq, old, deleted): (i64, String, bool) = (row.get(0), row.get(1), row.get(2));
        if !deleted && old == checksum {
            return Ok(to_u64(old_seq));
        }
    }
    let seq = next_counter(tx, "catalog")?;
    tx.execute(
        "INSERT INTO guides(id, seq, checksum, body, deleted) VALUES ($1, $2, $3, $4, FALSE)
         ON CONFLICT (id) DO UPDATE SET seq = $2, checksum = $3, body = $4, deleted = FALSE",
        &[&id, &to_i64(seq), &checksum, &body],
    )?;
    Ok(seq)
}

/// Withdraws a guide (a tombstone at the next position), in the caller's
/// transaction; `NotFound` if there is no live guide with this id (the
/// position taken is rolled back with the transaction).
pub(super) fn delete_guide_in(tx: &mut Tx<'_>, id: &str) -> StoreResult<u64> {
    let seq = next_counter(tx, "catalog")?;
    let changed = tx.execute(
        "UPDATE guides SET seq = $2, checksum = '', body = NULL, deleted = TRUE
         WHERE id = $1 AND NOT deleted",
        &[&id, &to_i64(seq)],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(seq)
}

impl CatalogStore for PgStore {
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64> {
        self.write(|tx| put_guide_in(tx, id, checksum, body))
    }

    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64> {
        self.write(|tx| {
            let mut last = 0;
            for (id, checksum, body) in guides {
                last = last.max(put_guide_in(tx, id, checksum, body)?);
            }
            Ok(last)
        })
    }

    fn delete_guide(&self, id: &str) -> StoreResult<u64> {
        self.write(|tx| delete_guide_in(tx, id))
    }

    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage> {
        // One snapshot for the head and the page.
        self.read(|tx| {
            let head: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM guides", &[])?
                .get(0);
            let rows = tx.query(
                "SELECT id, seq, checksum, body FROM guides WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&to_i64(since), &i64::from(limit)],
            )?;
            let changes = rows
                .iter()
                .map(|r| CatalogChange {
                    id: r.get(0),
                    seq: to_u64(r.get(1)),
                    checksum: r.get(2),
                    body: r.get(3),
                })
                .collect();
            Ok(CatalogPage {
                changes,
                head: to_u64(head),
            })
        })
    }

    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT checksum, body FROM guides WHERE id = $1 AND NOT deleted",
                    &[&id],
                )?
                .map(|r| (r.get(0), r.get(1))))
        })
    }
}
