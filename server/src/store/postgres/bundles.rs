//! [`BundleStore`] on PostgreSQL: published bundles in `bundles`, a bundle
//! application's dedupe row in `bundle_submissions` and its member
//! submissions (written with the submissions' own helpers) linked in
//! `bundle_members`.
//!
//! Correct across replicas:
//! - every bundle publication first locks the `bundles` counter row and
//!   holds it to commit, so publishers on all replicas serialise: the
//!   version check (a bundle's version must rise) reads what the previous
//!   publisher committed, and list versions never repeat;
//! - a bundle application inserts its dedupe row with `ON CONFLICT DO
//!   NOTHING` before any member: a retry racing on another replica waits on
//!   that key until the first transaction ends, then reads its receipt
//!   (read committed), so the members are written exactly once; each
//!   member's own dedupe row is inserted the same way, and a member id
//!   taken already refuses the whole application;
//! - every member's first event goes through [`append_event`] (the
//!   resident's feed lock), via the submissions' `insert_rows_in`.
//!
//! [`append_event`]: super::events::append_event

use super::Tx;
use zhangban_core::bundle::Bundle;

use super::submissions::{
    check_attachments_in, insert_dedupe_in, insert_rows_in, next_tracking_in, record,
};
use super::{PgStore, db, next_counter, to_i64, to_u64};
use crate::store::bundles::{
    BundleList, BundleMemberRecord, BundlePut, BundleReceipt, BundleRecord, BundleStore,
    BundleSubmitted, MemberReceipt, NewBundleSubmission, derived_state,
};
use crate::store::{Receipt, StoreError, StoreResult};

fn list_version_in(tx: &mut Tx<'_>) -> StoreResult<u64> {
    Ok(tx
        .query_opt("SELECT value FROM counters WHERE name = 'bundles'", &[])?
        .map_or(0, |r| to_u64(r.get(0))))
}

fn receipt_of(json: &str) -> StoreResult<BundleReceipt> {
    serde_json::from_str(json).map_err(db)
}

