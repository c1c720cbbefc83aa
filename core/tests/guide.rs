//! Service guides: identity numbers, the shared form validator (one test per
//! error code), guide consistency, the 1,135-guide demo catalog built from
//! the Guang'an fixture, checksums, and property tests that the validator
//! never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;
use zhangban_core::credential::demo::{CIVIL_AFFAIRS, MARKET_REGULATION, PUBLIC_SECURITY, vct_for};
use zhangban_core::guide::form::TODAY;
use zhangban_core::guide::id_number::check_character;
use zhangban_core::guide::*;

const FIXTURE: &str = include_str!("../../server/data/guang-an-service-items.json");
const UPDATED_AT: i64 = 1_780_000_000;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
}

fn catalog() -> &'static [Guide] {
    static CATALOG: OnceLock<Vec<Guide>> = OnceLock::new();
    CATALOG.get_or_init(|| demo_catalog(FIXTURE, UPDATED_AT).unwrap())
}

fn guide_named(name: &str) -> &'static Guide {
    catalog()
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no guide named {name}"))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Property-test settings: no regression files in the source tree (failures
/// print their input).
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

// ---------------------------------------------------------------- id numbers

/// 17 digits and their check character.
fn with_check(first17: &str) -> String {
    format!("{first17}{}", check_character(first17).unwrap())
}

#[test]
fn id_numbers_valid() {
    for (number, birth) in [
        // The GB 11643-1999 sample, check character X.
        ("11010519491231002X", (1949, 12, 31)),
        ("51082319851116001X", (1985, 11, 16)),
        ("511602199003071232", (1990, 3, 7)),
        // 29 February of a leap year.
        ("511602200002290041", (2000, 2, 29)),
    ] {
        let (y, m, d) = birth;
        assert_eq!(
            validate_id_number(number, today()),
            Ok(NaiveDate::from_ymd_opt(y, m, d).unwrap()),
            "{number}"
        );
    }
    // Born today is fine.
    assert!(validate_id_number(&with_check("51160220260601001"), today()).is_ok());
}

