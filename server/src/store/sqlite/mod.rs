//! The embedded default store: SQLite in WAL mode with `synchronous=FULL`,
//! so that a receipt is only sent after its submission is on disk.
//!
//! This file holds the connections: one writer thread that commits in
//! groups, a pool of readers, and the helpers every domain file shares. The
//! queries live in one file per store trait (`catalog.rs`, `residents.rs`,
//! …); the schema in numbered `.sql` files (`server/migrations/`, see
//! [`migrations`]).

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use super::{StoreError, StoreResult};

mod attachments;
mod bundles;
mod catalog;
mod evaluations;
mod events;
mod lexicon;
mod licences;
pub mod migrations;
mod operators;
mod residents;
mod submissions;
mod trust;

pub use migrations::{MIGRATIONS, migrate};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            other => Self::Database(other.to_string()),
        }
    }
}

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

pub(super) fn db<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_i64(v: u64) -> i64 {
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
    pub(super) fn write<T, F>(&self, f: F) -> StoreResult<T>
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
    pub(super) fn read<T, F>(&self, f: F) -> StoreResult<T>
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
pub(super) fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
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

pub(super) fn next_counter(conn: &Connection, name: &str) -> StoreResult<u64> {
    let v: i64 = conn.query_row(
        "INSERT INTO counters(name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        [name],
        |r| r.get(0),
    )?;
    Ok(to_u64(v))
}

pub(super) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(super) fn owned(s: &str) -> String {
    s.to_owned()
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A read transaction on a reader connection (a consistent snapshot across
/// several statements). On the in-memory store reads run inside the
/// writer's transaction, which is consistent already: nothing is begun.
pub(super) struct ReadTx<'c> {
    conn: Option<&'c Connection>,
}

impl<'c> ReadTx<'c> {
    pub(super) fn begin(conn: &'c Connection) -> StoreResult<Self> {
        if conn.is_autocommit() {
            run(conn, "BEGIN")?;
            Ok(Self { conn: Some(conn) })
        } else {
            Ok(Self { conn: None })
        }
    }

    pub(super) fn end(mut self) -> StoreResult<()> {
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
