//! A fault of the phone's own store while a submission's licence proofs
//! are built never rejects the submission (issue 14, ADR 0204): the entry
//! stays queued, is retried, and goes out exactly once when the store is
//! well again. Real clients, a real SQLite file damaged or locked by a
//! second real connection, against the real server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zhangban_core::client::keystore::KeystoreFuture;
use zhangban_core::client::{
    Client, ClientError, Clock as _, Draft, HolderKeystore, ManualClock, SoftwareDataKeyStore,
    SoftwareKeystore, StoreErrorKind, WalletLicenceRef,
};
use zhangban_core::guide::Guide;
use zhangban_core::outbox::OutboxState;
use zhangban_tests::{DEMO_ACTIVATION_CODE, TestServer, fill, guide_taking, system_now};

/// A draft of `g` with the wallet licence `licence_id` attached to `field`.
fn licence_draft(g: &Guide, field: &str, licence_id: &str, now: i64) -> Draft {
    let mut probe = g.clone();
    probe.form.fields.retain(|f| f.name != field);
    let mut values = fill(&probe, now).unwrap();
    values.insert(
        field.to_owned(),
        serde_json::to_value(WalletLicenceRef {
            wallet_licence: licence_id.to_owned(),
            disclose: vec!["licence_name".into(), "holder_name".into()],
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

/// Opens the client at `path` with `keystore`, enrolls the demo resident
/// and syncs (catalog, trust, wallet).
async fn phone(
    server: &TestServer,
    path: &Path,
    clock: Arc<ManualClock>,
    keystore: Arc<dyn HolderKeystore>,
) -> Client {
    let client = Client::open(
        path,
        &server.base,
        vec![server.root.clone()],
        clock,
        keystore,
        Arc::new(SoftwareDataKeyStore::beside(path).unwrap()),
    )
    .await
    .unwrap();
    client.enrol(DEMO_ACTIVATION_CODE).await.unwrap();
    client.sync().await.unwrap();
    client
}

/// Queues a submission attaching the demo resident's business licence.
fn submit_with_licence(client: &Client, now: i64) -> String {
    let business = client
        .wallet()
        .unwrap()
        .into_iter()
        .find(|l| l.claims.contains_key("legal_representative"))
        .unwrap();
    let (guide, field) = guide_taking(client, &business.vct, now);
    client
        .submit(&licence_draft(&guide, &field, &business.licence_id, now))
        .unwrap()
}

/// How many submissions the server holds under `client_id`.
fn on_server(server: &TestServer, client_id: &str) -> usize {
    server
        .submissions()
        .iter()
        .filter(|r| r.receipt.client_id == client_id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_wallet_row_while_building_proofs_leaves_the_entry_queued() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let keys = Arc::new(SoftwareKeystore::beside(&path).unwrap());
    let client = phone(&server, &path, clock.clone(), keys).await;
    let id = submit_with_licence(&client, clock.now());

    // The wallet's sealed licences are damaged on disk (one bit of each
    // sealed copy flipped through a second connection, as a bad flash page
    // would): building the proofs fails on the store, not on the licence.
    let db = rusqlite::Connection::open(&path).unwrap();
    let saved: Vec<(String, Vec<u8>)> = db
        .prepare("SELECT licence_id, sd_jwt FROM wallet")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!saved.is_empty());
    for (idx, sealed) in &saved {
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        db.execute(
            "UPDATE wallet SET sd_jwt = ?1 WHERE licence_id = ?2",
            rusqlite::params![bad, idx],
        )
        .unwrap();
    }

    let r = client.flush().await.unwrap();
    let e = client.store().outbox_entry(&id).unwrap().unwrap();
    // Before the fix: rejected, `presentation_failed` — the resident
    // would have had to redo the submission.
    assert_eq!((r.rejected, r.failed), (0, 1), "{r:?} {e:?}");
    assert_eq!(e.state, OutboxState::Failed, "{e:?}");
    assert_eq!(
        e.last_error.as_deref(),
        Some("store_sealed_corrupt"),
        "{e:?}"
    );
    assert_eq!(on_server(&server, &id), 0);

    // The store is repaired (here: the rows put back); "try now" sends it.
    for (idx, sealed) in &saved {
        db.execute(
            "UPDATE wallet SET sd_jwt = ?1 WHERE licence_id = ?2",
            rusqlite::params![sealed, idx],
        )
        .unwrap();
    }
    let r = client.flush_now().await.unwrap();
    assert_eq!((r.retried_now, r.accepted), (1, 1), "{r:?}");
    let again = client.flush_now().await.unwrap();
    assert_eq!(again.sent, 0, "{again:?}");
    assert_eq!(
        client.store().outbox_entry(&id).unwrap().unwrap().state,
        OutboxState::Accepted
    );
    assert_eq!(on_server(&server, &id), 1, "exactly once");
}

/// The device keystore, with one addition: when it signs a key binding
/// (not a login challenge) while armed, it first makes a second SQLite
/// connection take the phone store's write lock and keep it until the
/// test lets go — another process of the app writing, say.
#[derive(Debug)]
struct LockingKeystore {
    inner: SoftwareKeystore,
    store: std::path::PathBuf,
    armed: AtomicBool,
    holder: Mutex<Option<rusqlite::Connection>>,
}

impl LockingKeystore {
    fn release(&self) -> bool {
        match self.holder.lock().unwrap().take() {
            Some(db) => {
                db.execute_batch("ROLLBACK").unwrap();
                true
            }
            None => false,
        }
    }
}

impl HolderKeystore for LockingKeystore {
    fn create_key(&self, alias: String) -> KeystoreFuture<'_, String> {
        self.inner.create_key(alias)
    }

    fn sign(&self, alias: String, message: Vec<u8>) -> KeystoreFuture<'_, Vec<u8>> {
        let login = message.starts_with(b"zhangban-auth-v1.");
        if !login && self.armed.swap(false, Ordering::SeqCst) {
            let db = rusqlite::Connection::open(&self.store).unwrap();
            db.execute_batch("BEGIN IMMEDIATE").unwrap();
            *self.holder.lock().unwrap() = Some(db);
        }
        self.inner.sign(alias, message)
    }

    fn delete_key(&self, alias: String) -> KeystoreFuture<'_, ()> {
        self.inner.delete_key(alias)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_store_while_freezing_the_proofs_leaves_the_entry_queued() {
    let server = TestServer::start_demo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let clock = Arc::new(ManualClock::new(system_now()));
    let keys = Arc::new(LockingKeystore {
        inner: SoftwareKeystore::beside(&path).unwrap(),
        store: path.clone(),
        armed: AtomicBool::new(false),
        holder: Mutex::new(None),
    });
    let client = phone(&server, &path, clock.clone(), keys.clone()).await;
    let id = submit_with_licence(&client, clock.now());

    // While the proofs are signed another connection takes the write lock:
    // the frozen body cannot be stored, nor the outcome after it.
    keys.armed.store(true, Ordering::SeqCst);
    let err = client.flush().await.unwrap_err();
    assert!(keys.release(), "the keystore never signed a key binding");
    match &err {
        ClientError::Store(e) => assert_eq!(e.kind, StoreErrorKind::Busy, "{err}"),
        other => panic!("expected a busy store, got {other:?}"),
    }
    // Typed, and its words carry no personal data.
    assert_eq!(
        err.to_string(),
        "local store (busy): sqlite DatabaseBusy",
        "{err:?}"
    );
    let e = client.store().outbox_entry(&id).unwrap().unwrap();
    assert_ne!(e.state, OutboxState::Rejected, "{e:?}");
    assert!(e.wire.is_none(), "nothing was frozen: {e:?}");
    assert_eq!(on_server(&server, &id), 0);

    // The store is free again. The send that never finished is picked up
    // once its lease runs out, with fresh proofs, and goes out once.
    clock.advance(zhangban_core::outbox::SEND_LEASE_SECS + 1);
    let r = client.flush().await.unwrap();
    assert_eq!((r.recovered, r.accepted), (1, 1), "{r:?}");
    assert_eq!(client.flush_now().await.unwrap().sent, 0);
    assert_eq!(
        client.store().outbox_entry(&id).unwrap().unwrap().state,
        OutboxState::Accepted
    );
    assert_eq!(on_server(&server, &id), 1, "exactly once");
}