#[test]
fn id_numbers_invalid() {
    let cases: &[(&str, IdNumberError)] = &[
        // Wrong check characters.
        ("110105194912310021", IdNumberError::CheckMismatch),
        ("511602199003071233", IdNumberError::CheckMismatch),
        ("51082319851116001", IdNumberError::WrongLength),
        // Lower-case x: refused by decision (one spelling per identity).
        ("11010519491231002x", IdNumberError::InvalidCharacter),
        // Wrong lengths: 17, 19, empty, a first-generation 15-digit number.
        ("11010519491231002", IdNumberError::WrongLength),
        ("11010519491231002X0", IdNumberError::WrongLength),
        ("", IdNumberError::WrongLength),
        ("110105491231002", IdNumberError::WrongLength),
        // Other characters.
        ("1101051949123100XX", IdNumberError::InvalidCharacter),
        ("11010519491231 02X", IdNumberError::InvalidCharacter),
        (
            "１１０１０５１９４９１２３１００２Ｘ",
            IdNumberError::InvalidCharacter,
        ),
    ];
    for (number, error) in cases {
        assert_eq!(validate_id_number(number, today()), Err(*error), "{number}");
    }
    // Impossible birth dates, with a correct check character each.
    for body in [
        "11010519490231002", // 31 February
        "11010520010229002", // 29 February of a common year
        "11010519491301002", // month 13
        "11010519491200002", // day 0
        "44052418800101001", // 1880: before 1900
    ] {
        assert_eq!(
            validate_id_number(&with_check(body), today()),
            Err(IdNumberError::InvalidBirthDate),
            "{body}"
        );
    }
    assert_eq!(
        validate_id_number(&with_check("51160220260602001"), today()),
        Err(IdNumberError::BirthDateInFuture)
    );
    // Region codes: 00 and 99 are no province.
    for body in ["00010519491231002", "99010519491231002"] {
        assert_eq!(
            validate_id_number(&with_check(body), today()),
            Err(IdNumberError::InvalidRegion)
        );
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Born 1920-01-01 .. 2024-01-14 (before `today`).
    #[test]
    fn id_number_check_character_decides(
        region in prop::sample::select(vec!["110105", "511602", "440305", "650102", "810000"]),
        days in 0i64..38_000,
        seq in 0u32..1000,
        wrong in 0u32..10,
    ) {
        let birth = NaiveDate::from_ymd_opt(1920, 1, 1).unwrap() + chrono::Duration::days(days);
        let body = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
        let number = with_check(&body);
        prop_assert_eq!(validate_id_number(&number, today()), Ok(birth));
        let right = check_character(&body).unwrap();
        let other = char::from_digit(wrong, 10).unwrap();
        if other != right {
            prop_assert_eq!(
                validate_id_number(&format!("{body}{other}"), today()),
                Err(IdNumberError::CheckMismatch)
            );
        }
    }
}

// ---------------------------------------------------------------- validator

fn field(name: &str, kind: FieldKind, required: bool) -> FormField {
    FormField {
        name: name.into(),
        label_zh: "标签".into(),
        label_en: "Label".into(),
        kind,
        required,
        help: None,
    }
}

/// One field of every kind; only `name` is required.
fn all_kinds() -> FormSchema {
    FormSchema {
        version: 3,
        fields: vec![
            field(
                "name",
                FieldKind::Text {
                    min_len: 2,
                    max_len: 10,
                    pattern: None,
                },
                true,
            ),
            field(
                "code",
                FieldKind::Text {
                    min_len: 0,
                    max_len: 20,
                    pattern: Some(r"[A-Z]{3}\d{3}".into()),
                },
                false,
            ),
            field(
                "count",
                FieldKind::Number {
                    min: Some(1.0),
                    max: Some(10.0),
                    integer: true,
                },
                false,
            ),
            field(
                "amount",
                FieldKind::Number {
                    min: Some(0.0),
                    max: Some(1000.0),
                    integer: false,
                },
                false,
            ),
            field(
                "when",
                FieldKind::Date {
                    not_before: Some("2020-01-01".into()),
                    not_after: Some(TODAY.into()),
                },
                false,
            ),
            field(
                "colour",
                FieldKind::Choice {
                    options: vec![
                        ChoiceOption::new("red", "红", "Red"),
                        ChoiceOption::new("green", "绿", "Green"),
                    ],
                    multiple: false,
                },
                false,
            ),
            field(
                "tags",
                FieldKind::Choice {
                    options: vec![
                        ChoiceOption::new("a", "甲", "A"),
                        ChoiceOption::new("b", "乙", "B"),
                        ChoiceOption::new("c", "丙", "C"),
                    ],
                    multiple: true,
                },
                false,
            ),
            field("id", FieldKind::IdNumber, false),
            field("phone", FieldKind::Phone, false),
            field(
                "licence",
                FieldKind::LicenceRef {
                    licence_types: vec![vct_for(MARKET_REGULATION.type_code)],
                },
                false,
            ),
            field(
                "file",
                FieldKind::Attachment {
                    media_types: vec!["application/pdf".into(), "image/*".into()],
                    max_bytes: 1000,
                },
                false,
            ),
        ],
    }
}

fn attachment_value() -> Value {
    json!({"sha256": "0f".repeat(32), "size": 1000, "media_type": "image/png", "name": "证明.png"})
}

/// A submission with every field valid.
fn full_values() -> Value {
    json!({
        "name": "张三丰",
        "code": "ABC123",
        "count": 10,
        "amount": "999.99",
        "when": "2026-06-01",
        "colour": "green",
        "tags": ["a", "c"],
        "id": "11010519491231002X",
        "phone": "0826-2345678",
        "licence": {"presentation": "eyJhbGciOiJFZERTQSJ9.e30.c2ln~WyJzIiwibiIsInYiXQ~"},
        "file": attachment_value(),
    })
}

fn check(values: Value) -> Result<(), Vec<FieldError>> {
    validate_submission(&all_kinds(), &obj(values), today())
}

fn one(field: &str, code: FieldErrorCode) -> Result<(), Vec<FieldError>> {
    Err(vec![FieldError::new(field, code)])
}

#[test]
fn the_test_schema_is_valid_and_a_full_submission_passes() {
    assert_eq!(all_kinds().check(), Ok(()));
    assert_eq!(check(full_values()), Ok(()));
    assert_eq!(check(json!({"name": "李四"})), Ok(()));
}

/// Each code's triggering case: a patch over the full submission (`null`
/// removes a member), the field reported, the code.
fn code_case(code: FieldErrorCode) -> (Value, &'static str) {
    use FieldErrorCode as C;
    match code {
        C::Required => (json!({"name": null}), "name"),
        C::WrongType => (json!({"name": 12}), "name"),
        C::TooShort => (json!({"name": "张"}), "name"),
        C::TooLong => (json!({"name": "一二三四五六七八九十百"}), "name"),
        C::PatternMismatch => (json!({"code": "AB1234"}), "code"),
        C::NotANumber => (json!({"count": "three"}), "count"),
        C::NotAnInteger => (json!({"count": 2.5}), "count"),
        C::BelowMinimum => (json!({"count": 0}), "count"),
        C::AboveMaximum => (json!({"amount": 1000.01}), "amount"),
        C::InvalidDate => (json!({"when": "2025-02-29"}), "when"),
        C::DateTooEarly => (json!({"when": "2019-12-31"}), "when"),
        C::DateTooLate => (json!({"when": "2026-06-02"}), "when"),
        C::NotAnOption => (json!({"colour": "blue"}), "colour"),
        C::SingleChoiceExpected => (json!({"colour": ["red"]}), "colour"),
        C::InvalidIdNumber => (json!({"id": "110105194912310021"}), "id"),
        C::InvalidPhone => (json!({"phone": "0826-1234567"}), "phone"),
        C::InvalidLicenceRef => (json!({"licence": {"presentation": ""}}), "licence"),
        C::InvalidAttachment => (
            json!({"file": {"sha256": "0F".repeat(32), "size": 1, "media_type": "image/png", "name": "a.png"}}),
            "file",
        ),
        C::AttachmentTooLarge => (
            json!({"file": {"sha256": "0f".repeat(32), "size": 1001, "media_type": "image/png", "name": "a.png"}}),
            "file",
        ),
        C::MediaTypeNotAllowed => (
            json!({"file": {"sha256": "0f".repeat(32), "size": 10, "media_type": "application/zip", "name": "a.zip"}}),
            "file",
        ),
        C::UnknownField => (json!({"nickname": "小张"}), "nickname"),
        // Not a value problem: see `validate_form_version`.
        C::SchemaVersionMismatch => (json!({}), WHOLE_FORM),
    }
}

fn patched(patch: &Value) -> Value {
    let mut v = obj(full_values());
    for (k, p) in obj(patch.clone()) {
        if p.is_null() {
            v.remove(&k);
        } else {
            v.insert(k, p);
        }
    }
    Value::Object(v)
}

fn run_code_case(code: FieldErrorCode) {
    let (patch, field) = code_case(code);
    let result = if code == FieldErrorCode::SchemaVersionMismatch {
        validate_versioned_submission(&all_kinds(), 2, &obj(full_values()), today())
    } else {
        check(patched(&patch))
    };
    assert_eq!(result, one(field, code), "{}", code.code());
    let error = result.unwrap_err().remove(0);
    // The texts never carry the value (nor does the code).
    for leaf in string_leaves(&patch) {
        for text in [error.zh(), error.en(), error.code.code()] {
            assert!(!text.contains(&leaf), "{} quotes {leaf}", code.code());
        }
    }
}

fn string_leaves(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a.iter().flat_map(string_leaves).collect(),
        Value::Object(m) => m.values().flat_map(string_leaves).collect(),
        _ => vec![],
    }
}

