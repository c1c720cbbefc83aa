//! Licences: grants (a licence issued to a resident), the copies delivered
//! to each of their devices, and the issuer's status lists (2 bits per
//! copy) with their latest signed token.

use super::StoreResult;
use serde::{Deserialize, Serialize};

/// A licence copy delivered to one of a resident's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletEntry {
    /// Row id.
    pub id: u64,
    /// GB/T 36904 licence identifier.
    pub licence_id: String,
    /// The device the copy is bound to.
    pub device_id: String,
    /// Licence type.
    pub vct: String,
    /// The issued SD-JWT (every disclosure).
    pub sd_jwt: String,
    /// Issue time.
    pub issued_at: i64,
}

/// A licence granted to a resident: the source each device's copy is issued
/// from, including devices enrolled later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// GB/T 36904 licence identifier (unique).
    pub licence_id: String,
    /// The resident.
    pub resident_id: String,
    /// The issuer.
    pub issuer_id: String,
    /// The licence type (`None`: the issuer's first).
    pub vct: Option<String>,
    /// The licence fields (JSON object text).
    pub claims: String,
    /// 0 valid, 1 revoked, 2 suspended.
    pub status: u8,
    /// When granted.
    pub granted_at: i64,
}

/// A status list's mutable state, kept by the issuing server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListRow {
    /// List URI.
    pub uri: String,
    /// Issuer id.
    pub issuer_id: String,
    /// The raw 2-bit array.
    pub bits: Vec<u8>,
    /// Next free index.
    pub next_idx: u64,
    /// The latest signed token, if published.
    pub token: Option<String>,
}

/// Licence grants, delivered copies and status lists.
pub trait LicenceStore {
    /// Creates a status list if absent.
    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()>;
    /// A status list row.
    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>>;
    /// All status list rows.
    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>>;
    /// Allocates the next index of a list.
    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64>;
    /// Sets the 2-bit status at `idx` atomically; returns the list's new bits.
    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>>;
    /// Stores a list's newly signed token, signed over `bits`, if those are
    /// still the list's bits; returns whether it was stored. A token over
    /// bits another writer (another replica) has changed since is not
    /// stored: that writer's own token covers both changes, so the stored
    /// token never loses a status set before it (ADR 0221). `NotFound` if
    /// there is no such list.
    fn put_status_token(&self, uri: &str, token: &str, bits: &[u8]) -> StoreResult<bool>;
    /// Stores an issued licence copy for a resident's device; conflict if the
    /// device already holds a copy of that licence.
    fn put_licence(
        &self,
        resident_id: &str,
        entry: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64>;
    /// A resident's licences.
    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>>;
    /// Records a grant; conflict if the licence id exists.
    fn put_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// One grant.
    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>>;
    /// A resident's grants.
    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>>;
    /// Records a grant's status (so later copies get it too).
    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()>;
    /// Whether a device already holds a copy of a licence.
    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool>;
    /// Status references (uri, idx) of every copy of a licence identifier.
    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>>;
}
