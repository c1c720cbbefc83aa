//! [`OperatorStore`]: operators, and the audit trail appended in the same
//! transaction as the action it records, as a hash chain.

use zhangban_server::audit::{self, AuditEntry};
use zhangban_server::store::StoreError;
use zhangban_server::store::operators::{
    AuditFilter, BOOTSTRAP_OPERATOR, Bootstrap, NewOperator, OperatorWrite, Written,
};
use zhangban_server::store::prelude::*;

use super::{Backend, T0};

pub fn entry(n: i64, actor: &str, action: &str) -> AuditEntry {
    AuditEntry {
        at: T0 + n,
        actor: actor.to_owned(),
        role: "issuer".into(),
        action: action.to_owned(),
        target: format!("{{\"licence\":\"L{n}\"}}"),
        outcome: "ok".into(),
    }
}

pub fn audit_rows_append_in_a_chain<B: Backend>(b: &B) {
    let s = b.open();
    assert!(s.audit_log(&AuditFilter::default()).unwrap().is_empty());
    let mut want = Vec::new();
    for n in 0..12 {
        let actor = format!("op-{}", n % 3);
        let action = if n % 2 == 0 {
            "licence.revoke"
        } else {
            "guide.put"
        };
        let e = entry(n, &actor, action);
        assert_eq!(s.audited(&e, OperatorWrite::None).unwrap(), Written::Done);
        want.push(e);
    }
    let rows = s.audit_log(&AuditFilter::default()).unwrap();
    let seqs: Vec<_> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<_>>(),
        "appended in order, no gaps"
    );
    let entries: Vec<_> = rows.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, want);
    // Each row links to the one before it and hashes to its recorded hash.
    let intact = audit::verify(&rows).unwrap();
    assert_eq!(intact.rows, 12);
    assert_eq!(intact.head, rows[11].hash);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
    }
    assert_eq!(rows[0].prev, audit::to_hex(&audit::GENESIS));

    // Filters: actor, action, time window; `limit` keeps the newest,
    // oldest first.
    let by = |f: AuditFilter| -> Vec<u64> {
        s.audit_log(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.seq)
            .collect()
    };
    let actor = |a: &str| Some(a.to_owned());
    assert_eq!(
        by(AuditFilter {
            actor: actor("op-1"),
            ..Default::default()
        }),
        [2, 5, 8, 11]
    );
    assert_eq!(
        by(AuditFilter {
            action: actor("guide.put"),
            actor: actor("op-1"),
            ..Default::default()
        }),
        [2, 8]
    );
    assert_eq!(
        by(AuditFilter {
            since: Some(T0 + 3),
            until: Some(T0 + 6),
            ..Default::default()
        }),
        [4, 5, 6]
    );
    assert_eq!(
        by(AuditFilter {
            limit: Some(3),
            ..Default::default()
        }),
        [10, 11, 12]
    );
}

pub fn an_action_and_its_row_commit_together_or_not_at_all<B: Backend>(b: &B) {
    let s = b.open();
    let count = || s.audit_log(&AuditFilter::default()).unwrap().len();
    // The write fails (no such guide): its row is rolled back with it.
    let failed = s.audited(
        &entry(1, "op", "guide.delete"),
        OperatorWrite::DeleteGuide {
            id: "no-such-guide".into(),
        },
    );
    assert!(matches!(failed, Err(StoreError::NotFound)));
    assert_eq!(count(), 0);
    // A failing transition leaves neither the event nor the row.
    assert!(
        s.audited(
            &entry(2, "op", "submission.transition"),
            OperatorWrite::Transition {
                tracking: "no-such-number".into(),
                from: "submitted".into(),
                to: "accepted".into(),
                note: None,
                at: T0,
            },
        )
        .is_err()
    );
    assert_eq!(count(), 0);
    // The write succeeds: the guide and the row are both there.
    let written = s
        .audited(
            &entry(3, "op", "guide.put"),
            OperatorWrite::PutGuide {
                id: "g1".into(),
                checksum: "c1".into(),
                body: "{}".into(),
            },
        )
        .unwrap();
    let Written::Seq(seq) = written else {
        panic!("{written:?}")
    };
    assert_eq!(s.catalog_changes(0, 10).unwrap().head, seq);
    assert_eq!(count(), 1);
    assert!(s.guide("g1").unwrap().is_some());
}

fn operator(name: &str, role: &str, token_hash: &str) -> NewOperator {
    NewOperator {
        name: name.to_owned(),
        role: role.to_owned(),
        scopes: vec!["D-1".into()],
        token_hash: token_hash.to_owned(),
        created_at: T0,
    }
}

