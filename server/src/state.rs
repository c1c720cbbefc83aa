//! The shared application state: the store, the clock, the configuration,
//! the verified trust data (bundle + status lists) used to check licences
//! attached to submissions, and the issuer keys this server signs with.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest as _, Sha256};
use zhangban_core::credential::{Issuer, PublicKey, StatusListCache, TrustBundle};

use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// Tunables.
#[derive(Debug, Clone)]
pub struct Config {
    /// SHA-256 (hex) of the operator bearer token.
    pub operator_token_hash: String,
    /// Session token lifetime (seconds).
    pub token_ttl: i64,
    /// Authentication challenge lifetime (seconds).
    pub challenge_ttl: i64,
    /// Presentation nonce lifetime (seconds).
    pub nonce_ttl: i64,
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Status list tokens expire this long after signing (seconds).
    pub status_list_validity: i64,
}

impl Config {
    /// Defaults with the given operator token.
    pub fn with_operator_token(token: &str) -> Self {
        Self {
            operator_token_hash: sha256_hex(token.as_bytes()),
            token_ttl: 15 * 60,
            challenge_ttl: 120,
            nonce_ttl: 10 * 60,
            max_body_bytes: 1024 * 1024,
            status_list_validity: 24 * 3600,
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
    /// Serialises status-list changes so that every signed token contains
    /// every change made before it (no lost revocation between replicas of
    /// one process; PostgreSQL replicas will take a row lock instead).
    pub status_lock: tokio::sync::Mutex<()>,
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
        let state = Self {
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

/// Runs a blocking store call off the async runtime.
pub async fn blocking<T, F>(state: &SharedState, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    let store = Arc::clone(&state.store);
    Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
}
