//! [`LicenceStore`] on PostgreSQL (being written: every method fails for now).

#![allow(unused_variables)]

use super::PgStore;
use crate::store::licences::*;
use crate::store::{StoreError, StoreResult};

impl LicenceStore for PgStore {
    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_status_token(&self, uri: &str, token: &str, bits: &[u8]) -> StoreResult<bool> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_licence(
        &self,
        resident_id: &str,
        entry: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_grant(&self, grant: &Grant) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
}
