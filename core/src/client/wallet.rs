//! The wallet: licences issued to the resident, fetched from the server,
//! verified on receipt (issuer trusted, signature, bound to this device),
//! stored, and shown with their current state from cached trust data.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::api::ServerApi;
use super::error::{ClientError, ClientResult};
use super::personal::{open_text, seal_text};
use super::sealing::Slot;
use super::session::DeviceIdentity;
use super::store::ClientStore;
use super::trust::TrustData;
use crate::credential::{HeldLicence, Rejection, VerdictClass, VerifyPolicy, verify_presentation};

/// A licence's state as the resident sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceState {
    /// Valid now.
    Valid,
    /// Past its validity.
    Expired,
    /// Not yet valid.
    NotYetValid,
    /// Revoked by the issuer.
    Revoked,
    /// Suspended by the issuer.
    Suspended,
    /// Cannot be checked now (no or stale trust data); shown, not trusted.
    Unverified,
}

/// A licence in the wallet.
#[derive(Debug, Clone, Serialize)]
pub struct WalletLicence {
    /// GB/T 36904 identifier.
    pub licence_id: String,
    /// Licence type.
    pub vct: String,
    /// Every claim the resident can disclose.
    pub claims: BTreeMap<String, Value>,
    /// Issue time.
    pub issued_at: i64,
    /// State now.
    pub state: LicenceState,
    /// Why, when not valid (a stable rejection code).
    pub reason: Option<String>,
}

/// What a wallet sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalletReport {
    /// Licences new to this device.
    pub received: u32,
    /// Copies refused on receipt, by rejection code (never stored).
    pub refused: Vec<String>,
}

fn state_of(r: &Rejection) -> LicenceState {
    match r.class() {
        VerdictClass::Expired => LicenceState::Expired,
        VerdictClass::NotYetValid => LicenceState::NotYetValid,
        VerdictClass::Revoked => LicenceState::Revoked,
        VerdictClass::Suspended => LicenceState::Suspended,
        _ => LicenceState::Unverified,
    }
}

impl ClientStore {
    /// Stores a received licence (idempotent by licence id): its row is
    /// keyed by the licence id's keyed index; the id, the type and the copy
    /// are sealed. Returns whether it was new or changed.
    fn put_licence(
        &self,
        licence_id: &str,
        vct: &str,
        sd_jwt: &str,
        issued_at: i64,
        now: i64,
    ) -> ClientResult<bool> {
        let s = self.sealer()?;
        let idx = s.index("wallet", licence_id);
        let slot = |column| Slot::new("wallet", column, &idx);
        self.tx(|tx| {
            let held: Option<Vec<u8>> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT sd_jwt FROM wallet WHERE licence_id = ?1",
                [&idx],
                |r| r.get(0),
            ))?;
            if let Some(held) = held {
                if open_text(&s, slot("sd_jwt"), &held)? == sd_jwt {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO wallet(licence_id, sealed_id, vct, sd_jwt, issued_at, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(licence_id) DO UPDATE SET sealed_id = ?2, vct = ?3, sd_jwt = ?4,
                     issued_at = ?5",
                rusqlite::params![
                    idx,
                    seal_text(&s, slot("sealed_id"), licence_id)?,
                    seal_text(&s, slot("vct"), vct)?,
                    seal_text(&s, slot("sd_jwt"), sd_jwt)?,
                    issued_at,
                    now
                ],
            )?;
            Ok(true)
        })
    }

    /// The stored licences: (licence id, vct, SD-JWT, issued at).
    pub fn licences(&self) -> ClientResult<Vec<(String, String, String, i64)>> {
        let s = self.sealer()?;
        type Sealed = (String, Vec<u8>, Vec<u8>, Vec<u8>, i64);
        let rows: Vec<Sealed> = {
            let c = self.conn()?;
            let mut stmt = c.prepare(
                "SELECT licence_id, sealed_id, vct, sd_jwt, issued_at FROM wallet
                 ORDER BY issued_at, licence_id",
            )?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let mut out = rows
            .into_iter()
            .map(|(idx, id, vct, sd_jwt, issued_at)| {
                let slot = |column| Slot::new("wallet", column, &idx);
                Ok((
                    open_text(&s, slot("sealed_id"), &id)?,
                    open_text(&s, slot("vct"), &vct)?,
                    open_text(&s, slot("sd_jwt"), &sd_jwt)?,
                    issued_at,
                ))
            })
            .collect::<ClientResult<Vec<_>>>()?;
        out.sort_by(|a, b| (a.3, &a.0).cmp(&(b.3, &b.0)));
        Ok(out)
    }

    /// The wallet with each licence's state at `now`.
    pub fn wallet(
        &self,
        trust: &TrustData,
        device: &DeviceIdentity,
        now: i64,
    ) -> ClientResult<Vec<WalletLicence>> {
        let mut out = Vec::new();
        for (licence_id, vct, sd_jwt, issued_at) in self.licences()? {
            let held = HeldLicence::parse(&sd_jwt).map_err(ClientError::Verification)?;
            let claims = held
                .claims()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect();
            let (state, reason) = match &trust.bundle {
                None => (
                    LicenceState::Unverified,
                    Some(Rejection::BundleStale.code()),
                ),
                Some(bundle) => {
                    let mut policy = VerifyPolicy::wallet();
                    policy.expected_holder = Some(device.key.clone());
                    match verify_presentation(&sd_jwt, bundle, &trust.status, &policy, now) {
                        Ok(_) => (LicenceState::Valid, None),
                        Err(r) => (state_of(&r), Some(r.code())),
                    }
                }
            };
            out.push(WalletLicence {
                licence_id,
                vct,
                claims,
                issued_at,
                state,
                reason,
            });
        }
        Ok(out)
    }
}

/// Fetches this device's licence copies and stores those that verify (or
/// fail only because of their validity or status, which the resident should
/// see). Forged, untrusted or other devices' copies are refused.
pub async fn sync_wallet(
    store: &ClientStore,
    api: &ServerApi,
    token: &str,
    device: &DeviceIdentity,
    trust: &TrustData,
    now: i64,
) -> ClientResult<WalletReport> {
    let bundle = trust
        .bundle
        .as_ref()
        .ok_or(ClientError::Verification(Rejection::BundleStale))?;
    let entries = api.wallet(token).await.map_err(super::session::failure)?;
    let mut report = WalletReport::default();
    let mut policy = VerifyPolicy::wallet();
    policy.expected_holder = Some(device.key.clone());
    for e in entries.iter().filter(|e| e.device_id == device.device_id) {
        let refused = match verify_presentation(&e.sd_jwt, bundle, &trust.status, &policy, now) {
            Ok(v) if v.vct == e.vct => None,
            Ok(_) => Some("vct_mismatch".to_owned()),
            // Authentic, but not valid now or not checkable now: kept, and
            // shown with its state.
            Err(r)
                if matches!(
                    r.class(),
                    VerdictClass::Expired
                        | VerdictClass::NotYetValid
                        | VerdictClass::Revoked
                        | VerdictClass::Suspended
                        | VerdictClass::StaleTrustData
                ) =>
            {
                None
            }
            Err(r) => Some(r.code()),
        };
        if let Some(code) = refused {
            report.refused.push(code);
            continue;
        }
        if store.put_licence(&e.licence_id, &e.vct, &e.sd_jwt, e.issued_at, now)? {
            report.received += 1;
        }
    }
    Ok(report)
}
