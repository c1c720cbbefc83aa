//! The demo catalog: real items of Guang'an district (广安区), Sichuan, from
//! the implementation-list fixture, each made into a complete, plausible
//! guide.
//!
//! The fixture (`server/data/guang-an-service-items.json`) is a JSON array
//! of `{department, main_item, name, item_code, task_type, dept_code,
//! area_code}`, all strings. Name, codes, department, type and area are
//! real; every other element is derived deterministically from the item's
//! type, name and department by keyword rules (module `fixture_rules`), so
//! the same fixture always yields the same guides (and checksums).
//!
//! Electronic licences that replace paper proofs are the demo world's
//! licence types ([`crate::credential::demo`]): business licence (营业执照),
//! residence permit (居住证) and marriage certificate (结婚证).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;

use super::fixture_rules::{self, GENERAL_BASIS, has_any};
use super::form::{ChoiceOption, FieldKind, FormField, FormSchema, TODAY};
use super::model::{
    Faq, Fee, Guide, GuideError, ItemType, Location, Material, MaterialForm, OnlineDepth,
    ProcessStep, ServiceObject,
};
use crate::credential::demo::{CIVIL_AFFAIRS, MARKET_REGULATION, PUBLIC_SECURITY, vct_for};

/// One item of the implementation-list fixture, as in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureItem {
    /// Implementing department's name.
    pub department: String,
    /// Parent item, or `未分类` when there is none.
    pub main_item: String,
    /// Item name.
    pub name: String,
    /// Implementation code.
    pub item_code: String,
    /// The national `task_type`, a decimal string in the file (`"1"`, `"20"`).
    #[serde(with = "task_type_text")]
    pub task_type: ItemType,
    /// Department code (credit code or organisation code).
    pub dept_code: String,
    /// Area code (12 digits).
    pub area_code: String,
}

mod task_type_text {
    use super::ItemType;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(t: &ItemType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.task_type().to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ItemType, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<u8>()
            .ok()
            .and_then(ItemType::from_task_type)
            .ok_or_else(|| D::Error::custom("unknown task_type"))
    }
}

/// The parent-item value that means "no parent item".
pub const NO_MAIN_ITEM: &str = "未分类";

/// Why the fixture cannot become a catalog.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Not a JSON array of fixture items (or an unknown `task_type`).
    #[error("fixture JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Two items have the same implementation code.
    #[error("duplicate item code {0}")]
    DuplicateId(String),
    /// A derived guide is inconsistent (e.g. an item without a name).
    #[error("guide {id}: {source}")]
    Invalid {
        /// The item code.
        id: String,
        /// What is wrong.
        source: GuideError,
    },
}

/// Parses the fixture.
pub fn load_fixture(json: &str) -> Result<Vec<FixtureItem>, FixtureError> {
    Ok(serde_json::from_str(json)?)
}

/// Every item of the fixture as a guide (catalog version 1), in fixture
/// order; fails on duplicate ids or a guide that does not validate.
pub fn demo_catalog(json: &str, updated_at: i64) -> Result<Vec<Guide>, FixtureError> {
    let items = load_fixture(json)?;
    let mut seen = HashSet::with_capacity(items.len());
    let mut guides = Vec::with_capacity(items.len());
    for item in &items {
        if !seen.insert(item.item_code.as_str()) {
            return Err(FixtureError::DuplicateId(item.item_code.clone()));
        }
        let guide = guide_from_fixture(item, 1, updated_at);
        guide.validate().map_err(|source| FixtureError::Invalid {
            id: item.item_code.clone(),
            source,
        })?;
        guides.push(guide);
    }
    Ok(guides)
}

/// The basic code inside an implementation code: the segments before the
/// 12-digit area code (`511A0138000000-511602000000-…` → `511A0138000000`,
/// `G-000007-001-511602000000-…` → `G-000007-001`); without an area code
/// segment, all segments but the last (the department code).
pub fn basic_code(item_code: &str) -> String {
    let segments: Vec<&str> = item_code.split('-').collect();
    let is_area = |s: &&str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    let end = segments
        .iter()
        .skip(1)
        .position(is_area)
        .map(|i| i + 1)
        .unwrap_or(segments.len().saturating_sub(1).max(1));
    segments.get(..end).unwrap_or_default().join("-")
}

