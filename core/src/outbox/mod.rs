//! The exactly-once outbox: every submission gets a client-generated id
//! before it is queued, is written to SQLite in the same transaction as its
//! draft, and is re-sent under that id until the server's receipt is stored
//! locally (the server returns the same stored receipt for every retry).
//!
//! This module is the sans-IO part ([`machine`]): states, backoff with
//! jitter, the flush plan, and the liveness check. The store side lives in
//! `client::outbox_store`, the HTTP shell in `client::flush`.

pub mod machine;

pub use machine::{
    BackoffPolicy, EntryView, Heal, OutboxState, Plan, SEND_LEASE_SECS, SendOutcome, Transition,
    after_send, liveness, plan, retry_now,
};
