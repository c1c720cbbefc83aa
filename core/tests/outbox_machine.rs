//! The outbox state machine, deterministically: backoff and jitter, poison
//! entries, immediate retries, send leases and the stuck-queue liveness
//! check. No sockets, no sleeps: time and randomness are arguments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use zhangban_core::outbox::{
    BackoffPolicy, EntryView, OutboxState, SEND_LEASE_SECS, SendOutcome, after_send, liveness, plan,
};

const NOW: i64 = 1_800_000_000;

fn entry(id: &str, state: OutboxState, attempts: u32, next: i64) -> EntryView {
    EntryView {
        client_id: id.into(),
        state,
        attempts,
        next_attempt_at: next,
        updated_at: NOW - 1,
        created_at: NOW - 100,
    }
}

fn transient() -> SendOutcome {
    SendOutcome::Transient {
        code: "network".into(),
        retry_after: None,
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
    let p = BackoffPolicy::default();
    let mut last_ceiling = 0;
    for attempts in 1..=20 {
        let lo = p.delay(attempts, 0.0);
        let hi = p.delay(attempts, 0.999_999);
        let ceiling = (2_i64 << (attempts - 1).min(30)).min(p.max_secs);
        assert_eq!(lo, (ceiling / 2).max(1), "attempt {attempts}");
        assert!(
            hi <= ceiling && hi >= ceiling - 1,
            "attempt {attempts}: {hi}"
        );
        assert!(ceiling >= last_ceiling);
        last_ceiling = ceiling;
    }
    assert_eq!(p.delay(1, 0.0), 1);
    assert_eq!(p.delay(4, 0.0), 8);
    assert_eq!(p.delay(4, 0.5), 12);
    assert_eq!(p.delay(50, 0.999_999), p.max_secs - 1);
    // Garbage draws and huge attempt counts stay in range.
    for u in [f64::NAN, f64::INFINITY, -3.0, 7.0] {
        let d = p.delay(u32::MAX, u);
        assert!((1..=p.max_secs).contains(&d), "{u}: {d}");
    }
}

#[test]
fn jitter_spreads_a_crowd_that_failed_together() {
    let p = BackoffPolicy::default();
    let delays: std::collections::BTreeSet<i64> =
        (0..100).map(|i| p.delay(8, f64::from(i) / 100.0)).collect();
    // 2^8 = 256 s ceiling: 100 phones land on (nearly) 100 different seconds.
    assert!(delays.len() >= 90, "{}", delays.len());
    assert!(delays.iter().all(|d| (128..=256).contains(d)));
}

#[test]
fn a_transient_failure_backs_off_and_honours_retry_after() {
    let p = BackoffPolicy::default();
    let e = entry("a", OutboxState::Sending, 3, NOW);
    let t = after_send(&e, &transient(), NOW, &p, 0.0);
    assert_eq!(t.state, OutboxState::Failed);
    assert_eq!(t.next_attempt_at, NOW + 4);
    assert_eq!(t.last_error.as_deref(), Some("network"));
    assert!(!t.rebuild_body);
    let busy = SendOutcome::Transient {
        code: "too_many_requests".into(),
        retry_after: Some(120),
    };
    assert_eq!(
        after_send(&e, &busy, NOW, &p, 0.0).next_attempt_at,
        NOW + 120
    );
    // A hostile Retry-After is capped at a day.
    let huge = SendOutcome::Transient {
        code: "service_unavailable".into(),
        retry_after: Some(u64::MAX),
    };
    assert_eq!(
        after_send(&e, &huge, NOW, &p, 0.0).next_attempt_at,
        NOW + 86_400
    );
}

#[test]
fn acceptance_carries_the_receipt_and_rejection_the_errors() {
    let p = BackoffPolicy::default();
    let e = entry("a", OutboxState::Sending, 1, NOW);
    let t = after_send(
        &e,
        &SendOutcome::Accepted {
            tracking_number: "511602-20261202-000001".into(),
            accepted_at: NOW,
        },
        NOW,
        &p,
        0.5,
    );
    assert_eq!(t.state, OutboxState::Accepted);
    assert_eq!(t.receipt, Some(("511602-20261202-000001".into(), NOW)));
    assert_eq!(t.last_error, None);
    let details = json!({"fields": [{"field": "phone", "code": "invalid_phone"}]});
    let t = after_send(
        &e,
        &SendOutcome::Rejected {
            code: "validation_failed".into(),
            details: Some(details.clone()),
        },
        NOW,
        &p,
        0.5,
    );
    assert_eq!(t.state, OutboxState::Rejected);
    assert_eq!(t.detail, Some(details));
    assert_eq!(t.receipt, None);
}

#[test]
fn stale_proofs_and_refused_tokens_retry_at_once_a_bounded_number_of_times() {
    let p = BackoffPolicy::default();
    for (outcome, code, rebuild) in [
        (SendOutcome::ProofsStale, "proofs_stale", true),
        (SendOutcome::Unauthorized, "unauthorized", false),
    ] {
        for attempts in 1..=p.max_immediate {
            let t = after_send(
                &entry("a", OutboxState::Sending, attempts, NOW),
                &outcome,
                NOW,
                &p,
                0.0,
            );
            assert_eq!(t.next_attempt_at, NOW, "{code} attempt {attempts}");
            assert_eq!(t.rebuild_body, rebuild);
            assert_eq!(t.last_error.as_deref(), Some(code));
        }
        let t = after_send(
            &entry("a", OutboxState::Sending, p.max_immediate + 1, NOW),
            &outcome,
            NOW,
            &p,
            0.0,
        );
        assert!(
            t.next_attempt_at > NOW,
            "{code} backs off after {}",
            p.max_immediate
        );
        assert_eq!(t.state, OutboxState::Failed);
    }
}

#[test]
fn poison_entries_never_block_the_queue() {
    // A rejected entry at the head of the queue, several times over.
    let entries = vec![
        entry("poison-1", OutboxState::Rejected, 1, NOW - 50),
        entry("poison-2", OutboxState::Rejected, 9, NOW - 40),
        entry("ok-1", OutboxState::Queued, 0, NOW),
        entry("ok-2", OutboxState::Failed, 2, NOW - 1),
        entry("done", OutboxState::Accepted, 1, NOW - 60),
    ];
    let p = plan(&entries, NOW);
    let mut sent = p.send.clone();
    sent.sort();
    assert_eq!(sent, vec!["ok-1", "ok-2"]);
    assert_eq!(p.wake_at, None);
    // With only poison and finished entries, nothing is planned, ever.
    for t in [NOW, NOW + 86_400 * 365] {
        let p = plan(
            &[entries[0].clone(), entries[1].clone(), entries[4].clone()],
            t,
        );
        assert!(p.send.is_empty() && p.wake_at.is_none() && p.expired_leases.is_empty());
    }
}

#[test]
fn a_send_whose_app_died_is_resent_after_its_lease() {
    let mut e = entry("a", OutboxState::Sending, 1, NOW);
    e.updated_at = NOW;
    assert!(
        plan(std::slice::from_ref(&e), NOW + SEND_LEASE_SECS - 1)
            .send
            .is_empty()
    );
    let p = plan(std::slice::from_ref(&e), NOW + SEND_LEASE_SECS);
    assert_eq!(p.send, vec!["a"]);
    assert_eq!(p.expired_leases, vec!["a"]);
}

#[test]
fn the_plan_wakes_at_the_earliest_retry() {
    let entries = vec![
        entry("a", OutboxState::Failed, 2, NOW + 30),
        entry("b", OutboxState::Failed, 5, NOW + 10),
        entry("c", OutboxState::Queued, 0, NOW + 99),
    ];
    let p = plan(&entries, NOW);
    assert!(p.send.is_empty());
    assert_eq!(p.wake_at, Some(NOW + 10));
    assert_eq!(plan(&entries, NOW + 10).send, vec!["b"]);
}

#[test]
fn a_stuck_queue_is_detected_only_online_and_healed() {
    let policy = BackoffPolicy::default();
    let old = |mut e: EntryView| {
        e.created_at = NOW - 1_000;
        e
    };
    // Due for ten minutes, nothing attempted for ten minutes: stuck.
    let entries = vec![
        old(entry("a", OutboxState::Failed, 2, NOW - 600)),
        old(entry("b", OutboxState::Queued, 0, NOW - 600)),
        old(entry("r", OutboxState::Rejected, 1, NOW - 600)),
    ];
    // Queued only a minute ago: the queue has not been stuck that long.
    let mut fresh0 = entry("a", OutboxState::Failed, 2, NOW - 600);
    fresh0.created_at = NOW - 60;
    assert!(liveness(&[fresh0], true, Some(NOW - 600), NOW, 300, &policy).is_none());
    let heal = liveness(&entries, true, Some(NOW - 600), NOW, 300, &policy).unwrap();
    assert_eq!(heal.reset, vec!["a", "b"]);
    assert_eq!(heal.idle_secs, 600);
    // Offline is not stuck; a recent attempt is not stuck.
    assert!(liveness(&entries, false, Some(NOW - 600), NOW, 300, &policy).is_none());
    assert!(liveness(&entries, true, Some(NOW - 10), NOW, 300, &policy).is_none());
    // Waiting for a legitimate backoff is not stuck.
    let backing_off = vec![old(entry("a", OutboxState::Failed, 9, NOW + 400))];
    assert!(liveness(&backing_off, true, Some(NOW - 600), NOW, 300, &policy).is_none());
    // A retry date beyond any backoff (the clock jumped back) is stuck.
    let jumped = vec![old(entry("a", OutboxState::Failed, 2, NOW + 30 * 86_400))];
    let heal = liveness(&jumped, true, Some(NOW - 600), NOW, 300, &policy).unwrap();
    assert_eq!(heal.reset, vec!["a"]);
    // The clock went back a month after the last attempt: idle time is
    // unknown, but a retry date beyond any backoff is stuck all the same.
    let back = NOW - 30 * 86_400;
    let heal = liveness(&jumped, true, Some(NOW), back, 300, &policy).unwrap();
    assert_eq!(heal.reset, vec!["a"]);
    let due_soon = vec![old(entry("a", OutboxState::Failed, 2, back + 60))];
    assert!(liveness(&due_soon, true, Some(NOW), back, 300, &policy).is_none());
    // An empty queue, or only finished entries, is never stuck.
    assert!(liveness(&[], true, None, NOW, 300, &policy).is_none());
    assert!(liveness(&entries[2..], true, None, NOW, 300, &policy).is_none());
    // Never attempted: idle since the oldest entry was queued.
    let never = vec![entry("a", OutboxState::Queued, 0, NOW - 100)];
    assert!(liveness(&never, true, None, NOW, 300, &policy).is_none());
    assert!(liveness(&never, true, None, NOW + 400, 300, &policy).is_some());
}
