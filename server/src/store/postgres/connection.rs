//! PostgreSQL connections for the pool: each keeps its prepared statements
//! (a query's text is parsed and planned once per connection, not on every
//! call), and a connection is pinged on checkout only after it sat idle.
//!
//! [`Tx`] is the transaction the domain files write against: the methods
//! of `postgres::Transaction` they use, taking the SQL text, with the
//! statement prepared once per connection behind them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Row, RowIter, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A pooled connection and its prepared statements by SQL text.
pub struct PgConn {
    pub(super) client: Client,
    statements: HashMap<String, Statement>,
    checked_at: Instant,
}

/// A connection idle for less than this is handed out without a ping (a
/// broken one then fails its first statement, and the caller retries).
const PING_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Makes [`PgConn`]s for r2d2.
pub struct Manager {
    pub(super) config: postgres::Config,
    pub(super) tls: MakeRustlsConnect,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.config.connect(self.tls.clone())?,
            statements: HashMap::new(),
            checked_at: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        if conn.checked_at.elapsed() >= PING_AFTER_IDLE {
            conn.client.simple_query("")?;
        }
        conn.checked_at = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

impl PgConn {
    /// Begins a transaction on this connection: read committed, or a
    /// read-only repeatable-read snapshot.
    pub(super) fn begin(&mut self, read_only_snapshot: bool) -> Result<Tx<'_>, postgres::Error> {
        let Self {
            client, statements, ..
        } = self;
        let tx = if read_only_snapshot {
            client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?
        } else {
            client.transaction()?
        };
        Ok(Tx { tx, statements })
    }
}

/// A transaction whose statements are prepared once per connection.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("prepared", &self.statements.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("prepared", &self.statements.len())
            .finish_non_exhaustive()
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Rows of `sql`.
    pub fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    /// The one row of `sql` (an error if there is none or several).
    pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_one(&s, params)
    }

    /// The row of `sql`, if any.
    pub fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, params)
    }

    /// Runs `sql`; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }

    /// Rows of `sql` one at a time (large results, e.g. attachment chunks).
    pub fn query_raw<P, I>(&mut self, sql: &str, params: I) -> Result<RowIter<'_>, postgres::Error>
    where
        P: postgres::types::BorrowToSql,
        I: IntoIterator<Item = P>,
        I::IntoIter: ExactSizeIterator,
    {
        let s = self.statement(sql)?;
        self.tx.query_raw(&s, params)
    }

    /// Runs statements without parameters (not prepared).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }

    /// Commits.
    pub fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}
