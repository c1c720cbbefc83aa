//! [`ResidentStore`] on PostgreSQL (being written: every method fails for now).

#![allow(unused_variables)]

use super::PgStore;
use crate::activation::SealedCode;
use crate::store::residents::*;
use crate::store::{StoreError, StoreResult};

impl ResidentStore for PgStore {
    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_activation(&self, activation: &NewActivation<'_>) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn reenrol(
        &self,
        code: &SealedCode,
        device: &Device,
        replaces: &str,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<(Enrolment, Vec<String>)> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn retirement(&self, id: &str) -> StoreResult<Option<Retirement>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_challenge(&self, challenge: &NewChallenge<'_>, now: i64) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn challenge_count(&self) -> StoreResult<u64> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_token(&self, hash: &str, session: &Session) -> StoreResult<()> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
}
