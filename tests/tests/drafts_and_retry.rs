//! What a newcomer hit, fixed in the client core: "try now" (`flush_now`)
//! sends what waits out its backoff; a submitted draft is locked (an edit
//! is refused, never silently dropped); a draft's values are checked as
//! they are set (`check_draft`). Real clients against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use zhangban_core::client::{Client, ClientError, Clock as _, Draft, ManualClock};
use zhangban_core::guide::{FieldErrorCode, Guide};
use zhangban_core::outbox::OutboxState;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fillable_guides, filled_draft, system_now};

struct Phone {
    client: Client,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// An enrolled, synced phone whose clock only moves when the test moves it.
async fn phone(server: &TestServer) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(system_now()));
    let client = server
        .open_client(&dir.path().join("phone.db"), clock.clone())
        .await;
    client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    client.sync().await.unwrap();
    Phone {
        client,
        clock,
        _dir: dir,
    }
}

fn draft(id: &str, guide: &Guide, now: i64) -> Draft {
    filled_draft(id, guide, now).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_now_sends_at_once_what_waits_out_its_backoff() {
    let mut server = TestServer::start_demo().await;
    let p = phone(&server).await;
    let now = p.clock.now();
    let guides = fillable_guides(&p.client, now);
    server.stop().await;
    let a = p.client.submit(&draft("a", &guides[0], now)).unwrap();
    let b = p.client.submit(&draft("b", &guides[1], now)).unwrap();
    let offline = p.client.flush().await.unwrap();
    assert!(offline.offline, "{offline:?}");
    assert_eq!(offline.retried_now, 0);

    // The server is back, but the phone's clock has not moved: both wait
    // out the backoff, so a plain flush sends nothing.
    server.restart().await;
    let plain = p.client.flush().await.unwrap();
    assert_eq!(plain.sent, 0, "{plain:?}");
    let wake = plain.next_attempt_at.expect("a retry time");
    assert!(wake > p.clock.now(), "{plain:?}");
    assert!(server.submissions().is_empty());

    // "Try now": both go at once, exactly once each.
    let now_report = p.client.flush_now().await.unwrap();
    assert_eq!(now_report.retried_now, 2, "{now_report:?}");
    assert_eq!(now_report.accepted, 2, "{now_report:?}");
    assert_eq!(now_report.next_attempt_at, None);
    let mut on_server: Vec<String> = server
        .submissions()
        .into_iter()
        .map(|r| r.receipt.client_id)
        .collect();
    on_server.sort();
    let mut ours = vec![a, b];
    ours.sort();
    assert_eq!(on_server, ours);
    // Nothing left to bring forward.
    let again = p.client.flush_now().await.unwrap();
    assert_eq!((again.sent, again.retried_now), (0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_now_leaves_a_rejected_entry_for_the_resident() {
    let server = TestServer::start_demo().await;
    let p = phone(&server).await;
    let now = p.clock.now();
    let guide = fillable_guides(&p.client, now).remove(0);
    // A form version the server does not know: rejected, not retried.
    let mut d = draft("stale", &guide, now);
    d.form_version += 1;
    // The phone's own validator would refuse it: queue it as stored.
    let id = p
        .client
        .store()
        .queue(&d, "0123456789abcdef0123456789abcdef", now)
        .unwrap();
    let r = p.client.flush().await.unwrap();
    assert_eq!(r.rejected, 1, "{r:?}");
    let r = p.client.flush_now().await.unwrap();
    assert_eq!((r.sent, r.retried_now), (0, 0), "{r:?}");
    let e = p.client.store().outbox_entry(&id).unwrap().unwrap();
    assert_eq!(e.state, OutboxState::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_draft_is_locked() {
    let mut server = TestServer::start_demo().await;
    let p = phone(&server).await;
    let now = p.clock.now();
    let guide = fillable_guides(&p.client, now).remove(0);
    server.stop().await;
    let d = draft("mine", &guide, now);
    p.client.save_draft(&d).unwrap();
    let id = p.client.submit(&d).unwrap();

    // The same content again (a double tap): the same id, nothing new.
    assert_eq!(p.client.submit(&d).unwrap(), id);

    // Changed: refused with the submission's id, never queued under it
    // with the change dropped; neither the draft nor the entry changes.
    let mut changed = d.clone();
    let (field, _) = changed.values.iter().next().unwrap();
    let field = field.clone();
    changed.values.insert(field.clone(), json!("改过的值"));
    match p.client.submit(&changed) {
        Err(ClientError::DraftSubmitted { client_id }) => assert_eq!(client_id, id),
        other => panic!("{other:?}"),
    }
    match p.client.save_draft(&changed) {
        Err(ClientError::DraftSubmitted { client_id }) => assert_eq!(client_id, id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.client.store().draft("mine").unwrap().unwrap().values,
        d.values
    );
    let entries = p.client.outbox().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].values, d.values);

    // A new application is a new draft: a new id.
    let other = draft("mine-2", &guide, now);
    let id2 = p.client.submit(&other).unwrap();
    assert_ne!(id2, id);
    assert_eq!(p.client.store().submitted_as("mine-2").unwrap(), Some(id2));
    assert_eq!(p.client.store().submitted_as("never").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_draft_reports_bad_values_at_once_but_not_the_missing_ones() {
    let server = TestServer::start_demo().await;
    let p = phone(&server).await;
    let now = p.clock.now();
    let guide = fillable_guides(&p.client, now)
        .into_iter()
        .find(|g| g.form.fields.iter().any(|f| f.name == "applicant_phone"))
        .expect("a fillable guide with a phone field");
    let mut d = draft("partial", &guide, now);
    d.values.retain(|k, _| k == "applicant_phone");
    assert!(
        guide.form.fields.iter().filter(|f| f.required).count() > 1,
        "the test needs required fields left empty"
    );
    // Required fields still empty are not errors yet.
    assert_eq!(p.client.check_draft(&d).unwrap(), vec![]);

    d.values.insert("applicant_phone".into(), json!("12345"));
    d.values.insert("no_such_field".into(), json!("x"));
    let errors = p.client.check_draft(&d).unwrap();
    let got: Vec<(&str, FieldErrorCode)> =
        errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        got,
        vec![
            ("applicant_phone", FieldErrorCode::InvalidPhone),
            ("no_such_field", FieldErrorCode::UnknownField),
        ]
    );

    // A draft filled against another form version cannot be judged field by field.
    let mut old = draft("old", &guide, now);
    old.form_version += 1;
    let errors = p.client.check_draft(&old).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, FieldErrorCode::SchemaVersionMismatch);

    // Submit still insists on what is missing.
    let mut partial = draft("partial-submit", &guide, now);
    partial.values.retain(|k, _| k == "applicant_phone");
    match p.client.submit(&partial) {
        Err(ClientError::Form(errors)) => {
            assert!(errors.iter().all(|e| e.code == FieldErrorCode::Required));
            assert!(!errors.is_empty());
        }
        other => panic!("{other:?}"),
    }
}
