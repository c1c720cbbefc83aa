//! The facade end to end, from Rust: the real server on loopback, a phone
//! driven only through the exported API (enrol, sync, search, offline
//! submit, flush, wallet, show, inspect, print), listeners and the logger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use zhangban_ffi::{
    Client, DataKeyStore, Draft, HolderKeystore, Inspector, LogLevel, Logger, ObserverError,
    OutboxObserver, OutboxState, ShowMode, SoftwareDataKeyStore, SoftwareKeystore, StatusEvent,
    StatusObserver, SyncObserver, SyncProgress, ZhangbanError, set_logger,
};

/// The non-hardware keystore beside a store (tests have no platform keystore).
fn keys(store: &str) -> Arc<dyn HolderKeystore> {
    SoftwareKeystore::open(format!("{store}.keys")).unwrap()
}
fn data_keys(store: &str) -> Arc<dyn DataKeyStore> {
    SoftwareDataKeyStore::open(format!("{store}.keys")).unwrap()
}
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, system_now};

#[derive(Default)]
struct Heard {
    outbox: Mutex<Vec<OutboxState>>,
    status: Mutex<Vec<String>>,
    progress: Mutex<Vec<SyncProgress>>,
    logs: Mutex<Vec<(LogLevel, String, String)>>,
}

struct Ears(Arc<Heard>);

impl OutboxObserver for Ears {
    fn on_outbox_change(&self, entry: zhangban_ffi::OutboxEntry) -> Result<(), ObserverError> {
        self.0.outbox.lock().unwrap().push(entry.state);
        Ok(())
    }
}
impl StatusObserver for Ears {
    fn on_status(&self, event: StatusEvent) -> Result<(), ObserverError> {
        self.0.status.lock().unwrap().push(event.state);
        Ok(())
    }
}
impl SyncObserver for Ears {
    fn on_progress(&self, progress: SyncProgress) -> Result<(), ObserverError> {
        self.0.progress.lock().unwrap().push(progress);
        Ok(())
    }
}
impl Logger for Ears {
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), ObserverError> {
        self.0.logs.lock().unwrap().push((level, target, message));
        Ok(())
    }
}

fn root_jwk(server: &TestServer) -> String {
    server.root.to_jwk().to_string()
}

