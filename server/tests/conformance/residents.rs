//! [`ResidentStore`]: activation codes, devices, challenges and sessions.

use zhangban_server::activation::SealedCode;
use zhangban_server::store::prelude::*;
use zhangban_server::store::{
    Device, Enrolment, NewActivation, NewChallenge, Refusal, Retirement, Session, StoreError,
};

use super::{Backend, T0};

fn code(id: &str, mac: &str) -> SealedCode {
    SealedCode {
        id: id.to_owned(),
        mac: mac.to_owned(),
    }
}

fn device(id: &str) -> Device {
    Device {
        id: id.to_owned(),
        // Filled in by the store from the code's resident.
        resident_id: String::new(),
        jwk: format!("{{\"kid\":\"{id}\"}}"),
    }
}

fn enrolled(id: &str, resident: &str) -> Enrolment {
    Enrolment::Enrolled(Device {
        resident_id: resident.to_owned(),
        ..device(id)
    })
}

fn activation<'a>(code: &'a SealedCode, resident: &'a str, uses: u32) -> NewActivation<'a> {
    NewActivation {
        code,
        resident_id: resident,
        expires_at: T0 + 3600,
        uses,
    }
}

pub fn activation_code_enrols_once_per_use_and_locks<B: Backend>(b: &B) {
    let s = b.open();
    s.put_resident("r1", "甲", T0).unwrap();
    s.put_resident("r2", "乙", T0).unwrap();
    let good = code("AAAA", "mac-good");
    s.put_activation(&activation(&good, "r1", 1)).unwrap();

    // One use: one device.
    assert_eq!(
        s.enrol(&good, &device("d1"), T0, 5).unwrap(),
        enrolled("d1", "r1")
    );
    assert_eq!(
        s.enrol(&good, &device("d2"), T0, 5).unwrap(),
        Enrolment::Refused(Refusal::UsedUp)
    );
    assert_eq!(
        s.device("d2").unwrap(),
        None,
        "a refused device is not stored"
    );
    // The same device again is idempotent, with no use left.
    assert_eq!(
        s.enrol(&good, &device("d1"), T0, 5).unwrap(),
        enrolled("d1", "r1")
    );
    assert_eq!(s.devices_of("r1").unwrap().len(), 1);

    // Unknown id; wrong code for a known id (counted); locked at the cap,
    // even for the right code.
    let fresh = code("BBBB", "mac-b");
    s.put_activation(&activation(&fresh, "r2", 3)).unwrap();
    assert_eq!(
        s.enrol(&code("ZZZZ", "mac-b"), &device("d3"), T0, 2)
            .unwrap(),
        Enrolment::Refused(Refusal::Unknown)
    );
    for _ in 0..2 {
        assert_eq!(
            s.enrol(&code("BBBB", "mac-wrong"), &device("d3"), T0, 2)
                .unwrap(),
            Enrolment::Refused(Refusal::Wrong)
        );
    }
    assert_eq!(
        s.enrol(&fresh, &device("d3"), T0, 2).unwrap(),
        Enrolment::Refused(Refusal::Locked)
    );
    // Storing the code again resets its failures (an operator reissues it).
    s.put_activation(&activation(&fresh, "r2", 3)).unwrap();
    assert_eq!(
        s.enrol(&fresh, &device("d3"), T0, 2).unwrap(),
        enrolled("d3", "r2")
    );

    // Expired: refused, nothing used.
    let old = code("CCCC", "mac-c");
    s.put_activation(&activation(&old, "r2", 1)).unwrap();
    assert_eq!(
        s.enrol(&old, &device("d4"), T0 + 3601, 5).unwrap(),
        Enrolment::Refused(Refusal::Expired)
    );
    // A device already enrolled for another resident is a conflict.
    assert!(matches!(
        s.enrol(&old, &device("d1"), T0, 5),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.enrol(&old, &device("d4"), T0, 5).unwrap(),
        enrolled("d4", "r2")
    );
    let mut mine: Vec<_> = s
        .devices_of("r2")
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    mine.sort();
    assert_eq!(mine, ["d3", "d4"]);
}

pub fn activation_code_ids_are_unique<B: Backend>(b: &B) {
    let s = b.open();
    s.put_resident("r1", "甲", T0).unwrap();
    let first = code("AAAA", "mac-1");
    s.put_activation(&activation(&first, "r1", 1)).unwrap();
    assert!(matches!(
        s.put_activation(&activation(&code("AAAA", "mac-2"), "r1", 1)),
        Err(StoreError::Conflict(_))
    ));
    // The first code still works, the second never did.
    assert_eq!(
        s.enrol(&code("AAAA", "mac-2"), &device("d1"), T0, 5)
            .unwrap(),
        Enrolment::Refused(Refusal::Wrong)
    );
    assert_eq!(
        s.enrol(&first, &device("d1"), T0, 5).unwrap(),
        enrolled("d1", "r1")
    );
}

fn challenge<'a>(
    id: &'a str,
    device: &'a str,
    nonce: &'a str,
    expires_at: i64,
) -> NewChallenge<'a> {
    NewChallenge {
        id,
        device_id: device,
        nonce,
        expires_at,
        max_pending: 3,
    }
}

