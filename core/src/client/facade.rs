//! [`Client`]: the resident's app core in one object — what the FFI wraps.
//! It owns the store, the HTTP shell, the clock, the pinned roots, the token
//! cache and the listeners; each method is a thin sequence of store calls
//! and state-machine steps.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::api::{ApiFailure, ServerApi, StatusEventIn};
use super::catalog::{CatalogReport, CatalogStep, CatalogSync, PAGE_SIZE};
use super::data_key::DataKeyStore;
use super::error::{ClientError, ClientResult};
use super::events::{StatusListener, sync_events};
use super::keystore::{HolderKeystore, SoftwareKeystore, sign_checked};
use super::listeners::{ListenerId, ListenerIds, ListenerSet};
use super::session::{
    DeviceIdentity, KeyHome, Replacing, Session, enrol, failure, legacy_key_dir, migrate_legacy_key,
};
use super::store::ClientStore;
use super::trust::{TrustReport, sync_trust};
use super::wallet::{WalletLicence, WalletReport, sync_wallet};
use crate::clock::Clock;
use crate::credential::PublicKey;
use crate::guide::Guide;
use crate::search::SearchHit;

/// Progress of a sync, reported as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SyncProgress {
    /// Catalog pages: the cursor reached and the server's head.
    Catalog {
        /// Cursor.
        cursor: u64,
        /// Head.
        head: u64,
    },
    /// Trust data fetched.
    Trust,
    /// Wallet fetched.
    Wallet,
    /// Status events fetched.
    Events,
}

/// Receives sync progress.
pub trait SyncListener: Send + Sync {
    /// A step of a sync finished.
    fn on_progress(&self, progress: SyncProgress);
}

/// What a full sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// The catalog.
    pub catalog: CatalogReport,
    /// Trust data.
    pub trust: TrustReport,
    /// The wallet (absent before enrolment).
    pub wallet: Option<WalletReport>,
    /// New status events.
    pub events: usize,
}

