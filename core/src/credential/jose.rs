//! The small, strict subset of JOSE that Zhangban speaks: base64url without
//! padding, JSON objects without duplicate members, and compact JWS signed
//! with EdDSA (Ed25519), or ES256 for key binding JWTs of P-256 holder keys.
//!
//! Strictness here is a security property: every signed object (licence, key
//! binding, trust bundle, status list) is read through [`CompactJws::parse`],
//! so no other algorithm, no `crit` extension and no ambiguous JSON ever
//! reaches a signature check.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::rejection::{Part, Rejection};

/// The JWS algorithm of issuers, the root, status lists and Ed25519 holder keys.
pub const ALG_EDDSA: &str = "EdDSA";
/// The JWS algorithm of P-256 holder keys (key binding JWTs only).
pub const ALG_ES256: &str = "ES256";

/// base64url without padding.
pub fn b64e(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no whitespace, canonical trailing bits.
pub fn b64d(text: &str, part: Part) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Rejection::Base64(part))
}

/// base64url(SHA-256(ascii)): the digest SD-JWT uses for disclosures and `sd_hash`.
pub fn sha256_b64(ascii: &str) -> String {
    b64e(Sha256::digest(ascii.as_bytes()))
}

/// A JSON value parsed with duplicate object members refused at every depth.
struct StrictValue(Value);

const DUPLICATE_MARKER: &str = "zhangban:duplicate-member";

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(StrictValue(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE_MARKER));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

/// Parses JSON strictly (duplicate members refused) into any value.
pub fn parse_json_value(bytes: &[u8], part: Part) -> Result<Value, Rejection> {
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(v)) => Ok(v),
        Err(e) if e.to_string().contains(DUPLICATE_MARKER) => {
            Err(Rejection::DuplicateJsonMember(part))
        }
        Err(_) => Err(Rejection::Json(part)),
    }
}

/// Parses JSON strictly into an object.
pub fn parse_json_object(bytes: &[u8], part: Part) -> Result<Map<String, Value>, Rejection> {
    match parse_json_value(bytes, part)? {
        Value::Object(map) => Ok(map),
        _ => Err(Rejection::Json(part)),
    }
}

/// A compact JWS whose header passed the policy checks but whose signature
/// has not been verified yet. Call [`CompactJws::verify`] before trusting the payload.
#[derive(Debug)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (unverified until [`CompactJws::verify`] returns `true`).
    pub payload: Map<String, Value>,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Parses `header.payload.signature` and checks the header: `alg` must be
    /// `EdDSA`, `typ` must equal `expected_typ`, and no `crit` may be present.
    pub fn parse(text: &'a str, expected_typ: &str, part: Part) -> Result<Self, Rejection> {
        Self::parse_with_alg(text, expected_typ, part, ALG_EDDSA)
    }

    /// As [`CompactJws::parse`], but `alg` must be `expected_alg`: the one
    /// algorithm of the key that will verify it (a holder key's type decides,
    /// never the header). The signature must be 64 bytes (Ed25519, or ES256
    /// raw `r‖s`; DER is refused).
    pub fn parse_with_alg(
        text: &'a str,
        expected_typ: &str,
        part: Part,
        expected_alg: &str,
    ) -> Result<Self, Rejection> {
        let mut segments = text.split('.');
        let (Some(h), Some(p), Some(s), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(Rejection::JwsSegments(part));
        };
        let header = parse_json_object(&b64d(h, part)?, part)?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == expected_alg => {}
            _ => return Err(Rejection::AlgorithmNotAllowed(part)),
        }
        match header.get("typ") {
            Some(Value::String(typ)) if typ_matches(typ, expected_typ) => {}
            _ => return Err(Rejection::WrongType(part)),
        }
        if header.contains_key("crit") {
            return Err(Rejection::CriticalHeader(part));
        }
        let payload = parse_json_object(&b64d(p, part)?, part)?;
        let signature = b64d(s, part)?;
        if signature.len() != 64 {
            return Err(Rejection::SignatureLength(part));
        }
        let signing_input = &text[..h.len() + 1 + p.len()];
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The header's `kid`, if it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Strict Ed25519 verification (refuses non-canonical `S`, small-order
    /// `R` and weak public keys).
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(self.signature.as_slice()) else {
            return false;
        };
        key.verify_strict(
            self.signing_input.as_bytes(),
            &Signature::from_bytes(&bytes),
        )
        .is_ok()
    }

    /// Verifies with a holder key (its own algorithm; see [`super::holder_key`]).
    pub fn verify_holder(&self, key: &super::holder_key::HolderKey) -> bool {
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }
}

/// Whether a header's `typ` names `expected`: RFC 7515 §4.1.9 makes the
/// `application/` prefix optional (we write it without), and media type
/// names compare case-insensitively (RFC 6838 §4.2). Nothing else is
/// accepted: no parameters, no other prefix.
pub fn typ_matches(typ: &str, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => typ.get(PREFIX.len()..).unwrap_or(""),
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}

/// Signs `header` (to which `alg` is added) and `payload` as a compact JWS.
pub fn sign_compact(mut header: Map<String, Value>, payload: &Value, key: &SigningKey) -> String {
    header.insert("alg".into(), Value::String(ALG_EDDSA.into()));
    let h = b64e(Value::Object(header).to_string());
    let p = b64e(payload.to_string());
    let input = format!("{h}.{p}");
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64e(sig.to_bytes()))
}

/// A header with `typ` and, if given, `kid`.
pub fn header(typ: &str, kid: Option<&str>) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("typ".into(), Value::String(typ.into()));
    if let Some(kid) = kid {
        h.insert("kid".into(), Value::String(kid.into()));
    }
    h
}

/// Reads an integer NumericDate claim.
pub fn int_claim(
    payload: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, Rejection> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(Rejection::InvalidClaim(name)),
    }
}

/// Reads a required string claim.
pub fn str_claim<'p>(
    payload: &'p Map<String, Value>,
    name: &'static str,
) -> Result<&'p str, Rejection> {
    match payload.get(name) {
        None => Err(Rejection::MissingClaim(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        let part = Part::IssuerJwt;
        assert_eq!(
            parse_json_object(br#"{"a":1,"a":2}"#, part),
            Err(Rejection::DuplicateJsonMember(part))
        );
        assert_eq!(
            parse_json_object(br#"{"a":{"b":1,"b":1}}"#, part),
            Err(Rejection::DuplicateJsonMember(part))
        );
        assert_eq!(
            parse_json_object(br#"[1]"#, part),
            Err(Rejection::Json(part))
        );
        assert!(parse_json_object(br#"{"a":[{"b":1},{"b":2}]}"#, part).is_ok());
    }

    #[test]
    fn base64_is_strict() {
        let part = Part::Disclosure;
        assert_eq!(b64d("YQ", part), Ok(b"a".to_vec()));
        assert_eq!(b64d("YQ==", part), Err(Rejection::Base64(part)));
        assert_eq!(
            b64d("YR", part),
            Err(Rejection::Base64(part)),
            "non-canonical trailing bits"
        );
        assert_eq!(
            b64d("Y+", part),
            Err(Rejection::Base64(part)),
            "standard alphabet"
        );
    }
}
