//! 亮证 from the wallet, and inspector mode on the same device: the client's
//! thin layer over [`crate::inspection`] — licences come from the store,
//! the device key signs, trust data and the replay cache are the store's.

use rusqlite::params;

use super::error::{ClientError, ClientResult};
use super::facade::Client;
use crate::credential::HeldLicence;
use crate::inspection::showing::DEFAULT_PRINT_VALIDITY_SECS;
use crate::inspection::showing::{PendingShow, prepare_dynamic, prepare_printable};
use crate::inspection::{InspectionVerdict, Inspector, Shown};

impl Client {
    fn held(&self, licence_id: &str) -> ClientResult<HeldLicence> {
        let sd_jwt = self
            .store
            .licences()?
            .into_iter()
            .find(|(id, ..)| id == licence_id)
            .map(|(_, _, sd_jwt, _)| sd_jwt)
            .ok_or_else(|| ClientError::NotFound("wallet licence".into()))?;
        HeldLicence::parse(&sd_jwt).map_err(ClientError::Verification)
    }

    /// A dynamic presentation of a wallet licence for an inspector: the
    /// chosen fields, key-bound now, with the inspector's nonce if one was
    /// scanned (else a random one). The device key signs in the app's keystore.
    pub async fn show(
        &self,
        licence_id: &str,
        fields: &[&str],
        inspector_nonce: Option<&str>,
    ) -> ClientResult<Shown> {
        let held = self.held(licence_id)?;
        let device = self.device()?;
        let pending = prepare_dynamic(
            &held,
            fields,
            &device.key,
            inspector_nonce,
            self.now(),
            &mut rand::rngs::OsRng,
        )
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
        self.finish_show(&device, pending).await
    }

    async fn finish_show(
        &self,
        device: &super::session::DeviceIdentity,
        pending: PendingShow,
    ) -> ClientResult<Shown> {
        let sig = self
            .sign_with_device(device, pending.signing_input())
            .await?;
        pending
            .finish(&sig)
            .map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// A printable card of a wallet licence, valid for `validity_secs`
    /// (default 180 days).
    pub async fn print_card(
        &self,
        licence_id: &str,
        fields: &[&str],
        validity_secs: Option<i64>,
    ) -> ClientResult<Shown> {
        let held = self.held(licence_id)?;
        let device = self.device()?;
        let pending = prepare_printable(
            &held,
            fields,
            &device.key,
            self.now(),
            validity_secs.unwrap_or(DEFAULT_PRINT_VALIDITY_SECS),
        )
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
        self.finish_show(&device, pending).await
    }

    /// An inspector over the stored trust data and replay cache.
    pub fn inspector(&self) -> ClientResult<Inspector> {
        let trust = self.store.trust(&self.roots)?;
        let insp = Inspector::new(trust.bundle, trust.status, trust.fetched_at);
        let now = self.now();
        let seen: Vec<(String, i64)> = {
            let c = self.store.conn()?;
            let mut stmt =
                c.prepare("SELECT nonce, keep_until FROM seen_nonces WHERE keep_until >= ?1")?;
            stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        insp.remember(seen);
        Ok(insp)
    }

    /// Inspector mode: verifies a scan offline and keeps the replay cache
    /// in the store.
    pub fn inspect(
        &self,
        scanned: &[u8],
        expected_nonce: Option<&str>,
    ) -> ClientResult<InspectionVerdict> {
        let insp = self.inspector()?;
        let now = self.now();
        let verdict = insp.verify(scanned, expected_nonce, now);
        let seen = insp.seen(now);
        self.store.tx(|tx| {
            tx.execute("DELETE FROM seen_nonces WHERE keep_until < ?1", [now])?;
            for (n, until) in &seen {
                tx.execute(
                    "INSERT INTO seen_nonces(nonce, keep_until) VALUES (?1, ?2)
                     ON CONFLICT(nonce) DO UPDATE SET keep_until = MAX(keep_until, ?2)",
                    params![n, until],
                )?;
            }
            Ok(())
        })?;
        Ok(verdict)
    }
}
