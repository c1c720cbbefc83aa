//! The embedded default store: SQLite in WAL mode with `synchronous=FULL`,
//! so that a receipt is only sent after its submission is on disk.
//!
//! Migrations are numbered and append-only ([`MIGRATIONS`]); `user_version`
//! records how many have run, and opening an older database upgrades it in place.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use sha2::{Digest as _, Sha256};

use crate::activation::{SealedCode, macs_equal};

use super::{
    AttachmentLink, CatalogChange, CatalogPage, ChunkOutcome, ChunkVerdict, Device, Enrolment,
    Grant, NewActivation, NewChallenge, NewSubmission, Receipt, Refusal, Session, StatusEvent,
    StatusListRow, Store, StoreError, StoreResult, SubmissionRecord, Submitted, Upload,
    UploadStart, WalletEntry,
};

mod operators;

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
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
];

/// Migration 2: presentation nonces became stateless (an HMAC bound to the
/// resident, submission and service item, see `api::submissions`), so their
/// table goes and a table of server secrets (the HMAC key, shared by every
/// replica through the database) comes; expiry indexes make the pruning of
/// challenges and tokens cheap; one copy of a licence per device.
const MIGRATION_2: &str = "
    DROP TABLE presentation_nonces;
    CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX challenges_expiry ON challenges(expires_at);
    CREATE INDEX tokens_expiry ON tokens(expires_at);
    DELETE FROM licences WHERE id NOT IN (SELECT MIN(id) FROM licences GROUP BY licence_id, device_id);
    DROP INDEX licences_id;
    CREATE UNIQUE INDEX licences_copy ON licences(licence_id, device_id);
";

/// Migration 3: attachments. A resident's upload of one content
/// (`attachment_uploads`, keyed by resident and SHA-256) is stored as BLOB
/// chunks keyed by their byte offset (`attachment_chunks`); a submission
/// records the attachments its values reference (`submission_attachments`,
/// one per field, written in the submission's transaction). The foreign keys
/// keep referenced content from being dropped.
const MIGRATION_3: &str = "
    CREATE TABLE attachment_uploads (
        resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        media_type TEXT NOT NULL, received INTEGER NOT NULL DEFAULT 0,
        complete INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (resident_id, sha256));
    CREATE TABLE attachment_chunks (
        resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, pos INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (resident_id, sha256, pos),
        FOREIGN KEY (resident_id, sha256) REFERENCES attachment_uploads(resident_id, sha256)
            ON DELETE CASCADE);
    CREATE TABLE submission_attachments (
        client_id TEXT NOT NULL REFERENCES submissions(client_id), field TEXT NOT NULL,
        resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        media_type TEXT NOT NULL, name TEXT NOT NULL,
        PRIMARY KEY (client_id, field),
        FOREIGN KEY (resident_id, sha256) REFERENCES attachment_uploads(resident_id, sha256));
    CREATE INDEX submission_attachments_content ON submission_attachments(resident_id, sha256);
";

/// Migration 4: a device's pending challenges are found (and capped) by
/// device id.
const MIGRATION_4: &str = "
    CREATE INDEX challenges_device ON challenges(device_id, expires_at);
";

/// Migration 5: activation codes are found by their id (first group) and
/// checked by HMAC-SHA256 under the server's activation key, with a failure
/// count that locks a code (ADR 0163). Codes stored before were unsalted
/// SHA-256 hashes of codes that may be guessable; they cannot be turned into
/// keyed hashes without the codes, so they are dropped: devices already
/// enrolled stay enrolled, and operators issue new codes with
/// `resident add`.
const MIGRATION_5: &str = "
    DELETE FROM activation_codes;
    ALTER TABLE activation_codes ADD COLUMN code_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE activation_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX activation_codes_id ON activation_codes(code_id);
";

