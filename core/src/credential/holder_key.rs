//! Holder (device) keys: the key a licence is bound to (`cnf.jwk`) and that
//! signs key binding JWTs, the auth challenge and enrolment.
//!
//! Holder keys are P-256 / ES256 (the one curve with secure hardware on every
//! platform: Android Keystore/StrongBox, the iOS Secure Enclave, HarmonyOS
//! HUKS; and what OpenID4VC HAIP requires). Devices enrolled before that keep
//! their Ed25519 key, so a holder key is one of two types, and each type has
//! exactly one JWS algorithm: `EdDSA` for `OKP`/`Ed25519`, `ES256` for
//! `EC`/`P-256`. The verifier derives the algorithm from the key, never from
//! a header (ADR 0120).
//!
//! ES256 signatures are the JWS form: raw `r‖s`, 32 bytes each (RFC 7518
//! §3.4), never DER. A high-S signature is accepted by normalising it (ECDSA
//! `(r, s)` and `(r, n−s)` are both valid; platform keystores emit either),
//! and every signature this crate makes is low-S (ADR 0121).

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint as _};
use rand::{CryptoRng, RngCore};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

/// The message the old device key signs to re-enrol the phone to a new key
/// (`POST /v1/devices/enrol` with `replaces`): it names both device ids, so
/// the signature retires that old device in favour of that new one only
/// (ADR 0125). Its prefix keeps it apart from the auth challenge
/// (`zhangban-auth-v1.`) and from any JWS signing input.
pub fn reenrolment_message(old_device_id: &str, new_device_id: &str) -> String {
    format!("zhangban-reenrol-v1.{old_device_id}.{new_device_id}")
}
use std::fmt;

use super::jose::{ALG_EDDSA, ALG_ES256, b64d, b64e};
use super::keys::{KeyError, KeyPair, PublicKey};
use super::rejection::Part;

/// The public key of a holder device: the licence's `cnf.jwk`.
#[derive(Clone, PartialEq, Eq)]
pub enum HolderKey {
    /// A legacy Ed25519 device key (`OKP`/`Ed25519`, `EdDSA`).
    Ed25519(PublicKey),
    /// A P-256 device key (`EC`/`P-256`, `ES256`), usually in secure hardware.
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderKey({}, {})", self.alg(), self.thumbprint())
    }
}

impl From<PublicKey> for HolderKey {
    fn from(k: PublicKey) -> Self {
        Self::Ed25519(k)
    }
}

impl HolderKey {
    /// Reads a public holder JWK strictly: `OKP`/`Ed25519` (32-byte `x`, a
    /// valid point) or `EC`/`P-256` (32-byte `x` and `y`, on the curve, not
    /// the identity). A JWK carrying a private part (`d`) is refused.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let obj = jwk.as_object().ok_or(KeyError::UnsupportedKeyType)?;
        if obj.contains_key("d") {
            return Err(KeyError::PrivatePartPresent);
        }
        match (
            obj.get("kty").and_then(Value::as_str),
            obj.get("crv").and_then(Value::as_str),
        ) {
            (Some("OKP"), Some("Ed25519")) => PublicKey::from_jwk(jwk).map(Self::Ed25519),
            (Some("EC"), Some("P-256")) => p256_from_jwk(obj).map(Self::P256),
            _ => Err(KeyError::UnsupportedKeyType),
        }
    }

    /// The public JWK (members in RFC 7638 order).
    pub fn to_jwk(&self) -> Value {
        match self {
            Self::Ed25519(k) => k.to_jwk(),
            Self::P256(k) => {
                let (x, y) = p256_coordinates(k);
                json!({"crv": "P-256", "kty": "EC", "x": x, "y": y})
            }
        }
    }

    /// RFC 7638 thumbprint (full length, base64url): the device id.
    pub fn thumbprint(&self) -> String {
        match self {
            Self::Ed25519(k) => k.thumbprint(),
            Self::P256(k) => {
                let (x, y) = p256_coordinates(k);
                let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                b64e(Sha256::digest(canonical.as_bytes()))
            }
        }
    }

    /// The one JWS algorithm this key may sign with.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => ALG_EDDSA,
            Self::P256(_) => ALG_ES256,
        }
    }

    /// Verifies a raw signature over `message`: Ed25519 with
    /// `verify_strict`; ES256 as 64 bytes `r‖s` (DER and other lengths are
    /// refused), high-S normalised (ADR 0121).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed25519(k) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                k.verifying_key().verify_strict(message, &sig).is_ok()
            }
            Self::P256(k) => {
                if signature.len() != 64 {
                    return false;
                }
                let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                let sig = sig.normalize_s().unwrap_or(sig);
                k.verify(message, &sig).is_ok()
            }
        }
    }
}

