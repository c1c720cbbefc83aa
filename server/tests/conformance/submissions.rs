//! [`SubmissionStore`] and [`EventStore`]: exactly-once acceptance, state
//! transitions, and the events feed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use zhangban_server::store::prelude::*;
use zhangban_server::store::{EventStore, StatusEvent, StoreError};

use super::{Backend, T0, submission};

pub fn dedupe_same_client_id_same_receipt_nothing_new<B: Backend>(b: &B) {
    let s = b.open();
    let first = s
        .submit(&submission("client-0001", "r1", "{\"a\":1}"))
        .unwrap();
    assert!(first.fresh);
    let r = &first.receipt;
    assert_eq!(r.client_id, "client-0001");
    assert_eq!(r.guide_id, "guide");
    assert_eq!(r.accepted_at, T0);
    // 511602 + the day in China (UTC+8) + a 7-digit counter.
    assert_eq!(r.tracking_number, "511602202609210000001");

    // A retry: the same receipt, nothing stored again.
    for _ in 0..3 {
        let again = s
            .submit(&submission("client-0001", "r1", "{\"a\":1}"))
            .unwrap();
        assert!(!again.fresh);
        assert_eq!(&again.receipt, r);
    }
    assert_eq!(s.submissions_of("r1").unwrap().len(), 1);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), 1);
    let (owner, hash, stored) = s.receipt("client-0001").unwrap().unwrap();
    assert_eq!(
        (owner.as_str(), hash.as_str(), &stored),
        ("r1", "hash-of-{\"a\":1}", r)
    );

    // The id reused for other content, or by another resident: refused,
    // nothing stored, no tracking number used.
    assert!(matches!(
        s.submit(&submission("client-0001", "r1", "{\"a\":2}")),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.submit(&submission("client-0001", "r2", "{\"a\":1}")),
        Err(StoreError::Conflict(_))
    ));
    assert!(s.submissions_of("r2").unwrap().is_empty());
    let next = s.submit(&submission("client-0002", "r1", "{}")).unwrap();
    assert!(next.receipt.tracking_number.ends_with("0000002"));

    // What the owner sees; another resident sees nothing.
    let record = s.submission("r1", "client-0001").unwrap().unwrap();
    assert_eq!(record.receipt, *r);
    assert_eq!(record.state, "submitted");
    assert_eq!(record.values["a"], 1);
    assert_eq!(record.form_version, 1);
    assert_eq!(s.submission("r2", "client-0001").unwrap(), None);
    assert_eq!(s.receipt("client-9999").unwrap(), None);
    assert_eq!(
        s.state_of(&r.tracking_number).unwrap().as_deref(),
        Some("submitted")
    );
    assert_eq!(
        s.submission_department(&r.tracking_number)
            .unwrap()
            .as_deref(),
        Some("dept")
    );
}

pub fn dedupe_holds_under_concurrent_retries<B: Backend>(b: &B) {
    let s = Arc::new(b.open());
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.submit(&submission("client-0001", "r1", "{}")).unwrap())
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.fresh).count(), 1, "stored once");
    assert!(answers.iter().all(|a| a.receipt == answers[0].receipt));
    assert_eq!(s.submissions_of("r1").unwrap().len(), 1);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), 1);
}

pub fn concurrent_submissions_succeed_and_fail_alone<B: Backend>(b: &B) {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let s = Arc::new(b.open());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let id = format!("client-{t:02}-{i:03}");
                    let first = s.submit(&submission(&id, "r1", "{}")).unwrap();
                    assert!(first.fresh);
                    let again = s.submit(&submission(&id, "r1", "{}")).unwrap();
                    assert!(!again.fresh);
                    assert_eq!(again.receipt, first.receipt);
                    // Refused writes between good ones lose nothing else.
                    assert!(matches!(
                        s.submit(&submission(&id, "r1", "{\"x\":1}")),
                        Err(StoreError::Conflict(_))
                    ));
                    assert!(matches!(
                        s.submit(&submission(&id, "r2", "{}")),
                        Err(StoreError::Conflict(_))
                    ));
                    // Read-your-writes.
                    assert_eq!(s.receipt(&id).unwrap().unwrap().2, first.receipt);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mine = s.submissions_of("r1").unwrap();
    assert_eq!(mine.len(), THREADS * EACH);
    let mut tracking: Vec<_> = mine
        .iter()
        .map(|m| m.receipt.tracking_number.clone())
        .collect();
    tracking.sort();
    tracking.dedup();
    assert_eq!(
        tracking.len(),
        THREADS * EACH,
        "tracking numbers are unique"
    );
    assert!(s.submissions_of("r2").unwrap().is_empty());
    assert_eq!(s.events_since("r1", 0, 1000).unwrap().len(), THREADS * EACH);
}

