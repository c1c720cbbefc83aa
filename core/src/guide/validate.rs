//! The shared submission validator: the phone runs it before queueing, the
//! server on receipt, so a submission the phone accepted is never refused by
//! the server for its shape (only, later, for its substance).
//!
//! Rules, beyond each kind's own (see [`FieldKind`]):
//!
//! - every problem is reported, at most one per field, fields in schema
//!   order, then unknown keys in the order of the map;
//! - a value that is `null`, a blank string (only whitespace) or an empty
//!   array counts as absent: an error ([`FieldErrorCode::Required`]) for a
//!   required field, nothing for an optional one;
//! - a key the schema does not have is an error ([`FieldErrorCode::UnknownField`]);
//! - the validator never panics and never reads the clock: `today` is given;
//! - an unusable pattern in a schema (which [`super::Guide::validate`] would
//!   have refused) makes every value of that field a
//!   [`FieldErrorCode::PatternMismatch`], never a panic.

use chrono::NaiveDate;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrorCode, WHOLE_FORM};
use super::form::{FieldKind, FormField, FormSchema, TEXT_MAX_CHARS, compile_pattern};
use super::form::{parse_date, resolve_date_bound};
use super::id_number::validate_id_number;
use super::value::{AttachmentRef, LicenceRef};

/// The longest unknown key quoted back in an error, in characters.
const UNKNOWN_KEY_MAX_CHARS: usize = 64;

/// Checks that a submission was filled against this version of the form.
pub fn validate_form_version(
    schema: &FormSchema,
    submitted_version: u32,
) -> Result<(), FieldError> {
    if schema.version == submitted_version {
        Ok(())
    } else {
        Err(FieldError::new(
            WHOLE_FORM,
            FieldErrorCode::SchemaVersionMismatch,
        ))
    }
}

/// Validates submitted values against a form schema, collecting every error.
pub fn validate_submission(
    schema: &FormSchema,
    values: &Map<String, Value>,
    today: NaiveDate,
) -> Result<(), Vec<FieldError>> {
    validate_values(schema, values, today, true)
}

/// Validates the values of a draft being filled: every value present is
/// checked by the same rules as [`validate_submission`] (and unknown keys
/// are errors), but a required field still empty is not an error yet — a
/// form is filled in steps, and `submit` reports what is still missing.
/// The phone runs it when a value is set, so a bad value is reported at
/// once instead of at submit.
pub fn validate_draft(
    schema: &FormSchema,
    values: &Map<String, Value>,
    today: NaiveDate,
) -> Result<(), Vec<FieldError>> {
    validate_values(schema, values, today, false)
}

/// The required fields of `schema` that `values` leaves empty, in schema order.
pub fn missing_required<'a>(schema: &'a FormSchema, values: &Map<String, Value>) -> Vec<&'a str> {
    schema
        .fields
        .iter()
        .filter(|f| f.required && values.get(&f.name).is_none_or(is_empty))
        .map(|f| f.name.as_str())
        .collect()
}

