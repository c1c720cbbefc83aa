//! The inspector's side of 亮证: scanned bytes in, a verdict out, fully
//! offline, from cached trust data.
//!
//! - A scan is a QR frame ([`super::compact`]) or SD-JWT text; anything else
//!   is `unreadable_code`.
//! - A dynamic presentation must be key-bound for "inspection", at most
//!   [`DEFAULT_FRESHNESS_SECS`] old (plus skew), carry the inspector's nonce
//!   when the inspector showed one, and is accepted once: its nonce is kept
//!   until it could no longer be fresh, and a second scan is `replayed`.
//! - A printed card is sealed for "print" and accepted until the validity it
//!   states (never more than a year after printing); the verdict says it is
//!   unbound.
//! - Everything else is the shared verifier's: trust bundle and clock first
//!   (`clock_suspect` when the device's clock is before the bundle was
//!   issued), signatures, issuer authorisation, validity, disclosures, key
//!   binding, status last.
//!
//! The verdict carries the age of the trust data it used, so the inspector
//! sees how current "not revoked" is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::credential::jose::b64d;
use crate::credential::rejection::Part;
use crate::credential::verifier::AUD_INSPECTION;
use crate::credential::{
    KeyBindingPolicy, NoncePolicy, Rejection, StatusListCache, TrustBundle, VerifiedLicence,
    VerifyPolicy, verify_presentation,
};

use super::compact;
use super::showing::{AUD_PRINT, MAX_PRINT_VALIDITY_SECS, ShowMode, print_valid_until};

/// How long a dynamic presentation is accepted after it was made.
pub const DEFAULT_FRESHNESS_SECS: i64 = 90;
/// How many nonces the replay cache holds at most (oldest expiry dropped first).
pub const REPLAY_CACHE_CAPACITY: usize = 100_000;

/// The verdict an inspector acts on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectionVerdict {
    /// Whether the licence is accepted.
    pub valid: bool,
    /// `valid`, or the rejection's stable code.
    pub code: String,
    /// `valid`, or the verdict class (`expired`, `revoked`, `forged` …).
    pub class: String,
    /// Short zh-CN text to show as it is.
    pub zh: String,
    /// Short English text to show as it is.
    pub en: String,
    /// How it was shown (for an accepted licence).
    pub mode: Option<ShowMode>,
    /// Whether the presenter proved they hold the licence's device (dynamic
    /// mode); a printed card is unbound.
    pub bound: bool,
    /// The licence type (`vct`), issuer and disclosed fields, if accepted.
    pub licence: Option<InspectedLicence>,
    /// Seconds since the trust data (bundle, status lists) was fetched.
    pub trust_data_age_secs: Option<i64>,
    /// When the check ran (the inspector's clock).
    pub checked_at: i64,
}

/// What an accepted presentation showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectedLicence {
    /// Licence type.
    pub vct: String,
    /// The issuer's name, from the trust bundle.
    pub issuer_name: String,
    /// The disclosed fields only.
    pub claims: BTreeMap<String, Value>,
    /// Validity end (`None`: 长期).
    pub valid_until: Option<i64>,
}

/// An inspector device's verifier: trust data, clock policy, replay cache.
#[derive(Debug)]
pub struct Inspector {
    bundle: Option<TrustBundle>,
    status: StatusListCache,
    fetched_at: Option<i64>,
    freshness_secs: i64,
    seen: Mutex<HashMap<String, i64>>,
}

