//! Life-event bundles (一件事一次办, ADR 0230): the bundles operators publish
//! (catalog data, versioned, synced by phones) and the exactly-once
//! acceptance of a bundle application, fanned out into one ordinary
//! submission per member item in the same transaction.
//!
//! Rules every backend keeps:
//! - **Publishing**: a bundle is stored by id; a bundle's own `version`
//!   must rise with every change (the same version with the same content is
//!   an unchanged no-op, with other content or a lower version a
//!   `Conflict`). Every change makes the next version of the bundle list
//!   (the version phones sync, ETag of `GET /v1/catalog/bundles`), one above
//!   the previous, never repeated.
//! - **Submitting**: the bundle's dedupe row (keyed by the bundle client id)
//!   and every member submission (dedupe row, submission, attachment links,
//!   first `submitted` event) are one transaction. The same id with the same
//!   request hash is answered with the stored receipt and writes nothing;
//!   another resident's or another request's use of the id is a `Conflict`.
//!   A member's client id taken already (by an unrelated submission) is a
//!   `Conflict` and nothing is stored.
//! - A bundle application's state is derived on read from its members'
//!   states ([`derived_state`]).

use serde::{Deserialize, Serialize};
use zhangban_core::bundle::Bundle;

use super::{NewSubmission, Receipt, StoreResult, SubmissionRecord};

/// A bundle application to store: the bundle's own dedupe data and one
/// ordinary submission per member that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundleSubmission {
    /// The bundle client id (the idempotency key of the whole bundle).
    pub client_id: String,
    /// Submitting resident.
    pub resident_id: String,
    /// The bundle's id.
    pub bundle_id: String,
    /// The bundle version the form was filled against.
    pub bundle_version: u32,
    /// The merged values as sent (JSON text).
    pub body: String,
    /// SHA-256 of the canonical request: a retry has the same.
    pub request_hash: String,
    /// Area code used as the bundle tracking number's prefix.
    pub area_code: String,
    /// Acceptance time.
    pub at: i64,
    /// One per member that applies, in the bundle's order; each member's
    /// `client_id` is [`member_client_id`] of the bundle's.
    pub members: Vec<NewBundleMember>,
}

/// One member of a bundle application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundleMember {
    /// The member's key in the bundle (`birth`, `hukou`).
    pub key: String,
    /// The member's own submission (its own client id, department, values).
    pub submission: NewSubmission,
}

/// A member's part of a bundle receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReceipt {
    /// The member's key in the bundle.
    pub member: String,
    /// The member submission's own receipt (its client id, tracking number).
    pub receipt: Receipt,
}

/// The receipt of a bundle application: returned identically for every
/// retry of its client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReceipt {
    /// The bundle client id.
    pub client_id: String,
    /// The bundle's tracking number (one series with the submissions').
    pub tracking_number: String,
    /// The bundle's id.
    pub bundle_id: String,
    /// The bundle version the form was filled against.
    pub bundle_version: u32,
    /// When the server accepted it.
    pub accepted_at: i64,
    /// The member submissions, in the bundle's order.
    pub members: Vec<MemberReceipt>,
}

/// The outcome of [`BundleStore::submit_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSubmitted {
    /// The receipt (the stored one for a retry).
    pub receipt: BundleReceipt,
    /// Whether this call stored the application (false: a retry).
    pub fresh: bool,
}

/// One member of a stored bundle application, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleMemberRecord {
    /// The member's key in the bundle.
    pub member: String,
    /// The member submission (receipt, current state, values).
    pub submission: SubmissionRecord,
}

/// A bundle application as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRecord {
    /// The receipt.
    pub receipt: BundleReceipt,
    /// The state derived from the members' ([`derived_state`]).
    pub state: String,
    /// The members with their current states.
    pub members: Vec<BundleMemberRecord>,
}

/// The published bundles and the list's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleList {
    /// The list's version (0 before the first bundle is published).
    pub version: u64,
    /// The bundles, by id.
    pub bundles: Vec<Bundle>,
}

/// What [`BundleStore::put_bundle`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundlePut {
    /// The list's version after the call.
    pub list_version: u64,
    /// Whether the bundle changed (false: the same version and content).
    pub changed: bool,
}

/// The client id of a bundle application's member submission: derived from
/// the bundle client id and the member's guide id, so that a phone and
/// every retry name the same member: `bm-` and the first 32 hex digits of
/// SHA-256(`zhangban-bundle-member` NUL bundle client id NUL guide id).
pub fn member_client_id(bundle_client_id: &str, guide_id: &str) -> String {
    let text = format!("zhangban-bundle-member\0{bundle_client_id}\0{guide_id}");
    let hash = crate::state::sha256_hex(text.as_bytes());
    format!("bm-{}", hash.get(..32).unwrap_or(&hash))
}

/// A bundle application's state from its members' states: `done` when
/// every member is final (`approved` or `denied`), `returned` when one is
/// returned for correction (退回补正), `accepted` when none waits to be
/// accepted any more, else `submitted`.
pub fn derived_state<'a>(states: impl IntoIterator<Item = &'a str>) -> &'static str {
    let states: Vec<&str> = states.into_iter().collect();
    if states.iter().all(|s| matches!(*s, "approved" | "denied")) {
        "done"
    } else if states.contains(&"returned") {
        "returned"
    } else if !states.contains(&"submitted") {
        "accepted"
    } else {
        "submitted"
    }
}

/// Bundles and bundle applications.
pub trait BundleStore {
    /// Publishes (adds or replaces) a bundle, checked by the caller against
    /// the catalog; see the module's rules for versions.
    fn put_bundle(&self, bundle: &Bundle, at: i64) -> StoreResult<BundlePut>;
    /// The bundle list's version (0 before the first bundle).
    fn bundles_version(&self) -> StoreResult<u64>;
    /// The published bundles, by id, and the list's version (one snapshot).
    fn bundles(&self) -> StoreResult<BundleList>;
    /// One published bundle.
    fn bundle(&self, id: &str) -> StoreResult<Option<Bundle>>;
    /// The stored receipt for a bundle client id, with its owner and request
    /// hash.
    fn bundle_receipt(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<(String, String, BundleReceipt)>>;
    /// Stores a bundle application and its member submissions in one
    /// durable transaction, or returns the receipt already stored for the
    /// id. `Conflict` if the id belongs to another resident or another
    /// request, or a member's client id is taken; `InvalidState` if a
    /// referenced attachment is not a complete upload of the resident's.
    fn submit_bundle(&self, b: &NewBundleSubmission) -> StoreResult<BundleSubmitted>;
    /// A resident's bundle applications, newest first.
    fn bundle_submissions_of(&self, resident_id: &str) -> StoreResult<Vec<BundleRecord>>;
    /// One bundle application of a resident.
    fn bundle_submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<BundleRecord>>;
}
