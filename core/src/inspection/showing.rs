//! The holder's side of 亮证: presentations made to be shown.
//!
//! - **Dynamic** (on the phone's screen): the resident picks the fields; a
//!   key binding JWT with `aud` = "inspection", `iat` = now and the
//!   inspector's nonce (scanned from the inspector's screen) or a random
//!   one. An inspector accepts it for 90 s and only once.
//! - **Printable** (for residents without a smartphone; printed at a service
//!   hall whose terminal holds the licence): fields chosen at print time,
//!   and a *print seal* instead of a fresh key binding: a KB-JWT with
//!   `aud` = "print", `iat` = the print time and the nonce
//!   `print-until-<unix seconds>` stating the card's validity (default 180
//!   days). The seal is signed by the device the licence is bound to, so the
//!   validity printed on the card cannot be extended by editing it; the
//!   verdict still says the card is **unbound** (whoever holds the paper can
//!   show it).

use rand::{CryptoRng, RngCore};

use crate::credential::jose::b64e;
use crate::credential::verifier::AUD_INSPECTION;
use crate::credential::{
    HeldLicence, HolderKey, HolderSigner, KeyBindingClaims, PendingPresentation, PresentError,
};

use super::compact::{self, CompactError};

/// `aud` of a printed card's seal.
pub const AUD_PRINT: &str = "print";
/// Prefix of a print seal's nonce; the validity end follows.
pub const PRINT_NONCE_PREFIX: &str = "print-until-";
/// Default validity of a printed card.
pub const DEFAULT_PRINT_VALIDITY_SECS: i64 = 180 * 86_400;
/// The longest validity a verifier accepts on a printed card.
pub const MAX_PRINT_VALIDITY_SECS: i64 = 366 * 86_400;

/// How a presentation is meant to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ShowMode {
    /// On a screen, key-bound, fresh, single use.
    Dynamic,
    /// On paper: sealed at `printed_at`, valid until `valid_until`, unbound.
    Printable {
        /// The print time (the seal's `iat`).
        printed_at: i64,
        /// The end of the card's validity.
        valid_until: i64,
    },
}

/// A presentation ready to show: its SD-JWT text and its QR frame.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The SD-JWT presentation.
    pub presentation: String,
    /// The compact frame a QR code carries.
    pub frame: Vec<u8>,
    /// How it is shown.
    pub mode: ShowMode,
}

/// Why a presentation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShowError {
    /// The licence has no such field, or the key is not its holder's.
    #[error(transparent)]
    Present(#[from] PresentError),
    /// The frame could not be made.
    #[error(transparent)]
    Compact(#[from] CompactError),
    /// No field chosen, or a printed validity outside 1 day ..= the maximum.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

/// A random nonce: 128 bits, base64url.
pub fn random_nonce<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b64e(b)
}

/// A presentation waiting for the device key's signature: sign
/// [`PendingShow::signing_input`] (in a platform keystore, asynchronously)
/// and call [`PendingShow::finish`].
#[derive(Debug, Clone)]
pub struct PendingShow {
    pending: PendingPresentation,
    mode: ShowMode,
}

impl PendingShow {
    /// The bytes the device key signs.
    pub fn signing_input(&self) -> &[u8] {
        self.pending.signing_input()
    }

    /// The presentation and its QR frame, with the raw signature.
    pub fn finish(self, raw_signature: &[u8]) -> Result<Shown, ShowError> {
        let presentation = self.pending.finish(raw_signature)?;
        let frame = compact::encode(&presentation)?;
        Ok(Shown {
            presentation,
            frame,
            mode: self.mode,
        })
    }
}

/// The first half of a dynamic presentation for an inspector (see [`PendingShow`]).
pub fn prepare_dynamic<R: RngCore + CryptoRng>(
    licence: &HeldLicence,
    fields: &[&str],
    key: &HolderKey,
    inspector_nonce: Option<&str>,
    now: i64,
    rng: &mut R,
) -> Result<PendingShow, ShowError> {
    if fields.is_empty() {
        return Err(ShowError::Invalid("choose at least one field"));
    }
    let nonce = match inspector_nonce {
        Some(n) if !n.trim().is_empty() => n.to_owned(),
        _ => random_nonce(rng),
    };
    let pending = licence.prepare(
        fields,
        KeyBindingClaims {
            key,
            audience: AUD_INSPECTION,
            nonce: &nonce,
            iat: now,
        },
    )?;
    Ok(PendingShow {
        pending,
        mode: ShowMode::Dynamic,
    })
}

/// The first half of a printable presentation valid for `validity_secs`
/// from `now` (see [`PendingShow`]).
pub fn prepare_printable(
    licence: &HeldLicence,
    fields: &[&str],
    key: &HolderKey,
    now: i64,
    validity_secs: i64,
) -> Result<PendingShow, ShowError> {
    if fields.is_empty() {
        return Err(ShowError::Invalid("choose at least one field"));
    }
    if !(86_400..=MAX_PRINT_VALIDITY_SECS).contains(&validity_secs) {
        return Err(ShowError::Invalid(
            "a printed card is valid for 1 day up to the maximum",
        ));
    }
    let valid_until = now.saturating_add(validity_secs);
    let nonce = format!("{PRINT_NONCE_PREFIX}{valid_until}");
    let pending = licence.prepare(
        fields,
        KeyBindingClaims {
            key,
            audience: AUD_PRINT,
            nonce: &nonce,
            iat: now,
        },
    )?;
    Ok(PendingShow {
        pending,
        mode: ShowMode::Printable {
            printed_at: now,
            valid_until,
        },
    })
}

fn sign_now(p: PendingShow, key: &dyn HolderSigner) -> Result<Shown, ShowError> {
    let sig = key
        .sign_raw(p.signing_input())
        .map_err(PresentError::from)?;
    p.finish(&sig)
}

/// A dynamic presentation for an inspector, signed by an in-process key.
pub fn present_dynamic<R: RngCore + CryptoRng>(
    licence: &HeldLicence,
    fields: &[&str],
    key: &dyn HolderSigner,
    inspector_nonce: Option<&str>,
    now: i64,
    rng: &mut R,
) -> Result<Shown, ShowError> {
    let p = prepare_dynamic(
        licence,
        fields,
        &key.holder_key(),
        inspector_nonce,
        now,
        rng,
    )?;
    sign_now(p, key)
}

/// A printable presentation, valid for `validity_secs` from `now`, sealed by
/// an in-process key.
pub fn present_printable(
    licence: &HeldLicence,
    fields: &[&str],
    key: &dyn HolderSigner,
    now: i64,
    validity_secs: i64,
) -> Result<Shown, ShowError> {
    let p = prepare_printable(licence, fields, &key.holder_key(), now, validity_secs)?;
    sign_now(p, key)
}

/// The validity end a print seal's nonce states, if it is one.
pub fn print_valid_until(nonce: &str) -> Option<i64> {
    let digits = nonce.strip_prefix(PRINT_NONCE_PREFIX)?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