pub fn operators_names_are_never_reused_and_the_last_admin_stays<B: Backend>(b: &B) {
    let s = b.open();
    let put = |op: NewOperator| {
        s.audited(
            &entry(0, "admin", "operator.create"),
            OperatorWrite::PutOperator(op),
        )
    };
    let revoke = |name: &str| {
        s.audited(
            &entry(0, "admin", "operator.revoke"),
            OperatorWrite::RevokeOperator {
                name: name.into(),
                at: T0 + 10,
            },
        )
    };
    put(operator("admin-1", "admin", "h-a1")).unwrap();
    put(operator("rev-1", "reviewer", "h-r1")).unwrap();
    let found = s.operator_by_token("h-r1").unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.role.as_str()),
        ("rev-1", "reviewer")
    );
    assert_eq!(found.scopes, ["D-1"]);
    assert!(
        matches!(revoke("admin-1"), Err(StoreError::InvalidState(_))),
        "the last active admin"
    );
    revoke("rev-1").unwrap();
    assert_eq!(s.operator_by_token("h-r1").unwrap(), None, "revoked");
    assert!(matches!(revoke("rev-1"), Err(StoreError::NotFound)));
    assert!(
        matches!(
            put(operator("rev-1", "reviewer", "h-r2")),
            Err(StoreError::Conflict(_))
        ),
        "a name is never reused"
    );
    put(operator("admin-2", "admin", "h-a2")).unwrap();
    revoke("admin-1").unwrap();
    let all: Vec<_> = s
        .operators()
        .unwrap()
        .into_iter()
        .map(|o| (o.name, o.revoked_at))
        .collect();
    assert_eq!(
        all,
        [
            ("admin-1".to_owned(), Some(T0 + 10)),
            ("admin-2".to_owned(), None),
            ("rev-1".to_owned(), Some(T0 + 10)),
        ]
    );
    // Failed writes left no audit rows: 3 creates and 2 revocations.
    assert_eq!(s.audit_log(&AuditFilter::default()).unwrap().len(), 5);
}

pub fn bootstrap_is_created_rotated_and_stays_revoked<B: Backend>(b: &B) {
    let s = b.open();
    assert_eq!(s.ensure_bootstrap("h-1", T0).unwrap(), Bootstrap::Created);
    assert_eq!(s.ensure_bootstrap("h-1", T0).unwrap(), Bootstrap::Unchanged);
    assert_eq!(s.ensure_bootstrap("h-2", T0).unwrap(), Bootstrap::Rotated);
    assert_eq!(s.operator_by_token("h-1").unwrap(), None);
    let boot = s.operator_by_token("h-2").unwrap().unwrap();
    assert_eq!(
        (boot.name.as_str(), boot.role.as_str()),
        (BOOTSTRAP_OPERATOR, "admin")
    );
    let actions: Vec<_> = s
        .audit_log(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(actions, ["operator.bootstrap", "operator.bootstrap_rotate"]);
    // Revoked by another admin: it stays revoked.
    s.audited(
        &entry(0, "admin", "operator.create"),
        OperatorWrite::PutOperator(NewOperator {
            scopes: Vec::new(),
            ..operator_named("admin-1")
        }),
    )
    .unwrap();
    s.audited(
        &entry(0, "admin-1", "operator.revoke"),
        OperatorWrite::RevokeOperator {
            name: BOOTSTRAP_OPERATOR.into(),
            at: T0,
        },
    )
    .unwrap();
    assert_eq!(s.ensure_bootstrap("h-3", T0).unwrap(), Bootstrap::Revoked);
    assert_eq!(s.operator_by_token("h-3").unwrap(), None);
}

fn operator_named(name: &str) -> NewOperator {
    operator(name, "admin", &format!("h-{name}"))
}

/// Runs `f(i)` on `n` threads at once against one store; the answers in
/// thread order.
fn at_once<S, T, F>(s: &std::sync::Arc<S>, n: usize, f: F) -> Vec<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(&S, usize) -> T + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (s, f, start) = (s.clone(), f.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                f(&s, i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

pub fn audit_chain_bootstrap_and_last_admin_hold_under_concurrency<B: Backend>(b: &B) {
    let s = std::sync::Arc::new(b.open());
    // Replicas starting together: one bootstrap admin, audited once.
    let outcomes = at_once(&s, 4, |s, _| s.ensure_bootstrap("h-boot", T0).unwrap());
    let created = outcomes
        .iter()
        .filter(|o| **o == Bootstrap::Created)
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Bootstrap::Created | Bootstrap::Unchanged))
    );

    // Appenders at once: one chain, no gaps, every link intact.
    at_once(&s, 4, |s, w| {
        for n in 0..10 {
            let e = entry(n, &format!("op-{w}"), "guide.put");
            s.audited(&e, OperatorWrite::None).unwrap();
        }
    });
    let rows = s.audit_log(&AuditFilter::default()).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<_>>()
    );
    assert_eq!(audit::verify(&rows).unwrap().rows, 41);

    // Two admins revoking each other at once: one stays.
    s.audited(
        &entry(0, "admin", "operator.create"),
        OperatorWrite::PutOperator(operator_named("admin-1")),
    )
    .unwrap();
    let outcomes = at_once(&s, 2, |s, i| {
        let name = if i == 0 {
            BOOTSTRAP_OPERATOR
        } else {
            "admin-1"
        };
        s.audited(
            &entry(0, "admin", "operator.revoke"),
            OperatorWrite::RevokeOperator {
                name: name.into(),
                at: T0,
            },
        )
    });
    let revoked = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(revoked, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(StoreError::InvalidState(_)))),
        "{outcomes:?}"
    );
    let active = s
        .operators()
        .unwrap()
        .into_iter()
        .filter(|o| o.revoked_at.is_none())
        .count();
    assert_eq!(active, 1);
}
