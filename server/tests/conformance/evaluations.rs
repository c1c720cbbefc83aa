//! [`EvaluationStore`] conformance: a rating is stored once per submission
//! and round (also when replicas race), idempotent by its rating id; the
//! case a 差评 opens is answered once and the answer reaches the resident's
//! timeline; one re-rating follows an answer; lists and statistics are
//! scoped and name no resident; operators' calendar years round-trip.

use std::sync::Arc;

use zhangban_core::calendar::CalendarYear;
use zhangban_core::evaluation::{Evaluation, Level};
use zhangban_server::store::evaluations::{
    ALREADY_RATED, ANSWER_NOTE_PREFIX, CASE_ANSWERED, NOT_FINISHED, RATING_OF_ANOTHER,
    RATING_REUSED,
};
use zhangban_server::store::operators::{OperatorWrite, Written};
use zhangban_server::store::prelude::*;
use zhangban_server::store::{NewCase, NewRating, StoreError};

use super::operators::entry;
use super::{Backend, T0, submission};

fn eval(level: Level, reason: Option<&str>) -> Evaluation {
    Evaluation {
        level,
        tags: vec![],
        comment: None,
        reason: reason.map(str::to_owned),
    }
}

fn rating(id: &str, client: &str, resident: &str, level: Level) -> NewRating {
    let bad = matches!(level, Level::Dissatisfied | Level::VeryDissatisfied);
    NewRating {
        rating_id: id.to_owned(),
        client_id: client.to_owned(),
        resident_id: resident.to_owned(),
        evaluation: eval(level, bad.then_some("窗口要求重复提交材料")),
        request_hash: format!("hash-{id}-{}", level.code()),
        at: T0 + 100,
        case: bad.then(|| NewCase {
            opened_on: "2026-09-24".into(),
            due_on: "2026-10-22".into(),
            provisional: false,
            working_days: 15,
        }),
    }
}

/// A finished submission `client` of `resident` in department `dept`.
fn finished<S: zhangban_server::store::Store>(s: &S, client: &str, resident: &str, dept: &str) {
    let mut sub = submission(client, resident, "{}");
    sub.department_code = dept.to_owned();
    let tracking = s.submit(&sub).unwrap().receipt.tracking_number;
    s.transition(&tracking, "submitted", "accepted", None, T0)
        .unwrap();
    s.transition(&tracking, "accepted", "reviewing", None, T0)
        .unwrap();
    s.transition(&tracking, "reviewing", "approved", None, T0)
        .unwrap();
}

fn answer<S: zhangban_server::store::Store>(
    s: &S,
    id: &str,
    text: &str,
) -> Result<Written, StoreError> {
    s.audited(
        &entry(1, "reviewer-1", "evaluation.case.answer"),
        OperatorWrite::AnswerCase {
            id: id.to_owned(),
            answer: text.to_owned(),
            on: "2026-10-09".into(),
            by: "reviewer-1".into(),
            at: T0 + 200,
        },
    )
}

pub fn a_rating_is_stored_once_and_a_retry_returns_it<B: Backend>(b: &B) {
    let s = b.open();
    let sub = submission("client-0001", "r1", "{}");
    s.submit(&sub).unwrap();
    // Not finished yet.
    assert!(matches!(
        s.rate(&rating(
            "rating-0001",
            "client-0001",
            "r1",
            Level::Satisfied
        )),
        Err(StoreError::InvalidState(NOT_FINISHED))
    ));
    // Another resident's submission does not exist for them.
    assert!(matches!(
        s.rate(&rating(
            "rating-0001",
            "client-0001",
            "r2",
            Level::Satisfied
        )),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.rate(&rating(
            "rating-0001",
            "no-such-client",
            "r1",
            Level::Satisfied
        )),
        Err(StoreError::NotFound)
    ));
    finished(&s, "client-0002", "r1", "dept");
    let r = rating("rating-0002", "client-0002", "r1", Level::Satisfied);
    let first = s.rate(&r).unwrap();
    assert!(first.fresh);
    assert_eq!(first.rating.round, 1);
    assert_eq!(first.rating.case, None, "a 好评 opens no case");
    let again = s.rate(&r).unwrap();
    assert!(!again.fresh);
    assert_eq!(again.rating, first.rating);
    // A second rating (another id) is refused; the id is not reusable.
    assert!(matches!(
        s.rate(&rating(
            "rating-0003",
            "client-0002",
            "r1",
            Level::VerySatisfied
        )),
        Err(StoreError::Conflict(ALREADY_RATED))
    ));
    let mut other = r.clone();
    other.request_hash = "another".into();
    assert!(matches!(
        s.rate(&other),
        Err(StoreError::Conflict(RATING_REUSED))
    ));
    finished(&s, "client-0004", "r2", "dept");
    let mut stolen = rating("rating-0002", "client-0004", "r2", Level::Satisfied);
    stolen.request_hash = r.request_hash.clone();
    assert!(matches!(
        s.rate(&stolen),
        Err(StoreError::Conflict(RATING_OF_ANOTHER))
    ));
    assert_eq!(s.rated(None).unwrap().len(), 1);
}

