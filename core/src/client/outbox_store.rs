//! The outbox table and the receipts, on the client store. Each write is one
//! immediate transaction: queueing writes the draft and its outbox entry
//! together; accepting writes the receipt and the entry's new state
//! together, so nothing is ever marked delivered without its receipt.

use rusqlite::{OptionalExtension as _, Transaction, params};
use serde::Serialize;
use serde_json::{Map, Value};

use super::drafts::Draft;
use super::error::{ClientError, ClientResult};
use super::personal::{open_text, seal_text};
use super::sealing::{Sealer, Slot};
use super::store::{ClientStore, meta_in, set_meta_in};
use crate::outbox::{EntryView, OutboxState, Transition};

const LAST_ATTEMPT_KEY: &str = "outbox_last_attempt_at";

/// One submission in the outbox, as the resident sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    /// The client-generated id (the server's idempotency key).
    pub client_id: String,
    /// The draft it was made from.
    pub draft_id: String,
    /// The service guide.
    pub guide_id: String,
    /// The form schema version the values were filled against.
    pub form_version: u32,
    /// The values as the resident filled them (licences by wallet reference).
    pub values: Map<String, Value>,
    /// Its state.
    pub state: OutboxState,
    /// Sends started so far.
    pub attempts: u32,
    /// When it is sent next (for `queued` and `failed`).
    pub next_attempt_at: i64,
    /// The last error's code, if any.
    pub last_error: Option<String>,
    /// The server's per-field errors, for a rejected entry.
    pub errors: Option<Value>,
    /// The tracking number, once accepted.
    pub tracking_number: Option<String>,
    /// The latest status the server reported (`submitted`, `accepted` …).
    pub status: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// The frozen request body, once built (sent identically on every retry).
    #[serde(skip)]
    pub wire: Option<String>,
}

impl OutboxEntry {
    /// The view the state machine works on.
    pub fn view(&self) -> EntryView {
        EntryView {
            client_id: self.client_id.clone(),
            state: self.state,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            updated_at: self.updated_at,
            created_at: self.created_at,
        }
    }
}

const COLUMNS: &str = "o.client_id, o.draft_id, o.guide_id, o.form_version, o.body, o.state,
    o.attempts, o.next_attempt_at, o.last_error, o.detail, r.tracking_number, r.state,
    o.created_at, o.updated_at, o.wire";

type Row = (
    String,
    String,
    String,
    u32,
    Vec<u8>,
    String,
    u32,
    i64,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<Vec<u8>>,
);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

fn entry_of(s: &Sealer, row: Row) -> ClientResult<OutboxEntry> {
    let (
        client_id,
        draft_id,
        guide_id,
        form_version,
        body,
        state,
        attempts,
        next_attempt_at,
        last_error,
        detail,
        tracking_number,
        status,
        created_at,
        updated_at,
        wire,
    ) = row;
    let slot = |column| Slot::new("outbox", column, &client_id);
    let body = open_text(s, slot("body"), &body)?;
    let detail = detail
        .map(|d| open_text(s, slot("detail"), &d))
        .transpose()?;
    let wire = wire.map(|w| open_text(s, slot("wire"), &w)).transpose()?;
    let values = match serde_json::from_str(&body)? {
        Value::Object(m) => m,
        _ => return Err(ClientError::store_other("outbox body is not an object")),
    };
    let state = OutboxState::parse(&state)
        .ok_or_else(|| ClientError::store_other(format!("unknown outbox state {state}")))?;
    let errors = detail.map(|d| serde_json::from_str(&d)).transpose()?;
    Ok(OutboxEntry {
        client_id,
        draft_id,
        guide_id,
        form_version,
        values,
        state,
        attempts,
        next_attempt_at,
        last_error,
        errors,
        tracking_number,
        status,
        created_at,
        updated_at,
        wire,
    })
}

fn entry_in(
    tx: &rusqlite::Connection,
    s: &Sealer,
    client_id: &str,
) -> ClientResult<Option<OutboxEntry>> {
    let row = tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM outbox o LEFT JOIN receipts r ON r.client_id = o.client_id
                 WHERE o.client_id = ?1"
            ),
            [client_id],
            read_row,
        )
        .optional()?;
    row.map(|r| entry_of(s, r)).transpose()
}

fn set_state(
    tx: &Transaction<'_>,
    client_id: &str,
    state: OutboxState,
    next_attempt_at: i64,
    now: i64,
) -> ClientResult<()> {
    tx.execute(
        "UPDATE outbox SET state = ?2, next_attempt_at = ?3, updated_at = ?4 WHERE client_id = ?1",
        params![client_id, state.as_str(), next_attempt_at, now],
    )?;
    Ok(())
}

