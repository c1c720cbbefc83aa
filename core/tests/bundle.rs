//! Life-event bundles (一件事一次办) over the demo catalog: the merged form
//! asks each shared fact once, keeps each member's own rules, and a filled
//! form fans out into one application per member that applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use zhangban_core::bundle::{
    Bundle, BundleError, Condition, MemberField, Origin, SharedField, fan_out, merge,
};
use zhangban_core::guide::{FieldErrorCode, Guide, demo_catalog};

const FIXTURE: &str = include_str!("../../server/data/guang-an-service-items.json");
const BUNDLES: &str = include_str!("../../server/data/demo-bundles.json");

fn catalog() -> &'static [Guide] {
    static C: OnceLock<Vec<Guide>> = OnceLock::new();
    C.get_or_init(|| demo_catalog(FIXTURE, 1_790_000_000).unwrap())
}

fn bundles() -> Vec<Bundle> {
    serde_json::from_str(BUNDLES).unwrap()
}

fn bundle(id: &str) -> Bundle {
    bundles().into_iter().find(|b| b.id == id).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
}

fn pdf() -> Value {
    json!({"sha256": "ab".repeat(32), "size": 2048, "media_type": "application/pdf", "name": "证明.pdf"})
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A complete newborn application (the social security card as asked).
fn newborn(card: &str) -> Map<String, Value> {
    map(json!({
        "social_security_card": card,
        "applicant_name": "王小芳",
        "applicant_id_number": "11010519491231002X",
        "applicant_phone": "13800138000",
        "result_delivery": "online",
        "hukou__event_date": "2026-11-20",
        "hukou__description": "新生儿随母落户",
        "hukou__supporting_documents": pdf(),
    }))
}

fn codes(errors: &[zhangban_core::guide::FieldError]) -> Vec<(String, FieldErrorCode)> {
    errors.iter().map(|e| (e.field.clone(), e.code)).collect()
}

#[test]
fn each_demo_bundle_merges_and_asks_each_shared_fact_once() {
    let all = bundles();
    assert_eq!(all.len(), 3);
    for b in &all {
        let form = merge(b, catalog()).unwrap();
        let names: Vec<&str> = form.fields.iter().map(|f| f.field.name.as_str()).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{}: a name twice", b.id);
        for s in &b.shared {
            let f = form.fields.iter().find(|f| f.field.name == s.name).unwrap();
            let Origin::Shared { members } = &f.origin else {
                panic!("{} is not shared", s.name)
            };
            assert!(members.len() >= 2, "{}", s.name);
            // No member asks it again under its own prefix.
            for m in members {
                assert!(!unique.contains(format!("{m}__{}", s.name).as_str()));
            }
        }
        // Every member's every field is reachable from the merged form.
        for m in &b.members {
            let g = catalog().iter().find(|g| g.id == m.guide_id).unwrap();
            for f in &g.form.fields {
                let shared = b.shared.iter().any(|s| s.name == f.name);
                assert!(
                    shared || unique.contains(format!("{}__{}", m.key, f.name).as_str()),
                    "{}: {}.{} lost",
                    b.id,
                    m.key,
                    f.name
                );
            }
        }
    }
    // The newborn bundle: 3 identity facts and the delivery asked once for 4 members.
    let form = merge(&bundle("newborn"), catalog()).unwrap();
    let f = &form.fields[1];
    assert_eq!(f.field.name, "applicant_name");
    assert_eq!(
        f.origin,
        Origin::Shared {
            members: vec![
                "birth".into(),
                "hukou".into(),
                "medical".into(),
                "sscard".into()
            ]
        }
    );
    assert!(f.field.required);
}

#[test]
fn a_filled_form_fans_out_into_the_members_that_apply() {
    let form = merge(&bundle("newborn"), catalog()).unwrap();
    let apps = fan_out(&form, &newborn("no"), today()).unwrap();
    let keys: Vec<&str> = apps.iter().map(|a| a.member.as_str()).collect();
    assert_eq!(keys, ["birth", "hukou", "medical"]);
    let hukou = &apps[1];
    assert_eq!(
        hukou.guide_id,
        "511F09014002-511602000000-000-11511300008778693M-1-00"
    );
    // Each member gets the shared facts under its own field names, and only its fields.
    assert_eq!(hukou.values["applicant_name"], "王小芳");
    assert_eq!(hukou.values["description"], "新生儿随母落户");
    assert!(!hukou.values.contains_key("social_security_card"));
    assert!(
        !hukou.values.contains_key("result_delivery"),
        "hukou has no such field"
    );
    assert_eq!(apps[0].values["result_delivery"], "online");
    assert_eq!(apps[0].form_version, 1);
    // With the card: the fourth member applies too.
    let apps = fan_out(&form, &newborn("yes"), today()).unwrap();
    assert_eq!(apps.len(), 4);
    assert_eq!(apps[3].member, "sscard");
    assert_eq!(apps[3].values["applicant_id_number"], "11010519491231002X");
}

#[test]
fn an_error_is_reported_once_on_the_merged_field_it_concerns() {
    let form = merge(&bundle("newborn"), catalog()).unwrap();
    let mut v = newborn("yes");
    v.remove("applicant_id_number");
    v.insert("hukou__description".into(), json!("短"));
    let errors = fan_out(&form, &v, today()).unwrap_err();
    assert_eq!(
        codes(&errors),
        [
            ("applicant_id_number".to_owned(), FieldErrorCode::Required),
            ("hukou__description".to_owned(), FieldErrorCode::TooShort),
        ],
        "one error for the four members that need the ID number"
    );
    let mut v = newborn("no");
    v.insert("applicant_id_number".into(), json!("110105194912310021"));
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [(
            "applicant_id_number".to_owned(),
            FieldErrorCode::InvalidIdNumber
        )]
    );
}

