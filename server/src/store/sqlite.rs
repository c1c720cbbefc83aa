//! The embedded default store: SQLite in WAL mode with `synchronous=FULL`,
//! so that a receipt is only sent after its submission is on disk.
//!
//! Migrations are numbered and append-only ([`MIGRATIONS`]); `user_version`
//! records how many have run, and opening an older database upgrades it in place.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use super::{
    CatalogChange, CatalogPage, Device, Grant, NewSubmission, Receipt, Session, StatusEvent,
    StatusListRow, Store, StoreError, StoreResult, SubmissionRecord, WalletEntry,
};

/// Numbered, append-only schema migrations. Never edit one that shipped: add another.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE guides (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL, checksum TEXT NOT NULL,
        body TEXT, deleted INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX guides_seq ON guides(seq);
    CREATE TABLE residents (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE activation_codes (
        code_hash TEXT PRIMARY KEY, resident_id TEXT NOT NULL REFERENCES residents(id),
        expires_at INTEGER NOT NULL, uses_left INTEGER NOT NULL);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY, resident_id TEXT NOT NULL REFERENCES residents(id),
        jwk TEXT NOT NULL, enrolled_at INTEGER NOT NULL);
    CREATE INDEX devices_resident ON devices(resident_id);
    CREATE TABLE challenges (
        id TEXT PRIMARY KEY, device_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, resident_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
    CREATE TABLE submission_dedupe (
        client_id TEXT PRIMARY KEY, resident_id TEXT NOT NULL, request_hash TEXT NOT NULL,
        receipt TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE submissions (
        client_id TEXT PRIMARY KEY REFERENCES submission_dedupe(client_id),
        resident_id TEXT NOT NULL, device_id TEXT NOT NULL, guide_id TEXT NOT NULL,
        form_version INTEGER NOT NULL, body TEXT NOT NULL,
        tracking_number TEXT NOT NULL UNIQUE, state TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX submissions_resident ON submissions(resident_id, created_at);
    CREATE TABLE submission_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, resident_id TEXT NOT NULL,
        tracking_number TEXT NOT NULL, state TEXT NOT NULL, note TEXT, at INTEGER NOT NULL);
    CREATE INDEX events_resident ON submission_events(resident_id, seq);
    CREATE TABLE presentation_nonces (
        nonce TEXT PRIMARY KEY, resident_id TEXT NOT NULL, client_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
    CREATE INDEX nonces_owner ON presentation_nonces(resident_id, client_id);
    CREATE TABLE trust_bundles (version INTEGER PRIMARY KEY, jws TEXT NOT NULL, published_at INTEGER NOT NULL);
    CREATE TABLE status_lists (
        uri TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, bits BLOB NOT NULL, next_idx INTEGER NOT NULL, token TEXT);
    CREATE TABLE licences (
        id INTEGER PRIMARY KEY AUTOINCREMENT, licence_id TEXT NOT NULL, resident_id TEXT NOT NULL,
        device_id TEXT NOT NULL, issuer_id TEXT NOT NULL, vct TEXT NOT NULL, status_uri TEXT NOT NULL,
        status_idx INTEGER NOT NULL, sd_jwt TEXT NOT NULL, issued_at INTEGER NOT NULL);
    CREATE INDEX licences_resident ON licences(resident_id);
    CREATE INDEX licences_id ON licences(licence_id);
    CREATE TABLE licence_grants (
        licence_id TEXT PRIMARY KEY, resident_id TEXT NOT NULL, issuer_id TEXT NOT NULL, vct TEXT,
        claims TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0, granted_at INTEGER NOT NULL);
    CREATE INDEX grants_resident ON licence_grants(resident_id);
    ",
];

/// SQLite behind a mutex: one writer, as SQLite wants.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn db<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// An in-memory database (tests, benchmarks).
    pub fn in_memory() -> StoreResult<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> StoreResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Database("connection lock poisoned".into()))
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> StoreResult<u32> {
        Ok(self
            .conn()?
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }
}

/// Runs the migrations not yet applied, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn next_counter(tx: &rusqlite::Transaction<'_>, name: &str) -> StoreResult<u64> {
    tx.execute(
        "INSERT INTO counters(name, value) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
        [name],
    )?;
    let v: i64 = tx.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
        r.get(0)
    })?;
    Ok(to_u64(v))
}

