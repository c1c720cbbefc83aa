//! The outbox as a sans-IO state machine: it is told what happened (a send
//! succeeded, failed, was refused; time passed) and answers what to do and
//! what to write, without sockets, sleeps or a clock of its own. The I/O
//! shell (`client::flush`) performs the sends and stores the transitions.
//!
//! States: `queued → sending → accepted | rejected | failed`, and
//! `failed → sending` again when its backoff ends.
//!
//! - **accepted**: the server's receipt is stored; final.
//! - **rejected**: the server refused the content (validation errors, an id
//!   it cannot take); kept with the errors for the resident to fix; it never
//!   blocks the entries behind it.
//! - **failed**: no verdict yet (offline, timeout, 5xx, 429): retried with
//!   exponential backoff and jitter, honouring `Retry-After`.
//!
//! A retry always re-sends the same id (and the same frozen body, so the
//! server recognises it and returns its stored receipt); only when the server
//! says the licence proofs in the body went stale (which proves it holds
//! nothing for the id) is the body rebuilt.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state of one outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its first send.
    Queued,
    /// A send is in flight (or was, when the app died: see [`plan`]).
    Sending,
    /// The server's receipt is stored locally. Final.
    Accepted,
    /// Refused by the server; kept, with its errors, for the resident to fix.
    Rejected,
    /// Not delivered yet; retried at `next_attempt_at`.
    Failed,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Whether the entry still has to reach the server.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Sending | Self::Failed)
    }
}

/// What the machine needs to know of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// The client-generated id.
    pub client_id: String,
    /// Its state.
    pub state: OutboxState,
    /// Sends started so far.
    pub attempts: u32,
    /// When it may be sent next (Unix seconds).
    pub next_attempt_at: i64,
    /// When its state last changed (for a send's lease).
    pub updated_at: i64,
    /// When it was queued (the order of sends).
    pub created_at: i64,
}

/// Exponential backoff with "equal jitter": the n-th consecutive failure
/// waits `min(max, base·2^(n-1))`, of which the upper half is random, so that
/// a crowd of phones coming back online together spreads out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay, in seconds.
    pub base_secs: i64,
    /// The longest delay, in seconds.
    pub max_secs: i64,
    /// Immediate retries (new token, rebuilt proofs) allowed before they back off too.
    pub max_immediate: u32,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base_secs: 2,
            max_secs: 15 * 60,
            max_immediate: 3,
        }
    }
}

impl BackoffPolicy {
    /// The delay after the `attempts`-th send failed; `unit` is a random
    /// number in `[0, 1)` (injected, so tests are deterministic).
    pub fn delay(&self, attempts: u32, unit: f64) -> i64 {
        let exp = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .base_secs
            .max(1)
            .saturating_mul(1_i64 << exp)
            .min(self.max_secs.max(1));
        let half = ceiling / 2;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Truncation is intended: a delay in whole seconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let random = ((ceiling - half) as f64 * unit) as i64;
        (half + random).clamp(1, self.max_secs.max(1))
    }
}

/// What a send produced, as the shell classified it.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The server's receipt.
    Accepted {
        /// The tracking number.
        tracking_number: String,
        /// When the server accepted it.
        accepted_at: i64,
    },
    /// The server refused the content for good: the resident must change it.
    Rejected {
        /// The server's code (`validation_failed`, `client_id_reused` …).
        code: String,
        /// Per-field errors, if any.
        details: Option<Value>,
    },
    /// The licence proofs in the body went stale (nonce expired, key binding
    /// too old): the server holds nothing for the id; rebuild and resend now.
    ProofsStale,
    /// The token was refused: renew it and resend now.
    Unauthorized,
    /// No verdict: offline, timeout, cut, 5xx, 429.
    Transient {
        /// Why (a code, no personal data).
        code: String,
        /// The server's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
}

/// What to write after a send.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new state.
    pub state: OutboxState,
    /// When to try next (meaningful for `failed`).
    pub next_attempt_at: i64,
    /// The error to show, if any (a code).
    pub last_error: Option<String>,
    /// Details to keep (per-field errors of a rejection).
    pub detail: Option<Value>,
    /// Whether the stored request body must be rebuilt before the next send.
    pub rebuild_body: bool,
    /// The receipt, for `accepted`: (tracking number, accepted at).
    pub receipt: Option<(String, i64)>,
}