impl Inspector {
    /// An inspector with verified trust data fetched at `fetched_at`.
    pub fn new(
        bundle: Option<TrustBundle>,
        status: StatusListCache,
        fetched_at: Option<i64>,
    ) -> Self {
        Self {
            bundle,
            status,
            fetched_at,
            freshness_secs: DEFAULT_FRESHNESS_SECS,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the freshness window of dynamic presentations (seconds, 10..=600).
    pub fn set_freshness(&mut self, secs: i64) {
        self.freshness_secs = secs.clamp(10, 600);
    }

    /// Replaces the trust data (after a sync); the replay cache is kept.
    pub fn update_trust(
        &mut self,
        bundle: Option<TrustBundle>,
        status: StatusListCache,
        fetched_at: Option<i64>,
    ) {
        self.bundle = bundle;
        self.status = status;
        self.fetched_at = fetched_at;
    }

    /// Verifies a scan. `expected_nonce` is the nonce this inspector showed
    /// the holder, if it did.
    pub fn verify(
        &self,
        scanned: &[u8],
        expected_nonce: Option<&str>,
        now: i64,
    ) -> InspectionVerdict {
        let age = self.fetched_at.map(|t| now.saturating_sub(t));
        match self.check(scanned, expected_nonce, now) {
            Ok((v, mode)) => {
                let printed = matches!(mode, ShowMode::Printable { .. });
                InspectionVerdict {
                    valid: true,
                    code: "valid".into(),
                    class: "valid".into(),
                    zh: if printed {
                        "证照有效（打印卡：不能证明出示人是持证人）".into()
                    } else {
                        "证照有效".into()
                    },
                    en: if printed {
                        "Valid licence (printed card: does not prove the presenter is the holder)"
                            .into()
                    } else {
                        "Valid licence".into()
                    },
                    mode: Some(mode),
                    bound: !printed,
                    licence: Some(InspectedLicence {
                        vct: v.vct,
                        issuer_name: v.issuer_name,
                        claims: v.claims,
                        valid_until: v.exp,
                    }),
                    trust_data_age_secs: age,
                    checked_at: now,
                }
            }
            Err(r) => InspectionVerdict {
                valid: false,
                code: r.code(),
                class: r.class().code().into(),
                zh: r.zh().into(),
                en: r.en().into(),
                mode: None,
                bound: false,
                licence: None,
                trust_data_age_secs: age,
                checked_at: now,
            },
        }
    }

    fn check(
        &self,
        scanned: &[u8],
        expected_nonce: Option<&str>,
        now: i64,
    ) -> Result<(VerifiedLicence, ShowMode), Rejection> {
        let text = read_scan(scanned)?;
        let bundle = self.bundle.as_ref().ok_or(Rejection::BundleStale)?;
        let printed = kb_audience(&text).as_deref() == Some(AUD_PRINT);
        let mut policy = VerifyPolicy::inspection();
        if printed {
            policy.key_binding = KeyBindingPolicy::Required {
                audience: AUD_PRINT.into(),
                nonce: NoncePolicy::Any,
            };
            policy.kb_max_age = MAX_PRINT_VALIDITY_SECS;
        } else {
            policy.key_binding = KeyBindingPolicy::Required {
                audience: AUD_INSPECTION.into(),
                nonce: expected_nonce
                    .map_or(NoncePolicy::Any, |n| NoncePolicy::Exact(n.to_owned())),
            };
            policy.kb_max_age = self.freshness_secs;
        }
        let skew = policy.skew;
        let v = verify_presentation(&text, bundle, &self.status, &policy, now)?;
        let kb = v.key_binding.clone().ok_or(Rejection::KeyBindingMissing)?;
        if printed {
            let until = print_valid_until(&kb.nonce).ok_or(Rejection::PrintedCardInvalid)?;
            if until <= kb.iat || until.saturating_sub(kb.iat) > MAX_PRINT_VALIDITY_SECS {
                return Err(Rejection::PrintedCardInvalid);
            }
            if now > until.saturating_add(skew) {
                return Err(Rejection::PrintedCardExpired);
            }
            return Ok((
                v,
                ShowMode::Printable {
                    printed_at: kb.iat,
                    valid_until: until,
                },
            ));
        }
        // Single use: kept until it could no longer be fresh.
        let keep_until = kb
            .iat
            .saturating_add(self.freshness_secs)
            .saturating_add(skew.saturating_mul(2));
        let mut seen = self.seen.lock().map_err(|_| Rejection::Replayed)?;
        if seen.get(&kb.nonce).is_some_and(|until| *until >= now) {
            return Err(Rejection::Replayed);
        }
        seen.retain(|_, until| *until >= now);
        if seen.len() >= REPLAY_CACHE_CAPACITY {
            // Drop the entries closest to expiry; a full cache must not
            // stop inspections.
            let mut by_expiry: Vec<(i64, String)> =
                seen.iter().map(|(n, u)| (*u, n.clone())).collect();
            by_expiry.sort_unstable();
            for (_, n) in by_expiry.into_iter().take(REPLAY_CACHE_CAPACITY / 10) {
                seen.remove(&n);
            }
        }
        seen.insert(kb.nonce.clone(), keep_until);
        Ok((v, ShowMode::Dynamic))
    }

    /// Adds nonces seen before (a replay cache kept across restarts):
    /// (nonce, kept until).
    pub fn remember(&self, entries: impl IntoIterator<Item = (String, i64)>) {
        if let Ok(mut seen) = self.seen.lock() {
            for (n, until) in entries {
                let e = seen.entry(n).or_insert(until);
                *e = (*e).max(until);
            }
        }
    }

    /// The replay cache's entries still live at `now`: (nonce, kept until).
    pub fn seen(&self, now: i64) -> Vec<(String, i64)> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(_, u)| **u >= now)
                    .map(|(n, u)| (n.clone(), *u))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many nonces the replay cache holds.
    pub fn replay_cache_len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// The presentation text of a scan: a QR frame, or SD-JWT text.
pub fn read_scan(scanned: &[u8]) -> Result<String, Rejection> {
    match scanned.first() {
        None => Err(Rejection::UnreadableCode),
        Some(
            &compact::VERSION_SEGMENTS | &compact::VERSION_TEXT | &compact::VERSION_SEGMENTS_P256,
        ) => compact::decode(scanned).map_err(|_| Rejection::UnreadableCode),
        Some(_) => {
            let text = std::str::from_utf8(scanned).map_err(|_| Rejection::UnreadableCode)?;
            let text = text.trim();
            if !text.contains('~') {
                return Err(Rejection::UnreadableCode);
            }
            Ok(text.to_owned())
        }
    }
}

/// The `aud` of a presentation's KB-JWT, read without verifying (only to
/// choose the policy; the verifier then checks it).
fn kb_audience(text: &str) -> Option<String> {
    let kb = text.rsplit('~').next().filter(|k| !k.is_empty())?;
    let payload = kb.split('.').nth(1)?;
    let bytes = b64d(payload, Part::KeyBinding).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("aud").and_then(Value::as_str).map(str::to_owned)
}
