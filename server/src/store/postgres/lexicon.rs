//! [`LexiconStore`] on PostgreSQL (being written: every method fails for now).

#![allow(unused_variables)]

use super::PgStore;
use crate::store::lexicon::*;
use crate::store::{StoreError, StoreResult};
use zhangban_core::search::lexicon::Lexicon;

impl LexiconStore for PgStore {
    fn seed_lexicon(&self, seed: &Lexicon, at: i64) -> StoreResult<u64> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn lexicon_version(&self) -> StoreResult<Option<u64>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn lexicon(&self) -> StoreResult<Option<Lexicon>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn lexicon_history(&self, since: u64, limit: u32) -> StoreResult<Vec<LexiconChange>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
}