/// A deterministic number from an item, for plausible variety.
fn variant(key: &str, salt: &str, modulo: u32) -> u32 {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let n = digest
        .iter()
        .take(4)
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    n % modulo.max(1)
}

/// Which demo licences an item can use.
#[derive(Debug, Clone, Copy)]
struct Licences {
    /// 营业执照: organisations (when founding one: its investors' licences).
    business: bool,
    /// Whether the applicant's own business licence is required (not when
    /// founding).
    business_required: bool,
    /// 居住证: household registration and school entry of non-residents.
    residence: bool,
    /// 结婚证: divorce, adoption, family planning, maternity.
    marriage: bool,
}

/// Everything derived from an item before the guide is assembled.
#[derive(Debug)]
struct Traits<'a> {
    item: &'a FixtureItem,
    object: ServiceObject,
    topics: Vec<String>,
    laws: Vec<&'static str>,
    licences: Licences,
    /// 查询 / 咨询 / 指引 …: information only, done on the spot.
    info_only: bool,
    /// 备案: filing.
    filing: bool,
}

impl<'a> Traits<'a> {
    fn new(item: &'a FixtureItem) -> Self {
        let main = (item.main_item != NO_MAIN_ITEM).then_some(item.main_item.as_str());
        let text = match main {
            Some(m) => format!("{} {m}", item.name),
            None => item.name.clone(),
        };
        let name = item.name.as_str();
        let object = fixture_rules::service_object(&text);
        let topics = fixture_rules::topics(&text, &item.department);
        let has_topic = |t: &str| topics.iter().any(|x| x == t);
        let founding = has_any(name, &["设立", "新办", "名称", "开办"]);
        let organisation = object != ServiceObject::NaturalPerson;
        let business =
            organisation && (has_topic("企业开办") || object == ServiceObject::LegalPerson);
        let residence = !name.contains("居住证")
            && (has_topic("户籍") || has_any(name, &["入学", "随迁"]))
            && object != ServiceObject::LegalPerson;
        let marriage = has_any(name, &["离婚", "收养", "计划生育", "生育"]);
        Self {
            item,
            object,
            laws: fixture_rules::domain_laws(&text),
            licences: Licences {
                business,
                business_required: business && !founding,
                residence,
                marriage,
            },
            info_only: has_any(name, &["查询", "咨询", "指引", "信息发布", "政策"])
                && item.task_type == ItemType::PublicService,
            filing: name.contains("备案"),
            topics,
        }
    }

    fn kind(&self) -> ItemType {
        self.item.task_type
    }

    fn name(&self) -> &str {
        &self.item.name
    }

    fn variant(&self, salt: &str, modulo: u32) -> u32 {
        variant(&self.item.item_code, salt, modulo)
    }
}

/// Builds the guide of one fixture item: every element filled plausibly and
/// deterministically (same item, version and time ⇒ same guide).
pub fn guide_from_fixture(item: &FixtureItem, version: u64, updated_at: i64) -> Guide {
    let t = Traits::new(item);
    let (online_depth, visits_required) = depth_and_visits(&t);
    let (statutory_limit_days, promised_limit_days) = time_limits(&t);
    let phone = department_phone(&item.dept_code);
    Guide {
        id: item.item_code.clone(),
        name: item.name.clone(),
        basic_code: basic_code(&item.item_code),
        implementation_code: item.item_code.clone(),
        item_type: item.task_type,
        department: item.department.clone(),
        department_code: item.dept_code.clone(),
        area_code: item.area_code.clone(),
        main_item: (item.main_item != NO_MAIN_ITEM).then(|| item.main_item.clone()),
        legal_basis: legal_basis(&t),
        service_object: t.object,
        acceptance_conditions: acceptance_conditions(&t),
        materials: materials(&t),
        process: process(&t, online_depth),
        statutory_limit_days,
        promised_limit_days,
        fees: fees(&t),
        online_depth,
        visits_required,
        locations: vec![Location {
            address: format!(
                "四川省广安市广安区政务服务中心{}号窗口（{}）",
                1 + t.variant("window", 48),
                item.department
            ),
            hours: "周一至周五 9:00-12:00，13:30-17:30（法定节假日除外）".into(),
            phone: phone.clone(),
        }],
        contact_phone: phone,
        complaint_phone: "12345".into(),
        faq: faq(&t, online_depth, visits_required),
        topics: t.topics.clone(),
        form: form(&t),
        version,
        updated_at,
    }
}

