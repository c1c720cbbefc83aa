//! Issue → hold → present → verify, the happy paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use zhangban_core::credential::demo::{DemoWorld, MARKET_REGULATION};
use zhangban_core::credential::*;

const NOW: i64 = 1_795_000_000; // 2026-11-18

fn world() -> (DemoWorld, StdRng) {
    let mut rng = StdRng::seed_from_u64(7);
    (DemoWorld::new(&mut rng, NOW), rng)
}

#[test]
fn typical_presentation_verifies_with_only_disclosed_fields() {
    let (w, mut rng) = world();
    let issued = w.issue_typical(42, &mut rng).unwrap();
    let pres = w.present_typical(&issued, "n-1", NOW + 10).unwrap();
    let policy = VerifyPolicy::required("inspection", NoncePolicy::Exact("n-1".into()));
    let v = verify_presentation(&pres, &w.bundle, &w.status_cache, &policy, NOW + 20).unwrap();
    let names: Vec<&str> = v.claims.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "holder_name",
            "legal_representative",
            "licence_name",
            "licence_number",
            "valid_until"
        ]
    );
    assert_eq!(v.claims["holder_name"], "广安市示例商贸有限公司");
    assert_eq!(v.issuer_id, MARKET_REGULATION.id);
    assert_eq!(v.issuer_name, "广安市市场监督管理局");
    assert_eq!(
        v.key_binding.as_ref().map(|k| k.nonce.as_str()),
        Some("n-1")
    );
    assert_eq!(v.holder, Some(w.holder.public().into()));
    assert_eq!(v.status.as_ref().map(|s| s.idx), Some(42));
}

#[test]
fn wallet_verifies_the_issued_form_with_every_field() {
    let (w, mut rng) = world();
    let issued = w.issue_typical(1, &mut rng).unwrap();
    let v = verify_presentation(
        &issued,
        &w.bundle,
        &w.status_cache,
        &VerifyPolicy::wallet(),
        NOW,
    )
    .unwrap();
    assert_eq!(v.claims.len(), 8);
    assert!(v.key_binding.is_none());
    let held = HeldLicence::parse(&issued).unwrap();
    assert_eq!(held.issued(), issued);
    assert_eq!(held.claims().len(), 8);
}

#[test]
fn unbound_printable_presentation_verifies_when_binding_not_required() {
    let (w, mut rng) = world();
    let issued = w.issue_typical(2, &mut rng).unwrap();
    let held = HeldLicence::parse(&issued).unwrap();
    let printed = held
        .present(&["licence_name", "holder_name"], None)
        .unwrap();
    assert!(printed.ends_with('~'));
    let v = verify_presentation(
        &printed,
        &w.bundle,
        &w.status_cache,
        &VerifyPolicy::wallet(),
        NOW,
    )
    .unwrap();
    assert_eq!(v.claims.len(), 2);
    assert!(v.key_binding.is_none());
}

#[test]
fn presenting_with_a_foreign_key_or_unknown_field_is_refused() {
    let (w, mut rng) = world();
    let issued = w.issue_typical(3, &mut rng).unwrap();
    let held = HeldLicence::parse(&issued).unwrap();
    assert_eq!(
        held.present(&["nope"], None),
        Err(PresentError::UnknownClaim("nope".into()))
    );
    let stranger = KeyPair::generate(&mut rng);
    let kb = KeyBindingRequest {
        key: &stranger,
        audience: "inspection",
        nonce: "n",
        iat: NOW,
    };
    assert_eq!(
        held.present(&["licence_name"], Some(kb)),
        Err(PresentError::NotHolderKey)
    );
}

#[test]
fn fresh_salts_make_every_issuance_different() {
    let (w, mut rng) = world();
    let a = w.issue_typical(5, &mut rng).unwrap();
    let b = w.issue_typical(5, &mut rng).unwrap();
    assert_ne!(a, b);
    let held = HeldLicence::parse(&a).unwrap();
    let sd = held.visible()["_sd"].as_array().unwrap().len();
    assert_eq!(
        sd, 8,
        "8 digests: a multiple of four already, no decoy needed"
    );
}