#[test]
fn each_member_keeps_its_own_rules() {
    // 户口登记 requires its supporting documents; the birth certificate's are optional.
    let form = merge(&bundle("newborn"), catalog()).unwrap();
    let mut v = newborn("no");
    v.remove("hukou__supporting_documents");
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [(
            "hukou__supporting_documents".to_owned(),
            FieldErrorCode::Required
        )]
    );
    // A conditional member's required field is required only when it applies.
    let form = merge(&bundle("business-start"), catalog()).unwrap();
    let mut v = map(json!({
        "invoices": "no",
        "applicant_name": "李四",
        "applicant_id_number": "11010519491231002X",
        "applicant_phone": "0826-2345678",
        "organisation_name": "广安市示例商贸有限公司",
        "credit_code": "91511602MA62U0XX3Q",
        "result_delivery": "post",
        "company__application_kind": "new",
        "company__premises_address": "广安区建设北路88号",
        "company__supporting_documents": pdf(),
    }));
    let apps = fan_out(&form, &v, today()).unwrap();
    assert_eq!(apps.len(), 3);
    v.insert("invoices".into(), json!("yes"));
    let errors = fan_out(&form, &v, today()).unwrap_err();
    assert_eq!(
        codes(&errors),
        [
            ("tax__event_date".to_owned(), FieldErrorCode::Required),
            ("tax__description".to_owned(), FieldErrorCode::Required),
            (
                "tax__supporting_documents".to_owned(),
                FieldErrorCode::Required
            ),
        ]
    );
}

#[test]
fn questions_are_checked_and_stray_values_handled() {
    let form = merge(&bundle("newborn"), catalog()).unwrap();
    let mut v = newborn("maybe");
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [(
            "social_security_card".to_owned(),
            FieldErrorCode::NotAnOption
        )]
    );
    v.remove("social_security_card");
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [("social_security_card".to_owned(), FieldErrorCode::Required)]
    );
    // A value for a member that does not apply is dropped, not sent.
    let mut v = newborn("no");
    v.insert("sscard__appointment_date".into(), json!("2026-12-10"));
    let apps = fan_out(&form, &v, today()).unwrap();
    assert!(
        apps.iter()
            .all(|a| !a.values.contains_key("appointment_date") || a.member != "sscard")
    );
    assert_eq!(apps.len(), 3);
    // A key the merged form does not have is refused.
    v.insert("made_up".into(), json!("x"));
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [("made_up".to_owned(), FieldErrorCode::UnknownField)]
    );
    // A member's field under its bare name is not a merged field either.
    let mut v = newborn("no");
    v.insert("description".into(), json!("新生儿随母落户"));
    assert_eq!(
        codes(&fan_out(&form, &v, today()).unwrap_err()),
        [("description".to_owned(), FieldErrorCode::UnknownField)]
    );
}