fn validate_values(
    schema: &FormSchema,
    values: &Map<String, Value>,
    today: NaiveDate,
    complete: bool,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for field in &schema.fields {
        let value = values.get(&field.name).filter(|v| !is_empty(v));
        let outcome = match value {
            None if field.required && complete => Err(FieldErrorCode::Required),
            None => Ok(()),
            Some(v) => check_value(field, v, today),
        };
        if let Err(code) = outcome {
            errors.push(FieldError::new(&field.name, code));
        }
    }
    for key in values.keys() {
        if schema.field(key).is_none() {
            let shown: String = key.chars().take(UNKNOWN_KEY_MAX_CHARS).collect();
            errors.push(FieldError::new(&shown, FieldErrorCode::UnknownField));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// [`validate_form_version`], then (only if the version matches: values for
/// another version cannot be judged) [`validate_submission`].
pub fn validate_versioned_submission(
    schema: &FormSchema,
    submitted_version: u32,
    values: &Map<String, Value>,
    today: NaiveDate,
) -> Result<(), Vec<FieldError>> {
    validate_form_version(schema, submitted_version).map_err(|e| vec![e])?;
    validate_submission(schema, values, today)
}

/// Whether a telephone number is a mainland mobile number (`1[3-9]` and 9
/// more digits) or a landline with its area code (`010` or `02x`, else four
/// digits `0xxx`), an optional `-`, and a local number of 7 or 8 digits not
/// starting with `0` or `1` (e.g. `0826-2345678`, `010-61234567`). No
/// spaces, no `+86`: the app normalises what was typed.
pub fn is_valid_phone(number: &str) -> bool {
    let b = number.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b {
        [b'1', second, rest @ ..] => {
            (b'3'..=b'9').contains(second) && rest.len() == 9 && digits(rest)
        }
        [b'0', second, ..] => {
            // 010 and 02x are the 3-digit area codes; all others have 4.
            let area_len = if matches!(second, b'1' | b'2') { 3 } else { 4 };
            let (area, rest) = b.split_at(area_len.min(b.len()));
            let local = rest.strip_prefix(b"-").unwrap_or(rest);
            area.len() == area_len
                && digits(area)
                && (7..=8).contains(&local.len())
                && digits(local)
                && local.first().is_some_and(|c| (b'2'..=b'9').contains(c))
        }
        _ => false,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn check_value(field: &FormField, value: &Value, today: NaiveDate) -> Result<(), FieldErrorCode> {
    use FieldErrorCode as E;
    match &field.kind {
        FieldKind::Text {
            min_len,
            max_len,
            pattern,
        } => {
            let text = value.as_str().ok_or(E::WrongType)?;
            let max = (*max_len).min(TEXT_MAX_CHARS) as usize;
            // Count at most max + 1 characters: huge inputs cost nothing more.
            let len = text.chars().take(max.saturating_add(1)).count();
            if len > max {
                return Err(E::TooLong);
            }
            if len < *min_len as usize {
                return Err(E::TooShort);
            }
            if let Some(p) = pattern {
                match compile_pattern(p) {
                    Ok(re) if re.is_match(text) => {}
                    _ => return Err(E::PatternMismatch),
                }
            }
            Ok(())
        }
        FieldKind::Number { min, max, integer } => {
            let n = match value {
                Value::Number(n) => n.as_f64().ok_or(E::NotANumber)?,
                Value::String(s) => parse_decimal(s).ok_or(E::NotANumber)?,
                _ => return Err(E::WrongType),
            };
            if *integer && n.fract() != 0.0 {
                return Err(E::NotAnInteger);
            }
            if min.is_some_and(|m| n < m) {
                return Err(E::BelowMinimum);
            }
            if max.is_some_and(|m| n > m) {
                return Err(E::AboveMaximum);
            }
            Ok(())
        }
        FieldKind::Date {
            not_before,
            not_after,
        } => {
            let date = parse_date(value.as_str().ok_or(E::WrongType)?).ok_or(E::InvalidDate)?;
            let bound =
                |b: &Option<String>| b.as_deref().and_then(|b| resolve_date_bound(b, today));
            if bound(not_before).is_some_and(|lo| date < lo) {
                return Err(E::DateTooEarly);
            }
            if bound(not_after).is_some_and(|hi| date > hi) {
                return Err(E::DateTooLate);
            }
            Ok(())
        }
        FieldKind::Choice { options, multiple } => {
            let is_option = |v: &str| options.iter().any(|o| o.value == v);
            match value {
                Value::String(s) if !*multiple => is_option(s).then_some(()).ok_or(E::NotAnOption),
                Value::Array(_) if !*multiple => Err(E::SingleChoiceExpected),
                Value::Array(items) if *multiple => {
                    let mut chosen: Vec<&str> = Vec::with_capacity(items.len());
                    for item in items {
                        let s = item.as_str().ok_or(E::WrongType)?;
                        if !is_option(s) || chosen.contains(&s) {
                            return Err(E::NotAnOption);
                        }
                        chosen.push(s);
                    }
                    Ok(())
                }
                _ => Err(E::WrongType),
            }
        }
        FieldKind::IdNumber => {
            let text = value.as_str().ok_or(E::WrongType)?;
            validate_id_number(text, today)
                .map(|_| ())
                .map_err(|_| E::InvalidIdNumber)
        }
        FieldKind::Phone => {
            let text = value.as_str().ok_or(E::WrongType)?;
            is_valid_phone(text).then_some(()).ok_or(E::InvalidPhone)
        }
        FieldKind::LicenceRef { .. } => {
            if !value.is_object() {
                return Err(E::WrongType);
            }
            match LicenceRef::deserialize(value) {
                Ok(r) if r.is_well_formed() => Ok(()),
                _ => Err(E::InvalidLicenceRef),
            }
        }
        FieldKind::Attachment {
            media_types,
            max_bytes,
        } => {
            if !value.is_object() {
                return Err(E::WrongType);
            }
            let a = match AttachmentRef::deserialize(value) {
                Ok(a) if a.is_well_formed() => a,
                _ => return Err(E::InvalidAttachment),
            };
            if a.size > *max_bytes {
                return Err(E::AttachmentTooLarge);
            }
            if !a.media_type_allowed(media_types) {
                return Err(E::MediaTypeNotAllowed);
            }
            Ok(())
        }
    }
}

/// A plain decimal (`-12`, `3.50`): optional minus, digits, optional
/// fraction. No exponent, no `NaN`/`inf`, no spaces, at most 40 characters.
fn parse_decimal(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = text.len() <= 40 && digits(whole) && fraction.is_none_or(digits);
    if !ok {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        for ok in [
            "13800138000",
            "19912345678",
            "0826-2345678",
            "08262345678",
            "010-61234567",
            "01061234567",
            "028-85123456",
            "02885123456",
        ] {
            assert!(is_valid_phone(ok), "{ok}");
        }
        for bad in [
            "",
            "12800138000",
            "1380013800",
            "138001380000",
            "+8613800138000",
            "138 0013 8000",
            "0826-1234567",
            "0826-0234567",
            "0826-23456",
            "826-2345678",
            "0826-234567890",
            "0282-2345678",
            "08-2345678",
            "0826--2345678",
            "０８２６-2345678",
            "0",
        ] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal("12"), Some(12.0));
        assert_eq!(parse_decimal("-3.50"), Some(-3.5));
        for bad in [
            "", "-", ".5", "5.", "1e3", "NaN", "inf", " 1", "1,000", "+1",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
