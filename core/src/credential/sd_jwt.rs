//! The SD-JWT compact serialization (RFC 9901): `<issuer JWT>~<disclosure>~…~<KB-JWT>`
//! (or ending in `~` without key binding), and disclosures `[salt, name, value]`.

use serde_json::Value;

use super::jose::{b64d, b64e, parse_json_value, sha256_b64};
use super::rejection::{Part, Rejection};

/// `typ` of the issuer-signed JWT of a licence (SD-JWT VC).
pub const TYP_SD_JWT_VC: &str = "dc+sd-jwt";
/// `typ` of a key binding JWT.
pub const TYP_KB_JWT: &str = "kb+jwt";
/// The only `_sd_alg` we issue and accept.
pub const SD_ALG: &str = "sha-256";
/// The largest presentation a verifier reads; anything larger is refused
/// before parsing (a typical presentation is about 2.1 KiB).
pub const MAX_PRESENTATION_BYTES: usize = 64 * 1024;

/// A presentation split at `~`, not yet verified.
#[derive(Debug, Clone)]
pub struct SdJwtParts<'a> {
    /// The issuer-signed JWT.
    pub issuer_jwt: &'a str,
    /// The disclosures, in presentation order.
    pub disclosures: Vec<&'a str>,
    /// Everything up to and including the last `~`: the input of `sd_hash`.
    pub sd_hash_input: &'a str,
    /// The key binding JWT, if any.
    pub kb_jwt: Option<&'a str>,
}

/// Splits an SD-JWT (or presentation) into its parts. Refuses empty input,
/// oversize input, a missing `~` and empty disclosures.
pub fn split(text: &str) -> Result<SdJwtParts<'_>, Rejection> {
    if text.is_empty() {
        return Err(Rejection::Empty);
    }
    if text.len() > MAX_PRESENTATION_BYTES {
        return Err(Rejection::TooLarge);
    }
    let last_tilde = text.rfind('~').ok_or(Rejection::SdJwtStructure)?;
    let sd_hash_input = &text[..=last_tilde];
    let kb = &text[last_tilde + 1..];
    let mut pieces = text[..last_tilde].split('~');
    let issuer_jwt = pieces.next().unwrap_or_default();
    if issuer_jwt.is_empty() {
        return Err(Rejection::SdJwtStructure);
    }
    let disclosures: Vec<&str> = pieces.collect();
    if disclosures.iter().any(|d| d.is_empty()) {
        return Err(Rejection::SdJwtStructure);
    }
    // Whatever follows the last `~` is a key binding JWT; a piece that is
    // not even JWS-shaped (no `.`) is a disclosure left without its final
    // `~` (or a cut-off text), not a malformed key binding.
    if !kb.is_empty() && !kb.contains('.') {
        return Err(Rejection::PresentationUnterminated);
    }
    Ok(SdJwtParts {
        issuer_jwt,
        disclosures,
        sd_hash_input,
        kb_jwt: if kb.is_empty() { None } else { Some(kb) },
    })
}

/// One selectively disclosable claim: `base64url(JSON [salt, name, value])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    /// The base64url form, exactly as issued (digests are over this text).
    pub encoded: String,
    /// The salt.
    pub salt: String,
    /// The claim name.
    pub name: String,
    /// The claim value.
    pub value: Value,
}

impl Disclosure {
    /// Builds and encodes a disclosure.
    pub fn new(salt: String, name: String, value: Value) -> Self {
        let json = Value::Array(vec![
            Value::String(salt.clone()),
            Value::String(name.clone()),
            value.clone(),
        ]);
        Self {
            encoded: b64e(json.to_string()),
            salt,
            name,
            value,
        }
    }

    /// Parses an object-property disclosure strictly: a JSON array of exactly
    /// three elements whose first two are strings. Array-element disclosures
    /// (two elements) are not part of the licence profile and are refused.
    pub fn parse(encoded: &str) -> Result<Self, Rejection> {
        let bytes = b64d(encoded, Part::Disclosure)?;
        let value = parse_json_value(&bytes, Part::Disclosure)?;
        let Value::Array(mut items) = value else {
            return Err(Rejection::DisclosureMalformed);
        };
        if items.len() != 3 {
            return Err(Rejection::DisclosureMalformed);
        }
        let value = items.pop().unwrap_or(Value::Null);
        let (Some(Value::String(name)), Some(Value::String(salt))) = (items.pop(), items.pop())
        else {
            return Err(Rejection::DisclosureMalformed);
        };
        Ok(Self {
            encoded: encoded.to_owned(),
            salt,
            name,
            value,
        })
    }

    /// base64url(SHA-256(encoded)): the digest listed in `_sd`.
    pub fn digest(&self) -> String {
        sha256_b64(&self.encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 9901 §4.2.1 example: the disclosure of `given_name` = "John"
    /// hashes to the digest the RFC lists.
    #[test]
    fn rfc9901_disclosure_digest_vector() {
        let d =
            Disclosure::parse("WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd")
                .unwrap();
        assert_eq!(d.salt, "2GLC42sKQveCfGfryNRN9w");
        assert_eq!(d.name, "given_name");
        assert_eq!(d.value, json!("John"));
        assert_eq!(d.digest(), "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4");
    }

    #[test]
    fn split_finds_parts() {
        let p = split("a.b.c~d1~d2~kb.x.y").unwrap();
        assert_eq!(p.issuer_jwt, "a.b.c");
        assert_eq!(p.disclosures, vec!["d1", "d2"]);
        assert_eq!(p.sd_hash_input, "a.b.c~d1~d2~");
        assert_eq!(p.kb_jwt, Some("kb.x.y"));
        let p = split("a.b.c~").unwrap();
        assert!(p.disclosures.is_empty());
        assert_eq!(p.kb_jwt, None);
        assert_eq!(split("").unwrap_err(), Rejection::Empty);
        assert_eq!(split("a.b.c").unwrap_err(), Rejection::SdJwtStructure);
        assert_eq!(split("a.b.c~~").unwrap_err(), Rejection::SdJwtStructure);
        assert_eq!(split("~d1~").unwrap_err(), Rejection::SdJwtStructure);
        assert_eq!(
            split(&"x~".repeat(40_000)).unwrap_err(),
            Rejection::TooLarge
        );
    }

    #[test]
    fn disclosures_are_strict() {
        let two = b64e(r#"["salt","value"]"#);
        assert_eq!(Disclosure::parse(&two), Err(Rejection::DisclosureMalformed));
        let not_string = b64e(r#"["salt",5,"v"]"#);
        assert_eq!(
            Disclosure::parse(&not_string),
            Err(Rejection::DisclosureMalformed)
        );
        let object = b64e(r#"{"a":1}"#);
        assert_eq!(
            Disclosure::parse(&object),
            Err(Rejection::DisclosureMalformed)
        );
        assert_eq!(
            Disclosure::parse("!!"),
            Err(Rejection::Base64(Part::Disclosure))
        );
    }
}
