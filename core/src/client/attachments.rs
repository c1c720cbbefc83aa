//! Attachments (scanned paper proofs): kept in the store by content hash
//! while the resident fills a form, and uploaded in resumable chunks as the
//! first step of sending the submission that references them. The server's
//! upload state is the truth: each upload asks it where to resume, so a cut
//! (or a killed app) costs at most one chunk.

use rusqlite::{OptionalExtension as _, params};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::api::ApiFailure;
use super::error::{ClientError, ClientResult};
use super::facade::Client;
use super::flush::classify_failure;
use super::personal::{open_bytes, seal_bytes, seal_text};
use super::sealing::Slot;
use super::store::ClientStore;
use crate::guide::{AttachmentRef, FieldKind, Guide};
use crate::outbox::SendOutcome;

/// Bytes per uploaded chunk: small enough that a flaky rural connection
/// loses little to a cut, large enough to keep requests few.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The largest file the client keeps (the server's default limit).
pub const MAX_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ClientStore {
    /// Keeps a file for attaching; returns the reference a form value takes.
    pub fn add_attachment(
        &self,
        data: &[u8],
        media_type: &str,
        name: &str,
        now: i64,
    ) -> ClientResult<AttachmentRef> {
        if data.is_empty() || data.len() > MAX_ATTACHMENT_BYTES {
            return Err(ClientError::Invalid(format!(
                "an attachment has 1 to {MAX_ATTACHMENT_BYTES} bytes"
            )));
        }
        let r = AttachmentRef {
            sha256: hex(&Sha256::digest(data)),
            size: data.len() as u64,
            media_type: media_type.to_ascii_lowercase(),
            name: name.to_owned(),
        };
        if !r.is_well_formed() {
            return Err(ClientError::Invalid(
                "attachment media type or file name is not acceptable".into(),
            ));
        }
        let s = self.sealer()?;
        let name = seal_text(&s, Slot::new("attachments", "name", &r.sha256), &r.name)?;
        let sealed = seal_bytes(&s, Slot::new("attachments", "data", &r.sha256), data)?;
        self.conn()?.execute(
            "INSERT INTO attachments(sha256, size, media_type, name, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(sha256) DO NOTHING",
            params![
                r.sha256,
                i64::try_from(r.size).unwrap_or(i64::MAX),
                r.media_type,
                name,
                sealed,
                now
            ],
        )?;
        Ok(r)
    }

    /// A kept file's bytes.
    pub fn attachment_data(&self, sha256: &str) -> ClientResult<Option<Vec<u8>>> {
        let s = self.sealer()?;
        let sealed: Option<Vec<u8>> = self
            .conn()?
            .query_row(
                "SELECT data FROM attachments WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?;
        sealed
            .map(|d| open_bytes(&s, Slot::new("attachments", "data", sha256), &d))
            .transpose()
    }

    /// Whether the server confirmed the whole file (for display).
    pub fn attachment_uploaded(&self, sha256: &str) -> ClientResult<bool> {
        let v: Option<bool> = self
            .conn()?
            .query_row(
                "SELECT uploaded FROM attachments WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.unwrap_or(false))
    }

    fn mark_uploaded(&self, sha256: &str) -> ClientResult<()> {
        self.conn()?.execute(
            "UPDATE attachments SET uploaded = 1 WHERE sha256 = ?1",
            [sha256],
        )?;
        Ok(())
    }
}

/// The attachment references in a submission's values.
pub fn referenced(guide: &Guide, values: &serde_json::Map<String, Value>) -> Vec<AttachmentRef> {
    guide
        .form
        .fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Attachment { .. }))
        .filter_map(|f| values.get(&f.name))
        .filter_map(|v| AttachmentRef::deserialize(v).ok())
        .collect()
}

impl Client {
    /// Keeps a file (a scanned proof) for a form's attachment field and
    /// returns the value to put in the field. Works offline.
    pub fn attach_file(
        &self,
        data: &[u8],
        media_type: &str,
        name: &str,
    ) -> ClientResult<AttachmentRef> {
        self.store
            .add_attachment(data, media_type, name, self.now())
    }

    /// Uploads one attachment, resuming where the server's copy ends.
    pub(crate) async fn upload(&self, token: &str, a: &AttachmentRef) -> Result<(), SendOutcome> {
        let store_err = |_| SendOutcome::Transient {
            code: "store".into(),
            retry_after: None,
        };
        // Always asked, never assumed from a local flag: the server's copy
        // is the truth (one small request when it is complete already).
        let Some(data) = self.store.attachment_data(&a.sha256).map_err(store_err)? else {
            return Err(SendOutcome::Rejected {
                code: "attachment_not_kept".into(),
                details: None,
            });
        };
        let mut state = self
            .api
            .declare_upload(token, &a.sha256, a.size, &a.media_type)
            .await
            .map_err(classify_failure)?;
        // Bounded: each round either advances or restarts once per mismatch.
        let mut restarts = 0;
        while !state.complete {
            let from = usize::try_from(state.received).unwrap_or(usize::MAX);
            if from >= data.len() {
                return Err(SendOutcome::Transient {
                    code: "upload_inconsistent".into(),
                    retry_after: None,
                });
            }
            let to = from.saturating_add(CHUNK_BYTES).min(data.len());
            let chunk = data[from..to].to_vec();
            state = match self
                .api
                .put_chunk(token, &a.sha256, state.received, chunk)
                .await
            {
                Ok(s) => s,
                Err(ApiFailure::Http { code, details, .. }) if code == "offset_mismatch" => {
                    let received = details
                        .as_ref()
                        .and_then(|d| d.get("received"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    super::api::UploadStateIn { received, ..state }
                }
                Err(ApiFailure::Http { code, .. }) if code == "hash_mismatch" && restarts < 2 => {
                    restarts += 1;
                    super::api::UploadStateIn {
                        received: 0,
                        ..state
                    }
                }
                Err(f) => return Err(classify_failure(f)),
            };
        }
        self.store.mark_uploaded(&a.sha256).map_err(store_err)?;
        Ok(())
    }
}