/// The transition after a send of `entry` (whose `attempts` already counts
/// this send) ended with `outcome` at `now`. `unit` is the jitter draw.
pub fn after_send(
    entry: &EntryView,
    outcome: &SendOutcome,
    now: i64,
    policy: &BackoffPolicy,
    unit: f64,
) -> Transition {
    let failed = |code: &str, at: i64, rebuild: bool| Transition {
        state: OutboxState::Failed,
        next_attempt_at: at,
        last_error: Some(code.to_owned()),
        detail: None,
        rebuild_body: rebuild,
        receipt: None,
    };
    let backoff_at = |extra: Option<u64>| {
        let d = policy.delay(entry.attempts, unit);
        let server = extra.map_or(0, |s| i64::try_from(s.min(86_400)).unwrap_or(86_400));
        now.saturating_add(d.max(server))
    };
    match outcome {
        SendOutcome::Accepted {
            tracking_number,
            accepted_at,
        } => Transition {
            state: OutboxState::Accepted,
            next_attempt_at: entry.next_attempt_at,
            last_error: None,
            detail: None,
            rebuild_body: false,
            receipt: Some((tracking_number.clone(), *accepted_at)),
        },
        SendOutcome::Rejected { code, details } => Transition {
            state: OutboxState::Rejected,
            next_attempt_at: entry.next_attempt_at,
            last_error: Some(code.clone()),
            detail: details.clone(),
            rebuild_body: false,
            receipt: None,
        },
        SendOutcome::ProofsStale if entry.attempts <= policy.max_immediate => {
            failed("proofs_stale", now, true)
        }
        SendOutcome::ProofsStale => failed("proofs_stale", backoff_at(None), true),
        SendOutcome::Unauthorized if entry.attempts <= policy.max_immediate => {
            failed("unauthorized", now, false)
        }
        SendOutcome::Unauthorized => failed("unauthorized", backoff_at(None), false),
        SendOutcome::Transient { code, retry_after } => {
            failed(code, backoff_at(*retry_after), false)
        }
    }
}

/// How long a send may stay `sending` before it is taken for dead (the app
/// was killed mid-send, or the request hung past every timeout).
pub const SEND_LEASE_SECS: i64 = 120;

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Entries to send now, in order (oldest queued first).
    pub send: Vec<String>,
    /// Entries whose `sending` lease ran out: back to `failed`, due now.
    pub expired_leases: Vec<String>,
    /// When the next entry falls due, if none is due now.
    pub wake_at: Option<i64>,
}

/// Plans a flush at `now`. Accepted and rejected entries are skipped, so a
/// rejected entry never blocks those behind it; entries whose send lease
/// expired are resent (the server dedupes, so a resend is always safe).
pub fn plan(entries: &[EntryView], now: i64) -> Plan {
    let mut p = Plan::default();
    let mut due: Vec<&EntryView> = Vec::new();
    for e in entries {
        match e.state {
            OutboxState::Sending if now.saturating_sub(e.updated_at) >= SEND_LEASE_SECS => {
                p.expired_leases.push(e.client_id.clone());
                due.push(e);
            }
            OutboxState::Queued | OutboxState::Failed if e.next_attempt_at <= now => due.push(e),
            OutboxState::Queued | OutboxState::Failed => {
                p.wake_at = Some(
                    p.wake_at
                        .map_or(e.next_attempt_at, |w| w.min(e.next_attempt_at)),
                );
            }
            _ => {}
        }
    }
    due.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
    p.send = due.into_iter().map(|e| e.client_id.clone()).collect();
    if !p.send.is_empty() {
        p.wake_at = None;
    }
    p
}

/// The resident's "try now" (`flush --now`): the entries to make due at
/// `now` although their backoff has not ended: every `queued` or `failed`
/// entry whose next attempt lies in the future. Entries in flight
/// (`sending`, whatever their lease) and finished ones (`accepted`,
/// `rejected`: a rejection needs the resident's correction, not a retry)
/// are left alone. No attempt is counted and the backoff is not reset: if
/// the send fails again, the next delay follows from the attempts so far,
/// so pressing "try now" repeatedly cannot hammer the server faster than
/// one send per press.
pub fn retry_now(entries: &[EntryView], now: i64) -> Vec<String> {
    let mut waiting: Vec<&EntryView> = entries
        .iter()
        .filter(|e| {
            matches!(e.state, OutboxState::Queued | OutboxState::Failed) && e.next_attempt_at > now
        })
        .collect();
    waiting.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
    waiting.into_iter().map(|e| e.client_id.clone()).collect()
}

/// Why the liveness check healed the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heal {
    /// Entries made due now.
    pub reset: Vec<String>,
    /// Seconds since the last send attempt (or since the oldest entry was
    /// queued, if none was ever attempted).
    pub idle_secs: i64,
}

