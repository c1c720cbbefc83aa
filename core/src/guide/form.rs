//! The form schema of a service guide: typed fields with their rules.
//!
//! A guide's form is what the resident fills in on the phone. The schema is
//! data (it travels with the guide in the catalog), and the same validator
//! ([`super::validate`]) checks a submission against it on the phone before
//! queueing and on the server on receipt, so both always agree.
//!
//! JSON shape (field kinds are internally tagged by `type`):
//!
//! ```json
//! {"version": 1, "fields": [
//!   {"name": "applicant_name", "label_zh": "申请人姓名", "label_en": "Applicant name",
//!    "kind": {"type": "text", "min_len": 2, "max_len": 50, "pattern": null},
//!    "required": true, "help": null}
//! ]}
//! ```
//!
//! Date bounds are `YYYY-MM-DD` or the word [`TODAY`], which the validator
//! resolves to the `today` it is given (an appointment "not before today", a
//! birth date "not after today").

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The most characters a text value may have, whatever the schema says.
pub const TEXT_MAX_CHARS: u32 = 10_000;

/// The most bytes a licence reference's presentation may have (64 KiB).
pub const LICENCE_REF_MAX_BYTES: usize = 64 * 1024;

/// The longest field name a schema may use.
pub const FIELD_NAME_MAX_LEN: usize = 64;

/// A date bound meaning "the day of validation".
pub const TODAY: &str = "today";

/// A guide's form: its version and its fields, in display order.
///
/// The version changes whenever the fields or their rules change; a
/// submission carries the version it was filled against
/// ([`super::validate::validate_form_version`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormSchema {
    /// Version of this form (≥ 1).
    pub version: u32,
    /// The fields, in display order; names are unique.
    pub fields: Vec<FormField>,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// Machine name, the key of the value in a submission: `[a-z][a-z0-9_]*`,
    /// at most [`FIELD_NAME_MAX_LEN`] characters.
    pub name: String,
    /// Label shown in Chinese.
    pub label_zh: String,
    /// Label shown in English.
    pub label_en: String,
    /// The kind of value and its rules.
    pub kind: FieldKind,
    /// Whether a value must be given.
    pub required: bool,
    /// Optional help text shown under the field.
    #[serde(default)]
    pub help: Option<String>,
}

/// The kind of a field's value and the rules that apply to it.
///
/// The submitted value of each kind:
///
/// | kind          | value                                                    |
/// |---------------|----------------------------------------------------------|
/// | `text`        | string                                                   |
/// | `number`      | JSON number, or a decimal string such as `"12.5"`        |
/// | `date`        | string `YYYY-MM-DD`                                      |
/// | `choice`      | string (one option value), or an array of them if `multiple` |
/// | `id_number`   | string, 18 characters (see [`super::id_number`])        |
/// | `phone`       | string: mobile `1[3-9]` + 9 digits, or landline `0826-2345678` |
/// | `licence_ref` | object `{"presentation": "<SD-JWT presentation>"}`       |
/// | `attachment`  | object `{"sha256", "size", "media_type", "name"}`        |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text; lengths count Unicode characters (a Chinese character is one).
    Text {
        /// Fewest characters.
        min_len: u32,
        /// Most characters (capped at [`TEXT_MAX_CHARS`]).
        max_len: u32,
        /// A regular expression the whole value must match (it is anchored:
        /// `^(?:pattern)$`). `regex-lite` syntax: `\d` is ASCII digits.
        #[serde(default)]
        pattern: Option<String>,
    },
    /// A number.
    Number {
        /// Smallest allowed value.
        #[serde(default)]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default)]
        max: Option<f64>,
        /// Whether only whole numbers are allowed.
        integer: bool,
    },
    /// A calendar date.
    Date {
        /// Earliest allowed date: `YYYY-MM-DD` or [`TODAY`].
        #[serde(default)]
        not_before: Option<String>,
        /// Latest allowed date: `YYYY-MM-DD` or [`TODAY`].
        #[serde(default)]
        not_after: Option<String>,
    },
    /// One (or, if `multiple`, several) of fixed options.
    Choice {
        /// The options, in display order; values are unique.
        options: Vec<ChoiceOption>,
        /// Whether several options may be chosen.
        multiple: bool,
    },
    /// A resident identity card number (居民身份证号码).
    IdNumber,
    /// A mainland mobile or landline telephone number.
    Phone,
    /// An electronic licence presented instead of a paper proof.
    LicenceRef {
        /// The licence types (`vct`) that can fill this field.
        licence_types: Vec<String>,
    },
    /// An uploaded file (a scanned paper proof), referenced by its hash.
    Attachment {
        /// Allowed media types, e.g. `application/pdf`, or `image/*`.
        media_types: Vec<String>,
        /// Largest allowed size in bytes.
        max_bytes: u64,
    },
}

