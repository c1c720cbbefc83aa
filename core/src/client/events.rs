//! Status events of accepted submissions (受理, 审查, 办结 …): fetched
//! through sync after a cursor, stored with the cursor in one transaction
//! (an event is delivered to listeners once per store), and handed to
//! listeners.

use super::api::{ServerApi, StatusEventIn};
use super::error::ClientResult;
use super::personal::{open_text, seal_text};
use super::sealing::Slot;
use super::session::failure;
use super::store::{ClientStore, meta_in, set_meta_in};

const CURSOR_KEY: &str = "events_cursor";

/// Receives status events. Implemented by apps (through the FFI) and tests.
pub trait StatusListener: Send + Sync {
    /// A submission moved to a new state.
    fn on_status(&self, event: &StatusEventIn);
}

impl ClientStore {
    /// Stores a page of events and the new cursor; returns the events not seen before.
    pub fn put_events(
        &self,
        events: &[StatusEventIn],
        next: u64,
    ) -> ClientResult<Vec<StatusEventIn>> {
        let s = self.sealer()?;
        self.tx(|tx| {
            let mut fresh = Vec::new();
            for e in events {
                let seq = i64::try_from(e.seq).unwrap_or(i64::MAX);
                let note = e
                    .note
                    .as_ref()
                    .map(|n| seal_text(&s, Slot::new("status_events", "note", &seq.to_string()), n))
                    .transpose()?;
                let n = tx.execute(
                    "INSERT INTO status_events(seq, client_id, tracking_number, state, note, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(seq) DO NOTHING",
                    rusqlite::params![seq, e.client_id, e.tracking_number, e.state, note, e.at],
                )?;
                if n > 0 {
                    tx.execute(
                        "UPDATE receipts SET state = ?2 WHERE client_id = ?1",
                        rusqlite::params![e.client_id, e.state],
                    )?;
                    fresh.push(e.clone());
                }
            }
            let cursor: u64 = meta_in(tx, CURSOR_KEY)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if next > cursor {
                set_meta_in(tx, CURSOR_KEY, &next.to_string())?;
            }
            Ok(fresh)
        })
    }

    /// The events cursor.
    pub fn events_cursor(&self) -> ClientResult<u64> {
        Ok(self
            .meta(CURSOR_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The timeline of one submission, oldest first.
    pub fn timeline(&self, client_id: &str) -> ClientResult<Vec<StatusEventIn>> {
        let s = self.sealer()?;
        type Sealed = (i64, String, String, String, Option<Vec<u8>>, i64);
        let rows: Vec<Sealed> = {
            let c = self.conn()?;
            let mut stmt = c.prepare(
                "SELECT seq, client_id, tracking_number, state, note, at FROM status_events
                 WHERE client_id = ?1 ORDER BY seq",
            )?;
            stmt.query_map([client_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        rows.into_iter()
            .map(|(seq, client_id, tracking_number, state, note, at)| {
                let row = seq.to_string();
                Ok(StatusEventIn {
                    seq: u64::try_from(seq).unwrap_or(0),
                    client_id,
                    tracking_number,
                    state,
                    note: note
                        .map(|n| open_text(&s, Slot::new("status_events", "note", &row), &n))
                        .transpose()?,
                    at,
                })
            })
            .collect()
    }
}

/// Fetches every new event; returns those new to this store, in order.
pub async fn sync_events(
    store: &ClientStore,
    api: &ServerApi,
    token: &str,
) -> ClientResult<Vec<StatusEventIn>> {
    let mut fresh = Vec::new();
    loop {
        let since = store.events_cursor()?;
        let page = api.events(token, since).await.map_err(failure)?;
        if page.events.is_empty() {
            return Ok(fresh);
        }
        fresh.extend(store.put_events(&page.events, page.next)?);
        if page.next <= since {
            return Ok(fresh);
        }
    }
}
