//! The PostgreSQL store for several stateless replicas (ADR 0221).
//!
//! This file holds the connections: an r2d2 pool of blocking clients
//! (`postgres`, the blocking facade of tokio-postgres), TLS by rustls, the
//! migrations (applied by one replica at a time under an advisory lock) and
//! the helpers every domain file shares. The queries live in one file per
//! store trait, as on SQLite.
//!
//! Every method is one transaction on a pooled connection; nothing is kept
//! in memory between calls, so any replica can answer any request. Methods
//! block (handlers call them through `spawn_blocking`, as for SQLite) and
//! must not be called on a tokio worker thread.
//!
//! Feeds that phones read by cursor (catalog, events) take their positions
//! under a row lock held to the end of the writing transaction, so positions
//! commit in the order they were handed out and `seq > since` skips nothing
//! (ADR 0221).

use std::time::Duration;

use postgres::error::SqlState;
use r2d2::{Pool, PooledConnection};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{StoreError, StoreResult};

mod attachments;
mod bundles;
mod catalog;
mod connection;
mod evaluations;
mod events;
mod lexicon;
mod licences;
pub mod migrations;
mod operators;
mod residents;
mod submissions;
mod trust;

pub use migrations::MIGRATIONS;

use connection::Manager;
pub use connection::Tx;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The server's code and message (which names a constraint or a
        // statement, never a parameter value: no personal data), else the
        // driver's text (a broken connection, a timeout).
        match e.as_db_error() {
            Some(db) => Self::Database(format!("{}: {}", db.code().code(), db.message())),
            None => Self::Database(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        Self::Database(format!("no database connection: {e}"))
    }
}

/// An error and its sources, one line (the driver's top-level text alone,
/// "error performing TLS handshake", hides why).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How to reach PostgreSQL and how much of it to use.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db?sslmode=…` (or a key=value string). The
    /// password, if any, is best given in `PGPASSWORD`-less form through
    /// the URL of a secret store; it is never logged.
    pub url: String,
    /// Pooled connections per replica.
    pub pool_size: u32,
    /// The longest one statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// How long a caller waits for a connection (pool or network).
    pub connect_timeout: Duration,
    /// `disable`, `prefer` or `require` (certificates are always verified
    /// when TLS is used: Mozilla's roots, plus `ca_file` if given). Overrides
    /// the URL's `sslmode` when set.
    pub tls_mode: Option<TlsMode>,
    /// A PEM file of CA certificates to trust besides Mozilla's roots (a
    /// government cloud's private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl PgOptions {
    /// Defaults for `url`: 16 connections, 5 s statements, 10 s to connect.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            tls_mode: None,
            ca_file: None,
        }
    }
}

/// TLS to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Plain TCP (a database on the same host or a private network).
    Disable,
    /// TLS if the server offers it.
    Prefer,
    /// TLS or no connection.
    Require,
}

/// PostgreSQL behind a pool of blocking connections.
pub struct PgStore {
    /// Always `Some` until dropped (see [`Drop`]).
    pool: Option<Pool<Manager>>,
}

impl Drop for PgStore {
    /// Closing a blocking client blocks on the driver's own runtime, which
    /// panics on an async worker thread (where the server's state is
    /// dropped at shutdown): the pool is closed on a thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.as_ref().map(Pool::state);
        f.debug_struct("PgStore")
            .field("connections", &state.as_ref().map(|s| s.connections))
            .field("idle", &state.as_ref().map(|s| s.idle_connections))
            .finish_non_exhaustive()
    }
}

fn tls(ca_file: Option<&std::path::Path>) -> StoreResult<MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| StoreError::Database(format!("{}: not a PEM file: {e}", path.display())))?
        {
            let cert = cert.map_err(|e| {
                StoreError::Database(format!("{}: bad certificate: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                StoreError::Database(format!("{}: unusable certificate: {e}", path.display()))
            })?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Connects, applies the migrations this binary knows (one replica at a
    /// time) and refuses a database whose schema is newer than this binary.
    /// Blocking: call it outside the async runtime or in `spawn_blocking`.
    pub fn connect(options: &PgOptions) -> StoreResult<Self> {
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad database URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        config.application_name("zhangban-server");
        config.options(&format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        if let Some(mode) = options.tls_mode {
            config.ssl_mode(match mode {
                TlsMode::Disable => postgres::config::SslMode::Disable,
                TlsMode::Prefer => postgres::config::SslMode::Prefer,
                TlsMode::Require => postgres::config::SslMode::Require,
            });
        }
        let manager = Manager {
            config,
            tls: tls(options.ca_file.as_deref())?,
        };
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            // Checkout pings only a connection idle for a while (connection.rs).
            .test_on_check_out(true)
            .error_handler(Box::new(LogErrors))
            .build(manager)
            .map_err(|e| StoreError::Database(format!("cannot reach the database: {e}")))?;
        let store = Self { pool: Some(pool) };
        migrations::migrate(&mut store.conn()?.client)?;
        Ok(store)
    }

    pub(super) fn conn(&self) -> StoreResult<PooledConnection<Manager>> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| StoreError::Database("the store is closed".into()))?;
        Ok(pool.get()?)
    }

    /// Runs a blocking database call. Handlers call the store from
    /// `spawn_blocking`; should one call it on an async worker thread, the
    /// driver (which blocks on a runtime of its own) would panic there, so
    /// the worker is handed over to blocking work for the call instead.
    fn blocking<T>(f: impl FnOnce() -> T) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }

    /// Runs `f` in a read-committed transaction and commits it. Each
    /// statement sees what committed before it started; writers that must
    /// not interleave take a row lock (see the feed rule).
    pub(super) fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        Self::blocking(|| {
            let mut conn = self.conn()?;
            let mut tx = conn.begin(false)?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Runs `f` in a read-only repeatable-read transaction: one snapshot
    /// across all its statements.
    pub(super) fn read<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        Self::blocking(|| {
            let mut conn = self.conn()?;
            let mut tx = conn.begin(true)?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// The schema version (the highest migration applied).
    pub fn schema_version(&self) -> StoreResult<u32> {
        Self::blocking(|| migrations::version(&mut self.conn()?.client))
    }
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        let error = chain(&error);
        let hint = if error.contains("TLS") || error.contains("certificate") {
            " (the server's certificate must verify: give --database-ca, or sslmode=disable on loopback)"
        } else {
            ""
        };
        tracing::warn!(%error, "database connection failed{hint}");
    }
}

/// Takes the next value of the counter row `name` under its row lock, held
/// to the end of `tx`: writers of one counter serialise, so its values
/// commit in the order they were taken (the feed rule).
pub(super) fn next_counter(tx: &mut Tx<'_>, name: &str) -> StoreResult<u64> {
    let row = tx.query_one(
        "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value",
        &[&name],
    )?;
    Ok(to_u64(row.get(0)))
}

/// Whether `e` is a unique or primary-key violation.
pub(super) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn db<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
