//! [`OperatorStore`] on SQLite: operators, and the audit trail appended in
//! the writer's transaction (the single writer thread makes "read the last
//! row, append the next" race-free; a PostgreSQL backend takes a table lock).

use rusqlite::{Connection, OptionalExtension as _, params};

use super::SqliteStore;
use super::catalog::{delete_guide_in, put_guide_in};
use super::evaluations::{answer_case_in, put_calendar_year_in};
use super::lexicon::{delete_entry_in, put_entry_in};
use super::licences::{put_grant_in, set_grant_status_in};
use super::residents::{put_activation_in, put_resident_in};
use super::submissions::transition_in;
use super::trust::put_trust_bundle_in;
use crate::audit::{self, AuditEntry, AuditRow, GENESIS};
use crate::roles::Role;
use crate::store::operators::{
    AuditFilter, BOOTSTRAP_OPERATOR, Bootstrap, OperatorRecord, OperatorStore, OperatorWrite,
    Written,
};
use crate::store::{StoreError, StoreResult};

fn operator_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OperatorRecord, String)> {
    let scopes: String = r.get(2)?;
    Ok((
        OperatorRecord {
            name: r.get(0)?,
            role: r.get(1)?,
            scopes: Vec::new(),
            created_at: r.get(3)?,
            revoked_at: r.get(4)?,
        },
        scopes,
    ))
}

fn with_scopes((mut op, scopes): (OperatorRecord, String)) -> StoreResult<OperatorRecord> {
    op.scopes = serde_json::from_str(&scopes).map_err(super::db)?;
    Ok(op)
}

/// Appends `entry` after the last row, in the caller's transaction.
pub(super) fn append_in(c: &Connection, entry: &AuditEntry) -> StoreResult<u64> {
    let last: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        None => (1, GENESIS),
        Some((seq, hash)) => (
            seq.saturating_add(1),
            // A malformed last hash is chained as the genesis: `verify`
            // names that row as edited; appending must not stop the server.
            audit::from_hex(&hash).unwrap_or(GENESIS),
        ),
    };
    let row = audit::chain(super::to_u64(seq), entry.clone(), &prev);
    c.prepare_cached(
        "INSERT INTO audit(seq, at, actor, role, action, target, outcome, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        entry.at,
        entry.actor,
        entry.role,
        entry.action,
        entry.target,
        entry.outcome,
        row.prev,
        row.hash
    ])?;
    Ok(row.seq)
}