/// The department's consultation line: Guang'an's area code 0826 and a
/// 7-digit local number derived from the department code.
fn department_phone(dept_code: &str) -> String {
    format!("0826-2{:06}", variant(dept_code, "phone", 1_000_000))
}

fn depth_and_visits(t: &Traits<'_>) -> (OnlineDepth, u8) {
    use OnlineDepth::{I, II, III, IV};
    let roll = t.variant("depth", 100);
    let depth = match t.kind() {
        ItemType::PublicService if t.info_only => IV,
        ItemType::PublicService => {
            if roll < 85 {
                IV
            } else {
                III
            }
        }
        ItemType::AdministrativeLicensing => {
            if roll < 60 {
                III
            } else {
                II
            }
        }
        ItemType::AdministrativePayment | ItemType::AdministrativeConfirmation => {
            if roll < 50 {
                III
            } else {
                II
            }
        }
        ItemType::AdministrativeAdjudication | ItemType::AdministrativeReward => {
            if roll < 50 {
                II
            } else {
                I
            }
        }
        _ if t.filing => III,
        _ => match roll {
            0..40 => III,
            40..80 => II,
            _ => I,
        },
    };
    let visits = match (depth, t.kind()) {
        (IV, _) => 0,
        // A hearing or mediation on top of handing in the application.
        (_, ItemType::AdministrativeAdjudication) => 2,
        // 最多跑一次: at most one trip.
        _ => 1,
    };
    (depth, visits)
}

fn time_limits(t: &Traits<'_>) -> (u32, u32) {
    let name = t.name();
    let simple = has_any(
        name,
        &["变更", "注销", "补办", "补发", "换证", "换发", "补证"],
    );
    match t.kind() {
        _ if name.contains("即办") => (20, 0),
        ItemType::AdministrativeLicensing if simple => (20, 1),
        ItemType::AdministrativeLicensing if has_any(name, &["建设", "设置", "审查"]) => {
            (20, 10)
        }
        ItemType::AdministrativeLicensing => (20, 5),
        ItemType::PublicService if t.info_only => (0, 0),
        ItemType::PublicService => (10, 3),
        ItemType::AdministrativePayment => (30, 15),
        ItemType::AdministrativeConfirmation => (20, 5),
        ItemType::AdministrativeReward => (60, 30),
        ItemType::AdministrativeAdjudication => (60, 45),
        _ if t.filing => (5, 1),
        ItemType::OtherAdministrativePower => (20, 10),
        _ => (30, 20),
    }
}

fn legal_basis(t: &Traits<'_>) -> Vec<String> {
    let mut basis: Vec<String> = t.laws.iter().map(|l| l.to_string()).collect();
    let general = match t.kind() {
        ItemType::AdministrativeLicensing => Some("《中华人民共和国行政许可法》"),
        ItemType::AdministrativePenalty => Some("《中华人民共和国行政处罚法》"),
        ItemType::AdministrativeEnforcement => Some("《中华人民共和国行政强制法》"),
        _ if basis.is_empty() => Some(GENERAL_BASIS),
        _ => None,
    };
    basis.extend(general.map(String::from));
    basis
}