macro_rules! code_tests {
    ($($test:ident => $code:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_code_case(FieldErrorCode::$code);
            }
        )*

        /// Every code has its test above.
        #[test]
        fn every_code_has_a_test() {
            let tested = [$(FieldErrorCode::$code),*];
            for code in FieldErrorCode::ALL {
                assert!(tested.contains(&code), "{} has no test", code.code());
            }
            assert_eq!(tested.len(), FieldErrorCode::ALL.len());
        }
    };
}

code_tests! {
    code_required => Required,
    code_wrong_type => WrongType,
    code_too_short => TooShort,
    code_too_long => TooLong,
    code_pattern_mismatch => PatternMismatch,
    code_not_a_number => NotANumber,
    code_not_an_integer => NotAnInteger,
    code_below_minimum => BelowMinimum,
    code_above_maximum => AboveMaximum,
    code_invalid_date => InvalidDate,
    code_date_too_early => DateTooEarly,
    code_date_too_late => DateTooLate,
    code_not_an_option => NotAnOption,
    code_single_choice_expected => SingleChoiceExpected,
    code_invalid_id_number => InvalidIdNumber,
    code_invalid_phone => InvalidPhone,
    code_invalid_licence_ref => InvalidLicenceRef,
    code_invalid_attachment => InvalidAttachment,
    code_attachment_too_large => AttachmentTooLarge,
    code_media_type_not_allowed => MediaTypeNotAllowed,
    code_unknown_field => UnknownField,
    code_schema_version_mismatch => SchemaVersionMismatch,
}

#[test]
fn all_errors_are_reported_in_schema_order_then_unknown_keys() {
    let values = json!({
        "zz_unknown": 1,
        "phone": "12345",
        "name": "张",
        "id": "11010519491231002x",
        "tags": ["a", "a"],
        "aa_unknown": true,
        "file": "not an object",
    });
    use FieldErrorCode as C;
    let expected: Vec<FieldError> = [
        ("name", C::TooShort),
        ("tags", C::NotAnOption),
        ("id", C::InvalidIdNumber),
        ("phone", C::InvalidPhone),
        ("file", C::WrongType),
        ("aa_unknown", C::UnknownField),
        ("zz_unknown", C::UnknownField),
    ]
    .into_iter()
    .map(|(f, c)| FieldError::new(f, c))
    .collect();
    assert_eq!(check(values), Err(expected));
}

