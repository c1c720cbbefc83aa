//! The search lexicon on the phone (ADR 0181): the newest version the
//! server has published, fetched with the catalog by a conditional GET,
//! checked with [`Lexicon::from_json`] before it is kept, and stored in
//! plaintext (it is public data). Search uses it when it is newer than the
//! built-in seed, else the seed; the parsed lexicon is cached in memory and
//! replaced when a newer one is stored.
//!
//! A lexicon that fails its checks, is older than the one in use, or cannot
//! be fetched changes nothing: the previous one stays, and the catalog
//! sync's report says why ([`LexiconFault`]). It never fails the catalog
//! sync itself, whose pages are already applied.

use std::sync::Arc;

use rusqlite::OptionalExtension as _;
use serde::Serialize;

use super::api::{ApiFailure, ServerApi};
use super::error::{ClientError, ClientResult};
use super::store::ClientStore;
use crate::search::lexicon::{Lexicon, LexiconError};

/// Client store migration 8: the newest lexicon received (one row).
pub const MIGRATION_8: &str = "
    CREATE TABLE lexicon (
        id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, body TEXT NOT NULL,
        fetched_at INTEGER NOT NULL);
";

/// Why the server's lexicon was not taken (the previous one stays in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum LexiconFault {
    /// Not a lexicon's JSON shape ([`LexiconError::Malformed`]).
    Malformed,
    /// More entries than allowed ([`LexiconError::TooManyEntries`]).
    TooManyEntries {
        /// How many it had.
        entries: usize,
    },
    /// An entry or stopword breaks a rule ([`LexiconError::BadEntry`]).
    BadEntry {
        /// Its position.
        index: usize,
        /// The rule.
        why: &'static str,
    },
    /// Its version is below the one in use (a rollback, or a server
    /// restored from an old backup).
    Older {
        /// The version offered.
        offered: u64,
        /// The version kept.
        kept: u64,
    },
    /// The request failed (network or server error); tried again next sync.
    Unreachable,
}

impl From<&LexiconError> for LexiconFault {
    fn from(e: &LexiconError) -> Self {
        match e {
            LexiconError::Malformed(_) => Self::Malformed,
            LexiconError::TooManyEntries(n) => Self::TooManyEntries { entries: *n },
            LexiconError::BadEntry { index, why } => Self::BadEntry { index: *index, why },
        }
    }
}

/// What the lexicon step of a catalog sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LexiconReport {
    /// The version search uses after the sync.
    pub version: u64,
    /// Whether a newer lexicon was received and stored.
    pub updated: bool,
    /// Why the server's lexicon was not taken, if it was not.
    pub fault: Option<LexiconFault>,
    /// Response bytes on the wire.
    pub wire_bytes: u64,
}

/// Decides about a fetched lexicon text (sans-IO): `Ok(Some)` to keep a
/// newer one, `Ok(None)` if it is the version in use, else why it is refused.
pub fn accept(text: &str, in_use: u64) -> Result<Option<Lexicon>, LexiconFault> {
    let lexicon = Lexicon::from_json(text).map_err(|e| LexiconFault::from(&e))?;
    match lexicon.version {
        v if v > in_use => Ok(Some(lexicon)),
        v if v == in_use => Ok(None),
        offered => Err(LexiconFault::Older {
            offered,
            kept: in_use,
        }),
    }
}

/// The ETag the server gives lexicon version `v`.
pub fn etag(version: u64) -> String {
    format!("\"lexicon-{version}\"")
}

impl ClientStore {
    /// The lexicon search uses: the stored one if it is newer than the
    /// built-in seed, else the seed. Parsed once, then cached.
    pub fn lexicon(&self) -> ClientResult<Arc<Lexicon>> {
        if let Some(l) = self.lexicon_cache()?.as_ref() {
            return Ok(Arc::clone(l));
        }
        let builtin = Lexicon::builtin();
        let stored: Option<(i64, String)> = self
            .conn()?
            .query_row("SELECT version, body FROM lexicon WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let lexicon = match stored {
            Some((v, body)) if u64::try_from(v).unwrap_or(0) > builtin.version => {
                Lexicon::from_json(&body).unwrap_or_else(|e| {
                    // It was checked before it was stored: the file changed.
                    tracing::warn!(error = %e, "stored search lexicon refused; using the built-in");
                    builtin.clone()
                })
            }
            _ => builtin.clone(),
        };
        let lexicon = Arc::new(lexicon);
        self.set_lexicon_cache(Some(Arc::clone(&lexicon)))?;
        Ok(lexicon)
    }

    /// Stores `lexicon` (checked; `body` its text) if it is newer than the
    /// stored one, and makes it the one search uses. Returns whether it was
    /// stored.
    pub fn put_lexicon(&self, lexicon: Lexicon, body: &str, now: i64) -> ClientResult<bool> {
        let version = i64::try_from(lexicon.version)
            .map_err(|_| ClientError::Protocol("lexicon version out of range".into()))?;
        let stored = self.tx(|tx| {
            let held: Option<i64> = tx
                .query_row("SELECT version FROM lexicon WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if held.is_some_and(|h| h >= version) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO lexicon(id, version, body, fetched_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET version = ?1, body = ?2, fetched_at = ?3",
                rusqlite::params![version, body, now],
            )?;
            Ok(true)
        })?;
        if stored && lexicon.version > Lexicon::builtin().version {
            self.set_lexicon_cache(Some(Arc::new(lexicon)))?;
        } else if stored {
            self.set_lexicon_cache(None)?;
        }
        Ok(stored)
    }
}

/// Fetches the lexicon if the server's differs from the one in use (a
/// conditional GET), and keeps it if it passes [`accept`].
pub async fn sync_lexicon(
    store: &ClientStore,
    api: &ServerApi,
    now: i64,
) -> ClientResult<LexiconReport> {
    let in_use = store.lexicon()?;
    let mut report = LexiconReport {
        version: in_use.version,
        ..LexiconReport::default()
    };
    let fetched = match api.lexicon(&etag(in_use.version)).await {
        Ok(f) => f,
        // A server without the endpoint: nothing to take.
        Err(ApiFailure::Http { status: 404, .. }) => None,
        Err(e) => {
            tracing::warn!(error = %e, "search lexicon not fetched");
            report.fault = Some(LexiconFault::Unreachable);
            return Ok(report);
        }
    };
    let Some((text, wire)) = fetched else {
        return Ok(report);
    };
    report.wire_bytes = wire;
    match accept(&text, in_use.version) {
        Ok(Some(lexicon)) => {
            let version = lexicon.version;
            report.updated = store.put_lexicon(lexicon, &text, now)?;
            if report.updated {
                report.version = version;
            }
        }
        Ok(None) => {}
        Err(fault) => {
            tracing::warn!(?fault, "search lexicon refused; keeping the previous one");
            report.fault = Some(fault);
        }
    }
    Ok(report)
}
