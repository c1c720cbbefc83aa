//! A service guide (办事指南): the elements of the national implementation
//! list (实施清单) for one item, and the form a resident fills in for it.
//!
//! Guides are published by the operator, synced to phones as part of the
//! catalog, searched offline and shown as they are. Every element is plain
//! data; JSON member names are the snake_case field names below.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::form::{FieldKind, FormSchema, FormSchemaError};

/// The kind of government power or service an item is (事项类型), with its
/// national `task_type` number. Serialized as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// 行政许可 (1).
    AdministrativeLicensing,
    /// 行政处罚 (2).
    AdministrativePenalty,
    /// 行政强制 (3).
    AdministrativeEnforcement,
    /// 行政征收 (4).
    AdministrativeLevy,
    /// 行政给付 (5).
    AdministrativePayment,
    /// 行政检查 (6).
    AdministrativeInspection,
    /// 行政确认 (7).
    AdministrativeConfirmation,
    /// 行政奖励 (8).
    AdministrativeReward,
    /// 行政裁决 (9).
    AdministrativeAdjudication,
    /// 其他行政权力 (10).
    OtherAdministrativePower,
    /// 公共服务 (20).
    PublicService,
}

impl ItemType {
    /// Every item type, in `task_type` order.
    pub const ALL: [Self; 11] = [
        Self::AdministrativeLicensing,
        Self::AdministrativePenalty,
        Self::AdministrativeEnforcement,
        Self::AdministrativeLevy,
        Self::AdministrativePayment,
        Self::AdministrativeInspection,
        Self::AdministrativeConfirmation,
        Self::AdministrativeReward,
        Self::AdministrativeAdjudication,
        Self::OtherAdministrativePower,
        Self::PublicService,
    ];

    /// The national `task_type` number.
    pub fn task_type(self) -> u8 {
        match self {
            Self::AdministrativeLicensing => 1,
            Self::AdministrativePenalty => 2,
            Self::AdministrativeEnforcement => 3,
            Self::AdministrativeLevy => 4,
            Self::AdministrativePayment => 5,
            Self::AdministrativeInspection => 6,
            Self::AdministrativeConfirmation => 7,
            Self::AdministrativeReward => 8,
            Self::AdministrativeAdjudication => 9,
            Self::OtherAdministrativePower => 10,
            Self::PublicService => 20,
        }
    }

    /// The item type of a `task_type` number.
    pub fn from_task_type(task_type: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.task_type() == task_type)
    }

    /// The stable snake_case name (as serialized).
    pub fn code(self) -> &'static str {
        match self {
            Self::AdministrativeLicensing => "administrative_licensing",
            Self::AdministrativePenalty => "administrative_penalty",
            Self::AdministrativeEnforcement => "administrative_enforcement",
            Self::AdministrativeLevy => "administrative_levy",
            Self::AdministrativePayment => "administrative_payment",
            Self::AdministrativeInspection => "administrative_inspection",
            Self::AdministrativeConfirmation => "administrative_confirmation",
            Self::AdministrativeReward => "administrative_reward",
            Self::AdministrativeAdjudication => "administrative_adjudication",
            Self::OtherAdministrativePower => "other_administrative_power",
            Self::PublicService => "public_service",
        }
    }

    /// The Chinese name.
    pub fn zh(self) -> &'static str {
        match self {
            Self::AdministrativeLicensing => "行政许可",
            Self::AdministrativePenalty => "行政处罚",
            Self::AdministrativeEnforcement => "行政强制",
            Self::AdministrativeLevy => "行政征收",
            Self::AdministrativePayment => "行政给付",
            Self::AdministrativeInspection => "行政检查",
            Self::AdministrativeConfirmation => "行政确认",
            Self::AdministrativeReward => "行政奖励",
            Self::AdministrativeAdjudication => "行政裁决",
            Self::OtherAdministrativePower => "其他行政权力",
            Self::PublicService => "公共服务",
        }
    }
}

/// Who may apply (服务对象).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceObject {
    /// 自然人.
    NaturalPerson,
    /// 法人 (and other organisations).
    LegalPerson,
    /// Both.
    Both,
}

impl ServiceObject {
    /// The Chinese name.
    pub fn zh(self) -> &'static str {
        match self {
            Self::NaturalPerson => "自然人",
            Self::LegalPerson => "法人",
            Self::Both => "自然人、法人",
        }
    }
}

/// In which form a material is handed in (材料形式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 纸质.
    Paper,
    /// 电子.
    Electronic,
    /// 纸质、电子均可.
    Both,
}

/// How far an item can be done online (网上办理深度), levels I to IV of the
/// national standard. Serialized as `"I"` … `"IV"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OnlineDepth {
    /// Ⅰ: information online (guide, forms to download).
    I,
    /// Ⅱ: application submitted online, materials checked on site.
    II,
    /// Ⅲ: application and review online; the result is collected (one visit).
    III,
    /// Ⅳ: fully online (全程网办): no visit at all.
    IV,
}