#[test]
fn required_and_optional_absence() {
    use FieldErrorCode as C;
    // Absent, null, blank and [] all count as absent.
    for name in [
        None,
        Some(json!(null)),
        Some(json!("")),
        Some(json!("  \t")),
    ] {
        let mut v = Map::new();
        if let Some(n) = name {
            v.insert("name".into(), n);
        }
        assert_eq!(
            validate_submission(&all_kinds(), &v, today()),
            one("name", C::Required)
        );
    }
    let optional_absent = json!({
        "name": "王五", "code": "", "count": null, "tags": [], "file": null, "when": " ",
    });
    assert_eq!(check(optional_absent), Ok(()));
    // A required multiple choice given as [] is missing.
    let mut schema = all_kinds();
    schema.fields[6].required = true;
    assert_eq!(
        validate_submission(&schema, &obj(json!({"name": "王五", "tags": []})), today()),
        one("tags", C::Required)
    );
}

#[test]
fn kind_details() {
    use FieldErrorCode as C;
    let ok = |patch: Value| assert_eq!(check(patched(&patch)), Ok(()), "{patch}");
    let bad = |patch: Value, f: &str, c: FieldErrorCode| {
        assert_eq!(check(patched(&patch)), one(f, c), "{patch}");
    };
    // Lengths count characters, not bytes.
    ok(json!({"name": "一二三四五六七八九十"}));
    // Numbers: JSON numbers or plain decimal strings.
    ok(json!({"count": "7", "amount": 0}));
    bad(json!({"count": true}), "count", C::WrongType);
    bad(json!({"amount": "1e2"}), "amount", C::NotANumber);
    bad(json!({"amount": "NaN"}), "amount", C::NotANumber);
    bad(json!({"count": 1e300}), "count", C::AboveMaximum);
    bad(json!({"count": "5.5"}), "count", C::NotAnInteger);
    // Dates: strict form.
    bad(json!({"when": "2024-1-05"}), "when", C::InvalidDate);
    bad(json!({"when": 20240105}), "when", C::WrongType);
    // Choices.
    bad(json!({"tags": "a"}), "tags", C::WrongType);
    bad(json!({"tags": ["a", 1]}), "tags", C::WrongType);
    bad(json!({"tags": ["d"]}), "tags", C::NotAnOption);
    // Licence refs: object of exactly one string member, SD-JWT characters.
    bad(json!({"licence": "eyJ"}), "licence", C::WrongType);
    bad(
        json!({"licence": {"presentation": "a~b", "x": 1}}),
        "licence",
        C::InvalidLicenceRef,
    );
    bad(
        json!({"licence": {"presentation": "a b"}}),
        "licence",
        C::InvalidLicenceRef,
    );
    bad(
        json!({"licence": {"presentation": "a".repeat(64 * 1024 + 1)}}),
        "licence",
        C::InvalidLicenceRef,
    );
    ok(json!({"licence": {"presentation": "a".repeat(64 * 1024)}}));
    // Attachments: wildcard media types, case-insensitive.
    let mut a = attachment_value();
    a["media_type"] = json!("IMAGE/JPEG");
    ok(json!({ "file": a }));
    let mut a = attachment_value();
    a["size"] = json!(-1);
    bad(json!({ "file": a }), "file", C::InvalidAttachment);
    let mut a = attachment_value();
    a.as_object_mut().unwrap().remove("name");
    bad(json!({ "file": a }), "file", C::InvalidAttachment);
}

#[test]
fn text_is_capped_whatever_the_schema_says() {
    let schema = FormSchema {
        version: 1,
        fields: vec![field(
            "essay",
            FieldKind::Text {
                min_len: 1,
                max_len: 1_000_000,
                pattern: None,
            },
            true,
        )],
    };
    let essay = |n: usize| obj(json!({ "essay": "字".repeat(n) }));
    assert_eq!(
        validate_submission(&schema, &essay(10_000), today()),
        Ok(())
    );
    assert_eq!(
        validate_submission(&schema, &essay(10_001), today()),
        one("essay", FieldErrorCode::TooLong)
    );
    assert_eq!(
        validate_submission(&schema, &essay(2_000_000), today()),
        one("essay", FieldErrorCode::TooLong)
    );
}

#[test]
fn an_invalid_pattern_is_a_guide_error_and_a_mismatch_at_submission() {
    let mut guide = guide_named("公司设立登记").clone();
    let field = guide
        .form
        .fields
        .iter_mut()
        .find(|f| f.name == "credit_code")
        .unwrap();
    field.kind = FieldKind::Text {
        min_len: 0,
        max_len: 18,
        pattern: Some("([0-9".into()),
    };
    assert_eq!(
        guide.validate(),
        Err(GuideError::Form(FormSchemaError::InvalidPattern(
            "credit_code".into()
        )))
    );
    let values = obj(json!({"credit_code": "91511602MA6ABCDE1X"}));
    let errors = validate_submission(&guide.form, &values, today()).unwrap_err();
    assert!(errors.contains(&FieldError::new(
        "credit_code",
        FieldErrorCode::PatternMismatch
    )));
}

