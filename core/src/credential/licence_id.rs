//! The GB/T 36904 electronic-licence identifier (电子证照标识, ZZBS):
//!
//! `1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>`
//!
//! - type code (证照类型代码): the national licence type, e.g. `11100000000013338W050`
//! - issuer code (颁发机构代码): the issuing body's unified social credit code
//! - serial (顺序号): the issuer's serial for the licence
//! - version (版本号): three digits, `001` for the first version
//! - check (校验位): ISO/IEC 7064 MOD 37,36 (GB/T 17710) over
//!   type code + issuer code + serial + version, digits 0-9 and A=10 … Z=35.

use std::fmt;
use std::str::FromStr;

/// The fixed OID arc that starts every identifier.
pub const OID_PREFIX: &str = "1.2.156.3005.2";

/// Why an identifier is not a valid GB/T 36904 identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenceIdError {
    /// Does not start with `1.2.156.3005.2.`.
    #[error("identifier does not start with {OID_PREFIX}")]
    Prefix,
    /// Not exactly five parts after the prefix.
    #[error("identifier must have type, issuer, serial, version and check parts")]
    Parts,
    /// A part is empty, too long, or uses characters outside 0-9 A-Z.
    #[error("identifier part `{0}` is empty, too long or not in 0-9 A-Z")]
    Charset(&'static str),
    /// The version is not three digits.
    #[error("version must be three digits")]
    Version,
    /// The check character does not match.
    #[error("check character is {found}, expected {expected}")]
    Check {
        /// The check character the identifier carries.
        found: char,
        /// The one MOD 37,36 gives.
        expected: char,
    },
}

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const MAX_PART: usize = 64;

fn value_of(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// The ISO/IEC 7064 MOD 37,36 (hybrid system, M = 36) check character for
/// `data`, or `None` if `data` has a character outside 0-9 A-Z.
pub fn mod37_36_check(data: &str) -> Option<char> {
    const M: u32 = 36;
    let mut p = M;
    for c in data.bytes() {
        let s = (p + value_of(c)?) % M;
        let s = if s == 0 { M } else { s };
        p = (s * 2) % (M + 1);
    }
    // The check character a makes (p + a) mod M == 1.
    let a = (M + 1 - p) % M;
    ALPHABET.get(a as usize).map(|&b| char::from(b))
}

/// A validated licence identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LicenceId {
    type_code: String,
    issuer_code: String,
    serial: String,
    version: String,
    check: char,
}

fn check_part(part: &str, name: &'static str) -> Result<(), LicenceIdError> {
    if part.is_empty() || part.len() > MAX_PART || part.bytes().any(|c| value_of(c).is_none()) {
        return Err(LicenceIdError::Charset(name));
    }
    Ok(())
}

impl LicenceId {
    /// Builds an identifier and computes its check character.
    pub fn new(
        type_code: &str,
        issuer_code: &str,
        serial: &str,
        version: u16,
    ) -> Result<Self, LicenceIdError> {
        check_part(type_code, "type_code")?;
        check_part(issuer_code, "issuer_code")?;
        check_part(serial, "serial")?;
        if version > 999 {
            return Err(LicenceIdError::Version);
        }
        let version = format!("{version:03}");
        let check = mod37_36_check(&format!("{type_code}{issuer_code}{serial}{version}"))
            .ok_or(LicenceIdError::Charset("serial"))?;
        Ok(Self {
            type_code: type_code.into(),
            issuer_code: issuer_code.into(),
            serial: serial.into(),
            version,
            check,
        })
    }

    /// 证照类型代码.
    pub fn type_code(&self) -> &str {
        &self.type_code
    }
    /// 颁发机构代码.
    pub fn issuer_code(&self) -> &str {
        &self.issuer_code
    }
    /// 顺序号.
    pub fn serial(&self) -> &str {
        &self.serial
    }
    /// 版本号 (three digits).
    pub fn version(&self) -> &str {
        &self.version
    }
    /// 校验位.
    pub fn check(&self) -> char {
        self.check
    }
}

