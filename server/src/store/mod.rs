//! Storage behind one trait. Handlers see only [`Store`]; SQLite
//! ([`sqlite::SqliteStore`]) is the embedded default, and a PostgreSQL
//! implementation for several stateless replicas can follow without touching
//! handlers: every method is one transaction with no state kept between calls
//! (challenges, nonces and tokens live in the database, not in memory).
//!
//! Methods are blocking; handlers call them through `spawn_blocking`. Every
//! method that returns after a write has made it durable.

pub mod operators;
pub mod sqlite;

use serde::{Deserialize, Serialize};

use crate::activation::SealedCode;

/// Why a storage call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, constraint we did not expect).
    #[error("database error: {0}")]
    Database(String),
    /// A referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// The same key was used for different content.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The request is not allowed in the row's current state.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            other => Self::Database(other.to_string()),
        }
    }
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// One entry of the catalog change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogChange {
    /// Guide id.
    pub id: String,
    /// The catalog sequence number of this change (the cursor after it).
    pub seq: u64,
    /// SHA-256 (hex) of the guide JSON; empty for tombstones.
    pub checksum: String,
    /// The guide JSON, or `None` for a tombstone (deleted guide).
    pub body: Option<String>,
}

/// A page of the catalog change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage {
    /// Changes with `seq > since`, in order.
    pub changes: Vec<CatalogChange>,
    /// The highest sequence number in the catalog.
    pub head: u64,
}

/// A device enrolled for a resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id (its key thumbprint).
    pub id: String,
    /// Owner.
    pub resident_id: String,
    /// The device's public JWK (JSON text).
    pub jwk: String,
}

/// An authenticated session resolved from a token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The device.
    pub device_id: String,
    /// Its resident.
    pub resident_id: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// An activation code to store (see [`Store::put_activation`]).
#[derive(Debug, Clone, Copy)]
pub struct NewActivation<'a> {
    /// The code's id and keyed hash.
    pub code: &'a SealedCode,
    /// The resident it enrols devices for.
    pub resident_id: &'a str,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// How many devices may enrol with it.
    pub uses: u32,
}

/// Why an activation code was refused. Logged and counted only: every
/// refusal gets the same answer, so a guesser learns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No code has that id.
    Unknown,
    /// A code has that id but the rest is wrong (a failure was counted).
    Wrong,
    /// The code failed too often and is locked.
    Locked,
    /// The code expired.
    Expired,
    /// Every use is taken.
    UsedUp,
}

impl Refusal {
    /// A stable code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Wrong => "wrong",
            Self::Locked => "locked",
            Self::Expired => "expired",
            Self::UsedUp => "used_up",
        }
    }
}

/// The outcome of [`Store::enrol`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The device is enrolled (now, or already for the same resident).
    Enrolled(Device),
    /// The code was refused.
    Refused(Refusal),
}

/// An authentication challenge to store (see [`Store::put_challenge`]).
#[derive(Debug, Clone, Copy)]
pub struct NewChallenge<'a> {
    /// Challenge id.
    pub id: &'a str,
    /// The device it was issued to.
    pub device_id: &'a str,
    /// The nonce the device signs.
    pub nonce: &'a str,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The most pending challenges one device keeps.
    pub max_pending: u32,
}

/// What the server stores for an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    /// Client-generated id (the idempotency key).
    pub client_id: String,
    /// Submitting resident.
    pub resident_id: String,
    /// Submitting device.
    pub device_id: String,
    /// Service guide id.
    pub guide_id: String,
    /// Form schema version the client filled.
    pub form_version: u32,
    /// The submitted values (JSON text).
    pub body: String,
    /// SHA-256 of the canonical request, to tell a retry from a reuse of the id.
    pub request_hash: String,
    /// Area code used as the tracking-number prefix.
    pub area_code: String,
    /// The guide's department code (a reviewer's scope, ADR 0165).
    pub department_code: String,
    /// Acceptance time.
    pub at: i64,
    /// The attachments the values reference, one per attachment field;
    /// recorded with the submission in the same transaction.
    pub attachments: Vec<AttachmentLink>,
}

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

