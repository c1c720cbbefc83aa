//! [`BundleStore`]: bundle publication (a bundle's version rises, the
//! list's version is the next with every change), and a bundle
//! application's exactly-once fan-out into member submissions (same id,
//! same receipt, nothing new; also under concurrent retries; nothing stored
//! when one member cannot be), with its state derived from the members'.

use std::sync::Arc;

use zhangban_core::bundle::{Bundle, BundleMember};
use zhangban_server::store::bundles::{derived_state, member_client_id};
use zhangban_server::store::prelude::*;
use zhangban_server::store::{NewBundleMember, NewBundleSubmission, StoreError};

use super::attachments::{link, upload_all};
use super::{Backend, T0, submission};

fn bundle(id: &str, version: u32, name: &str) -> Bundle {
    Bundle {
        id: id.to_owned(),
        name: name.to_owned(),
        version,
        summary: "一次申请".to_owned(),
        questions: Vec::new(),
        members: vec![
            BundleMember {
                key: "a".to_owned(),
                guide_id: "guide-a".to_owned(),
                when: None,
            },
            BundleMember {
                key: "b".to_owned(),
                guide_id: "guide-b".to_owned(),
                when: None,
            },
        ],
        shared: Vec::new(),
    }
}

/// A bundle application by `resident` under `client_id` with members
/// `keys` (guide `guide-<key>`, department `dept-<key>`); the request hash
/// follows `body`.
fn application(client_id: &str, resident: &str, body: &str, keys: &[&str]) -> NewBundleSubmission {
    NewBundleSubmission {
        client_id: client_id.to_owned(),
        resident_id: resident.to_owned(),
        bundle_id: "newborn".to_owned(),
        bundle_version: 1,
        body: body.to_owned(),
        request_hash: format!("hash-of-{body}"),
        area_code: "511602000000".to_owned(),
        at: T0,
        members: keys
            .iter()
            .map(|k| {
                let guide = format!("guide-{k}");
                let mut s = submission(&member_client_id(client_id, &guide), resident, "{}");
                s.guide_id = guide;
                s.department_code = format!("dept-{k}");
                s.request_hash = format!("hash-of-{k}");
                NewBundleMember {
                    key: (*k).to_owned(),
                    submission: s,
                }
            })
            .collect(),
    }
}

pub fn bundle_versions_rise_and_each_change_is_the_next_list_version<B: Backend>(b: &B) {
    let s = b.open();
    assert_eq!(s.bundles_version().unwrap(), 0);
    assert!(s.bundles().unwrap().bundles.is_empty());
    let v1 = bundle("newborn", 1, "新生儿出生一件事");
    let put = s.put_bundle(&v1, T0).unwrap();
    assert_eq!((put.list_version, put.changed), (1, true));
    // The same version and content again: unchanged.
    let put = s.put_bundle(&v1, T0 + 1).unwrap();
    assert_eq!((put.list_version, put.changed), (1, false));
    // Other content under the same version, or a lower version: refused.
    assert!(matches!(
        s.put_bundle(&bundle("newborn", 1, "改了名字"), T0),
        Err(StoreError::Conflict(_))
    ));
    let v2 = bundle("newborn", 2, "新生儿出生一件事（新）");
    assert_eq!(s.put_bundle(&v2, T0).unwrap().list_version, 2);
    assert!(matches!(
        s.put_bundle(&v1, T0),
        Err(StoreError::Conflict(_))
    ));
    let other = bundle("business-start", 1, "企业开办一件事");
    assert_eq!(s.put_bundle(&other, T0).unwrap().list_version, 3);
    let list = s.bundles().unwrap();
    assert_eq!(list.version, 3);
    assert_eq!(list.bundles, vec![other, v2.clone()], "by id");
    assert_eq!(s.bundles_version().unwrap(), 3);
    assert_eq!(s.bundle("newborn").unwrap(), Some(v2));
    assert_eq!(s.bundle("none").unwrap(), None);
    drop(s);
    // Durable.
    let s = b.open();
    assert_eq!(s.bundles_version().unwrap(), 3);
}