fn perform(c: &Connection, write: OperatorWrite) -> StoreResult<Written> {
    Ok(match write {
        OperatorWrite::None => Written::Done,
        OperatorWrite::PutGuide { id, checksum, body } => {
            Written::Seq(put_guide_in(c, &id, &checksum, &body)?)
        }
        OperatorWrite::DeleteGuide { id } => Written::Seq(delete_guide_in(c, &id)?),
        OperatorWrite::PutResident(r) => {
            put_resident_in(c, &r.id, &r.name, r.at)?;
            put_activation_in(c, &r.code, &r.id, r.expires_at, r.uses)?;
            Written::Done
        }
        OperatorWrite::PutTrustBundle { version, jws, at } => {
            put_trust_bundle_in(c, version, &jws, at)?;
            Written::Done
        }
        OperatorWrite::PutGrant(g) => {
            put_grant_in(c, &g)?;
            Written::Done
        }
        OperatorWrite::SetGrantStatus { licence_id, status } => {
            set_grant_status_in(c, &licence_id, status)?;
            Written::Done
        }
        OperatorWrite::Transition {
            tracking,
            from,
            to,
            note,
            at,
        } => Written::Event(transition_in(c, tracking, &from, to, note, at)?),
        OperatorWrite::AnswerCase {
            id,
            answer,
            on,
            by,
            at,
        } => Written::Event(answer_case_in(c, &id, &answer, &on, &by, at)?),
        OperatorWrite::PutCalendarYear { year, redue, at } => {
            put_calendar_year_in(c, &year, &redue, at)?;
            Written::Done
        }
        OperatorWrite::PutLexiconEntry { entry, actor, at } => {
            Written::Version(put_entry_in(c, &entry, &actor, at)?)
        }
        OperatorWrite::DeleteLexiconEntry { term, actor, at } => {
            Written::Version(delete_entry_in(c, &term, &actor, at)?)
        }
        OperatorWrite::PutBundle { bundle, at } => {
            Written::Bundle(super::bundles::put_bundle_in(c, &bundle, at)?)
        }
        OperatorWrite::PutOperator(op) => {
            let scopes = serde_json::to_string(&op.scopes).map_err(super::db)?;
            c.execute(
                "INSERT INTO operators(name, role, scopes, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![op.name, op.role, scopes, op.token_hash, op.created_at],
            )
            .map_err(|e| {
                if super::is_constraint(&e) {
                    StoreError::Conflict("an operator with this name exists or existed")
                } else {
                    e.into()
                }
            })?;
            Written::Done
        }
        OperatorWrite::RevokeOperator { name, at } => {
            let role: Option<String> = c
                .query_row(
                    "SELECT role FROM operators WHERE name = ?1 AND revoked_at IS NULL",
                    [&name],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(role) = role else {
                return Err(StoreError::NotFound);
            };
            if role == Role::Admin.as_str() {
                let admins: i64 = c.query_row(
                    "SELECT COUNT(*) FROM operators WHERE role = ?1 AND revoked_at IS NULL",
                    [Role::Admin.as_str()],
                    |r| r.get(0),
                )?;
                if admins <= 1 {
                    return Err(StoreError::InvalidState("the last active admin"));
                }
            }
            c.execute(
                "UPDATE operators SET revoked_at = ?2 WHERE name = ?1",
                params![name, at],
            )?;
            Written::Done
        }
    })
}

impl OperatorStore for SqliteStore {
    fn operator_by_token(&self, token_hash: &str) -> StoreResult<Option<OperatorRecord>> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT name, role, scopes, created_at, revoked_at FROM operators
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&hash], operator_row)
            .optional()?
            .map(with_scopes)
            .transpose()
        })
    }

    fn operators(&self) -> StoreResult<Vec<OperatorRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, role, scopes, created_at, revoked_at FROM operators ORDER BY name",
            )?;
            let rows = stmt
                .query_map([], operator_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(with_scopes).collect()
        })
    }

    fn ensure_bootstrap(&self, token_hash: &str, at: i64) -> StoreResult<Bootstrap> {
        let hash = token_hash.to_owned();
        self.write(move |c| {
            let row: Option<(String, Option<i64>)> = c
                .query_row(
                    "SELECT token_hash, revoked_at FROM operators WHERE name = ?1",
                    [BOOTSTRAP_OPERATOR],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let outcome = match row {
                Some((_, Some(_))) => return Ok(Bootstrap::Revoked),
                Some((old, None)) if old == hash => return Ok(Bootstrap::Unchanged),
                Some(_) => {
                    c.execute(
                        "UPDATE operators SET token_hash = ?2 WHERE name = ?1",
                        params![BOOTSTRAP_OPERATOR, hash],
                    )?;
                    Bootstrap::Rotated
                }
                None => {
                    c.execute(
                        "INSERT INTO operators(name, role, scopes, token_hash, created_at)
                         VALUES (?1, ?2, '[]', ?3, ?4)",
                        params![BOOTSTRAP_OPERATOR, Role::Admin.as_str(), hash, at],
                    )?;
                    Bootstrap::Created
                }
            };
            let action = match outcome {
                Bootstrap::Created => "operator.bootstrap",
                _ => "operator.bootstrap_rotate",
            };
            append_in(
                c,
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
        let entry = entry.clone();
        self.write(move |c| {
            let written = perform(c, write)?;
            append_in(c, &entry)?;
            Ok(written)
        })
    }

    fn audit_log(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let f = filter.clone();
        self.read(move |c| {
            // The newest `limit` matching rows, returned oldest first.
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, role, action, target, outcome, prev, hash FROM audit
                 WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
                   AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4)
                 ORDER BY seq DESC LIMIT ?5",
            )?;
            let limit = f.limit.map_or(-1, i64::from);
            let mut rows = stmt
                .query_map(params![f.actor, f.action, f.since, f.until, limit], |r| {
                    Ok(AuditRow {
                        seq: super::to_u64(r.get(0)?),
                        entry: AuditEntry {
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            role: r.get(3)?,
                            action: r.get(4)?,
                            target: r.get(5)?,
                            outcome: r.get(6)?,
                        },
                        prev: r.get(7)?,
                        hash: r.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.reverse();
            Ok(rows)
        })
    }
}
