//! [`LicenceStore`] and [`TrustStore`]: status lists, grants and delivered
//! copies; trust-bundle versions and shared server secrets.

use zhangban_server::store::prelude::*;
use zhangban_server::store::{Grant, StoreError, WalletEntry};

use super::{Backend, T0};

const LIST: &str = "https://status.example/lists/1";

/// The 2-bit status at `idx` of a list's bits.
fn status_at(bits: &[u8], idx: u64) -> u8 {
    (bits[(idx / 4) as usize] >> ((idx % 4) * 2)) & 0b11
}

pub fn status_lists_allocate_set_and_keep_the_latest_token<B: Backend>(b: &B) {
    let s = b.open();
    assert_eq!(s.status_list(LIST).unwrap(), None);
    s.ensure_status_list(LIST, "issuer-1", 8).unwrap();
    let row = s.status_list(LIST).unwrap().unwrap();
    assert_eq!(
        (
            row.issuer_id.as_str(),
            row.bits.clone(),
            row.next_idx,
            row.token.clone()
        ),
        ("issuer-1", vec![0, 0], 0, None)
    );
    // Indexes are handed out once each, up to the capacity.
    let idx: Vec<_> = (0..8)
        .map(|_| s.allocate_status_index(LIST).unwrap())
        .collect();
    assert_eq!(idx, (0..8).collect::<Vec<_>>());
    assert!(matches!(
        s.allocate_status_index(LIST),
        Err(StoreError::InvalidState(_))
    ));
    // Ensuring it again changes nothing.
    s.ensure_status_list(LIST, "issuer-2", 800).unwrap();
    let row = s.status_list(LIST).unwrap().unwrap();
    assert_eq!(
        (row.issuer_id.as_str(), row.bits.len(), row.next_idx),
        ("issuer-1", 2, 8)
    );

    // Setting one index leaves its neighbours alone; values above 2 bits
    // are masked.
    let bits = s.set_status(LIST, 5, 1).unwrap();
    assert_eq!(
        (
            status_at(&bits, 4),
            status_at(&bits, 5),
            status_at(&bits, 6)
        ),
        (0, 1, 0)
    );
    let bits = s.set_status(LIST, 6, 2).unwrap();
    let bits2 = s.set_status(LIST, 5, 0b111).unwrap();
    assert_eq!(status_at(&bits, 6), 2);
    assert_eq!((status_at(&bits2, 5), status_at(&bits2, 6)), (3, 2));
    let bits = s.set_status(LIST, 5, 0).unwrap();
    assert_eq!(bits, s.status_list(LIST).unwrap().unwrap().bits);
    assert_eq!((status_at(&bits, 5), status_at(&bits, 6)), (0, 2));
    assert!(matches!(
        s.set_status(LIST, 8, 1),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_status("no-such-list", 0, 1),
        Err(StoreError::NotFound)
    ));

    // The latest signed token is kept; an unknown list has none to set.
    assert!(s.put_status_token(LIST, "token-v1", &bits).unwrap());
    assert!(s.put_status_token(LIST, "token-v2", &bits).unwrap());
    assert_eq!(
        s.status_list(LIST).unwrap().unwrap().token.as_deref(),
        Some("token-v2")
    );
    assert!(matches!(
        s.put_status_token("no-such-list", "t", &bits),
        Err(StoreError::NotFound)
    ));
    // Two writers (two replicas) race: A sets a status, B sets another on
    // top; A's token, signed over bits without B's change, arrives last and
    // is not stored; B's, covering both, stays.
    let bits_a = s.set_status(LIST, 1, 1).unwrap();
    let bits_b = s.set_status(LIST, 2, 1).unwrap();
    assert!(s.put_status_token(LIST, "token-b", &bits_b).unwrap());
    assert!(!s.put_status_token(LIST, "token-a", &bits_a).unwrap());
    assert_eq!(
        s.status_list(LIST).unwrap().unwrap().token.as_deref(),
        Some("token-b")
    );
    s.ensure_status_list("https://status.example/lists/0", "issuer-0", 4)
        .unwrap();
    let uris: Vec<_> = s
        .status_lists()
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(uris, ["https://status.example/lists/0", LIST], "by uri");
}