/// The outcome of [`Store::begin_upload`].
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

/// The outcome of [`Store::put_chunk`]. Every variant carries the upload's
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
/// produce, computed outside the write path (see [`Store::upload_digest`]).
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

/// The receipt: returned identically for every retry of a client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The client id.
    pub client_id: String,
    /// The tracking number (办件编号) residents quote.
    pub tracking_number: String,
    /// The service guide.
    pub guide_id: String,
    /// When the server accepted it.
    pub accepted_at: i64,
}

/// The outcome of [`Store::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The receipt (the stored one for a retry).
    pub receipt: Receipt,
    /// Whether this call stored the submission (false: a retry).
    pub fresh: bool,
}

/// A submission as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// The receipt.
    pub receipt: Receipt,
    /// Current state.
    pub state: String,
    /// The form values (JSON).
    pub values: serde_json::Value,
    /// The form version.
    pub form_version: u32,
}

/// One step of a submission's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// Feed cursor.
    pub seq: u64,
    /// The submission.
    pub client_id: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// The new state.
    pub state: String,
    /// An optional note from the officer (no personal data).
    pub note: Option<String>,
    /// When.
    pub at: i64,
}

/// A licence copy delivered to one of a resident's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletEntry {
    /// Row id.
    pub id: u64,
    /// GB/T 36904 licence identifier.
    pub licence_id: String,
    /// The device the copy is bound to.
    pub device_id: String,
    /// Licence type.
    pub vct: String,
    /// The issued SD-JWT (every disclosure).
    pub sd_jwt: String,
    /// Issue time.
    pub issued_at: i64,
}

/// A licence granted to a resident: the source each device's copy is issued
/// from, including devices enrolled later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// GB/T 36904 licence identifier (unique).
    pub licence_id: String,
    /// The resident.
    pub resident_id: String,
    /// The issuer.
    pub issuer_id: String,
    /// The licence type (`None`: the issuer's first).
    pub vct: Option<String>,
    /// The licence fields (JSON object text).
    pub claims: String,
    /// 0 valid, 1 revoked, 2 suspended.
    pub status: u8,
    /// When granted.
    pub granted_at: i64,
}

/// A status list's mutable state, kept by the issuing server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListRow {
    /// List URI.
    pub uri: String,
    /// Issuer id.
    pub issuer_id: String,
    /// The raw 2-bit array.
    pub bits: Vec<u8>,
    /// Next free index.
    pub next_idx: u64,
    /// The latest signed token, if published.
    pub token: Option<String>,
}