pub fn a_bad_rating_opens_a_case_answered_once_then_one_rerating<B: Backend>(b: &B) {
    let s = b.open();
    finished(&s, "client-0001", "r1", "dept-a");
    let bad = s
        .rate(&rating(
            "rating-bad-1",
            "client-0001",
            "r1",
            Level::Dissatisfied,
        ))
        .unwrap();
    let case = bad.rating.case.clone().unwrap();
    assert_eq!(case.id, "rating-bad-1");
    assert_eq!(case.due_on, "2026-10-22");
    assert_eq!(case.reason, "窗口要求重复提交材料");
    assert_eq!(case.answer, None);
    assert_eq!(s.case("rating-bad-1").unwrap(), Some(case.clone()));
    // No re-rating before the answer.
    assert!(matches!(
        s.rate(&rating(
            "rating-re-1",
            "client-0001",
            "r1",
            Level::Satisfied
        )),
        Err(StoreError::Conflict(ALREADY_RATED))
    ));
    let before = s.events_since("r1", 0, 100).unwrap();
    let Written::Event(event) = answer(&s, "rating-bad-1", "已整改，窗口人员已培训").unwrap()
    else {
        panic!("an answer returns its event");
    };
    assert_eq!(event.state, "approved", "the submission's state is kept");
    assert_eq!(
        event.note.as_deref(),
        Some(format!("{ANSWER_NOTE_PREFIX}已整改，窗口人员已培训").as_str())
    );
    let after = s.events_since("r1", 0, 100).unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after.last(), Some(&event));
    assert!(event.seq > before.last().unwrap().seq);
    // Once.
    assert!(matches!(
        answer(&s, "rating-bad-1", "again"),
        Err(StoreError::InvalidState(CASE_ANSWERED))
    ));
    assert!(matches!(
        answer(&s, "no-such-case", "x"),
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), after.len());
    let answered = s.case("rating-bad-1").unwrap().unwrap();
    assert_eq!(answered.answered_on.as_deref(), Some("2026-10-09"));
    assert_eq!(answered.answered_by.as_deref(), Some("reviewer-1"));
    // One re-rating, then none.
    let re = s
        .rate(&rating(
            "rating-re-1",
            "client-0001",
            "r1",
            Level::Satisfied,
        ))
        .unwrap();
    assert_eq!(re.rating.round, 2);
    assert!(matches!(
        s.rate(&rating(
            "rating-re-2",
            "client-0001",
            "r1",
            Level::VerySatisfied
        )),
        Err(StoreError::Conflict(ALREADY_RATED))
    ));
    // Statistics count the latest rating of the submission.
    let rated = s.rated(None).unwrap();
    assert_eq!(rated.len(), 1);
    assert_eq!(rated[0].level, Level::Satisfied);
    assert_eq!(rated[0].department, "dept-a");
}

