//! [`SubmissionStore`] on PostgreSQL: exactly once across replicas. The
//! dedupe row's primary key is the client id; a retry racing the first
//! attempt on another replica waits on that key (`ON CONFLICT DO NOTHING`
//! blocks until the first transaction ends), then reads the receipt it
//! stored. The dedupe row, the submission, its attachment links and its
//! first event are one transaction. Tracking numbers come from
//! `tracking_seq` (a number lost to a rolled-back attempt is never reused).

use super::Tx;

use super::events::append_event;
use super::{PgStore, db, to_i64, to_u64};
use crate::store::submissions::tracking_number;
use crate::store::{
    NewSubmission, Receipt, StatusEvent, StoreError, StoreResult, SubmissionRecord,
    SubmissionStore, Submitted,
};

pub(super) fn receipt_of(json: &str) -> StoreResult<Receipt> {
    serde_json::from_str(json).map_err(db)
}

pub(super) fn record(
    receipt: &str,
    state: String,
    body: &str,
    form_version: i64,
) -> StoreResult<SubmissionRecord> {
    Ok(SubmissionRecord {
        receipt: receipt_of(receipt)?,
        state,
        values: serde_json::from_str(body).map_err(db)?,
        form_version: u32::try_from(form_version).map_err(db)?,
    })
}

fn stored(tx: &mut Tx<'_>, client_id: &str) -> StoreResult<Option<(String, String, String)>> {
    Ok(tx
        .query_opt(
            "SELECT resident_id, request_hash, receipt FROM submission_dedupe WHERE client_id = $1",
            &[&client_id],
        )?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

fn retry(s: &NewSubmission, owner: &str, hash: &str, receipt: &str) -> StoreResult<Submitted> {
    if owner != s.resident_id {
        return Err(StoreError::Conflict(
            "client id belongs to another resident",
        ));
    }
    if hash != s.request_hash {
        return Err(StoreError::Conflict(
            "client id reused for a different submission",
        ));
    }
    Ok(Submitted {
        receipt: receipt_of(receipt)?,
        fresh: false,
    })
}

pub(super) fn transition_in(
    tx: &mut Tx<'_>,
    tracking_number: &str,
    from: &str,
    state: &str,
    note: Option<&str>,
    at: i64,
) -> StoreResult<StatusEvent> {
    let row = tx.query_opt(
        "UPDATE submissions SET state = $3 WHERE tracking_number = $1 AND state = $2
             RETURNING client_id, resident_id",
        &[&tracking_number, &from, &state],
    )?;
    let Some(row) = row else {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM submissions WHERE tracking_number = $1",
                &[&tracking_number],
            )?
            .is_some();
        return Err(if exists {
            StoreError::InvalidState("the submission's state changed meanwhile")
        } else {
            StoreError::NotFound
        });
    };
    let (client_id, resident_id): (String, String) = (row.get(0), row.get(1));
    append_event(
        tx,
        &resident_id,
        &client_id,
        tracking_number,
        state,
        note,
        at,
    )
}

/// Checks that every attachment `s` references is a complete upload of
/// the resident's with that size; `FOR SHARE` keeps each upload as checked
/// until commit.
pub(super) fn check_attachments_in(tx: &mut Tx<'_>, s: &NewSubmission) -> StoreResult<()> {
    for a in &s.attachments {
        let complete = tx
            .query_opt(
                "SELECT 1 FROM attachment_uploads
                 WHERE resident_id = $1 AND sha256 = $2 AND complete AND size = $3
                 FOR SHARE",
                &[&s.resident_id, &a.sha256, &to_i64(a.size)],
            )?
            .is_some();
        if !complete {
            return Err(StoreError::InvalidState(
                "a referenced attachment is not a complete upload of the resident's",
            ));
        }
    }
    Ok(())
}

/// The next tracking number from `tracking_seq` (never reused, even when
/// the transaction rolls back).
pub(super) fn next_tracking_in(tx: &mut Tx<'_>, area_code: &str, at: i64) -> StoreResult<String> {
    let n: i64 = tx.query_one("SELECT nextval('tracking_seq')", &[])?.get(0);
    Ok(tracking_number(area_code, at, to_u64(n)))
}

/// Inserts the dedupe row of `s` with its receipt; false if the id has one
/// already (after waiting for a concurrent transaction that holds it).
pub(super) fn insert_dedupe_in(
    tx: &mut Tx<'_>,
    s: &NewSubmission,
    receipt: &Receipt,
) -> StoreResult<bool> {
    let receipt_json = serde_json::to_string(receipt).map_err(db)?;
    let inserted = tx.execute(
        "INSERT INTO submission_dedupe(client_id, resident_id, request_hash, receipt, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO NOTHING",
        &[
            &s.client_id,
            &s.resident_id,
            &s.request_hash,
            &receipt_json,
            &s.at,
        ],
    )?;
    Ok(inserted == 1)
}

/// Writes the submission row, its attachment links and its first event
/// (after its dedupe row), the event through the resident's feed lock.
pub(super) fn insert_rows_in(
    tx: &mut Tx<'_>,
    s: &NewSubmission,
    tracking_number: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO submissions(client_id, resident_id, device_id, guide_id, form_version, body,
             tracking_number, state, created_at, department_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8, $9)",
        &[
            &s.client_id,
            &s.resident_id,
            &s.device_id,
            &s.guide_id,
            &i64::from(s.form_version),
            &s.body,
            &tracking_number,
            &s.at,
            &s.department_code,
        ],
    )?;
    for a in &s.attachments {
        tx.execute(
            "INSERT INTO submission_attachments(client_id, field, resident_id, sha256, size, media_type, name)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&s.client_id, &a.field, &s.resident_id, &a.sha256, &to_i64(a.size), &a.media_type, &a.name],
        )?;
    }
    append_event(
        tx,
        &s.resident_id,
        &s.client_id,
        tracking_number,
        "submitted",
        None,
        s.at,
    )?;
    Ok(())
}

