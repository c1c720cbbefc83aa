//! Resident identity card numbers (公民身份号码, GB 11643-1999).
//!
//! An 18-character number: a 6-digit administrative division code of the
//! place of first registration, the birth date as `YYYYMMDD`, a 3-digit
//! sequence (odd for men, even for women) and a check character computed with
//! ISO 7064 MOD 11-2 over the first 17 digits (`0`-`9`, or `X` for 10).
//!
//! Only the canonical spelling is accepted: 18 characters, digits, and an
//! upper-case `X` as the check character. A lower-case `x` is refused
//! ([`IdNumberError::InvalidCharacter`]): one identity must have one spelling
//! on the server (deduplication, comparison with licences), and the app
//! upper-cases what the resident typed before validating. 15-digit numbers of
//! the first generation (pre-1999) are refused too: they were all replaced.
//!
//! Errors never carry the number itself (personal data).

use chrono::NaiveDate;

/// Weights of ISO 7064 MOD 11-2 for the 17 digits: 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check characters indexed by the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// Province-level codes (the first two digits) of GB/T 2260, plus 71
/// (Taiwan), 81 and 82 (Hong Kong, Macao) and 83 (residence permits of
/// Taiwan residents).
const PROVINCES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// The earliest birth date accepted (nobody alive was born before it).
const EARLIEST_BIRTH: (i32, u32, u32) = (1900, 1, 1);

/// Why a string is not a valid identity card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not exactly 18 characters.
    #[error("an identity card number has 18 characters")]
    WrongLength,
    /// A character other than a digit, or other than an upper-case `X` in the
    /// last position.
    #[error("an identity card number has 17 digits and a digit or X")]
    InvalidCharacter,
    /// The first two digits are not a province-level division code.
    #[error("the identity card number's region code is not a province")]
    InvalidRegion,
    /// Characters 7-14 are not a calendar date, or one before 1900.
    #[error("the identity card number's birth date is not a date")]
    InvalidBirthDate,
    /// The birth date lies after "today".
    #[error("the identity card number's birth date is in the future")]
    BirthDateInFuture,
    /// The check character does not match the first 17 digits.
    #[error("the identity card number's check character is wrong")]
    CheckMismatch,
}

/// The ISO 7064 MOD 11-2 check character (`0`-`9` or `X`) of 17 digits, or
/// `None` if the input is not 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize).map(|&c| char::from(c))
}

/// Validates an identity card number and returns the birth date it contains.
///
/// `today` (injected, never read from the clock) bounds the birth date.
pub fn validate_id_number(number: &str, today: NaiveDate) -> Result<NaiveDate, IdNumberError> {
    let bytes = number.as_bytes();
    if number.chars().count() != 18 {
        return Err(IdNumberError::WrongLength);
    }
    // 18 chars; all ASCII from here on, else InvalidCharacter.
    let (body, last) = match bytes.split_last() {
        Some((last, body)) if bytes.len() == 18 => (body, *last),
        _ => return Err(IdNumberError::InvalidCharacter),
    };
    if !body.iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
        return Err(IdNumberError::InvalidCharacter);
    }
    let digits = |from: usize, to: usize| -> u32 {
        body.get(from..to)
            .unwrap_or_default()
            .iter()
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let province = digits(0, 2);
    if !PROVINCES.iter().any(|&p| u32::from(p) == province) {
        return Err(IdNumberError::InvalidRegion);
    }
    let year = i32::try_from(digits(6, 10)).map_err(|_| IdNumberError::InvalidBirthDate)?;
    let birth = NaiveDate::from_ymd_opt(year, digits(10, 12), digits(12, 14))
        .ok_or(IdNumberError::InvalidBirthDate)?;
    let (y, m, d) = EARLIEST_BIRTH;
    if NaiveDate::from_ymd_opt(y, m, d).is_some_and(|earliest| birth < earliest) {
        return Err(IdNumberError::InvalidBirthDate);
    }
    if birth > today {
        return Err(IdNumberError::BirthDateInFuture);
    }
    let first17 = std::str::from_utf8(body).map_err(|_| IdNumberError::InvalidCharacter)?;
    if check_character(first17) != Some(char::from(last)) {
        return Err(IdNumberError::CheckMismatch);
    }
    Ok(birth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    #[test]
    fn weights_are_powers_of_two_mod_11() {
        for (i, w) in WEIGHTS.iter().enumerate() {
            assert_eq!(*w, (1u32 << (17 - i)) % 11);
        }
    }

    #[test]
    fn check_characters() {
        // The GB 11643-1999 sample.
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("44052418800101001"), Some('4'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100A"), None);
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(
            validate_id_number("11010519491231002X", today()),
            NaiveDate::from_ymd_opt(1949, 12, 31).ok_or(IdNumberError::InvalidBirthDate)
        );
    }
}