/// Migration 6: named operators with one role and their scopes (ADR 0165),
/// found by the SHA-256 of their token; and the hash-chained audit trail
/// (ADR 0166). Names are never reused (a revoked operator keeps its row), so
/// an audit row's actor names one operator for good. A submission records
/// its guide's department when it is made (a reviewer's scope), filled in
/// for older submissions from their guide where it is still published.
const MIGRATION_6: &str = "
    CREATE TABLE operators (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, scopes TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
        prev TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_actor ON audit(actor, seq);
    CREATE INDEX audit_action ON audit(action, seq);
    CREATE INDEX audit_at ON audit(at);
    ALTER TABLE submissions ADD COLUMN department_code TEXT NOT NULL DEFAULT '';
    UPDATE submissions SET department_code = COALESCE(
        (SELECT json_extract(g.body, '$.department_code') FROM guides g
         WHERE g.id = submissions.guide_id AND g.deleted = 0), '');
";

/// How many read connections a file database gets (WAL lets them read while
/// the writer writes).
const READERS: usize = 4;
/// The most write jobs committed together in one transaction.
const MAX_BATCH: usize = 256;

/// What a write job hands back to the writer: whether it succeeded (else its
/// savepoint is rolled back), and how to deliver its result once the batch's
/// commit is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// `None`: the transaction could not be opened; the job must not run.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// SQLite with one writer and a pool of readers.
///
/// Every write runs on a single writer thread. Writes that arrive while a
/// commit is in flight are committed together (group commit): each job runs
/// inside its own savepoint of one `BEGIN IMMEDIATE` transaction, a job that
/// fails is rolled back to its savepoint alone, and no caller gets its result
/// before the shared `COMMIT` (with `synchronous=FULL`, an fsync) has
/// returned. Under load one fsync covers many submissions; alone, a write
/// costs what it did before. Reads run on their own connections and see only
/// committed data, so a receipt read after a write returned is on disk.
pub struct SqliteStore {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
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

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(5))?;
            readers.push(Mutex::new(r));
        }
        Self::start(conn, readers)
    }

    /// An in-memory database (tests, benchmarks): reads go to the writer,
    /// since another connection would see another database.
    pub fn in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Self::start(conn, Vec::new())
    }

    fn start(conn: Connection, readers: Vec<Mutex<Connection>>) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = thread::Builder::new()
            .name("zhangban-sqlite-writer".into())
            .spawn(move || writer_loop(&conn, &rx))
            .map_err(db)?;
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` in the writer's current transaction (its own savepoint) and
    /// returns its result once the transaction is durably committed.
    fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel::<StoreResult<T>>(1);
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Database("no write transaction".into())),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = reply.send(commit.and(result));
            });
            (ok, finish)
        });
        let sent = self
            .jobs
            .lock()
            .map_err(|_| StoreError::Database("writer lock poisoned".into()))?
            .as_ref()
            .map(|jobs| jobs.send(job).is_ok());
        if sent != Some(true) {
            return Err(StoreError::Database(
                "the database writer has stopped".into(),
            ));
        }
        answer
            .recv()
            .map_err(|_| StoreError::Database("the database writer has stopped".into()))?
    }

    /// Runs `f` on a read connection (or, in memory, as a write job).
    fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.write(f);
        }
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Some(Ok(conn)) = self.readers.get((start + i) % n).map(Mutex::try_lock) {
                return f(&conn);
            }
        }
        let conn = self
            .readers
            .get(start)
            .ok_or_else(|| StoreError::Database("no reader".into()))?
            .lock()
            .map_err(|_| StoreError::Database("reader lock poisoned".into()))?;
        f(&conn)
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> StoreResult<u32> {
        self.write(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop after the jobs already sent.
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(handle) = writer.take() {
                let _ = handle.join();
            }
        }
    }
}

/// Runs a transaction-control statement, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer: takes every job waiting, runs them in one transaction (each
/// in its own savepoint), commits once, then answers each.
fn writer_loop(conn: &Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
            let e = db(e);
            for job in batch {
                let (_, finish) = job(None);
                finish(Err(e.clone()));
            }
            continue;
        }
        let mut finishers = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(e) = run(conn, "SAVEPOINT job") {
                let (_, finish) = job(None);
                finish(Err(db(e)));
                continue;
            }
            let (ok, finish) = job(Some(conn));
            let settled = if ok {
                run(conn, "RELEASE job")
            } else {
                run(conn, "ROLLBACK TO job").and_then(|()| run(conn, "RELEASE job"))
            };
            match settled {
                Ok(()) => finishers.push(finish),
                Err(e) => finish(Err(db(e))),
            }
        }
        let commit = run(conn, "COMMIT").map_err(db);
        if commit.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        metrics::histogram!("zhangban_store_commit_batch_size").record(finishers.len() as f64);
        for finish in finishers {
            finish(commit.clone());
        }
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

fn next_counter(conn: &Connection, name: &str) -> StoreResult<u64> {
    let v: i64 = conn.query_row(
        "INSERT INTO counters(name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        [name],
        |r| r.get(0),
    )?;
    Ok(to_u64(v))
}

fn put_guide_in(conn: &Connection, id: &str, checksum: &str, body: &str) -> StoreResult<u64> {
    let existing: Option<(i64, String, i64)> = conn
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
    let seq = next_counter(conn, "catalog")?;
    conn.execute(
        "INSERT INTO guides(id, seq, checksum, body, deleted) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT(id) DO UPDATE SET seq = ?2, checksum = ?3, body = ?4, deleted = 0",
        params![id, to_i64(seq), checksum, body],
    )?;
    Ok(seq)
}

fn delete_guide_in(c: &Connection, id: &str) -> StoreResult<u64> {
    let live: Option<i64> = c
        .query_row("SELECT deleted FROM guides WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    if live != Some(0) {
        return Err(StoreError::NotFound);
    }
    let seq = next_counter(c, "catalog")?;
    c.execute(
        "UPDATE guides SET seq = ?2, checksum = '', body = NULL, deleted = 1 WHERE id = ?1",
        params![id, to_i64(seq)],
    )?;
    Ok(seq)
}

fn put_resident_in(c: &Connection, id: &str, name: &str, at: i64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO residents(id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING",
        params![id, name, at],
    )?;
    Ok(())
}

fn put_activation_in(
    c: &Connection,
    code: &SealedCode,
    resident_id: &str,
    expires_at: i64,
    uses: u32,
) -> StoreResult<()> {
    let changed = c.execute(
        "INSERT INTO activation_codes(code_hash, code_id, resident_id, expires_at, uses_left, failures)
         VALUES (?1, ?2, ?3, ?4, ?5, 0)
         ON CONFLICT(code_id) DO UPDATE SET resident_id = ?3, expires_at = ?4, uses_left = ?5, failures = 0
         WHERE code_hash = ?1",
        params![code.mac, code.id, resident_id, expires_at, uses],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict("another activation code has this id"));
    }
    Ok(())
}

fn put_trust_bundle_in(c: &Connection, version: u64, jws: &str, at: i64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO trust_bundles(version, jws, published_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(version) DO NOTHING",
        params![to_i64(version), jws, at],
    )?;
    Ok(())
}

fn put_grant_in(c: &Connection, g: &Grant) -> StoreResult<()> {
    c.execute(
        "INSERT INTO licence_grants(licence_id, resident_id, issuer_id, vct, claims, status, granted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![g.licence_id, g.resident_id, g.issuer_id, g.vct, g.claims, g.granted_at],
    )
    .map_err(|e| {
        if is_constraint(&e) {
            StoreError::Conflict("licence id already issued")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn set_grant_status_in(c: &Connection, licence_id: &str, status: u8) -> StoreResult<()> {
    c.execute(
        "UPDATE licence_grants SET status = ?2 WHERE licence_id = ?1",
        params![licence_id, status],
    )?;
    Ok(())
}

fn transition_in(
    c: &Connection,
    tracking_number: String,
    from: &str,
    state: String,
    note: Option<String>,
    at: i64,
) -> StoreResult<StatusEvent> {
    let (client_id, resident_id): (String, String) = c.query_row(
        "SELECT client_id, resident_id FROM submissions WHERE tracking_number = ?1",
        [&tracking_number],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let changed = c.execute(
        "UPDATE submissions SET state = ?3 WHERE tracking_number = ?1 AND state = ?2",
        params![tracking_number, from, state],
    )?;
    if changed == 0 {
        return Err(StoreError::InvalidState(
            "the submission's state changed meanwhile",
        ));
    }
    c.execute(
        "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![client_id, resident_id, tracking_number, state, note, at],
    )?;
    let seq = c.last_insert_rowid();
    Ok(StatusEvent {
        seq: to_u64(seq),
        client_id,
        tracking_number,
        state,
        note,
        at,
    })
}

fn receipt_of(json: &str) -> StoreResult<Receipt> {
    serde_json::from_str(json).map_err(db)
}

fn receipt_row(
    conn: &Connection,
    client_id: &str,
) -> StoreResult<Option<(String, String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT resident_id, request_hash, receipt FROM submission_dedupe WHERE client_id = ?1",
        )?
        .query_row([client_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        resident_id: r.get(1)?,
        jwk: r.get(2)?,
    })
}

fn owned(s: &str) -> String {
    s.to_owned()
}

impl Store for SqliteStore {
    fn put_guide(&self, id: &str, checksum: &str, body: &str) -> StoreResult<u64> {
        let (id, checksum, body) = (owned(id), owned(checksum), owned(body));
        self.write(move |c| put_guide_in(c, &id, &checksum, &body))
    }

    fn put_guides(&self, guides: &[(String, String, String)]) -> StoreResult<u64> {
        let guides = guides.to_vec();
        self.write(move |c| {
            let mut last = 0;
            for (id, checksum, body) in &guides {
                last = last.max(put_guide_in(c, id, checksum, body)?);
            }
            Ok(last)
        })
    }

    fn delete_guide(&self, id: &str) -> StoreResult<u64> {
        let id = owned(id);
        self.write(move |c| delete_guide_in(c, &id))
    }

    fn catalog_changes(&self, since: u64, limit: u32) -> StoreResult<CatalogPage> {
        self.read(move |c| {
            let head: i64 =
                c.query_row("SELECT COALESCE(MAX(seq), 0) FROM guides", [], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
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
        })
    }

    fn guide(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        let id = owned(id);
        self.read(move |c| {
            Ok(
                c.prepare_cached(
                    "SELECT checksum, body FROM guides WHERE id = ?1 AND deleted = 0",
                )?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
            )
        })
    }

    fn put_resident(&self, id: &str, name: &str, at: i64) -> StoreResult<()> {
        let (id, name) = (owned(id), owned(name));
        self.write(move |c| put_resident_in(c, &id, &name, at))
    }

    fn put_activation(&self, a: &NewActivation<'_>) -> StoreResult<()> {
        let (code, resident_id) = (a.code.clone(), owned(a.resident_id));
        let (expires_at, uses) = (a.expires_at, a.uses);
        self.write(move |c| put_activation_in(c, &code, &resident_id, expires_at, uses))
    }

    fn enrol(
        &self,
        code: &SealedCode,
        device: &Device,
        now: i64,
        max_failures: u32,
    ) -> StoreResult<Enrolment> {
        let (code, device) = (code.clone(), device.clone());
        self.write(move |c| {
            let row: Option<(String, String, i64, i64, i64)> = c
                .query_row(
                    "SELECT code_hash, resident_id, expires_at, uses_left, failures
                     FROM activation_codes WHERE code_id = ?1",
                    [&code.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((mac, resident_id, expires_at, uses_left, failures)) = row else {
                return Ok(Enrolment::Refused(Refusal::Unknown));
            };
            if failures >= i64::from(max_failures) {
                return Ok(Enrolment::Refused(Refusal::Locked));
            }
            if !macs_equal(&mac, &code.mac) {
                c.execute(
                    "UPDATE activation_codes SET failures = failures + 1 WHERE code_id = ?1",
                    [&code.id],
                )?;
                return Ok(Enrolment::Refused(Refusal::Wrong));
            }
            let existing: Option<String> = c
                .query_row(
                    "SELECT resident_id FROM devices WHERE id = ?1",
                    [&device.id],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(owner) if owner == resident_id => {
                    return Ok(Enrolment::Enrolled(Device {
                        resident_id,
                        ..device
                    }));
                }
                Some(_) => {
                    return Err(StoreError::Conflict("device enrolled for another resident"));
                }
                None => {}
            }
            if expires_at < now {
                return Ok(Enrolment::Refused(Refusal::Expired));
            }
            if uses_left <= 0 {
                return Ok(Enrolment::Refused(Refusal::UsedUp));
            }
            c.execute(
                "UPDATE activation_codes SET uses_left = uses_left - 1 WHERE code_hash = ?1",
                [&mac],
            )?;
            c.execute(
                "INSERT INTO devices(id, resident_id, jwk, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                params![device.id, resident_id, device.jwk, now],
            )?;
            Ok(Enrolment::Enrolled(Device {
                resident_id,
                ..device
            }))
        })
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        let id = owned(id);
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT id, resident_id, jwk FROM devices WHERE id = ?1")?
                    .query_row([&id], device_row)
                    .optional()?,
            )
        })
    }

    fn devices_of(&self, resident_id: &str) -> StoreResult<Vec<Device>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, resident_id, jwk FROM devices WHERE resident_id = ?1 ORDER BY enrolled_at, id",
            )?;
            let rows = stmt
                .query_map([&resident_id], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn put_challenge(&self, ch: &NewChallenge<'_>, now: i64) -> StoreResult<()> {
        let (id, device_id, nonce) = (owned(ch.id), owned(ch.device_id), owned(ch.nonce));
        let (expires_at, keep) = (ch.expires_at, ch.max_pending.max(1));
        self.write(move |c| {
            c.prepare_cached("DELETE FROM challenges WHERE expires_at < ?1")?
                .execute([now])?;
            c.prepare_cached(
                "INSERT INTO challenges(id, device_id, nonce, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, device_id, nonce, expires_at])?;
            c.prepare_cached(
                "DELETE FROM challenges WHERE device_id = ?1 AND rowid NOT IN (
                     SELECT rowid FROM challenges WHERE device_id = ?1
                     ORDER BY expires_at DESC, rowid DESC LIMIT ?2)",
            )?
            .execute(params![device_id, keep])?;
            Ok(())
        })
    }

    fn challenge_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM challenges", [], |r| r.get(0))?;
            Ok(to_u64(n))
        })
    }

    fn take_challenge(&self, id: &str) -> StoreResult<Option<(String, String, i64)>> {
        let id = owned(id);
        self.write(move |c| {
            Ok(c.prepare_cached(
                "DELETE FROM challenges WHERE id = ?1 RETURNING device_id, nonce, expires_at",
            )?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
        })
    }

    fn put_token(&self, hash: &str, s: &Session) -> StoreResult<()> {
        let (hash, s) = (owned(hash), s.clone());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM tokens WHERE expires_at < ?1")?
                .execute([s.expires_at - 86_400])?;
            c.prepare_cached(
                "INSERT INTO tokens(hash, device_id, resident_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![hash, s.device_id, s.resident_id, s.expires_at])?;
            Ok(())
        })
    }

    fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        let hash = owned(hash);
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT device_id, resident_id, expires_at FROM tokens WHERE hash = ?1",
            )?
            .query_row([&hash], |r| {
                Ok(Session {
                    device_id: r.get(0)?,
                    resident_id: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    fn receipt(&self, client_id: &str) -> StoreResult<Option<(String, String, Receipt)>> {
        let client_id = owned(client_id);
        self.read(move |c| {
            receipt_row(c, &client_id)?
                .map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
                .transpose()
        })
    }

    fn submit(&self, s: &NewSubmission) -> StoreResult<Submitted> {
        let s = s.clone();
        self.write(move |c| {
            if let Some((owner, hash, receipt)) = receipt_row(c, &s.client_id)? {
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
                return Ok(Submitted {
                    receipt: receipt_of(&receipt)?,
                    fresh: false,
                });
            }
            let n = next_counter(c, "tracking")?;
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
            c.prepare_cached(
                "INSERT INTO submission_dedupe(client_id, resident_id, request_hash, receipt, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![s.client_id, s.resident_id, s.request_hash, receipt_json, s.at])?;
            c.prepare_cached(
                "INSERT INTO submissions(client_id, resident_id, device_id, guide_id, form_version, body,
                     tracking_number, state, created_at, department_code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'submitted', ?8, ?9)",
            )?
            .execute(params![s.client_id, s.resident_id, s.device_id, s.guide_id, s.form_version, s.body, tracking_number, s.at, s.department_code])?;
            for a in &s.attachments {
                let complete = upload_row(c, &s.resident_id, &a.sha256)?
                    .is_some_and(|u| u.complete && u.size == a.size);
                if !complete {
                    return Err(StoreError::InvalidState(
                        "a referenced attachment is not a complete upload of the resident's",
                    ));
                }
                c.prepare_cached(
                    "INSERT INTO submission_attachments(client_id, field, resident_id, sha256, size, media_type, name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![s.client_id, a.field, s.resident_id, a.sha256, to_i64(a.size), a.media_type, a.name])?;
            }
            c.prepare_cached(
                "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
                 VALUES (?1, ?2, ?3, 'submitted', NULL, ?4)",
            )?
            .execute(params![s.client_id, s.resident_id, tracking_number, s.at])?;
            Ok(Submitted {
                receipt,
                fresh: true,
            })
        })
    }

    fn submissions_of(&self, resident_id: &str) -> StoreResult<Vec<SubmissionRecord>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                 JOIN submission_dedupe d ON d.client_id = s.client_id
                 WHERE s.resident_id = ?1 ORDER BY s.created_at DESC, s.tracking_number DESC",
            )?;
            let rows = stmt
                .query_map([&resident_id], |r| {
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
        })
    }

    fn submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        let (resident_id, client_id) = (owned(resident_id), owned(client_id));
        self.read(move |c| {
            let row: Option<(String, String, String, u32)> = c
                .query_row(
                    "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                     JOIN submission_dedupe d ON d.client_id = s.client_id
                     WHERE s.resident_id = ?1 AND s.client_id = ?2",
                    [&resident_id, &client_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            row.map(|(receipt, state, body, v)| record(&receipt, state, &body, v))
                .transpose()
        })
    }

    fn transition(
        &self,
        tracking_number: &str,
        from: &str,
        state: &str,
        note: Option<&str>,
        at: i64,
    ) -> StoreResult<StatusEvent> {
        let (tracking_number, from, state, note) = (
            owned(tracking_number),
            owned(from),
            owned(state),
            note.map(owned),
        );
        self.write(move |c| transition_in(c, tracking_number, &from, state, note, at))
    }

    fn submission_department(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT department_code FROM submissions WHERE tracking_number = ?1",
                [&tracking_number],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn state_of(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT state FROM submissions WHERE tracking_number = ?1",
                [&tracking_number],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
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
        })
    }

    fn submission_attachments(
        &self,
        tracking_number: &str,
    ) -> StoreResult<Option<Vec<AttachmentLink>>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            let client_id: Option<String> = c
                .query_row(
                    "SELECT client_id FROM submissions WHERE tracking_number = ?1",
                    [&tracking_number],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(client_id) = client_id else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT field, sha256, size, media_type, name FROM submission_attachments
                 WHERE client_id = ?1 ORDER BY field",
            )?;
            let links = stmt
                .query_map([&client_id], link_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(links))
        })
    }

    fn submission_attachment(
        &self,
        tracking_number: &str,
        sha256: &str,
    ) -> StoreResult<Option<(AttachmentLink, Vec<u8>)>> {
        let (tracking_number, sha256) = (owned(tracking_number), owned(sha256));
        self.read(move |c| {
            let found: Option<(AttachmentLink, String)> = c
                .query_row(
                    "SELECT a.field, a.sha256, a.size, a.media_type, a.name, a.resident_id
                     FROM submission_attachments a JOIN submissions s ON s.client_id = a.client_id
                     WHERE s.tracking_number = ?1 AND a.sha256 = ?2 ORDER BY a.field LIMIT 1",
                    [&tracking_number, &sha256],
                    |r| Ok((link_row(r)?, r.get(5)?)),
                )
                .optional()?;
            let Some((link, resident_id)) = found else {
                return Ok(None);
            };
            let bytes = chunks_of(c, &resident_id, &sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((link, bytes)))
        })
    }

    fn begin_upload(
        &self,
        resident_id: &str,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: i64,
    ) -> StoreResult<UploadStart> {
        let (resident_id, sha256, media_type) =
            (owned(resident_id), owned(sha256), owned(media_type));
        self.write(move |c| {
            let Some(found) = upload_row(c, &resident_id, &sha256)? else {
                c.prepare_cached(
                    "INSERT INTO attachment_uploads(resident_id, sha256, size, media_type, received,
                         complete, generation, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 0, 0, 0, ?5, ?5)",
                )?
                .execute(params![resident_id, sha256, to_i64(size), media_type, now])?;
                return Ok(UploadStart::Created(Upload {
                    sha256,
                    size,
                    media_type,
                    received: 0,
                    complete: false,
                    generation: 0,
                }));
            };
            if found.size != size {
                if found.complete {
                    return Ok(UploadStart::Conflict(found));
                }
                c.prepare_cached(
                    "DELETE FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute([&resident_id, &sha256])?;
                let generation = found.generation.saturating_add(1);
                c.prepare_cached(
                    "UPDATE attachment_uploads SET size = ?3, media_type = ?4, received = 0,
                         generation = ?5, updated_at = ?6
                     WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute(params![
                    resident_id,
                    sha256,
                    to_i64(size),
                    media_type,
                    to_i64(generation),
                    now
                ])?;
                return Ok(UploadStart::Restarted(Upload {
                    sha256,
                    size,
                    media_type,
                    received: 0,
                    complete: false,
                    generation,
                }));
            }
            if found.media_type != media_type {
                c.prepare_cached(
                    "UPDATE attachment_uploads SET media_type = ?3, updated_at = ?4
                     WHERE resident_id = ?1 AND sha256 = ?2",
                )?
                .execute(params![resident_id, sha256, media_type, now])?;
            }
            Ok(UploadStart::Existing(Upload {
                media_type,
                ..found
            }))
        })
    }

    fn upload_usage(&self, resident_id: &str, except_sha256: &str) -> StoreResult<(u64, u64)> {
        let (resident_id, except) = (owned(resident_id), owned(except_sha256));
        self.read(move |c| {
            let (bytes, pending): (i64, i64) = c
                .prepare_cached(
                    "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(complete = 0), 0)
                     FROM attachment_uploads WHERE resident_id = ?1 AND sha256 != ?2",
                )?
                .query_row(params![resident_id, except], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((to_u64(bytes), to_u64(pending)))
        })
    }

    fn upload(&self, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        self.read(move |c| upload_row(c, &resident_id, &sha256))
    }

    fn uploads(&self, resident_id: &str, sha256s: &[String]) -> StoreResult<Vec<Upload>> {
        let (resident_id, sha256s) = (owned(resident_id), sha256s.to_vec());
        self.read(move |c| {
            let mut found = Vec::with_capacity(sha256s.len());
            for sha256 in &sha256s {
                if let Some(u) = upload_row(c, &resident_id, sha256)? {
                    found.push(u);
                }
            }
            Ok(found)
        })
    }

    fn upload_digest(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Sha256)>> {
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        // One read transaction, so that the row and the chunks agree.
        self.read(move |c| {
            let tx = ReadTx::begin(c)?;
            let Some(upload) = upload_row(c, &resident_id, &sha256)? else {
                return Ok(None);
            };
            let digest = chunks_of(c, &resident_id, &sha256, |h: &mut Sha256, d| h.update(d))?;
            tx.end()?;
            Ok(Some((upload, digest)))
        })
    }

    fn put_chunk(
        &self,
        resident_id: &str,
        sha256: &str,
        offset: u64,
        data: &[u8],
        verdict: Option<ChunkVerdict>,
        now: i64,
    ) -> StoreResult<ChunkOutcome> {
        let (resident_id, sha256, data) = (owned(resident_id), owned(sha256), data.to_vec());
        self.write(move |c| {
            let upload = upload_row(c, &resident_id, &sha256)?.ok_or(StoreError::NotFound)?;
            let len = u64::try_from(data.len()).map_err(db)?;
            let Some(end) = offset.checked_add(len).filter(|end| *end <= upload.size) else {
                return Ok(ChunkOutcome::BeyondSize(upload));
            };
            if end <= upload.received {
                return Ok(ChunkOutcome::Unchanged(upload));
            }
            if offset != upload.received {
                return Ok(ChunkOutcome::OffsetMismatch(upload));
            }
            let last = end == upload.size;
            if last {
                let matches = match verdict {
                    // `offset == received` here, so the verdict covers exactly
                    // the bytes this chunk completes.
                    Some(v) if v.generation == upload.generation && v.received == offset => {
                        v.matches
                    }
                    // The caller hashed other bytes (or none): hash here.
                    _ => {
                        let mut h =
                            chunks_of(c, &resident_id, &sha256, |h: &mut Sha256, d| h.update(d))?;
                        h.update(&data);
                        hex(&h.finalize()) == sha256
                    }
                };
                if !matches {
                    c.prepare_cached(
                        "DELETE FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2",
                    )?
                    .execute([&resident_id, &sha256])?;
                    let generation = upload.generation.saturating_add(1);
                    c.prepare_cached(
                        "UPDATE attachment_uploads SET received = 0, generation = ?3, updated_at = ?4
                         WHERE resident_id = ?1 AND sha256 = ?2",
                    )?
                    .execute(params![resident_id, sha256, to_i64(generation), now])?;
                    return Ok(ChunkOutcome::HashMismatch(Upload {
                        received: 0,
                        generation,
                        ..upload
                    }));
                }
            }
            c.prepare_cached(
                "INSERT INTO attachment_chunks(resident_id, sha256, pos, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![resident_id, sha256, to_i64(offset), data])?;
            c.prepare_cached(
                "UPDATE attachment_uploads SET received = ?3, complete = ?4, updated_at = ?5
                 WHERE resident_id = ?1 AND sha256 = ?2",
            )?
            .execute(params![resident_id, sha256, to_i64(end), last, now])?;
            let upload = Upload {
                received: end,
                complete: last,
                ..upload
            };
            Ok(if last {
                ChunkOutcome::Completed(upload)
            } else {
                ChunkOutcome::Appended(upload)
            })
        })
    }

    fn upload_content(
        &self,
        resident_id: &str,
        sha256: &str,
    ) -> StoreResult<Option<(Upload, Option<Vec<u8>>)>> {
        let (resident_id, sha256) = (owned(resident_id), owned(sha256));
        self.read(move |c| {
            let Some(upload) = upload_row(c, &resident_id, &sha256)? else {
                return Ok(None);
            };
            if !upload.complete {
                return Ok(Some((upload, None)));
            }
            // A complete upload never changes, so no read transaction is needed.
            let bytes = chunks_of(c, &resident_id, &sha256, |all: &mut Vec<u8>, d| {
                all.extend_from_slice(d);
            })?;
            Ok(Some((upload, Some(bytes))))
        })
    }

    fn secret(&self, name: &str, fresh: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        let (name, fresh) = (owned(name), fresh.to_vec());
        self.write(move |c| {
            c.execute(
                "INSERT INTO server_secrets(name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO NOTHING",
                params![name, fresh, now],
            )?;
            Ok(c.query_row(
                "SELECT value FROM server_secrets WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?)
        })
    }

    fn put_trust_bundle(&self, version: u64, jws: &str, at: i64) -> StoreResult<()> {
        let jws = owned(jws);
        self.write(move |c| put_trust_bundle_in(c, version, &jws, at))
    }

    fn trust_bundle(&self) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT jws FROM trust_bundles ORDER BY version DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn ensure_status_list(&self, uri: &str, issuer_id: &str, capacity: u64) -> StoreResult<()> {
        let (uri, issuer_id) = (owned(uri), owned(issuer_id));
        let bytes = vec![0u8; usize::try_from(capacity.div_ceil(4)).unwrap_or(0)];
        self.write(move |c| {
            c.execute(
                "INSERT INTO status_lists(uri, issuer_id, bits, next_idx, token) VALUES (?1, ?2, ?3, 0, NULL)
                 ON CONFLICT(uri) DO NOTHING",
                params![uri, issuer_id, bytes],
            )?;
            Ok(())
        })
    }

    fn status_list(&self, uri: &str) -> StoreResult<Option<StatusListRow>> {
        let uri = owned(uri);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists WHERE uri = ?1",
                [&uri],
                row_status,
            )
            .optional()?)
        })
    }

    fn status_lists(&self) -> StoreResult<Vec<StatusListRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT uri, issuer_id, bits, next_idx, token FROM status_lists ORDER BY uri",
            )?;
            let rows = stmt
                .query_map([], row_status)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn allocate_status_index(&self, uri: &str) -> StoreResult<u64> {
        let uri = owned(uri);
        self.write(move |c| {
            let (next, len): (i64, i64) = c.query_row(
                "SELECT next_idx, length(bits) FROM status_lists WHERE uri = ?1",
                [&uri],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if next >= len * 4 {
                return Err(StoreError::InvalidState("status list is full"));
            }
            c.execute(
                "UPDATE status_lists SET next_idx = next_idx + 1 WHERE uri = ?1",
                [&uri],
            )?;
            Ok(to_u64(next))
        })
    }

    fn set_status(&self, uri: &str, idx: u64, value: u8) -> StoreResult<Vec<u8>> {
        let uri = owned(uri);
        self.write(move |c| {
            let mut bits: Vec<u8> = c.query_row(
                "SELECT bits FROM status_lists WHERE uri = ?1",
                [&uri],
                |r| r.get(0),
            )?;
            let byte = usize::try_from(idx / 4).map_err(db)?;
            let shift = (idx % 4) * 2;
            let slot = bits.get_mut(byte).ok_or(StoreError::NotFound)?;
            *slot = (*slot & !(0b11 << shift)) | ((value & 0b11) << shift);
            c.execute(
                "UPDATE status_lists SET bits = ?2 WHERE uri = ?1",
                params![uri, bits],
            )?;
            Ok(bits)
        })
    }

    fn put_status_token(&self, uri: &str, token: &str) -> StoreResult<()> {
        let (uri, token) = (owned(uri), owned(token));
        self.write(move |c| {
            let n = c.execute(
                "UPDATE status_lists SET token = ?2 WHERE uri = ?1",
                params![uri, token],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn put_licence(
        &self,
        resident_id: &str,
        e: &WalletEntry,
        issuer_id: &str,
        status_uri: &str,
        status_idx: u64,
    ) -> StoreResult<u64> {
        let (resident_id, e, issuer_id, status_uri) = (
            owned(resident_id),
            e.clone(),
            owned(issuer_id),
            owned(status_uri),
        );
        self.write(move |c| {
            c.execute(
                "INSERT INTO licences(licence_id, resident_id, device_id, issuer_id, vct, status_uri, status_idx, sd_jwt, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![e.licence_id, resident_id, e.device_id, issuer_id, e.vct, status_uri, to_i64(status_idx), e.sd_jwt, e.issued_at],
            )
            .map_err(|err| {
                if is_constraint(&err) {
                    StoreError::Conflict("the device already holds this licence")
                } else {
                    err.into()
                }
            })?;
            Ok(to_u64(c.last_insert_rowid()))
        })
    }

    fn wallet(&self, resident_id: &str) -> StoreResult<Vec<WalletEntry>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, licence_id, device_id, vct, sd_jwt, issued_at FROM licences WHERE resident_id = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([&resident_id], |r| {
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
        })
    }

    fn put_grant(&self, g: &Grant) -> StoreResult<()> {
        let g = g.clone();
        self.write(move |c| put_grant_in(c, &g))
    }

    fn grant(&self, licence_id: &str) -> StoreResult<Option<Grant>> {
        let licence_id = owned(licence_id);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
                 WHERE licence_id = ?1",
                [&licence_id],
                row_grant,
            )
            .optional()?)
        })
    }

    fn grants_of(&self, resident_id: &str) -> StoreResult<Vec<Grant>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT licence_id, resident_id, issuer_id, vct, claims, status, granted_at FROM licence_grants
                 WHERE resident_id = ?1 ORDER BY granted_at, licence_id",
            )?;
            let rows = stmt
                .query_map([&resident_id], row_grant)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn set_grant_status(&self, licence_id: &str, status: u8) -> StoreResult<()> {
        let licence_id = owned(licence_id);
        self.write(move |c| set_grant_status_in(c, &licence_id, status))
    }

    fn has_copy(&self, licence_id: &str, device_id: &str) -> StoreResult<bool> {
        let (licence_id, device_id) = (owned(licence_id), owned(device_id));
        self.read(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM licences WHERE licence_id = ?1 AND device_id = ?2",
                [&licence_id, &device_id],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        })
    }

    fn licence_copies(&self, licence_id: &str) -> StoreResult<Vec<(String, u64)>> {
        let licence_id = owned(licence_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT status_uri, status_idx FROM licences WHERE licence_id = ?1",
            )?;
            let rows = stmt
                .query_map([&licence_id], |r| {
                    Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?)))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

fn upload_row(conn: &Connection, resident_id: &str, sha256: &str) -> StoreResult<Option<Upload>> {
    Ok(conn
        .prepare_cached(
            "SELECT sha256, size, media_type, received, complete, generation FROM attachment_uploads
             WHERE resident_id = ?1 AND sha256 = ?2",
        )?
        .query_row([resident_id, sha256], |r| {
            Ok(Upload {
                sha256: r.get(0)?,
                size: to_u64(r.get(1)?),
                media_type: r.get(2)?,
                received: to_u64(r.get(3)?),
                complete: r.get(4)?,
                generation: to_u64(r.get(5)?),
            })
        })
        .optional()?)
}

fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentLink> {
    Ok(AttachmentLink {
        field: r.get(0)?,
        sha256: r.get(1)?,
        size: to_u64(r.get(2)?),
        media_type: r.get(3)?,
        name: r.get(4)?,
    })
}

/// Feeds the stored chunks of an upload, in order, to `add`, one row at a
/// time (never more than one chunk in memory besides the accumulator).
fn chunks_of<A: Default>(
    conn: &Connection,
    resident_id: &str,
    sha256: &str,
    add: impl Fn(&mut A, &[u8]),
) -> StoreResult<A> {
    let mut acc = A::default();
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM attachment_chunks WHERE resident_id = ?1 AND sha256 = ?2 ORDER BY pos",
    )?;
    let mut rows = stmt.query([resident_id, sha256])?;
    while let Some(row) = rows.next()? {
        add(&mut acc, row.get_ref(0)?.as_blob().map_err(db)?);
    }
    Ok(acc)
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A read transaction on a reader connection (a consistent snapshot across
/// several statements). On the in-memory store reads run inside the
/// writer's transaction, which is consistent already: nothing is begun.
struct ReadTx<'c> {
    conn: Option<&'c Connection>,
}

impl<'c> ReadTx<'c> {
    fn begin(conn: &'c Connection) -> StoreResult<Self> {
        if conn.is_autocommit() {
            run(conn, "BEGIN")?;
            Ok(Self { conn: Some(conn) })
        } else {
            Ok(Self { conn: None })
        }
    }

    fn end(mut self) -> StoreResult<()> {
        match self.conn.take() {
            Some(conn) => Ok(run(conn, "COMMIT")?),
            None => Ok(()),
        }
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = run(conn, "ROLLBACK");
        }
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
