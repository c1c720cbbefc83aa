//! The service-guide catalog and its change feed: guides put, replaced and
//! withdrawn (a tombstone), and the feed phones sync from by cursor.
//!
//! Feed rule (every backend): each change gets a position (`seq`) above
//! every position handed out before it, and a page lists the changes above
//! a cursor in position order with nothing skipped: a reader that has seen
//! position N has seen every change at or below N. A guide keeps only its
//! latest position (a replaced guide moves to the head of the feed).

use super::StoreResult;
use serde::{Deserialize, Serialize};

/// One entry of the catalog change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogChange {
    /// Guide id.
    pub id: String,
    /// The catalog sequence number of this change (the cursor after it).
    pub seq: u64,
    /// SHA-256 (hex) of the guide JSON; empty for tombstones.
    pub checksum: String,
    /// The guide JSON, or `None` for a tombstone (deleted guide).
    pub body: Option<String>,
}

/// A page of the catalog change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage {
    /// Changes with `seq > since`, in order.
    pub changes: Vec<CatalogChange>,
    /// The highest sequence number in the catalog.
    pub head: u64,
}

/// The catalog: guides and their change feed.
pub trait CatalogStore {
    /// Inserts or replaces a guide; returns its new sequence number. A guide
    /// whose checksum did not change is left alone (returns the old sequence).
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64>;
    /// Inserts or replaces many guides in one transaction.
    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64>;
    /// Deletes a guide, leaving a tombstone in the feed.
    fn delete_guide(&self, id: &str) -> StoreResult<u64>;
    /// Changes with `seq > since`, at most `limit`, in position order, and
    /// the head, both read from one snapshot.
    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage>;
    /// One live guide (checksum, body).
    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>>;
}
