//! Numbered, append-only schema migrations, one `.sql` file each in
//! `server/migrations/`, embedded in the binary. `user_version` records how
//! many have run: opening an older database upgrades it in place, each
//! migration in its own transaction; a database newer than this binary is
//! refused rather than written by code that does not know its schema.
//!
//! Never edit a migration that shipped (a test pins the SQL of each):
//! add the next number.

use rusqlite::Connection;

use super::super::{StoreError, StoreResult};

/// The migrations, in order: `MIGRATIONS[i]` takes a database from version
/// `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_first_schema.sql"),
    include_str!("../../../migrations/0002_stateless_nonces_and_secrets.sql"),
    include_str!("../../../migrations/0003_attachments.sql"),
    include_str!("../../../migrations/0004_challenges_by_device.sql"),
    include_str!("../../../migrations/0005_keyed_activation_codes.sql"),
    include_str!("../../../migrations/0006_operators_audit_departments.sql"),
    include_str!("../../../migrations/0007_search_lexicon.sql"),
    include_str!("../../../migrations/0008_retired_devices.sql"),
    include_str!("../../../migrations/0009_bundles.sql"),
    include_str!("../../../migrations/0010_evaluations.sql"),
];

/// Runs the migrations not yet applied, each in its own transaction.
/// `Database` error if the database was written by a newer schema.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    if usize::try_from(current).map_or(true, |v| v > known) {
        return Err(StoreError::Database(format!(
            "the database schema is version {current}, newer than this server's {known}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
