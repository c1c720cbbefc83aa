//! Durability: what a store call wrote before returning is there after the
//! store is closed and the database opened again, in every domain.

use zhangban_server::activation::SealedCode;
use zhangban_server::state::sha256_hex;
use zhangban_server::store::operators::{AuditFilter, OperatorWrite};
use zhangban_server::store::prelude::*;
use zhangban_server::store::{
    Device, Enrolment, Grant, NewActivation, NewChallenge, Refusal, Session, WalletEntry,
};

use super::attachments::{link, upload_all};
use super::operators::entry;
use super::{Backend, T0, submission};

pub fn everything_written_survives_a_reopen<B: Backend>(b: &B) {
    let file = b"%PDF-1.4 durable".to_vec();
    let code = SealedCode {
        id: "AAAA".into(),
        mac: "mac".into(),
    };
    let device = Device {
        id: "d1".into(),
        resident_id: String::new(),
        jwk: "{}".into(),
    };
    let session = Session {
        device_id: "d1".into(),
        resident_id: "r1".into(),
        expires_at: T0 + 900,
    };
    let receipt;
    let tracking;
    {
        let s = b.open();
        s.put_guide("g1", "c1", "{\"v\":1}").unwrap();
        s.put_guide("g2", "c2", "{}").unwrap();
        s.delete_guide("g2").unwrap();
        s.put_resident("r1", "甲", T0).unwrap();
        s.put_activation(&NewActivation {
            code: &code,
            resident_id: "r1",
            expires_at: T0 + 60,
            uses: 1,
        })
        .unwrap();
        assert!(matches!(
            s.enrol(&code, &device, T0, 5).unwrap(),
            Enrolment::Enrolled(_)
        ));
        s.put_challenge(
            &NewChallenge {
                id: "ch1",
                device_id: "d1",
                nonce: "n1",
                expires_at: T0 + 60,
                max_pending: 3,
            },
            T0,
        )
        .unwrap();
        s.put_token("tok", &session).unwrap();
        upload_all(&s, "r1", &file);
        let mut sub = submission("client-0001", "r1", "{\"a\":1}");
        sub.attachments = vec![link("scan", &file)];
        let done = s.submit(&sub).unwrap();
        receipt = done.receipt;
        tracking = receipt.tracking_number.clone();
        s.transition(&tracking, "submitted", "accepted", None, T0 + 1)
            .unwrap();
        s.ensure_status_list("list", "issuer-1", 16).unwrap();
        assert_eq!(s.allocate_status_index("list").unwrap(), 0);
        let bits = s.set_status("list", 0, 1).unwrap();
        assert!(s.put_status_token("list", "token", &bits).unwrap());
        s.put_grant(&Grant {
            licence_id: "L1".into(),
            resident_id: "r1".into(),
            issuer_id: "issuer-1".into(),
            vct: None,
            claims: "{}".into(),
            status: 0,
            granted_at: T0,
        })
        .unwrap();
        s.set_grant_status("L1", 1).unwrap();
        let copy = WalletEntry {
            id: 0,
            licence_id: "L1".into(),
            device_id: "d1".into(),
            vct: "v".into(),
            sd_jwt: "jwt".into(),
            issued_at: T0,
        };
        s.put_licence("r1", &copy, "issuer-1", "list", 0).unwrap();
        s.put_trust_bundle(7, "jws-7", T0).unwrap();
        s.secret("key", &[9; 32], T0).unwrap();
        s.ensure_bootstrap("boot-hash", T0).unwrap();
        s.audited(
            &entry(1, "bootstrap", "licence.revoke"),
            OperatorWrite::None,
        )
        .unwrap();
        // The store closes here.
    }
    let s = b.open();
    // Catalog, tombstone included.
    let page = s.catalog_changes(0, 10).unwrap();
    let ids: Vec<_> = page
        .changes
        .iter()
        .map(|c| (c.id.as_str(), c.body.is_some()))
        .collect();
    assert_eq!(ids, [("g1", true), ("g2", false)]);
    assert_eq!(
        s.guide("g1").unwrap(),
        Some(("c1".into(), "{\"v\":1}".into()))
    );
    // Residents: the device, the code's use, the challenge, the session.
    assert_eq!(s.device("d1").unwrap().unwrap().resident_id, "r1");
    let other = Device {
        id: "d2".into(),
        ..device
    };
    assert_eq!(
        s.enrol(&code, &other, T0, 5).unwrap(),
        Enrolment::Refused(Refusal::UsedUp)
    );
    assert_eq!(s.challenge_count().unwrap(), 1);
    assert_eq!(s.session("tok").unwrap(), Some(session));
    // Submissions: the receipt (a retry still dedupes), the state, events.
    let again = s
        .submit(&submission("client-0001", "r1", "{\"a\":1}"))
        .unwrap();
    assert!(!again.fresh);
    assert_eq!(again.receipt, receipt);
    assert_eq!(s.state_of(&tracking).unwrap().as_deref(), Some("accepted"));
    assert_eq!(s.events_since("r1", 0, 10).unwrap().len(), 2);
    // Attachments: the bytes.
    let (l, bytes) = s
        .submission_attachment(&tracking, &sha256_hex(&file))
        .unwrap()
        .unwrap();
    assert_eq!((l, bytes), (link("scan", &file), file));
    // Licences and status lists.
    let row = s.status_list("list").unwrap().unwrap();
    assert_eq!(
        (row.next_idx, row.bits[0], row.token.as_deref()),
        (1, 1, Some("token"))
    );
    assert_eq!(s.grant("L1").unwrap().unwrap().status, 1);
    assert!(s.has_copy("L1", "d1").unwrap());
    // Trust data and secrets.
    assert_eq!(s.trust_bundle().unwrap().as_deref(), Some("jws-7"));
    assert_eq!(s.secret("key", &[0; 32], T0).unwrap(), vec![9; 32]);
    // Operators and the audit trail.
    assert!(s.operator_by_token("boot-hash").unwrap().is_some());
    assert_eq!(s.audit_log(&AuditFilter::default()).unwrap().len(), 2);
    // And positions go on from where they were.
    let seq = s.put_guide("g3", "c3", "{}").unwrap();
    assert!(seq > page.head);
}
