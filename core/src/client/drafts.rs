//! Drafts: forms saved locally while the resident fills them, offline.
//! Submitting a draft validates it with the same validator the server runs,
//! then queues it in the outbox in the same transaction that marks the
//! draft as sent (see [`super::outbox_store`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{ClientError, ClientResult};
use super::personal::{open_text, seal_text};
use super::sealing::{Sealer, Slot};
use super::store::ClientStore;

/// A form being filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// Local id.
    pub id: String,
    /// The service guide.
    pub guide_id: String,
    /// The form schema version it is filled against.
    pub form_version: u32,
    /// The values so far, by field name.
    pub values: Map<String, Value>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last saved.
    pub updated_at: i64,
}

type DraftRow = (String, String, u32, Vec<u8>, i64, i64);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DraftRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn draft_of(
    s: &Sealer,
    (id, guide_id, form_version, body, created_at, updated_at): DraftRow,
) -> ClientResult<Draft> {
    let body = open_text(s, Slot::new("drafts", "body", &id), &body)?;
    let values = match serde_json::from_str(&body)? {
        Value::Object(m) => m,
        _ => return Err(ClientError::store_other("draft body is not an object")),
    };
    Ok(Draft {
        id,
        guide_id,
        form_version,
        values,
        created_at,
        updated_at,
    })
}

/// The client id `draft_id` was queued under, if it was.
fn submitted_as_in(c: &rusqlite::Connection, draft_id: &str) -> ClientResult<Option<String>> {
    Ok(rusqlite::OptionalExtension::optional(c.query_row(
        "SELECT client_id FROM outbox WHERE draft_id = ?1",
        [draft_id],
        |r| r.get(0),
    ))?)
}

/// Saves a draft on a connection or inside a transaction.
pub(crate) fn save_draft_in(c: &rusqlite::Connection, s: &Sealer, d: &Draft) -> ClientResult<()> {
    let body = seal_text(
        s,
        Slot::new("drafts", "body", &d.id),
        &Value::Object(d.values.clone()).to_string(),
    )?;
    c.execute(
        "INSERT INTO drafts(id, guide_id, form_version, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET guide_id = ?2, form_version = ?3, body = ?4, updated_at = ?6",
        rusqlite::params![d.id, d.guide_id, d.form_version, body, d.created_at, d.updated_at],
    )?;
    Ok(())
}

impl ClientStore {
    /// Saves (creates or replaces) a draft. A draft that was submitted is
    /// locked (ADR 0201): saving it again is refused with
    /// [`ClientError::DraftSubmitted`], so an edit is never silently
    /// dropped; a rejected submission is changed with `Client::correct`, a
    /// new application starts from a new draft id.
    pub fn save_draft(&self, d: &Draft) -> ClientResult<()> {
        let s = self.sealer()?;
        self.tx(|tx| {
            if let Some(client_id) = submitted_as_in(tx, &d.id)? {
                return Err(ClientError::DraftSubmitted { client_id });
            }
            save_draft_in(tx, &s, d)
        })
    }

    /// The client id a draft was submitted under, if it was.
    pub fn submitted_as(&self, draft_id: &str) -> ClientResult<Option<String>> {
        submitted_as_in(&*self.conn()?, draft_id)
    }

    /// One draft.
    pub fn draft(&self, id: &str) -> ClientResult<Option<Draft>> {
        let s = self.sealer()?;
        let r = rusqlite::OptionalExtension::optional(self.conn()?.query_row(
            "SELECT id, guide_id, form_version, body, created_at, updated_at FROM drafts WHERE id = ?1",
            [id],
            row,
        ))?;
        r.map(|r| draft_of(&s, r)).transpose()
    }

    /// Every draft, most recently saved first.
    pub fn drafts(&self) -> ClientResult<Vec<Draft>> {
        let s = self.sealer()?;
        let rows = {
            let c = self.conn()?;
            let mut stmt = c.prepare(
                "SELECT id, guide_id, form_version, body, created_at, updated_at FROM drafts
                 ORDER BY updated_at DESC, id",
            )?;
            stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?
        };
        rows.into_iter().map(|r| draft_of(&s, r)).collect()
    }

    /// Deletes a draft that is not in the outbox.
    pub fn delete_draft(&self, id: &str) -> ClientResult<()> {
        // Personal data is changed only while it is open.
        self.sealer()?;
        self.tx(|tx| {
            let queued: i64 = tx.query_row(
                "SELECT COUNT(*) FROM outbox WHERE draft_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if queued > 0 {
                return Err(ClientError::Invalid("the draft is being submitted".into()));
            }
            tx.execute("DELETE FROM drafts WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}
