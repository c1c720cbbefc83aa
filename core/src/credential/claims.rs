//! Licence claims and their GB/T 36903 (电子证照 元数据规范) metadata codes.
//!
//! Every licence field travels as its own selectively disclosable claim. The
//! metadata fields have fixed English claim names (below); a licence type's own
//! face fields (照面信息, e.g. 法定代表人 on a business licence) use their own
//! snake_case names and may not reuse these or any reserved JWT name.
//!
//! | claim name          | GB/T 36903 | meaning          | format                 |
//! |---------------------|------------|------------------|------------------------|
//! | `licence_name`      | ZZMC       | 证照名称         | text                   |
//! | `licence_type_code` | ZZLXDM     | 证照类型代码     | 0-9 A-Z                |
//! | `licence_number`    | ZZBH       | 证照编号         | text                   |
//! | `licence_id`        | ZZBS       | 证照标识         | GB/T 36904, checked    |
//! | `issuer_name`       | ZZBFJG     | 证照颁发机构     | text                   |
//! | `issuer_code`       | ZZBFJGDM   | 证照颁发机构代码 | 0-9 A-Z                |
//! | `issue_date`        | ZZBFRQ     | 证照颁发日期     | `YYYY-MM-DD`           |
//! | `holder_name`       | CZZT       | 持证主体         | text                   |
//! | `holder_code`       | CZZTDM     | 持证主体代码     | text                   |
//! | `holder_code_type`  | CZZTDMLX   | 持证主体代码类型 | text (e.g. 统一社会信用代码, 公民身份号码) |
//! | `valid_from`        | ZZYXQQSRQ  | 有效期起始日期   | `YYYY-MM-DD`           |
//! | `valid_until`       | ZZYXQJZRQ  | 有效期截止日期   | `YYYY-MM-DD` or `长期` |
//!
//! Dates are calendar days in China Standard Time (UTC+8): a licence is valid
//! from 00:00:00 of `valid_from` to 23:59:59 of `valid_until`, which become the
//! always-visible `nbf` and `exp` of the SD-JWT.

use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone as _};
use serde_json::Value;
use std::collections::BTreeMap;

use super::licence_id::LicenceId;

/// One row of the claim-name ↔ GB/T 36903 mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataField {
    /// The claim name in the SD-JWT.
    pub claim: &'static str,
    /// The GB/T 36903 metadata code.
    pub gbt_code: &'static str,
    /// The Chinese name of the element.
    pub zh: &'static str,
}

/// The GB/T 36903 metadata elements and their claim names.
pub const GBT_36903: [MetadataField; 12] = [
    MetadataField {
        claim: "licence_name",
        gbt_code: "ZZMC",
        zh: "证照名称",
    },
    MetadataField {
        claim: "licence_type_code",
        gbt_code: "ZZLXDM",
        zh: "证照类型代码",
    },
    MetadataField {
        claim: "licence_number",
        gbt_code: "ZZBH",
        zh: "证照编号",
    },
    MetadataField {
        claim: "licence_id",
        gbt_code: "ZZBS",
        zh: "证照标识",
    },
    MetadataField {
        claim: "issuer_name",
        gbt_code: "ZZBFJG",
        zh: "证照颁发机构",
    },
    MetadataField {
        claim: "issuer_code",
        gbt_code: "ZZBFJGDM",
        zh: "证照颁发机构代码",
    },
    MetadataField {
        claim: "issue_date",
        gbt_code: "ZZBFRQ",
        zh: "证照颁发日期",
    },
    MetadataField {
        claim: "holder_name",
        gbt_code: "CZZT",
        zh: "持证主体",
    },
    MetadataField {
        claim: "holder_code",
        gbt_code: "CZZTDM",
        zh: "持证主体代码",
    },
    MetadataField {
        claim: "holder_code_type",
        gbt_code: "CZZTDMLX",
        zh: "持证主体代码类型",
    },
    MetadataField {
        claim: "valid_from",
        gbt_code: "ZZYXQQSRQ",
        zh: "有效期起始日期",
    },
    MetadataField {
        claim: "valid_until",
        gbt_code: "ZZYXQJZRQ",
        zh: "有效期截止日期",
    },
];

/// The GB/T 36903 code for a claim name, if it is a metadata claim.
pub fn gbt_code(claim: &str) -> Option<&'static str> {
    GBT_36903
        .iter()
        .find(|f| f.claim == claim)
        .map(|f| f.gbt_code)
}

/// Claims every licence must carry.
pub const REQUIRED: [&str; 3] = ["licence_name", "licence_id", "holder_name"];

/// The `valid_until` value for a licence without an end date (长期有效).
pub const INDEFINITE: &str = "长期";