pub fn bundle_publishers_serialise_under_concurrency<B: Backend>(b: &B) {
    let s = Arc::new(b.open());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                (1..=5u32)
                    .map(|v| {
                        s.put_bundle(&bundle(&format!("b{t}"), v, "x"), T0)
                            .unwrap()
                            .list_version
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<u64>>(), "each taken once");
    assert_eq!(s.bundles().unwrap().version, 40);
    // Racing publishers of one bundle: each version is stored once, the
    // others refused or unchanged, never a version going back.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for v in 1..=5u32 {
                    match s.put_bundle(&bundle("same", v, "x"), T0) {
                        Ok(_) | Err(StoreError::Conflict(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.bundle("same").unwrap().unwrap().version, 5);
    assert_eq!(s.bundles().unwrap().version, 45);
}

pub fn a_bundle_fans_out_once_and_a_retry_gets_the_same_receipt<B: Backend>(b: &B) {
    let s = b.open();
    let app = application("bundle-0001", "r1", "{\"x\":1}", &["a", "b", "c"]);
    let first = s.submit_bundle(&app).unwrap();
    assert!(first.fresh);
    let r = &first.receipt;
    assert_eq!(
        (r.client_id.as_str(), r.bundle_id.as_str(), r.bundle_version),
        ("bundle-0001", "newborn", 1)
    );
    assert_eq!(r.accepted_at, T0);
    // The bundle's number first, then one per member, in order.
    assert_eq!(r.tracking_number, "511602202609210000001");
    let keys: Vec<_> = r.members.iter().map(|m| m.member.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    for (i, m) in r.members.iter().enumerate() {
        assert_eq!(
            m.receipt.tracking_number,
            format!("51160220260921000000{}", i + 2)
        );
        assert_eq!(
            m.receipt.client_id,
            member_client_id("bundle-0001", &m.receipt.guide_id)
        );
        // Each member is an ordinary submission of its own department.
        assert_eq!(
            s.receipt(&m.receipt.client_id).unwrap().unwrap().2,
            m.receipt
        );
        assert_eq!(
            s.submission_department(&m.receipt.tracking_number)
                .unwrap()
                .as_deref(),
            Some(format!("dept-{}", m.member).as_str())
        );
    }
    assert_eq!(s.submissions_of("r1").unwrap().len(), 3);
    let events = s.events_since("r1", 0, 100).unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.state == "submitted"));

    // Retries: the same receipt, nothing new.
    for _ in 0..3 {
        let again = s.submit_bundle(&app).unwrap();
        assert!(!again.fresh);
        assert_eq!(&again.receipt, r);
    }
    assert_eq!(s.submissions_of("r1").unwrap().len(), 3);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), 3);
    let (owner, hash, stored) = s.bundle_receipt("bundle-0001").unwrap().unwrap();
    assert_eq!(
        (owner.as_str(), hash.as_str(), &stored),
        ("r1", "hash-of-{\"x\":1}", r)
    );
    assert_eq!(s.bundle_receipt("bundle-9999").unwrap(), None);

    // The id reused for other content, or by another resident: refused,
    // nothing stored.
    assert!(matches!(
        s.submit_bundle(&application("bundle-0001", "r1", "{\"x\":2}", &["a"])),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.submit_bundle(&application(
            "bundle-0001",
            "r2",
            "{\"x\":1}",
            &["a", "b", "c"]
        )),
        Err(StoreError::Conflict(_))
    ));
    assert!(s.submissions_of("r2").unwrap().is_empty());
    assert!(s.bundle_submissions_of("r2").unwrap().is_empty());
    assert_eq!(s.bundle_submission("r2", "bundle-0001").unwrap(), None);

    // The state follows the members'.
    let rec = s.bundle_submission("r1", "bundle-0001").unwrap().unwrap();
    assert_eq!(rec.receipt, *r);
    assert_eq!(rec.state, "submitted");
    assert_eq!(rec.members.len(), 3);
    assert_eq!(rec.members[1].member, "b");
    assert_eq!(rec.members[1].submission.receipt, r.members[1].receipt);
    let t: Vec<String> = r
        .members
        .iter()
        .map(|m| m.receipt.tracking_number.clone())
        .collect();
    for n in &t {
        s.transition(n, "submitted", "accepted", None, T0 + 1)
            .unwrap();
    }
    assert_eq!(
        s.bundle_submission("r1", "bundle-0001")
            .unwrap()
            .unwrap()
            .state,
        "accepted"
    );
    s.transition(&t[1], "accepted", "returned", Some("补正"), T0 + 2)
        .unwrap();
    let rec = s.bundle_submission("r1", "bundle-0001").unwrap().unwrap();
    assert_eq!(rec.state, "returned");
    assert_eq!(rec.members[1].submission.state, "returned");
    assert_eq!(rec.members[0].submission.state, "accepted");
    s.transition(&t[1], "returned", "accepted", None, T0 + 3)
        .unwrap();
    for n in &t {
        s.transition(n, "accepted", "reviewing", None, T0 + 4)
            .unwrap();
    }
    s.transition(&t[0], "reviewing", "approved", None, T0 + 5)
        .unwrap();
    s.transition(&t[1], "reviewing", "denied", None, T0 + 5)
        .unwrap();
    assert_eq!(
        s.bundle_submission("r1", "bundle-0001")
            .unwrap()
            .unwrap()
            .state,
        "accepted"
    );
    s.transition(&t[2], "reviewing", "approved", None, T0 + 6)
        .unwrap();
    assert_eq!(
        s.bundle_submission("r1", "bundle-0001")
            .unwrap()
            .unwrap()
            .state,
        "done"
    );

    // The resident's list, newest first.
    let second = s
        .submit_bundle(&application("bundle-0002", "r1", "{}", &["a", "b"]))
        .unwrap();
    let all = s.bundle_submissions_of("r1").unwrap();
    let ids: Vec<_> = all.iter().map(|b| b.receipt.client_id.as_str()).collect();
    assert_eq!(ids, ["bundle-0002", "bundle-0001"]);
    assert_eq!(all[0].receipt, second.receipt);
    assert_eq!(all[1].state, "done");
}

