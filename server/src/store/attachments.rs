//! Attachments: a resident's resumable, hash-checked upload of one content,
//! in chunks; and the content a submission references, for operators.

use super::StoreResult;
use serde::{Deserialize, Serialize};

/// A resident's upload of one attachment, keyed by (resident, SHA-256 of
/// the content): each resident's upload is theirs, even for content another
/// resident uploaded too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// SHA-256 of the whole content, 64 lower-case hex digits.
    pub sha256: String,
    /// The declared size in bytes.
    pub size: u64,
    /// The declared media type (lower-case).
    pub media_type: String,
    /// Bytes stored so far: the offset the next chunk must start at.
    pub received: u64,
    /// Whether every byte arrived and the content hashes to `sha256`.
    pub complete: bool,
    /// Incremented each time the upload restarts from byte 0 (a hash
    /// mismatch, a new size): a digest computed for an older generation
    /// does not apply.
    pub generation: u64,
}

/// The outcome of [`AttachmentStore::begin_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// A new upload (nothing received).
    Created(Upload),
    /// The resident's upload of that content as it stands (the resume
    /// point); its media type updated if the declaration named another.
    Existing(Upload),
    /// An incomplete upload declared with another size: restarted from 0.
    Restarted(Upload),
    /// The content is complete with another size: the declaration is wrong.
    Conflict(Upload),
}

/// The outcome of [`AttachmentStore::put_chunk`]. Every variant carries the upload's
/// state after the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The chunk was appended; more bytes are expected.
    Appended(Upload),
    /// The chunk was the last one and the content hashes to its SHA-256.
    Completed(Upload),
    /// The chunk lies within the bytes already stored (a retry): nothing changed.
    Unchanged(Upload),
    /// The chunk starts after or overlaps the end of the stored bytes.
    OffsetMismatch(Upload),
    /// The chunk ends beyond the declared size.
    BeyondSize(Upload),
    /// The last chunk arrived but the content does not hash to its SHA-256:
    /// every byte was dropped (received 0, next generation).
    HashMismatch(Upload),
}

/// The caller's verdict on the content that completing an upload would
/// produce, computed outside the write path (see [`AttachmentStore::upload_digest`]).
/// It applies only to the bytes it was computed over: the same generation
/// and the same stored length (the chunk's offset); otherwise the store
/// hashes the content itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkVerdict {
    /// The generation whose stored bytes were hashed.
    pub generation: u64,
    /// How many stored bytes were hashed (before the chunk).
    pub received: u64,
    /// Whether those bytes plus the chunk hash to the upload's SHA-256.
    pub matches: bool,
}

/// An attachment a submission references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentLink {
    /// The form field.
    pub field: String,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type the submission declared.
    pub media_type: String,
    /// The file name the resident chose (display only).
    pub name: String,
}

/// Attachment uploads and the attachments of submissions.
pub trait AttachmentStore {
    /// Starts, or finds, the resident's upload of the content `sha256`: a new
    /// upload, the existing one (its media type set to `media_type`), an
    /// incomplete one restarted because `size` differs, or a conflict when
    /// the content is complete with another size.
    fn begin_upload(
        &self,
        resident_id: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: i64,
    ) -> StoreResult<UploadStart>;
    /// What the resident's uploads other than `except_sha256` take: the
    /// declared bytes of all, and how many are incomplete (quotas).
    fn upload_usage(&self, resident_id: &str, except_sha256: &str) -> StoreResult<(u64, u64)>;
    /// One of the resident's uploads.
    fn upload(&self, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>>;
    /// The resident's uploads of the given contents (those that exist).
    fn uploads(&self, resident_id: &str, sha256s: &[String]) -> StoreResult<Vec<Upload>>;
    /// The upload and a SHA-256 state fed with every byte stored so far, so
    /// that the caller can check the last chunk without holding the writer.
    fn upload_digest(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, sha2::Sha256)>>;
    /// Stores one chunk at `offset`, durably: appended only when `offset`
    /// is where the stored bytes end; when it is the last chunk the content
    /// is hashed (the caller's `verdict` is used if it was computed for the
    /// current generation and stored length, else the bytes are hashed
    /// here) and the upload completes or restarts. `NotFound` if there is no
    /// such upload.
    fn put_chunk(
        &self,
        resident_id: &str,
        sha256: &str,
        offset: u64,
        data: &[u8],
        verdict: Option<ChunkVerdict>,
        now: i64,
    ) -> StoreResult<ChunkOutcome>;
    /// The upload and, if it is complete, its bytes.
    fn upload_content(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Option<Vec<u8>>)>>;
    /// The attachments recorded with a submission, by tracking number
    /// (`None`: no such submission).
    fn submission_attachments(
        &self,
        tracking_number: &str,
    ) -> StoreResult<Option<Vec<AttachmentLink>>>;
    /// The content of an attachment a submission references, by tracking
    /// number and SHA-256: the link and the bytes (`None`: no such
    /// submission, or it references no such content).
    fn submission_attachment(
        &self,
        tracking_number: &str,
        sha256: &str,
    ) -> StoreResult<Option<(AttachmentLink, Vec<u8>)>>;
}
