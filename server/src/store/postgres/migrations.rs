//! PostgreSQL's numbered, append-only migrations (`server/migrations/postgres/`),
//! embedded in the binary. `schema_migrations` records each one applied.
//! Replicas starting together take a session advisory lock first, so one
//! applies the migrations while the others wait and then find nothing to do;
//! a database newer than this binary is refused, untouched.

use postgres::Client;

use super::super::{StoreError, StoreResult};

/// The migrations, in order: `MIGRATIONS[i]` takes a database from version
/// `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_schema.sql"),
    include_str!("../../../migrations/postgres/0002_bundles.sql"),
    include_str!("../../../migrations/postgres/0003_evaluations.sql"),
];

/// The advisory lock key the migrating replica holds ("zhangban" in ASCII,
/// as an `i64`): one key for the whole database.
const MIGRATION_LOCK: i64 = 0x7a68_616e_6762_616e;

/// The highest migration applied (0 for an empty database).
pub fn version(client: &mut Client) -> StoreResult<u32> {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations')",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: i32 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Applies the migrations not yet applied, each in its own transaction,
/// holding the migration lock throughout.
pub fn migrate(client: &mut Client) -> StoreResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

fn migrate_locked(client: &mut Client) -> StoreResult<()> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let current = version(client)?;
    let known = MIGRATIONS.len();
    if usize::try_from(current).map_or(true, |v| v > known) {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this server's {known}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let number =
            i32::try_from(i + 1).map_err(|_| StoreError::Database("too many migrations".into()))?;
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations(version) VALUES ($1)",
            &[&number],
        )?;
        tx.commit()?;
        tracing::info!(version = number, "database migrated");
    }
    Ok(())
}