impl ClientStore {
    /// Queues `draft` under `client_id`: saves the draft's final values and
    /// writes its outbox entry in one transaction. A draft is queued once:
    /// queueing it again (a double tap, a retry after a crash) returns the id
    /// it was queued under and changes nothing.
    pub fn queue(&self, draft: &Draft, client_id: &str, now: i64) -> ClientResult<String> {
        let s = self.sealer()?;
        let body = seal_text(
            &s,
            Slot::new("outbox", "body", client_id),
            &Value::Object(draft.values.clone()).to_string(),
        )?;
        self.tx(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT client_id FROM outbox WHERE draft_id = ?1",
                    [&draft.id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                return Ok(id);
            }
            super::drafts::save_draft_in(tx, &s, draft)?;
            tx.execute(
                "INSERT INTO outbox(client_id, draft_id, guide_id, form_version, body, state,
                     attempts, next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?6, ?6)",
                params![
                    client_id,
                    draft.id,
                    draft.guide_id,
                    draft.form_version,
                    body,
                    now
                ],
            )?;
            Ok(client_id.to_owned())
        })
    }

    /// Moves the next attempt of pending entries to `at` without counting an
    /// attempt (they share an outage that another entry just met).
    pub fn defer(&self, client_ids: &[String], at: i64) -> ClientResult<()> {
        self.tx(|tx| {
            for id in client_ids {
                tx.execute(
                    "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?2)
                     WHERE client_id = ?1 AND state IN ('queued', 'failed')",
                    params![id, at],
                )?;
            }
            Ok(())
        })
    }

    /// Puts a rejected entry back in the queue with corrected values, filled
    /// against form version `form_version` (same id: the server stored
    /// nothing for a rejected submission).
    pub fn requeue(
        &self,
        client_id: &str,
        values: &Map<String, Value>,
        form_version: u32,
        now: i64,
    ) -> ClientResult<()> {
        let s = self.sealer()?;
        let text = Value::Object(values.clone()).to_string();
        let body = seal_text(&s, Slot::new("outbox", "body", client_id), &text)?;
        self.tx(|tx| {
            let e = entry_in(tx, &s, client_id)?
                .ok_or_else(|| ClientError::NotFound("outbox entry".into()))?;
            if e.state != OutboxState::Rejected {
                return Err(ClientError::Invalid(
                    "only a rejected submission can be corrected".into(),
                ));
            }
            tx.execute(
                "UPDATE outbox SET body = ?2, form_version = ?4, state = 'queued', attempts = 0,
                     next_attempt_at = ?3, last_error = NULL, detail = NULL, wire = NULL,
                     updated_at = ?3
                 WHERE client_id = ?1",
                params![client_id, body, now, form_version],
            )?;
            let draft_body = seal_text(&s, Slot::new("drafts", "body", &e.draft_id), &text)?;
            tx.execute(
                "UPDATE drafts SET body = ?2, form_version = ?4, updated_at = ?3 WHERE id = ?1",
                params![e.draft_id, draft_body, now, form_version],
            )?;
            Ok(())
        })
    }

    /// One outbox entry.
    pub fn outbox_entry(&self, client_id: &str) -> ClientResult<Option<OutboxEntry>> {
        let s = self.sealer()?;
        entry_in(&*self.conn()?, &s, client_id)
    }

    /// Every outbox entry, newest first.
    pub fn outbox(&self) -> ClientResult<Vec<OutboxEntry>> {
        self.outbox_where("1 = 1 ORDER BY o.created_at DESC, o.client_id DESC")
    }

    /// The entries that still have to reach the server.
    pub fn pending(&self) -> ClientResult<Vec<OutboxEntry>> {
        self.outbox_where(
            "o.state IN ('queued', 'sending', 'failed') ORDER BY o.created_at, o.client_id",
        )
    }

    fn outbox_where(&self, clause: &str) -> ClientResult<Vec<OutboxEntry>> {
        let s = self.sealer()?;
        let rows = {
            let c = self.conn()?;
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM outbox o LEFT JOIN receipts r ON r.client_id = o.client_id
                 WHERE {clause}"
            ))?;
            stmt.query_map([], read_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        rows.into_iter().map(|r| entry_of(&s, r)).collect()
    }

    /// Starts a send: a pending entry becomes `sending` with one more
    /// attempt, and the outbox's last attempt time is recorded. `None` if the
    /// entry is not pending any more, or another flush holds a live lease on it.
    /// Not flushed to disk at commit: losing it costs one resend.
    pub fn begin_send(&self, client_id: &str, now: i64) -> ClientResult<Option<OutboxEntry>> {
        let s = self.sealer()?;
        self.tx_relaxed(|tx| {
            let Some(e) = entry_in(tx, &s, client_id)? else {
                return Ok(None);
            };
            let live_lease = e.state == OutboxState::Sending
                && now.saturating_sub(e.updated_at) < crate::outbox::SEND_LEASE_SECS;
            if !e.state.is_pending() || live_lease {
                return Ok(None);
            }
            tx.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?2
                 WHERE client_id = ?1",
                params![client_id, now],
            )?;
            set_meta_in(tx, LAST_ATTEMPT_KEY, &now.to_string())?;
            entry_in(tx, &s, client_id)
        })
    }

    /// Freezes the request body of an entry (sent identically on every retry).
    pub fn set_wire(&self, client_id: &str, wire: &str) -> ClientResult<()> {
        let s = self.sealer()?;
        let wire = seal_text(&s, Slot::new("outbox", "wire", client_id), wire)?;
        self.conn()?.execute(
            "UPDATE outbox SET wire = ?2 WHERE client_id = ?1",
            params![client_id, wire],
        )?;
        Ok(())
    }

    /// Records the end of a send. For `accepted`, the receipt and the state
    /// are written in one transaction. The commit is atomic and survives the
    /// app being killed, but is flushed to disk by the flush's closing
    /// [`Self::make_durable`], not here: if a power cut loses it, the entry
    /// is sent again and the server returns the same stored receipt.
    pub fn finish_send(&self, client_id: &str, t: &Transition, now: i64) -> ClientResult<()> {
        let s = self.sealer()?;
        let detail = t
            .detail
            .as_ref()
            .map(|d| seal_text(&s, Slot::new("outbox", "detail", client_id), &d.to_string()))
            .transpose()?;
        self.tx_relaxed(|tx| {
            let guide_id: Option<String> = tx
                .query_row(
                    "SELECT guide_id FROM outbox WHERE client_id = ?1",
                    [client_id],
                    |r| r.get(0),
                )
                .optional()?;
            let guide_id = guide_id.ok_or_else(|| ClientError::NotFound("outbox entry".into()))?;
            if let Some((tracking, accepted_at)) = &t.receipt {
                tx.execute(
                    "INSERT INTO receipts(client_id, tracking_number, guide_id, accepted_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(client_id) DO NOTHING",
                    params![client_id, tracking, guide_id, accepted_at],
                )?;
            }
            tx.execute(
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, last_error = ?4, detail = ?5,
                     updated_at = ?6, wire = CASE WHEN ?7 THEN NULL ELSE wire END
                 WHERE client_id = ?1",
                params![
                    client_id,
                    t.state.as_str(),
                    t.next_attempt_at,
                    t.last_error,
                    detail,
                    now,
                    t.rebuild_body
                ],
            )?;
            Ok(())
        })
    }

    /// Makes the given pending entries due now (the liveness heal, expired
    /// send leases). A `sending` entry becomes `failed`.
    pub fn make_due(&self, client_ids: &[String], now: i64) -> ClientResult<()> {
        let s = self.sealer()?;
        self.tx(|tx| {
            for id in client_ids {
                let Some(e) = entry_in(tx, &s, id)? else {
                    continue;
                };
                if !e.state.is_pending() {
                    continue;
                }
                let state = if e.state == OutboxState::Sending {
                    OutboxState::Failed
                } else {
                    e.state
                };
                set_state(tx, id, state, now, now)?;
            }
            Ok(())
        })
    }

    /// After a restart: sends this store recorded as in flight belong to a
    /// process that is gone; they become `failed`, due now (a resend is
    /// safe: the server returns the stored receipt). Returns how many.
    pub fn recover_sends(&self, now: i64) -> ClientResult<usize> {
        Ok(self.conn()?.execute(
            "UPDATE outbox SET state = 'failed', next_attempt_at = ?1, last_error = 'interrupted',
                 updated_at = ?1
             WHERE state = 'sending'",
            [now],
        )?)
    }

    /// One durable commit: every commit before it (sends, receipts) is on
    /// disk when it returns. A flush ends with it.
    pub fn make_durable(&self, now: i64) -> ClientResult<()> {
        self.tx(|tx| set_meta_in(tx, "outbox_last_flush_at", &now.to_string()))
    }

    /// When the outbox last started a send.
    pub fn last_attempt_at(&self) -> ClientResult<Option<i64>> {
        Ok(meta_in(&*self.conn()?, LAST_ATTEMPT_KEY)?.and_then(|v| v.parse().ok()))
    }

    /// Receipts stored: (client id, tracking number).
    pub fn receipts(&self) -> ClientResult<Vec<(String, String)>> {
        let c = self.conn()?;
        let mut stmt =
            c.prepare("SELECT client_id, tracking_number FROM receipts ORDER BY client_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
