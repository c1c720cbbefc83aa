//! [`BundleStore`] on SQLite: published bundles in `bundles` (each change
//! takes the next value of the `bundles` counter, the list's version), a
//! bundle application's dedupe row in `bundle_submissions` and its member
//! submissions (written with the submissions' own [`insert_in`]) linked in
//! `bundle_members`. Everything one call writes is one savepoint of the
//! single writer's transaction, so a retry (or a concurrent one) finds
//! either the whole application or none of it; the PostgreSQL backend
//! holds the same contract with unique keys and row locks.

use rusqlite::{Connection, OptionalExtension as _, params};
use zhangban_core::bundle::Bundle;

use super::submissions::{insert_in, receipt_row, record};
use super::{ReadTx, SqliteStore, db, next_counter, owned, to_u64};
use crate::store::bundles::{
    BundleList, BundleMemberRecord, BundlePut, BundleReceipt, BundleRecord, BundleStore,
    BundleSubmitted, MemberReceipt, NewBundleSubmission, derived_state,
};
use crate::store::submissions::tracking_number;
use crate::store::{Receipt, StoreError, StoreResult};

fn list_version_in(c: &Connection) -> StoreResult<u64> {
    let v: Option<i64> = c
        .query_row(
            "SELECT value FROM counters WHERE name = 'bundles'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map_or(0, to_u64))
}

fn receipt_of(json: &str) -> StoreResult<BundleReceipt> {
    serde_json::from_str(json).map_err(db)
}

fn stored(c: &Connection, client_id: &str) -> StoreResult<Option<(String, String, String)>> {
    Ok(c.prepare_cached(
        "SELECT resident_id, request_hash, receipt FROM bundle_submissions WHERE client_id = ?1",
    )?
    .query_row([client_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()?)
}

/// A bundle application with its members' current states, in one snapshot
/// (the caller's).
fn record_in(c: &Connection, receipt: &str) -> StoreResult<BundleRecord> {
    let receipt = receipt_of(receipt)?;
    let mut stmt = c.prepare_cached(
        "SELECT m.member, d.receipt, s.state, s.body, s.form_version FROM bundle_members m
         JOIN submissions s ON s.client_id = m.client_id
         JOIN submission_dedupe d ON d.client_id = m.client_id
         WHERE m.bundle_client_id = ?1 ORDER BY m.position",
    )?;
    let rows = stmt
        .query_map([&receipt.client_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let members = rows
        .into_iter()
        .map(|(member, receipt, state, body, v)| {
            Ok(BundleMemberRecord {
                member,
                submission: record(&receipt, state, &body, v)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let state = derived_state(members.iter().map(|m| m.submission.state.as_str())).to_owned();
    Ok(BundleRecord {
        receipt,
        state,
        members,
    })
}

fn retry(
    b: &NewBundleSubmission,
    owner: &str,
    hash: &str,
    receipt: &str,
) -> StoreResult<BundleSubmitted> {
    if owner != b.resident_id {
        return Err(StoreError::Conflict(
            "client id belongs to another resident",
        ));
    }
    if hash != b.request_hash {
        return Err(StoreError::Conflict(
            "client id reused for a different submission",
        ));
    }
    Ok(BundleSubmitted {
        receipt: receipt_of(receipt)?,
        fresh: false,
    })
}

impl BundleStore for SqliteStore {
    fn put_bundle(&self, bundle: &Bundle, at: i64) -> StoreResult<BundlePut> {
        let bundle = bundle.clone();
        self.write(move |c| put_bundle_in(c, &bundle, at))
    }

    fn bundles_version(&self) -> StoreResult<u64> {
        self.read(list_version_in)
    }

    fn bundles(&self) -> StoreResult<BundleList> {
        self.read(|c| {
            let tx = ReadTx::begin(c)?;
            let version = list_version_in(c)?;
            let mut stmt = c.prepare_cached("SELECT body FROM bundles ORDER BY id")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            tx.end()?;
            let bundles = bodies
                .iter()
                .map(|b| serde_json::from_str(b).map_err(db))
                .collect::<StoreResult<_>>()?;
            Ok(BundleList { version, bundles })
        })
    }

    fn bundle(&self, id: &str) -> StoreResult<Option<Bundle>> {
        let id = owned(id);
        self.read(move |c| {
            let body: Option<String> = c
                .prepare_cached("SELECT body FROM bundles WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            body.map(|b| serde_json::from_str(&b).map_err(db))
                .transpose()
        })
    }

    fn bundle_receipt(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<(String, String, BundleReceipt)>> {
        let client_id = owned(client_id);
        self.read(move |c| {
            stored(c, &client_id)?
                .map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
                .transpose()
        })
    }

    fn submit_bundle(&self, b: &NewBundleSubmission) -> StoreResult<BundleSubmitted> {
        let b = b.clone();
        self.write(move |c| {
            if let Some((owner, hash, receipt)) = stored(c, &b.client_id)? {
                return retry(&b, &owner, &hash, &receipt);
            }
            let n = next_counter(c, "tracking")?;
            let tracking = tracking_number(&b.area_code, b.at, n);
            let mut members = Vec::with_capacity(b.members.len());
            for m in &b.members {
                let s = &m.submission;
                if receipt_row(c, &s.client_id)?.is_some() {
                    return Err(StoreError::Conflict("a member's client id is taken"));
                }
                let n = next_counter(c, "tracking")?;
                let member_tracking = tracking_number(&s.area_code, s.at, n);
                insert_in(c, s, &member_tracking)?;
                members.push(MemberReceipt {
                    member: m.key.clone(),
                    receipt: Receipt {
                        client_id: s.client_id.clone(),
                        tracking_number: member_tracking,
                        guide_id: s.guide_id.clone(),
                        accepted_at: s.at,
                    },
                });
            }
            let receipt = BundleReceipt {
                client_id: b.client_id.clone(),
                tracking_number: tracking.clone(),
                bundle_id: b.bundle_id.clone(),
                bundle_version: b.bundle_version,
                accepted_at: b.at,
                members,
            };
            let receipt_json = serde_json::to_string(&receipt).map_err(db)?;
            c.prepare_cached(
                "INSERT INTO bundle_submissions(client_id, resident_id, request_hash, bundle_id,
                     bundle_version, body, tracking_number, receipt, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                b.client_id,
                b.resident_id,
                b.request_hash,
                b.bundle_id,
                b.bundle_version,
                b.body,
                tracking,
                receipt_json,
                b.at
            ])?;
            for (i, m) in receipt.members.iter().enumerate() {
                c.prepare_cached(
                    "INSERT INTO bundle_members(bundle_client_id, member, position, client_id)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    b.client_id,
                    m.member,
                    i64::try_from(i).unwrap_or(i64::MAX),
                    m.receipt.client_id
                ])?;
            }
            Ok(BundleSubmitted {
                receipt,
                fresh: true,
            })
        })
    }

    fn bundle_submissions_of(&self, resident_id: &str) -> StoreResult<Vec<BundleRecord>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let tx = ReadTx::begin(c)?;
            let mut stmt = c.prepare_cached(
                "SELECT receipt FROM bundle_submissions WHERE resident_id = ?1
                 ORDER BY created_at DESC, tracking_number DESC",
            )?;
            let receipts = stmt
                .query_map([&resident_id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            let records = receipts
                .iter()
                .map(|r| record_in(c, r))
                .collect::<StoreResult<Vec<_>>>()?;
            tx.end()?;
            Ok(records)
        })
    }

    fn bundle_submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<BundleRecord>> {
        let (resident_id, client_id) = (owned(resident_id), owned(client_id));
        self.read(move |c| {
            let tx = ReadTx::begin(c)?;
            let receipt: Option<String> = c
                .prepare_cached(
                    "SELECT receipt FROM bundle_submissions WHERE resident_id = ?1 AND client_id = ?2",
                )?
                .query_row([&resident_id, &client_id], |r| r.get(0))
                .optional()?;
            let record = receipt.map(|r| record_in(c, &r)).transpose()?;
            tx.end()?;
            Ok(record)
        })
    }
}

/// Publishes a bundle in the caller's transaction (the operator's audited
/// write); see [`crate::store::bundles`] for the version rules.
pub(super) fn put_bundle_in(c: &Connection, bundle: &Bundle, at: i64) -> StoreResult<BundlePut> {
    let body = serde_json::to_string(bundle).map_err(db)?;
    let current: Option<(i64, String)> = c
        .prepare_cached("SELECT version, body FROM bundles WHERE id = ?1")?
        .query_row([&bundle.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((version, stored)) = current {
        let version = to_u64(version);
        if version == u64::from(bundle.version) && stored == body {
            return Ok(BundlePut {
                list_version: list_version_in(c)?,
                changed: false,
            });
        }
        if version >= u64::from(bundle.version) {
            return Err(StoreError::Conflict(
                "a bundle's version must rise with every change",
            ));
        }
    }
    let list_version = next_counter(c, "bundles")?;
    c.prepare_cached(
        "INSERT INTO bundles(id, version, body, list_version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body,
             list_version = excluded.list_version, updated_at = excluded.updated_at",
    )?
    .execute(params![
        bundle.id,
        bundle.version,
        body,
        super::to_i64(list_version),
        at
    ])?;
    Ok(BundlePut {
        list_version,
        changed: true,
    })
}