fn p256_coordinates(k: &p256::ecdsa::VerifyingKey) -> (String, String) {
    let point = k.to_encoded_point(false);
    // An uncompressed point of a valid key always has both coordinates.
    let x = point.x().map(|x| b64e(x.as_slice())).unwrap_or_default();
    let y = point.y().map(|y| b64e(y.as_slice())).unwrap_or_default();
    (x, y)
}

fn coordinate(obj: &Map<String, Value>, name: &str) -> Result<[u8; 32], KeyError> {
    let text = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::BadMaterial)?;
    b64d(text, Part::KeyBinding)
        .map_err(|_| KeyError::BadMaterial)?
        .try_into()
        .map_err(|_| KeyError::BadMaterial)
}

fn p256_from_jwk(obj: &Map<String, Value>) -> Result<p256::ecdsa::VerifyingKey, KeyError> {
    let x = coordinate(obj, "x")?;
    let y = coordinate(obj, "y")?;
    let point =
        EncodedPoint::<p256::NistP256>::from_affine_coordinates(&x.into(), &y.into(), false);
    // Refuses points off the curve; the identity has no affine coordinates,
    // so no (x, y) pair decodes to it.
    let public: Option<p256::PublicKey> = p256::PublicKey::from_encoded_point(&point).into();
    let public = public.ok_or(KeyError::BadPoint)?;
    Ok(p256::ecdsa::VerifyingKey::from(public))
}

/// Why a holder key could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key is gone (wiped, invalidated by a biometric change, never made).
    #[error("the holder key is not available")]
    KeyUnavailable,
    /// The user did not authenticate (cancelled, locked out).
    #[error("the user did not authorise the signature")]
    NotAuthorised,
    /// The keystore failed; the text is the platform's, without personal data.
    #[error("keystore failure: {0}")]
    Keystore(String),
    /// The keystore returned a signature that is not what the key type needs.
    #[error("the keystore returned a malformed signature")]
    MalformedSignature,
}

/// A holder key that signs synchronously in this process: the software
/// keys of tests, the CLI and the demo. Phones sign through the asynchronous
/// [`crate::client::keystore::HolderKeystore`] instead.
pub trait HolderSigner: Send + Sync {
    /// The public key.
    fn holder_key(&self) -> HolderKey;
    /// A raw JWS signature over `message` (64 bytes for both key types).
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

impl HolderSigner for KeyPair {
    fn holder_key(&self) -> HolderKey {
        HolderKey::Ed25519(self.public())
    }
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.signing_key().sign(message).to_bytes().to_vec())
    }
}

/// A P-256 key pair in software (the non-hardware fallback, tests, the CLI).
#[derive(Clone)]
pub struct P256KeyPair {
    signing: p256::ecdsa::SigningKey,
}

impl fmt::Debug for P256KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256KeyPair({})", self.holder_key().thumbprint())
    }
}

impl P256KeyPair {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            signing: p256::ecdsa::SigningKey::random(rng),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &p256::ecdsa::SigningKey {
        &self.signing
    }

    /// The private JWK (`d`, `x`, `y`, `kid`), for the software key file only.
    pub fn to_private_jwk(&self) -> Value {
        let mut jwk = self.holder_key().to_jwk();
        if let Value::Object(m) = &mut jwk {
            m.insert("d".into(), Value::String(b64e(self.signing.to_bytes())));
            m.insert("kid".into(), Value::String(self.holder_key().thumbprint()));
        }
        jwk
    }

    /// Reads a private JWK; checks that `x`/`y` belong to `d`.
    pub fn from_private_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let obj = jwk.as_object().ok_or(KeyError::UnsupportedKeyType)?;
        if obj.get("kty").and_then(Value::as_str) != Some("EC")
            || obj.get("crv").and_then(Value::as_str) != Some("P-256")
        {
            return Err(KeyError::UnsupportedKeyType);
        }
        let public = p256_from_jwk(obj)?;
        let d = coordinate(obj, "d")?;
        let signing =
            p256::ecdsa::SigningKey::from_bytes(&d.into()).map_err(|_| KeyError::BadMaterial)?;
        if *signing.verifying_key() != public {
            return Err(KeyError::Mismatch);
        }
        Ok(Self { signing })
    }
}

impl HolderSigner for P256KeyPair {
    fn holder_key(&self) -> HolderKey {
        HolderKey::P256(*self.signing.verifying_key())
    }
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: p256::ecdsa::Signature = self.signing.sign(message);
        let sig = sig.normalize_s().unwrap_or(sig);
        Ok(sig.to_bytes().to_vec())
    }
}

