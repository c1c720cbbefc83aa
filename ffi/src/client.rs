//! The resident's [`Client`]: core's client, forwarded.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use zhangban_core::client::showing::RenderedShow;
use zhangban_core::client::{Client as CoreClient, Draft as CoreDraft, ListenerId, SystemClock};
use zhangban_core::credential::PublicKey;

use crate::data_key::{DataKeyStore, ForeignDataKeys};
use crate::error::{FieldProblem, ZhangbanError};
use crate::inspector::Inspector;
use crate::keystore::{ForeignKeystore, HolderKeystore};
use crate::listeners::{
    OutboxAdapter, OutboxObserver, StatusAdapter, StatusObserver, SyncAdapter, SyncObserver,
};
use crate::records::{
    CatalogInfo, Device, Draft, FlushReport, Guide, OutboxEntry, PrintCard, ResetReport, SearchHit,
    Shown, StatusEvent, SyncReport, WalletLicence,
};
use crate::runtime::run;

/// The resident's app core: one per store file.
#[derive(Debug, uniffi::Object)]
pub struct Client {
    inner: Arc<CoreClient>,
}

/// Parses the pinned national root key (a public Ed25519 JWK, JSON text).
pub(crate) fn root_key(jwk_json: &str) -> Result<PublicKey, ZhangbanError> {
    let jwk: Value = serde_json::from_str(jwk_json)?;
    PublicKey::from_jwk(&jwk).map_err(|_| ZhangbanError::Invalid {
        reason: "the root key is not a public Ed25519 JWK".into(),
    })
}

/// Opens core's client on the system clock.
pub(crate) async fn open_core(
    store_path: &str,
    server_url: &str,
    root_jwk_json: &str,
    keystore: Arc<dyn zhangban_core::client::HolderKeystore>,
    data_keys: Arc<dyn zhangban_core::client::DataKeyStore>,
) -> Result<Arc<CoreClient>, ZhangbanError> {
    let root = root_key(root_jwk_json)?;
    Ok(Arc::new(
        CoreClient::open(
            Path::new(store_path),
            server_url,
            vec![root],
            Arc::new(SystemClock),
            keystore,
            data_keys,
        )
        .await?,
    ))
}

fn values_of(json: &str) -> Result<Map<String, Value>, ZhangbanError> {
    Ok(serde_json::from_str(json)?)
}

fn core_draft(d: Draft, now: i64) -> Result<CoreDraft, ZhangbanError> {
    Ok(CoreDraft {
        values: values_of(&d.values_json)?,
        id: d.id,
        guide_id: d.guide_id,
        form_version: d.form_version,
        created_at: now,
        updated_at: now,
    })
}

/// The FFI record of a rendered presentation (the composition is core's).
fn shown(r: RenderedShow) -> Shown {
    Shown {
        png: r.png,
        text: r.text,
        qr_version: r.qr_version,
        presentation: r.shown.presentation,
        frame: r.shown.frame,
        mode: r.shown.mode.into(),
    }
}

#[uniffi::export]
impl Client {
    /// Opens (creating or upgrading) the store at `store_path` for the
    /// server at `server_url`, trusting bundles signed by the pinned root
    /// key `root_jwk_json` (a public Ed25519 JWK), with the device key in
    /// `keystore` (the app's platform keystore; see [`HolderKeystore`]) and
    /// the personal data sealed under the key `data_keys` keeps (see
    /// [`DataKeyStore`]). A missing or wrong data key does not fail the
    /// open: personal calls then fail with `DataKey` until [`Self::unlock`]
    /// succeeds or [`Self::reset_personal_data`] starts again.
    #[uniffi::constructor]
    pub async fn open(
        store_path: String,
        server_url: String,
        root_jwk_json: String,
        keystore: Arc<dyn HolderKeystore>,
        data_keys: Arc<dyn DataKeyStore>,
    ) -> Result<Arc<Self>, ZhangbanError> {
        let inner = run(async move {
            open_core(
                &store_path,
                &server_url,
                &root_jwk_json,
                Arc::new(ForeignKeystore(keystore)),
                Arc::new(ForeignDataKeys(data_keys)),
            )
            .await
        })
        .await?;
        Ok(Arc::new(Self { inner }))
    }