impl FromStr for LicenceId {
    type Err = LicenceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix(OID_PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or(LicenceIdError::Prefix)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [type_code, issuer_code, serial, version, check] = parts.as_slice() else {
            return Err(LicenceIdError::Parts);
        };
        check_part(type_code, "type_code")?;
        check_part(issuer_code, "issuer_code")?;
        check_part(serial, "serial")?;
        if version.len() != 3 || !version.bytes().all(|c| c.is_ascii_digit()) {
            return Err(LicenceIdError::Version);
        }
        let found = match check.as_bytes() {
            [c] if value_of(*c).is_some() => char::from(*c),
            _ => return Err(LicenceIdError::Charset("check")),
        };
        let expected = mod37_36_check(&format!("{type_code}{issuer_code}{serial}{version}"))
            .ok_or(LicenceIdError::Charset("serial"))?;
        if found != expected {
            return Err(LicenceIdError::Check { found, expected });
        }
        Ok(Self {
            type_code: (*type_code).into(),
            issuer_code: (*issuer_code).into(),
            serial: (*serial).into(),
            version: (*version).into(),
            check: found,
        })
    }
}

impl fmt::Display for LicenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{OID_PREFIX}.{}.{}.{}.{}.{}",
            self.type_code, self.issuer_code, self.serial, self.version, self.check
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ISO/IEC 7064 MOD 37,36 vectors published with independent
    /// implementations (last character is the check character).
    #[test]
    fn iso7064_vectors() {
        for full in [
            "A12425GABC1234002M",
            "B159D8FA01240000K",
            "188166C7342000003",
        ] {
            let (data, check) = full.split_at(full.len() - 1);
            assert_eq!(
                mod37_36_check(data).map(String::from).as_deref(),
                Some(check),
                "{full}"
            );
        }
        assert_eq!(mod37_36_check("abc"), None);
    }

    /// Identifiers that real issuing systems produced (public interface docs).
    #[test]
    fn real_identifiers_validate() {
        for id in [
            "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
            "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
        ] {
            let parsed: LicenceId = id.parse().unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(parsed.to_string(), id);
        }
    }

    #[test]
    fn generated_identifier_round_trips() {
        let id = LicenceId::new(
            "11100000000013338W050",
            "11511600MB1234567X",
            "2026000123",
            1,
        )
        .unwrap();
        assert_eq!(id.version(), "001");
        let text = id.to_string();
        assert!(text.starts_with(
            "1.2.156.3005.2.11100000000013338W050.11511600MB1234567X.2026000123.001."
        ));
        assert_eq!(text.parse::<LicenceId>().unwrap(), id);
    }

    #[test]
    fn wrong_check_character_is_refused() {
        let good = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S";
        let bad = good.replace(".002.S", ".002.T");
        assert_eq!(
            bad.parse::<LicenceId>(),
            Err(LicenceIdError::Check {
                found: 'T',
                expected: 'S'
            })
        );
        // A single changed data character is always caught.
        let bad = good.replace("20230000403", "20230000404");
        assert!(matches!(
            bad.parse::<LicenceId>(),
            Err(LicenceIdError::Check { .. })
        ));
        // So is a transposition of two adjacent characters.
        let bad = good.replace("20230000403", "20230000430");
        assert!(matches!(
            bad.parse::<LicenceId>(),
            Err(LicenceIdError::Check { .. })
        ));
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        assert_eq!(
            "1.2.156.3005.3.A.B.C.001.X".parse::<LicenceId>(),
            Err(LicenceIdError::Prefix)
        );
        assert_eq!(
            "1.2.156.3005.2.A.B.C.001".parse::<LicenceId>(),
            Err(LicenceIdError::Parts)
        );
        assert_eq!(
            "1.2.156.3005.2.a.B.C.001.X".parse::<LicenceId>(),
            Err(LicenceIdError::Charset("type_code"))
        );
        assert_eq!(
            "1.2.156.3005.2.A..C.001.X".parse::<LicenceId>(),
            Err(LicenceIdError::Charset("issuer_code"))
        );
        assert_eq!(
            "1.2.156.3005.2.A.B.C.01.X".parse::<LicenceId>(),
            Err(LicenceIdError::Version)
        );
        assert_eq!(
            "1.2.156.3005.2.A.B.C.001.XY".parse::<LicenceId>(),
            Err(LicenceIdError::Charset("check"))
        );
    }
}