/// The liveness check: "queue non-empty, online, no attempt for
/// `threshold_secs`" is a bug (a scheduler that never woke, a backoff date
/// pushed into the far future by a clock that jumped back). When it holds,
/// every pending entry is made due now, and the heal is reported.
///
/// `last_attempt_at` is the newest send start the store knows of.
pub fn liveness(
    entries: &[EntryView],
    online: bool,
    last_attempt_at: Option<i64>,
    now: i64,
    threshold_secs: i64,
    policy: &BackoffPolicy,
) -> Option<Heal> {
    if !online {
        return None;
    }
    let pending: Vec<&EntryView> = entries.iter().filter(|e| e.state.is_pending()).collect();
    let oldest = pending.iter().map(|e| e.created_at).min()?;
    let limit = threshold_secs.max(1);
    // A backoff never legitimately exceeds its maximum: a retry date beyond
    // it is a stuck entry whatever the clock says.
    let beyond_backoff = pending
        .iter()
        .any(|e| e.next_attempt_at > now.saturating_add(policy.max_secs));
    // The last attempt lies in the future: the clock went back, and idle
    // time cannot be measured; only impossible retry dates count then.
    let clock_went_back = last_attempt_at.is_some_and(|t| t > now.saturating_add(limit));
    let since = last_attempt_at.unwrap_or(oldest).max(oldest);
    let idle = now.saturating_sub(since).max(0);
    let stuck = if clock_went_back {
        beyond_backoff
    } else {
        idle >= limit
            && (beyond_backoff
                || pending
                    .iter()
                    .any(|e| e.next_attempt_at <= now.saturating_sub(limit)))
    };
    if !stuck {
        return None;
    }
    Some(Heal {
        reset: pending.iter().map(|e| e.client_id.clone()).collect(),
        idle_secs: idle,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn e(id: &str, state: OutboxState, next: i64, created: i64) -> EntryView {
        EntryView {
            client_id: id.into(),
            state,
            attempts: 0,
            next_attempt_at: next,
            updated_at: created,
            created_at: created,
        }
    }

    #[test]
    fn states_round_trip() {
        for s in [
            OutboxState::Queued,
            OutboxState::Sending,
            OutboxState::Accepted,
            OutboxState::Rejected,
            OutboxState::Failed,
        ] {
            assert_eq!(OutboxState::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxState::parse("lost"), None);
    }

    #[test]
    fn plan_orders_by_queue_time_and_skips_finished() {
        let entries = [
            e("b", OutboxState::Queued, 0, 20),
            e("a", OutboxState::Failed, 5, 10),
            e("r", OutboxState::Rejected, 0, 1),
            e("x", OutboxState::Accepted, 0, 2),
            e("later", OutboxState::Failed, 500, 3),
        ];
        let p = plan(&entries, 100);
        assert_eq!(p.send, vec!["a", "b"]);
        assert_eq!(p.wake_at, None);
        let p = plan(&entries[4..], 100);
        assert!(p.send.is_empty());
        assert_eq!(p.wake_at, Some(500));
    }

    #[test]
    fn retry_now_takes_only_entries_waiting_out_a_backoff() {
        let mut sending = e("in-flight", OutboxState::Sending, 0, 4);
        sending.updated_at = 99;
        let entries = [
            e("waits-b", OutboxState::Failed, 500, 20),
            e("waits-a", OutboxState::Failed, 900, 10),
            e("queued-later", OutboxState::Queued, 101, 30),
            e("due", OutboxState::Failed, 100, 1),
            e("rejected", OutboxState::Rejected, 900, 2),
            e("accepted", OutboxState::Accepted, 900, 3),
            sending,
        ];
        // Oldest first; due, finished and in-flight entries are not touched.
        assert_eq!(
            retry_now(&entries, 100),
            vec!["waits-a", "waits-b", "queued-later"]
        );
        assert!(retry_now(&entries, 1_000).is_empty());
    }

    #[test]
    fn retry_now_then_plan_sends_them_now_and_a_new_failure_backs_off_further() {
        let policy = BackoffPolicy::default();
        let mut waiting = e("w", OutboxState::Failed, 0, 10);
        waiting.attempts = 3;
        waiting.next_attempt_at = 100 + policy.delay(3, 0.5);
        let now = 100;
        assert!(plan(std::slice::from_ref(&waiting), now).send.is_empty());
        // The shell makes them due (next_attempt_at = now), as `make_due` does.
        for id in retry_now(std::slice::from_ref(&waiting), now) {
            assert_eq!(id, "w");
            waiting.next_attempt_at = now;
        }
        assert_eq!(plan(std::slice::from_ref(&waiting), now).send, vec!["w"]);
        // The send fails again: attempts are not reset, so the delay grows.
        waiting.attempts = 4;
        let t = after_send(
            &waiting,
            &SendOutcome::Transient {
                code: "network".into(),
                retry_after: None,
            },
            now,
            &policy,
            0.0,
        );
        assert_eq!(t.state, OutboxState::Failed);
        assert_eq!(t.next_attempt_at, now + policy.delay(4, 0.0));
        // The shortest wait after four failures is no shorter than the longest after three.
        assert!(policy.delay(4, 0.0) >= policy.delay(3, 1.0));
    }
}