fn grant(licence_id: &str, resident: &str, at: i64) -> Grant {
    Grant {
        licence_id: licence_id.to_owned(),
        resident_id: resident.to_owned(),
        issuer_id: "issuer-1".into(),
        vct: Some("vct:driving".into()),
        claims: "{\"name\":\"甲\"}".into(),
        status: 0,
        granted_at: at,
    }
}

fn copy(licence_id: &str, device: &str) -> WalletEntry {
    WalletEntry {
        id: 0,
        licence_id: licence_id.to_owned(),
        device_id: device.to_owned(),
        vct: "vct:driving".into(),
        sd_jwt: format!("sd-jwt-of-{licence_id}-for-{device}"),
        issued_at: T0,
    }
}

pub fn grants_and_copies_are_unique<B: Backend>(b: &B) {
    let s = b.open();
    s.put_grant(&grant("L1", "r1", T0)).unwrap();
    s.put_grant(&grant("L2", "r1", T0 + 1)).unwrap();
    assert!(matches!(
        s.put_grant(&grant("L1", "r2", T0)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.grant("L1").unwrap(), Some(grant("L1", "r1", T0)));
    assert_eq!(s.grant("L9").unwrap(), None);
    s.set_grant_status("L1", 2).unwrap();
    assert_eq!(s.grant("L1").unwrap().unwrap().status, 2);
    let ids: Vec<_> = s
        .grants_of("r1")
        .unwrap()
        .into_iter()
        .map(|g| g.licence_id)
        .collect();
    assert_eq!(ids, ["L1", "L2"]);
    assert!(s.grants_of("r2").unwrap().is_empty());

    // One copy per device; each copy has its own status slot.
    let first = s
        .put_licence("r1", &copy("L1", "d1"), "issuer-1", LIST, 0)
        .unwrap();
    let second = s
        .put_licence("r1", &copy("L1", "d2"), "issuer-1", LIST, 1)
        .unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        s.put_licence("r1", &copy("L1", "d1"), "issuer-1", LIST, 2),
        Err(StoreError::Conflict(_))
    ));
    assert!(s.has_copy("L1", "d1").unwrap());
    assert!(!s.has_copy("L1", "d3").unwrap());
    let mut copies = s.licence_copies("L1").unwrap();
    copies.sort();
    assert_eq!(copies, vec![(LIST.to_owned(), 0), (LIST.to_owned(), 1)]);
    let wallet = s.wallet("r1").unwrap();
    assert_eq!(wallet.len(), 2);
    assert_eq!(
        wallet[0],
        WalletEntry {
            id: first,
            ..copy("L1", "d1")
        }
    );
    assert!(s.wallet("r2").unwrap().is_empty());
}

pub fn trust_bundle_newest_version_wins_and_versions_are_immutable<B: Backend>(b: &B) {
    let s = b.open();
    assert_eq!(s.trust_bundle().unwrap(), None);
    s.put_trust_bundle(1, "jws-1", T0).unwrap();
    s.put_trust_bundle(3, "jws-3", T0 + 1).unwrap();
    // An older version arriving late does not roll the bundle back.
    s.put_trust_bundle(2, "jws-2", T0 + 2).unwrap();
    assert_eq!(s.trust_bundle().unwrap().as_deref(), Some("jws-3"));
    // A version, once stored, keeps its text.
    s.put_trust_bundle(3, "jws-3-other", T0 + 3).unwrap();
    assert_eq!(s.trust_bundle().unwrap().as_deref(), Some("jws-3"));
    s.put_trust_bundle(4, "jws-4", T0 + 4).unwrap();
    assert_eq!(s.trust_bundle().unwrap().as_deref(), Some("jws-4"));
}

pub fn server_secrets_are_created_once<B: Backend>(b: &B) {
    let s = b.open();
    let a = s.secret("k", &[1; 32], 0).unwrap();
    let again = s.secret("k", &[2; 32], 1).unwrap();
    assert_eq!(a, vec![1; 32]);
    assert_eq!(again, a);
    assert_eq!(s.secret("other", &[3; 16], 2).unwrap(), vec![3; 16]);
}
