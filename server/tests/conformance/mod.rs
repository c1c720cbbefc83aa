//! The store conformance suite: what every [`Store`] backend must do,
//! written once and run against each backend (SQLite now, PostgreSQL next;
//! ADR 0220), in the manner of matrix-rust-sdk's
//! `statestore_integration_tests!`.
//!
//! A backend's test file declares `#[macro_use] mod conformance;`, a
//! [`Backend`] that opens a fresh database, and invokes
//! [`store_conformance_tests!`] with an expression making one. Each case is
//! a generic function here, one module per store trait; the macro lists
//! them all, so a case added here runs against every backend.
//!
//! The cases test the store's contract, not HTTP: dedupe (same client id,
//! same receipt, nothing new), feed ordering (catalog and events: positions
//! strictly increasing, nothing skipped, also under concurrent writers),
//! durability (written, closed, reopened), activation-code single use,
//! challenge caps, status lists, trust-bundle versions, the operators'
//! audit trail (appended in the action's transaction, chained), and the
//! search lexicon's versions, life-event bundles (publication versions, a
//! bundle application's exactly-once fan-out) and 好差评 (ratings once per
//! round, cases answered once onto the timeline, scoped lists, calendar
//! years).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_debug_implementations
)]

pub mod attachments;
pub mod bundles;
pub mod catalog;
pub mod durability;
pub mod evaluations;
pub mod lexicon;
pub mod licences;
pub mod operators;
pub mod residents;
pub mod submissions;

use zhangban_server::store::{NewSubmission, Store};

/// A backend under test: a database of its own, empty at first, that can
/// be opened again after the store was dropped (durability).
pub trait Backend {
    /// The store type.
    type Store: Store;
    /// Opens (the first time: creates) this backend's database.
    fn open(&self) -> Self::Store;
}

/// A fixed time (2026-09-21 14:13:20 UTC): the suite never reads the clock.
pub const T0: i64 = 1_790_000_000;

/// A submission by `resident` of `body` under `client_id`; the request
/// hash follows the body, so another body under the same id is a reuse.
pub fn submission(client_id: &str, resident: &str, body: &str) -> NewSubmission {
    NewSubmission {
        client_id: client_id.to_owned(),
        resident_id: resident.to_owned(),
        device_id: format!("device-of-{resident}"),
        guide_id: "guide".to_owned(),
        form_version: 1,
        body: body.to_owned(),
        request_hash: format!("hash-of-{body}"),
        area_code: "511602000000".to_owned(),
        department_code: "dept".to_owned(),
        at: T0,
        attachments: Vec::new(),
    }
}

/// Expands to one `#[test]` per conformance case, each running the case
/// against a fresh backend made by `$backend` (an expression evaluated once
/// per test). Invoke it inside a module named after the backend.
macro_rules! store_conformance_tests {
    ($backend:expr) => {
        store_conformance_tests!(@cases $backend;
            catalog::catalog_feed_positions_strictly_increase_and_skip_nothing,
            catalog::catalog_feed_skips_nothing_under_concurrent_writers,
            catalog::catalog_tombstones_hide_guides_and_can_be_revived,
            residents::activation_code_enrols_once_per_use_and_locks,
            residents::activation_code_ids_are_unique,
            residents::challenges_are_capped_per_device_pruned_and_taken_once,
            residents::sessions_and_devices_round_trip,
            residents::reenrolment_retires_the_old_device_with_its_tokens_at_once,
            residents::activation_codes_hold_under_concurrent_attempts,
            submissions::dedupe_same_client_id_same_receipt_nothing_new,
            submissions::dedupe_holds_under_concurrent_retries,
            submissions::concurrent_submissions_succeed_and_fail_alone,
            submissions::transitions_need_the_expected_state,
            submissions::events_feed_is_ordered_per_resident_and_skips_nothing,
            submissions::events_feed_skips_nothing_under_concurrent_writers,
            attachments::chunks_append_at_the_end_and_the_last_is_hash_checked,
            attachments::a_wrong_verdict_cannot_complete_other_bytes,
            attachments::a_submission_needs_complete_uploads_and_stores_nothing_otherwise,
            attachments::upload_usage_counts_other_uploads,
            licences::status_lists_allocate_set_and_keep_the_latest_token,
            licences::grants_and_copies_are_unique,
            licences::trust_bundle_newest_version_wins_and_versions_are_immutable,
            licences::server_secrets_are_created_once,
            operators::audit_rows_append_in_a_chain,
            operators::an_action_and_its_row_commit_together_or_not_at_all,
            operators::operators_names_are_never_reused_and_the_last_admin_stays,
            operators::bootstrap_is_created_rotated_and_stays_revoked,
            operators::audit_chain_bootstrap_and_last_admin_hold_under_concurrency,
            durability::everything_written_survives_a_reopen,
            lexicon::lexicon_versions_start_at_the_seed_and_each_change_is_the_next,
            lexicon::lexicon_survives_a_reopen,
            bundles::bundle_versions_rise_and_each_change_is_the_next_list_version,
            bundles::bundle_publishers_serialise_under_concurrency,
            bundles::a_bundle_fans_out_once_and_a_retry_gets_the_same_receipt,
            bundles::bundle_dedupe_holds_under_concurrent_retries,
            bundles::a_bundle_whose_member_cannot_be_stored_stores_nothing,
            bundles::derived_state_follows_the_members,
            evaluations::a_rating_is_stored_once_and_a_retry_returns_it,
            evaluations::a_bad_rating_opens_a_case_answered_once_then_one_rerating,
            evaluations::cases_are_listed_by_scope_and_due_day,
            evaluations::ratings_hold_under_concurrent_attempts,
            evaluations::calendar_years_round_trip_and_move_open_cases,
        );
    };
    (@cases $backend:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let backend = $backend;
                $crate::conformance::$module::$case(&backend);
            }
        )*
    };
}
