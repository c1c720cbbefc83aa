//! [`OperatorStore`] on PostgreSQL: operators, and the hash-chained audit
//! trail appended in the transaction of the action it records (ADR 0165,
//! 0166), with SQLite's behaviour (`sqlite/operators.rs` is the contract).
//!
//! Correct across replicas because:
//! - an appender takes the `audit` counter row lock first and holds it to
//!   commit, so appenders on every replica form one queue: each reads the
//!   previous row (committed by the last holder) and links to it, and no
//!   two rows claim the same place in the chain;
//! - an action's write ([`OperatorWrite`]) runs before the append in the
//!   same transaction, so locks are always taken domain rows first, then
//!   the audit counter (no lock-order cycle), and a failed write rolls its
//!   row back with it;
//! - revoking an admin locks every active admin row first (in name order),
//!   so two admins revoking each other cannot leave none;
//! - `ensure_bootstrap` locks the bootstrap row, or inserts it with
//!   `ON CONFLICT DO NOTHING` and re-reads it, so replicas starting together
//!   create one bootstrap admin and audit it once.

use super::Tx;

use super::catalog::{delete_guide_in, put_guide_in};
use super::evaluations::{answer_case_in, put_calendar_year_in};
use super::lexicon::{delete_entry_in, put_entry_in};
use super::licences::{put_grant_in, set_grant_status_in};
use super::residents::{put_activation_in, put_resident_in};
use super::submissions::transition_in;
use super::trust::put_trust_bundle_in;
use super::{PgStore, db, is_unique_violation, next_counter, to_u64};
use crate::audit::{self, AuditEntry, AuditRow, GENESIS};
use crate::roles::Role;
use crate::store::operators::*;
use crate::store::{StoreError, StoreResult};

const OPERATOR_COLUMNS: &str = "name, role, scopes, created_at, revoked_at";

fn operator_row(r: &postgres::Row) -> StoreResult<OperatorRecord> {
    let scopes: String = r.get(2);
    Ok(OperatorRecord {
        name: r.get(0),
        role: r.get(1),
        scopes: serde_json::from_str(&scopes).map_err(db)?,
        created_at: r.get(3),
        revoked_at: r.get(4),
    })
}

/// Appends `entry` after the last row, in the caller's transaction; its
/// sequence number. Takes the `audit` counter row lock (held to commit)
/// before reading the last row, so appenders serialise across replicas.
pub(super) fn append_in(tx: &mut Tx<'_>, entry: &AuditEntry) -> StoreResult<u64> {
    next_counter(tx, "audit")?;
    // Read committed: this statement starts after the lock was granted, so
    // it sees the row of the previous holder.
    let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
    let (seq, prev) = match last {
        None => (1, GENESIS),
        Some(r) => {
            let (seq, hash): (i64, String) = (r.get(0), r.get(1));
            (
                seq.saturating_add(1),
                // A malformed last hash is chained as the genesis: `verify`
                // names that row as edited; appending must not stop the server.
                audit::from_hex(&hash).unwrap_or(GENESIS),
            )
        }
    };
    let row = audit::chain(to_u64(seq), entry.clone(), &prev);
    tx.execute(
        "INSERT INTO audit(seq, at, actor, role, action, target, outcome, prev, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &seq,
            &entry.at,
            &entry.actor,
            &entry.role,
            &entry.action,
            &entry.target,
            &entry.outcome,
            &row.prev,
            &row.hash,
        ],
    )?;
    Ok(row.seq)
}

