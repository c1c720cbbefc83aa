//! Ed25519 keys as JWKs (RFC 8037 `OKP`/`Ed25519`) and their RFC 7638
//! thumbprints, which serve as `kid` everywhere (full length, base64url).

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use std::fmt;

use super::jose::{b64d, b64e};
use super::rejection::Part;

/// Why a JWK could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not an `OKP` / `Ed25519` JWK.
    #[error("not an Ed25519 OKP JWK")]
    NotEd25519,
    /// `x` (or `d`) is missing, not base64url, or not 32 bytes.
    #[error("key material missing or of the wrong length")]
    BadMaterial,
    /// `x` is not a valid curve point.
    #[error("public key is not a valid Ed25519 point")]
    BadPoint,
    /// A private JWK's `x` does not belong to its `d`.
    #[error("private key does not match its public part")]
    Mismatch,
    /// A public JWK was expected but this one carries `d`.
    #[error("a private key was given where a public key is expected")]
    PrivatePartPresent,
    /// Not a holder key type: neither `OKP`/`Ed25519` nor `EC`/`P-256`.
    #[error("not an Ed25519 or P-256 JWK")]
    UnsupportedKeyType,
}

/// An Ed25519 public key with its JWK thumbprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.thumbprint())
    }
}

impl PublicKey {
    /// Wraps a verifying key.
    pub fn new(key: VerifyingKey) -> Self {
        Self { key }
    }

    /// The raw dalek key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The public JWK: `{"crv":"Ed25519","kty":"OKP","x":…}`.
    pub fn to_jwk(&self) -> Value {
        json!({"crv": "Ed25519", "kty": "OKP", "x": b64e(self.key.as_bytes())})
    }

    /// Reads a public JWK; refuses anything but `OKP`/`Ed25519` and refuses a
    /// JWK that carries a private part (`d`), which must never travel.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let obj = jwk.as_object().ok_or(KeyError::NotEd25519)?;
        if obj.contains_key("d") {
            return Err(KeyError::PrivatePartPresent);
        }
        Self::from_jwk_object(obj)
    }

    fn from_jwk_object(obj: &Map<String, Value>) -> Result<Self, KeyError> {
        if obj.get("kty").and_then(Value::as_str) != Some("OKP")
            || obj.get("crv").and_then(Value::as_str) != Some("Ed25519")
        {
            return Err(KeyError::NotEd25519);
        }
        let x = obj
            .get("x")
            .and_then(Value::as_str)
            .ok_or(KeyError::BadMaterial)?;
        let bytes: [u8; 32] = b64d(x, Part::IssuerJwt)
            .map_err(|_| KeyError::BadMaterial)?
            .try_into()
            .map_err(|_| KeyError::BadMaterial)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPoint)?;
        Ok(Self { key })
    }

    /// RFC 7638 thumbprint: base64url(SHA-256 of the canonical JWK members
    /// `crv`, `kty`, `x` in lexicographic order, no whitespace).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64e(self.key.as_bytes())
        );
        b64e(Sha256::digest(canonical.as_bytes()))
    }
}

/// An Ed25519 key pair: an issuer's, the national root's, or a holder device's.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public().thumbprint())
    }
}

impl KeyPair {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            signing: SigningKey::generate(rng),
        }
    }

    /// A key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.signing.verifying_key())
    }

    /// The thumbprint of the public half (the `kid`).
    pub fn kid(&self) -> String {
        self.public().thumbprint()
    }

    /// The private JWK (with `d` and `kid`), for key files. Keep it secret.
    pub fn to_private_jwk(&self) -> Value {
        let mut jwk = self.public().to_jwk();
        if let Value::Object(m) = &mut jwk {
            m.insert("d".into(), Value::String(b64e(self.signing.to_bytes())));
            m.insert("kid".into(), Value::String(self.kid()));
        }
        jwk
    }

    /// Reads a private JWK; checks that `x` matches `d`.
    pub fn from_private_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let obj = jwk.as_object().ok_or(KeyError::NotEd25519)?;
        let public = PublicKey::from_jwk_object(obj)?;
        let d = obj
            .get("d")
            .and_then(Value::as_str)
            .ok_or(KeyError::BadMaterial)?;
        let seed: [u8; 32] = b64d(d, Part::IssuerJwt)
            .map_err(|_| KeyError::BadMaterial)?
            .try_into()
            .map_err(|_| KeyError::BadMaterial)?;
        let pair = Self::from_seed(&seed);
        if pair.public() != public {
            return Err(KeyError::Mismatch);
        }
        Ok(pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 Appendix A.3: the thumbprint of its example Ed25519 key.
    #[test]
    fn rfc8037_thumbprint_vector() {
        let jwk =
            json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let key = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    /// RFC 8037 Appendix A.1/A.2: the private key derives the public one.
    #[test]
    fn rfc8037_private_key_vector() {
        let jwk = json!({"kty":"OKP","crv":"Ed25519",
            "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let pair = KeyPair::from_private_jwk(&jwk).unwrap();
        assert_eq!(pair.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(PublicKey::from_jwk(&jwk), Err(KeyError::PrivatePartPresent));
    }

    #[test]
    fn refuses_other_key_types_and_bad_material() {
        assert_eq!(
            PublicKey::from_jwk(&json!({"kty":"EC","crv":"P-256","x":"AA"})),
            Err(KeyError::NotEd25519)
        );
        assert_eq!(
            PublicKey::from_jwk(&json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"})),
            Err(KeyError::BadMaterial)
        );
        let mut rng = rand::thread_rng();
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        let mut mixed = a.to_private_jwk();
        mixed["x"] = b.public().to_jwk()["x"].clone();
        assert_eq!(
            KeyPair::from_private_jwk(&mixed).unwrap_err(),
            KeyError::Mismatch
        );
    }
}
