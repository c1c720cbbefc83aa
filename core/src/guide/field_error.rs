//! Why a submitted form value is refused: a stable code per reason, and short
//! zh-CN and en texts an app can show next to the field as they are.
//!
//! The codes are part of the public contract (the phone shows them before
//! queueing, the server returns them in a rejection, apps switch on them):
//! never rename one, only add. The texts never quote the submitted value:
//! form values are personal data (names, identity numbers, phone numbers) and
//! errors end up in logs and queues.

use serde::{Deserialize, Serialize};

/// The `field` of an error about the form as a whole (its version).
pub const WHOLE_FORM: &str = "";

/// The reason a value is refused. Serialized as its [`code`](Self::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    /// A required field has no value (absent, `null`, blank or an empty list).
    Required,
    /// The JSON type of the value does not fit the field's kind.
    WrongType,
    /// Text shorter than `min_len` characters.
    TooShort,
    /// Text longer than `max_len` characters (or the global cap).
    TooLong,
    /// Text does not match the field's pattern (or the pattern is unusable).
    PatternMismatch,
    /// A number given as a string that is not a plain decimal.
    NotANumber,
    /// A fractional number where a whole one is required.
    NotAnInteger,
    /// A number below `min`.
    BelowMinimum,
    /// A number above `max`.
    AboveMaximum,
    /// A date that is not a `YYYY-MM-DD` calendar date.
    InvalidDate,
    /// A date before `not_before`.
    DateTooEarly,
    /// A date after `not_after`.
    DateTooLate,
    /// A value that is not one of the choice's options (or is repeated).
    NotAnOption,
    /// Several options given to a single choice.
    SingleChoiceExpected,
    /// Not a valid resident identity card number.
    InvalidIdNumber,
    /// Not a valid mobile or landline number.
    InvalidPhone,
    /// A licence reference of the wrong shape.
    InvalidLicenceRef,
    /// An attachment reference of the wrong shape.
    InvalidAttachment,
    /// An attachment larger than the field allows.
    AttachmentTooLarge,
    /// An attachment of a media type the field does not accept.
    MediaTypeNotAllowed,
    /// A value for a field the form does not have.
    UnknownField,
    /// The submission was filled against another version of the form.
    SchemaVersionMismatch,
}

