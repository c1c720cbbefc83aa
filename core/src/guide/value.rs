//! The structured values of licence-reference and attachment fields.
//!
//! Apps build these and put them into a submission with
//! [`serde_json::to_value`]; the validator reads them back with the same
//! types, so the shape is defined once. Unknown members are refused.

use serde::{Deserialize, Serialize};

use super::form::LICENCE_REF_MAX_BYTES;

/// The value of a `licence_ref` field: a licence presented instead of a
/// paper proof. The validator checks only its shape; the server verifies
/// the presentation itself (signature, status, holder, licence type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceRef {
    /// The SD-JWT presentation (`<jwt>~<disclosure>~…~[<kb-jwt>]`).
    pub presentation: String,
}

impl LicenceRef {
    /// Whether the shape is acceptable: non-empty, at most
    /// [`LICENCE_REF_MAX_BYTES`], only the characters of an SD-JWT
    /// (base64url, `.` and `~`).
    pub fn is_well_formed(&self) -> bool {
        let p = &self.presentation;
        !p.is_empty()
            && p.len() <= LICENCE_REF_MAX_BYTES
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    }
}

/// The longest attachment file name, in characters.
pub const ATTACHMENT_NAME_MAX_CHARS: usize = 255;

/// The value of an `attachment` field: a file referenced by its content
/// hash, uploaded separately (in resumable chunks) as a step of the
/// submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// SHA-256 of the file's bytes, 64 lower-case hex digits.
    pub sha256: String,
    /// Size in bytes (at least 1).
    pub size: u64,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// The file's name as the resident chose it (display only).
    pub name: String,
}

impl AttachmentRef {
    /// Whether the shape is acceptable: a lower-case hex SHA-256, a size of
    /// at least one byte, a `type/subtype` media type, and a non-empty file
    /// name of at most [`ATTACHMENT_NAME_MAX_CHARS`] characters without path
    /// separators or control characters.
    pub fn is_well_formed(&self) -> bool {
        let hash = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let media = self
            .media_type
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'));
        let name = !self.name.trim().is_empty()
            && self.name.chars().count() <= ATTACHMENT_NAME_MAX_CHARS
            && !self
                .name
                .chars()
                .any(|c| c == '/' || c == '\\' || c.is_control());
        hash && self.size > 0 && media && name
    }

    /// Whether `allowed` (a media type or `type/*`) admits this file's media
    /// type; media types compare case-insensitively.
    pub fn media_type_allowed(&self, allowed: &[String]) -> bool {
        let actual = self.media_type.to_ascii_lowercase();
        allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_suffix("/*") {
                Some(kind) => actual.split_once('/').is_some_and(|(t, _)| t == kind),
                None => a == actual,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> AttachmentRef {
        AttachmentRef {
            sha256: "ab".repeat(32),
            size: 1000,
            media_type: "image/JPEG".into(),
            name: "户口本首页.jpg".into(),
        }
    }

    #[test]
    fn attachment_shape() {
        assert!(attachment().is_well_formed());
        let mut a = attachment();
        a.sha256 = "AB".repeat(32);
        assert!(!a.is_well_formed());
        let mut a = attachment();
        a.size = 0;
        assert!(!a.is_well_formed());
        let mut a = attachment();
        a.name = "../etc/passwd".into();
        assert!(!a.is_well_formed());
        let mut a = attachment();
        a.media_type = "jpeg".into();
        assert!(!a.is_well_formed());
    }

    #[test]
    fn media_types_match_case_insensitively_and_by_wildcard() {
        let a = attachment();
        assert!(a.media_type_allowed(&["image/jpeg".into()]));
        assert!(a.media_type_allowed(&["image/*".into()]));
        assert!(!a.media_type_allowed(&["application/pdf".into()]));
        assert!(!a.media_type_allowed(&[]));
    }

    #[test]
    fn licence_ref_shape() {
        let ok = LicenceRef {
            presentation: "eyJhbGciOiJFZERTQSJ9.e30.c2ln~WyJzIiwibiIsInYiXQ~".into(),
        };
        assert!(ok.is_well_formed());
        for bad in [
            String::new(),
            "a b".into(),
            "a".repeat(LICENCE_REF_MAX_BYTES + 1),
        ] {
            assert!(!LicenceRef { presentation: bad }.is_well_formed());
        }
        let json = serde_json::json!({"presentation": "x", "extra": 1});
        assert!(serde_json::from_value::<LicenceRef>(json).is_err());
    }
}