fn acceptance_conditions(t: &Traits<'_>) -> Vec<String> {
    let mut c = Vec::new();
    match t.object {
        ServiceObject::NaturalPerson => c.push(
            "申请人为具有完全民事行为能力的自然人，或由其监护人、委托代理人代为申请".to_string(),
        ),
        ServiceObject::LegalPerson => {
            c.push("申请人为依法设立的法人或者其他组织".to_string());
        }
        ServiceObject::Both => {
            c.push("申请人为自然人、法人或者其他组织，委托他人办理的应出具授权委托书".to_string())
        }
    }
    let law = t.laws.first().copied().unwrap_or(GENERAL_BASIS);
    match t.kind() {
        ItemType::AdministrativeLicensing => {
            c.push(format!("符合{law}规定的许可条件"));
            c.push("申请材料齐全、符合法定形式".into());
        }
        ItemType::AdministrativePayment => {
            c.push(format!("符合{law}规定的给付条件"));
            c.push("未重复享受同类待遇".into());
        }
        ItemType::AdministrativeConfirmation => {
            c.push("申请确认的事实真实、清楚，证明材料齐全".into());
        }
        ItemType::AdministrativeReward => {
            c.push("在相关领域作出突出贡献，事迹真实、经得起检验".into());
        }
        ItemType::AdministrativeAdjudication => {
            c.push("当事人之间存在与行政管理活动密切相关的民事纠纷".into());
            c.push("有明确的被申请人、具体的裁决请求和事实根据".into());
        }
        ItemType::PublicService if t.info_only => {
            c.push("无特别条件，均可申请".into());
        }
        ItemType::PublicService => c.push("属于本地区服务范围".into()),
        _ if t.filing => c.push("已依法取得相关资格或者完成相关事项，按规定报送备案".into()),
        _ => c.push("申请事项属于本部门职责范围，材料齐全".into()),
    }
    c
}

fn material(
    name: &str,
    form: MaterialForm,
    required: bool,
    licence_types: Vec<String>,
    note: &str,
) -> Material {
    Material {
        name: name.into(),
        form,
        required,
        copies: 1,
        licence_types,
        note: note.into(),
    }
}

