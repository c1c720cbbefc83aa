//! Placeholder: the lexicon writes an operator action makes inside its
//! audited transaction, until helper pg-content's `lexicon.rs` provides
//! `put_entry_in` and `delete_entry_in` with these signatures (then this
//! file goes and `operators.rs` imports them from `super::lexicon`).
//!
//! Across replicas: the `lexicon` counter row lock is taken first and held
//! to commit, so writers serialise and each version is the last committed
//! one plus one (read after the lock, under read committed).

use postgres::Transaction;
use zhangban_core::search::lexicon::{Entry, MAX_ENTRIES};

use super::{db, next_counter, to_i64, to_u64};
use crate::store::{StoreError, StoreResult};

/// Takes the lexicon writers' lock; the next version, or `InvalidState`
/// before the seed.
fn next_version(tx: &mut Transaction<'_>) -> StoreResult<u64> {
    next_counter(tx, "lexicon")?;
    let v: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM lexicon_versions", &[])?
        .get(0);
    v.map(|v| to_u64(v).saturating_add(1))
        .ok_or(StoreError::InvalidState("the lexicon has not been seeded"))
}

fn record(
    tx: &mut Transaction<'_>,
    version: u64,
    at: i64,
    actor: &str,
    change: &str,
    term: &str,
    body: Option<&str>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO lexicon_versions(version, at, actor, change, term, body)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&to_i64(version), &at, &actor, &change, &term, &body],
    )?;
    Ok(())
}

/// Puts (adds or replaces) an entry, in the caller's transaction; the new
/// version. A replaced entry keeps its position, a new one goes last; an
/// entry list already at [`MAX_ENTRIES`] takes no new term (`InvalidState`).
pub(super) fn put_entry_in(
    tx: &mut Transaction<'_>,
    entry: &Entry,
    actor: &str,
    at: i64,
) -> StoreResult<u64> {
    let version = next_version(tx)?;
    let body = serde_json::to_string(entry).map_err(db)?;
    let replaced = tx.execute(
        "UPDATE lexicon_entries SET body = $2 WHERE term = $1",
        &[&entry.term, &body],
    )?;
    if replaced == 0 {
        let row = tx.query_one(
            "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM lexicon_entries",
            &[],
        )?;
        let (count, last): (i64, i64) = (row.get(0), row.get(1));
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ENTRIES {
            return Err(StoreError::InvalidState("the lexicon is full"));
        }
        tx.execute(
            "INSERT INTO lexicon_entries(term, position, body) VALUES ($1, $2, $3)",
            &[&entry.term, &last.saturating_add(1), &body],
        )?;
    }
    record(tx, version, at, actor, "put", &entry.term, Some(&body))?;
    Ok(version)
}

/// Deletes an entry, in the caller's transaction; `NotFound` if there is
/// no such term. The new version.
pub(super) fn delete_entry_in(
    tx: &mut Transaction<'_>,
    term: &str,
    actor: &str,
    at: i64,
) -> StoreResult<u64> {
    let version = next_version(tx)?;
    let gone = tx.execute("DELETE FROM lexicon_entries WHERE term = $1", &[&term])?;
    if gone == 0 {
        return Err(StoreError::NotFound);
    }
    record(tx, version, at, actor, "delete", term, None)?;
    Ok(version)
}
