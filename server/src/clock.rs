//! Time, injected: handlers ask the state's clock, never the system directly,
//! so tests can drive expiry of challenges, tokens and nonces deterministically.
//! The same clock types as the phone's (one definition, in core).

pub use zhangban_core::clock::{Clock, ManualClock, SystemClock};