fn materials(t: &Traits<'_>) -> Vec<Material> {
    use MaterialForm::{Both, Electronic, Paper};
    let name = t.name();
    let mut m = Vec::new();
    if t.info_only {
        m.push(material(
            "申请人有效身份证件",
            Both,
            false,
            vec![],
            "仅查询本人信息时需要，现场出示原件或在掌办App中完成实名认证",
        ));
        return m;
    }
    m.push(material(
        "申请表",
        Electronic,
        true,
        vec![],
        "在掌办App中在线填写，无需另行提交纸质申请表",
    ));
    if t.object != ServiceObject::LegalPerson {
        m.push(material(
            "申请人居民身份证",
            Both,
            true,
            vec![],
            "现场办理出示原件；网上办理上传正反面扫描件",
        ));
    }
    if t.licences.residence {
        m.push(material(
            "居住证（非本地户籍申请人提供）",
            Both,
            false,
            vec![vct_for(PUBLIC_SECURITY.type_code)],
            "已领取居住证电子证照的，可在表单中直接引用，免于提交",
        ));
    }
    if t.licences.business_required {
        m.push(material(
            "营业执照",
            Both,
            true,
            vec![vct_for(MARKET_REGULATION.type_code)],
            "已领取营业执照电子证照的，可在表单中直接引用，免于提交复印件",
        ));
    } else if t.licences.business {
        // Founding: the new organisation has no licence yet, its investors may.
        m.push(material(
            "投资人主体资格证明（投资人为企业的，提供其营业执照）",
            Both,
            false,
            vec![vct_for(MARKET_REGULATION.type_code)],
            "投资人已领取营业执照电子证照的，可在表单中直接引用；投资人为自然人的，提供居民身份证",
        ));
    }
    if t.licences.marriage {
        m.push(material(
            "结婚证",
            Both,
            true,
            vec![vct_for(CIVIL_AFFAIRS.type_code)],
            "已领取结婚证电子证照的，可在表单中直接引用，免于提交",
        ));
    }
    if has_any(name, &["结婚登记", "婚姻登记", "离婚登记"]) {
        m.push(material(
            "本人常住户口簿",
            Paper,
            true,
            vec![],
            "原件，双方当事人各自提供",
        ));
    }
    if has_any(name, &["结婚登记", "婚姻登记"]) {
        m.push(material(
            "本人无配偶以及与对方当事人没有直系血亲和三代以内旁系血亲关系的签字声明",
            Paper,
            true,
            vec![],
            "在婚姻登记机关现场签署",
        ));
    }
    match t.kind() {
        ItemType::AdministrativeLicensing => {
            if t.object != ServiceObject::NaturalPerson && has_any(name, &["设立", "新办"]) {
                m.push(material(
                    "住所（经营场所）使用证明",
                    Both,
                    true,
                    vec![],
                    "产权证明或租赁合同复印件",
                ));
            }
            m.push(material(
                "符合许可条件的相关证明材料",
                Both,
                true,
                vec![],
                "按许可条件逐项提供，复印件需加盖公章或由本人签字",
            ));
        }
        ItemType::AdministrativePayment => {
            m.push(material(
                "本人社会保障卡或银行账户信息",
                Both,
                true,
                vec![],
                "用于发放资金，账户须为申请人本人所有",
            ));
            m.push(material(
                "符合给付条件的证明材料",
                Both,
                true,
                vec![],
                "可通过数据共享获取的，免于提交",
            ));
        }
        ItemType::AdministrativeConfirmation => m.push(material(
            "需确认事项的证明材料",
            Both,
            true,
            vec![],
            "原件核验，复印件1份",
        )),
        ItemType::AdministrativeReward => m.push(material(
            "事迹材料",
            Both,
            true,
            vec![],
            "事迹简介及相关证明，由推荐单位签署意见",
        )),
        ItemType::AdministrativeAdjudication => {
            let mut application = material(
                "裁决申请书",
                Paper,
                true,
                vec![],
                "写明双方当事人信息、裁决请求及事实理由，按被申请人人数提供副本",
            );
            application.copies = 2;
            m.push(application);
            m.push(material(
                "证据材料",
                Both,
                true,
                vec![],
                "与纠纷有关的合同、票据、照片等",
            ));
        }
        _ if t.filing => m.push(material(
            "备案表及备案事项说明",
            Both,
            true,
            vec![],
            "加盖公章或由本人签字",
        )),
        _ => m.push(material(
            "相关证明材料",
            Both,
            false,
            vec![],
            "根据具体情况提供",
        )),
    }
    m.push(material(
        "授权委托书及代理人身份证件",
        Paper,
        false,
        vec![],
        "委托他人代为办理时提供",
    ));
    m
}

fn step(step: &str, description: &str) -> ProcessStep {
    ProcessStep {
        step: step.into(),
        description: description.into(),
    }
}

fn process(t: &Traits<'_>, depth: OnlineDepth) -> Vec<ProcessStep> {
    let apply = if depth.is_fully_online() {
        step(
            "申请",
            "通过掌办App在线填写表单、引用电子证照或上传材料后提交",
        )
    } else {
        step(
            "申请",
            "通过掌办App在线提交，或到政务服务中心窗口提交申请材料",
        )
    };
    let deliver = if depth.is_fully_online() {
        step("办结", "办理结果通过掌办App推送，电子证照自动存入证照夹")
    } else {
        step("办结", "窗口领取办理结果，或选择邮寄送达")
    };
    if t.info_only {
        return vec![
            step("申请", "通过掌办App或电话提出查询、咨询"),
            step("办理", "即时答复，或在1个工作日内回复"),
        ];
    }
    match t.kind() {
        ItemType::AdministrativeAdjudication => vec![
            apply,
            step("受理", "对申请进行审查，符合条件的予以受理并通知被申请人"),
            step("调查", "核实事实、收集证据，必要时组织听证"),
            step("调解", "在查明事实的基础上先行调解"),
            step("裁决", "调解不成的，依法作出裁决"),
            step("送达", "向双方当事人送达裁决书"),
        ],
        _ => vec![
            apply,
            step(
                "受理",
                "材料齐全、符合法定形式的，予以受理；不予受理的，一次性告知原因",
            ),
            step("审查", "对申请材料进行审查，需要现场核查的，组织现场核查"),
            step("决定", "作出准予或者不予办理的决定，不予办理的说明理由"),
            deliver,
        ],
    }
}

