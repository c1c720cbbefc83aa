//! [`LicenceStore`] on SQLite: grants, delivered copies and status lists
//! (the 2-bit array as a BLOB, updated in the writer's transaction).

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, db, is_constraint, owned, to_i64, to_u64};
use crate::store::{Grant, LicenceStore, StatusListRow, StoreError, StoreResult, WalletEntry};

pub(super) fn put_grant_in(c: &Connection, g: &Grant) -> StoreResult<()> {
    c.execute(
        "INSERT INTO licence_grants(licence_id, resident_id, issuer_id, vct, claims, status, granted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![g.licence_id, g.resident_id, g.issuer_id, g.vct, g.claims, g.granted_at],
    )
    .map_err(|e| {
        if is_constraint(&e) {
            StoreError::Conflict("licence id already issued")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub(super) fn set_grant_status_in(c: &Connection, licence_id: &str, status: u8) -> StoreResult<()> {
    c.execute(
        "UPDATE licence_grants SET status = ?2 WHERE licence_id = ?1",
        params![licence_id, status],
    )?;
    Ok(())
}

pub(super) fn row_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        licence_id: r.get(0)?,
        resident_id: r.get(1)?,
        issuer_id: r.get(2)?,
        vct: r.get(3)?,
        claims: r.get(4)?,
        status: r.get(5)?,
        granted_at: r.get(6)?,
    })
}

pub(super) fn row_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusListRow> {
    Ok(StatusListRow {
        uri: r.get(0)?,
        issuer_id: r.get(1)?,
        bits: r.get(2)?,
        next_idx: to_u64(r.get(3)?),
        token: r.get(4)?,
    })
}

impl LicenceStore for SqliteStore {
    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()> {
        let (uri, issuer_id) = (owned(uri), owned(issuer_id));
        let bytes = vec![0u8; usize::try_from(capacity.div_ceil(4)).unwrap_or(0)];
        self.write(move |c| {
            c.execute(
                "INSERT INTO status_lists(uri, issuer_id, bits, next_idx, token) VALUES (?1, ?2, ?3, 0, NULL)
                 ON CONFLICT(uri) DO NOTHING",
                params![uri, issuer_id, bytes],
            )?;
            Ok(())
        })
    }

    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>> {
        let uri = owned(uri);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists WHERE uri = ?1",
                [&uri],
                row_status,
            )
            .optional()?)
        })
    }

    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists ORDER BY uri",
            )?;
            let rows = stmt
                .query_map([], row_status)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64> {
        let uri = owned(uri);
        self.write(move |c| {
            let (next, len): (i64, i64) = c.query_row(
                "SELECT next_idx, length(bits) FROM status_lists WHERE uri = ?1",
                [&uri],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if next >= len * 4 {
                return Err(StoreError::InvalidState("status list is full"));
            }
            c.execute(
                "UPDATE status_lists SET next_idx = next_idx + 1 WHERE uri = ?1",
                [&uri],
            )?;
            Ok(to_u64(next))
        })
    }

    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>> {
        let uri = owned(uri);
        self.write(move |c| {
            let mut bits: Vec<u8> = c.query_row(
                "SELECT bits FROM status_lists WHERE uri = ?1",
                [&uri],
                |r| r.get(0),
            )?;
            let byte = usize::try_from(idx / 4).map_err(db)?;
            let shift = (idx % 4) * 2;
            let slot = bits.get_mut(byte).ok_or(StoreError::NotFound)?;
            *slot = (*slot & !(0b11 << shift)) | ((value & 0b11) << shift);
            c.execute(
                "UPDATE status_lists SET bits = ?2 WHERE uri = ?1",
                params![uri, bits],
            )?;
            Ok(bits)
        })
    }

    fn put_status_token(&self, uri: &str, token: &str, bits: &[u8]) -> StoreResult<bool> {
        let (uri, token, bits) = (owned(uri), owned(token), bits.to_vec());
        self.write(move |c| {
            let n = c.execute(
                "UPDATE status_lists SET token = ?2 WHERE uri = ?1 AND bits = ?3",
                params![uri, token, bits],
            )?;
            if n > 0 {
                return Ok(true);
            }
            let exists = c
                .query_row("SELECT 1 FROM status_lists WHERE uri = ?1", [&uri], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if exists {
                Ok(false)
            } else {
                Err(StoreError::NotFound)
            }
        })
    }

    fn put_licence(
        &self,
        resident_id: &str,
        e: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64> {
        let (resident_id, e, issuer_id, status_uri) = (
            owned(resident_id),
            e.clone(),
            owned(issuer_id),
            owned(status_uri),
        );
        self.write(move |c| {
            c.execute(
                "INSERT INTO licences(licence_id, resident_id, device_id, issuer_id, vct, status_uri, status_idx, sd_jwt, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![e.licence_id, resident_id, e.device_id, issuer_id, e.vct, status_uri, to_i64(status_idx), e.sd_jwt, e.issued_at],
            )
            .map_err(|err| {
                if is_constraint(&err) {
                    StoreError::Conflict("the device already holds this licence")
                } else {
                    err.into()
                }
            })?;
            Ok(to_u64(c.last_insert_rowid()))
        })
    }

    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, licence_id, device_id, vct, sd_jwt, issued_at FROM licences WHERE resident_id = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([&resident_id], |r| {
                    Ok(WalletEntry {
                        id: to_u64(r.get(0)?),
                        licence_id: r.get(1)?,
                        device_id: r.get(2)?,
                        vct: r.get(3)?,
                        sd_jwt: r.get(4)?,
                        issued_at: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn put_grant(&self, g: &Grant) -> StoreResult<()> {
        let g = g.clone();
        self.write(move |c| put_grant_in(c, &g))
    }

    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>> {
        let licence_id = owned(licence_id);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
                 WHERE licence_id = ?1",
                [&licence_id],
                row_grant,
            )
            .optional()?)
        })
    }

    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
                 WHERE resident_id = ?1 ORDER BY granted_at, licence_id",
            )?;
            let rows = stmt
                .query_map([&resident_id], row_grant)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()> {
        let licence_id = owned(licence_id);
        self.write(move |c| set_grant_status_in(c, &licence_id, status))
    }

    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool> {
        let (licence_id, device_id) = (owned(licence_id), owned(device_id));
        self.read(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM licences WHERE licence_id = ?1 AND device_id = ?2",
                [&licence_id, &device_id],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        })
    }

    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>> {
        let licence_id = owned(licence_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT status_uri, status_idx FROM licences WHERE licence_id = ?1",
            )?;
            let rows = stmt
                .query_map([&licence_id], |r| {
                    Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?)))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