pub fn transitions_need_the_expected_state<B: Backend>(b: &B) {
    let s = b.open();
    let t = s
        .submit(&submission("client-0001", "r1", "{}"))
        .unwrap()
        .receipt
        .tracking_number;
    let e = s
        .transition(&t, "submitted", "accepted", Some("材料齐全"), T0 + 5)
        .unwrap();
    assert_eq!(
        (
            e.client_id.as_str(),
            e.tracking_number.as_str(),
            e.state.as_str()
        ),
        ("client-0001", t.as_str(), "accepted")
    );
    assert_eq!((e.note.as_deref(), e.at), (Some("材料齐全"), T0 + 5));
    // From a state it is no longer in: refused, no event.
    assert!(matches!(
        s.transition(&t, "submitted", "rejected", None, T0 + 6),
        Err(StoreError::InvalidState(_))
    ));
    assert!(matches!(
        s.transition("no-such-number", "submitted", "accepted", None, T0),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.state_of(&t).unwrap().as_deref(), Some("accepted"));
    assert_eq!(s.state_of("no-such-number").unwrap(), None);
    let events = s.events_since("r1", 0, 10).unwrap();
    let states: Vec<_> = events.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(states, ["submitted", "accepted"]);
    assert_eq!(events[1], e);
    assert_eq!(
        s.submission("r1", "client-0001").unwrap().unwrap().state,
        "accepted"
    );
}

/// Pages through a resident's events from 0 in pages of `limit`, checking
/// that positions strictly increase.
fn drain_events(s: &impl EventStore, resident: &str, limit: u32) -> Vec<StatusEvent> {
    let mut cursor = 0;
    let mut all = Vec::new();
    loop {
        let page = s.events_since(resident, cursor, limit).unwrap();
        assert!(page.len() <= limit as usize);
        if page.is_empty() {
            return all;
        }
        for e in page {
            assert!(e.seq > cursor, "event {} listed after {cursor}", e.seq);
            cursor = e.seq;
            all.push(e);
        }
    }
}

pub fn events_feed_is_ordered_per_resident_and_skips_nothing<B: Backend>(b: &B) {
    let s = b.open();
    let residents = ["r1", "r2", "r3"];
    let mut tracking = BTreeMap::new();
    for i in 0..6 {
        for r in residents {
            let id = format!("{r}-client-{i}");
            let t = s
                .submit(&submission(&id, r, "{}"))
                .unwrap()
                .receipt
                .tracking_number;
            tracking.insert(id, (r, t));
        }
    }
    // Interleaved transitions across residents.
    for (id, (_, t)) in &tracking {
        s.transition(t, "submitted", "accepted", None, T0 + 1)
            .unwrap();
        if id.ends_with(['0', '2', '4']) {
            s.transition(t, "accepted", "completed", None, T0 + 2)
                .unwrap();
        }
    }
    for r in residents {
        let events = drain_events(&s, r, 4);
        // 6 submitted + 6 accepted + 3 completed, all the resident's own.
        assert_eq!(events.len(), 15, "{r}");
        assert!(events.iter().all(|e| tracking[&e.client_id].0 == r));
        // Each submission's steps in the order they happened.
        let mut steps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in &events {
            steps.entry(&e.client_id).or_default().push(&e.state);
        }
        for (id, states) in steps {
            let want: &[&str] = if id.ends_with(['0', '2', '4']) {
                &["submitted", "accepted", "completed"]
            } else {
                &["submitted", "accepted"]
            };
            assert_eq!(states, want, "{id}");
        }
        let last = events.last().unwrap().seq;
        assert!(s.events_since(r, last, 10).unwrap().is_empty());
    }
    assert!(s.events_since("nobody", 0, 10).unwrap().is_empty());
}

pub fn events_feed_skips_nothing_under_concurrent_writers<B: Backend>(b: &B) {
    const WRITERS: usize = 4;
    const EACH: usize = 20;
    let s = Arc::new(b.open());
    let done = Arc::new(AtomicBool::new(false));
    // The resident's phone polling its events while officers and the
    // resident's other submissions write.
    let reader = {
        let (s, done) = (Arc::clone(&s), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                loop {
                    let page = s.events_since("r1", cursor, 7).unwrap();
                    let Some(last) = page.last() else { break };
                    cursor = last.seq;
                    seen.extend(page);
                }
                if finished {
                    return seen;
                }
                std::thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let id = format!("client-{w}-{i:02}");
                    let t = s.submit(&submission(&id, "r1", "{}")).unwrap();
                    s.transition(
                        &t.receipt.tracking_number,
                        "submitted",
                        "accepted",
                        None,
                        T0 + 1,
                    )
                    .unwrap();
                    // Another resident's events interleave and stay theirs.
                    s.submit(&submission(&format!("other-{w}-{i:02}"), "r2", "{}"))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    for pair in seen.windows(2) {
        assert!(pair[1].seq > pair[0].seq, "positions strictly increase");
    }
    assert_eq!(
        seen,
        s.events_since("r1", 0, 10_000).unwrap(),
        "nothing skipped"
    );
    assert_eq!(seen.len(), WRITERS * EACH * 2);
}