fn fees(t: &Traits<'_>) -> Vec<Fee> {
    let name = t.name();
    let fee = |name: &str, amount: &str, basis: &str| Fee {
        name: name.into(),
        amount_yuan: amount.into(),
        basis: basis.into(),
    };
    if name.contains("不动产登记") {
        vec![fee(
            "不动产登记费（住宅）",
            "80",
            "《国家发展改革委 财政部关于不动产登记收费标准等有关问题的通知》",
        )]
    } else if name.contains("驾驶证") && !name.contains("公证") {
        vec![fee("证照工本费", "10", "国家及省有关行政事业性收费标准")]
    } else if name.contains("居民身份证办理") {
        vec![fee(
            "居民身份证工本费",
            "20",
            "《中华人民共和国居民身份证法》",
        )]
    } else {
        Vec::new()
    }
}

fn faq(t: &Traits<'_>, depth: OnlineDepth, visits: u8) -> Vec<Faq> {
    let qa = |q: &str, a: String| Faq { q: q.into(), a };
    let mut f = Vec::new();
    if depth.is_fully_online() {
        f.push(qa(
            "需要到现场办理吗？",
            "不需要。本事项全程网上办理，在掌办App提交即可，没有网络时也可先填写，联网后自动提交。"
                .into(),
        ));
    } else {
        f.push(qa(
            "需要跑几次？",
            format!("最多到现场{visits}次。可先在掌办App提交申请，材料齐全的，按通知到窗口办理。"),
        ));
    }
    if t.licences.business || t.licences.residence || t.licences.marriage {
        f.push(qa(
            "可以用电子证照代替纸质材料吗？",
            "可以。在表单中引用已领取的电子证照，对应材料免于提交，只出示所需字段。".into(),
        ));
    }
    if !t.info_only {
        let who = match t.object {
            ServiceObject::LegalPerson => "经办人需携带本人居民身份证和单位出具的授权委托书。",
            _ => "代办人需携带本人居民身份证和申请人签署的授权委托书。",
        };
        f.push(qa("可以委托他人代办吗？", format!("可以。{who}")));
    }
    if fees(t).is_empty() {
        f.push(qa("办理收费吗？", "本事项不收费。".into()));
    }
    f
}

// ---- forms ----

const ATTACHMENT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Unified social credit code (统一社会信用代码, GB 32100-2015) shape.
pub const CREDIT_CODE_PATTERN: &str = r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}";

fn field(name: &str, zh: &str, en: &str, kind: FieldKind, required: bool) -> FormField {
    FormField {
        name: name.into(),
        label_zh: zh.into(),
        label_en: en.into(),
        kind,
        required,
        help: None,
    }
}

fn text(min_len: u32, max_len: u32) -> FieldKind {
    FieldKind::Text {
        min_len,
        max_len,
        pattern: None,
    }
}

fn attachment() -> FieldKind {
    FieldKind::Attachment {
        media_types: vec![
            "application/pdf".into(),
            "image/jpeg".into(),
            "image/png".into(),
        ],
        max_bytes: ATTACHMENT_MAX_BYTES,
    }
}

fn licence_ref(type_code: &str) -> FieldKind {
    FieldKind::LicenceRef {
        licence_types: vec![vct_for(type_code)],
    }
}

fn with_help(mut f: FormField, help: &str) -> FormField {
    f.help = Some(help.into());
    f
}

