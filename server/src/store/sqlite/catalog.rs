//! [`CatalogStore`] on SQLite: one row per guide carrying its latest feed
//! position from the `catalog` counter; a withdrawn guide stays as a tombstone.
//! The single writer hands out positions in commit order, so `seq > since`
//! never skips a row here (ADR 0220 says what PostgreSQL must do instead).

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{ReadTx, SqliteStore, next_counter, owned, to_i64, to_u64};
use crate::store::{CatalogChange, CatalogPage, CatalogStore, StoreError, StoreResult};

pub(super) fn put_guide_in(
    conn: &Connection,
    id: &str,
    checksum: &str,
    body: &str,
) -> StoreResult<u64> {
    let existing: Option<(i64, String, i64)> = conn
        .query_row(
            "SELECT seq, checksum, deleted FROM guides WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((seq, old, 0)) = &existing {
        if old == checksum {
            return Ok(to_u64(*seq));
        }
    }
    let seq = next_counter(conn, "catalog")?;
    conn.execute(
        "INSERT INTO guides(id, seq, checksum, body, deleted) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT(id) DO UPDATE SET seq = ?2, checksum = ?3, body = ?4, deleted = 0",
        params![id, to_i64(seq), checksum, body],
    )?;
    Ok(seq)
}

pub(super) fn delete_guide_in(c: &Connection, id: &str) -> StoreResult<u64> {
    let live: Option<i64> = c
        .query_row("SELECT deleted FROM guides WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    if live != Some(0) {
        return Err(StoreError::NotFound);
    }
    let seq = next_counter(c, "catalog")?;
    c.execute(
        "UPDATE guides SET seq = ?2, checksum = '', body = NULL, deleted = 1 WHERE id = ?1",
        params![id, to_i64(seq)],
    )?;
    Ok(seq)
}

impl CatalogStore for SqliteStore {
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64> {
        let (id, checksum, body) = (owned(id), owned(checksum), owned(body));
        self.write(move |c| put_guide_in(c, &id, &checksum, &body))
    }

    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64> {
        let guides = guides.to_vec();
        self.write(move |c| {
            let mut last = 0;
            for (id, checksum, body) in &guides {
                last = last.max(put_guide_in(c, id, checksum, body)?);
            }
            Ok(last)
        })
    }

    fn delete_guide(&self, id: &str) -> StoreResult<u64> {
        let id = owned(id);
        self.write(move |c| delete_guide_in(c, &id))
    }

    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage> {
        // One read transaction, so that the head and the page are of the
        // same snapshot (a commit between them would list changes above
        // the head).
        self.read(move |c| {
            let tx = ReadTx::begin(c)?;
            let head: i64 =
                c.query_row("SELECT COALESCE(MAX(seq), 0) FROM guides", [], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT id, seq, checksum, body FROM guides WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let changes = stmt
                .query_map(params![to_i64(since), limit], |r| {
                    Ok(CatalogChange {
                        id: r.get(0)?,
                        seq: to_u64(r.get(1)?),
                        checksum: r.get(2)?,
                        body: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            tx.end()?;
            Ok(CatalogPage {
                changes,
                head: to_u64(head),
            })
        })
    }

    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        let id = owned(id);
        self.read(move |c| {
            Ok(
                c.prepare_cached(
                    "SELECT checksum, body FROM guides WHERE id = ?1 AND deleted = 0",
                )?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
            )
        })
    }
}