impl SubmissionStore for PgStore {
    fn receipt(&self, client_id: &str) -> StoreResult<Option<(String, String, Receipt)>> {
        self.read(|tx| {
            stored(tx, client_id)?
                .map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
                .transpose()
        })
    }

    fn submit(&self, s: &NewSubmission) -> StoreResult<Submitted> {
        self.write(|tx| {
            if let Some((owner, hash, receipt)) = stored(tx, &s.client_id)? {
                return retry(s, &owner, &hash, &receipt);
            }
            // Checked before a tracking number is taken: `tracking_seq` does
            // not roll back, and a refused submission must use no number.
            check_attachments_in(tx, s)?;
            let tracking_number = next_tracking_in(tx, &s.area_code, s.at)?;
            let receipt = Receipt {
                client_id: s.client_id.clone(),
                tracking_number: tracking_number.clone(),
                guide_id: s.guide_id.clone(),
                accepted_at: s.at,
            };
            // Waits for a concurrent attempt with this id on any replica;
            // then either inserts or does nothing.
            if !insert_dedupe_in(tx, s, &receipt)? {
                // Read committed: this statement sees the winner's row.
                let (owner, hash, receipt) = stored(tx, &s.client_id)?.ok_or(
                    StoreError::Database("a concurrent submission with this id vanished".into()),
                )?;
                return retry(s, &owner, &hash, &receipt);
            }
            insert_rows_in(tx, s, &tracking_number)?;
            Ok(Submitted {
                receipt,
                fresh: true,
            })
        })
    }

    fn submissions_of(&self, resident_id: &str) -> StoreResult<Vec<SubmissionRecord>> {
        self.read(|tx| {
            tx.query(
                "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                 JOIN submission_dedupe d ON d.client_id = s.client_id
                 WHERE s.resident_id = $1 ORDER BY s.created_at DESC, s.tracking_number DESC",
                &[&resident_id],
            )?
            .iter()
            .map(|r| record(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
        })
    }

    fn submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        self.read(|tx| {
            tx.query_opt(
                "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                 JOIN submission_dedupe d ON d.client_id = s.client_id
                 WHERE s.resident_id = $1 AND s.client_id = $2",
                &[&resident_id, &client_id],
            )?
            .map(|r| record(r.get(0), r.get(1), r.get(2), r.get(3)))
            .transpose()
        })
    }

    fn transition(
        &self,
        tracking_number: &str,
        from: &str,
        state: &str,
        note: Option<&str>,
        at: i64,
    ) -> StoreResult<StatusEvent> {
        self.write(|tx| transition_in(tx, tracking_number, from, state, note, at))
    }

    fn submission_department(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT department_code FROM submissions WHERE tracking_number = $1",
                    &[&tracking_number],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn state_of(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT state FROM submissions WHERE tracking_number = $1",
                    &[&tracking_number],
                )?
                .map(|r| r.get(0)))
        })
    }
}
