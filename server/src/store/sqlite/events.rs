//! [`EventStore`] on SQLite: the timeline events, an `AUTOINCREMENT` key
//! assigned by the single writer (so in commit order).

use rusqlite::params;

use super::{SqliteStore, owned, to_i64, to_u64};
use crate::store::{EventStore, StatusEvent, StoreResult};

impl EventStore for SqliteStore {
    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>> {
        let resident_id = owned(resident_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, client_id, tracking_number, state, note, at FROM submission_events
                 WHERE resident_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![resident_id, to_i64(since), limit], |r| {
                    Ok(StatusEvent {
                        seq: to_u64(r.get(0)?),
                        client_id: r.get(1)?,
                        tracking_number: r.get(2)?,
                        state: r.get(3)?,
                        note: r.get(4)?,
                        at: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
