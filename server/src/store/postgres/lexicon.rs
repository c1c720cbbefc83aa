//! [`LexiconStore`] on PostgreSQL: the current entries in `lexicon_entries`,
//! one append-only row per version in `lexicon_versions` (a trigger refuses
//! an update or a delete).
//!
//! Correct across replicas: every writer of the lexicon (the seed, a put, a
//! delete) first locks the `lexicon` counter row and holds it to commit, so
//! lexicon writers on all replicas serialise: versions never repeat, commit
//! in the order they were taken, and entry positions (read as `MAX + 1`
//! under the same lock) never collide. The counter row holds the current
//! version (the seed sets it to the seed's own version); a change takes the
//! next one with [`next_counter`].

use super::Tx;
use zhangban_core::search::lexicon::{Entry, Lexicon, MAX_ENTRIES};

use super::{PgStore, db, is_unique_violation, next_counter, to_i64, to_u64};
use crate::store::lexicon::{LexiconChange, LexiconStore};
use crate::store::{StoreError, StoreResult};

/// The current version: the highest history row (`None` before the seed).
fn version_in(tx: &mut Tx<'_>) -> StoreResult<Option<u64>> {
    let v: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM lexicon_versions", &[])?
        .get(0);
    Ok(v.map(to_u64))
}

/// Takes the next version under the `lexicon` counter row's lock (held to
/// the end of `tx`), or `InvalidState` before the seed (the caller's error
/// rolls the counter back).
fn next_version(tx: &mut Tx<'_>) -> StoreResult<u64> {
    let taken = next_counter(tx, "lexicon")?;
    let current =
        version_in(tx)?.ok_or(StoreError::InvalidState("the lexicon has not been seeded"))?;
    // The counter and the history agree; should they not (a database
    // edited by hand), the history wins so that a version never repeats.
    let version = taken.max(current.saturating_add(1));
    if version != taken {
        tx.execute(
            "UPDATE counters SET value = $2 WHERE name = $1",
            &[&"lexicon", &to_i64(version)],
        )?;
    }
    Ok(version)
}

fn record(
    tx: &mut Tx<'_>,
    version: u64,
    at: i64,
    actor: &str,
    change: &str,
    term: Option<&str>,
    body: Option<&str>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO lexicon_versions(version, at, actor, change, term, body)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&to_i64(version), &at, &actor, &change, &term, &body],
    )?;
    Ok(())
}

/// Puts (adds or replaces) an entry, in the caller's transaction; returns
/// the new version. A replaced entry keeps its position, a new one goes
/// last. An entry list already at [`MAX_ENTRIES`] takes no new term
/// (`InvalidState`); before the seed, `InvalidState`.
pub(super) fn put_entry_in(
    tx: &mut Tx<'_>,
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
    record(
        tx,
        version,
        at,
        actor,
        "put",
        Some(&entry.term),
        Some(&body),
    )?;
    Ok(version)
}

/// Deletes an entry, in the caller's transaction; `NotFound` if there is no
/// such term (no version used), `InvalidState` before the seed. Returns the
/// new version.
pub(super) fn delete_entry_in(
    tx: &mut Tx<'_>,
    term: &str,
    actor: &str,
    at: i64,
) -> StoreResult<u64> {
    let version = next_version(tx)?;
    let gone = tx.execute("DELETE FROM lexicon_entries WHERE term = $1", &[&term])?;
    if gone == 0 {
        return Err(StoreError::NotFound);
    }
    record(tx, version, at, actor, "delete", Some(term), None)?;
    Ok(version)
}

fn lexicon_in(tx: &mut Tx<'_>) -> StoreResult<Option<Lexicon>> {
    let Some(version) = version_in(tx)? else {
        return Ok(None);
    };
    // Stopwords and the note come from the latest seed (operators edit
    // entries only).
    let seed: Option<String> = tx
        .query_opt(
            "SELECT body FROM lexicon_versions WHERE change = 'seed' ORDER BY version DESC LIMIT 1",
            &[],
        )?
        .and_then(|r| r.get(0));
    let mut lexicon: Lexicon = match seed {
        Some(text) => serde_json::from_str(&text).map_err(db)?,
        None => Lexicon {
            version,
            stopwords: Vec::new(),
            entries: Vec::new(),
            note: None,
        },
    };
    lexicon.version = version;
    lexicon.entries = tx
        .query("SELECT body FROM lexicon_entries ORDER BY position", &[])?
        .iter()
        .map(|r| serde_json::from_str(r.get(0)).map_err(db))
        .collect::<StoreResult<_>>()?;
    Ok(Some(lexicon))
}

impl LexiconStore for PgStore {
    fn seed_lexicon(&self, seed: &Lexicon, at: i64) -> StoreResult<u64> {
        self.write(|tx| {
            // The lexicon writers' lock: a replica seeding at the same time
            // waits here, then finds this seed and leaves it.
            tx.execute(
                "SELECT value FROM counters WHERE name = $1 FOR UPDATE",
                &[&"lexicon"],
            )?;
            if let Some(v) = version_in(tx)? {
                return Ok(v);
            }
            let body = serde_json::to_string(seed).map_err(db)?;
            for (i, e) in seed.entries.iter().enumerate() {
                let entry = serde_json::to_string(e).map_err(db)?;
                tx.execute(
                    "INSERT INTO lexicon_entries(term, position, body) VALUES ($1, $2, $3)",
                    &[&e.term, &i64::try_from(i).unwrap_or(i64::MAX), &entry],
                )
                .map_err(|err| {
                    if is_unique_violation(&err) {
                        StoreError::Conflict("the seed lexicon has a duplicate term")
                    } else {
                        err.into()
                    }
                })?;
            }
            record(tx, seed.version, at, "setup", "seed", None, Some(&body))?;
            tx.execute(
                "UPDATE counters SET value = $2 WHERE name = $1",
                &[&"lexicon", &to_i64(seed.version)],
            )?;
            Ok(seed.version)
        })
    }

    fn lexicon_version(&self) -> StoreResult<Option<u64>> {
        self.read(version_in)
    }

    fn lexicon(&self) -> StoreResult<Option<Lexicon>> {
        // One snapshot: the version and the entries agree.
        self.read(lexicon_in)
    }

    fn lexicon_history(&self, since: u64, limit: u32) -> StoreResult<Vec<LexiconChange>> {
        self.read(|tx| {
            tx.query(
                "SELECT version, at, actor, change, term, body FROM lexicon_versions
                 WHERE version > $1 ORDER BY version LIMIT $2",
                &[&to_i64(since), &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                let change: String = r.get(3);
                let body: Option<String> = r.get(5);
                let entry = match (change.as_str(), body) {
                    ("put", Some(b)) => Some(serde_json::from_str(&b).map_err(db)?),
                    _ => None,
                };
                Ok(LexiconChange {
                    version: to_u64(r.get(0)),
                    at: r.get(1),
                    actor: r.get(2),
                    change,
                    term: r.get(4),
                    entry,
                })
            })
            .collect()
        })
    }
}
