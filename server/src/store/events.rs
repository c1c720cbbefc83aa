//! The events feed: each resident's submission timeline, handed to their
//! phones by cursor.
//!
//! Feed rule (every backend), as for the catalog: positions strictly
//! increase in commit order for a reader, and a page above a cursor skips
//! nothing that will ever appear below its last position.

use super::StoreResult;
use serde::{Deserialize, Serialize};

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

/// The timeline events feed (written by [`super::SubmissionStore::submit`] and
/// [`super::SubmissionStore::transition`]; read here).
pub trait EventStore {
    /// Timeline events of a resident's submissions with `seq > since`.
    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>>;
}