impl FieldErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 22] = [
        Self::Required,
        Self::WrongType,
        Self::TooShort,
        Self::TooLong,
        Self::PatternMismatch,
        Self::NotANumber,
        Self::NotAnInteger,
        Self::BelowMinimum,
        Self::AboveMaximum,
        Self::InvalidDate,
        Self::DateTooEarly,
        Self::DateTooLate,
        Self::NotAnOption,
        Self::SingleChoiceExpected,
        Self::InvalidIdNumber,
        Self::InvalidPhone,
        Self::InvalidLicenceRef,
        Self::InvalidAttachment,
        Self::AttachmentTooLarge,
        Self::MediaTypeNotAllowed,
        Self::UnknownField,
        Self::SchemaVersionMismatch,
    ];

    /// The stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::WrongType => "wrong_type",
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::PatternMismatch => "pattern_mismatch",
            Self::NotANumber => "not_a_number",
            Self::NotAnInteger => "not_an_integer",
            Self::BelowMinimum => "below_minimum",
            Self::AboveMaximum => "above_maximum",
            Self::InvalidDate => "invalid_date",
            Self::DateTooEarly => "date_too_early",
            Self::DateTooLate => "date_too_late",
            Self::NotAnOption => "not_an_option",
            Self::SingleChoiceExpected => "single_choice_expected",
            Self::InvalidIdNumber => "invalid_id_number",
            Self::InvalidPhone => "invalid_phone",
            Self::InvalidLicenceRef => "invalid_licence_ref",
            Self::InvalidAttachment => "invalid_attachment",
            Self::AttachmentTooLarge => "attachment_too_large",
            Self::MediaTypeNotAllowed => "media_type_not_allowed",
            Self::UnknownField => "unknown_field",
            Self::SchemaVersionMismatch => "schema_version_mismatch",
        }
    }

    /// The code for a code string.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A short zh-CN text for the resident.
    pub fn zh(self) -> &'static str {
        match self {
            Self::Required => "此项为必填项",
            Self::WrongType => "填写内容的类型不正确",
            Self::TooShort => "内容过短",
            Self::TooLong => "内容过长",
            Self::PatternMismatch => "格式不正确",
            Self::NotANumber => "请填写数字",
            Self::NotAnInteger => "请填写整数",
            Self::BelowMinimum => "数值小于允许的最小值",
            Self::AboveMaximum => "数值大于允许的最大值",
            Self::InvalidDate => "日期无效，请按年-月-日填写",
            Self::DateTooEarly => "日期早于允许的范围",
            Self::DateTooLate => "日期晚于允许的范围",
            Self::NotAnOption => "请从给定选项中选择",
            Self::SingleChoiceExpected => "此项只能选择一项",
            Self::InvalidIdNumber => "居民身份证号码无效，请核对",
            Self::InvalidPhone => "电话号码无效，请填写手机号或带区号的固定电话",
            Self::InvalidLicenceRef => "电子证照数据无效，请重新选择证照",
            Self::InvalidAttachment => "附件无效，请重新上传",
            Self::AttachmentTooLarge => "附件过大",
            Self::MediaTypeNotAllowed => "不支持该附件格式",
            Self::UnknownField => "表单中没有此项",
            Self::SchemaVersionMismatch => "表单已更新，请按新表单重新填写",
        }
    }

    /// A short English text for the resident.
    pub fn en(self) -> &'static str {
        match self {
            Self::Required => "This field is required",
            Self::WrongType => "The value has the wrong type",
            Self::TooShort => "Too short",
            Self::TooLong => "Too long",
            Self::PatternMismatch => "Wrong format",
            Self::NotANumber => "Enter a number",
            Self::NotAnInteger => "Enter a whole number",
            Self::BelowMinimum => "Below the smallest allowed value",
            Self::AboveMaximum => "Above the largest allowed value",
            Self::InvalidDate => "Not a valid date (year-month-day)",
            Self::DateTooEarly => "The date is too early",
            Self::DateTooLate => "The date is too late",
            Self::NotAnOption => "Choose one of the options",
            Self::SingleChoiceExpected => "Choose only one option",
            Self::InvalidIdNumber => "Not a valid identity card number",
            Self::InvalidPhone => "Not a valid mobile or landline number (with area code)",
            Self::InvalidLicenceRef => "The electronic licence is not usable; choose it again",
            Self::InvalidAttachment => "The attachment is not usable; upload it again",
            Self::AttachmentTooLarge => "The attachment is too large",
            Self::MediaTypeNotAllowed => "This file type is not accepted",
            Self::UnknownField => "The form has no such field",
            Self::SchemaVersionMismatch => "The form has changed; fill in the new version",
        }
    }
}

/// One refused value: which field, and why. Serialized as
/// `{"field": "...", "code": "..."}`; [`WHOLE_FORM`] as `field` means the
/// form as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name (for [`FieldErrorCode::UnknownField`], the submitted
    /// key, cut to 64 characters).
    pub field: String,
    /// Why.
    pub code: FieldErrorCode,
}

impl FieldError {
    /// An error about a field.
    pub fn new(field: &str, code: FieldErrorCode) -> Self {
        Self {
            field: field.into(),
            code,
        }
    }

    /// The short zh-CN text of its code.
    pub fn zh(&self) -> &'static str {
        self.code.zh()
    }

    /// The short English text of its code.
    pub fn en(&self) -> &'static str {
        self.code.en()
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(self.code.code())
        } else {
            write!(f, "{}: {}", self.field, self.code.code())
        }
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_match_serde() {
        let mut seen = std::collections::HashSet::new();
        for c in FieldErrorCode::ALL {
            assert!(seen.insert(c.code()), "{}", c.code());
            assert_eq!(serde_json::to_value(c).unwrap(), c.code());
            assert_eq!(FieldErrorCode::from_code(c.code()), Some(c));
            assert!(!c.zh().is_empty() && !c.en().is_empty());
        }
        assert_eq!(FieldErrorCode::from_code("nope"), None);
    }

    #[test]
    fn error_json_shape() {
        let e = FieldError::new("phone", FieldErrorCode::InvalidPhone);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"field":"phone","code":"invalid_phone"}"#
        );
        assert_eq!(e.to_string(), "phone: invalid_phone");
    }
}