/// A guide of the demo catalog whose required fields `fill` can fill, and
/// the values.
fn fillable(client: &Client) -> (zhangban_ffi::Guide, String) {
    let now = system_now();
    for g in zhangban_core::guide::demo_catalog(zhangban_server::setup::FIXTURE, now).unwrap() {
        let Ok(guide) = client.guide(g.id.clone()) else {
            continue;
        };
        let core: zhangban_core::guide::Guide = serde_json::from_str(&guide.json).unwrap();
        if let Some(values) = fill(&core, now) {
            return (guide, serde_json::Value::Object(values).to_string());
        }
    }
    panic!("no fillable guide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_and_inspector_through_the_facade() {
    let heard = Arc::new(Heard::default());
    set_logger(Arc::new(Ears(heard.clone())), LogLevel::Debug);

    let mut server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("phone.db").to_string_lossy().into_owned();
    let client = Client::open(
        store.clone(),
        server.base.clone(),
        root_jwk(&server),
        keys(&store),
        data_keys(&store),
    )
    .await
    .unwrap();
    client.add_outbox_observer(Arc::new(Ears(heard.clone())));
    client.add_status_observer(Arc::new(Ears(heard.clone())));
    client.add_sync_observer(Arc::new(Ears(heard.clone())));

    // Before enrolment.
    assert_eq!(client.device(), Err(ZhangbanError::NotEnrolled));

    // Enrol and sync.
    let device = client.enrol(DEMO_ACTIVATION_CODE.to_owned()).await.unwrap();
    assert!(!device.device_id.is_empty());
    assert_eq!(client.device().unwrap(), device);
    let report = client.sync().await.unwrap();
    assert!(report.guides_upserted > 0, "{report:?}");
    assert!(report.bundle_version.is_some());
    assert!(report.licences_received.unwrap() > 0, "{report:?}");
    {
        let p = heard.progress.lock().unwrap();
        assert!(
            matches!(p.first(), Some(SyncProgress::Catalog { .. })),
            "{p:?}"
        );
        assert!(p.contains(&SyncProgress::Trust));
        assert!(p.contains(&SyncProgress::Wallet));
        assert!(p.contains(&SyncProgress::Events));
    }

    // Search in Chinese: a two-character word.
    let hits = client.search("户口".into(), 10).unwrap();
    assert!(!hits.is_empty());
    assert!(hits[0].highlighted.contains("【"), "{:?}", hits[0]);
    assert!(!hits[0].highlights.is_empty());
    let g = client.guide(hits[0].guide_id.clone()).unwrap();
    assert_eq!(g.id, hits[0].guide_id);
    assert!(g.json.contains(&g.name));
    assert!(matches!(
        client.guide("no-such-guide".into()),
        Err(ZhangbanError::NotFound { .. })
    ));

    // A bad form is refused, with its fields.
    let (guide, values) = fillable(&client);
    let bad = Draft {
        id: "draft-bad".into(),
        guide_id: guide.id.clone(),
        form_version: guide.form_version,
        values_json: "{}".into(),
    };
    match client.submit(bad) {
        Err(ZhangbanError::InvalidForm { fields }) => assert!(!fields.is_empty()),
        other => panic!("{other:?}"),
    }

    // Submit with the server down: it queues; a flush finds no network.
    server.stop().await;
    let draft = Draft {
        id: "draft-1".into(),
        guide_id: guide.id.clone(),
        form_version: guide.form_version,
        values_json: values,
    };
    client.save_draft(draft.clone()).unwrap();
    assert_eq!(client.drafts().unwrap().len(), 1);
    let id = client.submit(draft.clone()).unwrap();
    let offline = client.flush().await.unwrap();
    assert!(offline.offline, "{offline:?}");
    assert_eq!(offline.accepted, 0);
    let e = client.outbox().unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].client_id, id);
    assert_eq!(e[0].state, OutboxState::Failed);
    assert_eq!(e[0].last_error.as_deref(), Some("network"));
    assert!(matches!(
        client.enrol("whatever".into()).await,
        Err(ZhangbanError::Network)
    ));

    // Sent, the draft is locked: a changed copy is refused, with its id.
    let mut changed = draft.clone();
    changed.values_json = "{}".into();
    match client.save_draft(changed.clone()) {
        Err(ZhangbanError::DraftSubmitted { client_id }) => assert_eq!(client_id, id),
        other => panic!("{other:?}"),
    }
    match client.submit(changed) {
        Err(ZhangbanError::DraftSubmitted { client_id }) => assert_eq!(client_id, id),
        other => panic!("{other:?}"),
    }
    // A bad value is reported at once, without saving anything.
    let mut typo = draft.clone();
    typo.id = "draft-2".into();
    typo.values_json = r#"{"no_such_field": 1}"#.into();
    let problems = client.check_draft(typo).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, "unknown_field");
    assert_eq!(client.drafts().unwrap().len(), 1);

    // The server is back; the entry waits out its backoff, and "try now"
    // delivers it at once, once.
    server.restart().await;
    let delivered = client.flush_now().await.unwrap();
    assert_eq!(delivered.accepted, 1, "{delivered:?}");
    assert!(!delivered.offline);
    let e = client.outbox().unwrap();
    assert_eq!(e[0].state, OutboxState::Accepted);
    assert!(e[0].tracking_number.is_some());
    assert_eq!(server.submissions().len(), 1);
    {
        let o = heard.outbox.lock().unwrap();
        assert_eq!(o.first(), Some(&OutboxState::Queued), "{o:?}");
        assert_eq!(o.last(), Some(&OutboxState::Accepted), "{o:?}");
    }

    // Status events come back through sync, to the observer.
    client.sync().await.unwrap();
    assert_eq!(*heard.status.lock().unwrap(), vec!["submitted".to_owned()]);
    assert_eq!(client.timeline(id).unwrap().len(), 1);

    // The wallet, a dynamic presentation, and the inspector's verdict.
    let wallet = client.wallet().unwrap();
    assert!(!wallet.is_empty());
    let licence = &wallet[0];
    assert_eq!(licence.state, zhangban_ffi::WalletLicenceState::Valid);
    let fields = vec!["licence_name".to_owned(), "holder_name".to_owned()];
    let shown = client
        .show(licence.licence_id.clone(), fields.clone(), None)
        .await
        .unwrap();
    assert_eq!(&shown.png[..4], b"\x89PNG");
    assert!(!shown.text.is_empty());
    assert_eq!(shown.mode, ShowMode::Dynamic);
    let inspector = client.inspector();
    let verdict = inspector.verify(shown.frame.clone(), None).unwrap();
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.code, "valid");
    assert!(verdict.bound);
    let claims: serde_json::Value = serde_json::from_str(&verdict.claims_json).unwrap();
    assert!(claims.get("holder_name").is_some(), "{claims}");
    assert!(claims.get("licence_id").is_none(), "undisclosed: {claims}");
    assert!(verdict.trust_data_age_secs.is_some());
    // The same presentation again is a replay.
    let again = inspector.verify(shown.frame, None).unwrap();
    assert!(!again.valid);
    assert!(!again.zh.is_empty() && !again.en.is_empty());
    // Garbage is a verdict, not an error.
    let junk = inspector.verify(b"not a licence".to_vec(), None).unwrap();
    assert!(!junk.valid);

    // A separate inspector device with its own trust data.
    let idir = tempfile::tempdir().unwrap();
    let device = Inspector::open(
        idir.path()
            .join("inspector.db")
            .to_string_lossy()
            .into_owned(),
        server.base.clone(),
        root_jwk(&server),
    )
    .await
    .unwrap();
    assert!(device.sync_trust().await.unwrap().is_some());
    let fresh = client
        .show(licence.licence_id.clone(), fields.clone(), None)
        .await
        .unwrap();
    assert!(device.verify(fresh.frame, None).unwrap().valid);

    // A printable card: unbound, an SVG with the chosen fields.
    let card = client
        .print_card(licence.licence_id.clone(), fields, None)
        .await
        .unwrap();
    assert!(
        card.svg.contains("<svg"),
        "{}",
        &card.svg[..80.min(card.svg.len())]
    );
    assert!(matches!(card.shown.mode, ShowMode::Printable { .. }));
    let v = inspector.verify(card.shown.frame, None).unwrap();
    assert!(v.valid, "{v:?}");
    assert!(!v.bound);

    // The logger heard core's and the server's tracing events.
    assert!(!heard.logs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_root_key_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("x.db").to_string_lossy().into_owned();
    for jwk in ["not json", r#"{"kty":"RSA"}"#] {
        match Client::open(
            store.clone(),
            "http://127.0.0.1:9".into(),
            jwk.into(),
            keys(&store),
            data_keys(&store),
        )
        .await
        {
            Err(ZhangbanError::Invalid { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(zhangban_ffi::ping(7), 7);
    assert!(!zhangban_ffi::library_version().is_empty());
}

/// An observer that always fails, and tells when it is first called.
struct Failing {
    calls: Mutex<u32>,
    first: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Failing {
    fn new() -> (Arc<Self>, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = Arc::new(Self {
            calls: Mutex::new(0),
            first: Mutex::new(Some(tx)),
        });
        (me, rx)
    }
    fn called(&self) -> Result<(), ObserverError> {
        *self.calls.lock().unwrap() += 1;
        if let Some(tx) = self.first.lock().unwrap().take() {
            let _ = tx.send(());
        }
        Err(ObserverError::Failed {
            reason: "the app's own bug".into(),
        })
    }
}

impl OutboxObserver for Failing {
    fn on_outbox_change(&self, _: zhangban_ffi::OutboxEntry) -> Result<(), ObserverError> {
        self.called()
    }
}
impl SyncObserver for Failing {
    fn on_progress(&self, _: SyncProgress) -> Result<(), ObserverError> {
        self.called()
    }
}

/// Waits (polling, bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A caller that gives up on a sync or a flush (a cancelled Kotlin
/// coroutine or Swift task drops the future) loses nothing: the work runs
/// to its end on the library's runtime, and a failing observer neither
/// stops it nor stays unremovable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_and_failing_observers_lose_nothing() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let reference = Client::open(
        path("reference.db"),
        server.base.clone(),
        root_jwk(&server),
        keys(&path("reference.db")),
        data_keys(&path("reference.db")),
    )
    .await
    .unwrap();
    reference.sync().await.unwrap();
    let all = |c: &Client| {
        let mut ids: Vec<String> = c
            .search("办理".into(), 10_000)
            .unwrap()
            .into_iter()
            .map(|h| h.guide_id)
            .collect();
        ids.sort();
        ids
    };
    let expected = all(&reference);
    assert!(expected.len() > 100, "{}", expected.len());
    let whole = reference.catalog_info().unwrap();
    assert_eq!(whole.guides, 1135);

    let client = Client::open(
        path("phone.db"),
        server.base.clone(),
        root_jwk(&server),
        keys(&path("phone.db")),
        data_keys(&path("phone.db")),
    )
    .await
    .unwrap();
    client.enrol(DEMO_ACTIVATION_CODE.to_owned()).await.unwrap();

    // A sync given up on at its first progress report (the failing
    // observer's first call) still completes the catalog.
    let (failing, first) = Failing::new();
    let sync_id = client.add_sync_observer(failing.clone());
    tokio::select! {
        biased; // when both are ready (a slow test thread), the report wins
        _ = first => {}
        r = client.sync() => panic!("the sync finished before its first progress report: {r:?}"),
    }
    // The next sync (racing the abandoned one) ends with the full catalog.
    let report = client.sync().await.unwrap();
    assert!(report.bundle_version.is_some());
    eventually("the abandoned sync's catalog", || {
        client.catalog_info().unwrap() == whole
    })
    .await;
    assert_eq!(all(&client), expected);
    assert!(*failing.calls.lock().unwrap() > 1, "kept after failing");
    assert!(client.remove_observer(sync_id));
    assert!(!client.remove_observer(sync_id));
    let calls = *failing.calls.lock().unwrap();
    // A whole sync makes at least three reports (trust, wallet, events);
    // once removed, the observer hears none of them. Only a report of the
    // abandoned sync already under way at the removal may still reach it.
    client.sync().await.unwrap();
    assert!(
        *failing.calls.lock().unwrap() <= calls + 1,
        "a removed observer kept hearing"
    );

    // A flush given up on while its send is in flight: the send finishes
    // on its own, exactly once.
    let (guide, values) = fillable(&client);
    let draft = Draft {
        id: "draft-cancel".into(),
        guide_id: guide.id.clone(),
        form_version: guide.form_version,
        values_json: values,
    };
    let (failing, first) = Failing::new();
    let outbox_id = client.add_outbox_observer(failing.clone());
    let id = client.submit(draft.clone()).unwrap(); // the observer's first call: queued
    first.await.unwrap();
    let calls_at_queue = *failing.calls.lock().unwrap();
    let sending = Arc::new(tokio::sync::Notify::new());
    struct OnSending(Arc<tokio::sync::Notify>);
    impl OutboxObserver for OnSending {
        fn on_outbox_change(&self, e: zhangban_ffi::OutboxEntry) -> Result<(), ObserverError> {
            if e.state == OutboxState::Sending {
                self.0.notify_one();
            }
            Ok(())
        }
    }
    let on_sending = client.add_outbox_observer(Arc::new(OnSending(sending.clone())));
    tokio::select! {
        biased;
        () = sending.notified() => {}
        r = client.flush() => panic!("the flush finished before its send began: {r:?}"),
    }
    eventually("the abandoned send's receipt", || {
        client.outbox().unwrap()[0].state == OutboxState::Accepted
    })
    .await;
    let e = &client.outbox().unwrap()[0];
    assert_eq!(e.client_id, id);
    assert!(e.tracking_number.is_some());
    let on_server: Vec<_> = server
        .submissions()
        .into_iter()
        .filter(|s| s.receipt.client_id == id)
        .collect();
    assert_eq!(on_server.len(), 1);
    assert!(
        *failing.calls.lock().unwrap() > calls_at_queue,
        "the failing observer kept hearing"
    );
    // A flush now has nothing to send.
    let r = client.flush().await.unwrap();
    assert_eq!((r.sent, r.accepted), (0, 0), "{r:?}");
    assert!(client.remove_observer(outbox_id));
    assert!(client.remove_observer(on_sending));
}
