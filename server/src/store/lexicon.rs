//! The search lexicon operators maintain (ADR 0181): a versioned document
//! (what residents type → the official words), served to phones with the
//! catalog.
//!
//! Version rule (every backend): the first version is the seed (the
//! built-in lexicon, [`LexiconStore::seed_lexicon`]); each change
//! ([`super::operators::OperatorWrite::PutLexiconEntry`] /
//! [`super::operators::OperatorWrite::DeleteLexiconEntry`], committed with
//! its audit row) makes the next version, one above the highest, and
//! appends one history row that is never changed. The current document
//! lists the entries in the order they were first added (a replaced entry
//! keeps its place), so a phone's rewrites do not move for entries that did
//! not change.

use serde::Serialize;
use zhangban_core::search::lexicon::{Entry, Lexicon};

use super::StoreResult;

/// One row of the lexicon's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LexiconChange {
    /// The version this change made.
    pub version: u64,
    /// When (Unix seconds).
    pub at: i64,
    /// The operator (or `setup` for the seed).
    pub actor: String,
    /// `seed`, `put` or `delete`.
    pub change: String,
    /// The entry's term (none for the seed).
    pub term: Option<String>,
    /// The entry put (none for a delete or the seed).
    pub entry: Option<Entry>,
}

/// The lexicon and its history.
pub trait LexiconStore {
    /// Stores `seed` as the first version (its own `version`) if the
    /// lexicon has none yet; returns the current version either way.
    fn seed_lexicon(&self, seed: &Lexicon, at: i64) -> StoreResult<u64>;
    /// The current version (`None` before the seed).
    fn lexicon_version(&self) -> StoreResult<Option<u64>>;
    /// The current document, its version set (`None` before the seed).
    fn lexicon(&self) -> StoreResult<Option<Lexicon>>;
    /// The history, oldest first: versions above `since`, at most `limit`.
    fn lexicon_history(&self, since: u64, limit: u32) -> StoreResult<Vec<LexiconChange>>;
}