/// Everything the server persists.
pub trait Store: operators::OperatorStore + Send + Sync + 'static {
    // -- catalog --
    /// Inserts or replaces a guide; returns its new sequence number. A guide
    /// whose checksum did not change is left alone (returns the old sequence).
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64>;
    /// Inserts or replaces many guides in one transaction.
    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64>;
    /// Deletes a guide, leaving a tombstone in the feed.
    fn delete_guide(&self, id: &str) -> StoreResult<u64>;
    /// Changes with `seq > since`, at most `limit`.
    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage>;
    /// One live guide (checksum, body).
    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>>;

    // -- residents, devices, auth --
    /// Creates a resident (idempotent by id).
    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()>;
    /// Stores an activation code (its id and keyed hash, never the code).
    /// Storing the same code again resets its expiry, uses and failures;
    /// `Conflict` if another code has the same id.
    fn put_activation(&self, activation: &NewActivation<'_>) -> StoreResult<()>;
    /// Checks a code and, if it is good, consumes one use and enrols the
    /// device, in one transaction. A wrong code for an existing id counts a
    /// failure of that code (committed: `Ok(Refused(Wrong))`); at
    /// `max_failures` the code is locked. Re-enrolling the same key for the
    /// same resident is idempotent (no use consumed).
    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment>;
    /// A device by id.
    fn device(&self, id: &str) -> StoreResult<Option<Device>>;
    /// All devices of a resident.
    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>>;
    /// Stores an authentication challenge, in one transaction with the
    /// upkeep that keeps the table bounded: every challenge expired at `now`
    /// is deleted, and of the device's pending challenges only the newest
    /// `max_pending` are kept (the oldest are dropped, so a flood cannot
    /// lock the device out, and the rows per device stay capped).
    fn put_challenge(&self, challenge: &NewChallenge<'_>, now: i64) -> StoreResult<()>;
    /// How many challenges are stored (all devices; for tests and upkeep).
    fn challenge_count(&self) -> StoreResult<u64>;
    /// Deletes and returns a challenge (device id, nonce, expiry): at most once.
    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>>;
    /// Stores a session token hash.
    fn put_token(&self, hash: &str, session: &Session) -> StoreResult<()>;
    /// Resolves a token hash (expired sessions are returned; the caller judges).
    fn session(&self, hash: &str) -> StoreResult<Option<Session>>;

    // -- submissions --
    /// The stored receipt for `client_id`, with its owner and request hash.
    fn receipt(&self, client_id: &str) -> StoreResult<Option<(String, String, Receipt)>>;
    /// Writes the dedupe row, the submission, its attachment links and its
    /// first timeline event in one durable transaction, or returns the
    /// receipt already stored for the id. Conflict if the id belongs to
    /// another resident or another request; `InvalidState` if a referenced
    /// attachment is not a complete upload of the resident's.
    fn submit(&self, s: &NewSubmission) -> StoreResult<Submitted>;
    /// A resident's submissions, newest first.
    fn submissions_of(&self, resident_id: &str) -> StoreResult<Vec<SubmissionRecord>>;
    /// One submission of a resident.
    fn submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<SubmissionRecord>>;
    /// Moves a submission (by tracking number) from `from` to `state`, appending a
    /// timeline event; `InvalidState` if its state is no longer `from`.
    fn transition(
        &self,
        tracking_number: &str,
        from: &str,
        state: &str,
        note: Option<&str>,
        at: i64,
    ) -> StoreResult<StatusEvent>;
    /// The department a submission (by tracking number) was made to: its
    /// guide's department code when it was submitted.
    fn submission_department(&self, tracking_number: &str) -> StoreResult<Option<String>>;
    /// The current state of a submission by tracking number.
    fn state_of(&self, tracking_number: &str) -> StoreResult<Option<String>>;
    /// Timeline events of a resident's submissions with `seq > since`.
    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>>;
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
    /// The secret called `name`: the stored one, or `fresh` stored now if
    /// there is none (so every replica sharing the database agrees).
    fn secret(&self, name: &str, fresh: &[u8], now: i64) -> StoreResult<Vec<u8>>;

    // -- attachments --
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

    // -- trust data --
    /// Publishes a trust bundle version.
    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()>;
    /// The newest trust bundle.
    fn trust_bundle(&self) -> StoreResult<Option<String>>;
    /// Creates a status list if absent.
    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()>;
    /// A status list row.
    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>>;
    /// All status list rows.
    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>>;
    /// Allocates the next index of a list.
    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64>;
    /// Sets the 2-bit status at `idx` atomically; returns the list's new bits.
    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>>;
    /// Stores a list's newly signed token.
    fn put_status_token(&self, uri: &str, token: &str) -> StoreResult<()>;

    // -- wallet --
    /// Stores an issued licence copy for a resident's device; conflict if the
    /// device already holds a copy of that licence.
    fn put_licence(
        &self,
        resident_id: &str,
        entry: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64>;
    /// A resident's licences.
    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>>;
    /// Records a grant; conflict if the licence id exists.
    fn put_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// One grant.
    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>>;
    /// A resident's grants.
    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>>;
    /// Records a grant's status (so later copies get it too).
    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()>;
    /// Whether a device already holds a copy of a licence.
    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool>;
    /// Status references (uri, idx) of every copy of a licence identifier.
    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>>;
}