impl FieldKind {
    /// The kind's name, as in the JSON `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Number { .. } => "number",
            Self::Date { .. } => "date",
            Self::Choice { .. } => "choice",
            Self::IdNumber => "id_number",
            Self::Phone => "phone",
            Self::LicenceRef { .. } => "licence_ref",
            Self::Attachment { .. } => "attachment",
        }
    }
}

/// One option of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// The submitted value.
    pub value: String,
    /// Label shown in Chinese.
    pub label_zh: String,
    /// Label shown in English.
    pub label_en: String,
}

impl ChoiceOption {
    /// An option.
    pub fn new(value: &str, label_zh: &str, label_en: &str) -> Self {
        Self {
            value: value.into(),
            label_zh: label_zh.into(),
            label_en: label_en.into(),
        }
    }
}

/// Why a form schema is not usable. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormSchemaError {
    /// The form version is 0.
    #[error("form version must be at least 1")]
    InvalidVersion,
    /// A field name is empty, too long or not `[a-z][a-z0-9_]*`.
    #[error("field name `{0}` is not [a-z][a-z0-9_]* of at most 64 characters")]
    InvalidFieldName(String),
    /// Two fields have the same name.
    #[error("field `{0}` is defined twice")]
    DuplicateField(String),
    /// A label is empty.
    #[error("field `{0}` has an empty label")]
    MissingLabel(String),
    /// Text lengths are impossible: `min_len > max_len`, `max_len` 0, or
    /// `min_len` above [`TEXT_MAX_CHARS`].
    #[error("field `{0}` has impossible text lengths")]
    TextLengths(String),
    /// The text pattern is not a valid regular expression.
    #[error("field `{0}` has an invalid pattern")]
    InvalidPattern(String),
    /// A number bound is not finite, or `min > max`.
    #[error("field `{0}` has impossible number bounds")]
    NumberBounds(String),
    /// A date bound is neither `YYYY-MM-DD` nor `today`, or `not_before` is
    /// after `not_after`.
    #[error("field `{0}` has invalid date bounds")]
    DateBounds(String),
    /// A choice without options.
    #[error("choice field `{0}` has no options")]
    NoOptions(String),
    /// A choice option with an empty value or label, or a repeated value.
    #[error("choice field `{0}` has an empty or repeated option")]
    InvalidOption(String),
    /// A licence reference that no licence type can fill.
    #[error("licence field `{0}` lists no licence types")]
    NoLicenceTypes(String),
    /// An attachment without media types, or with one that is not `type/subtype`.
    #[error("attachment field `{0}` has no or invalid media types")]
    InvalidMediaTypes(String),
    /// An attachment whose `max_bytes` is 0.
    #[error("attachment field `{0}` allows no bytes")]
    ZeroMaxBytes(String),
}

/// Parses a strict `YYYY-MM-DD` date (exactly 10 characters, zero-padded).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

/// Resolves a date bound (`YYYY-MM-DD` or [`TODAY`]) against `today`.
pub fn resolve_date_bound(bound: &str, today: NaiveDate) -> Option<NaiveDate> {
    if bound == TODAY {
        Some(today)
    } else {
        parse_date(bound)
    }
}

/// Compiles a text pattern, anchored as `^(?:pattern)$`.
pub fn compile_pattern(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
}

/// Whether `name` is a well-formed field name: `[a-z][a-z0-9_]*`, at most
/// [`FIELD_NAME_MAX_LEN`] characters.
pub fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= FIELD_NAME_MAX_LEN
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn valid_media_type(media_type: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match media_type.split_once('/') {
        Some((kind, "*")) => token(kind),
        Some((kind, sub)) => token(kind) && token(sub),
        None => false,
    }
}