impl OnlineDepth {
    /// Whether the item is done fully online (then no visit may be required).
    pub fn is_fully_online(self) -> bool {
        self == Self::IV
    }
}

/// One material to hand in (申请材料).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// Name of the material.
    pub name: String,
    /// Paper, electronic or either.
    pub form: MaterialForm,
    /// Whether it is required (otherwise: only in the cases the note says).
    pub required: bool,
    /// Number of copies (份数), at least 1.
    pub copies: u32,
    /// Licence types (`vct`) whose electronic licence replaces this material
    /// (免提交); empty when none can.
    pub licence_types: Vec<String>,
    /// Requirements on the material (original/copy, signature, seal …).
    pub note: String,
}

/// One step of the process (办理流程).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStep {
    /// The step's name (申请, 受理, 审查, 决定, 办结 …).
    pub step: String,
    /// What happens in it.
    pub description: String,
}

/// One fee (收费项目).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    /// What is charged.
    pub name: String,
    /// Amount in yuan as a decimal string (`"10"`, `"80.00"`): never a float.
    pub amount_yuan: String,
    /// The legal basis of the charge.
    pub basis: String,
}

/// A place where the item is handled (办理地点).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Address, including the hall and window.
    pub address: String,
    /// Opening hours.
    pub hours: String,
    /// Telephone of the place.
    pub phone: String,
}

/// A frequently asked question (常见问题).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faq {
    /// The question.
    pub q: String,
    /// The answer.
    pub a: String,
}

/// A service guide: the implementation-list elements of one item and its
/// form. `id` is the implementation code, unique in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guide {
    /// Catalog id: the implementation code.
    pub id: String,
    /// 事项名称.
    pub name: String,
    /// 基本编码: identifies the item nationally, whoever implements it.
    pub basic_code: String,
    /// 实施编码: the basic code, area, department and handling variant.
    pub implementation_code: String,
    /// 事项类型.
    pub item_type: ItemType,
    /// 实施主体: the implementing body's name.
    pub department: String,
    /// 实施主体编码.
    pub department_code: String,
    /// 行政区划代码 of the implementing area (12 digits).
    pub area_code: String,
    /// 主项: the parent item, when this one is a sub-item.
    pub main_item: Option<String>,
    /// 设定依据: laws and regulations, one per entry.
    pub legal_basis: Vec<String>,
    /// 服务对象.
    pub service_object: ServiceObject,
    /// 受理条件.
    pub acceptance_conditions: Vec<String>,
    /// 申请材料.
    pub materials: Vec<Material>,
    /// 办理流程.
    pub process: Vec<ProcessStep>,
    /// 法定办结时限, working days (0: on the spot).
    pub statutory_limit_days: u32,
    /// 承诺办结时限, working days, at most the statutory limit.
    pub promised_limit_days: u32,
    /// 收费: empty means free of charge.
    pub fees: Vec<Fee>,
    /// 网办深度.
    pub online_depth: OnlineDepth,
    /// 到办事现场次数; 0 when the depth is IV.
    pub visits_required: u8,
    /// 办理地点.
    pub locations: Vec<Location>,
    /// 咨询电话.
    pub contact_phone: String,
    /// 监督投诉电话.
    pub complaint_phone: String,
    /// 常见问题.
    pub faq: Vec<Faq>,
    /// 主题分类 (户籍, 社保, 教育 …), for browsing and search.
    pub topics: Vec<String>,
    /// The form the resident fills in.
    pub form: FormSchema,
    /// Catalog version of this guide (grows with every published change).
    pub version: u64,
    /// Time of the last change, Unix seconds.
    pub updated_at: i64,
}