/// Names that are never selectively disclosable: SD-JWT's own (`_sd`, `...`,
/// `_sd_alg`) and those SD-JWT VC keeps visible.
pub const NEVER_DISCLOSABLE: [&str; 13] = [
    "_sd",
    "...",
    "_sd_alg",
    "iss",
    "sub",
    "iat",
    "nbf",
    "exp",
    "cnf",
    "vct",
    "vct#integrity",
    "status",
    "jti",
];

/// Why a set of claims cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// A required claim is absent.
    #[error("required claim `{0}` is missing")]
    Missing(&'static str),
    /// A claim has a value of the wrong shape.
    #[error("claim `{0}` is malformed")]
    Malformed(String),
    /// A claim uses a reserved name.
    #[error("claim name `{0}` is reserved")]
    Reserved(String),
    /// The licence identifier is invalid.
    #[error("licence_id: {0}")]
    LicenceId(#[from] super::licence_id::LicenceIdError),
    /// Two claims disagree (e.g. licence_type_code vs the identifier).
    #[error("claims `{0}` and `{1}` disagree")]
    Inconsistent(&'static str, &'static str),
    /// valid_until before valid_from.
    #[error("valid_until is before valid_from")]
    EmptyValidity,
    /// A claim name is not a lowercase ASCII snake_case name (empty,
    /// fullwidth, zero-width, upper case, longer than [`MAX_CLAIM_NAME`]).
    #[error("claim name is not lowercase ASCII snake_case")]
    BadName,
    /// The licence identifier's type code is not the licence type (`vct`).
    #[error("licence_id names another licence type than vct")]
    IdentifierType,
    /// The licence identifier's issuer code is not the issuing body's code.
    #[error("licence_id names another issuer")]
    IdentifierIssuer,
}

/// The longest claim name a licence may use.
pub const MAX_CLAIM_NAME: usize = 64;

/// Whether `name` is an acceptable licence claim name: `[a-z][a-z0-9_]*`,
/// at most [`MAX_CLAIM_NAME`] bytes. Names a person reads on a verdict must
/// not be spoofable: an empty name, a fullwidth `ｌｉｃｅｎｃｅ_ｉｄ` or a
/// `licence_id` with a zero-width space would show like (or hide as) a
/// metadata field while escaping every check on it.
pub fn is_valid_claim_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= MAX_CLAIM_NAME
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// The GB/T licence type code a `vct` names: its last `:`-separated segment
/// (`urn:zhangban:licence-type:<code>`).
pub fn type_code_of_vct(vct: &str) -> &str {
    vct.rsplit(':').next().unwrap_or(vct)
}

/// The licence identifier must name the licence type of `vct` and the issuing
/// body `issuer_code` (the issuer's ZZBFJGDM in the trust bundle), whether or
/// not `licence_type_code` / `issuer_code` are present. Without this, an
/// issuer could sign a licence whose identifier names another issuer's body
/// or another licence type, and a verifier shown only the identifier would
/// believe it.
pub fn check_identity(id: &LicenceId, vct: &str, issuer_code: &str) -> Result<(), ClaimsError> {
    if id.type_code() != type_code_of_vct(vct) {
        return Err(ClaimsError::IdentifierType);
    }
    if id.issuer_code() != issuer_code {
        return Err(ClaimsError::IdentifierIssuer);
    }
    Ok(())
}

/// The validity window (`nbf`, `exp`) that follows from the claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// 00:00:00 CST of `valid_from`, if given.
    pub not_before: Option<i64>,
    /// 23:59:59 CST of `valid_until`, or `None` for 长期 / absent.
    pub expires: Option<i64>,
}

fn cst() -> Option<FixedOffset> {
    FixedOffset::east_opt(8 * 3600)
}

fn parse_date(
    claims: &BTreeMap<String, Value>,
    name: &str,
) -> Result<Option<NaiveDate>, ClaimsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if name == "valid_until" && s == INDEFINITE => Ok(None),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ClaimsError::Malformed(name.into())),
        Some(_) => Err(ClaimsError::Malformed(name.into())),
    }
}

fn day_edge(date: NaiveDate, time: NaiveTime) -> Option<i64> {
    cst()?
        .from_local_datetime(&date.and_time(time))
        .single()
        .map(|t| t.timestamp())
}

/// The visible time a disclosed `valid_from` / `valid_until` stands for:
/// `valid_from` → `Some(00:00:00 CST)`, `valid_until` → `Some(23:59:59 CST)`
/// or `None` for 长期. The issuer derives `nbf` / `exp` from these, so a
/// verifier holds a disclosed value against the signed visible one.
pub fn validity_edge(name: &str, value: &Value) -> Result<Option<i64>, ClaimsError> {
    let one = BTreeMap::from([(name.to_owned(), value.clone())]);
    let date = parse_date(&one, name)?;
    let time = if name == "valid_until" {
        NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN)
    } else {
        NaiveTime::MIN
    };
    Ok(date.and_then(|d| day_edge(d, time)))
}

