//! The phone side: the offline store, catalog sync and search, drafts, the
//! wallet, trust data, status events and the exactly-once outbox, with a
//! thin HTTP shell around sans-IO state machines.

pub mod api;
pub mod attachments;
pub mod catalog;
pub mod data_key;
pub mod drafts;
pub mod error;
pub mod events;
pub mod facade;
pub mod files;
pub mod flush;
pub mod keystore;
pub mod lexicon;
pub mod listeners;
pub mod outbox_store;
pub mod personal;
pub mod sealing;
pub mod session;
pub mod showing;
pub mod store;
pub mod trust;
pub mod wallet;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use data_key::{DataKeyError, DataKeyFuture, DataKeyStore, SoftwareDataKeyStore};
pub use drafts::Draft;
pub use error::{ClientError, ClientResult, DataKeyFault, StoreError, StoreErrorKind};
pub use facade::{Client, SyncListener, SyncProgress, SyncReport};
pub use flush::{FlushReport, OutboxListener, WalletLicenceRef};
pub use keystore::{HolderKeystore, KeystoreFuture, SoftwareKeystore};
pub use lexicon::{LexiconFault, LexiconReport};
pub use listeners::ListenerId;
pub use outbox_store::OutboxEntry;
pub use personal::ResetReport;
pub use session::{DeviceIdentity, KeyHome};
pub use store::ClientStore;
