//! [`LexiconStore`] on SQLite: the current entries in `lexicon_entries`, one
//! append-only row per version in `lexicon_versions` (triggers refuse an
//! update or a delete). Versions come from `MAX(version) + 1` inside the
//! single writer's transaction, so they never repeat or go back; a
//! PostgreSQL backend takes a table lock for the same.

use rusqlite::{Connection, OptionalExtension as _, params};
use zhangban_core::search::lexicon::{Entry, Lexicon, MAX_ENTRIES};

use super::{ReadTx, SqliteStore, db, to_i64, to_u64};
use crate::store::lexicon::{LexiconChange, LexiconStore};
use crate::store::{StoreError, StoreResult};

fn version_in(c: &Connection) -> StoreResult<Option<u64>> {
    let v: Option<i64> = c.query_row("SELECT MAX(version) FROM lexicon_versions", [], |r| {
        r.get(0)
    })?;
    Ok(v.map(to_u64))
}

/// The next version, or `InvalidState` before the seed.
fn next_version(c: &Connection) -> StoreResult<u64> {
    version_in(c)?
        .map(|v| v.saturating_add(1))
        .ok_or(StoreError::InvalidState("the lexicon has not been seeded"))
}

fn record(
    c: &Connection,
    version: u64,
    at: i64,
    actor: &str,
    change: &str,
    term: Option<&str>,
    body: Option<&str>,
) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO lexicon_versions(version, at, actor, change, term, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![to_i64(version), at, actor, change, term, body])?;
    Ok(())
}

/// Puts (adds or replaces) an entry, in the caller's transaction; returns
/// the new version. An entry list already at [`MAX_ENTRIES`] takes no new
/// term (`InvalidState`).
pub(super) fn put_entry_in(
    c: &Connection,
    entry: &Entry,
    actor: &str,
    at: i64,
) -> StoreResult<u64> {
    let version = next_version(c)?;
    let body = serde_json::to_string(entry).map_err(db)?;
    let exists: Option<i64> = c
        .prepare_cached("SELECT position FROM lexicon_entries WHERE term = ?1")?
        .query_row([&entry.term], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        c.prepare_cached("UPDATE lexicon_entries SET body = ?2 WHERE term = ?1")?
            .execute(params![entry.term, body])?;
    } else {
        let (count, last): (i64, i64) = c.query_row(
            "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM lexicon_entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ENTRIES {
            return Err(StoreError::InvalidState("the lexicon is full"));
        }
        c.prepare_cached("INSERT INTO lexicon_entries(term, position, body) VALUES (?1, ?2, ?3)")?
            .execute(params![entry.term, last.saturating_add(1), body])?;
    }
    record(c, version, at, actor, "put", Some(&entry.term), Some(&body))?;
    Ok(version)
}

/// Deletes an entry, in the caller's transaction; `NotFound` if there is no
/// such term. Returns the new version.
pub(super) fn delete_entry_in(
    c: &Connection,
    term: &str,
    actor: &str,
    at: i64,
) -> StoreResult<u64> {
    let version = next_version(c)?;
    let gone = c
        .prepare_cached("DELETE FROM lexicon_entries WHERE term = ?1")?
        .execute([term])?;
    if gone == 0 {
        return Err(StoreError::NotFound);
    }
    record(c, version, at, actor, "delete", Some(term), None)?;
    Ok(version)
}

fn lexicon_in(c: &Connection) -> StoreResult<Option<Lexicon>> {
    let Some(version) = version_in(c)? else {
        return Ok(None);
    };
    // Stopwords and the note come from the latest seed (operators edit
    // entries only).
    let seed: Option<String> = c
        .query_row(
            "SELECT body FROM lexicon_versions WHERE change = 'seed' ORDER BY version DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
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
    let mut stmt = c.prepare_cached("SELECT body FROM lexicon_entries ORDER BY position")?;
    let bodies = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    lexicon.entries = bodies
        .iter()
        .map(|b| serde_json::from_str(b).map_err(db))
        .collect::<StoreResult<_>>()?;
    Ok(Some(lexicon))
}

impl LexiconStore for SqliteStore {
    fn seed_lexicon(&self, seed: &Lexicon, at: i64) -> StoreResult<u64> {
        let seed = seed.clone();
        self.write(move |c| {
            if let Some(v) = version_in(c)? {
                return Ok(v);
            }
            let body = serde_json::to_string(&seed).map_err(db)?;
            for (i, e) in seed.entries.iter().enumerate() {
                let entry = serde_json::to_string(e).map_err(db)?;
                c.prepare_cached(
                    "INSERT INTO lexicon_entries(term, position, body) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![e.term, i64::try_from(i).unwrap_or(i64::MAX), entry])
                .map_err(|e| {
                    if super::is_constraint(&e) {
                        StoreError::Conflict("the seed lexicon has a duplicate term")
                    } else {
                        e.into()
                    }
                })?;
            }
            record(c, seed.version, at, "setup", "seed", None, Some(&body))?;
            Ok(seed.version)
        })
    }

    fn lexicon_version(&self) -> StoreResult<Option<u64>> {
        self.read(version_in)
    }

    fn lexicon(&self) -> StoreResult<Option<Lexicon>> {
        // One snapshot: the version and the entries agree.
        self.read(|c| {
            let tx = ReadTx::begin(c)?;
            let lexicon = lexicon_in(c)?;
            tx.end()?;
            Ok(lexicon)
        })
    }

    fn lexicon_history(&self, since: u64, limit: u32) -> StoreResult<Vec<LexiconChange>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT version, at, actor, change, term, body FROM lexicon_versions
                 WHERE version > ?1 ORDER BY version LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![to_i64(since), limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(version, at, actor, change, term, body)| {
                    let entry = match (change.as_str(), body) {
                        ("put", Some(b)) => Some(serde_json::from_str(&b).map_err(db)?),
                        _ => None,
                    };
                    Ok(LexiconChange {
                        version: to_u64(version),
                        at,
                        actor,
                        change,
                        term,
                        entry,
                    })
                })
                .collect()
        })
    }
}
