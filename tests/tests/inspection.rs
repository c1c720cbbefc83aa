//! 亮证 end to end: a resident's phone (enrolled, licences from the real
//! server) shows a licence; an inspector device (not enrolled, trust data
//! from the same server's public endpoints) verifies it offline, refuses a
//! replay even after it restarts, and learns of a revocation at its next sync.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use zhangban_core::client::{Clock as _, ManualClock};
use zhangban_core::inspection::qr::{Qr, read_png};
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, system_now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_shows_a_licence_and_an_offline_inspector_verifies_it() {
    let mut server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(system_now()));
    let phone = server
        .open_client(&dir.path().join("phone.db"), clock.clone())
        .await;
    phone.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    phone.sync().await.unwrap();
    let inspector_db = dir.path().join("inspector.db");
    let inspector = server.open_client(&inspector_db, clock.clone()).await;
    let report = inspector.sync_trust().await.unwrap();
    assert_eq!(report.lists_updated, 3);

    let wallet = phone.wallet().unwrap();
    let residence = wallet
        .iter()
        .find(|l| l.claims.contains_key("address"))
        .unwrap();
    // The checkpoint goes offline; the phone shows three fields.
    server.stop().await;
    let shown = phone
        .show(
            &residence.licence_id,
            &["licence_name", "holder_name", "address"],
            None,
        )
        .await
        .unwrap();
    let png = Qr::new(&shown.frame).unwrap().to_png(5);
    let scanned = read_png(&png).unwrap().remove(0);
    assert_eq!(scanned, shown.frame);

    clock.advance(20);
    let v = inspector.inspect(&scanned, None).unwrap();
    assert!(v.valid && v.bound, "{v:?}");
    let l = v.licence.clone().unwrap();
    assert_eq!(l.claims.len(), 3);
    assert_eq!(l.claims["holder_name"], "张三");
    assert_eq!(v.trust_data_age_secs, Some(20));
    // A screenshot shown again, even after the inspector app restarts.
    drop(inspector);
    let inspector = server.open_client(&inspector_db, clock.clone()).await;
    let again = inspector.inspect(&scanned, None).unwrap();
    assert_eq!(again.code, "replayed", "{again:?}");
    // The inspector shows its own nonce; the phone answers with it.
    let mine = "checkpoint-7-nonce";
    let shown = phone
        .show(&residence.licence_id, &["licence_name"], Some(mine))
        .await
        .unwrap();
    assert!(inspector.inspect(&shown.frame, Some(mine)).unwrap().valid);
    let wrong = phone
        .show(&residence.licence_id, &["licence_name"], None)
        .await
        .unwrap();
    assert_eq!(
        inspector.inspect(&wrong.frame, Some(mine)).unwrap().code,
        "kb_nonce_mismatch"
    );
    // Too late: 90 s + skew.
    let old = phone
        .show(&residence.licence_id, &["licence_name"], None)
        .await
        .unwrap();
    clock.advance(391);
    assert_eq!(
        inspector.inspect(&old.frame, None).unwrap().code,
        "kb_stale"
    );

    // The issuer revokes it; the inspector syncs and refuses it from then on.
    server.restart().await;
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v1/operator/licences/{}/status",
            server.base.clone(),
            residence.licence_id
        ))
        .bearer_auth(server.operator_token_for("/v1/operator/licences"))
        .json(&json!({"status": "revoked"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // Until it syncs, an offline inspector can only say what its data says.
    let before = phone
        .show(&residence.licence_id, &["licence_name"], None)
        .await
        .unwrap();
    assert!(inspector.inspect(&before.frame, None).unwrap().valid);
    inspector.sync_trust().await.unwrap();
    let after = phone
        .show(&residence.licence_id, &["licence_name"], None)
        .await
        .unwrap();
    let v = inspector.inspect(&after.frame, None).unwrap();
    assert_eq!((v.code.as_str(), v.class.as_str()), ("revoked", "revoked"));
    assert_eq!(v.zh, "证照已被注销");
    assert_eq!(v.trust_data_age_secs, Some(0));

    // A printed card of the marriage licence: unbound, valid for 180 days.
    let marriage = wallet
        .iter()
        .find(|l| l.claims.contains_key("spouse_name"))
        .unwrap();
    let card = phone
        .print_card(
            &marriage.licence_id,
            &["licence_name", "holder_name", "spouse_name"],
            None,
        )
        .await
        .unwrap();
    let v = inspector.inspect(&card.frame, None).unwrap();
    assert!(v.valid && !v.bound, "{v:?}");
    assert!(
        inspector.inspect(&card.frame, None).unwrap().valid,
        "a card is shown many times"
    );
    assert!(clock.now() > 0);
}
