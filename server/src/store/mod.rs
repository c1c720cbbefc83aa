//! Storage, one trait per domain. Handlers see only [`Store`], the sum of
//! the domain traits ([`CatalogStore`], [`ResidentStore`],
//! [`SubmissionStore`], [`EventStore`], [`AttachmentStore`],
//! [`LicenceStore`], [`TrustStore`], [`operators::OperatorStore`],
//! [`LexiconStore`], [`BundleStore`] and [`EvaluationStore`]), each
//! declared with its types in its own file. SQLite ([`sqlite::SqliteStore`])
//! is the embedded default; a PostgreSQL implementation for several stateless
//! replicas implements the same traits and must pass the same conformance
//! suite (`server/tests/conformance/`, ADR 0220): every method is one
//! transaction with no state kept between calls (challenges, nonces and
//! tokens live in the database, not in memory).
//!
//! Methods are blocking; handlers call them through `spawn_blocking`. Every
//! method that returns after a write has made it durable.

pub mod attachments;
pub mod bundles;
pub mod catalog;
pub mod evaluations;
pub mod events;
pub mod lexicon;
pub mod licences;
pub mod operators;
pub mod postgres;
pub mod residents;
pub mod sqlite;
pub mod submissions;
pub mod trust;

pub use attachments::{
    AttachmentLink, AttachmentStore, ChunkOutcome, ChunkVerdict, Upload, UploadStart,
};
pub use bundles::{
    BundleList, BundleMemberRecord, BundlePut, BundleReceipt, BundleRecord, BundleStore,
    BundleSubmitted, MemberReceipt, NewBundleMember, NewBundleSubmission,
};
pub use catalog::{CatalogChange, CatalogPage, CatalogStore};
pub use evaluations::{
    CaseRecord, EvaluationStore, NewCase, NewRating, RatingOutcome, RatingRecord,
};
pub use events::{EventStore, StatusEvent};
pub use lexicon::{LexiconChange, LexiconStore};
pub use licences::{Grant, LicenceStore, StatusListRow, WalletEntry};
pub use operators::OperatorStore;
pub use residents::{
    Device, Enrolment, NewActivation, NewChallenge, Refusal, ResidentStore, Retirement, Session,
};
pub use submissions::{NewSubmission, Receipt, SubmissionRecord, SubmissionStore, Submitted};
pub use trust::TrustStore;

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

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server persists: the sum of the domain traits. Any type
/// that implements them all is a `Store` (a blanket implementation), so a
/// backend implements the domains and nothing else.
pub trait Store:
    CatalogStore
    + ResidentStore
    + SubmissionStore
    + EventStore
    + AttachmentStore
    + LicenceStore
    + TrustStore
    + OperatorStore
    + LexiconStore
    + BundleStore
    + EvaluationStore
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: CatalogStore
        + ResidentStore
        + SubmissionStore
        + EventStore
        + AttachmentStore
        + LicenceStore
        + TrustStore
        + OperatorStore
        + LexiconStore
        + BundleStore
        + EvaluationStore
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Every store trait, imported anonymously: `use crate::store::prelude::*;`
/// lets code call any store method on a concrete backend (on `dyn Store`
/// the methods resolve without it).
pub mod prelude {
    pub use super::{
        AttachmentStore as _, BundleStore as _, CatalogStore as _, EvaluationStore as _,
        EventStore as _, LexiconStore as _, LicenceStore as _, OperatorStore as _,
        ResidentStore as _, Store as _, SubmissionStore as _, TrustStore as _,
    };
}
