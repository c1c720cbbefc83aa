//! A resident's licences end to end: received into the wallet and verified
//! on receipt, attached to a submission instead of a paper proof (a key-bound
//! presentation made at send time with the server's nonce), rebuilt when the
//! proofs go stale; and status events coming back through sync to listeners.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use zhangban_core::client::api::StatusEventIn;
use zhangban_core::client::events::StatusListener;
use zhangban_core::client::wallet::LicenceState;
use zhangban_core::client::{
    Client, Clock as _, Draft, ManualClock, OutboxEntry, OutboxListener, SoftwareDataKeyStore,
    SoftwareKeystore, WalletLicenceRef,
};
use zhangban_core::guide::Guide;
use zhangban_core::outbox::OutboxState;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, guide_taking, system_now};

async fn phone(server: &TestServer) -> (Client, Arc<ManualClock>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(system_now()));
    let client = Client::open(
        &dir.path().join("phone.db"),
        &server.base,
        vec![server.root.clone()],
        clock.clone(),
        Arc::new(SoftwareKeystore::beside(&dir.path().join("phone.db")).unwrap()),
        Arc::new(SoftwareDataKeyStore::beside(&dir.path().join("phone.db")).unwrap()),
    )
    .await
    .unwrap();
    client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    client.sync().await.unwrap();
    (client, clock, dir)
}

fn licence_draft(g: &Guide, field: &str, licence_id: &str, now: i64) -> Draft {
    let mut probe = g.clone();
    probe.form.fields.retain(|f| f.name != field);
    let mut values = fill(&probe, now).unwrap();
    values.insert(
        field.to_owned(),
        serde_json::to_value(WalletLicenceRef {
            wallet_licence: licence_id.to_owned(),
            disclose: vec![
                "licence_name".into(),
                "holder_name".into(),
                "licence_id".into(),
            ],
        })
        .unwrap(),
    );
    Draft {
        id: format!("draft-{licence_id}"),
        guide_id: g.id.clone(),
        form_version: g.form.version,
        values,
        created_at: now,
        updated_at: now,
    }
}

