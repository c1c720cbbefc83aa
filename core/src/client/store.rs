//! The phone's SQLite store: WAL, `synchronous=FULL` (a queued submission
//! survives power loss the moment `submit` returns), numbered append-only
//! migrations, and one connection behind a mutex — one writer, as SQLite
//! wants; the client's reads are short and local.
//!
//! Tables: the catalog (guides, their search index, the sync cursor), drafts,
//! the outbox and receipts, the wallet and trust data, and the status
//! timeline of accepted submissions.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::error::{ClientError, ClientResult, DataKeyFault};
use super::sealing::Sealer;

/// Migration 1: catalog, drafts, outbox, receipts (the first release).
const MIGRATION_1: &str = "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE guides (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL, checksum TEXT NOT NULL,
        name TEXT NOT NULL, department TEXT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE drafts (
        id TEXT PRIMARY KEY, guide_id TEXT NOT NULL, form_version INTEGER NOT NULL,
        body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE outbox (
        client_id TEXT PRIMARY KEY, draft_id TEXT NOT NULL, guide_id TEXT NOT NULL,
        form_version INTEGER NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
        last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE TABLE receipts (
        client_id TEXT PRIMARY KEY, tracking_number TEXT NOT NULL, guide_id TEXT NOT NULL,
        accepted_at INTEGER NOT NULL);
";

/// Migration 2: the wallet and the trust data that verifies it.
const MIGRATION_2: &str = "
    CREATE TABLE trust_bundle (
        id INTEGER PRIMARY KEY CHECK (id = 1), jws TEXT NOT NULL, version INTEGER NOT NULL,
        fetched_at INTEGER NOT NULL);
    CREATE TABLE status_lists (uri TEXT PRIMARY KEY, token TEXT NOT NULL, fetched_at INTEGER NOT NULL);
    CREATE TABLE wallet (
        licence_id TEXT PRIMARY KEY, vct TEXT NOT NULL, sd_jwt TEXT NOT NULL,
        issued_at INTEGER NOT NULL, received_at INTEGER NOT NULL);
";

/// Migration 3: the status timeline of accepted submissions, the outbox
/// entry's detail (a rejection's per-field errors) and its frozen request
/// body (`wire`, re-sent identically on every retry), and each receipt's
/// current state.
const MIGRATION_3: &str = "
    CREATE TABLE status_events (
        seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL, tracking_number TEXT NOT NULL,
        state TEXT NOT NULL, note TEXT, at INTEGER NOT NULL);
    CREATE INDEX status_events_client ON status_events(client_id, seq);
    ALTER TABLE outbox ADD COLUMN detail TEXT;
    ALTER TABLE outbox ADD COLUMN wire TEXT;
    ALTER TABLE receipts ADD COLUMN state TEXT NOT NULL DEFAULT 'submitted';
";

/// Migration 4: attachments (scanned paper proofs), kept by content hash
/// until the submissions that reference them are accepted.
const MIGRATION_4: &str = "
    CREATE TABLE attachments (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, media_type TEXT NOT NULL,
        name TEXT NOT NULL, data BLOB NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL);
";

/// Migration 5: inspector mode's replay cache, so that a code shown once is
/// refused again even after the inspector app restarts.
const MIGRATION_5: &str = "
    CREATE TABLE seen_nonces (nonce TEXT PRIMARY KEY, keep_until INTEGER NOT NULL);
";

/// Migration 7: personal data sealed at rest (ADR 0140). From here on the
/// personal columns hold sealed values (BLOBs, [`super::sealing`]): the
/// wallet copy, its type and its licence id (in the new `sealed_id`; the
/// `licence_id` column holds the id's keyed index), drafts' and outbox
/// bodies, the frozen request and the server's error detail, status
/// events' notes, attachments' names and bytes. The marker row tells the
/// Rust step at open ([`super::personal`]) to seal the rows an earlier
/// version wrote in plaintext; it goes in the same transaction as they are
/// sealed and the key's canary is written.
const MIGRATION_7: &str = "
    ALTER TABLE wallet ADD COLUMN sealed_id BLOB;
    INSERT INTO meta(key, value) VALUES ('seal_pending', '1')
        ON CONFLICT(key) DO UPDATE SET value = '1';
";

/// Numbered, append-only migrations, each one or more SQL batches run in one
/// transaction. Never edit one that shipped: add another. The search index
/// (its own tables, [`crate::search::SCHEMA`]) is part of the first.
pub const MIGRATIONS: &[&[&str]] = &[
    &[MIGRATION_1, crate::search::SCHEMA],
    &[MIGRATION_2],
    &[MIGRATION_3],
    &[MIGRATION_4],
    &[MIGRATION_5],
    &[crate::search::PINYIN_SCHEMA],
    &[MIGRATION_7],
    &[super::lexicon::MIGRATION_8],
];

/// The client's database.
#[derive(Debug)]
pub struct ClientStore {
    conn: Mutex<Connection>,
    /// The sealer of personal data once the data key is installed, or why
    /// the personal data is locked ([`super::personal`]).
    sealer: RwLock<Result<Arc<Sealer>, DataKeyFault>>,
    /// The parsed search lexicon in use, once read ([`super::lexicon`]).
    lexicon: RwLock<Option<Arc<crate::search::Lexicon>>>,
}

impl ClientStore {
    /// Opens (creating and upgrading in place) the store at `path`. The
    /// file, its WAL and SHM are 0600 (SQLite gives the WAL and SHM the
    /// database file's mode; an older store's 0644 is tightened); a missing
    /// parent directory is created 0700.
    pub fn open(path: &Path) -> ClientResult<Self> {
        let io =
            |e: std::io::Error| ClientError::Store(super::error::StoreError::io("store file", e));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                super::files::private_dir(parent).map_err(io)?;
            }
        }
        super::files::create_private(path).map_err(io)?;
        let store = Self::setup(Connection::open(path)?)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_os_string();
            name.push(suffix);
            super::files::private_file(Path::new(&name)).map_err(io)?;
        }
        Ok(store)
    }

    /// Rewrites the database so that deleted rows leave no bytes behind in
    /// free pages or the WAL (after a secret was removed from it).
    pub fn scrub(&self) -> ClientResult<()> {
        self.conn()?.execute_batch(
            "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
        )?;
        Ok(())
    }

    /// An in-memory store (tests), sealed under a fresh random key.
    pub fn in_memory() -> ClientResult<Self> {
        let store = Self::setup(Connection::open_in_memory()?)?;
        super::personal::install_key(&store, &super::sealing::DataKey::generate())?;
        Ok(store)
    }

    /// Opens a store and applies only the first `n` migrations (tests of upgrades).
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, n: usize) -> ClientResult<Self> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&mut conn, n)?;
        Ok(Self {
            conn: Mutex::new(conn),
            sealer: RwLock::new(Err(DataKeyFault::Missing)),
            lexicon: RwLock::new(None),
        })
    }

    fn setup(mut conn: Connection) -> ClientResult<Self> {
        configure(&conn)?;
        migrate(&mut conn, MIGRATIONS.len())?;
        // A store upgraded to migration 6 indexes its names' pinyin once.
        crate::search::backfill_pinyin(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            sealer: RwLock::new(Err(DataKeyFault::Missing)),
            lexicon: RwLock::new(None),
        })
    }

    /// The sealer of personal data, or [`ClientError::DataKey`] while the
    /// personal data is locked.
    pub(crate) fn sealer(&self) -> ClientResult<Arc<Sealer>> {
        match self.sealer.read() {
            Ok(guard) => guard.clone().map_err(ClientError::DataKey),
            Err(_) => Err(ClientError::store_other("sealer lock poisoned")),
        }
    }

    /// Installs the sealer (the key opened the canary), or records why the
    /// personal data stays locked.
    pub(crate) fn set_sealer(&self, s: Result<Arc<Sealer>, DataKeyFault>) -> ClientResult<()> {
        let mut guard = self
            .sealer
            .write()
            .map_err(|_| ClientError::store_other("sealer lock poisoned"))?;
        *guard = s;
        Ok(())
    }

    /// Whether the personal data is open (the right data key is installed),
    /// or why not.
    pub fn personal_data_state(&self) -> Result<(), DataKeyFault> {
        match self.sealer() {
            Ok(_) => Ok(()),
            Err(ClientError::DataKey(f)) => Err(f),
            Err(e) => Err(DataKeyFault::KeyStore(e.to_string())),
        }
    }

    /// The cached lexicon (`None`: not read yet).
    pub(crate) fn lexicon_cache(&self) -> ClientResult<Option<Arc<crate::search::Lexicon>>> {
        self.lexicon
            .read()
            .map(|g| g.clone())
            .map_err(|_| ClientError::store_other("lexicon lock poisoned"))
    }

    /// Replaces the cached lexicon (`None`: read it again next time).
    pub(crate) fn set_lexicon_cache(
        &self,
        lexicon: Option<Arc<crate::search::Lexicon>>,
    ) -> ClientResult<()> {
        *self
            .lexicon
            .write()
            .map_err(|_| ClientError::store_other("lexicon lock poisoned"))? = lexicon;
        Ok(())
    }

    /// The connection, for one short piece of work.
    pub(crate) fn conn(&self) -> ClientResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| ClientError::store_other("connection lock poisoned"))
    }

    /// Runs `f` in one immediate transaction, committed if it returns `Ok`.
    pub(crate) fn tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> ClientResult<T>,
    ) -> ClientResult<T> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in one immediate transaction that is atomic but not flushed
    /// to disk at commit (WAL, `synchronous=NORMAL` for this one commit):
    /// for bookkeeping that is safe to lose on power loss, such as marking a
    /// send as started (a lost mark means one more resend, which the server
    /// dedupes). The next durable commit flushes it too.
    pub(crate) fn tx_relaxed<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> ClientResult<T>,
    ) -> ClientResult<T> {
        let mut conn = self.conn()?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        conn.pragma_update(None, "synchronous", "FULL")?;
        out
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> ClientResult<usize> {
        let v: i64 = self
            .conn()?
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> ClientResult<Option<String>> {
        meta_in(&*self.conn()?, key)
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, key: &str, value: &str) -> ClientResult<()> {
        set_meta_in(&*self.conn()?, key, value)
    }
}

/// A metadata value inside a transaction or on a connection.
pub(crate) fn meta_in(c: &Connection, key: &str) -> ClientResult<Option<String>> {
    Ok(
        c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?,
    )
}

/// Sets a metadata value inside a transaction or on a connection.
pub(crate) fn set_meta_in(c: &Connection, key: &str, value: &str) -> ClientResult<()> {
    c.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

fn configure(conn: &Connection) -> ClientResult<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Applies migrations up to `upto`, each in its own transaction.
fn migrate(conn: &mut Connection, upto: usize) -> ClientResult<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(ClientError::store_other(format!(
            "store schema {current} is newer than this app ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, batches) in MIGRATIONS.iter().enumerate().take(upto).skip(current) {
        let tx = conn.transaction()?;
        for sql in *batches {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
