//! 一件事一次办: a life event's items bundled into one application.
//!
//! The State Council's 2024 "高效办成一件事" guideline bundles the items a life
//! event needs across departments (新生儿出生: the birth certificate, the
//! household registration, medical insurance, the social security card) into
//! one application: one form, each shared fact asked once, each proof given
//! once.
//!
//! A [`Bundle`] is catalog data, published by an operator and synced to
//! phones with the guides: its member items (each a guide of the catalog,
//! possibly conditional on an answer), the questions of its own (those the
//! conditions ask), and which member fields are one shared fact. From the
//! bundle and its members' guides, [`merge`](merge::merge) builds the one
//! form the resident fills, and [`fan_out`](merge::fan_out) checks a filled
//! form with each member's own rules (the same shared validator as a single
//! application) and splits it into one application per member that applies.
//!
//! Sans-IO: pure functions of the bundle, the guides and the values.

mod merge;

pub use merge::{MemberApplication, MergedField, MergedForm, Origin, fan_out, merge};

use serde::{Deserialize, Serialize};

use crate::guide::FormField;

/// The longest member key.
pub const MEMBER_KEY_MAX_LEN: usize = 12;
/// The most members a bundle may have.
pub const MAX_MEMBERS: usize = 12;
/// The separator between a member key and its own field's name in the
/// merged form (`birth__description`).
pub const MEMBER_FIELD_SEPARATOR: &str = "__";

/// A life event's bundle of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Stable id, `[a-z][a-z0-9-]*` (`newborn`, `retirement`).
    pub id: String,
    /// Its name as residents see it (新生儿出生一件事).
    pub name: String,
    /// Version, raised with every change; an application carries the version
    /// it was filled against.
    pub version: u32,
    /// What it is for, in a sentence.
    pub summary: String,
    /// Questions of the bundle itself (choices the conditions ask about),
    /// shown first.
    #[serde(default)]
    pub questions: Vec<FormField>,
    /// The member items, in the order their fields are shown.
    pub members: Vec<BundleMember>,
    /// The facts asked once for several members.
    #[serde(default)]
    pub shared: Vec<SharedField>,
}

/// One member item of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleMember {
    /// Short key, `[a-z][a-z0-9_]*` of at most [`MEMBER_KEY_MAX_LEN`]:
    /// prefixes the member's own fields in the merged form.
    pub key: String,
    /// The guide (service item) of the catalog.
    pub guide_id: String,
    /// Applies only when a question has this answer; always if absent.
    #[serde(default)]
    pub when: Option<Condition>,
}

/// A member applies when the question's answer is (or, for a multiple
/// choice, includes) the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The name of one of the bundle's choice questions.
    pub question: String,
    /// The option value that makes the member apply.
    pub equals: String,
}

/// One fact asked once for several members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedField {
    /// Its name in the merged form.
    pub name: String,
    /// The member fields it fills. Empty: the field named `name` of every
    /// member that has one.
    #[serde(default)]
    pub from: Vec<MemberField>,
}

/// A field of one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberField {
    /// The member's key.
    pub member: String,
    /// The field's name in that member's form.
    pub field: String,
}

/// Why a bundle cannot be used with the given guides. Published bundles are
/// checked with the catalog they refer to; a phone that meets an error here
/// (a member guide withdrawn since) shows the bundle as unavailable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The id is not `[a-z][a-z0-9-]*` (at most 64 characters).
    #[error("bundle id is not [a-z][a-z0-9-]*")]
    InvalidId,
    /// Name or summary is empty, or the version is 0.
    #[error("bundle needs a name, a summary and a version ≥ 1")]
    Incomplete,
    /// Fewer than two members, or more than [`MAX_MEMBERS`].
    #[error("a bundle has 2 to {MAX_MEMBERS} members")]
    MemberCount,
    /// A member key is malformed or used twice.
    #[error("member key `{0}` is malformed or used twice")]
    InvalidMemberKey(String),
    /// A guide is a member twice.
    #[error("guide `{0}` is a member twice")]
    DuplicateGuide(String),
    /// A member's guide is not in the catalog.
    #[error("member `{0}`'s guide is not in the catalog")]
    MissingGuide(String),
    /// A question is malformed (its name, its labels) or named twice.
    #[error("question `{0}` is malformed or named twice")]
    InvalidQuestion(String),
    /// A condition names no choice question, or a value it does not offer.
    #[error("member `{0}`'s condition names no choice question or option")]
    InvalidCondition(String),
    /// A shared field names a member or field that does not exist, or its
    /// name collides with another field of the merged form.
    #[error("shared field `{0}` refers to nothing or collides")]
    InvalidShared(String),
    /// A shared field's member fields are of different kinds (or, for
    /// choices, different options) and cannot take one value.
    #[error("shared field `{0}` joins fields of different kinds")]
    IncompatibleShared(String),
    /// A shared field fills fewer than two member fields.
    #[error("shared field `{0}` is not shared by two members")]
    NotShared(String),
}

impl BundleError {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId => "invalid_id",
            Self::Incomplete => "incomplete",
            Self::MemberCount => "member_count",
            Self::InvalidMemberKey(_) => "invalid_member_key",
            Self::DuplicateGuide(_) => "duplicate_guide",
            Self::MissingGuide(_) => "missing_guide",
            Self::InvalidQuestion(_) => "invalid_question",
            Self::InvalidCondition(_) => "invalid_condition",
            Self::InvalidShared(_) => "invalid_shared",
            Self::IncompatibleShared(_) => "incompatible_shared",
            Self::NotShared(_) => "not_shared",
        }
    }
}

pub(crate) fn is_member_key(k: &str) -> bool {
    let mut chars = k.chars();
    k.len() <= MEMBER_KEY_MAX_LEN
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !k.contains(MEMBER_FIELD_SEPARATOR)
        && !k.ends_with('_')
}

pub(crate) fn is_bundle_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
