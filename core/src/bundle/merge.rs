//! The merged form of a bundle, and the fan-out of a filled one into the
//! members' own applications.
//!
//! Field names in the merged form: a question keeps its name, a shared fact
//! takes the shared field's name, and a member's own field is prefixed with
//! the member's key (`birth__description`), so that two members' unrelated
//! `description` fields stay two answers.
//!
//! Checking a filled merged form is checking each applying member's
//! projection with the shared validator ([`validate_submission`]) against
//! that member's own form: every member keeps its own rules, and an error is
//! reported once, on the merged field it came from.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    Bundle, BundleError, Condition, MAX_MEMBERS, MEMBER_FIELD_SEPARATOR, is_bundle_id,
    is_member_key,
};
use crate::guide::{
    FieldError, FieldErrorCode, FieldKind, FormField, FormSchema, Guide, WHOLE_FORM,
    validate_submission,
};

/// Where a merged field comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// A question of the bundle itself.
    Question,
    /// One fact for several members (their keys).
    Shared {
        /// The members it fills.
        members: Vec<String>,
    },
    /// A field of one member only.
    Member {
        /// The member's key.
        member: String,
    },
}

/// One field of the merged form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedField {
    /// The field as shown: its merged name, the first member's label, kind
    /// and help; `required` when a member that always applies requires it.
    pub field: FormField,
    /// Where it comes from.
    pub origin: Origin,
    /// The members that require it (it is required whenever one of them
    /// applies).
    pub required_by: Vec<String>,
}

/// A member as the merged form knows it.
#[derive(Debug, Clone, PartialEq)]
struct MergedMember {
    key: String,
    guide_id: String,
    when: Option<Condition>,
    form: FormSchema,
    /// The member's field name → its merged name.
    names: HashMap<String, String>,
}

/// The one form of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedForm {
    /// The bundle's id.
    pub bundle_id: String,
    /// The bundle's version.
    pub bundle_version: u32,
    /// The fields in display order: questions, shared facts, then each
    /// member's own fields.
    pub fields: Vec<MergedField>,
    members: Vec<MergedMember>,
}

/// One member's application, as a filled merged form fans out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberApplication {
    /// The member's key.
    pub member: String,
    /// Its guide.
    pub guide_id: String,
    /// The version of the guide's form the values fit.
    pub form_version: u32,
    /// The member's own field names and values.
    pub values: Map<String, Value>,
}

/// Whether two fields can take one value: the same kind, and for choices
/// the same options, for licences the same licence types. (Lengths, ranges,
/// patterns and media types may differ: each member's own rules still apply.)
fn compatible(a: &FieldKind, b: &FieldKind) -> bool {
    match (a, b) {
        (
            FieldKind::Choice {
                options: oa,
                multiple: ma,
            },
            FieldKind::Choice {
                options: ob,
                multiple: mb,
            },
        ) => {
            let va: BTreeSet<&str> = oa.iter().map(|o| o.value.as_str()).collect();
            let vb: BTreeSet<&str> = ob.iter().map(|o| o.value.as_str()).collect();
            ma == mb && va == vb
        }
        (
            FieldKind::LicenceRef { licence_types: ta },
            FieldKind::LicenceRef { licence_types: tb },
        ) => {
            let sa: BTreeSet<&String> = ta.iter().collect();
            let sb: BTreeSet<&String> = tb.iter().collect();
            sa == sb
        }
        _ => a.type_name() == b.type_name(),
    }
}

