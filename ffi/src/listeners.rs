//! Listeners the app implements (foreign traits), and the adapters that
//! register them with core.

use std::sync::Arc;

use zhangban_core::client::api::StatusEventIn;
use zhangban_core::client::events::StatusListener;
use zhangban_core::client::{
    OutboxEntry as CoreOutboxEntry, OutboxListener, SyncListener, SyncProgress as CoreSyncProgress,
};

use crate::records::{OutboxEntry, StatusEvent, SyncProgress};

/// Told whenever an outbox entry changes (queued, sending, accepted …).
/// Called on the thread doing the work: hand off to the UI thread.
#[uniffi::export(foreign)]
pub trait OutboxObserver: Send + Sync {
    /// An entry changed.
    fn on_outbox_change(&self, entry: OutboxEntry);
}

/// Told about each new status event of an accepted submission.
#[uniffi::export(foreign)]
pub trait StatusObserver: Send + Sync {
    /// A new status event arrived through sync.
    fn on_status(&self, event: StatusEvent);
}

/// Told as a sync goes.
#[uniffi::export(foreign)]
pub trait SyncObserver: Send + Sync {
    /// A step of a sync finished.
    fn on_progress(&self, progress: SyncProgress);
}

/// Forwards core's outbox notifications.
pub(crate) struct OutboxAdapter(pub(crate) Arc<dyn OutboxObserver>);
/// Forwards core's status events.
pub(crate) struct StatusAdapter(pub(crate) Arc<dyn StatusObserver>);
/// Forwards core's sync progress.
pub(crate) struct SyncAdapter(pub(crate) Arc<dyn SyncObserver>);

impl OutboxListener for OutboxAdapter {
    fn on_outbox_change(&self, entry: &CoreOutboxEntry) {
        self.0.on_outbox_change(entry.into());
    }
}

impl StatusListener for StatusAdapter {
    fn on_status(&self, event: &StatusEventIn) {
        self.0.on_status(event.into());
    }
}

impl SyncListener for SyncAdapter {
    fn on_progress(&self, progress: CoreSyncProgress) {
        self.0.on_progress(progress.into());
    }
}