pub fn challenges_are_capped_per_device_pruned_and_taken_once<B: Backend>(b: &B) {
    let s = b.open();
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    for (i, id) in ids.iter().enumerate() {
        let nonce = format!("n{i}");
        s.put_challenge(&challenge(id, "d1", &nonce, T0 + 60 + i as i64), T0)
            .unwrap();
    }
    assert_eq!(s.challenge_count().unwrap(), 3, "capped at max_pending");
    // The oldest were dropped; the newest are each taken once.
    assert_eq!(s.take_challenge("c1").unwrap(), None);
    assert_eq!(s.take_challenge("c2").unwrap(), None);
    assert_eq!(
        s.take_challenge("c5").unwrap(),
        Some(("d1".into(), "n4".into(), T0 + 64))
    );
    assert_eq!(s.take_challenge("c5").unwrap(), None, "taken at most once");
    assert_eq!(s.challenge_count().unwrap(), 2);
    // Another device has its own cap.
    s.put_challenge(&challenge("e1", "d2", "m1", T0 + 60), T0)
        .unwrap();
    assert_eq!(s.challenge_count().unwrap(), 3);
    // Later, every expired challenge is pruned when one is stored.
    s.put_challenge(&challenge("f1", "d3", "o1", T0 + 2000), T0 + 1000)
        .unwrap();
    assert_eq!(s.challenge_count().unwrap(), 1);
    assert_eq!(s.take_challenge("c3").unwrap(), None);
    assert!(s.take_challenge("f1").unwrap().is_some());
}

pub fn sessions_and_devices_round_trip<B: Backend>(b: &B) {
    let s = b.open();
    let session = Session {
        device_id: "d1".into(),
        resident_id: "r1".into(),
        expires_at: T0 + 900,
    };
    s.put_token("hash-1", &session).unwrap();
    assert_eq!(s.session("hash-1").unwrap(), Some(session.clone()));
    assert_eq!(s.session("hash-2").unwrap(), None);
    // An expired session is returned: the caller judges it.
    let old = Session {
        expires_at: T0 - 10,
        ..session.clone()
    };
    s.put_token("hash-old", &old).unwrap();
    assert_eq!(s.session("hash-old").unwrap(), Some(old));
    // Storing a token keeps the live ones.
    assert_eq!(s.session("hash-1").unwrap(), Some(session));
    assert_eq!(s.device("d1").unwrap(), None);
    assert!(s.devices_of("r1").unwrap().is_empty());
    // Creating a resident twice is idempotent.
    s.put_resident("r1", "甲", T0).unwrap();
    s.put_resident("r1", "甲", T0 + 1).unwrap();
}

fn session_of(device: &str, resident: &str) -> Session {
    Session {
        device_id: device.to_owned(),
        resident_id: resident.to_owned(),
        expires_at: T0 + 900,
    }
}

