//! Zhangban's bindings: a thin uniffi facade over [`zhangban_core::client`]
//! for the Android (Kotlin) and iOS (Swift) apps.
//!
//! No logic lives here: each exported function converts its arguments,
//! forwards to core and converts the result or the error. Async functions
//! run on a tokio runtime that the library owns ([`runtime`]); a foreign
//! caller that cancels (a Kotlin coroutine, a Swift task) stops waiting, but
//! the call itself runs to its end on that runtime, so no state is lost (the
//! outbox's own transactions make every step durable).
//!
//! Bindings are generated in library mode from the built library:
//! `cargo run -p zhangban-ffi --bin uniffi-bindgen -- generate --library target/debug/libzhangban_ffi.so --language kotlin --out-dir <dir>`.

uniffi::setup_scaffolding!();

mod client;
mod data_key;
mod error;
mod inspector;
mod keystore;
mod listeners;
mod logging;
mod records;
mod runtime;

pub use client::Client;
pub use data_key::{DataKeyStore, DataKeyStoreError, SoftwareDataKeyStore};
pub use error::{DataKeyProblem, FieldProblem, ObserverError, ZhangbanError};
pub use inspector::Inspector;
pub use keystore::{HolderKeystore, KeystoreError, SoftwareKeystore};
pub use listeners::{OutboxObserver, StatusObserver, SyncObserver};
pub use logging::{LogLevel, Logger, set_logger};
pub use records::*;

/// The library's version (the workspace version).
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Does nothing: the cheapest call across the FFI, for benchmarks.
#[uniffi::export]
pub fn ping(value: u32) -> u32 {
    value
}
