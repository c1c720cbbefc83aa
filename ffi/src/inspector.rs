//! The inspector's [`Inspector`]: offline verification of a scanned licence.

use std::path::Path;
use std::sync::Arc;

use zhangban_core::client::Client as CoreClient;

use crate::client::open_core;
use crate::error::ZhangbanError;
use crate::records::Verdict;
use crate::runtime::run;

/// Verifies scanned licences offline against the device's trust data (the
/// trust bundle and status lists last synced), remembering nonces so that a
/// replayed presentation is refused.
#[derive(Debug, uniffi::Object)]
pub struct Inspector {
    inner: Arc<CoreClient>,
}

impl Inspector {
    pub(crate) fn over(inner: Arc<CoreClient>) -> Self {
        Self { inner }
    }
}

#[uniffi::export]
impl Inspector {
    /// Opens an inspector device's store (its trust data and replay cache)
    /// for the server at `server_url`, trusting the pinned root key.
    #[uniffi::constructor]
    pub async fn open(
        store_path: String,
        server_url: String,
        root_jwk_json: String,
    ) -> Result<Arc<Self>, ZhangbanError> {
        // An inspector keeps no personal data: the software data key file
        // beside its store suffices (it seals nothing worth a hardware key).
        let data_keys = zhangban_core::client::SoftwareDataKeyStore::beside(Path::new(&store_path))
            .map_err(|_| ZhangbanError::Store)?;
        let inner = run(async move {
            open_core(
                &store_path,
                &server_url,
                &root_jwk_json,
                // An inspector never signs.
                Arc::new(zhangban_core::client::keystore::NoKeystore),
                Arc::new(data_keys),
            )
            .await
        })
        .await?;
        Ok(Arc::new(Self::over(inner)))
    }

    /// Fetches trust data (bundle and status lists); returns the bundle
    /// version held.
    pub async fn sync_trust(&self) -> Result<Option<u64>, ZhangbanError> {
        let inner = Arc::clone(&self.inner);
        run(async move { Ok(inner.sync_trust().await?.bundle_version) }).await
    }

    /// Verifies scanned QR bytes (a compact frame or the SD-JWT text).
    /// `expected_nonce` is the nonce this inspector showed, if it did.
    pub fn verify(
        &self,
        scanned: Vec<u8>,
        expected_nonce: Option<String>,
    ) -> Result<Verdict, ZhangbanError> {
        let v = self.inner.inspect(&scanned, expected_nonce.as_deref())?;
        Ok(v.try_into()?)
    }
}