fn form(t: &Traits<'_>) -> FormSchema {
    let mut fields = vec![
        field(
            "applicant_name",
            "申请人姓名",
            "Applicant's name",
            text(2, 50),
            true,
        ),
        with_help(
            field(
                "applicant_id_number",
                "申请人居民身份证号码",
                "Applicant's ID card number",
                FieldKind::IdNumber,
                true,
            ),
            "18位，末位为X的请输入大写X",
        ),
        field(
            "applicant_phone",
            "联系电话",
            "Telephone",
            FieldKind::Phone,
            true,
        ),
    ];
    if t.object != ServiceObject::NaturalPerson && !t.info_only {
        let required = t.object == ServiceObject::LegalPerson;
        fields.push(field(
            "organisation_name",
            "单位名称",
            "Organisation name",
            text(2, 100),
            required,
        ));
        fields.push(field(
            "credit_code",
            "统一社会信用代码",
            "Unified social credit code",
            FieldKind::Text {
                min_len: 18,
                max_len: 18,
                pattern: Some(CREDIT_CODE_PATTERN.into()),
            },
            required,
        ));
    }
    if t.licences.business && !t.info_only {
        fields.push(with_help(
            field(
                "business_licence",
                "营业执照（电子证照）",
                "Business licence (electronic)",
                licence_ref(MARKET_REGULATION.type_code),
                false,
            ),
            "引用后无需上传营业执照复印件",
        ));
    }
    if t.licences.residence && !t.info_only {
        fields.push(field(
            "residence_permit",
            "居住证（电子证照）",
            "Residence permit (electronic)",
            licence_ref(PUBLIC_SECURITY.type_code),
            false,
        ));
    }
    if t.licences.marriage && !t.info_only {
        fields.push(field(
            "marriage_certificate",
            "结婚证（电子证照）",
            "Marriage certificate (electronic)",
            licence_ref(CIVIL_AFFAIRS.type_code),
            false,
        ));
    }
    fields.extend(type_fields(t));
    FormSchema { version: 1, fields }
}

