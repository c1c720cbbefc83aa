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

/// A presentation rendered for a screen: what [`Client::show`] makes, with
/// its QR code as a PNG image and as terminal text. Apps and the CLI show
/// these as they are (the composition lives here, not in each shell).
#[cfg(feature = "qr")]
#[derive(Debug, Clone)]
pub struct RenderedShow {
    /// The presentation.
    pub shown: Shown,
    /// The QR code of its frame, PNG.
    pub png: Vec<u8>,
    /// The QR code as block characters.
    pub text: String,
    /// The QR code's version (size).
    pub qr_version: i16,
}

/// A printable card (for a resident without a smartphone): the rendered
/// presentation and the A4 SVG page that prints it with the chosen fields.
#[cfg(feature = "qr")]
#[derive(Debug, Clone)]
pub struct PrintedCard {
    /// The presentation the card carries, rendered.
    pub rendered: RenderedShow,
    /// The card, an SVG document.
    pub svg: String,
    /// The last day the card may be shown (Unix seconds).
    pub valid_until: i64,
}

/// Pixels per QR module in the PNG (a phone screen at arm's length).
#[cfg(feature = "qr")]
pub const PNG_SCALE: u32 = 6;

#[cfg(feature = "qr")]
fn render(shown: Shown) -> ClientResult<(RenderedShow, crate::inspection::qr::Qr)> {
    let qr = crate::inspection::qr::Qr::new(&shown.frame)
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
    let rendered = RenderedShow {
        png: qr.to_png(PNG_SCALE),
        text: qr.to_terminal(),
        qr_version: qr.version(),
        shown,
    };
    Ok((rendered, qr))
}

#[cfg(feature = "qr")]
impl Client {
    /// [`Self::show`], rendered as a QR code.
    pub async fn show_rendered(
        &self,
        licence_id: &str,
        fields: &[&str],
        inspector_nonce: Option<&str>,
    ) -> ClientResult<RenderedShow> {
        let shown = self.show(licence_id, fields, inspector_nonce).await?;
        Ok(render(shown)?.0)
    }

    /// [`Self::print_card`], rendered as a printable A4 page showing the
    /// QR code and the disclosed fields (the wallet's copy of them).
    pub async fn print_card_page(
        &self,
        licence_id: &str,
        fields: &[&str],
        validity_secs: Option<i64>,
    ) -> ClientResult<PrintedCard> {
        let shown = self.print_card(licence_id, fields, validity_secs).await?;
        let crate::inspection::ShowMode::Printable {
            printed_at,
            valid_until,
        } = shown.mode
        else {
            return Err(ClientError::Invalid(
                "a card needs a printable presentation".into(),
            ));
        };
        let claims: std::collections::BTreeMap<String, serde_json::Value> = self
            .wallet()?
            .into_iter()
            .find(|l| l.licence_id == licence_id)
            .ok_or_else(|| ClientError::NotFound("wallet licence".into()))?
            .claims
            .into_iter()
            .filter(|(k, _)| fields.contains(&k.as_str()))
            .collect();
        let (rendered, qr) = render(shown)?;
        let svg = crate::inspection::printable::card_svg(&qr, &claims, printed_at, valid_until);
        Ok(PrintedCard {
            rendered,
            svg,
            valid_until,
        })
    }
}