impl FormField {
    fn check(&self) -> Result<(), FormSchemaError> {
        let name = || self.name.clone();
        if self.label_zh.trim().is_empty() || self.label_en.trim().is_empty() {
            return Err(FormSchemaError::MissingLabel(name()));
        }
        match &self.kind {
            FieldKind::Text {
                min_len,
                max_len,
                pattern,
            } => {
                if min_len > max_len || *max_len == 0 || *min_len > TEXT_MAX_CHARS {
                    return Err(FormSchemaError::TextLengths(name()));
                }
                if let Some(p) = pattern {
                    compile_pattern(p).map_err(|_| FormSchemaError::InvalidPattern(name()))?;
                }
            }
            FieldKind::Number { min, max, .. } => {
                let finite = [min, max].iter().all(|b| b.is_none_or(f64::is_finite));
                let ordered = match (min, max) {
                    (Some(lo), Some(hi)) => lo <= hi,
                    _ => true,
                };
                if !finite || !ordered {
                    return Err(FormSchemaError::NumberBounds(name()));
                }
            }
            FieldKind::Date {
                not_before,
                not_after,
            } => {
                // `today` bounds are well-formed and cannot be ordered here.
                let resolve = |b: &Option<String>| match b {
                    None => Ok(None),
                    Some(s) if s == TODAY => Ok(None),
                    Some(s) => parse_date(s)
                        .map(Some)
                        .ok_or_else(|| FormSchemaError::DateBounds(name())),
                };
                if let (Some(lo), Some(hi)) = (resolve(not_before)?, resolve(not_after)?) {
                    if lo > hi {
                        return Err(FormSchemaError::DateBounds(name()));
                    }
                }
            }
            FieldKind::Choice { options, .. } => {
                if options.is_empty() {
                    return Err(FormSchemaError::NoOptions(name()));
                }
                for (i, o) in options.iter().enumerate() {
                    let empty = o.value.is_empty()
                        || o.label_zh.trim().is_empty()
                        || o.label_en.trim().is_empty();
                    let repeated = options.iter().take(i).any(|p| p.value == o.value);
                    if empty || repeated {
                        return Err(FormSchemaError::InvalidOption(name()));
                    }
                }
            }
            FieldKind::IdNumber | FieldKind::Phone => {}
            FieldKind::LicenceRef { licence_types } => {
                if licence_types.is_empty() || licence_types.iter().any(|t| t.trim().is_empty()) {
                    return Err(FormSchemaError::NoLicenceTypes(name()));
                }
            }
            FieldKind::Attachment {
                media_types,
                max_bytes,
            } => {
                if media_types.is_empty() || !media_types.iter().all(|m| valid_media_type(m)) {
                    return Err(FormSchemaError::InvalidMediaTypes(name()));
                }
                if *max_bytes == 0 {
                    return Err(FormSchemaError::ZeroMaxBytes(name()));
                }
            }
        }
        Ok(())
    }
}

