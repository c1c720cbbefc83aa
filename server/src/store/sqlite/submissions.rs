//! [`SubmissionStore`] on SQLite: the dedupe row, the submission, its
//! attachment links and its first event in one savepoint of the writer's
//! transaction; tracking numbers from the `tracking` counter.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::attachments::upload_row;
use super::{SqliteStore, db, next_counter, owned, to_i64, to_u64};
use crate::store::submissions::tracking_number;
use crate::store::{
    NewSubmission, Receipt, StatusEvent, StoreError, StoreResult, SubmissionRecord,
    SubmissionStore, Submitted,
};

pub(super) fn transition_in(
    c: &Connection,
    tracking_number: String,
    from: &str,
    state: String,
    note: Option<String>,
    at: i64,
) -> StoreResult<StatusEvent> {
    let (client_id, resident_id): (String, String) = c.query_row(
        "SELECT client_id, resident_id FROM submissions WHERE tracking_number = ?1",
        [&tracking_number],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let changed = c.execute(
        "UPDATE submissions SET state = ?3 WHERE tracking_number = ?1 AND state = ?2",
        params![tracking_number, from, state],
    )?;
    if changed == 0 {
        return Err(StoreError::InvalidState(
            "the submission's state changed meanwhile",
        ));
    }
    c.execute(
        "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![client_id, resident_id, tracking_number, state, note, at],
    )?;
    let seq = c.last_insert_rowid();
    Ok(StatusEvent {
        seq: to_u64(seq),
        client_id,
        tracking_number,
        state,
        note,
        at,
    })
}

pub(super) fn receipt_of(json: &str) -> StoreResult<Receipt> {
    serde_json::from_str(json).map_err(db)
}

pub(super) fn receipt_row(
    conn: &Connection,
    client_id: &str,
) -> StoreResult<Option<(String, String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT resident_id, request_hash, receipt FROM submission_dedupe WHERE client_id = ?1",
        )?
        .query_row([client_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

pub(super) fn record(
    receipt: &str,
    state: String,
    body: &str,
    form_version: u32,
) -> StoreResult<SubmissionRecord> {
    Ok(SubmissionRecord {
        receipt: receipt_of(receipt)?,
        state,
        values: serde_json::from_str(body).map_err(db)?,
        form_version,
    })
}

/// Stores a submission in the caller's transaction: its dedupe row, the
/// submission, its attachment links and its first event, or the stored
/// receipt for a retry (`fresh: false`); `Conflict` for another resident's
/// or another request's use of the id.
pub(super) fn submit_in(c: &Connection, s: &NewSubmission) -> StoreResult<Submitted> {
    if let Some((owner, hash, receipt)) = receipt_row(c, &s.client_id)? {
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
        return Ok(Submitted {
            receipt: receipt_of(&receipt)?,
            fresh: false,
        });
    }
    let n = next_counter(c, "tracking")?;
    let tracking_number = tracking_number(&s.area_code, s.at, n);
    insert_in(c, s, &tracking_number)?;
    Ok(Submitted {
        receipt: Receipt {
            client_id: s.client_id.clone(),
            tracking_number,
            guide_id: s.guide_id.clone(),
            accepted_at: s.at,
        },
        fresh: true,
    })
}

/// Writes a new submission under `tracking_number` in the caller's
/// transaction (no dedupe row for the id may exist yet).
pub(super) fn insert_in(
    c: &Connection,
    s: &NewSubmission,
    tracking_number: &str,
) -> StoreResult<()> {
    let receipt = Receipt {
        client_id: s.client_id.clone(),
        tracking_number: tracking_number.to_owned(),
        guide_id: s.guide_id.clone(),
        accepted_at: s.at,
    };
    let receipt_json = serde_json::to_string(&receipt).map_err(db)?;
    c.prepare_cached(
        "INSERT INTO submission_dedupe(client_id, resident_id, request_hash, receipt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        s.client_id,
        s.resident_id,
        s.request_hash,
        receipt_json,
        s.at
    ])?;
    c.prepare_cached(
        "INSERT INTO submissions(client_id, resident_id, device_id, guide_id, form_version, body,
             tracking_number, state, created_at, department_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'submitted', ?8, ?9)",
    )?
    .execute(params![
        s.client_id,
        s.resident_id,
        s.device_id,
        s.guide_id,
        s.form_version,
        s.body,
        tracking_number,
        s.at,
        s.department_code
    ])?;
    for a in &s.attachments {
        let complete = upload_row(c, &s.resident_id, &a.sha256)?
            .is_some_and(|u| u.complete && u.size == a.size);
        if !complete {
            return Err(StoreError::InvalidState(
                "a referenced attachment is not a complete upload of the resident's",
            ));
        }
        c.prepare_cached(
            "INSERT INTO submission_attachments(client_id, field, resident_id, sha256, size, media_type, name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![s.client_id, a.field, s.resident_id, a.sha256, to_i64(a.size), a.media_type, a.name])?;
    }
    c.prepare_cached(
        "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
         VALUES (?1, ?2, ?3, 'submitted', NULL, ?4)",
    )?
    .execute(params![s.client_id, s.resident_id, tracking_number, s.at])?;
    Ok(())
}

impl SubmissionStore for SqliteStore {
    fn receipt(&self, client_id: &str) -> StoreResult<Option<(String, String, Receipt)>> {
        let client_id = owned(client_id);
        self.read(move |c| {
            receipt_row(c, &client_id)?
                .map(|(owner, hash, receipt)| Ok((owner, hash, receipt_of(&receipt)?)))
                .transpose()
        })
    }

    fn submit(&self, s: &NewSubmission) -> StoreResult<Submitted> {
        let s = s.clone();
        self.write(move |c| submit_in(c, &s))
    }

    fn submissions_of(&self, resident_id: &str) -> StoreResult<Vec<SubmissionRecord>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                 JOIN submission_dedupe d ON d.client_id = s.client_id
                 WHERE s.resident_id = ?1 ORDER BY s.created_at DESC, s.tracking_number DESC",
            )?;
            let rows = stmt
                .query_map([&resident_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(receipt, state, body, v)| record(&receipt, state, &body, v))
                .collect()
        })
    }

    fn submission(
        &self,
        resident_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        let (resident_id, client_id) = (owned(resident_id), owned(client_id));
        self.read(move |c| {
            let row: Option<(String, String, String, u32)> = c
                .query_row(
                    "SELECT d.receipt, s.state, s.body, s.form_version FROM submissions s
                     JOIN submission_dedupe d ON d.client_id = s.client_id
                     WHERE s.resident_id = ?1 AND s.client_id = ?2",
                    [&resident_id, &client_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            row.map(|(receipt, state, body, v)| record(&receipt, state, &body, v))
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
        let (tracking_number, from, state, note) = (
            owned(tracking_number),
            owned(from),
            owned(state),
            note.map(owned),
        );
        self.write(move |c| transition_in(c, tracking_number, &from, state, note, at))
    }

    fn submission_department(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT department_code FROM submissions WHERE tracking_number = ?1",
                [&tracking_number],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn state_of(&self, tracking_number: &str) -> StoreResult<Option<String>> {
        let tracking_number = owned(tracking_number);
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT state FROM submissions WHERE tracking_number = ?1",
                [&tracking_number],
                |r| r.get(0),
            )
            .optional()?)
        })
    }
}