fn stored(tx: &mut Tx<'_>, client_id: &str) -> StoreResult<Option<(String, String, String)>> {
    Ok(tx
        .query_opt(
            "SELECT resident_id, request_hash, receipt FROM bundle_submissions WHERE client_id = $1",
            &[&client_id],
        )?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
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

/// A bundle application with its members' current states (the caller's
/// snapshot).
fn record_in(tx: &mut Tx<'_>, receipt: &str) -> StoreResult<BundleRecord> {
    let receipt = receipt_of(receipt)?;
    let members = tx
        .query(
            "SELECT m.member, d.receipt, s.state, s.body, s.form_version FROM bundle_members m
             JOIN submissions s ON s.client_id = m.client_id
             JOIN submission_dedupe d ON d.client_id = m.client_id
             WHERE m.bundle_client_id = $1 ORDER BY m.position",
            &[&receipt.client_id],
        )?
        .iter()
        .map(|r| {
            Ok(BundleMemberRecord {
                member: r.get(0),
                submission: record(r.get(1), r.get(2), r.get(3), r.get(4))?,
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

/// Publishes a bundle in the caller's transaction (the operator's audited
/// write) under the `bundles` counter row's lock; see
/// [`crate::store::bundles`] for the version rules.
pub(super) fn put_bundle_in(tx: &mut Tx<'_>, bundle: &Bundle, at: i64) -> StoreResult<BundlePut> {
    // The publishers' lock: held to commit.
    let current_list = tx
        .query_one(
            "SELECT value FROM counters WHERE name = 'bundles' FOR UPDATE",
            &[],
        )?
        .get::<_, i64>(0);
    let body = serde_json::to_string(bundle).map_err(db)?;
    let current = tx
        .query_opt(
            "SELECT version, body FROM bundles WHERE id = $1",
            &[&bundle.id],
        )?
        .map(|r| (to_u64(r.get(0)), r.get::<_, String>(1)));
    if let Some((version, stored)) = current {
        if version == u64::from(bundle.version) && stored == body {
            return Ok(BundlePut {
                list_version: to_u64(current_list),
                changed: false,
            });
        }
        if version >= u64::from(bundle.version) {
            return Err(StoreError::Conflict(
                "a bundle's version must rise with every change",
            ));
        }
    }
    let list_version = next_counter(tx, "bundles")?;
    tx.execute(
        "INSERT INTO bundles(id, version, body, list_version, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body,
             list_version = excluded.list_version, updated_at = excluded.updated_at",
        &[
            &bundle.id,
            &i64::from(bundle.version),
            &body,
            &to_i64(list_version),
            &at,
        ],
    )?;
    Ok(BundlePut {
        list_version,
        changed: true,
    })
}

impl BundleStore for PgStore {
    fn put_bundle(&self, bundle: &Bundle, at: i64) -> StoreResult<BundlePut> {
        self.write(|tx| put_bundle_in(tx, bundle, at))
    }

    fn bundles_version(&self) -> StoreResult<u64> {
        self.read(list_version_in)
    }

    fn bundles(&self) -> StoreResult<BundleList> {
        // One snapshot: the version names the list sent.
        self.read(|tx| {
            let version = list_version_in(tx)?;
            let bundles = tx
                .query("SELECT body FROM bundles ORDER BY id", &[])?
                .iter()
                .map(|r| serde_json::from_str(r.get(0)).map_err(db))
                .collect::<StoreResult<_>>()?;
            Ok(BundleList { version, bundles })
        })
    }

    fn bundle(&self, id: &str) -> StoreResult<Option<Bundle>> {
        self.read(|tx| {
            tx.query_opt("SELECT body FROM bundles WHERE id = $1", &[&id])?
                .map(|r| serde_json::from_str(r.get(0)).map_err(db))
                .transpose()
        })
    }

    fn bundle_receipt(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<(String, String, BundleReceipt)>> {
        self.read(|tx| {
            stored(tx, client_id)?
                .map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
                .transpose()
        })
    }

    fn submit_bundle(&self, b: &NewBundleSubmission) -> StoreResult<BundleSubmitted> {
        self.write(|tx| {
            if let Some((owner, hash, receipt)) = stored(tx, &b.client_id)? {
                return retry(b, &owner, &hash, &receipt);
            }
            // Before any tracking number is taken (`tracking_seq` does not
            // roll back): a refused application uses no number.
            for m in &b.members {
                check_attachments_in(tx, &m.submission)?;
            }
            let tracking = next_tracking_in(tx, &b.area_code, b.at)?;
            let mut members = Vec::with_capacity(b.members.len());
            for m in &b.members {
                let s = &m.submission;
                members.push(MemberReceipt {
                    member: m.key.clone(),
                    receipt: Receipt {
                        client_id: s.client_id.clone(),
                        tracking_number: next_tracking_in(tx, &s.area_code, s.at)?,
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
            // Waits for a concurrent attempt with this id on any replica;
            // then either inserts or does nothing.
            let inserted = tx.execute(
                "INSERT INTO bundle_submissions(client_id, resident_id, request_hash, bundle_id,
                     bundle_version, body, tracking_number, receipt, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (client_id) DO NOTHING",
                &[
                    &b.client_id,
                    &b.resident_id,
                    &b.request_hash,
                    &b.bundle_id,
                    &i64::from(b.bundle_version),
                    &b.body,
                    &tracking,
                    &receipt_json,
                    &b.at,
                ],
            )?;
            if inserted == 0 {
                // Read committed: this statement sees the winner's row.
                let (owner, hash, receipt) =
                    stored(tx, &b.client_id)?.ok_or(StoreError::Database(
                        "a concurrent bundle submission with this id vanished".into(),
                    ))?;
                return retry(b, &owner, &hash, &receipt);
            }
            for (i, (m, r)) in b.members.iter().zip(&receipt.members).enumerate() {
                if !insert_dedupe_in(tx, &m.submission, &r.receipt)? {
                    return Err(StoreError::Conflict("a member's client id is taken"));
                }
                insert_rows_in(tx, &m.submission, &r.receipt.tracking_number)?;
                tx.execute(
                    "INSERT INTO bundle_members(bundle_client_id, member, position, client_id)
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &b.client_id,
                        &m.key,
                        &i64::try_from(i).unwrap_or(i64::MAX),
                        &m.submission.client_id,
                    ],
                )?;
            }
            Ok(BundleSubmitted {
                receipt,
                fresh: true,
            })
        })
    }

    fn bundle_submissions_of(&self, resident_id: &str) -> StoreResult<Vec<BundleRecord>> {
        self.read(|tx| {
            let receipts: Vec<String> = tx
                .query(
                    "SELECT receipt FROM bundle_submissions WHERE resident_id = $1
                     ORDER BY created_at DESC, tracking_number DESC",
                    &[&resident_id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            receipts.iter().map(|r| record_in(tx, r)).collect()
        })
    }

    fn bundle_submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<BundleRecord>> {
        self.read(|tx| {
            let receipt: Option<String> = tx
                .query_opt(
                    "SELECT receipt FROM bundle_submissions WHERE resident_id = $1 AND client_id = $2",
                    &[&resident_id, &client_id],
                )?
                .map(|r| r.get(0));
            receipt.map(|r| record_in(tx, &r)).transpose()
        })
    }
}