pub fn cases_are_listed_by_scope_and_due_day<B: Backend>(b: &B) {
    let s = b.open();
    for (client, dept, due) in [
        ("client-0001", "dept-a", "2026-10-22"),
        ("client-0002", "dept-b", "2026-10-01"),
        ("client-0003", "dept-a", "2026-09-30"),
    ] {
        finished(&s, client, "r1", dept);
        let mut r = rating(
            &format!("rating-{client}"),
            client,
            "r1",
            Level::VeryDissatisfied,
        );
        if let Some(c) = r.case.as_mut() {
            c.due_on = due.to_owned();
        }
        s.rate(&r).unwrap();
    }
    let all: Vec<String> = s
        .cases(None, true)
        .unwrap()
        .into_iter()
        .map(|c| c.due_on)
        .collect();
    assert_eq!(all, ["2026-09-30", "2026-10-01", "2026-10-22"]);
    let a = s.cases(Some(&["dept-a".to_owned()]), true).unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|c| c.department_code == "dept-a"));
    assert!(
        s.cases(Some(&[]), true).unwrap().is_empty(),
        "no scope, nothing"
    );
    answer(&s, "rating-client-0003", "已处理").unwrap();
    assert_eq!(
        s.cases(Some(&["dept-a".to_owned()]), true).unwrap().len(),
        1
    );
    assert_eq!(
        s.cases(Some(&["dept-a".to_owned()]), false).unwrap().len(),
        2
    );
    let rated_b = s.rated(Some(&["dept-b".to_owned()])).unwrap();
    assert_eq!(rated_b.len(), 1);
    assert_eq!(rated_b[0].department, "dept-b");
    assert_eq!(rated_b[0].guide_id, "guide");
}

pub fn ratings_hold_under_concurrent_attempts<B: Backend>(b: &B) {
    let s = Arc::new(b.open());
    finished(&*s, "client-0001", "r1", "dept");
    // Sixteen replicas deliver the same rating, sixteen others a rating of
    // their own: one rating is stored, and each retry of it gets it back.
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let id = if i % 2 == 0 {
                    "rating-same".to_owned()
                } else {
                    format!("rating-other-{i:02}")
                };
                (
                    id.clone(),
                    s.rate(&rating(&id, "client-0001", "r1", Level::Dissatisfied)),
                )
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stored: Vec<_> = answers
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .collect();
    assert_eq!(stored.iter().filter(|r| r.fresh).count(), 1, "stored once");
    let winner = stored.iter().find(|r| r.fresh).unwrap().rating.clone();
    for (id, r) in &answers {
        match r {
            Ok(o) => {
                assert_eq!(o.rating, winner);
                assert_eq!(id, &winner.rating_id);
            }
            Err(e) => {
                assert!(
                    matches!(e, StoreError::Conflict(ALREADY_RATED)),
                    "{id}: {e:?}"
                );
                assert_ne!(id, &winner.rating_id);
            }
        }
    }
    assert_eq!(s.rated(None).unwrap().len(), 1);
    assert_eq!(s.cases(None, false).unwrap().len(), 1);
    // Concurrent answers: one wins, one event.
    let before = s.events_since("r1", 0, 100).unwrap().len();
    let id = winner.rating_id.clone();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            let id = id.clone();
            std::thread::spawn(move || answer(&*s, &id, &format!("答复 {i}")).is_ok())
        })
        .collect();
    let won = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(won, 1);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), before + 1);
}

pub fn calendar_years_round_trip_and_move_open_cases<B: Backend>(b: &B) {
    let s = b.open();
    assert!(s.calendar_years().unwrap().is_empty());
    finished(&s, "client-0001", "r1", "dept");
    s.rate(&rating(
        "rating-bad-1",
        "client-0001",
        "r1",
        Level::Dissatisfied,
    ))
    .unwrap();
    let year = CalendarYear {
        year: 2027,
        source: "test notice".into(),
        holidays: vec![("2027-01-01".into(), "2027-01-03".into(), "元旦".into())],
        workdays: vec![],
    };
    let put = |y: CalendarYear, redue: Vec<(String, String, bool)>| {
        s.audited(
            &entry(1, "admin", "calendar.put"),
            OperatorWrite::PutCalendarYear {
                year: y,
                redue,
                at: T0,
            },
        )
        .unwrap()
    };
    put(
        year.clone(),
        vec![("rating-bad-1".into(), "2026-10-23".into(), true)],
    );
    assert_eq!(s.calendar_years().unwrap(), vec![year.clone()]);
    let moved = s.case("rating-bad-1").unwrap().unwrap();
    assert_eq!(
        (moved.due_on.as_str(), moved.provisional),
        ("2026-10-23", true)
    );
    let mut replaced = year;
    replaced.workdays = vec!["2027-01-09".into()];
    put(replaced.clone(), vec![]);
    assert_eq!(s.calendar_years().unwrap(), vec![replaced]);
}