/// A holder key held in software, of either type: the software keystore's
/// content (the non-hardware fallback), CLI key files and tests.
#[derive(Debug, Clone)]
pub enum SoftwareHolderKey {
    /// A legacy Ed25519 key (devices enrolled before P-256).
    Ed25519(KeyPair),
    /// A P-256 key.
    P256(P256KeyPair),
}

impl SoftwareHolderKey {
    /// Reads a private JWK of either type (`x`/`y` checked against `d`).
    pub fn from_private_jwk(jwk: &Value) -> Result<Self, KeyError> {
        match jwk.get("kty").and_then(Value::as_str) {
            Some("OKP") => KeyPair::from_private_jwk(jwk).map(Self::Ed25519),
            Some("EC") => P256KeyPair::from_private_jwk(jwk).map(Self::P256),
            _ => Err(KeyError::UnsupportedKeyType),
        }
    }

    /// The private JWK (with `kid`). Keep it secret.
    pub fn to_private_jwk(&self) -> Value {
        match self {
            Self::Ed25519(k) => k.to_private_jwk(),
            Self::P256(k) => k.to_private_jwk(),
        }
    }
}

impl HolderSigner for SoftwareHolderKey {
    fn holder_key(&self) -> HolderKey {
        match self {
            Self::Ed25519(k) => k.holder_key(),
            Self::P256(k) => k.holder_key(),
        }
    }
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            Self::Ed25519(k) => k.sign_raw(message),
            Self::P256(k) => k.sign_raw(message),
        }
    }
}

/// Converts an ASN.1 DER ECDSA signature (what Android Keystore, JCA and
/// Apple's `derRepresentation` give) to the raw 64-byte JWS form, low-S.
pub fn der_to_raw_p256(der: &[u8]) -> Result<Vec<u8>, SignError> {
    let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| SignError::MalformedSignature)?;
    let sig = sig.normalize_s().unwrap_or(sig);
    Ok(sig.to_bytes().to_vec())
}

/// Normalises a raw signature from a keystore for `key`: 64 bytes, and for
/// ES256 low-S (a keystore may return either form).
pub fn normalise_raw(key: &HolderKey, raw: Vec<u8>) -> Result<Vec<u8>, SignError> {
    if raw.len() != 64 {
        return Err(SignError::MalformedSignature);
    }
    match key {
        HolderKey::Ed25519(_) => Ok(raw),
        HolderKey::P256(_) => {
            let sig = p256::ecdsa::Signature::from_slice(&raw)
                .map_err(|_| SignError::MalformedSignature)?;
            Ok(sig.normalize_s().unwrap_or(sig).to_bytes().to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.3: the ES256 example key and its signature verify.
    #[test]
    fn rfc7515_es256_example_verifies() {
        let jwk = json!({"kty":"EC","crv":"P-256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let key = HolderKey::from_jwk(&jwk).unwrap();
        let input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let sig = b64d("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q", Part::KeyBinding).unwrap();
        assert!(key.verify(input.as_bytes(), &sig));
        assert!(!key.verify(b"other", &sig));
        assert_eq!(key.alg(), "ES256");
    }

    #[test]
    fn private_jwk_round_trip_and_mismatch() {
        let mut rng = rand::thread_rng();
        let a = P256KeyPair::generate(&mut rng);
        let b = P256KeyPair::generate(&mut rng);
        let back = P256KeyPair::from_private_jwk(&a.to_private_jwk()).unwrap();
        assert_eq!(back.holder_key(), a.holder_key());
        let mut mixed = a.to_private_jwk();
        mixed["x"] = b.holder_key().to_jwk()["x"].clone();
        mixed["y"] = b.holder_key().to_jwk()["y"].clone();
        assert_eq!(
            P256KeyPair::from_private_jwk(&mixed).unwrap_err(),
            KeyError::Mismatch
        );
        assert_eq!(
            HolderKey::from_jwk(&a.to_private_jwk()),
            Err(KeyError::PrivatePartPresent)
        );
        let sig = a.sign_raw(b"m").unwrap();
        assert!(a.holder_key().verify(b"m", &sig));
        assert!(!b.holder_key().verify(b"m", &sig));
    }

    #[test]
    fn der_converts_to_raw() {
        let mut rng = rand::thread_rng();
        let a = P256KeyPair::generate(&mut rng);
        let sig: p256::ecdsa::Signature = a.signing_key().sign(b"m");
        let der = sig.to_der();
        let raw = der_to_raw_p256(der.as_bytes()).unwrap();
        assert_eq!(raw.len(), 64);
        assert!(a.holder_key().verify(b"m", &raw));
        assert!(
            !a.holder_key().verify(b"m", der.as_bytes()),
            "DER is not the JWS form"
        );
        assert_eq!(der_to_raw_p256(&raw), Err(SignError::MalformedSignature));
    }
}