#[test]
fn unknown_keys_are_cut_in_errors() {
    let long = "k".repeat(1000);
    let errors = check(json!({"name": "张三", long.clone(): 1})).unwrap_err();
    assert_eq!(
        errors,
        vec![FieldError::new(
            &"k".repeat(64),
            FieldErrorCode::UnknownField
        )]
    );
}

#[test]
fn form_versions() {
    let schema = all_kinds();
    assert_eq!(validate_form_version(&schema, 3), Ok(()));
    assert_eq!(
        validate_form_version(&schema, 4),
        Err(FieldError::new(
            WHOLE_FORM,
            FieldErrorCode::SchemaVersionMismatch
        ))
    );
    // A version mismatch is judged alone: values of another version are not.
    assert_eq!(
        validate_versioned_submission(&schema, 1, &obj(json!({"bogus": 1})), today()),
        one(WHOLE_FORM, FieldErrorCode::SchemaVersionMismatch)
    );
    assert_eq!(
        validate_versioned_submission(&schema, 3, &obj(full_values()), today()),
        Ok(())
    );
}

#[test]
fn error_texts_never_quote_personal_data() {
    // Personal data in every value kind, all invalid in some way.
    let values = json!({
        "name": "欧阳娜娜娜娜娜娜娜娜娜",
        "id": "51160219900307123X",
        "phone": "1380013800",
        "code": "张三丰123",
        "when": "1990-03-07x",
        "unknown": "13800138000",
    });
    let errors = check(values.clone()).unwrap_err();
    assert_eq!(errors.len(), 6);
    let leaves = string_leaves(&values);
    for e in &errors {
        let json = serde_json::to_string(&e.code).unwrap();
        for text in [e.zh(), e.en(), e.code.code(), json.as_str(), &e.to_string()] {
            for leaf in &leaves {
                assert!(!text.contains(leaf.as_str()), "{text} quotes {leaf}");
            }
        }
    }
}

// ---------------------------------------------------------------- guides

#[test]
fn guide_consistency_errors() {
    let base = guide_named("公司设立登记").clone();
    assert_eq!(base.validate(), Ok(()));
    let broken = |f: &dyn Fn(&mut Guide)| {
        let mut g = base.clone();
        f(&mut g);
        g.validate()
    };
    assert_eq!(
        broken(&|g| g.name = " ".into()),
        Err(GuideError::Empty("name"))
    );
    assert_eq!(
        broken(&|g| {
            g.id = String::new();
        }),
        Err(GuideError::Empty("id"))
    );
    assert_eq!(
        broken(&|g| g.id.push('x')),
        Err(GuideError::IdNotImplementationCode)
    );
    assert_eq!(
        broken(&|g| g.basic_code = "999".into()),
        Err(GuideError::CodesDisagree)
    );
    assert_eq!(
        broken(&|g| {
            g.online_depth = OnlineDepth::IV;
            g.visits_required = 1;
        }),
        Err(GuideError::VisitsForFullyOnline)
    );
    assert_eq!(
        broken(&|g| {
            g.online_depth = OnlineDepth::IV;
            g.visits_required = 0;
        }),
        Ok(())
    );
    assert_eq!(
        broken(&|g| g.promised_limit_days = g.statutory_limit_days + 1),
        Err(GuideError::PromiseExceedsStatute)
    );
    assert_eq!(
        broken(&|g| g.materials[1].copies = 0),
        Err(GuideError::Material(1))
    );
    assert_eq!(
        broken(&|g| g.fees.push(Fee {
            name: "工本费".into(),
            amount_yuan: "10.005".into(),
            basis: String::new(),
        })),
        Err(GuideError::Fee(0))
    );
    assert_eq!(
        broken(&|g| g.topics = vec!["户籍".into(), "户籍".into()]),
        Err(GuideError::Topic(1))
    );
    assert_eq!(
        broken(&|g| g.form.fields.push(g.form.fields[0].clone())),
        Err(GuideError::Form(FormSchemaError::DuplicateField(
            "applicant_name".into()
        )))
    );
}