/// Builds the merged form of `bundle` from the catalog's `guides`, checking
/// the bundle whole.
pub fn merge(bundle: &Bundle, guides: &[Guide]) -> Result<MergedForm, BundleError> {
    if !is_bundle_id(&bundle.id) {
        return Err(BundleError::InvalidId);
    }
    if bundle.name.trim().is_empty() || bundle.summary.trim().is_empty() || bundle.version == 0 {
        return Err(BundleError::Incomplete);
    }
    if !(2..=MAX_MEMBERS).contains(&bundle.members.len()) {
        return Err(BundleError::MemberCount);
    }
    // Questions: a valid form of their own, names free of the separator.
    for (i, q) in bundle.questions.iter().enumerate() {
        let so_far = FormSchema {
            version: 1,
            fields: bundle.questions[..=i].to_vec(),
        };
        if so_far.check().is_err() {
            return Err(BundleError::InvalidQuestion(q.name.clone()));
        }
    }
    if let Some(q) = bundle
        .questions
        .iter()
        .find(|q| q.name.contains(MEMBER_FIELD_SEPARATOR))
    {
        return Err(BundleError::InvalidQuestion(q.name.clone()));
    }
    // Members: keys, guides, conditions.
    let by_id: HashMap<&str, &Guide> = guides.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut keys = BTreeSet::new();
    let mut guide_ids = BTreeSet::new();
    let mut members = Vec::with_capacity(bundle.members.len());
    for m in &bundle.members {
        if !is_member_key(&m.key) || !keys.insert(m.key.as_str()) {
            return Err(BundleError::InvalidMemberKey(m.key.clone()));
        }
        if !guide_ids.insert(m.guide_id.as_str()) {
            return Err(BundleError::DuplicateGuide(m.guide_id.clone()));
        }
        let guide = by_id
            .get(m.guide_id.as_str())
            .ok_or_else(|| BundleError::MissingGuide(m.key.clone()))?;
        if let Some(c) = &m.when {
            let offers = bundle.questions.iter().any(|q| {
                q.name == c.question
                    && matches!(&q.kind, FieldKind::Choice { options, .. }
                        if options.iter().any(|o| o.value == c.equals))
            });
            if !offers {
                return Err(BundleError::InvalidCondition(m.key.clone()));
            }
        }
        members.push(MergedMember {
            key: m.key.clone(),
            guide_id: m.guide_id.clone(),
            when: m.when.clone(),
            form: guide.form.clone(),
            names: HashMap::new(),
        });
    }
    let mut fields: Vec<MergedField> = bundle
        .questions
        .iter()
        .map(|q| MergedField {
            field: q.clone(),
            origin: Origin::Question,
            required_by: Vec::new(),
        })
        .collect();
    // Shared facts.
    let mut taken: BTreeSet<String> = bundle.questions.iter().map(|q| q.name.clone()).collect();
    for s in &bundle.shared {
        let bad = || BundleError::InvalidShared(s.name.clone());
        if s.name.contains(MEMBER_FIELD_SEPARATOR)
            || !crate::guide::is_field_name(&s.name)
            || !taken.insert(s.name.clone())
        {
            return Err(bad());
        }
        // (member index, field) pairs this fact fills.
        let mut slots: Vec<(usize, FormField)> = Vec::new();
        if s.from.is_empty() {
            for (i, m) in members.iter().enumerate() {
                if let Some(f) = m.form.field(&s.name) {
                    slots.push((i, f.clone()));
                }
            }
        } else {
            for mf in &s.from {
                let i = members
                    .iter()
                    .position(|m| m.key == mf.member)
                    .ok_or_else(bad)?;
                let f = members[i].form.field(&mf.field).ok_or_else(bad)?;
                slots.push((i, f.clone()));
            }
        }
        let distinct: BTreeSet<usize> = slots.iter().map(|(i, _)| *i).collect();
        if slots.len() < 2 || distinct.len() != slots.len() {
            return Err(BundleError::NotShared(s.name.clone()));
        }
        let first = slots[0].1.clone();
        if slots.iter().any(|(_, f)| !compatible(&first.kind, &f.kind)) {
            return Err(BundleError::IncompatibleShared(s.name.clone()));
        }
        let mut required_by = Vec::new();
        let mut always_required = false;
        let mut served = Vec::new();
        for (i, f) in &slots {
            let m = &mut members[*i];
            if m.names.insert(f.name.clone(), s.name.clone()).is_some() {
                return Err(bad());
            }
            served.push(m.key.clone());
            if f.required {
                required_by.push(m.key.clone());
                always_required |= m.when.is_none();
            }
        }
        fields.push(MergedField {
            field: FormField {
                name: s.name.clone(),
                required: always_required,
                ..first
            },
            origin: Origin::Shared { members: served },
            required_by,
        });
    }
    // Each member's own fields.
    for m in &mut members {
        for f in &m.form.fields {
            if m.names.contains_key(&f.name) {
                continue;
            }
            let name = format!("{}{MEMBER_FIELD_SEPARATOR}{}", m.key, f.name);
            m.names.insert(f.name.clone(), name.clone());
            fields.push(MergedField {
                field: FormField {
                    name,
                    required: f.required && m.when.is_none(),
                    ..f.clone()
                },
                origin: Origin::Member {
                    member: m.key.clone(),
                },
                required_by: if f.required {
                    vec![m.key.clone()]
                } else {
                    Vec::new()
                },
            });
        }
    }
    Ok(MergedForm {
        bundle_id: bundle.id.clone(),
        bundle_version: bundle.version,
        fields,
        members,
    })
}