/// One change to a valid bundle.
type Edit = Box<dyn Fn(&mut Bundle)>;

#[test]
fn a_bundle_that_cannot_work_is_refused_with_its_reason() {
    let base = bundle("newborn");
    let change = |f: &dyn Fn(&mut Bundle)| {
        let mut b = base.clone();
        f(&mut b);
        merge(&b, catalog()).unwrap_err()
    };
    let cases: Vec<(BundleError, Edit)> = vec![
        (
            BundleError::InvalidId,
            Box::new(|b| b.id = "New Born".into()),
        ),
        (BundleError::Incomplete, Box::new(|b| b.version = 0)),
        (BundleError::Incomplete, Box::new(|b| b.name = " ".into())),
        (
            BundleError::MemberCount,
            Box::new(|b| b.members.truncate(1)),
        ),
        (
            BundleError::InvalidMemberKey("Birth".into()),
            Box::new(|b| b.members[0].key = "Birth".into()),
        ),
        (
            BundleError::InvalidMemberKey("hukou".into()),
            Box::new(|b| b.members[0].key = "hukou".into()),
        ),
        (
            BundleError::InvalidMemberKey("a__b".into()),
            Box::new(|b| b.members[0].key = "a__b".into()),
        ),
        (
            BundleError::DuplicateGuide(base.members[0].guide_id.clone()),
            Box::new(|b| b.members[1].guide_id = b.members[0].guide_id.clone()),
        ),
        (
            BundleError::MissingGuide("birth".into()),
            Box::new(|b| b.members[0].guide_id = "no-such-guide".into()),
        ),
        (
            BundleError::InvalidCondition("sscard".into()),
            Box::new(|b| {
                b.members[3].when = Some(Condition {
                    question: "social_security_card".into(),
                    equals: "perhaps".into(),
                })
            }),
        ),
        (
            BundleError::InvalidCondition("sscard".into()),
            Box::new(|b| {
                b.members[3].when = Some(Condition {
                    question: "applicant_name".into(),
                    equals: "yes".into(),
                })
            }),
        ),
        (
            BundleError::InvalidQuestion("bad name".into()),
            Box::new(|b| b.questions[0].name = "bad name".into()),
        ),
        (
            BundleError::InvalidShared("social_security_card".into()),
            Box::new(|b| {
                b.shared.push(SharedField {
                    name: "social_security_card".into(),
                    from: vec![],
                })
            }),
        ),
        (
            BundleError::InvalidShared("x".into()),
            Box::new(|b| {
                b.shared.push(SharedField {
                    name: "x".into(),
                    from: vec![
                        MemberField {
                            member: "nobody".into(),
                            field: "applicant_name".into(),
                        },
                        MemberField {
                            member: "birth".into(),
                            field: "applicant_name".into(),
                        },
                    ],
                })
            }),
        ),
        (
            BundleError::IncompatibleShared("contact".into()),
            Box::new(|b| {
                b.shared = vec![SharedField {
                    name: "contact".into(),
                    from: vec![
                        MemberField {
                            member: "birth".into(),
                            field: "applicant_phone".into(),
                        },
                        MemberField {
                            member: "hukou".into(),
                            field: "applicant_name".into(),
                        },
                    ],
                }]
            }),
        ),
        (
            BundleError::NotShared("event_date".into()),
            Box::new(|b| {
                b.shared.push(SharedField {
                    name: "event_date".into(),
                    from: vec![],
                })
            }),
        ),
    ];
    for (want, f) in cases {
        assert_eq!(change(&*f), want);
    }
    // Two bundles' shared fields may not fill one member field twice.
    let mut b = base.clone();
    b.shared.push(SharedField {
        name: "name_again".into(),
        from: vec![
            MemberField {
                member: "birth".into(),
                field: "applicant_name".into(),
            },
            MemberField {
                member: "hukou".into(),
                field: "applicant_name".into(),
            },
        ],
    });
    assert_eq!(
        merge(&b, catalog()).unwrap_err(),
        BundleError::InvalidShared("name_again".into())
    );
}
