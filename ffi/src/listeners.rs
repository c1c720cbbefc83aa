//! Listeners the app implements (foreign traits), and the adapters that
//! register them with core.
//!
//! Each method returns a result so that an exception thrown by the app's
//! code (Kotlin, Swift) comes back as an [`ObserverError`] instead of
//! aborting the process: the adapter logs that an observer failed (never
//! the exception's text, which may hold what the app was showing) and the
//! library carries on.

use std::sync::Arc;

use zhangban_core::client::api::StatusEventIn;
use zhangban_core::client::events::StatusListener;
use zhangban_core::client::{
    OutboxEntry as CoreOutboxEntry, OutboxListener, SyncListener, SyncProgress as CoreSyncProgress,
};

use crate::error::ObserverError;
use crate::records::{OutboxEntry, StatusEvent, SyncProgress};

/// Told whenever an outbox entry changes (queued, sending, accepted …).
/// Called on the thread doing the work: hand off to the UI thread.
#[uniffi::export(foreign)]
pub trait OutboxObserver: Send + Sync {
    /// An entry changed.
    fn on_outbox_change(&self, entry: OutboxEntry) -> Result<(), ObserverError>;
}

/// Told about each new status event of an accepted submission.
#[uniffi::export(foreign)]
pub trait StatusObserver: Send + Sync {
    /// A new status event arrived through sync.
    fn on_status(&self, event: StatusEvent) -> Result<(), ObserverError>;
}

/// Told as a sync goes.
#[uniffi::export(foreign)]
pub trait SyncObserver: Send + Sync {
    /// A step of a sync finished.
    fn on_progress(&self, progress: SyncProgress) -> Result<(), ObserverError>;
}

/// Forwards core's outbox notifications.
pub(crate) struct OutboxAdapter(pub(crate) Arc<dyn OutboxObserver>);
/// Forwards core's status events.
pub(crate) struct StatusAdapter(pub(crate) Arc<dyn StatusObserver>);
/// Forwards core's sync progress.
pub(crate) struct SyncAdapter(pub(crate) Arc<dyn SyncObserver>);

/// Logs an observer's failure by kind only.
fn failed(kind: &'static str, r: Result<(), ObserverError>) {
    if let Err(e) = r {
        let how = match e {
            ObserverError::Failed { .. } => "failed",
            ObserverError::Unexpected { .. } => "threw",
        };
        tracing::warn!(observer = kind, how, "an app observer did not complete");
    }
}

impl OutboxListener for OutboxAdapter {
    fn on_outbox_change(&self, entry: &CoreOutboxEntry) {
        failed("outbox", self.0.on_outbox_change(entry.into()));
    }
}

impl StatusListener for StatusAdapter {
    fn on_status(&self, event: &StatusEventIn) {
        failed("status", self.0.on_status(event.into()));
    }
}

impl SyncListener for SyncAdapter {
    fn on_progress(&self, progress: CoreSyncProgress) {
        failed("sync", self.0.on_progress(progress.into()));
    }
}