#[test]
fn the_fixture_copy_is_the_shared_fixture_shape() {
    let items = load_fixture(FIXTURE).unwrap();
    assert_eq!(items.len(), 1135);
    let mut by_type: BTreeMap<u8, usize> = BTreeMap::new();
    for item in &items {
        *by_type.entry(item.task_type.task_type()).or_default() += 1;
    }
    let expected: BTreeMap<u8, usize> = [
        (1, 536),
        (20, 348),
        (10, 182),
        (7, 50),
        (5, 9),
        (9, 8),
        (8, 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_type, expected);
}

#[test]
fn the_catalog_has_1135_valid_guides_with_unique_ids() {
    let guides = catalog();
    assert_eq!(guides.len(), 1135);
    let ids: HashSet<&str> = guides.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids.len(), 1135);
    for g in guides {
        assert_eq!(g.validate(), Ok(()), "{}", g.id);
        assert_eq!(g.form.check(), Ok(()), "{}", g.id);
        assert!(g.implementation_code.starts_with(&g.basic_code), "{}", g.id);
        assert!(
            !g.basic_code.is_empty() && !g.legal_basis.is_empty(),
            "{}",
            g.id
        );
        assert!(!g.materials.is_empty() && !g.process.is_empty(), "{}", g.id);
        assert!(!g.faq.is_empty() && !g.locations.is_empty(), "{}", g.id);
        assert!(is_valid_phone(&g.contact_phone), "{}", g.id);
        assert_eq!((g.version, g.updated_at), (1, UPDATED_AT));
        for name in ["applicant_name", "applicant_id_number", "applicant_phone"] {
            assert!(g.form.field(name).is_some(), "{} lacks {name}", g.id);
        }
    }
    let with_topics = guides.iter().filter(|g| !g.topics.is_empty()).count();
    assert!(
        with_topics * 100 >= guides.len() * 80,
        "only {with_topics} guides have topics"
    );
}

#[test]
fn catalog_plausibility_by_item_type() {
    let guides = catalog();
    let of = |t: ItemType| guides.iter().filter(move |g| g.item_type == t);
    let public: Vec<_> = of(ItemType::PublicService).collect();
    let fully_online = public
        .iter()
        .filter(|g| g.online_depth == OnlineDepth::IV)
        .count();
    assert!(fully_online * 100 >= public.len() * 70, "{fully_online}");
    for g in &public {
        if g.online_depth == OnlineDepth::IV {
            assert_eq!(g.visits_required, 0);
        }
    }
    for g in of(ItemType::AdministrativeLicensing) {
        assert!(
            matches!(g.online_depth, OnlineDepth::II | OnlineDepth::III),
            "{}",
            g.id
        );
        assert_eq!(g.visits_required, 1);
        assert!(g.promised_limit_days < g.statutory_limit_days, "{}", g.id);
        assert!(g.form.field("supporting_documents").is_some());
    }
    let free = guides.iter().filter(|g| g.fees.is_empty()).count();
    assert!(free * 100 >= guides.len() * 95, "{free}");
    // Licences that replace paper proofs appear in a fair number of guides.
    let with_licence = guides
        .iter()
        .filter(|g| !g.licence_types().is_empty())
        .count();
    assert!(with_licence >= 100, "{with_licence}");
}

fn has_licence_material<'a>(g: &'a Guide, type_code: &str) -> Option<&'a Material> {
    let vct = vct_for(type_code);
    g.materials.iter().find(|m| m.licence_types.contains(&vct))
}

#[test]
fn catalog_spot_checks() {
    for g in catalog().iter().filter(|g| g.name.contains("户口")) {
        assert!(g.topics.iter().any(|t| t == "户籍"), "{}", g.name);
    }
    let migration = guide_named("户口迁移审批");
    assert_eq!(migration.service_object, ServiceObject::NaturalPerson);
    assert!(has_licence_material(migration, PUBLIC_SECURITY.type_code).is_some());
    assert!(migration.form.field("residence_permit").is_some());
    assert!(
        migration
            .legal_basis
            .iter()
            .any(|l| l.contains("户口登记条例"))
    );

    // Founding a company: it has no business licence yet; investors may.
    let founding = guide_named("公司设立登记");
    assert!(founding.topics.iter().any(|t| t == "企业开办"));
    let licence = has_licence_material(founding, MARKET_REGULATION.type_code).unwrap();
    assert!(!licence.required);
    assert!(licence.name.starts_with("投资人主体资格证明"));
    assert!(!founding.materials.iter().any(|m| m.name == "营业执照"));
    assert!(founding.form.field("credit_code").is_some());
    assert!(
        guide_named("燃气经营许可证变更")
            .materials
            .iter()
            .any(|m| m.name == "营业执照" && m.required)
    );

    let divorce = guide_named("离婚登记预约");
    assert!(divorce.topics.iter().any(|t| t == "民政"));
    assert!(has_licence_material(divorce, CIVIL_AFFAIRS.type_code).is_some());
    assert!(divorce.form.field("marriage_certificate").is_some());
    assert!(
        guide_named("中国内地公民婚姻登记")
            .topics
            .iter()
            .any(|t| t == "民政")
    );

    for (name, topic) in [
        ("教师资格认定", "教育"),
        ("学前教育、义务教育阶段入学办理", "教育"),
        ("医保电子凭证申领", "医疗"),
        ("失业登记", "就业"),
        ("企业社会保险登记", "社保"),
        ("巡游出租汽车经营许可注销", "交通"),
        ("代开增值税普通发票（县级行使）", "税务"),
        ("乡村建设规划许可证核发", "不动产"),
    ] {
        assert!(
            guide_named(name).topics.iter().any(|t| t == topic),
            "{name}: {:?}",
            guide_named(name).topics
        );
    }

    // Information services are done on the spot, fully online.
    let query = guide_named("学生资助政策咨询");
    assert_eq!(query.item_type, ItemType::PublicService);
    assert_eq!(
        (
            query.online_depth,
            query.visits_required,
            query.promised_limit_days
        ),
        (OnlineDepth::IV, 0, 0)
    );

    // The basic code of an irregular implementation code.
    let g = guide_named("中职和本专科建档立卡特别资助项目");
    assert_eq!(g.basic_code, "G-000007-001");
    assert_eq!(g.item_type, ItemType::AdministrativePayment);
    assert_eq!(
        guide_named("适龄儿童、少年因身体状况需要延缓入学或者休学审批").basic_code,
        "511A0138000000"
    );
}