pub fn reenrolment_retires_the_old_device_with_its_tokens_at_once<B: Backend>(b: &B) {
    let s = b.open();
    s.put_resident("r1", "甲", T0).unwrap();
    s.put_resident("r2", "乙", T0).unwrap();
    let c1 = code("CCCC", "mac-c1");
    s.put_activation(&activation(&c1, "r1", 2)).unwrap();
    let c2 = code("DDDD", "mac-c2");
    s.put_activation(&activation(&c2, "r2", 1)).unwrap();
    assert_eq!(
        s.enrol(&c1, &device("d1"), T0, 5).unwrap(),
        enrolled("d1", "r1")
    );
    assert_eq!(
        s.enrol(&c2, &device("e1"), T0, 5).unwrap(),
        enrolled("e1", "r2")
    );
    s.put_token("tok-d1", &session_of("d1", "r1")).unwrap();
    s.put_token("tok-e1", &session_of("e1", "r2")).unwrap();
    s.put_challenge(
        &NewChallenge {
            id: "ch-d1",
            device_id: "d1",
            nonce: "n",
            expires_at: T0 + 60,
            max_pending: 4,
        },
        T0,
    )
    .unwrap();

    // Refusals change nothing: a wrong code (counted), another resident's
    // device, an unknown device, the device replacing itself.
    let (out, revoked) = s
        .reenrol(&code("CCCC", "mac-bad"), &device("d2"), "d1", T0, 5)
        .unwrap();
    assert_eq!((out, revoked), (Enrolment::Refused(Refusal::Wrong), vec![]));
    for old in ["e1", "nobody", "d1x"] {
        let (out, revoked) = s.reenrol(&c1, &device("d2"), old, T0, 5).unwrap();
        assert_eq!((out, revoked), (Enrolment::NotReplaceable, vec![]), "{old}");
    }
    let (out, _) = s.reenrol(&c1, &device("d1"), "d1", T0, 5).unwrap();
    assert_eq!(out, Enrolment::NotReplaceable);
    assert_eq!(
        s.device("d2").unwrap(),
        None,
        "a refused device is not stored"
    );
    assert_eq!(s.retirement("d1").unwrap(), None);
    assert!(s.session("tok-d1").unwrap().is_some());

    // The re-enrolment: d2 enrolled, d1 retired, its token and challenge
    // gone, in one step; another resident's device untouched.
    let (out, revoked) = s.reenrol(&c1, &device("d2"), "d1", T0 + 5, 5).unwrap();
    assert_eq!(out, enrolled("d2", "r1"));
    assert_eq!(revoked, vec!["tok-d1".to_owned()]);
    assert_eq!(s.session("tok-d1").unwrap(), None);
    assert!(s.session("tok-e1").unwrap().is_some());
    assert_eq!(s.take_challenge("ch-d1").unwrap(), None);
    assert_eq!(
        s.retirement("d1").unwrap(),
        Some(Retirement {
            at: T0 + 5,
            replaced_by: "d2".into()
        })
    );
    assert_eq!(s.retirement("d2").unwrap(), None);
    assert!(s.device("d1").unwrap().is_some(), "kept, as retired");
    let active: Vec<String> = s
        .devices_of("r1")
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        active,
        vec!["d2".to_owned()],
        "only active devices get copies"
    );

    // A retired device gets no token and never enrols again.
    assert!(matches!(
        s.put_token("tok-d1-late", &session_of("d1", "r1")),
        Err(StoreError::InvalidState(_))
    ));
    assert_eq!(s.session("tok-d1-late").unwrap(), None);
    assert_eq!(
        s.enrol(&c1, &device("d1"), T0 + 6, 5).unwrap(),
        Enrolment::DeviceRetired
    );

    // The same re-enrolment again (a lost answer) is answered alike and
    // consumes no use (the code's two uses are spent); another new device
    // cannot take the retired one's place.
    let (out, revoked) = s.reenrol(&c1, &device("d2"), "d1", T0 + 7, 5).unwrap();
    assert_eq!((out, revoked), (enrolled("d2", "r1"), vec![]));
    s.put_activation(&activation(&c1, "r1", 3)).unwrap();
    let (out, _) = s.reenrol(&c1, &device("d3"), "d1", T0 + 8, 5).unwrap();
    assert_eq!(out, Enrolment::NotReplaceable);
    assert_eq!(s.device("d3").unwrap(), None);

    // The retirement is durable.
    drop(s);
    let s = b.open();
    assert_eq!(
        s.retirement("d1").unwrap().map(|r| r.replaced_by),
        Some("d2".into())
    );
    assert_eq!(
        s.enrol(&c1, &device("d1"), T0 + 9, 5).unwrap(),
        Enrolment::DeviceRetired
    );
}

