//! The personal data's lock: installing the data key at open (checked
//! against the stored canary), sealing in place what a store written before
//! sealing kept in plaintext, and the recovery path when the key is lost
//! (ADRs 0140, 0142).
//!
//! - A store with a canary opens only under the key that made it: no key
//!   is [`DataKeyFault::Missing`], another key [`DataKeyFault::WrongKey`].
//!   The store then stays locked: the catalog and search work, every call
//!   that reads or writes personal data fails with [`ClientError::DataKey`],
//!   and nothing personal (the queue included) is touched until the right
//!   key is back ([`Client::unlock`]) or the resident starts again
//!   ([`Client::reset_personal_data`]).
//! - A store without a canary (new, or written before sealing) gets the
//!   app's key, or a new random one handed to the app to keep; its
//!   plaintext rows are sealed in one transaction that also writes the
//!   canary, then the file is scrubbed (VACUUM, WAL truncated) so no
//!   plaintext is left in free pages or the WAL.

use std::sync::Arc;

use rusqlite::params;
use serde::Serialize;

use super::data_key::DataKeyStore;
use super::error::{ClientError, ClientResult, DataKeyFault};
use super::facade::Client;
use super::sealing::{DataKey, Sealer, Slot};
use super::store::{ClientStore, set_meta_in};

/// The meta row holding the canary.
pub const CANARY_META: &str = "data_key_canary";
/// The meta row migration 7 sets until the Rust step has sealed the rows.
const PENDING_META: &str = "seal_pending";
/// Meta rows of the enrolment and of personal cursors, cleared by a reset.
const ENROLMENT_META: &[&str] = &[
    "device_key",
    "device_public_jwk",
    "device_key_alias",
    "device_key_home",
    "device_id",
    "resident_id",
    "events_cursor",
    "outbox_last_attempt_at",
    "outbox_last_flush_at",
];

fn locked(store: &ClientStore, fault: DataKeyFault) -> ClientResult<()> {
    store.set_sealer(Err(fault.clone()))?;
    Err(ClientError::DataKey(fault))
}

/// Gets the data key from `keys` and installs it (see the module doc).
/// Fails with [`ClientError::DataKey`] (the store then stays locked) when
/// the key is missing or wrong or the key store failed.
pub async fn unlock(store: &ClientStore, keys: &dyn DataKeyStore) -> ClientResult<()> {
    let sealed = store.meta(CANARY_META)?.is_some();
    let key = match keys.load_key().await {
        Ok(Some(bytes)) => match DataKey::from_bytes(bytes) {
            Some(k) => k,
            // Not even a key's length: not the key that sealed this store.
            None => return locked(store, DataKeyFault::WrongKey),
        },
        Ok(None) if !sealed => {
            let k = DataKey::generate();
            if let Err(e) = keys.store_key(k.to_bytes()).await {
                return locked(store, e.into());
            }
            k
        }
        Ok(None) => return locked(store, DataKeyFault::Missing),
        Err(e) => return locked(store, e.into()),
    };
    install_key(store, &key)
}

/// Installs `key`: checks it against the canary, or seals the store under
/// it if it has none (sealing any plaintext rows, then scrubbing).
pub fn install_key(store: &ClientStore, key: &DataKey) -> ClientResult<()> {
    let sealer = Sealer::new(key);
    let canary = store.meta(CANARY_META)?;
    if let Some(c) = &canary {
        if !sealer.canary_opens(c) {
            return locked(store, DataKeyFault::WrongKey);
        }
    }
    let pending = store.meta(PENDING_META)?.is_some();
    if canary.is_none() || pending {
        let sealed_rows = store.tx(|tx| {
            let n = seal_plaintext_rows(tx, &sealer)?;
            if canary.is_none() {
                set_meta_in(tx, CANARY_META, &sealer.canary().map_err(seal_failed)?)?;
            }
            tx.execute("DELETE FROM meta WHERE key = ?1", [PENDING_META])?;
            Ok(n)
        })?;
        if sealed_rows > 0 {
            // The plaintext rows' old pages must not survive anywhere.
            store.scrub()?;
            tracing::info!(sealed_rows, "personal data sealed in place");
        }
    }
    store.set_sealer(Ok(Arc::new(sealer)))
}

fn seal_failed(_: super::sealing::OpenError) -> ClientError {
    ClientError::store_other("a value could not be sealed")
}

