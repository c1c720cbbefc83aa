//! zhangban-core: everything a phone or an inspector device does, and the
//! parts the server shares with them (the licence format and its verifier).
//!
//! No FFI and no platform code lives here; `zhangban-ffi` wraps it for
//! Android and iOS.

pub mod bundle;
pub mod calendar;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod credential;
pub mod evaluation;
pub mod guide;
pub mod inspection;
#[cfg(feature = "client")]
pub mod outbox;
#[cfg(feature = "client")]
pub mod search;
/// Without the `client` feature (the server), search is only its lexicon:
/// the server keeps the operators' lexicon and checks it with the rules a
/// phone applies on receipt ([`search::lexicon::Lexicon::check`]).
#[cfg(not(feature = "client"))]
pub mod search {
    pub mod lexicon;
    pub use lexicon::Lexicon;
}
