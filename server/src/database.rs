//! Which database the server uses: the data directory's SQLite file (the
//! embedded default) or PostgreSQL (`--database-url`, several replicas;
//! ADR 0221). The same options serve `serve`, `import-guides` and `audit`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::store::postgres::{PgOptions, PgStore, TlsMode};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreResult};

/// `--database-url` and its tunables.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL instead of the data directory's SQLite file:
    /// `postgres://USER@HOST:PORT/DB` (a password is best given in
    /// `PGPASSWORD`-free form through this variable, not the command line).
    /// Every replica of one deployment uses the same database and a copy of
    /// the same data directory (its keys).
    #[arg(
        long,
        env = "ZHANGBAN_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Pooled PostgreSQL connections per replica.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub database_pool_size: u32,
    /// The longest one statement may run (milliseconds) before PostgreSQL cancels it.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub database_statement_timeout_ms: u64,
    /// TLS to PostgreSQL (certificates are always verified: Mozilla's roots
    /// and `--database-ca`); default: the URL's `sslmode`, else `prefer`.
    #[arg(long, value_enum, value_name = "MODE")]
    pub database_tls: Option<TlsMode>,
    /// A PEM file of CA certificates to trust for PostgreSQL's TLS.
    #[arg(long, value_name = "FILE")]
    pub database_ca: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The embedded default (no PostgreSQL).
    pub fn sqlite() -> Self {
        Self {
            database_url: None,
            database_pool_size: 16,
            database_statement_timeout_ms: 5_000,
            database_tls: None,
            database_ca: None,
        }
    }

    /// PostgreSQL at `url` with the default tunables.
    pub fn postgres(url: impl Into<String>) -> Self {
        Self {
            database_url: Some(url.into()),
            ..Self::sqlite()
        }
    }

    /// The PostgreSQL options, if a URL is given.
    pub fn pg_options(&self) -> Option<PgOptions> {
        self.database_url.as_ref().map(|url| {
            let mut o = PgOptions::new(url.clone());
            o.pool_size = self.database_pool_size;
            o.statement_timeout = Duration::from_millis(self.database_statement_timeout_ms);
            o.tls_mode = self.database_tls;
            o.ca_file = self.database_ca.clone();
            o
        })
    }

    /// Opens the store: PostgreSQL if a URL is given, else `sqlite_path`.
    /// Blocking: call it outside the async runtime (or in `block_in_place`).
    pub fn open(&self, sqlite_path: &Path) -> StoreResult<Arc<dyn Store>> {
        Ok(match self.pg_options() {
            Some(options) => Arc::new(PgStore::connect(&options)?),
            None => Arc::new(SqliteStore::open(sqlite_path)?),
        })
    }

    /// A description for logs and banners (never the URL: it may hold a password).
    pub fn describe(&self, sqlite_path: &Path) -> String {
        match &self.pg_options() {
            Some(_) => "PostgreSQL".to_owned(),
            None => format!("SQLite {}", sqlite_path.display()),
        }
    }
}
