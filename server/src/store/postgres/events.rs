//! [`EventStore`] on PostgreSQL: a resident's timeline events take their
//! positions from `event_seq` while holding that resident's `event_feeds`
//! row lock (see [`append_event`]), so one resident's positions commit in
//! order while different residents' writers run in parallel (ADR 0221).

use super::Tx;

use super::{PgStore, to_i64, to_u64};
use crate::store::{EventStore, StatusEvent, StoreResult};

/// Appends an event to `resident_id`'s timeline inside `tx`: locks the
/// resident's feed row (created on first use), then takes the next position.
/// A second writer for the same resident waits on the lock until this
/// transaction ends, so it can only take a higher position after this one
/// is visible: a reader that passed position N never misses a row below it.
pub(super) fn append_event(
    tx: &mut Tx<'_>,
    resident_id: &str,
    client_id: &str,
    tracking_number: &str,
    state: &str,
    note: Option<&str>,
    at: i64,
) -> StoreResult<StatusEvent> {
    tx.execute(
        "INSERT INTO event_feeds(resident_id, head) VALUES ($1, 0)
         ON CONFLICT (resident_id) DO UPDATE SET head = event_feeds.head",
        &[&resident_id],
    )?;
    let seq: i64 = tx
        .query_one(
            "UPDATE event_feeds SET head = nextval('event_seq') WHERE resident_id = $1
             RETURNING head",
            &[&resident_id],
        )?
        .get(0);
    tx.execute(
        "INSERT INTO submission_events(seq, client_id, resident_id, tracking_number, state, note, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&seq, &client_id, &resident_id, &tracking_number, &state, &note, &at],
    )?;
    Ok(StatusEvent {
        seq: to_u64(seq),
        client_id: client_id.to_owned(),
        tracking_number: tracking_number.to_owned(),
        state: state.to_owned(),
        note: note.map(str::to_owned),
        at,
    })
}

impl EventStore for PgStore {
    fn events_since(
        &self,
        resident_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<Vec<StatusEvent>> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT seq, client_id, tracking_number, state, note, at FROM submission_events
                 WHERE resident_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&resident_id, &to_i64(since), &i64::from(limit)],
            )?;
            Ok(rows
                .iter()
                .map(|r| StatusEvent {
                    seq: to_u64(r.get(0)),
                    client_id: r.get(1),
                    tracking_number: r.get(2),
                    state: r.get(3),
                    note: r.get(4),
                    at: r.get(5),
                })
                .collect())
        })
    }
}
