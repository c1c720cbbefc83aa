//! The holder's side: keep an issued licence, choose which fields to show,
//! and make a presentation, with a key binding JWT signed by the device key
//! when the verifier must know the presenter holds the licence.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::jose::{CompactJws, header, sha256_b64, sign_compact};
use super::keys::{KeyPair, PublicKey};
use super::rejection::{Part, Rejection};
use super::sd_jwt::{Disclosure, TYP_KB_JWT, TYP_SD_JWT_VC, split};

/// Why a presentation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentError {
    /// The licence has no field of this name.
    #[error("the licence has no field `{0}`")]
    UnknownClaim(String),
    /// The device key is not the one the licence is bound to.
    #[error("the device key is not the licence's holder key")]
    NotHolderKey,
}

/// The inputs of a key binding JWT.
#[derive(Debug, Clone, Copy)]
pub struct KeyBindingRequest<'a> {
    /// The holder device key (must match the licence's `cnf`).
    pub key: &'a KeyPair,
    /// The verifier (`aud`).
    pub audience: &'a str,
    /// The verifier's nonce, or a random one.
    pub nonce: &'a str,
    /// Now, as the holder's device sees it.
    pub iat: i64,
}

/// An issued licence as the wallet keeps it: the issuer JWT and every disclosure.
#[derive(Debug, Clone)]
pub struct HeldLicence {
    issuer_jwt: String,
    payload: Map<String, Value>,
    disclosures: Vec<Disclosure>,
}

impl HeldLicence {
    /// Reads an issued SD-JWT (as returned by [`super::issuer::Issuer::issue`]).
    /// This only reads the structure; verify it with
    /// [`super::verifier::verify_presentation`] and a wallet policy before trusting it.
    pub fn parse(issued: &str) -> Result<Self, Rejection> {
        let parts = split(issued)?;
        if parts.kb_jwt.is_some() {
            return Err(Rejection::SdJwtStructure);
        }
        let jws = CompactJws::parse(parts.issuer_jwt, TYP_SD_JWT_VC, Part::IssuerJwt)?;
        let disclosures = parts
            .disclosures
            .iter()
            .map(|d| Disclosure::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            issuer_jwt: parts.issuer_jwt.to_owned(),
            payload: jws.payload,
            disclosures,
        })
    }

    /// The issued form (issuer JWT, every disclosure, trailing `~`).
    pub fn issued(&self) -> String {
        let mut out = self.issuer_jwt.clone();
        out.push('~');
        for d in &self.disclosures {
            out.push_str(&d.encoded);
            out.push('~');
        }
        out
    }

    /// The visible (always-disclosed) payload: `iss`, `vct`, `exp`, …
    pub fn visible(&self) -> &Map<String, Value> {
        &self.payload
    }

    /// Every field the holder can choose to disclose, with its value.
    pub fn claims(&self) -> BTreeMap<&str, &Value> {
        self.disclosures
            .iter()
            .map(|d| (d.name.as_str(), &d.value))
            .collect()
    }

    /// The licence type.
    pub fn vct(&self) -> Option<&str> {
        self.payload.get("vct").and_then(Value::as_str)
    }

    /// The holder key the licence is bound to.
    pub fn holder_key(&self) -> Option<PublicKey> {
        self.payload
            .get("cnf")
            .and_then(|c| c.get("jwk"))
            .and_then(|j| PublicKey::from_jwk(j).ok())
    }

    /// Makes a presentation disclosing exactly `fields` (in the order the
    /// licence holds them), with a key binding JWT if `key_binding` is given,
    /// else ending in `~` (unbound, e.g. for a printed card).
    pub fn present(
        &self,
        fields: &[&str],
        key_binding: Option<KeyBindingRequest<'_>>,
    ) -> Result<String, PresentError> {
        for f in fields {
            if !self.disclosures.iter().any(|d| d.name == *f) {
                return Err(PresentError::UnknownClaim((*f).to_owned()));
            }
        }
        let mut out = self.issuer_jwt.clone();
        out.push('~');
        for d in self
            .disclosures
            .iter()
            .filter(|d| fields.contains(&d.name.as_str()))
        {
            out.push_str(&d.encoded);
            out.push('~');
        }
        if let Some(kb) = key_binding {
            if self.holder_key().as_ref() != Some(&kb.key.public()) {
                return Err(PresentError::NotHolderKey);
            }
            let payload = json!({
                "iat": kb.iat,
                "aud": kb.audience,
                "nonce": kb.nonce,
                "sd_hash": sha256_b64(&out),
            });
            out.push_str(&sign_compact(
                header(TYP_KB_JWT, None),
                &payload,
                kb.key.signing_key(),
            ));
        }
        Ok(out)
    }
}
