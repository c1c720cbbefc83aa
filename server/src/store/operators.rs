//! Operators and the audit trail: the store's half of least privilege
//! (ADR 0165) and of the hash-chained audit log (ADR 0166).
//!
//! An operator action's decisive write and its audit row commit in one
//! transaction: [`OperatorStore::audited`] takes the write as an
//! [`OperatorWrite`] and appends the row after it, in the same savepoint of
//! the writer's transaction, so there is no committed action without its
//! row and no `ok` row for an action that rolled back.

use serde::Serialize;

use super::{Grant, StatusEvent, StoreResult};
use crate::activation::SealedCode;
use crate::audit::{AuditEntry, AuditRow};

/// A stored operator (never its token: only the token's SHA-256 is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorRecord {
    /// Unique name; never reused, even after revocation.
    pub name: String,
    /// `admin`, `issuer`, `reviewer` or `publisher`.
    pub role: String,
    /// Issuer ids or department codes.
    pub scopes: Vec<String>,
    /// When created (Unix seconds).
    pub created_at: i64,
    /// When revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// An operator to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperator {
    /// Unique name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// Creation time.
    pub created_at: i64,
}

/// A resident and their activation code, written together.
#[derive(Debug, Clone)]
pub struct ResidentActivation {
    /// Resident id.
    pub id: String,
    /// Display name (stored with the resident, never in the audit trail).
    pub name: String,
    /// The code's id and keyed hash.
    pub code: SealedCode,
    /// Code expiry.
    pub expires_at: i64,
    /// Enrolments the code allows.
    pub uses: u32,
    /// When.
    pub at: i64,
}

/// The decisive write of an operator action (see [`OperatorStore::audited`]).
#[derive(Debug, Clone)]
pub enum OperatorWrite {
    /// Nothing but the audit row (reads, refusals, failures).
    None,
    /// [`super::CatalogStore::put_guide`].
    PutGuide {
        /// Guide id.
        id: String,
        /// Checksum.
        checksum: String,
        /// Guide JSON.
        body: String,
    },
    /// [`super::CatalogStore::delete_guide`].
    DeleteGuide {
        /// Guide id.
        id: String,
    },
    /// [`super::ResidentStore::put_resident`] and [`super::ResidentStore::put_activation`].
    PutResident(ResidentActivation),
    /// [`super::TrustStore::put_trust_bundle`].
    PutTrustBundle {
        /// Version.
        version: u64,
        /// The JWS.
        jws: String,
        /// When.
        at: i64,
    },
    /// [`super::LicenceStore::put_grant`].
    PutGrant(Grant),
    /// [`super::LicenceStore::set_grant_status`].
    SetGrantStatus {
        /// Licence id.
        licence_id: String,
        /// 0 valid, 1 revoked, 2 suspended.
        status: u8,
    },
    /// [`super::SubmissionStore::transition`].
    Transition {
        /// Tracking number.
        tracking: String,
        /// Expected current state.
        from: String,
        /// New state.
        to: String,
        /// Note for the resident.
        note: Option<String>,
        /// When.
        at: i64,
    },
    /// Creates an operator; `Conflict` if the name was ever used.
    PutOperator(NewOperator),
    /// [`super::lexicon`]: adds or replaces a lexicon entry (the next
    /// version); `InvalidState` if the lexicon is full or not seeded.
    PutLexiconEntry {
        /// The entry (checked by the caller with `Lexicon::check`).
        entry: zhangban_core::search::lexicon::Entry,
        /// The operator (the history row's actor).
        actor: String,
        /// When.
        at: i64,
    },
    /// Removes a lexicon entry (the next version); `NotFound` if the term
    /// has none.
    DeleteLexiconEntry {
        /// The term.
        term: String,
        /// The operator.
        actor: String,
        /// When.
        at: i64,
    },
    /// [`super::bundles`]: publishes a life-event bundle (checked by the
    /// caller against the catalog); `Conflict` if its version does not rise.
    PutBundle {
        /// The bundle.
        bundle: zhangban_core::bundle::Bundle,
        /// When.
        at: i64,
    },
    /// [`super::evaluations`]: answers a rectification case (once; an
    /// answered case is `InvalidState(CASE_ANSWERED)`, an unknown one
    /// `NotFound`) and appends the answer to the submission's timeline
    /// (the submission's state, the note prefixed with
    /// [`super::evaluations::ANSWER_NOTE_PREFIX`]).
    AnswerCase {
        /// The case id.
        id: String,
        /// The answer.
        answer: String,
        /// The day answered (`YYYY-MM-DD`, China's date).
        on: String,
        /// The operator.
        by: String,
        /// When.
        at: i64,
    },
    /// Stores (adds or replaces) one working-day calendar year, and moves
    /// the due days of the unanswered cases given (recomputed with it).
    PutCalendarYear {
        /// The year (checked by the caller with `WorkCalendar::from_years`).
        year: zhangban_core::calendar::CalendarYear,
        /// `(case id, due day, provisional)` for unanswered cases.
        redue: Vec<(String, String, bool)>,
        /// When.
        at: i64,
    },
    /// Revokes an operator; `NotFound` if there is no such active operator,
    /// `InvalidState` if it is the last active admin.
    RevokeOperator {
        /// Name.
        name: String,
        /// When.
        at: i64,
    },
}

/// What an [`OperatorWrite`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Nothing to return.
    Done,
    /// A catalog sequence number.
    Seq(u64),
    /// A timeline event.
    Event(StatusEvent),
    /// A lexicon version.
    Version(u64),
    /// What publishing a bundle did.
    Bundle(super::BundlePut),
}

/// Which audit rows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only rows at or after (Unix seconds).
    pub since: Option<i64>,
    /// Only rows before (Unix seconds).
    pub until: Option<i64>,
    /// At most this many (the newest); `None`: all.
    pub limit: Option<u32>,
}

/// What [`OperatorStore::ensure_bootstrap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// Created (first start on this database).
    Created,
    /// The token changed (a new `operator-token`): the hash was replaced.
    Rotated,
    /// Already there with this token.
    Unchanged,
    /// Revoked by an admin: the bootstrap token no longer works.
    Revoked,
}

/// The name of the operator the data directory's `operator-token` belongs to.
pub const BOOTSTRAP_OPERATOR: &str = "bootstrap";

/// Operators and the audit trail.
pub trait OperatorStore {
    /// The active operator whose token hashes to `token_hash`.
    fn operator_by_token(&self, token_hash: &str) -> StoreResult<Option<OperatorRecord>>;
    /// Every operator (active and revoked), by name.
    fn operators(&self) -> StoreResult<Vec<OperatorRecord>>;
    /// Makes the data directory's operator token the [`BOOTSTRAP_OPERATOR`]
    /// admin (created, or its hash replaced), auditing a change as `actor`
    /// at `at`; leaves a revoked bootstrap revoked.
    fn ensure_bootstrap(&self, token_hash: &str, at: i64) -> StoreResult<Bootstrap>;
    /// Runs `write` and appends `entry` to the audit trail in the same
    /// transaction: both commit, or neither.
    fn audited(&self, entry: &AuditEntry, write: OperatorWrite) -> StoreResult<Written>;
    /// Audit rows matching `filter`, in chain order.
    fn audit_log(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
}