/// Runs `f(i)` on `n` threads at once against one store (a pool of
/// connections: on PostgreSQL, concurrent transactions as on several
/// replicas); the answers in thread order.
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

pub fn activation_codes_hold_under_concurrent_attempts<B: Backend>(b: &B) {
    let s = std::sync::Arc::new(b.open());
    s.put_resident("r1", "甲", T0).unwrap();
    s.put_resident("r2", "乙", T0).unwrap();
    // Three uses, eight devices at once: exactly three enrol.
    let three = code("AAAA", "mac-a");
    s.put_activation(&activation(&three, "r1", 3)).unwrap();
    let outcomes = at_once(&s, 8, move |s, i| {
        s.enrol(&code("AAAA", "mac-a"), &device(&format!("d{i}")), T0, 5)
            .unwrap()
    });
    let enrolled = outcomes
        .iter()
        .filter(|o| matches!(o, Enrolment::Enrolled(_)))
        .count();
    assert_eq!(enrolled, 3, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            Enrolment::Enrolled(_) | Enrolment::Refused(Refusal::UsedUp)
        )),
        "{outcomes:?}"
    );
    assert_eq!(s.devices_of("r1").unwrap().len(), 3);
    // One of the winners, re-enrolled below.
    let old = outcomes
        .iter()
        .find_map(|o| match o {
            Enrolment::Enrolled(d) => Some(d.id.clone()),
            _ => None,
        })
        .unwrap();

    // Eight wrong guesses at once with a lockout at three: three counted,
    // the rest refused as locked; then even the right code is locked.
    let locked = code("BBBB", "mac-b");
    s.put_activation(&activation(&locked, "r2", 1)).unwrap();
    let outcomes = at_once(&s, 8, |s, i| {
        s.enrol(&code("BBBB", "mac-wrong"), &device(&format!("e{i}")), T0, 3)
            .unwrap()
    });
    let wrong = outcomes
        .iter()
        .filter(|o| **o == Enrolment::Refused(Refusal::Wrong))
        .count();
    assert_eq!(wrong, 3, "{outcomes:?}");
    assert_eq!(
        s.enrol(&locked, &device("e9"), T0, 3).unwrap(),
        Enrolment::Refused(Refusal::Locked)
    );

    // Two re-enrolments retiring the same device for different new ones,
    // with two codes of its resident: one wins, the other is refused.
    let c1 = code("CCCC", "mac-c1");
    let c2 = code("DDDD", "mac-c2");
    s.put_activation(&activation(&c1, "r1", 1)).unwrap();
    s.put_activation(&activation(&c2, "r1", 1)).unwrap();
    let replaced = old.clone();
    let outcomes = at_once(&s, 2, move |s, i| {
        let (c, new) = if i == 0 {
            (code("CCCC", "mac-c1"), "n0")
        } else {
            (code("DDDD", "mac-c2"), "n1")
        };
        s.reenrol(&c, &device(new), &replaced, T0 + 1, 5).unwrap().0
    });
    let won: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Enrolment::Enrolled(d) => Some(d.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&Enrolment::NotReplaceable),
        "{outcomes:?}"
    );
    assert_eq!(
        s.retirement(&old).unwrap().map(|r| r.replaced_by),
        Some(won[0].clone())
    );
}
