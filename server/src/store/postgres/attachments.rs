//! [`AttachmentStore`] on PostgreSQL (being written: every method fails for now).

#![allow(unused_variables)]

use super::PgStore;
use crate::store::attachments::*;
use crate::store::{StoreError, StoreResult};

impl AttachmentStore for PgStore {
    fn begin_upload(
        &self,
        resident_id: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: i64,
    ) -> StoreResult<UploadStart> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn upload_usage(&self, resident_id: &str, except_sha256: &str) -> StoreResult<(u64, u64)> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn upload(&self, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn uploads(&self, resident_id: &str, sha256s: &[String]) -> StoreResult<Vec<Upload>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn upload_digest(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, sha2::Sha256)>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn put_chunk(
        &self,
        resident_id: &str,
        sha256: &str,
        offset: u64,
        data: &[u8],
        verdict: Option<ChunkVerdict>,
        now: i64,
    ) -> StoreResult<ChunkOutcome> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn upload_content(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Option<Vec<u8>>)>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn submission_attachments(
        &self,
        tracking_number: &str,
    ) -> StoreResult<Option<Vec<AttachmentLink>>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
    fn submission_attachment(
        &self,
        tracking_number: &str,
        sha256: &str,
    ) -> StoreResult<Option<(AttachmentLink, Vec<u8>)>> {
        Err(StoreError::Database(
            "not implemented on PostgreSQL yet".into(),
        ))
    }
}
