//! [`OperatorStore`] on PostgreSQL (being written: every method fails for now).

#![allow(unused_variables)]

use super::PgStore;
use crate::audit::{AuditEntry, AuditRow};
use crate::store::operators::*;
use crate::store::{StoreError, StoreResult};

impl OperatorStore for PgStore {
    fn operator_by_token(&self, token_hash: &str) -> StoreResult<Option<OperatorRecord>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn ensure_bootstrap(&self, token_hash: &str, at: i64) -> StoreResult<Bootstrap> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn audited(&self, entry: &AuditEntry, write: OperatorWrite) -> StoreResult<Written> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn audit_log(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
}
