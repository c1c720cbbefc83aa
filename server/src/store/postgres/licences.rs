//! [`LicenceStore`] on PostgreSQL: grants, delivered copies and status
//! lists (the 2-bit array as BYTEA).
//!
//! Correct across replicas: a status index is handed out by one
//! `UPDATE ... WHERE next_idx < capacity RETURNING`, so two replicas never
//! get the same index; setting a status reads the bit array under the list
//! row's `FOR UPDATE` lock and writes it back in the same transaction, so
//! concurrent changes to different indexes of one list never undo each
//! other. Uniqueness (a licence id, a device's copy) is the database's:
//! the unique violation becomes the same `Conflict` as on SQLite.

use super::Tx;

use super::{PgStore, db, is_unique_violation, to_i64, to_u64};
use crate::store::{Grant, LicenceStore, StatusListRow, StoreError, StoreResult, WalletEntry};

const GRANT_COLUMNS: &str =
    "licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants";
const STATUS_COLUMNS: &str = "uri, issuer_id, bits, next_idx, token FROM status_lists";

/// Records a grant (status 0) in the caller's transaction; `Conflict` if
/// the licence id exists.
pub(super) fn put_grant_in(tx: &mut Tx<'_>, g: &Grant) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO licence_grants(licence_id, resident_id, issuer_id, vct, claims, status, granted_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
        &[&g.licence_id, &g.resident_id, &g.issuer_id, &g.vct, &g.claims, &g.granted_at],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("licence id already issued")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Records a grant's status in the caller's transaction (nothing if there
/// is no such grant, as on SQLite).
pub(super) fn set_grant_status_in(
    tx: &mut Tx<'_>,
    licence_id: &str,
    status: u8,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE licence_grants SET status = $2 WHERE licence_id = $1",
        &[&licence_id, &i64::from(status)],
    )?;
    Ok(())
}

fn grant_of(r: &postgres::Row) -> StoreResult<Grant> {
    Ok(Grant {
        licence_id: r.get(0),
        resident_id: r.get(1),
        issuer_id: r.get(2),
        vct: r.get(3),
        claims: r.get(4),
        status: u8::try_from(r.get::<_, i64>(5)).map_err(db)?,
        granted_at: r.get(6),
    })
}

fn status_of(r: &postgres::Row) -> StatusListRow {
    StatusListRow {
        uri: r.get(0),
        issuer_id: r.get(1),
        bits: r.get(2),
        next_idx: to_u64(r.get(3)),
        token: r.get(4),
    }
}

impl LicenceStore for PgStore {
    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()> {
        let bytes = vec![0u8; usize::try_from(capacity.div_ceil(4)).unwrap_or(0)];
        self.write(|tx| {
            // A concurrent creator on another replica: this waits for it and
            // does nothing; the first list stays.
            tx.execute(
                "INSERT INTO status_lists(uri, issuer_id, bits, next_idx, token)
                 VALUES ($1, $2, $3, 0, NULL) ON CONFLICT (uri) DO NOTHING",
                &[&uri, &issuer_id, &bytes],
            )?;
            Ok(())
        })
    }

    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(&format!("SELECT {STATUS_COLUMNS} WHERE uri = $1"), &[&uri])?
                .map(|r| status_of(&r)))
        })
    }

    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>> {
        self.read(|tx| {
            // Byte order, as SQLite's BINARY collation.
            Ok(tx
                .query(
                    &format!("SELECT {STATUS_COLUMNS} ORDER BY uri COLLATE \"C\""),
                    &[],
                )?
                .iter()
                .map(status_of)
                .collect())
        })
    }

    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64> {
        self.write(|tx| {
            // One statement: the row lock it takes makes a concurrent
            // allocation wait, then re-check the capacity on the new row.
            let taken = tx.query_opt(
                "UPDATE status_lists SET next_idx = next_idx + 1
                 WHERE uri = $1 AND next_idx < length(bits)::BIGINT * 4
                 RETURNING next_idx - 1",
                &[&uri],
            )?;
            if let Some(row) = taken {
                return Ok(to_u64(row.get(0)));
            }
            let exists = tx
                .query_opt("SELECT 1 FROM status_lists WHERE uri = $1", &[&uri])?
                .is_some();
            Err(if exists {
                StoreError::InvalidState("status list is full")
            } else {
                StoreError::NotFound
            })
        })
    }

    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>> {
        self.write(|tx| {
            // Locked to commit: a concurrent change of another index waits
            // and then reads these bits.
            let mut bits: Vec<u8> = tx
                .query_opt(
                    "SELECT bits FROM status_lists WHERE uri = $1 FOR UPDATE",
                    &[&uri],
                )?
                .ok_or(StoreError::NotFound)?
                .get(0);
            let byte = usize::try_from(idx / 4).map_err(db)?;
            let shift = (idx % 4) * 2;
            let slot = bits.get_mut(byte).ok_or(StoreError::NotFound)?;
            *slot = (*slot & !(0b11 << shift)) | ((value & 0b11) << shift);
            tx.execute(
                "UPDATE status_lists SET bits = $2 WHERE uri = $1",
                &[&uri, &bits],
            )?;
            Ok(bits)
        })
    }

    fn put_status_token(&self, uri: &str, token: &str, bits: &[u8]) -> StoreResult<bool> {
        self.write(|tx| {
            // Only over the current bits: a replica that lost a race to
            // another writer of the list does not replace that writer's
            // token, which covers both changes (ADR 0221).
            let n = tx.execute(
                "UPDATE status_lists SET token = $2 WHERE uri = $1 AND bits = $3",
                &[&uri, &token, &bits],
            )?;
            if n > 0 {
                return Ok(true);
            }
            let exists = tx
                .query_opt("SELECT 1 FROM status_lists WHERE uri = $1", &[&uri])?
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
        self.write(|tx| {
            let row = tx
                .query_one(
                    "INSERT INTO licences(licence_id, resident_id, device_id, issuer_id, vct,
                         status_uri, status_idx, sd_jwt, issued_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &[
                        &e.licence_id,
                        &resident_id,
                        &e.device_id,
                        &issuer_id,
                        &e.vct,
                        &status_uri,
                        &to_i64(status_idx),
                        &e.sd_jwt,
                        &e.issued_at,
                    ],
                )
                .map_err(|err| {
                    if is_unique_violation(&err) {
                        StoreError::Conflict("the device already holds this licence")
                    } else {
                        err.into()
                    }
                })?;
            Ok(to_u64(row.get(0)))
        })
    }

    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    "SELECT id, licence_id, device_id, vct, sd_jwt, issued_at FROM licences
                     WHERE resident_id = $1 ORDER BY id",
                    &[&resident_id],
                )?
                .iter()
                .map(|r| WalletEntry {
                    id: to_u64(r.get(0)),
                    licence_id: r.get(1),
                    device_id: r.get(2),
                    vct: r.get(3),
                    sd_jwt: r.get(4),
                    issued_at: r.get(5),
                })
                .collect())
        })
    }

    fn put_grant(&self, g: &Grant) -> StoreResult<()> {
        self.write(|tx| put_grant_in(tx, g))
    }

    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>> {
        self.read(|tx| {
            tx.query_opt(
                &format!("SELECT {GRANT_COLUMNS} WHERE licence_id = $1"),
                &[&licence_id],
            )?
            .map(|r| grant_of(&r))
            .transpose()
        })
    }

    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>> {
        self.read(|tx| {
            // Byte order for the tie-break, as SQLite's BINARY collation.
            tx.query(
                &format!(
                    "SELECT {GRANT_COLUMNS} WHERE resident_id = $1
                     ORDER BY granted_at, licence_id COLLATE \"C\""
                ),
                &[&resident_id],
            )?
            .iter()
            .map(grant_of)
            .collect()
        })
    }

    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()> {
        self.write(|tx| set_grant_status_in(tx, licence_id, status))
    }

    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT 1 FROM licences WHERE licence_id = $1 AND device_id = $2",
                    &[&licence_id, &device_id],
                )?
                .is_some())
        })
    }

    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>> {
        self.read(|tx| {
            // Insertion order (SQLite returns its rowid order here).
            Ok(tx
                .query(
                    "SELECT status_uri, status_idx FROM licences WHERE licence_id = $1 ORDER BY id",
                    &[&licence_id],
                )?
                .iter()
                .map(|r| (r.get(0), to_u64(r.get(1))))
                .collect())
        })
    }
}
