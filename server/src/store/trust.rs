//! Trust data and server secrets: the signed trust bundle that phones and
//! inspectors sync, and the secrets every replica must share (created once,
//! then the stored value wins).

use super::StoreResult;

/// Trust bundles and shared server secrets.
pub trait TrustStore {
    /// Publishes a trust bundle version. A version already stored keeps its
    /// text: versions are immutable.
    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()>;
    /// The trust bundle with the highest version (whatever the order they
    /// were published in: no rollback).
    fn trust_bundle(&self) -> StoreResult<Option<String>>;
    /// The secret called `name`: the stored one, or `fresh` stored now if
    /// there is none (so every replica sharing the database agrees).
    fn secret(&self, name: &str, fresh: &[u8], now: i64) -> StoreResult<Vec<u8>>;
}