    /// Tries again to get the data key (after the user authenticated, or
    /// the right key was restored); fails with `DataKey` while it is still
    /// missing or wrong.
    pub async fn unlock(&self) -> Result<(), ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.unlock().await?) }).await
    }

    /// The recovery path when the data key is lost or wrong: wipes every
    /// personal row and the enrolment, keeps the catalog, seals the store
    /// under a new key, and says exactly what was lost (the submissions that
    /// never reached the server, by id). Then enrol again and sync.
    pub async fn reset_personal_data(&self) -> Result<ResetReport, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.reset_personal_data().await?.into()) }).await
    }

    /// Moves this device to a new key under `alias` in the app's keystore
    /// (e.g. from a key migrated out of an old store to a hardware key):
    /// enrols it with a fresh activation code; the server then issues fresh
    /// licence copies bound to it and refuses the old key a token.
    pub async fn reenrol(
        &self,
        activation_code: String,
        alias: String,
    ) -> Result<Device, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move {
            let d = inner.reenrol(&activation_code, &alias).await?;
            Ok(Device {
                device_id: d.device_id,
                resident_id: d.resident_id,
            })
        })
        .await
    }

    /// Enrols this device with the resident's activation code.
    pub async fn enrol(&self, activation_code: String) -> Result<Device, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move {
            let d = inner.enrol(&activation_code).await?;
            Ok(Device {
                device_id: d.device_id,
                resident_id: d.resident_id,
            })
        })
        .await
    }

    /// The enrolled device.
    pub fn device(&self) -> Result<Device, ZhangbanError> {
        let d = self.inner.device()?;
        Ok(Device {
            device_id: d.device_id,
            resident_id: d.resident_id,
        })
    }

    /// Syncs everything: the catalog, trust data and, once enrolled, the
    /// wallet and status events. Progress goes to the sync observers.
    pub async fn sync(&self) -> Result<SyncReport, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.sync().await?.into()) }).await
    }

    /// What the device holds of the catalog.
    pub fn catalog_info(&self) -> Result<CatalogInfo, ZhangbanError> {
        let store = self.inner.store();
        Ok(CatalogInfo {
            guides: store.guide_count()?,
            cursor: store.catalog_cursor()?,
        })
    }

    /// Searches the cached guides offline, in Chinese (户口, 社保 …).
    pub fn search(&self, query: String, limit: u32) -> Result<Vec<SearchHit>, ZhangbanError> {
        self.search_in(query, None, limit)
    }

    /// Searches as [`Self::search`] does, only among the items of
    /// `department` when it is given (e.g. 区民政局).
    pub fn search_in(
        &self,
        query: String,
        department: Option<String>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, ZhangbanError> {
        let opts = zhangban_core::search::SearchOptions {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            department,
        };
        Ok(self
            .inner
            .search_with(&query, &opts)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A cached guide.
    pub fn guide(&self, guide_id: String) -> Result<Guide, ZhangbanError> {
        Ok(self.inner.guide(&guide_id)?.try_into()?)
    }

    /// Saves (creates or replaces) a draft. A submitted draft is locked:
    /// `ZhangbanError::DraftSubmitted`.
    pub fn save_draft(&self, draft: Draft) -> Result<(), ZhangbanError> {
        let d = core_draft(draft, self.inner.now())?;
        Ok(self.inner.save_draft(&d)?)
    }

    /// The problems of the values a draft holds so far (the shared
    /// validator; a required field still empty is not one yet): show them
    /// while the resident fills. Empty when all is well.
    pub fn check_draft(&self, draft: Draft) -> Result<Vec<FieldProblem>, ZhangbanError> {
        let d = core_draft(draft, self.inner.now())?;
        Ok(self
            .inner
            .check_draft(&d)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The saved drafts.
    pub fn drafts(&self) -> Result<Vec<Draft>, ZhangbanError> {
        self.inner
            .store()
            .drafts()?
            .into_iter()
            .map(|d| {
                Ok(Draft {
                    values_json: serde_json::to_string(&d.values)?,
                    id: d.id,
                    guide_id: d.guide_id,
                    form_version: d.form_version,
                })
            })
            .collect()
    }

    /// Validates the draft and queues it (works offline); returns the
    /// submission's client-generated id. [`Self::flush`] sends it.
    pub fn submit(&self, draft: Draft) -> Result<String, ZhangbanError> {
        let d = core_draft(draft, self.inner.now())?;
        Ok(self.inner.submit(&d)?)
    }

    /// Corrects a rejected submission's values and queues it again.
    pub fn correct(&self, client_id: String, values_json: String) -> Result<(), ZhangbanError> {
        Ok(self.inner.correct(&client_id, &values_of(&values_json)?)?)
    }

    /// Sends what is due in the outbox, exactly once each.
    pub async fn flush(&self) -> Result<FlushReport, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.flush().await?.into()) }).await
    }

    /// The resident's "try now": sends at once what is waiting out its
    /// backoff (and what is due), exactly once each. Rejected entries wait
    /// for `correct`.
    pub async fn flush_now(&self) -> Result<FlushReport, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.flush_now().await?.into()) }).await
    }

    /// Every outbox entry.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, ZhangbanError> {
        Ok(self.inner.outbox()?.iter().map(Into::into).collect())
    }

    /// A submission's status events, oldest first.
    pub fn timeline(&self, client_id: String) -> Result<Vec<StatusEvent>, ZhangbanError> {
        Ok(self
            .inner
            .store()
            .timeline(&client_id)?
            .iter()
            .map(Into::into)
            .collect())
    }

    /// Keeps a file for an attachment field; returns the JSON value to put
    /// in the form (its content hash, size, media type and name).
    pub fn attach_file(
        &self,
        data: Vec<u8>,
        media_type: String,
        name: String,
    ) -> Result<String, ZhangbanError> {
        let r = self.inner.attach_file(&data, &media_type, &name)?;
        Ok(serde_json::to_string(&r)?)
    }

    /// The wallet, with each licence's state now.
    pub fn wallet(&self) -> Result<Vec<WalletLicence>, ZhangbanError> {
        self.inner
            .wallet()?
            .into_iter()
            .map(|l| Ok(l.try_into()?))
            .collect()
    }

    /// A dynamic presentation of a wallet licence for an inspector: only
    /// `fields` disclosed, key-bound, with the inspector's nonce if it
    /// showed one.
    pub async fn show(
        &self,
        licence_id: String,
        fields: Vec<String>,
        inspector_nonce: Option<String>,
    ) -> Result<Shown, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let s = inner
                .show_rendered(&licence_id, &fields, inspector_nonce.as_deref())
                .await?;
            Ok(shown(s))
        })
        .await
    }

    /// A printable card (for a resident without a smartphone): an unbound
    /// presentation valid for `validity_secs` (default 180 days), as SVG.
    pub async fn print_card(
        &self,
        licence_id: String,
        fields: Vec<String>,
        validity_secs: Option<i64>,
    ) -> Result<PrintCard, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move {
            let names: Vec<&str> = fields.iter().map(String::as_str).collect();
            let card = inner
                .print_card_page(&licence_id, &names, validity_secs)
                .await?;
            Ok(PrintCard {
                svg: card.svg,
                shown: shown(card.rendered),
            })
        })
        .await
    }

    /// An inspector on this device's trust data and replay cache.
    pub fn inspector(&self) -> Arc<Inspector> {
        Arc::new(Inspector::over(Arc::clone(&self.inner)))
    }

    /// Adds an observer of outbox changes; returns its id, which
    /// [`Self::remove_observer`] takes.
    pub fn add_outbox_observer(&self, observer: Arc<dyn OutboxObserver>) -> u64 {
        self.inner
            .add_outbox_listener(Arc::new(OutboxAdapter(observer)))
            .0
    }

    /// Adds an observer of status events; returns its id.
    pub fn add_status_observer(&self, observer: Arc<dyn StatusObserver>) -> u64 {
        self.inner
            .add_status_listener(Arc::new(StatusAdapter(observer)))
            .0
    }

    /// Adds an observer of sync progress; returns its id.
    pub fn add_sync_observer(&self, observer: Arc<dyn SyncObserver>) -> u64 {
        self.inner
            .add_sync_listener(Arc::new(SyncAdapter(observer)))
            .0
    }

    /// Removes an observer of any kind by the id its `add_*_observer`
    /// returned (a screen going away); false if it was already removed. A
    /// notification already under way may still reach it, no later one.
    /// Observers are never removed behind the app's back: the library holds
    /// each until this is called or the client is closed.
    pub fn remove_observer(&self, id: u64) -> bool {
        self.inner.remove_listener(ListenerId(id))
    }
}
