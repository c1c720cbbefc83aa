//! The trust bundle: one JWS (`typ` = `trust-bundle+jwt`) signed by the
//! national root key pinned in the app. It lists every trusted issuer with its
//! keys and their validity windows, the licence types (`vct`) it may issue and
//! its status lists, plus a monotonic version, an issue time and a maximum
//! staleness.
//!
//! Loading a bundle checks the root signature and refuses rollback; how old the
//! bundle may be, and whether the device clock can be believed, is judged at
//! each verification with the verifier's `now` ([`TrustBundle::check_time`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

use super::jose::{CompactJws, header, sign_compact};
use super::keys::{KeyPair, PublicKey};
use super::rejection::{Part, Rejection};

/// `typ` of a trust bundle.
pub const TYP_TRUST_BUNDLE: &str = "trust-bundle+jwt";
/// Default allowed clock skew, in seconds, for `iat`/`nbf`/`exp`.
pub const DEFAULT_SKEW_SECS: i64 = 300;

/// One key of an issuer, usable to sign licences issued (`iat`) inside its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuerKeyEntry {
    /// The RFC 7638 thumbprint of `jwk`.
    pub kid: String,
    /// The public JWK.
    pub jwk: Value,
    /// Start of the key's validity (Unix seconds).
    pub not_before: i64,
    /// End of the key's validity (Unix seconds).
    pub not_after: i64,
}

/// A trusted issuer (发证机关).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedIssuer {
    /// The issuer identifier used as `iss`.
    pub id: String,
    /// Display name, e.g. 广安市市场监督管理局.
    pub name: String,
    /// Unified social credit code (ZZBFJGDM).
    pub code: String,
    /// Signing keys.
    pub keys: Vec<IssuerKeyEntry>,
    /// The `vct` values this issuer may issue. A licence of any other type
    /// from this issuer is a forgery.
    pub licence_types: Vec<String>,
    /// URIs of the status lists this issuer publishes.
    pub status_lists: Vec<String>,
}

/// The signed content of a trust bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustBundleContent {
    /// Monotonic version; a lower one is never accepted.
    pub version: u64,
    /// Issue time (Unix seconds).
    pub iat: i64,
    /// Seconds after `iat` beyond which the bundle is stale.
    pub max_staleness: i64,
    /// The trusted issuers.
    pub issuers: Vec<TrustedIssuer>,
}

/// A key from the bundle, parsed once.
#[derive(Debug, Clone)]
pub struct BundleKey {
    /// The parsed key.
    pub key: ed25519_dalek::VerifyingKey,
    /// Window start.
    pub not_before: i64,
    /// Window end.
    pub not_after: i64,
}

/// A trust bundle whose root signature was verified.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    content: TrustBundleContent,
    jws: String,
    /// kid → (index into issuers, key)
    keys: HashMap<String, (usize, BundleKey)>,
    by_id: HashMap<String, usize>,
}

impl TrustBundleContent {
    /// Signs the bundle with the root key.
    pub fn sign(&self, root: &KeyPair) -> Result<String, serde_json::Error> {
        let payload = serde_json::to_value(self)?;
        Ok(sign_compact(
            header(TYP_TRUST_BUNDLE, Some(&root.kid())),
            &payload,
            root.signing_key(),
        ))
    }
}

impl TrustBundle {
    /// Verifies a bundle against the pinned root keys and, if we already hold
    /// one, refuses rollback: a lower version, or the same version with other
    /// content.
    pub fn verify(
        jws: &str,
        pinned_roots: &[PublicKey],
        current: Option<&TrustBundle>,
    ) -> Result<Self, Rejection> {
        let parsed = CompactJws::parse(jws, TYP_TRUST_BUNDLE, Part::TrustBundle)?;
        let kid = parsed.kid().ok_or(Rejection::BundleSignature)?;
        let root = pinned_roots
            .iter()
            .find(|r| r.thumbprint() == kid)
            .ok_or(Rejection::BundleSignature)?;
        if !parsed.verify(root.verifying_key()) {
            return Err(Rejection::BundleSignature);
        }
        let content: TrustBundleContent = serde_json::from_value(Value::Object(parsed.payload))
            .map_err(|_| Rejection::BundleMalformed)?;
        if let Some(cur) = current {
            if content.version < cur.content.version
                || (content.version == cur.content.version && content != cur.content)
            {
                return Err(Rejection::BundleRollback);
            }
        }
        Self::index(content, jws.to_owned())
    }

    fn index(content: TrustBundleContent, jws: String) -> Result<Self, Rejection> {
        if content.max_staleness <= 0 {
            return Err(Rejection::BundleMalformed);
        }
        let mut keys = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, issuer) in content.issuers.iter().enumerate() {
            if by_id.insert(issuer.id.clone(), i).is_some() {
                return Err(Rejection::BundleMalformed);
            }
            for entry in &issuer.keys {
                let key =
                    PublicKey::from_jwk(&entry.jwk).map_err(|_| Rejection::BundleMalformed)?;
                if key.thumbprint() != entry.kid || entry.not_after < entry.not_before {
                    return Err(Rejection::BundleMalformed);
                }
                let bk = BundleKey {
                    key: *key.verifying_key(),
                    not_before: entry.not_before,
                    not_after: entry.not_after,
                };
                if keys.insert(entry.kid.clone(), (i, bk)).is_some() {
                    return Err(Rejection::BundleMalformed);
                }
            }
        }
        let mut lists = HashSet::new();
        for uri in content.issuers.iter().flat_map(|i| &i.status_lists) {
            if !lists.insert(uri) {
                return Err(Rejection::BundleMalformed);
            }
        }
        Ok(Self {
            content,
            jws,
            keys,
            by_id,
        })
    }

    /// The signed content.
    pub fn content(&self) -> &TrustBundleContent {
        &self.content
    }

    /// The JWS as received, for storage and re-distribution.
    pub fn jws(&self) -> &str {
        &self.jws
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.content.version
    }

    /// An issuer by its `iss` id.
    pub fn issuer(&self, id: &str) -> Option<&TrustedIssuer> {
        self.by_id
            .get(id)
            .and_then(|&i| self.content.issuers.get(i))
    }

    /// The issuer that owns `kid`, and the key.
    pub fn key_by_kid(&self, kid: &str) -> Option<(&TrustedIssuer, &BundleKey)> {
        let (i, key) = self.keys.get(kid)?;
        Some((self.content.issuers.get(*i)?, key))
    }

    /// Judges the bundle against the verifier's clock: a `now` earlier than
    /// the bundle's issue time (beyond `skew`) means the device clock is wrong
    /// ([`Rejection::ClockSuspect`]); a `now` past `iat + max_staleness` means
    /// the bundle must be refreshed ([`Rejection::BundleStale`]).
    pub fn check_time(&self, now: i64, skew: i64) -> Result<(), Rejection> {
        if now.saturating_add(skew) < self.content.iat {
            return Err(Rejection::ClockSuspect);
        }
        if now
            > self
                .content
                .iat
                .saturating_add(self.content.max_staleness)
                .saturating_add(skew)
        {
            return Err(Rejection::BundleStale);
        }
        Ok(())
    }
}
