//! Submissions: the exactly-once acceptance of a resident's application
//! (the dedupe row, keyed by the client id, and its stored receipt), the
//! submission itself and its state transitions.

use super::{AttachmentLink, StatusEvent, StoreResult};
use serde::{Deserialize, Serialize};

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

/// The outcome of [`SubmissionStore::submit`].
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

/// Submissions, their dedupe rows and their state transitions.
pub trait SubmissionStore {
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
}

/// A tracking number (办件编号): the area code's first six digits, the day
/// of `at` in China Standard Time (UTC+8) and the 7-digit counter value `n`.
pub fn tracking_number(area_code: &str, at: i64, n: u64) -> String {
    let day = chrono::DateTime::from_timestamp(at.saturating_add(8 * 3600), 0)
        .map(|t| t.format("%Y%m%d").to_string())
        .unwrap_or_default();
    let area: String = area_code.chars().take(6).collect();
    format!("{area}{day}{n:07}")
}