#[test]
fn checksums_are_stable_and_change_with_any_field() {
    let again = demo_catalog(FIXTURE, UPDATED_AT).unwrap();
    let first: Vec<String> = catalog().iter().map(Guide::checksum).collect();
    let second: Vec<String> = again.iter().map(Guide::checksum).collect();
    assert_eq!(first, second);
    assert!(first.iter().all(|c| {
        c.len() == 64
            && c.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }));
    let distinct: HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), first.len());

    let g = &catalog()[0];
    // A JSON round trip keeps the checksum (phones re-serialize what they sync).
    let json = serde_json::to_string(g).unwrap();
    let back: Guide = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, g);
    assert_eq!(back.checksum(), g.checksum());

    let edits: [fn(&mut Guide); 7] = [
        |g| g.name.push('。'),
        |g| g.visits_required ^= 1,
        |g| g.updated_at += 1,
        |g| g.version += 1,
        |g| g.form.fields[0].label_en.push(' '),
        |g| g.form.version += 1,
        |g| g.topics.push("测试".into()),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut h = g.clone();
        edit(&mut h);
        assert_ne!(&h, g, "edit {i}");
        assert_ne!(h.checksum(), g.checksum(), "edit {i}");
    }
}

#[test]
fn guide_json_uses_the_documented_names() {
    let v = serde_json::to_value(guide_named("公司设立登记")).unwrap();
    for key in [
        "id",
        "name",
        "basic_code",
        "implementation_code",
        "item_type",
        "department",
        "department_code",
        "area_code",
        "main_item",
        "legal_basis",
        "service_object",
        "acceptance_conditions",
        "materials",
        "process",
        "statutory_limit_days",
        "promised_limit_days",
        "fees",
        "online_depth",
        "visits_required",
        "locations",
        "contact_phone",
        "complaint_phone",
        "faq",
        "topics",
        "form",
        "version",
        "updated_at",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["item_type"], "administrative_licensing");
    assert_eq!(v["main_item"], "企业设立、变更、注销登记");
    assert_eq!(v["materials"][0]["form"], "electronic");
    assert!(matches!(v["online_depth"].as_str(), Some("II" | "III")));
    assert_eq!(v["form"]["fields"][1]["kind"]["type"], "id_number");
}

/// A valid value for a field, as a phone would submit it.
fn sample_value(field: &FormField) -> Value {
    match &field.kind {
        FieldKind::Text {
            min_len, pattern, ..
        } => match pattern.as_deref() {
            Some(p) if p.contains("A-HJ-NP") => json!("91511602MA6ABCDE1X"),
            Some(p) if p.contains(r"\d{16,19}") => json!("6228480000000000000"),
            Some(other) => panic!("no sample for pattern {other}"),
            None => json!("说".repeat((*min_len).max(2) as usize)),
        },
        FieldKind::Number { min, .. } => json!(min.unwrap_or(0.0).max(1.0)),
        FieldKind::Date { .. } => json!("2026-06-01"),
        FieldKind::Choice { options, multiple } => {
            if *multiple {
                json!([options[0].value])
            } else {
                json!(options[0].value)
            }
        }
        FieldKind::IdNumber => json!("11010519491231002X"),
        FieldKind::Phone => json!("13800138000"),
        FieldKind::LicenceRef { .. } => json!({"presentation": "eyJ.e30.c2ln~"}),
        FieldKind::Attachment { media_types, .. } => json!({
            "sha256": "ab".repeat(32), "size": 2048, "media_type": media_types[0], "name": "scan.pdf"
        }),
    }
}