/// Why a guide is structurally inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuideError {
    /// A required text element is empty (named by its JSON member name).
    #[error("`{0}` is empty")]
    Empty(&'static str),
    /// `id` is not the implementation code.
    #[error("id is not the implementation code")]
    IdNotImplementationCode,
    /// The implementation code does not start with the basic code.
    #[error("the implementation code does not start with the basic code")]
    CodesDisagree,
    /// Fully online (IV) but visits are required.
    #[error("an item done fully online (IV) requires no visit")]
    VisitsForFullyOnline,
    /// The promised time limit exceeds the statutory one.
    #[error("the promised time limit exceeds the statutory one")]
    PromiseExceedsStatute,
    /// A material is unnamed, has 0 copies, or lists an empty licence type.
    #[error("material {0} is incomplete")]
    Material(usize),
    /// A process step is unnamed.
    #[error("process step {0} has no name")]
    ProcessStep(usize),
    /// A fee is unnamed, or its amount is not a decimal with at most 2 places.
    #[error("fee {0} is invalid")]
    Fee(usize),
    /// A location has no address.
    #[error("location {0} has no address")]
    Location(usize),
    /// A FAQ entry without question or answer.
    #[error("FAQ entry {0} is incomplete")]
    Faq(usize),
    /// A topic is empty or repeated.
    #[error("topic {0} is empty or repeated")]
    Topic(usize),
    /// The form schema is unusable.
    #[error("form: {0}")]
    Form(#[from] FormSchemaError),
}

fn is_decimal_yuan(amount: &str) -> bool {
    let (whole, cents) = match amount.split_once('.') {
        Some((w, c)) => (w, Some(c)),
        None => (amount, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && cents.is_none_or(|c| digits(c) && c.len() <= 2)
}

impl Guide {
    /// Checks structural consistency: identifiers and names present, id =
    /// implementation code, which starts with the basic code; zero visits
    /// when fully online; promised ≤ statutory limit; complete materials,
    /// steps, fees (decimal yuan), locations, FAQ and distinct topics; and
    /// a usable form schema ([`FormSchema::check`]).
    pub fn validate(&self) -> Result<(), GuideError> {
        let required = [
            ("id", &self.id),
            ("name", &self.name),
            ("basic_code", &self.basic_code),
            ("implementation_code", &self.implementation_code),
            ("department", &self.department),
            ("area_code", &self.area_code),
            ("contact_phone", &self.contact_phone),
            ("complaint_phone", &self.complaint_phone),
        ];
        for (name, value) in required {
            if value.trim().is_empty() {
                return Err(GuideError::Empty(name));
            }
        }
        if self.id != self.implementation_code {
            return Err(GuideError::IdNotImplementationCode);
        }
        if !self.implementation_code.starts_with(&self.basic_code) {
            return Err(GuideError::CodesDisagree);
        }
        if self.online_depth.is_fully_online() && self.visits_required != 0 {
            return Err(GuideError::VisitsForFullyOnline);
        }
        if self.promised_limit_days > self.statutory_limit_days {
            return Err(GuideError::PromiseExceedsStatute);
        }
        let blank = |s: &String| s.trim().is_empty();
        for (i, m) in self.materials.iter().enumerate() {
            if blank(&m.name) || m.copies == 0 || m.licence_types.iter().any(blank) {
                return Err(GuideError::Material(i));
            }
        }
        if let Some(i) = self.process.iter().position(|p| blank(&p.step)) {
            return Err(GuideError::ProcessStep(i));
        }
        if let Some(i) = self
            .fees
            .iter()
            .position(|f| blank(&f.name) || !is_decimal_yuan(&f.amount_yuan))
        {
            return Err(GuideError::Fee(i));
        }
        if let Some(i) = self.locations.iter().position(|l| blank(&l.address)) {
            return Err(GuideError::Location(i));
        }
        if let Some(i) = self.faq.iter().position(|f| blank(&f.q) || blank(&f.a)) {
            return Err(GuideError::Faq(i));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if blank(t) || self.topics.iter().take(i).any(|u| u == t) {
                return Err(GuideError::Topic(i));
            }
        }
        self.form.check()?;
        Ok(())
    }

    /// Lower-case hex SHA-256 of the guide's JSON as `serde_json::to_vec`
    /// writes it: members in struct declaration order, no whitespace,
    /// numbers and strings as serde_json formats them. This serialization is
    /// the canonical form: catalog sync compares it, so the struct's field
    /// order is part of the format (reordering fields changes every checksum).
    pub fn checksum(&self) -> String {
        // Serializing plain structs, strings and numbers cannot fail; an
        // empty input would still yield a well-defined digest.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The licence types that can fill this guide: those of its materials and
    /// of its licence-reference fields, sorted, without repeats.
    pub fn licence_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .materials
            .iter()
            .flat_map(|m| m.licence_types.iter().cloned())
            .chain(self.form.fields.iter().flat_map(|f| match &f.kind {
                FieldKind::LicenceRef { licence_types } => licence_types.clone(),
                _ => Vec::new(),
            }))
            .collect();
        types.sort();
        types.dedup();
        types
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_types_round_trip() {
        for t in ItemType::ALL {
            assert_eq!(ItemType::from_task_type(t.task_type()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.code());
        }
        assert_eq!(ItemType::from_task_type(11), None);
        assert_eq!(ItemType::from_task_type(20), Some(ItemType::PublicService));
    }

    #[test]
    fn depth_serializes_as_roman_numerals() {
        assert_eq!(serde_json::to_value(OnlineDepth::IV).unwrap(), "IV");
        let d: OnlineDepth = serde_json::from_str("\"II\"").unwrap();
        assert_eq!(d, OnlineDepth::II);
        assert!(OnlineDepth::IV.is_fully_online() && !OnlineDepth::III.is_fully_online());
    }

    #[test]
    fn yuan_amounts() {
        for ok in ["0", "10", "80.00", "0.5"] {
            assert!(is_decimal_yuan(ok), "{ok}");
        }
        for bad in ["", "1.", ".5", "1.234", "-1", "1e2", "十元"] {
            assert!(!is_decimal_yuan(bad), "{bad}");
        }
    }
}