impl FormSchema {
    /// Checks the schema: version ≥ 1, unique well-formed field names, labels,
    /// and rules that can be met (lengths, bounds, patterns that compile,
    /// choices with distinct options, licence types, media types).
    pub fn check(&self) -> Result<(), FormSchemaError> {
        if self.version == 0 {
            return Err(FormSchemaError::InvalidVersion);
        }
        for (i, field) in self.fields.iter().enumerate() {
            if !is_field_name(&field.name) {
                return Err(FormSchemaError::InvalidFieldName(field.name.clone()));
            }
            if self.fields.iter().take(i).any(|f| f.name == field.name) {
                return Err(FormSchemaError::DuplicateField(field.name.clone()));
            }
            field.check()?;
        }
        Ok(())
    }

    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, min_len: u32, max_len: u32, pattern: Option<&str>) -> FormField {
        FormField {
            name: name.into(),
            label_zh: "名称".into(),
            label_en: "Name".into(),
            kind: FieldKind::Text {
                min_len,
                max_len,
                pattern: pattern.map(Into::into),
            },
            required: true,
            help: None,
        }
    }

    fn schema(fields: Vec<FormField>) -> FormSchema {
        FormSchema { version: 1, fields }
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "2024/02/29",
            "20240229",
            "2024-02-290",
            "２０２４-02-29",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert_eq!(resolve_date_bound(TODAY, today), Some(today));
    }

    #[test]
    fn kinds_serialize_with_a_type_tag() {
        let f = text("company", 1, 10, Some(r"\d+"));
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["kind"]["type"], "text");
        assert_eq!(v["kind"]["pattern"], r"\d+");
        let back: FormField = serde_json::from_value(v).unwrap();
        assert_eq!(back, f);
        let id: FieldKind = serde_json::from_str(r#"{"type":"id_number"}"#).unwrap();
        assert_eq!(id, FieldKind::IdNumber);
        assert_eq!(id.type_name(), "id_number");
    }

    #[test]
    fn schema_errors() {
        let ok = text("a_1", 1, 10, None);
        assert_eq!(schema(vec![ok.clone()]).check(), Ok(()));
        let mut s = schema(vec![ok.clone()]);
        s.version = 0;
        assert_eq!(s.check(), Err(FormSchemaError::InvalidVersion));
        for bad in ["", "A", "1a", "a-b", "名字", &"a".repeat(65)] {
            let f = text(bad, 1, 10, None);
            assert_eq!(
                schema(vec![f]).check(),
                Err(FormSchemaError::InvalidFieldName(bad.into()))
            );
        }
        assert_eq!(
            schema(vec![ok.clone(), ok.clone()]).check(),
            Err(FormSchemaError::DuplicateField("a_1".into()))
        );
        let mut f = ok.clone();
        f.label_en = " ".into();
        assert_eq!(
            schema(vec![f]).check(),
            Err(FormSchemaError::MissingLabel("a_1".into()))
        );
        for (lo, hi) in [(5, 4), (0, 0), (TEXT_MAX_CHARS + 1, TEXT_MAX_CHARS + 2)] {
            assert_eq!(
                schema(vec![text("t", lo, hi, None)]).check(),
                Err(FormSchemaError::TextLengths("t".into()))
            );
        }
        assert_eq!(
            schema(vec![text("t", 1, 5, Some("(unclosed"))]).check(),
            Err(FormSchemaError::InvalidPattern("t".into()))
        );
        // A schema may say more than the cap; the validator caps it.
        assert_eq!(schema(vec![text("t", 1, 50_000, None)]).check(), Ok(()));
    }

    #[test]
    fn kind_rule_errors() {
        let with = |kind: FieldKind| {
            let mut f = text("f", 1, 1, None);
            f.kind = kind;
            schema(vec![f]).check()
        };
        let number = |min, max| FieldKind::Number {
            min,
            max,
            integer: false,
        };
        assert_eq!(with(number(Some(1.0), Some(1.0))), Ok(()));
        for (lo, hi) in [
            (Some(2.0), Some(1.0)),
            (Some(f64::NAN), None),
            (None, Some(f64::INFINITY)),
        ] {
            assert_eq!(
                with(number(lo, hi)),
                Err(FormSchemaError::NumberBounds("f".into()))
            );
        }
        let date = |a: Option<&str>, b: Option<&str>| FieldKind::Date {
            not_before: a.map(Into::into),
            not_after: b.map(Into::into),
        };
        assert_eq!(with(date(Some("2020-01-01"), Some(TODAY))), Ok(()));
        assert_eq!(with(date(Some(TODAY), Some("2020-01-01"))), Ok(()));
        for (a, b) in [
            (Some("2021-01-01"), Some("2020-01-01")),
            (Some("yesterday"), None),
            (None, Some("2020-13-01")),
        ] {
            assert_eq!(
                with(date(a, b)),
                Err(FormSchemaError::DateBounds("f".into()))
            );
        }
        assert_eq!(
            with(FieldKind::Choice {
                options: vec![],
                multiple: false
            }),
            Err(FormSchemaError::NoOptions("f".into()))
        );
        let opt = ChoiceOption::new("a", "甲", "A");
        for options in [
            vec![opt.clone(), opt.clone()],
            vec![ChoiceOption::new("", "甲", "A")],
            vec![ChoiceOption::new("b", "", "B")],
        ] {
            assert_eq!(
                with(FieldKind::Choice {
                    options,
                    multiple: true
                }),
                Err(FormSchemaError::InvalidOption("f".into()))
            );
        }
        assert_eq!(
            with(FieldKind::LicenceRef {
                licence_types: vec![]
            }),
            Err(FormSchemaError::NoLicenceTypes("f".into()))
        );
        let attachment = |media: &[&str], max_bytes| FieldKind::Attachment {
            media_types: media.iter().map(|m| m.to_string()).collect(),
            max_bytes,
        };
        assert_eq!(with(attachment(&["application/pdf", "image/*"], 1)), Ok(()));
        for media in [&[][..], &["pdf"], &["image/"], &["*/*"]] {
            assert_eq!(
                with(attachment(media, 1)),
                Err(FormSchemaError::InvalidMediaTypes("f".into()))
            );
        }
        assert_eq!(
            with(attachment(&["image/png"], 0)),
            Err(FormSchemaError::ZeroMaxBytes("f".into()))
        );
    }
}
