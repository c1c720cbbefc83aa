//! The shared application state: the store, the clock, the configuration,
//! the verified trust data (bundle + status lists) used to check licences
//! attached to submissions, and the issuer keys this server signs with.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest as _, Sha256};
use zhangban_core::credential::{HolderKey, Issuer, PublicKey, StatusListCache, TrustBundle};

use zhangban_core::guide::Guide;

use crate::activation::ActivationKey;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::limits::{Limiters, Limits};
use crate::nonce::NonceKey;
use crate::store::{Session, Store};

/// How long a parsed guide is reused before it is read again: the bound on
/// how stale another replica's publish can look (this replica's own
/// publishes invalidate at once).
pub const GUIDE_CACHE_SECS: i64 = 10;
/// How long a resolved session is reused (never past its expiry).
pub const SESSION_CACHE_SECS: i64 = 60;

/// Tunables.
#[derive(Debug, Clone)]
pub struct Config {
    /// The key activation codes are stored under (HMAC-SHA256); from the
    /// data directory's `activation-key`.
    pub activation_key: ActivationKey,
    /// Wrong codes for one code id before that code is locked.
    pub max_activation_failures: u32,
    /// Rate limits (ADR 0164).
    pub limits: Limits,
    /// The longest a request may take, body and handler included (408 after).
    pub request_timeout: std::time::Duration,
    /// The longest a request body may take to arrive (slow-loris).
    pub body_timeout: std::time::Duration,
    /// The header a trusted reverse proxy puts the client address in
    /// (e.g. `x-forwarded-for`); `None`: the TCP peer is the client.
    pub trusted_proxy_header: Option<axum::http::HeaderName>,
    /// SHA-256 (hex) of the bootstrap operator's token (the data
    /// directory's `operator-token`): made the `bootstrap` admin at start.
    pub operator_token_hash: String,
    /// Session token lifetime (seconds).
    pub token_ttl: i64,
    /// Authentication challenge lifetime (seconds).
    pub challenge_ttl: i64,
    /// The most pending challenges a device keeps (older ones are dropped).
    pub max_pending_challenges: u32,
    /// Presentation nonce lifetime (seconds).
    pub nonce_ttl: i64,
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Status list tokens expire this long after signing (seconds).
    pub status_list_validity: i64,
    /// Largest attachment a resident may declare (bytes). Guides whose
    /// attachment fields allow more are refused at publishing.
    pub max_attachment_bytes: u64,
    /// Attachment storage per resident (declared bytes of all uploads).
    pub max_resident_attachment_bytes: u64,
    /// Incomplete uploads a resident may have at once.
    pub max_pending_uploads: u64,
    /// Largest chunk of an attachment upload (bytes): the body limit of the
    /// chunk route, which replaces `max_body_bytes` there.
    pub max_chunk_bytes: usize,
    /// Working days a department has to answer a 差评's rectification case
    /// (default [`zhangban_core::evaluation::DEFAULT_RECTIFICATION_DAYS`]).
    pub rectification_days: u32,
}

/// Default [`Config::max_attachment_bytes`]: 20 MiB (the fixture's fields allow 10 MiB).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;
/// Default [`Config::max_chunk_bytes`]: 1 MiB.
pub const DEFAULT_MAX_CHUNK_BYTES: usize = 1024 * 1024;