/// Seals `text` into `slot` (the store's personal columns hold BLOBs).
pub(crate) fn seal_text(s: &Sealer, slot: Slot<'_>, text: &str) -> ClientResult<Vec<u8>> {
    s.seal_str(slot, text).map_err(seal_failed)
}

/// Seals bytes into `slot`.
pub(crate) fn seal_bytes(s: &Sealer, slot: Slot<'_>, bytes: &[u8]) -> ClientResult<Vec<u8>> {
    s.seal(slot, bytes).map_err(seal_failed)
}

/// Opens sealed text from `slot`; a value that does not open under the
/// right key is corruption ([`ClientError::Corrupted`]).
pub(crate) fn open_text(s: &Sealer, slot: Slot<'_>, sealed: &[u8]) -> ClientResult<String> {
    s.open_str(slot, sealed)
        .map_err(|_| ClientError::Corrupted(slot.table.to_owned()))
}

/// Opens sealed bytes from `slot`.
pub(crate) fn open_bytes(s: &Sealer, slot: Slot<'_>, sealed: &[u8]) -> ClientResult<Vec<u8>> {
    s.open(slot, sealed)
        .map_err(|_| ClientError::Corrupted(slot.table.to_owned()))
}

/// Seals, in place, every personal value a store written before sealing
/// kept in plaintext. Returns how many rows it sealed. Idempotent: a row
/// already sealed (its value a BLOB, its wallet `sealed_id` set) is left
/// alone, so running it twice never seals twice.
fn seal_plaintext_rows(tx: &rusqlite::Transaction<'_>, s: &Sealer) -> ClientResult<usize> {
    let mut n = 0;
    // The wallet: keyed by the licence id's keyed index from now on.
    let rows: Vec<(String, String, String)> = tx
        .prepare("SELECT licence_id, vct, sd_jwt FROM wallet WHERE sealed_id IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (licence_id, vct, sd_jwt) in rows {
        let idx = s.index("wallet", &licence_id);
        tx.execute(
            "UPDATE wallet SET licence_id = ?2, sealed_id = ?3, vct = ?4, sd_jwt = ?5
             WHERE licence_id = ?1",
            params![
                licence_id,
                idx,
                seal_text(s, Slot::new("wallet", "sealed_id", &idx), &licence_id)?,
                seal_text(s, Slot::new("wallet", "vct", &idx), &vct)?,
                seal_text(s, Slot::new("wallet", "sd_jwt", &idx), &sd_jwt)?,
            ],
        )?;
        n += 1;
    }
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT id, body FROM drafts WHERE typeof(body) = 'text'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, body) in rows {
        tx.execute(
            "UPDATE drafts SET body = ?2 WHERE id = ?1",
            params![id, seal_text(s, Slot::new("drafts", "body", &id), &body)?],
        )?;
        n += 1;
    }
    type OutboxRow = (String, String, Option<String>, Option<String>);
    let rows: Vec<OutboxRow> = tx
        .prepare("SELECT client_id, body, wire, detail FROM outbox WHERE typeof(body) = 'text'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, body, wire, detail) in rows {
        let opt = |column: &str, v: Option<String>| {
            v.map(|t| seal_text(s, Slot::new("outbox", column, &id), &t))
                .transpose()
        };
        tx.execute(
            "UPDATE outbox SET body = ?2, wire = ?3, detail = ?4 WHERE client_id = ?1",
            params![
                id,
                seal_text(s, Slot::new("outbox", "body", &id), &body)?,
                opt("wire", wire)?,
                opt("detail", detail)?,
            ],
        )?;
        n += 1;
    }
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT seq, note FROM status_events WHERE typeof(note) = 'text'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (seq, note) in rows {
        let row = seq.to_string();
        tx.execute(
            "UPDATE status_events SET note = ?2 WHERE seq = ?1",
            params![
                seq,
                seal_text(s, Slot::new("status_events", "note", &row), &note)?
            ],
        )?;
        n += 1;
    }
    let rows: Vec<(String, String, Vec<u8>)> = tx
        .prepare("SELECT sha256, name, data FROM attachments WHERE typeof(name) = 'text'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (sha, name, data) in rows {
        tx.execute(
            "UPDATE attachments SET name = ?2, data = ?3 WHERE sha256 = ?1",
            params![
                sha,
                seal_text(s, Slot::new("attachments", "name", &sha), &name)?,
                seal_bytes(s, Slot::new("attachments", "data", &sha), &data)?,
            ],
        )?;
        n += 1;
    }
    Ok(n)
}