/// The resident's app core.
pub struct Client {
    pub(crate) store: Arc<ClientStore>,
    pub(crate) api: ServerApi,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) roots: Vec<PublicKey>,
    pub(crate) session: Session,
    /// The app's keystore: where new device keys are made and sign.
    pub(crate) keystore: Arc<dyn HolderKeystore>,
    /// The app's keeper of the data key that seals personal data.
    pub(crate) data_keys: Arc<dyn DataKeyStore>,
    /// The software keystore beside the store (`<store>.keys`, 0700): holds
    /// an Ed25519 key migrated out of a store written before hardware keys.
    pub(crate) legacy_keys: SoftwareKeystore,
    pub(crate) listener_ids: ListenerIds,
    pub(crate) status_listeners: ListenerSet<dyn StatusListener>,
    pub(crate) sync_listeners: ListenerSet<dyn SyncListener>,
    pub(crate) outbox_listeners: ListenerSet<dyn super::flush::OutboxListener>,
    pub(crate) backoff: crate::outbox::BackoffPolicy,
    pub(crate) catalog_page_size: u32,
    pub(crate) device_cache: Mutex<Option<DeviceIdentity>>,
    /// One catalog sync at a time: a second waits for the first, then
    /// fetches what changed since (an app's pull-to-refresh racing its
    /// background sync, or a cancelled call still finishing).
    pub(crate) catalog_gate: tokio::sync::Mutex<()>,
    /// One flush at a time in this process (the send lease guards across
    /// processes): a second waits for the first, then sends what is due.
    pub(crate) flush_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.api.base())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the store at `path` (created and upgraded as needed) for the
    /// server at `server_url`, trusting bundles signed by `roots`, with the
    /// device key in `keystore` (the platform keystore on a phone; a
    /// [`SoftwareKeystore`] for the CLI and tests). One `Client` per store
    /// file at a time: sends left in flight by a previous process are made
    /// due again. A private key kept in the store by an earlier version is
    /// moved into the software keystore file `<store>.keys/` (0600 in 0700)
    /// and deleted from the database.
    ///
    /// Personal data is sealed under the data key kept by `data_keys` (the
    /// app's platform-wrapped key; a [`super::SoftwareDataKeyStore`] for the
    /// CLI, tests and inspector devices): a new store gets a new key, a store
    /// written before sealing is sealed in place. If the key is missing or
    /// wrong the client still opens, locked: the catalog and search work,
    /// personal calls fail with [`ClientError::DataKey`] and the queue is
    /// left untouched ([`Self::unlock`], [`Self::reset_personal_data`]).
    pub async fn open(
        path: &Path,
        server_url: &str,
        roots: Vec<PublicKey>,
        clock: Arc<dyn Clock>,
        keystore: Arc<dyn HolderKeystore>,
        data_keys: Arc<dyn DataKeyStore>,
    ) -> ClientResult<Self> {
        let store = Arc::new(ClientStore::open(path)?);
        let legacy_keys =
            SoftwareKeystore::open(&legacy_key_dir(path)).map_err(ClientError::Keystore)?;
        if migrate_legacy_key(&store, &legacy_keys)? {
            tracing::info!("device key moved out of the store into the software keystore");
        }
        match super::personal::unlock(&store, data_keys.as_ref()).await {
            Ok(()) => {
                // One client per store: whatever was in flight died with its process.
                let recovered = store.recover_sends(clock.now())?;
                if recovered > 0 {
                    tracing::info!(
                        recovered,
                        "outbox: sends interrupted by a restart will be retried"
                    );
                }
            }
            Err(ClientError::DataKey(fault)) => {
                tracing::warn!(
                    fault = fault.code(),
                    "personal data locked: the data key is not available"
                );
            }
            Err(e) => return Err(e),
        }
        let api = ServerApi::new(server_url).map_err(failure)?;
        Ok(Self {
            store,
            api,
            clock,
            roots,
            session: Session::default(),
            keystore,
            data_keys,
            legacy_keys,
            listener_ids: ListenerIds::default(),
            status_listeners: ListenerSet::default(),
            sync_listeners: ListenerSet::default(),
            outbox_listeners: ListenerSet::default(),
            backoff: crate::outbox::BackoffPolicy::default(),
            catalog_page_size: PAGE_SIZE,
            device_cache: Mutex::new(None),
            catalog_gate: tokio::sync::Mutex::new(()),
            flush_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets the outbox's backoff policy (tests, or an app tuning it).
    pub fn set_backoff(&mut self, policy: crate::outbox::BackoffPolicy) {
        self.backoff = policy;
    }

    /// Sets the catalog page size (1..=1000, default 500): smaller pages lose
    /// less to a cut on a slow, flaky network; larger ones take fewer requests.
    pub fn set_catalog_page_size(&mut self, size: u32) {
        self.catalog_page_size = size.clamp(1, 1000);
    }

    /// The store (for reads the facade does not wrap).
    pub fn store(&self) -> &ClientStore {
        &self.store
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Adds a listener for status events of accepted submissions; the id
    /// removes it ([`Self::remove_listener`]).
    pub fn add_status_listener(&self, l: Arc<dyn StatusListener>) -> ListenerId {
        self.status_listeners.add(&self.listener_ids, l)
    }

    /// Adds a listener for sync progress; the id removes it.
    pub fn add_sync_listener(&self, l: Arc<dyn SyncListener>) -> ListenerId {
        self.sync_listeners.add(&self.listener_ids, l)
    }

    /// Removes a listener of any kind by the id its `add_*` returned; false
    /// if it was already removed. A notification already under way may
    /// still reach it; none started later will.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.status_listeners.remove(id)
            || self.sync_listeners.remove(id)
            || self.outbox_listeners.remove(id)
    }

    fn progress(&self, p: SyncProgress) {
        for l in self.sync_listeners.snapshot() {
            l.on_progress(p);
        }
    }

    /// Enrols this device with the resident's activation code: the app's
    /// keystore makes the device key (once; enrolling again reuses it).
    pub async fn enrol(&self, activation_code: &str) -> ClientResult<DeviceIdentity> {
        let d = enrol(
            &self.store,
            &self.api,
            self.keystore.as_ref(),
            activation_code,
            None,
            None,
        )
        .await?;
        self.session.invalidate();
        if let Ok(mut guard) = self.device_cache.lock() {
            *guard = Some(d.clone());
        }
        Ok(d)
    }

    /// Moves this device to a new key in the app's keystore (e.g. from a
    /// migrated Ed25519 software key to a hardware P-256 key): enrols the
    /// new key with a fresh activation code, after which the server issues
    /// fresh copies of the resident's licences bound to it and no longer
    /// gives the old key a token: the old key signs the request and the
    /// server retires the old device with the enrolment (ADR 0125). The
    /// old key is then deleted. Licences
    /// bound to the old key stay in the wallet until the next wallet sync
    /// replaces them. `alias` names the new key in the app's keystore and
    /// must differ from the current one.
    pub async fn reenrol(
        &self,
        activation_code: &str,
        alias: &str,
    ) -> ClientResult<DeviceIdentity> {
        let old = self.device()?;
        if old.home == KeyHome::App && old.alias == alias {
            return Err(ClientError::Invalid(
                "re-enrolment needs a new key alias".into(),
            ));
        }
        let d = enrol(
            &self.store,
            &self.api,
            self.keystore.as_ref(),
            activation_code,
            Some(alias),
            Some(Replacing {
                device: &old,
                keystore: self.keystore_of(&old),
            }),
        )
        .await?;
        self.session.invalidate();
        if let Ok(mut guard) = self.device_cache.lock() {
            *guard = Some(d.clone());
        }
        let removed = match old.home {
            KeyHome::App => self.keystore.delete_key(old.alias).await,
            KeyHome::LegacySoftware => self.legacy_keys.delete_key(old.alias).await,
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, "the old device key could not be deleted");
        }
        Ok(d)
    }

    /// The keystore holding `device`'s private key.
    fn keystore_of(&self, device: &DeviceIdentity) -> &dyn HolderKeystore {
        match device.home {
            KeyHome::App => self.keystore.as_ref(),
            KeyHome::LegacySoftware => &self.legacy_keys,
        }
    }

    /// Signs `message` with the device key (checked against its public key).
    pub(crate) async fn sign_with_device(
        &self,
        device: &DeviceIdentity,
        message: &[u8],
    ) -> ClientResult<Vec<u8>> {
        sign_checked(
            self.keystore_of(device),
            &device.alias,
            &device.key,
            message,
        )
        .await
        .map_err(ClientError::Keystore)
    }

    /// The enrolled device (read from the store once, then kept).
    pub fn device(&self) -> ClientResult<DeviceIdentity> {
        if let Ok(guard) = self.device_cache.lock() {
            if let Some(d) = guard.as_ref() {
                return Ok(d.clone());
            }
        }
        let d = self.store.device()?.ok_or(ClientError::NotEnrolled)?;
        if let Ok(mut guard) = self.device_cache.lock() {
            *guard = Some(d.clone());
        }
        Ok(d)
    }

    /// A valid bearer token (renewed as needed; the device key signs the
    /// server's challenge).
    pub async fn token(&self) -> Result<String, ApiFailure> {
        let device = self.device().map_err(|_| ApiFailure::Http {
            status: 401,
            code: "not_enrolled".into(),
            message: "device not enrolled".into(),
            details: None,
            retry_after: None,
        })?;
        self.session
            .token(&self.api, &device, self.keystore_of(&device), self.now())
            .await
    }

    /// Syncs the catalog: pages since the stored cursor, each applied in one
    /// transaction; a cut resumes from the last applied page next time.
    /// Then the search lexicon, if the server's changed (its outcome is in
    /// the report's `lexicon`; it never fails the sync). Concurrent calls
    /// run one after the other.
    pub async fn sync_catalog(&self) -> ClientResult<CatalogReport> {
        let _one_at_a_time = self.catalog_gate.lock().await;
        let mut sync = CatalogSync::new(self.store.catalog_cursor()?, self.catalog_page_size);
        // Three stages run at once, each on its own page: the fetch of page
        // N+2 (the server's work and the response's inflating), the check of
        // page N+1 (hashes, parsing and index text: CPU work, on a blocking
        // thread) and the apply of page N (one transaction: the writer). The
        // fetcher follows each page's `next` as soon as the page arrives and
        // stays at most `READ_AHEAD` pages ahead of the writer. Every page is
        // checked against the cursor it was asked at and applied only if it
        // starts where the page before it ended; a failed fetch or check ends
        // the sync there, after the pages before it are applied.
        if let CatalogStep::Fetch { since, limit } = sync.next_step() {
            let (queue, mut pages) =
                tokio::sync::mpsc::channel::<ClientResult<PendingPage>>(READ_AHEAD);
            let fetcher = async move {
                let mut since = since;
                loop {
                    let fetched = self.api.catalog_changes(since, limit).await;
                    let (page, wire) = match fetched {
                        Ok(p) => p,
                        Err(e) => {
                            // The writer stops at this error; it may have gone.
                            let _ = queue.send(Err(failure(e))).await;
                            return;
                        }
                    };
                    let (more, head, next) = (page.more, page.head, page.next);
                    let checker = CatalogSync::new(since, limit);
                    let check = tokio::task::spawn_blocking(move || checker.check(&page));
                    let pending = PendingPage {
                        check,
                        more,
                        head,
                        wire,
                    };
                    // A closed queue: the writer stopped (an error); so do we.
                    if queue.send(Ok(pending)).await.is_err() || !more || next <= since {
                        return;
                    }
                    since = next;
                }
            };
            let writer = async {
                while let Some(pending) = pages.recv().await {
                    let PendingPage {
                        check,
                        more,
                        head,
                        wire,
                    } = pending?;
                    let batch = check
                        .await
                        .map_err(|_| ClientError::store_other("the catalog check task died"))??;
                    let CatalogStep::Fetch { since, .. } = sync.next_step() else {
                        break;
                    };
                    if batch.since != since {
                        return Err(ClientError::Protocol(format!(
                            "page starts after {} but the catalog is at {since}",
                            batch.since
                        )));
                    }
                    let store = Arc::clone(&self.store);
                    let batch = tokio::task::spawn_blocking(move || {
                        store.apply_catalog(&batch)?;
                        Ok::<_, ClientError>(batch)
                    })
                    .await
                    .map_err(|_| ClientError::store_other("the catalog task died"))??;
                    sync.applied(&batch, more, head, wire);
                    self.progress(SyncProgress::Catalog {
                        cursor: batch.next,
                        head,
                    });
                    if !more {
                        break;
                    }
                }
                // Dropping the queue here stops the fetcher at its next page.
                drop(pages);
                Ok::<_, ClientError>(())
            };
            let ((), written) = tokio::join!(fetcher, writer);
            written?;
        }
        let mut report = sync.report();
        report.lexicon = super::lexicon::sync_lexicon(&self.store, &self.api, self.now()).await?;
        Ok(report)
    }

    /// Syncs trust data (bundle and status lists).
    pub async fn sync_trust(&self) -> ClientResult<TrustReport> {
        let r = sync_trust(&self.store, &self.api, &self.roots, self.now()).await?;
        self.progress(SyncProgress::Trust);
        Ok(r)
    }

    /// Fetches this device's licences and verifies them on receipt.
    pub async fn sync_wallet(&self) -> ClientResult<WalletReport> {
        let device = self.device()?;
        let token = self.authed_token().await?;
        let trust = self.store.trust(&self.roots)?;
        let r = sync_wallet(&self.store, &self.api, &token, &device, &trust, self.now()).await?;
        self.progress(SyncProgress::Wallet);
        Ok(r)
    }

    /// Fetches new status events and hands them to listeners.
    pub async fn sync_events(&self) -> ClientResult<Vec<StatusEventIn>> {
        let token = self.authed_token().await?;
        let fresh = sync_events(&self.store, &self.api, &token).await?;
        let listeners = self.status_listeners.snapshot();
        for e in &fresh {
            for l in &listeners {
                l.on_status(e);
            }
        }
        self.progress(SyncProgress::Events);
        Ok(fresh)
    }

    async fn authed_token(&self) -> ClientResult<String> {
        self.token().await.map_err(failure)
    }

    /// Everything: catalog, trust data, and (once enrolled) wallet and events.
    pub async fn sync(&self) -> ClientResult<SyncReport> {
        let catalog = self.sync_catalog().await?;
        let trust = self.sync_trust().await?;
        let (wallet, events) = if self.store.device()?.is_some() {
            (
                Some(self.sync_wallet().await?),
                self.sync_events().await?.len(),
            )
        } else {
            (None, 0)
        };
        Ok(SyncReport {
            catalog,
            trust,
            wallet,
            events,
        })
    }

    /// Offline search.
    pub fn search(&self, query: &str, limit: usize) -> ClientResult<Vec<SearchHit>> {
        self.store.search(query, limit)
    }

    /// Offline search with options: a department filter besides the limit.
    pub fn search_with(
        &self,
        query: &str,
        opts: &crate::search::SearchOptions,
    ) -> ClientResult<Vec<SearchHit>> {
        self.store.search_with(opts, query)
    }

    /// A cached guide.
    pub fn guide(&self, id: &str) -> ClientResult<Guide> {
        self.store
            .guide(id)?
            .ok_or_else(|| ClientError::NotFound(format!("guide {id}")))
    }

    /// The wallet with each licence's state now.
    pub fn wallet(&self) -> ClientResult<Vec<WalletLicence>> {
        let device = self.device()?;
        let trust = self.store.trust(&self.roots)?;
        self.store.wallet(&trust, &device, self.now())
    }
}

/// A fetched and checked catalog page, ready to apply.
struct PendingPage {
    /// The page's check (and index text), running on a blocking thread.
    check: tokio::task::JoinHandle<ClientResult<super::catalog::CatalogBatch>>,
    more: bool,
    head: u64,
    wire: u64,
}

/// How many fetched catalog pages may wait for the writer (each being
/// checked meanwhile), besides the one it applies and the one being fetched.
const READ_AHEAD: usize = 2;