impl Config {
    /// Defaults with the given operator token (and a random activation
    /// key: give the data directory's, see `setup::DataDir::config`).
    pub fn with_operator_token(token: &str) -> Self {
        Self {
            activation_key: ActivationKey::generate(),
            max_activation_failures: 5,
            limits: Limits::default(),
            request_timeout: std::time::Duration::from_secs(60),
            body_timeout: std::time::Duration::from_secs(30),
            trusted_proxy_header: None,
            operator_token_hash: sha256_hex(token.as_bytes()),
            token_ttl: 15 * 60,
            challenge_ttl: 120,
            max_pending_challenges: 4,
            nonce_ttl: 10 * 60,
            max_body_bytes: 1024 * 1024,
            status_list_validity: 24 * 3600,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
            max_resident_attachment_bytes: 10 * DEFAULT_MAX_ATTACHMENT_BYTES,
            max_pending_uploads: 16,
            rectification_days: zhangban_core::evaluation::DEFAULT_RECTIFICATION_DAYS,
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Verified trust data.
#[derive(Debug, Default)]
pub struct TrustState {
    /// The current bundle.
    pub bundle: Option<TrustBundle>,
    /// Verified status lists.
    pub status: StatusListCache,
}

/// Everything handlers share.
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub config: Config,
    /// Pinned root keys the trust bundle must be signed by.
    pub roots: Vec<PublicKey>,
    /// Verified trust data.
    pub trust: RwLock<TrustState>,
    /// Issuer keys held by this server, by issuer id.
    pub issuers: HashMap<String, Issuer>,
    /// Serialises this process's status-list changes so that every signed
    /// token contains every change made before it. Across replicas the
    /// store keeps only a token signed over the list's current bits (ADR
    /// 0221), and a list whose token lags its bits is re-signed.
    pub status_lock: tokio::sync::Mutex<()>,
    /// Issues and checks presentation nonces.
    pub nonce_key: NonceKey,
    /// Sessions by token hash.
    pub sessions: Cache<String, Session>,
    /// Holder keys by device id (a device id is its key's thumbprint).
    pub device_keys: Cache<String, HolderKey>,
    /// Parsed live guides by id.
    pub guides: Cache<String, Arc<Guide>>,
    /// Rate limiters (from `config.limits`).
    pub limiters: Limiters,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Shared handle.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the state and loads the trust data the store holds.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: Config,
        roots: Vec<PublicKey>,
        issuers: Vec<Issuer>,
    ) -> ApiResult<Self> {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        let secret = store.secret("presentation-nonce-hmac", &fresh, clock.now())?;
        let nonce_key = NonceKey::from_bytes(&secret)
            .ok_or_else(|| ApiError::internal("stored nonce key has the wrong length"))?;
        let limiters = Limiters::new(&config.limits);
        // The configured operator token (the data directory's
        // `operator-token`) is the bootstrap admin (ADR 0165).
        let bootstrap = store.ensure_bootstrap(&config.operator_token_hash, clock.now())?;
        if bootstrap == crate::store::operators::Bootstrap::Revoked {
            tracing::warn!(
                "the bootstrap operator was revoked: the operator-token file no longer works"
            );
        }
        // The lexicon's first version is the built-in seed (ADR 0181).
        let lexicon = store.seed_lexicon(zhangban_core::search::Lexicon::builtin(), clock.now())?;
        tracing::debug!(lexicon, "search lexicon version");
        let state = Self {
            limiters,
            store,
            clock,
            config,
            roots,
            trust: RwLock::new(TrustState::default()),
            issuers: issuers
                .into_iter()
                .map(|i| (i.id().to_owned(), i))
                .collect(),
            status_lock: tokio::sync::Mutex::new(()),
            nonce_key,
            sessions: Cache::new(100_000),
            device_keys: Cache::new(100_000),
            guides: Cache::new(10_000),
        };
        state.reload_trust()?;
        Ok(state)
    }

    /// Re-reads the bundle and every published status list from the store.
    pub fn reload_trust(&self) -> ApiResult<()> {
        let Some(jws) = self.store.trust_bundle()? else {
            return Ok(());
        };
        let bundle = TrustBundle::verify(&jws, &self.roots, None).map_err(|r| {
            ApiError::internal(format!("stored trust bundle does not verify: {}", r.code()))
        })?;
        let mut status = StatusListCache::new();
        for row in self.store.status_lists()? {
            if let Some(token) = row.token {
                if let Err(r) = status.insert_token(&token, &bundle) {
                    tracing::warn!(uri = %row.uri, code = %r.code(), "stored status list does not verify");
                }
            }
        }
        let mut trust = self
            .trust
            .write()
            .map_err(|_| ApiError::internal("trust lock poisoned"))?;
        *trust = TrustState {
            bundle: Some(bundle),
            status,
        };
        Ok(())
    }

    /// Puts a freshly signed status list token into the verified cache.
    pub fn cache_status_token(&self, token: &str) -> ApiResult<()> {
        let mut trust = self
            .trust
            .write()
            .map_err(|_| ApiError::internal("trust lock poisoned"))?;
        let TrustState { bundle, status } = &mut *trust;
        if let Some(bundle) = bundle {
            status
                .insert_token(token, bundle)
                .map_err(|r| ApiError::internal(r.code()))?;
        }
        Ok(())
    }
}

impl AppState {
    /// A live guide, parsed; `None` if there is no such guide.
    pub async fn guide(self: &Arc<Self>, id: &str) -> ApiResult<Option<Arc<Guide>>> {
        let now = self.clock.now();
        if let Some(g) = self.guides.get(&id.to_owned(), now) {
            return Ok(Some(g));
        }
        let gid = id.to_owned();
        let Some((_, body)) = blocking(self, move |s| s.guide(&gid)).await? else {
            return Ok(None);
        };
        let guide: Arc<Guide> = Arc::new(serde_json::from_str(&body).map_err(ApiError::internal)?);
        self.guides
            .put(id.to_owned(), Arc::clone(&guide), now + GUIDE_CACHE_SECS);
        Ok(Some(guide))
    }

    /// The holder key of an enrolled device.
    pub async fn device_key(self: &Arc<Self>, device_id: &str) -> ApiResult<HolderKey> {
        let now = self.clock.now();
        if let Some(k) = self.device_keys.get(&device_id.to_owned(), now) {
            return Ok(k);
        }
        let did = device_id.to_owned();
        let device = blocking(self, move |s| s.device(&did))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown device"))?;
        let jwk: serde_json::Value =
            serde_json::from_str(&device.jwk).map_err(ApiError::internal)?;
        let key = HolderKey::from_jwk(&jwk).map_err(ApiError::internal)?;
        self.device_keys
            .put(device_id.to_owned(), key.clone(), i64::MAX);
        Ok(key)
    }
}

/// Runs a blocking store call off the async runtime.
pub async fn blocking<T, F>(state: &SharedState, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    let store = Arc::clone(&state.store);
    Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
}
