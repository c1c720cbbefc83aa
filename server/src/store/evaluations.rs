//! 好差评 (issue 17, ADR 0230): a resident's ratings of their finished
//! submissions, the rectification cases a 差评 opens, and the working-day
//! calendar years operators maintain.
//!
//! A rating is unique per submission and round (round 1: the first rating;
//! round 2: the one re-rating allowed once the department answered the
//! first rating's case, [`zhangban_core::evaluation::may_rate`]) and
//! idempotent by its client-generated rating id: an outbox retry returns the
//! stored rating. A 差评's case has the rating's id as its own id; its due
//! day is computed by the caller from the calendar and the clock (China's
//! date) and stored with it. Answering a case is an operator write
//! ([`super::operators::OperatorWrite::AnswerCase`]) that also appends the
//! answer to the submission's timeline. Statistics read no resident id.

use serde::Serialize;
use zhangban_core::calendar::CalendarYear;
use zhangban_core::evaluation::stats::Rated;
use zhangban_core::evaluation::{Evaluation, Level};

use super::StoreResult;

/// `InvalidState` message: the submission has not reached a final state.
pub const NOT_FINISHED: &str = "the application is not finished yet";
/// `Conflict` message: no rating round is left (rated, and no answered
/// case allows a re-rating).
pub const ALREADY_RATED: &str = "this application was already rated";
/// `Conflict` message: the rating id names another resident's rating.
pub const RATING_OF_ANOTHER: &str = "rating id belongs to another resident";
/// `Conflict` message: the rating id was used for a different rating.
pub const RATING_REUSED: &str = "rating id reused for a different rating";
/// `InvalidState` message: the case was answered already.
pub const CASE_ANSWERED: &str = "the case was answered already";

/// The states in which a submission is finished (办结) and may be rated.
pub const FINAL_STATES: &[&str] = &["approved", "denied"];

/// What the resident's timeline note of a case answer starts with (the
/// event keeps the submission's state, so a phone that reads the state from
/// its events shows the answer without changing the application's state).
pub const ANSWER_NOTE_PREFIX: &str = "差评整改答复：";

/// A rectification case to open with a 差评.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    /// The day the 差评 arrived (China's date, `YYYY-MM-DD`).
    pub opened_on: String,
    /// The due day (`YYYY-MM-DD`).
    pub due_on: String,
    /// The due day reaches a year the calendar does not list.
    pub provisional: bool,
    /// Working days it was given.
    pub working_days: u32,
}

/// A rating to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRating {
    /// Client-generated id (the idempotency key).
    pub rating_id: String,
    /// The submission rated.
    pub client_id: String,
    /// The rating resident (must be the submitting one).
    pub resident_id: String,
    /// The evaluation (validated by the caller with core's validator).
    pub evaluation: Evaluation,
    /// SHA-256 of the canonical request, to tell a retry from a reuse.
    pub request_hash: String,
    /// When.
    pub at: i64,
    /// The case to open if this is a 差评.
    pub case: Option<NewCase>,
}

/// A stored rectification case (no resident id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseRecord {
    /// The case id (the 差评's rating id).
    pub id: String,
    /// The submission's tracking number.
    pub tracking_number: String,
    /// The department that answers.
    pub department_code: String,
    /// The item.
    pub guide_id: String,
    /// The 差评's level.
    pub level: Level,
    /// The 差评's reason.
    pub reason: String,
    /// Opened on (`YYYY-MM-DD`, China's date).
    pub opened_on: String,
    /// Due on (`YYYY-MM-DD`).
    pub due_on: String,
    /// The due day reaches a year the calendar did not list.
    pub provisional: bool,
    /// Working days it was given.
    pub working_days: u32,
    /// The answer, once given.
    pub answer: Option<String>,
    /// The day it was answered.
    pub answered_on: Option<String>,
    /// The operator who answered.
    pub answered_by: Option<String>,
}

/// A stored rating as its resident sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatingRecord {
    /// The rating id.
    pub rating_id: String,
    /// The submission.
    pub client_id: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// 1: the first rating, 2: the re-rating after a case answer.
    pub round: u32,
    /// The evaluation.
    pub evaluation: Evaluation,
    /// When it was received.
    pub rated_at: i64,
    /// The case it opened (a 差评).
    pub case: Option<CaseRecord>,
}

/// The outcome of [`EvaluationStore::rate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingOutcome {
    /// The rating (the stored one for a retry).
    pub rating: RatingRecord,
    /// Whether this call stored it (false: a retry).
    pub fresh: bool,
}

/// Ratings, rectification cases and the calendar years operators put.
pub trait EvaluationStore {
    /// Stores a rating (and its case) in one transaction, or returns the
    /// rating stored under the same id. `NotFound` if the submission is not
    /// the resident's; `InvalidState(NOT_FINISHED)` before a final state;
    /// `Conflict(ALREADY_RATED)` when no round is left;
    /// `Conflict(RATING_OF_ANOTHER | RATING_REUSED)` for a reused id.
    fn rate(&self, r: &NewRating) -> StoreResult<RatingOutcome>;
    /// One case by id.
    fn case(&self, id: &str) -> StoreResult<Option<CaseRecord>>;
    /// The cases of the departments given (`None`: all), unanswered only
    /// if `open_only`; by due day, then id (so the overdue come first).
    fn cases(
        &self,
        departments: Option<&[String]>,
        open_only: bool,
    ) -> StoreResult<Vec<CaseRecord>>;
    /// The latest rating of every rated submission of the departments given
    /// (`None`: all), as the statistics see it: department, item, level.
    fn rated(&self, departments: Option<&[String]>) -> StoreResult<Vec<Rated>>;
    /// The calendar years operators put, by year.
    fn calendar_years(&self) -> StoreResult<Vec<CalendarYear>>;
}