/// What [`Client::reset_personal_data`] wiped: everything personal on this
/// device. The catalog, search index and trust data are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    /// Submissions that had not reached the server (queued, sending,
    /// failed, or rejected and not yet corrected): their client ids. They
    /// are lost; the resident fills them again.
    pub unsent: Vec<String>,
    /// Drafts wiped.
    pub drafts: usize,
    /// Wallet copies wiped (fetched again after re-enrolment).
    pub licences: usize,
    /// Receipts of accepted submissions wiped (the submissions themselves
    /// are on the server).
    pub receipts: usize,
    /// Status events wiped (fetched again after re-enrolment).
    pub events: usize,
    /// Kept attachment files wiped.
    pub attachments: usize,
}

fn count(tx: &rusqlite::Transaction<'_>, table: &str) -> ClientResult<usize> {
    let n: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

impl Client {
    /// Tries again to get the data key from the app's key store (after the
    /// user authenticated, or the right key was restored). On success the
    /// personal data is open and sends interrupted earlier are made due.
    pub async fn unlock(&self) -> ClientResult<()> {
        unlock(&self.store, self.data_keys.as_ref()).await?;
        self.store.recover_sends(self.clock.now())?;
        Ok(())
    }

    /// Whether the personal data is open, or why it is locked.
    pub fn personal_data_state(&self) -> Result<(), DataKeyFault> {
        self.store.personal_data_state()
    }

    /// The recovery path when the data key is lost or wrong (or the
    /// resident wants to start again): wipes every personal row (wallet,
    /// drafts, outbox, receipts, status events, attachments) and the
    /// enrolment, keeps the catalog, search index and trust data, seals the
    /// store under a new key handed to the app's key store, and scrubs the
    /// file. Returns exactly what was lost, including the submissions that
    /// never reached the server. Afterwards the app enrols again
    /// ([`Client::enrol`]) and syncs, which fetches the wallet and the
    /// status of accepted submissions again.
    pub async fn reset_personal_data(&self) -> ClientResult<ResetReport> {
        let _no_flush = self.flush_gate.lock().await;
        let key = DataKey::generate();
        let sealer = Sealer::new(&key);
        let canary = sealer.canary().map_err(seal_failed)?;
        // The new key is kept first: if the app's key store fails, nothing
        // has been wiped yet.
        self.data_keys
            .store_key(key.to_bytes())
            .await
            .map_err(|e| ClientError::DataKey(e.into()))?;
        let wiped = self.store.tx(|tx| {
            let unsent = tx
                .prepare(
                    "SELECT client_id FROM outbox WHERE state <> 'accepted'
                     ORDER BY created_at, client_id",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let report = ResetReport {
                unsent,
                drafts: count(tx, "drafts")?,
                licences: count(tx, "wallet")?,
                receipts: count(tx, "receipts")?,
                events: count(tx, "status_events")?,
                attachments: count(tx, "attachments")?,
            };
            for table in [
                "wallet",
                "drafts",
                "outbox",
                "receipts",
                "status_events",
                "attachments",
            ] {
                tx.execute(&format!("DELETE FROM {table}"), [])?;
            }
            for key in ENROLMENT_META {
                tx.execute("DELETE FROM meta WHERE key = ?1", [key])?;
            }
            tx.execute("DELETE FROM meta WHERE key = ?1", [PENDING_META])?;
            set_meta_in(tx, CANARY_META, &canary)?;
            Ok(report)
        });
        let report = match wiped {
            Ok(r) => r,
            Err(e) => {
                // The key store holds the new key, the store the old canary:
                // locked until a reset succeeds.
                self.store.set_sealer(Err(DataKeyFault::WrongKey))?;
                return Err(e);
            }
        };
        self.session.invalidate();
        if let Ok(mut guard) = self.device_cache.lock() {
            *guard = None;
        }
        self.store.set_sealer(Ok(Arc::new(sealer)))?;
        self.store.scrub()?;
        tracing::info!(
            unsent = report.unsent.len(),
            "personal data reset; the device must enrol again"
        );
        Ok(report)
    }
}
