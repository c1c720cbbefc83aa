//! The holder's side: keep an issued licence, choose which fields to show,
//! and make a presentation, with a key binding JWT signed by the device key
//! when the verifier must know the presenter holds the licence.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::holder_key::{HolderKey, HolderSigner, SignError};
use super::jose::{CompactJws, b64e, header, sha256_b64};
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
    /// The holder key could not sign.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// The inputs of a key binding JWT.
#[derive(Clone, Copy)]
pub struct KeyBindingRequest<'a> {
    /// The holder device key (must match the licence's `cnf`).
    pub key: &'a dyn HolderSigner,
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
    pub fn holder_key(&self) -> Option<HolderKey> {
        self.payload
            .get("cnf")
            .and_then(|c| c.get("jwk"))
            .and_then(|j| HolderKey::from_jwk(j).ok())
    }

    /// The first half of a key-bound presentation for a signer that is not
    /// in this process (a platform keystore): the SD-JWT disclosing `fields`
    /// and the KB-JWT's signing input. Sign [`PendingPresentation::signing_input`]
    /// with `claims.key` and call [`PendingPresentation::finish`].
    pub fn prepare(
        &self,
        fields: &[&str],
        claims: KeyBindingClaims<'_>,
    ) -> Result<PendingPresentation, PresentError> {
        let sd_jwt = self.disclose(fields)?;
        if self.holder_key().as_ref() != Some(claims.key) {
            return Err(PresentError::NotHolderKey);
        }
        let payload = json!({
            "iat": claims.iat,
            "aud": claims.audience,
            "nonce": claims.nonce,
            "sd_hash": sha256_b64(&sd_jwt),
        });
        let mut h = header(TYP_KB_JWT, None);
        h.insert("alg".into(), Value::String(claims.key.alg().into()));
        let signing_input = format!(
            "{}.{}",
            b64e(Value::Object(h).to_string()),
            b64e(payload.to_string())
        );
        Ok(PendingPresentation {
            sd_jwt,
            signing_input,
            key: claims.key.clone(),
        })
    }

    /// The issuer JWT and the chosen disclosures, ending in `~`.
    fn disclose(&self, fields: &[&str]) -> Result<String, PresentError> {
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
        Ok(out)
    }

    /// Makes a presentation disclosing exactly `fields` (in the order the
    /// licence holds them), with a key binding JWT if `key_binding` is given,
    /// else ending in `~` (unbound, e.g. for a printed card).
    pub fn present(
        &self,
        fields: &[&str],
        key_binding: Option<KeyBindingRequest<'_>>,
    ) -> Result<String, PresentError> {
        let Some(kb) = key_binding else {
            return self.disclose(fields);
        };
        let key = kb.key.holder_key();
        let pending = self.prepare(
            fields,
            KeyBindingClaims {
                key: &key,
                audience: kb.audience,
                nonce: kb.nonce,
                iat: kb.iat,
            },
        )?;
        let sig = kb.key.sign_raw(pending.signing_input())?;
        pending.finish(&sig)
    }
}

/// The claims of a key binding JWT and the public key that will sign it.
#[derive(Debug, Clone, Copy)]
pub struct KeyBindingClaims<'a> {
    /// The holder key (must match the licence's `cnf`; decides `alg`).
    pub key: &'a HolderKey,
    /// The verifier (`aud`).
    pub audience: &'a str,
    /// The verifier's nonce, or a random one.
    pub nonce: &'a str,
    /// Now, as the holder's device sees it.
    pub iat: i64,
}

/// A presentation waiting for its KB-JWT signature (see [`HeldLicence::prepare`]).
#[derive(Debug, Clone)]
pub struct PendingPresentation {
    sd_jwt: String,
    signing_input: String,
    key: HolderKey,
}

impl PendingPresentation {
    /// The bytes the holder key signs (`header.payload` of the KB-JWT).
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The presentation with a zero signature of the right length: exactly
    /// the shape and size of the finished one, for validating a form before
    /// it is sent (never valid, never sent).
    pub fn shape_only(&self) -> String {
        format!("{}{}.{}", self.sd_jwt, self.signing_input, b64e([0u8; 64]))
    }

    /// Completes the presentation with a raw signature (64 bytes; ES256
    /// `r‖s`). The signature is checked before it leaves: a keystore that
    /// signed with another key or returned DER is caught here, not by the
    /// verifier.
    pub fn finish(self, raw_signature: &[u8]) -> Result<String, PresentError> {
        let sig = super::holder_key::normalise_raw(&self.key, raw_signature.to_vec())?;
        if !self.key.verify(self.signing_input.as_bytes(), &sig) {
            return Err(PresentError::Sign(SignError::MalformedSignature));
        }
        Ok(format!(
            "{}{}.{}",
            self.sd_jwt,
            self.signing_input,
            b64e(sig)
        ))
    }
}

impl std::fmt::Debug for KeyBindingRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBindingRequest")
            .field("key", &self.key.holder_key())
            .field("audience", &self.audience)
            .field("nonce", &self.nonce)
            .field("iat", &self.iat)
            .finish()
    }
}