fn type_fields(t: &Traits<'_>) -> Vec<FormField> {
    let proofs = |required: bool| {
        with_help(
            field(
                "supporting_documents",
                "证明材料扫描件",
                "Scanned supporting documents",
                attachment(),
                required,
            ),
            "PDF、JPG或PNG，不超过10MB；已引用电子证照的材料无需上传",
        )
    };
    match t.kind() {
        ItemType::PublicService if t.info_only => vec![field(
            "question",
            "咨询或查询内容",
            "What you want to know",
            text(2, 500),
            true,
        )],
        ItemType::PublicService => vec![
            field(
                "appointment_date",
                "预约办理日期",
                "Appointment date",
                FieldKind::Date {
                    not_before: Some(TODAY.into()),
                    not_after: None,
                },
                false,
            ),
            field(
                "result_delivery",
                "结果领取方式",
                "How to receive the result",
                FieldKind::Choice {
                    options: vec![
                        ChoiceOption::new("online", "线上查看", "View online"),
                        ChoiceOption::new("window", "窗口领取", "Collect at the window"),
                        ChoiceOption::new("post", "邮寄送达", "By post"),
                    ],
                    multiple: false,
                },
                true,
            ),
            proofs(false),
        ],
        ItemType::AdministrativeLicensing => vec![
            field(
                "application_kind",
                "申请类型",
                "Kind of application",
                FieldKind::Choice {
                    options: vec![
                        ChoiceOption::new("new", "新办", "New"),
                        ChoiceOption::new("change", "变更", "Change"),
                        ChoiceOption::new("renewal", "延续", "Renewal"),
                        ChoiceOption::new("reissue", "补办", "Reissue"),
                        ChoiceOption::new("cancellation", "注销", "Cancellation"),
                    ],
                    multiple: false,
                },
                true,
            ),
            field(
                "premises_address",
                "经营（活动）场所地址",
                "Address of the premises",
                text(5, 200),
                t.object == ServiceObject::LegalPerson,
            ),
            field(
                "staff_count",
                "从业人员数",
                "Number of staff",
                FieldKind::Number {
                    min: Some(0.0),
                    max: Some(100_000.0),
                    integer: true,
                },
                false,
            ),
            proofs(true),
        ],
        ItemType::AdministrativePayment => vec![
            field(
                "bank",
                "开户银行",
                "Bank",
                FieldKind::Choice {
                    options: vec![
                        ChoiceOption::new("abc", "中国农业银行", "Agricultural Bank of China"),
                        ChoiceOption::new("icbc", "中国工商银行", "ICBC"),
                        ChoiceOption::new("ccb", "中国建设银行", "China Construction Bank"),
                        ChoiceOption::new("boc", "中国银行", "Bank of China"),
                        ChoiceOption::new("psbc", "中国邮政储蓄银行", "Postal Savings Bank"),
                        ChoiceOption::new("rcb", "四川农商银行", "Sichuan Rural Commercial Bank"),
                    ],
                    multiple: false,
                },
                true,
            ),
            field(
                "bank_account",
                "本人银行账号",
                "Your bank account number",
                FieldKind::Text {
                    min_len: 16,
                    max_len: 19,
                    pattern: Some(r"\d{16,19}".into()),
                },
                true,
            ),
            field(
                "household_size",
                "家庭人口数",
                "Household size",
                FieldKind::Number {
                    min: Some(1.0),
                    max: Some(20.0),
                    integer: true,
                },
                true,
            ),
            proofs(true),
        ],
        ItemType::AdministrativeConfirmation => vec![
            field(
                "event_date",
                "需确认事项发生日期",
                "Date of the fact to confirm",
                FieldKind::Date {
                    not_before: Some("1900-01-01".into()),
                    not_after: Some(TODAY.into()),
                },
                true,
            ),
            field(
                "description",
                "情况说明",
                "Description",
                text(5, 1000),
                true,
            ),
            proofs(true),
        ],
        ItemType::AdministrativeReward => vec![
            field("deeds", "主要事迹", "Achievements", text(20, 2000), true),
            proofs(false),
        ],
        ItemType::AdministrativeAdjudication => vec![
            field(
                "respondent_name",
                "被申请人名称或姓名",
                "Respondent",
                text(2, 100),
                true,
            ),
            field(
                "dispute",
                "纠纷事实和理由",
                "Facts and reasons of the dispute",
                text(20, 5000),
                true,
            ),
            field(
                "request",
                "裁决请求",
                "What you ask to be decided",
                text(5, 1000),
                true,
            ),
            proofs(false),
        ],
        _ => vec![
            field(
                "description",
                if t.filing {
                    "备案事项说明"
                } else {
                    "申请事项说明"
                },
                "Description",
                text(5, 1000),
                true,
            ),
            proofs(true),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_codes() {
        for (code, basic) in [
            (
                "511A0138000000-511602000000-000-115113010833722043-1-00",
                "511A0138000000",
            ),
            (
                "G-000007-001-511602000000-000-115113010833722043-1-00",
                "G-000007-001",
            ),
            (
                "511A0077700002-510000000000-000-8282348-1-00",
                "511A0077700002",
            ),
            ("E-000004-001-11511301008778386B", "E-000004-001"),
            ("H-000185-001-4444444444", "H-000185-001"),
            ("X", "X"),
            ("", ""),
        ] {
            assert_eq!(basic_code(code), basic, "{code}");
        }
    }

    #[test]
    fn task_type_is_a_string_in_the_file() {
        let json = r#"[{"department":"区公安分局","main_item":"未分类","name":"户口迁移审批",
            "item_code":"511A0001-511602000000-1","task_type":"1","dept_code":"x","area_code":"511602000000"}]"#;
        let items = load_fixture(json).unwrap();
        assert_eq!(items[0].task_type, ItemType::AdministrativeLicensing);
        let back = serde_json::to_value(&items[0]).unwrap();
        assert_eq!(back["task_type"], "1");
        assert!(load_fixture(&json.replace(r#""1""#, r#""11""#)).is_err());
        assert!(load_fixture(&json.replace(r#""1""#, "1")).is_err());
    }

    #[test]
    fn department_phones_are_landlines() {
        let p = department_phone("083372204");
        assert!(super::super::validate::is_valid_phone(&p), "{p}");
        assert_eq!(p, department_phone("083372204"));
    }
}
