//! [`CatalogStore`]: guides and the change feed phones sync from.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use zhangban_server::store::{CatalogChange, CatalogStore, StoreError};

use super::Backend;

fn id(i: usize) -> String {
    format!("guide-{i:03}")
}

fn checksum(i: usize, version: u32) -> String {
    format!("{i:03}-v{version}")
}

fn body(i: usize, version: u32) -> String {
    format!("{{\"id\":\"{}\",\"version\":{version}}}", id(i))
}

/// What a phone holds after syncing: id → (checksum, body), tombstones
/// included.
type Synced = BTreeMap<String, (String, Option<String>)>;

/// Pages through the feed from `cursor` with pages of `limit`, checking
/// that positions strictly increase across pages and stay above the
/// cursor; applies each change to `into` and returns the last position.
pub fn drain(store: &impl CatalogStore, mut cursor: u64, limit: u32, into: &mut Synced) -> u64 {
    loop {
        let page = store.catalog_changes(cursor, limit).unwrap();
        assert!(
            page.changes.len() <= limit as usize,
            "a page over its limit"
        );
        let Some(last) = page.changes.last() else {
            assert!(page.head <= cursor, "an empty page below the head");
            return cursor;
        };
        assert!(page.head >= last.seq, "the head is below a listed change");
        for CatalogChange {
            id,
            seq,
            checksum,
            body,
        } in page.changes
        {
            assert!(seq > cursor, "position {seq} listed after {cursor}");
            cursor = seq;
            into.insert(id, (checksum, body));
        }
    }
}

pub fn catalog_feed_positions_strictly_increase_and_skip_nothing<B: Backend>(b: &B) {
    let s = b.open();
    let empty = s.catalog_changes(0, 10).unwrap();
    assert!(empty.changes.is_empty());
    assert_eq!(empty.head, 0);

    let mut expected = Synced::new();
    let mut last = 0;
    let mut position = BTreeMap::new();
    for i in 0..20 {
        let seq = s.put_guide(&id(i), &checksum(i, 0), &body(i, 0)).unwrap();
        assert!(seq > last, "put_guide gave {seq} after {last}");
        last = seq;
        position.insert(i, seq);
        expected.insert(id(i), (checksum(i, 0), Some(body(i, 0))));
    }
    // A batch in one transaction returns its highest position.
    let batch: Vec<_> = (20..30)
        .map(|i| (id(i), checksum(i, 0), body(i, 0)))
        .collect();
    let top = s.put_guides(&batch).unwrap();
    assert!(
        top >= last + 10,
        "ten new positions above {last}, got {top}"
    );
    for i in 20..30 {
        expected.insert(id(i), (checksum(i, 0), Some(body(i, 0))));
    }
    // The same content again: the old position, nothing new in the feed.
    assert_eq!(
        s.put_guide(&id(3), &checksum(3, 0), &body(3, 0)).unwrap(),
        position[&3]
    );
    assert_eq!(s.catalog_changes(top, 10).unwrap().changes, vec![]);
    assert_eq!(s.catalog_changes(0, 1).unwrap().head, top);

    // Updates and withdrawals move guides to the head of the feed.
    let mut moved = top;
    for i in [5, 12, 25] {
        let seq = s.put_guide(&id(i), &checksum(i, 1), &body(i, 1)).unwrap();
        assert!(seq > moved);
        moved = seq;
        expected.insert(id(i), (checksum(i, 1), Some(body(i, 1))));
    }
    for i in [7, 21] {
        let seq = s.delete_guide(&id(i)).unwrap();
        assert!(seq > moved);
        moved = seq;
        expected.insert(id(i), (String::new(), None));
    }

    // A phone syncing from scratch, in small pages, ends with the catalog.
    let mut synced = Synced::new();
    let end = drain(&s, 0, 4, &mut synced);
    assert_eq!(end, moved);
    assert_eq!(synced, expected);
    // A phone that synced before the updates gets exactly the changes.
    let mut delta = Synced::new();
    drain(&s, top, 2, &mut delta);
    let changed: Vec<_> = delta.keys().cloned().collect();
    let mut want: Vec<_> = [5, 12, 25, 7, 21].into_iter().map(id).collect();
    want.sort();
    assert_eq!(changed, want);
    // One live guide by id.
    assert_eq!(
        s.guide(&id(12)).unwrap(),
        Some((checksum(12, 1), body(12, 1)))
    );
    assert_eq!(s.guide("no-such-guide").unwrap(), None);
}

pub fn catalog_feed_skips_nothing_under_concurrent_writers<B: Backend>(b: &B) {
    const WRITERS: usize = 4;
    const GUIDES: usize = 30;
    let s = Arc::new(b.open());
    let done = Arc::new(AtomicBool::new(false));
    // A phone syncing in a loop while the writers publish.
    let reader = {
        let (s, done) = (Arc::clone(&s), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut synced = Synced::new();
            let mut cursor = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                cursor = drain(s.as_ref(), cursor, 5, &mut synced);
                if finished {
                    return (synced, cursor);
                }
                std::thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..GUIDES {
                    let n = w * 1000 + i;
                    s.put_guide(&id(n), &checksum(n, 0), &body(n, 0)).unwrap();
                    if i % 3 == 0 {
                        s.put_guide(&id(n), &checksum(n, 1), &body(n, 1)).unwrap();
                    }
                    if i % 10 == 9 {
                        s.delete_guide(&id(n)).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (synced, cursor) = reader.join().unwrap();
    assert_eq!(cursor, s.catalog_changes(0, 1).unwrap().head);
    assert_eq!(
        synced.len(),
        WRITERS * GUIDES,
        "every guide reached the phone"
    );
    for (guide, (sum, content)) in &synced {
        let live = s.guide(guide).unwrap();
        match (live, content) {
            (Some((live_sum, live_body)), Some(content)) => {
                assert_eq!((&live_sum, &live_body), (sum, content), "{guide}");
            }
            (None, None) => assert!(sum.is_empty(), "{guide}"),
            (live, content) => panic!("{guide}: server {live:?}, phone {content:?}"),
        }
    }
}

pub fn catalog_tombstones_hide_guides_and_can_be_revived<B: Backend>(b: &B) {
    let s = b.open();
    assert!(matches!(s.delete_guide("g"), Err(StoreError::NotFound)));
    let first = s.put_guide("g", "c1", "{}").unwrap();
    let gone = s.delete_guide("g").unwrap();
    assert!(gone > first);
    assert_eq!(s.guide("g").unwrap(), None);
    assert!(
        matches!(s.delete_guide("g"), Err(StoreError::NotFound)),
        "a tombstone cannot be withdrawn again"
    );
    let page = s.catalog_changes(0, 10).unwrap();
    assert_eq!(
        page.changes,
        vec![CatalogChange {
            id: "g".into(),
            seq: gone,
            checksum: String::new(),
            body: None,
        }]
    );
    // Published again with the same content: live again, at a new position.
    let back = s.put_guide("g", "c1", "{}").unwrap();
    assert!(back > gone);
    assert_eq!(s.guide("g").unwrap(), Some(("c1".into(), "{}".into())));
}