/// Validates a licence's claims before issuance: reserved names, required
/// claims, string metadata, dates, the GB/T 36904 identifier and its
/// agreement with the type and issuer codes. Returns the validity window.
pub fn validate(claims: &BTreeMap<String, Value>) -> Result<Validity, ClaimsError> {
    for name in claims.keys() {
        if NEVER_DISCLOSABLE.contains(&name.as_str()) || name.is_empty() {
            return Err(ClaimsError::Reserved(name.clone()));
        }
        if !is_valid_claim_name(name) {
            return Err(ClaimsError::BadName);
        }
    }
    for name in REQUIRED {
        if !claims.contains_key(name) {
            return Err(ClaimsError::Missing(name));
        }
    }
    for field in GBT_36903 {
        if let Some(v) = claims.get(field.claim) {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() => {}
                _ => return Err(ClaimsError::Malformed(field.claim.into())),
            }
        }
    }
    let id_text = claims
        .get("licence_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id: LicenceId = id_text.parse()?;
    if let Some(code) = claims.get("licence_type_code").and_then(Value::as_str) {
        if code != id.type_code() {
            return Err(ClaimsError::Inconsistent("licence_type_code", "licence_id"));
        }
    }
    if let Some(code) = claims.get("issuer_code").and_then(Value::as_str) {
        if code != id.issuer_code() {
            return Err(ClaimsError::Inconsistent("issuer_code", "licence_id"));
        }
    }
    parse_date(claims, "issue_date")?;
    let from = parse_date(claims, "valid_from")?;
    let until = parse_date(claims, "valid_until")?;
    if let (Some(f), Some(u)) = (from, until) {
        if u < f {
            return Err(ClaimsError::EmptyValidity);
        }
    }
    let start = NaiveTime::MIN;
    let end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
    Ok(Validity {
        not_before: from.and_then(|d| day_edge(d, start)),
        expires: until.and_then(|d| day_edge(d, end)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> BTreeMap<String, Value> {
        serde_json::from_value(json!({
            "licence_name": "营业执照",
            "licence_type_code": "11100000000013338W050",
            "licence_id": LicenceId::new("11100000000013338W050", "11511600MB1234567X", "2026000123", 1).unwrap().to_string(),
            "issuer_code": "11511600MB1234567X",
            "holder_name": "广安市示例商贸有限公司",
            "valid_from": "2026-01-01",
            "valid_until": "2030-12-31",
        }))
        .unwrap()
    }

    #[test]
    fn mapping_has_twelve_distinct_codes() {
        let mut codes: Vec<_> = GBT_36903.iter().map(|f| f.gbt_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 12);
        assert_eq!(gbt_code("valid_until"), Some("ZZYXQJZRQ"));
        assert_eq!(gbt_code("legal_representative"), None);
    }

    #[test]
    fn validity_is_cst_day_edges() {
        let v = validate(&sample()).unwrap();
        // 2026-01-01T00:00:00+08:00 and 2030-12-31T23:59:59+08:00
        assert_eq!(v.not_before, Some(1_767_196_800));
        assert_eq!(v.expires, Some(1_924_963_199));
        let mut c = sample();
        c.insert("valid_until".into(), json!(INDEFINITE));
        assert_eq!(validate(&c).unwrap().expires, None);
    }

    #[test]
    fn invalid_claims_are_refused() {
        let mut c = sample();
        c.insert("cnf".into(), json!("x"));
        assert_eq!(validate(&c), Err(ClaimsError::Reserved("cnf".into())));
        let mut c = sample();
        c.remove("holder_name");
        assert_eq!(validate(&c), Err(ClaimsError::Missing("holder_name")));
        let mut c = sample();
        c.insert("issuer_code".into(), json!("12345678901234567X"));
        assert_eq!(
            validate(&c),
            Err(ClaimsError::Inconsistent("issuer_code", "licence_id"))
        );
        let mut c = sample();
        c.insert("valid_from".into(), json!("2026/01/01"));
        assert_eq!(
            validate(&c),
            Err(ClaimsError::Malformed("valid_from".into()))
        );
        let mut c = sample();
        c.insert("valid_until".into(), json!("2025-01-01"));
        assert_eq!(validate(&c), Err(ClaimsError::EmptyValidity));
        let mut c = sample();
        c.insert("licence_id".into(), json!("1.2.156.3005.2.X.Y.Z.001.0"));
        assert!(matches!(validate(&c), Err(ClaimsError::LicenceId(_))));
    }
}