#[test]
fn every_catalog_form_can_be_filled() {
    for g in catalog() {
        let full: Map<String, Value> = g
            .form
            .fields
            .iter()
            .map(|f| (f.name.clone(), sample_value(f)))
            .collect();
        assert_eq!(
            validate_versioned_submission(&g.form, g.form.version, &full, today()),
            Ok(()),
            "{}",
            g.id
        );
        let minimal: Map<String, Value> = g
            .form
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| (f.name.clone(), sample_value(f)))
            .collect();
        assert_eq!(
            validate_submission(&g.form, &minimal, today()),
            Ok(()),
            "{}",
            g.id
        );
        let required = g.form.fields.iter().filter(|f| f.required).count();
        let errors = validate_submission(&g.form, &Map::new(), today()).unwrap_err();
        assert_eq!(errors.len(), required, "{}", g.id);
        assert!(errors.iter().all(|e| e.code == FieldErrorCode::Required));
    }
}

// ---------------------------------------------------------------- properties

/// One guide of each item type in the catalog, plus the all-kinds schema.
fn schemas() -> &'static [FormSchema] {
    static SCHEMAS: OnceLock<Vec<FormSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut seen = HashSet::new();
        let mut out: Vec<FormSchema> = catalog()
            .iter()
            .filter(|g| seen.insert(g.item_type) || g.form.field("business_licence").is_some())
            .take(40)
            .map(|g| g.form.clone())
            .collect();
        out.push(all_kinds());
        out
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[0-9Xx]{15,19}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Value::String),
        "(0[0-9]{2,3}-?)?[0-9]{7,11}".prop_map(Value::String),
        "[a-f0-9]{64}".prop_map(Value::String),
        "-?[0-9]{0,30}(\\.[0-9]{0,10})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        let key = prop_oneof![
            Just("presentation".to_string()),
            Just("sha256".to_string()),
            Just("size".to_string()),
            Just("media_type".to_string()),
            Just("name".to_string()),
            "[a-z_]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_submission() -> impl Strategy<Value = (usize, Map<String, Value>)> {
    let n = schemas().len();
    (0..n).prop_flat_map(|i| {
        let mut names: Vec<String> = schemas()[i].fields.iter().map(|f| f.name.clone()).collect();
        names.push("extra".into());
        let key = prop_oneof![4 => prop::sample::select(names), 1 => "\\PC{0,12}"];
        prop::collection::vec((key, arb_json()), 0..14)
            .prop_map(move |kv| (i, kv.into_iter().collect::<Map<String, Value>>()))
    })
}

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary JSON never panics the validator; its verdict is
    /// deterministic, names only real fields or submitted keys, at most once
    /// each, and an acceptance implies every required field is present.
    #[test]
    fn validator_never_panics((i, values) in arb_submission(), day in 0i64..60_000) {
        let schema = &schemas()[i];
        let today = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(day);
        let first = validate_submission(schema, &values, today);
        prop_assert_eq!(&first, &validate_submission(schema, &values, today));
        match first {
            Ok(()) => {
                for f in schema.fields.iter().filter(|f| f.required) {
                    prop_assert!(values.contains_key(&f.name));
                }
                prop_assert!(values.keys().all(|k| schema.field(k).is_some()));
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                let mut seen = HashSet::new();
                for e in &errors {
                    prop_assert!(seen.insert(e.field.clone()), "{} twice", e.field);
                    let known = schema.field(&e.field).is_some();
                    let submitted = values.keys().any(|k| k.starts_with(e.field.as_str()));
                    prop_assert!(known || (submitted && e.code == FieldErrorCode::UnknownField));
                }
            }
        }
    }

    /// Arbitrary strings never panic the identity-number check, and any it
    /// accepts is 18 canonical characters.
    #[test]
    fn id_number_never_panics(s in "\\PC{0,20}|[0-9]{17}[0-9Xx]") {
        if validate_id_number(&s, today()).is_ok() {
            prop_assert_eq!(s.len(), 18);
            prop_assert!(s.bytes().take(17).all(|b| b.is_ascii_digit()));
        }
    }
}

/// A draft is judged value by value: every code but `required` is found in
/// a draft holding just the offending value, and a draft with nothing
/// filled has no error (submit reports what is missing).
#[test]
fn a_draft_is_checked_value_by_value_without_requiring_the_rest() {
    let schema = all_kinds();
    assert_eq!(validate_draft(&schema, &Map::new(), today()), Ok(()));
    let missing = missing_required(&schema, &Map::new());
    assert!(!missing.is_empty());
    assert_eq!(
        validate_submission(&schema, &Map::new(), today())
            .unwrap_err()
            .len(),
        missing.len(),
        "every missing required field is an error only at submit"
    );
    assert!(missing_required(&schema, &obj(full_values())).is_empty());
    for code in FieldErrorCode::ALL {
        if matches!(
            code,
            FieldErrorCode::Required | FieldErrorCode::SchemaVersionMismatch
        ) {
            continue;
        }
        let (patch, field) = code_case(code);
        let values = obj(patch);
        assert_eq!(
            validate_draft(&schema, &values, today()),
            one(field, code),
            "{code:?} in a draft holding only {values:?}"
        );
    }
}
