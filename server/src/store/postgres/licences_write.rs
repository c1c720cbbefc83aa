//! Placeholder: the grant writes an operator action makes inside its
//! audited transaction, until helper pg-content's `licences.rs` provides
//! `put_grant_in` and `set_grant_status_in` with these signatures (then
//! this file goes and `operators.rs` imports them from `super::licences`).
//!
//! Across replicas: a grant's primary key makes a concurrent second insert
//! of the same licence id wait and fail (`Conflict`); a status change is
//! one `UPDATE`.

use postgres::Transaction;

use super::is_unique_violation;
use crate::store::{Grant, StoreError, StoreResult};

/// Stores a grant (status 0), in the caller's transaction; `Conflict` if
/// the licence id was already issued.
pub(super) fn put_grant_in(tx: &mut Transaction<'_>, g: &Grant) -> StoreResult<()> {
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

/// Sets a grant's status (0 valid, 1 revoked, 2 suspended), in the
/// caller's transaction; an unknown licence id changes nothing.
pub(super) fn set_grant_status_in(
    tx: &mut Transaction<'_>,
    licence_id: &str,
    status: u8,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE licence_grants SET status = $2 WHERE licence_id = $1",
        &[&licence_id, &i64::from(status)],
    )?;
    Ok(())
}