pub fn bundle_dedupe_holds_under_concurrent_retries<B: Backend>(b: &B) {
    let s = Arc::new(b.open());
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                s.submit_bundle(&application(
                    "bundle-0001",
                    "r1",
                    "{}",
                    &["a", "b", "c", "d"],
                ))
                .unwrap()
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.fresh).count(), 1, "stored once");
    assert!(answers.iter().all(|a| a.receipt == answers[0].receipt));
    assert_eq!(s.submissions_of("r1").unwrap().len(), 4);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), 4);
    assert_eq!(s.bundle_submissions_of("r1").unwrap().len(), 1);
}

pub fn a_bundle_whose_member_cannot_be_stored_stores_nothing<B: Backend>(b: &B) {
    let s = b.open();
    // A member's id taken by an unrelated submission.
    let app = application("bundle-0001", "r1", "{}", &["a", "b"]);
    let taken = &app.members[1].submission.client_id;
    s.submit(&submission(taken, "r1", "{}")).unwrap();
    assert!(matches!(
        s.submit_bundle(&app),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.bundle_receipt("bundle-0001").unwrap(), None);
    assert_eq!(s.submissions_of("r1").unwrap().len(), 1);
    assert_eq!(s.events_since("r1", 0, 100).unwrap().len(), 1);
    assert!(s.bundle_submissions_of("r1").unwrap().is_empty());

    // A member's attachment not uploaded: nothing stored.
    let file = b"scan".to_vec();
    let mut app = application("bundle-0002", "r1", "{}", &["a", "b"]);
    app.members[1].submission.attachments = vec![link("scan", &file)];
    assert!(matches!(
        s.submit_bundle(&app),
        Err(StoreError::InvalidState(_))
    ));
    assert_eq!(s.bundle_receipt("bundle-0002").unwrap(), None);
    assert_eq!(s.submissions_of("r1").unwrap().len(), 1);
    // Uploaded: accepted, the link recorded with that member.
    upload_all(&s, "r1", &file);
    let ok = s.submit_bundle(&app).unwrap();
    assert!(ok.fresh);
    let member = &ok.receipt.members[1].receipt.tracking_number;
    assert_eq!(
        s.submission_attachments(member).unwrap().map(|l| l.len()),
        Some(1)
    );
}

pub fn derived_state_follows_the_members<B: Backend>(_b: &B) {
    assert_eq!(derived_state(["submitted", "accepted"]), "submitted");
    assert_eq!(derived_state(["accepted", "reviewing"]), "accepted");
    assert_eq!(derived_state(["approved", "returned"]), "returned");
    assert_eq!(derived_state(["approved", "denied"]), "done");
    assert_eq!(derived_state(["approved", "reviewing"]), "accepted");
}
