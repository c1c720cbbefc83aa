//! Trust data on the phone: the root-signed trust bundle (checked against
//! the pinned root keys, never rolled back) and the issuers' status lists
//! (each verified against the bundle; an older list never replaces a newer
//! one). Both are stored, so the wallet and inspector mode work offline.

use serde::Serialize;

use super::api::ServerApi;
use super::error::{ClientError, ClientResult};
use super::session::failure;
use super::store::ClientStore;
use crate::credential::trust_bundle::DEFAULT_SKEW_SECS;
use crate::credential::{PublicKey, Rejection, StatusListCache, TrustBundle};

/// What a trust sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrustReport {
    /// The bundle version held after the sync.
    pub bundle_version: Option<u64>,
    /// Whether a newer bundle was taken.
    pub bundle_updated: bool,
    /// Status lists stored (new or newer).
    pub lists_updated: u32,
    /// Status lists refused (bad signature, unknown issuer …), by code.
    pub lists_refused: Vec<String>,
    /// Bytes on the wire.
    pub wire_bytes: u64,
}

/// Verified trust data loaded from the store.
#[derive(Debug, Clone, Default)]
pub struct TrustData {
    /// The bundle, if one was ever fetched.
    pub bundle: Option<TrustBundle>,
    /// Verified status lists.
    pub status: StatusListCache,
    /// When the bundle was last fetched (Unix seconds).
    pub fetched_at: Option<i64>,
}

impl ClientStore {
    /// Loads and re-verifies the stored trust data against the pinned roots.
    pub fn trust(&self, roots: &[PublicKey]) -> ClientResult<TrustData> {
        let row: Option<(String, i64)> = {
            let c = self.conn()?;
            rusqlite::OptionalExtension::optional(c.query_row(
                "SELECT jws, fetched_at FROM trust_bundle WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ))?
        };
        let Some((jws, fetched_at)) = row else {
            return Ok(TrustData::default());
        };
        let bundle = TrustBundle::verify(&jws, roots, None).map_err(ClientError::Verification)?;
        let tokens: Vec<String> = {
            let c = self.conn()?;
            let mut stmt = c.prepare("SELECT token FROM status_lists")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut status = StatusListCache::new();
        for t in tokens {
            // A list the current bundle no longer vouches for is skipped.
            let _ = status.insert_token(&t, &bundle);
        }
        Ok(TrustData {
            bundle: Some(bundle),
            status,
            fetched_at: Some(fetched_at),
        })
    }

    fn put_bundle(&self, bundle: &TrustBundle, now: i64) -> ClientResult<()> {
        self.conn()?.execute(
            "INSERT INTO trust_bundle(id, jws, version, fetched_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET jws = ?1, version = ?2, fetched_at = ?3",
            rusqlite::params![
                bundle.jws(),
                i64::try_from(bundle.version()).unwrap_or(i64::MAX),
                now
            ],
        )?;
        Ok(())
    }

    fn touch_bundle(&self, now: i64) -> ClientResult<()> {
        self.conn()?.execute(
            "UPDATE trust_bundle SET fetched_at = ?1 WHERE id = 1",
            [now],
        )?;
        Ok(())
    }

    fn put_status_token(&self, uri: &str, token: &str, now: i64) -> ClientResult<()> {
        self.conn()?.execute(
            "INSERT INTO status_lists(uri, token, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(uri) DO UPDATE SET token = ?2, fetched_at = ?3",
            rusqlite::params![uri, token, now],
        )?;
        Ok(())
    }
}

/// Fetches the bundle and the status lists, keeping only what verifies.
/// A bundle older than the one held (rollback) is refused with an error;
/// nothing held is lost.
pub async fn sync_trust(
    store: &ClientStore,
    api: &ServerApi,
    roots: &[PublicKey],
    now: i64,
) -> ClientResult<TrustReport> {
    let mut held = store.trust(roots)?;
    let mut report = TrustReport::default();
    let (jws, wire) = api.trust_bundle().await.map_err(failure)?;
    report.wire_bytes += wire;
    let bundle = match TrustBundle::verify(&jws, roots, held.bundle.as_ref()) {
        Ok(b) => b,
        Err(r) => return Err(ClientError::Verification(r)),
    };
    let newer = held
        .bundle
        .as_ref()
        .is_none_or(|h| h.version() != bundle.version());
    if newer {
        store.put_bundle(&bundle, now)?;
        report.bundle_updated = true;
        // Lists are re-checked against the new bundle.
        held.status = StatusListCache::new();
    } else {
        store.touch_bundle(now)?;
    }
    report.bundle_version = Some(bundle.version());
    let (lists, wire) = api.status_lists().await.map_err(failure)?;
    report.wire_bytes += wire;
    for l in lists {
        // With the time: a future-dated list is refused, and one held from
        // before gives way, so a wrong issuer clock cannot pin the cache.
        match held
            .status
            .insert_token_at(&l.token, &bundle, now, DEFAULT_SKEW_SECS)
        {
            Ok(true) => {
                store.put_status_token(&l.uri, &l.token, now)?;
                report.lists_updated += 1;
            }
            Ok(false) => {}
            Err(r) => report.lists_refused.push(refusal(&r)),
        }
    }
    Ok(report)
}

fn refusal(r: &Rejection) -> String {
    r.code()
}