/// Whether the answer `v` to a condition's question is its value.
fn answers(v: Option<&Value>, equals: &str) -> bool {
    match v {
        Some(Value::String(s)) => s == equals,
        Some(Value::Array(xs)) => xs.iter().any(|x| x.as_str() == Some(equals)),
        _ => false,
    }
}

impl MergedForm {
    /// The keys of the members that apply with these answers.
    pub fn applying(&self, values: &Map<String, Value>) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| {
                m.when
                    .as_ref()
                    .is_none_or(|c| answers(values.get(&c.question), &c.equals))
            })
            .map(|m| m.key.as_str())
            .collect()
    }

    /// Each member's form version (an application carries them, so that a
    /// member's form changed since is told apart).
    pub fn member_versions(&self) -> BTreeMap<String, u32> {
        self.members
            .iter()
            .map(|m| (m.key.clone(), m.form.version))
            .collect()
    }

    /// Whether `name` is a field of the merged form.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.field.name == name)
    }
}

/// Checks a filled merged form and splits it into one application per
/// member that applies. Every problem is reported once, on the merged
/// field it concerns, in the merged form's order, then unknown keys.
/// Values for the own fields of members that do not apply are dropped (the
/// resident may have answered before changing a condition).
pub fn fan_out(
    form: &MergedForm,
    values: &Map<String, Value>,
    today: NaiveDate,
) -> Result<Vec<MemberApplication>, Vec<FieldError>> {
    let mut errors: BTreeMap<usize, FieldError> = BTreeMap::new();
    let position = |name: &str| form.fields.iter().position(|f| f.field.name == name);
    let mut report = |e: FieldError| {
        let at = if e.field == WHOLE_FORM {
            0
        } else {
            position(&e.field).unwrap_or(usize::MAX)
        };
        errors.entry(at).or_insert(e);
    };
    // The bundle's own questions.
    let questions = FormSchema {
        version: 1,
        fields: form
            .fields
            .iter()
            .filter(|f| f.origin == Origin::Question)
            .map(|f| f.field.clone())
            .collect(),
    };
    let answered: Map<String, Value> = values
        .iter()
        .filter(|(k, _)| questions.field(k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Err(es) = validate_submission(&questions, &answered, today) {
        es.into_iter().for_each(&mut report);
    }
    let applying = form.applying(values);
    let mut out = Vec::new();
    for m in form
        .members
        .iter()
        .filter(|m| applying.contains(&m.key.as_str()))
    {
        let own: Map<String, Value> = m
            .form
            .fields
            .iter()
            .filter_map(|f| {
                let merged = m.names.get(&f.name)?;
                values.get(merged).map(|v| (f.name.clone(), v.clone()))
            })
            .collect();
        match validate_submission(&m.form, &own, today) {
            Ok(()) => out.push(MemberApplication {
                member: m.key.clone(),
                guide_id: m.guide_id.clone(),
                form_version: m.form.version,
                values: own,
            }),
            Err(es) => {
                for e in es {
                    let field = m
                        .names
                        .get(&e.field)
                        .cloned()
                        .unwrap_or_else(|| e.field.clone());
                    report(FieldError { field, ..e });
                }
            }
        }
    }
    let mut unknown: Vec<FieldError> = values
        .keys()
        .filter(|k| !form.has_field(k))
        .map(|k| {
            let shown: String = k.chars().take(64).collect();
            FieldError::new(&shown, FieldErrorCode::UnknownField)
        })
        .collect();
    if errors.is_empty() && unknown.is_empty() {
        Ok(out)
    } else {
        let mut all: Vec<FieldError> = errors.into_values().collect();
        all.append(&mut unknown);
        Err(all)
    }
}