fn put_operator_in(tx: &mut Tx<'_>, op: &NewOperator) -> StoreResult<()> {
    let scopes = serde_json::to_string(&op.scopes).map_err(db)?;
    // A concurrent insert of the same name waits for the first and then
    // fails: a name is never used twice.
    tx.execute(
        "INSERT INTO operators(name, role, scopes, token_hash, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&op.name, &op.role, &scopes, &op.token_hash, &op.created_at],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("an operator with this name exists or existed")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn revoke_operator_in(tx: &mut Tx<'_>, name: &str, at: i64) -> StoreResult<()> {
    let role: Option<String> = tx
        .query_opt(
            "SELECT role FROM operators WHERE name = $1 AND revoked_at IS NULL",
            &[&name],
        )?
        .map(|r| r.get(0));
    let Some(role) = role else {
        return Err(StoreError::NotFound);
    };
    if role == Role::Admin.as_str() {
        // Every active admin, locked in one order by every replica: a
        // concurrent revocation of another admin is either seen here or
        // waits and then sees this one.
        let admins: Vec<String> = tx
            .query(
                "SELECT name FROM operators WHERE role = $1 AND revoked_at IS NULL
                 ORDER BY name COLLATE \"C\" FOR UPDATE",
                &[&Role::Admin.as_str()],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !admins.iter().any(|a| a == name) {
            return Err(StoreError::NotFound);
        }
        if admins.len() <= 1 {
            return Err(StoreError::InvalidState("the last active admin"));
        }
    }
    let changed = tx.execute(
        "UPDATE operators SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
        &[&name, &at],
    )?;
    if changed == 0 {
        // Revoked meanwhile by another replica.
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn perform(tx: &mut Tx<'_>, write: OperatorWrite) -> StoreResult<Written> {
    Ok(match write {
        OperatorWrite::None => Written::Done,
        OperatorWrite::PutGuide { id, checksum, body } => {
            Written::Seq(put_guide_in(tx, &id, &checksum, &body)?)
        }
        OperatorWrite::DeleteGuide { id } => Written::Seq(delete_guide_in(tx, &id)?),
        OperatorWrite::PutResident(r) => {
            put_resident_in(tx, &r.id, &r.name, r.at)?;
            put_activation_in(tx, &r.code, &r.id, r.expires_at, r.uses)?;
            Written::Done
        }
        OperatorWrite::PutTrustBundle { version, jws, at } => {
            put_trust_bundle_in(tx, version, &jws, at)?;
            Written::Done
        }
        OperatorWrite::PutGrant(g) => {
            put_grant_in(tx, &g)?;
            Written::Done
        }
        OperatorWrite::SetGrantStatus { licence_id, status } => {
            set_grant_status_in(tx, &licence_id, status)?;
            Written::Done
        }
        OperatorWrite::Transition {
            tracking,
            from,
            to,
            note,
            at,
        } => Written::Event(transition_in(
            tx,
            &tracking,
            &from,
            &to,
            note.as_deref(),
            at,
        )?),
        OperatorWrite::AnswerCase {
            id,
            answer,
            on,
            by,
            at,
        } => Written::Event(answer_case_in(tx, &id, &answer, &on, &by, at)?),
        OperatorWrite::PutCalendarYear { year, redue, at } => {
            put_calendar_year_in(tx, &year, &redue, at)?;
            Written::Done
        }
        OperatorWrite::PutLexiconEntry { entry, actor, at } => {
            Written::Version(put_entry_in(tx, &entry, &actor, at)?)
        }
        OperatorWrite::DeleteLexiconEntry { term, actor, at } => {
            Written::Version(delete_entry_in(tx, &term, &actor, at)?)
        }
        OperatorWrite::PutBundle { bundle, at } => {
            Written::Bundle(super::bundles::put_bundle_in(tx, &bundle, at)?)
        }
        OperatorWrite::PutOperator(op) => {
            put_operator_in(tx, &op)?;
            Written::Done
        }
        OperatorWrite::RevokeOperator { name, at } => {
            revoke_operator_in(tx, &name, at)?;
            Written::Done
        }
    })
}

/// The bootstrap operator's token hash and revocation, its row locked.
fn bootstrap_row(tx: &mut Tx<'_>) -> StoreResult<Option<(String, Option<i64>)>> {
    Ok(tx
        .query_opt(
            "SELECT token_hash, revoked_at FROM operators WHERE name = $1 FOR UPDATE",
            &[&BOOTSTRAP_OPERATOR],
        )?
        .map(|r| (r.get(0), r.get(1))))
}

impl OperatorStore for PgStore {
    fn operator_by_token(&self, token_hash: &str) -> StoreResult<Option<OperatorRecord>> {
        self.read(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators
                     WHERE token_hash = $1 AND revoked_at IS NULL"
                ),
                &[&token_hash],
            )?
            .map(|r| operator_row(&r))
            .transpose()
        })
    }

    fn operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        self.read(|tx| {
            tx.query(
                &format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY name COLLATE \"C\""),
                &[],
            )?
            .iter()
            .map(operator_row)
            .collect()
        })
    }

    fn ensure_bootstrap(&self, token_hash: &str, at: i64) -> StoreResult<Bootstrap> {
        self.write(|tx| {
            let mut row = bootstrap_row(tx)?;
            let mut created = false;
            if row.is_none() {
                // Replicas starting together: one insert wins, the others
                // wait for it, insert nothing and read its row. No conflict
                // target: the racing inserts collide on the token hash's
                // unique index as much as on the name.
                created = tx.execute(
                    "INSERT INTO operators(name, role, scopes, token_hash, created_at)
                     VALUES ($1, $2, '[]', $3, $4) ON CONFLICT DO NOTHING",
                    &[&BOOTSTRAP_OPERATOR, &Role::Admin.as_str(), &token_hash, &at],
                )? == 1;
                if !created {
                    row = bootstrap_row(tx)?;
                }
            }
            let outcome = match row {
                None if created => Bootstrap::Created,
                None => {
                    return Err(StoreError::Database(
                        "the bootstrap token's hash belongs to another operator".into(),
                    ));
                }
                Some((_, Some(_))) => return Ok(Bootstrap::Revoked),
                Some((old, None)) if old == token_hash => return Ok(Bootstrap::Unchanged),
                Some(_) => {
                    tx.execute(
                        "UPDATE operators SET token_hash = $2 WHERE name = $1",
                        &[&BOOTSTRAP_OPERATOR, &token_hash],
                    )?;
                    Bootstrap::Rotated
                }
            };
            let action = match outcome {
                Bootstrap::Created => "operator.bootstrap",
                _ => "operator.bootstrap_rotate",
            };
            append_in(
                tx,
                &AuditEntry {
                    at,
                    actor: "setup".into(),
                    role: "setup".into(),
                    action: action.into(),
                    target: serde_json::json!({"operator": BOOTSTRAP_OPERATOR}).to_string(),
                    outcome: "ok".into(),
                },
            )?;
            Ok(outcome)
        })
    }

    fn audited(&self, entry: &AuditEntry, write: OperatorWrite) -> StoreResult<Written> {
        self.write(|tx| {
            let written = perform(tx, write)?;
            append_in(tx, entry)?;
            Ok(written)
        })
    }

    fn audit_log(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        self.read(|tx| {
            // The newest `limit` matching rows (LIMIT NULL: all), returned
            // oldest first.
            let limit = f.limit.map(i64::from);
            let mut rows: Vec<AuditRow> = tx
                .query(
                    "SELECT seq, at, actor, role, action, target, outcome, prev, hash FROM audit
                     WHERE ($1::TEXT IS NULL OR actor = $1) AND ($2::TEXT IS NULL OR action = $2)
                       AND ($3::BIGINT IS NULL OR at >= $3) AND ($4::BIGINT IS NULL OR at < $4)
                     ORDER BY seq DESC LIMIT $5",
                    &[&f.actor, &f.action, &f.since, &f.until, &limit],
                )?
                .iter()
                .map(|r| AuditRow {
                    seq: to_u64(r.get(0)),
                    entry: AuditEntry {
                        at: r.get(1),
                        actor: r.get(2),
                        role: r.get(3),
                        action: r.get(4),
                        target: r.get(5),
                        outcome: r.get(6),
                    },
                    prev: r.get(7),
                    hash: r.get(8),
                })
                .collect();
            rows.reverse();
            Ok(rows)
        })
    }
}
