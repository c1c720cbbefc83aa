//! `tracing` output to the app's logger (Logcat, os_log): a subscriber
//! layer forwarding each event's level, target and message. Core logs no
//! personal data.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::error::ObserverError;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging.
    Debug,
    /// Tracing.
    Trace,
}

impl LogLevel {
    fn rank(self) -> u8 {
        match self {
            Self::Error => 1,
            Self::Warn => 2,
            Self::Info => 3,
            Self::Debug => 4,
            Self::Trace => 5,
        }
    }
}

impl From<&Level> for LogLevel {
    fn from(l: &Level) -> Self {
        match *l {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// The app's logger: receives the library's log lines.
#[uniffi::export(foreign)]
pub trait Logger: Send + Sync {
    /// One log line: its level, its target (the Rust module) and its text.
    /// A failure (or an exception thrown) drops that line and nothing else.
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), ObserverError>;
}

static LOGGER: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Sends the library's logs at `max_level` and above to `logger` (replacing
/// any earlier one). The first call installs the process's `tracing`
/// subscriber; if the process already has one, the logger gets nothing.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, max_level: LogLevel) {
    if let Ok(mut slot) = LOGGER.write() {
        *slot = Some(logger);
    }
    MAX_LEVEL.store(max_level.rank(), Ordering::Relaxed);
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Forward);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    });
}

/// The layer forwarding events to [`LOGGER`].
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = LogLevel::from(meta.level());
        if level.rank() > MAX_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let logger = match LOGGER.read() {
            Ok(slot) => slot.clone(),
            Err(_) => None,
        };
        let Some(logger) = logger else { return };
        let mut text = Text::default();
        event.record(&mut text);
        // A logger that fails cannot be told so through itself: the line is
        // dropped.
        let _ = logger.log(level, meta.target().to_owned(), text.0);
    }
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            self.0 = format!("{value:?}{fields}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            self.0 = format!("{value}{fields}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