fn put_guide_tx(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    checksum: &str,
    body: &str,
) -> StoreResult<u64> {
    let existing: Option<(i64, String, i64)> = tx
        .query_row(
            "SELECT seq, checksum, deleted FROM guides WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((seq, old, 0)) = &existing {
        if old == checksum {
            return Ok(to_u64(*seq));
        }
    }
    let seq = next_counter(tx, "catalog")?;
    tx.execute(
        "INSERT INTO guides(id, seq, checksum, body, deleted) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT(id) DO UPDATE SET seq = ?2, checksum = ?3, body = ?4, deleted = 0",
        params![id, to_i64(seq), checksum, body],
    )?;
    Ok(seq)
}

fn receipt_of(json: &str) -> StoreResult<Receipt> {
    serde_json::from_str(json).map_err(db)
}

impl Store for SqliteStore {
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = put_guide_tx(&tx, id, checksum, body)?;
        tx.commit()?;
        Ok(seq)
    }

    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut last = 0;
        for (id, checksum, body) in guides {
            last = last.max(put_guide_tx(&tx, id, checksum, body)?);
        }
        tx.commit()?;
        Ok(last)
    }

    fn delete_guide(&self, id: &str) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: Option<i64> = tx
            .query_row("SELECT deleted FROM guides WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        if live != Some(0) {
            return Err(StoreError::NotFound);
        }
        let seq = next_counter(&tx, "catalog")?;
        tx.execute(
            "UPDATE guides SET seq = ?2, checksum = '', body = NULL, deleted = 1 WHERE id = ?1",
            params![id, to_i64(seq)],
        )?;
        tx.commit()?;
        Ok(seq)
    }

    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage> {
        let conn = self.conn()?;
        let head: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM guides", [], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, seq, checksum, body FROM guides WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let changes = stmt
            .query_map(params![to_i64(since), limit], |r| {
                Ok(CatalogChange {
                    id: r.get(0)?,
                    seq: to_u64(r.get(1)?),
                    checksum: r.get(2)?,
                    body: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CatalogPage {
            changes,
            head: to_u64(head),
        })
    }

    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT checksum, body FROM guides WHERE id = ?1 AND deleted = 0",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO residents(id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING",
            params![id, name, at],
        )?;
        Ok(())
    }

    fn put_activation(
        &self,
        code_hash: &str,
        resident_id: &str,
        expires_at: i64,
        uses: u32,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO activation_codes(code_hash, resident_id, expires_at, uses_left) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(code_hash) DO UPDATE SET resident_id = ?2, expires_at = ?3, uses_left = ?4",
            params![code_hash, resident_id, expires_at, uses],
        )?;
        Ok(())
    }

    fn enrol(&self, code_hash: &str, device: &Device, now: i64) -> StoreResult<Device> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let code: Option<(String, i64, i64)> = tx
            .query_row(
                "SELECT resident_id, expires_at, uses_left FROM activation_codes WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((resident_id, expires_at, uses_left)) = code else {
            return Err(StoreError::NotFound);
        };
        let existing: Option<String> = tx
            .query_row(
                "SELECT resident_id FROM devices WHERE id = ?1",
                [&device.id],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(owner) if owner == resident_id => {
                return Ok(Device {
                    resident_id,
                    ..device.clone()
                });
            }
            Some(_) => return Err(StoreError::Conflict("device enrolled for another resident")),
            None => {}
        }
        if expires_at < now || uses_left <= 0 {
            return Err(StoreError::InvalidState(
                "activation code expired or used up",
            ));
        }
        tx.execute(
            "UPDATE activation_codes SET uses_left = uses_left - 1 WHERE code_hash = ?1",
            [code_hash],
        )?;
        tx.execute(
            "INSERT INTO devices(id, resident_id, jwk, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![device.id, resident_id, device.jwk, now],
        )?;
        tx.commit()?;
        Ok(Device {
            resident_id,
            ..device.clone()
        })
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT id, resident_id, jwk FROM devices WHERE id = ?1",
                [id],
                |r| {
                    Ok(Device {
                        id: r.get(0)?,
                        resident_id: r.get(1)?,
                        jwk: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, resident_id, jwk FROM devices WHERE resident_id = ?1 ORDER BY enrolled_at",
        )?;
        let rows = stmt
            .query_map([resident_id], |r| {
                Ok(Device {
                    id: r.get(0)?,
                    resident_id: r.get(1)?,
                    jwk: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn put_challenge(
        &self,
        id: &str,
        device_id: &str,
        nonce: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM challenges WHERE expires_at < ?1",
            [expires_at - 3600],
        )?;
        conn.execute(
            "INSERT INTO challenges(id, device_id, nonce, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, device_id, nonce, expires_at],
        )?;
        Ok(())
    }

    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                "SELECT device_id, nonce, expires_at FROM challenges WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        tx.execute("DELETE FROM challenges WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(row)
    }

    fn put_token(&self, hash: &str, s: &Session) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM tokens WHERE expires_at < ?1",
            [s.expires_at - 86_400],
        )?;
        conn.execute(
            "INSERT INTO tokens(hash, device_id, resident_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, s.device_id, s.resident_id, s.expires_at],
        )?;
        Ok(())
    }

    fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT device_id, resident_id, expires_at FROM tokens WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(Session {
                        device_id: r.get(0)?,
                        resident_id: r.get(1)?,
                        expires_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn receipt(&self, client_id: &str) -> StoreResult<Option<(String, String, Receipt)>> {
        let conn = self.conn()?;
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT resident_id, request_hash, receipt FROM submission_dedupe WHERE client_id = ?1",
                [client_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
            .transpose()
    }

    fn submit(&self, s: &NewSubmission) -> StoreResult<Receipt> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<(String, String, String)> = tx
            .query_row(
                "SELECT resident_id, request_hash, receipt FROM submission_dedupe WHERE client_id = ?1",
                [&s.client_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((owner, hash, receipt)) = existing {
            if owner != s.resident_id {
                return Err(StoreError::Conflict(
                    "client id belongs to another resident",
                ));
            }
            if hash != s.request_hash {
                return Err(StoreError::Conflict(
                    "client id reused for a different submission",
                ));
            }
            return receipt_of(&receipt);
        }
        let n = next_counter(&tx, "tracking")?;
        // The day in China Standard Time (UTC+8).
        let day = chrono::DateTime::from_timestamp(s.at.saturating_add(8 * 3600), 0)
            .map(|t| t.format("%Y%m%d").to_string())
            .unwrap_or_default();
        let area: String = s.area_code.chars().take(6).collect();
        let tracking_number = format!("{area}{day}{n:07}");
        let receipt = Receipt {
            client_id: s.client_id.clone(),
            tracking_number: tracking_number.clone(),
            guide_id: s.guide_id.clone(),
            accepted_at: s.at,
        };
        let receipt_json = serde_json::to_string(&receipt).map_err(db)?;
        tx.execute(
            "INSERT INTO submission_dedupe(client_id, resident_id, request_hash, receipt, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.client_id, s.resident_id, s.request_hash, receipt_json, s.at],
        )?;
        tx.execute(
            "INSERT INTO submissions(client_id, resident_id, device_id, guide_id, form_version, body,
                 tracking_number, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'submitted', ?8)",
            params![s.client_id, s.resident_id, s.device_id, s.guide_id, s.form_version, s.body, tracking_number, s.at],
        )?;
        tx.execute(
            "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
             VALUES (?1, ?2, ?3, 'submitted', NULL, ?4)",
            params![s.client_id, s.resident_id, tracking_number, s.at],
        )?;
        tx.commit()?;
        Ok(receipt)
    }

    fn submissions_of(&self, resident_id: &str) -> StoreResult<Vec<SubmissionRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
             JOIN submission_dedupe d ON d.client_id = s.client_id
             WHERE s.resident_id = ?1 ORDER BY s.created_at DESC, s.tracking_number DESC",
        )?;
        let rows = stmt
            .query_map([resident_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(receipt, state, body, v)| record(&receipt, state, &body, v))
            .collect()
    }

    fn submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        let conn = self.conn()?;
        let row: Option<(String, String, String, u32)> = conn
            .query_row(
                "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                 JOIN submission_dedupe d ON d.client_id = s.client_id
                 WHERE s.resident_id = ?1 AND s.client_id = ?2",
                [resident_id, client_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(receipt, state, body, v)| record(&receipt, state, &body, v))
            .transpose()
    }

    fn transition(
        &self,
        tracking_number: &str,
        from: &str,
        state: &str,
        note: Option<&str>,
        at: i64,
    ) -> StoreResult<StatusEvent> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (client_id, resident_id): (String, String) = tx.query_row(
            "SELECT client_id, resident_id FROM submissions WHERE tracking_number = ?1",
            [tracking_number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let changed = tx.execute(
            "UPDATE submissions SET state = ?3 WHERE tracking_number = ?1 AND state = ?2",
            params![tracking_number, from, state],
        )?;
        if changed == 0 {
            return Err(StoreError::InvalidState(
                "the submission's state changed meanwhile",
            ));
        }
        tx.execute(
            "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![client_id, resident_id, tracking_number, state, note, at],
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        Ok(StatusEvent {
            seq: to_u64(seq),
            client_id,
            tracking_number: tracking_number.to_owned(),
            state: state.to_owned(),
            note: note.map(str::to_owned),
            at,
        })
    }

    fn state_of(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT state FROM submissions WHERE tracking_number = ?1",
                [tracking_number],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, client_id, tracking_number, state, note, at FROM submission_events
             WHERE resident_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![resident_id, to_i64(since), limit], |r| {
                Ok(StatusEvent {
                    seq: to_u64(r.get(0)?),
                    client_id: r.get(1)?,
                    tracking_number: r.get(2)?,
                    state: r.get(3)?,
                    note: r.get(4)?,
                    at: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn put_nonce(
        &self,
        nonce: &str,
        resident_id: &str,
        client_id: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM presentation_nonces WHERE expires_at < ?1",
            [expires_at - 86_400],
        )?;
        conn.execute(
            "INSERT INTO presentation_nonces(nonce, resident_id, client_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![nonce, resident_id, client_id, expires_at],
        )?;
        Ok(())
    }

    fn nonces_for(&self, resident_id: &str, client_id: &str, now: i64) -> StoreResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT nonce FROM presentation_nonces WHERE resident_id = ?1 AND client_id = ?2 AND expires_at >= ?3",
        )?;
        let rows = stmt
            .query_map(params![resident_id, client_id, now], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO trust_bundles(version, jws, published_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(version) DO NOTHING",
            params![to_i64(version), jws, at],
        )?;
        Ok(())
    }

    fn trust_bundle(&self) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT jws FROM trust_bundles ORDER BY version DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()> {
        let conn = self.conn()?;
        let bytes = vec![0u8; usize::try_from(capacity.div_ceil(4)).unwrap_or(0)];
        conn.execute(
            "INSERT INTO status_lists(uri, issuer_id, bits, next_idx, token) VALUES (?1, ?2, ?3, 0, NULL)
             ON CONFLICT(uri) DO NOTHING",
            params![uri, issuer_id, bytes],
        )?;
        Ok(())
    }

    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists WHERE uri = ?1",
                [uri],
                row_status,
            )
            .optional()?)
    }

    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists ORDER BY uri",
        )?;
        let rows = stmt
            .query_map([], row_status)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (next, len): (i64, i64) = tx.query_row(
            "SELECT next_idx, length(bits) FROM status_lists WHERE uri = ?1",
            [uri],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if next >= len * 4 {
            return Err(StoreError::InvalidState("status list is full"));
        }
        tx.execute(
            "UPDATE status_lists SET next_idx = next_idx + 1 WHERE uri = ?1",
            [uri],
        )?;
        tx.commit()?;
        Ok(to_u64(next))
    }

    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut bits: Vec<u8> =
            tx.query_row("SELECT bits FROM status_lists WHERE uri = ?1", [uri], |r| {
                r.get(0)
            })?;
        let byte = usize::try_from(idx / 4).map_err(db)?;
        let shift = (idx % 4) * 2;
        let slot = bits.get_mut(byte).ok_or(StoreError::NotFound)?;
        *slot = (*slot & !(0b11 << shift)) | ((value & 0b11) << shift);
        tx.execute(
            "UPDATE status_lists SET bits = ?2 WHERE uri = ?1",
            params![uri, bits],
        )?;
        tx.commit()?;
        Ok(bits)
    }

    fn put_status_token(&self, uri: &str, token: &str) -> StoreResult<()> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE status_lists SET token = ?2 WHERE uri = ?1",
            params![uri, token],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn put_licence(
        &self,
        resident_id: &str,
        e: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO licences(licence_id, resident_id, device_id, issuer_id, vct, status_uri, status_idx, sd_jwt, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![e.licence_id, resident_id, e.device_id, issuer_id, e.vct, status_uri, to_i64(status_idx), e.sd_jwt, e.issued_at],
        )?;
        Ok(to_u64(conn.last_insert_rowid()))
    }

    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, licence_id, device_id, vct, sd_jwt, issued_at FROM licences WHERE resident_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([resident_id], |r| {
                Ok(WalletEntry {
                    id: to_u64(r.get(0)?),
                    licence_id: r.get(1)?,
                    device_id: r.get(2)?,
                    vct: r.get(3)?,
                    sd_jwt: r.get(4)?,
                    issued_at: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn put_grant(&self, g: &Grant) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO licence_grants(licence_id, resident_id, issuer_id, vct, claims, status, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
            params![g.licence_id, g.resident_id, g.issuer_id, g.vct, g.claims, g.granted_at],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict("licence id already issued")
            }
            other => other.into(),
        })?;
        Ok(())
    }

    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
                 WHERE licence_id = ?1",
                [licence_id],
                row_grant,
            )
            .optional()?)
    }

    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
             WHERE resident_id = ?1 ORDER BY granted_at, licence_id",
        )?;
        let rows = stmt
            .query_map([resident_id], row_grant)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE licence_grants SET status = ?2 WHERE licence_id = ?1",
            params![licence_id, status],
        )?;
        Ok(())
    }

    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM licences WHERE licence_id = ?1 AND device_id = ?2",
            [licence_id, device_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT status_uri, status_idx FROM licences WHERE licence_id = ?1")?;
        let rows = stmt
            .query_map([licence_id], |r| {
                Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?)))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

fn row_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        licence_id: r.get(0)?,
        resident_id: r.get(1)?,
        issuer_id: r.get(2)?,
        vct: r.get(3)?,
        claims: r.get(4)?,
        status: r.get(5)?,
        granted_at: r.get(6)?,
    })
}

fn row_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusListRow> {
    Ok(StatusListRow {
        uri: r.get(0)?,
        issuer_id: r.get(1)?,
        bits: r.get(2)?,
        next_idx: to_u64(r.get(3)?),
        token: r.get(4)?,
    })
}

fn record(
    receipt: &str,
    state: String,
    body: &str,
    form_version: u32,
) -> StoreResult<SubmissionRecord> {
    Ok(SubmissionRecord {
        receipt: receipt_of(receipt)?,
        state,
        values: serde_json::from_str(body).map_err(db)?,
        form_version,
    })
}