/// An operator call (POST with the operator token); asserts success.
async fn operator_post(server: &TestServer, path: &str, body: Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .bearer_auth(server.operator_token_for(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

#[derive(Default)]
struct Recorder {
    statuses: Mutex<Vec<StatusEventIn>>,
    outbox: Mutex<Vec<(String, OutboxState)>>,
}
impl StatusListener for Recorder {
    fn on_status(&self, event: &StatusEventIn) {
        self.statuses.lock().unwrap().push(event.clone());
    }
}
impl OutboxListener for Recorder {
    fn on_outbox_change(&self, entry: &OutboxEntry) {
        self.outbox
            .lock()
            .unwrap()
            .push((entry.client_id.clone(), entry.state));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_licences_are_verified_on_receipt_and_attached_as_key_bound_presentations() {
    let server = TestServer::start_demo().await;
    let (client, clock, _dir) = phone(&server).await;
    let wallet = client.wallet().unwrap();
    assert_eq!(wallet.len(), 3, "the demo resident's three licences");
    assert!(
        wallet.iter().all(|l| l.state == LicenceState::Valid),
        "{wallet:?}"
    );
    let business = wallet
        .iter()
        .find(|l| l.claims.contains_key("legal_representative"))
        .unwrap();

    let now = clock.now();
    let (guide, field) = guide_taking(&client, &business.vct, now);
    let rec = Arc::new(Recorder::default());
    client.add_outbox_listener(rec.clone());
    let status_id = client.add_status_listener(rec.clone());

    let id = client
        .submit(&licence_draft(&guide, &field, &business.licence_id, now))
        .unwrap();
    let r = client.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}: {:?}", client.outbox().unwrap());
    let e = client.store().outbox_entry(&id).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Accepted);
    // What the server stored is a presentation disclosing just those fields,
    // bound to this device, for this service item.
    let stored = server.submissions();
    assert_eq!(stored.len(), 1);
    let body: Value = serde_json::from_str(e.wire.as_deref().unwrap()).unwrap();
    let p = body["values"][&field]["presentation"].as_str().unwrap();
    assert_eq!(p.split('~').count(), 5, "issuer JWT, 3 disclosures, KB-JWT");
    // The draft keeps the wallet reference, not the presentation.
    assert!(e.values[&field].get("wallet_licence").is_some());
    // Listeners saw queued → sending → accepted.
    let seen: Vec<OutboxState> = rec
        .outbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| *c == id)
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        seen,
        vec![
            OutboxState::Queued,
            OutboxState::Sending,
            OutboxState::Accepted
        ]
    );

    // The officer moves it along; the phone hears of it through sync.
    let tracking = e.tracking_number.clone().unwrap();
    let transition = format!("/v1/operator/submissions/{tracking}/transition");
    for state in ["accepted", "reviewing"] {
        operator_post(&server, &transition, json!({"state": state})).await;
    }
    let fresh = client.sync_events().await.unwrap();
    let states: Vec<&str> = fresh.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(states, vec!["submitted", "accepted", "reviewing"]);
    let heard: Vec<String> = rec
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.state.clone())
        .collect();
    assert_eq!(heard, vec!["submitted", "accepted", "reviewing"]);
    assert_eq!(client.store().timeline(&id).unwrap().len(), 3);
    assert_eq!(
        client
            .store()
            .outbox_entry(&id)
            .unwrap()
            .unwrap()
            .status
            .as_deref(),
        Some("reviewing")
    );
    // Each event reaches listeners once.
    assert!(client.sync_events().await.unwrap().is_empty());
    assert_eq!(rec.statuses.lock().unwrap().len(), 3);

    // A removed listener hears nothing more; the store still records it.
    assert!(client.remove_listener(status_id));
    assert!(!client.remove_listener(status_id), "already removed");
    operator_post(&server, &transition, json!({"state": "approved"})).await;
    assert_eq!(client.sync_events().await.unwrap().len(), 1);
    assert_eq!(rec.statuses.lock().unwrap().len(), 3);
    assert_eq!(client.store().timeline(&id).unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_proofs_are_rebuilt_and_a_revoked_licence_is_rejected_with_its_reason() {
    let server = TestServer::start_demo().await;
    let (client, clock, _dir) = phone(&server).await;
    let wallet = client.wallet().unwrap();
    let business = wallet
        .iter()
        .find(|l| l.claims.contains_key("legal_representative"))
        .unwrap()
        .clone();
    let real = clock.now();
    let (guide, field) = guide_taking(&client, &business.vct, real);

    // The phone's clock runs 20 minutes slow: its key binding is stale on
    // arrival, the server stores nothing, the body is rebuilt (still stale)
    // a bounded number of times, then backs off.
    clock.set(real - 1_200);
    let id = client
        .submit(&licence_draft(&guide, &field, &business.licence_id, real))
        .unwrap();
    let r = client.flush().await.unwrap();
    assert_eq!(r.accepted, 0, "{r:?}");
    let e = client.store().outbox_entry(&id).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Failed);
    assert_eq!(e.last_error.as_deref(), Some("proofs_stale"));
    assert!(e.wire.is_none(), "a stale body is not kept");
    assert!(server.submissions().is_empty());

    // The clock is right again: the next send builds fresh proofs.
    clock.set(real.max(e.next_attempt_at));
    let r = client.flush().await.unwrap();
    assert_eq!(r.accepted, 1, "{r:?}");

    // Revoke the licence: a new submission with it is refused with the reason.
    operator_post(
        &server,
        &format!("/v1/operator/licences/{}/status", business.licence_id),
        json!({"status": "revoked"}),
    )
    .await;
    client.sync_trust().await.unwrap();
    let revoked = client
        .wallet()
        .unwrap()
        .into_iter()
        .find(|l| l.licence_id == business.licence_id)
        .unwrap();
    assert_eq!(revoked.state, LicenceState::Revoked);
    let mut d = licence_draft(&guide, &field, &business.licence_id, clock.now());
    d.id = "draft-after-revocation".into();
    let id2 = client.submit(&d).unwrap();
    let r = client.flush().await.unwrap();
    assert_eq!(r.rejected, 1, "{r:?}");
    let e = client.store().outbox_entry(&id2).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Rejected);
    let fields = e.errors.unwrap()["fields"].clone();
    assert_eq!(fields[0]["field"], field.as_str());
    assert_eq!(fields[0]["code"], "revoked");
    // The first submission keeps its receipt.
    assert_eq!(
        client.store().outbox_entry(&id).unwrap().unwrap().state,
        OutboxState::Accepted
    );
}
