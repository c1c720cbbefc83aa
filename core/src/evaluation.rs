//! 好差评: a resident's evaluation of a finished application, shared by the
//! phone (checked before it is queued) and the server (checked on receipt).
//!
//! The levels and their grades follow 国办发〔2019〕51号 (《国务院办公厅关于
//! 建立政务服务"好差评"制度提高政务服务水平的意见》): five levels, 非常满意
//! and 满意 count as 好评, 基本满意 as 中评, 不满意 and 非常不满意 as 差评.
//! A 差评 must say why (the reason is what the department's rectification
//! answers), and opens a rectification case due within a number of working
//! days ([`crate::calendar`]; 15 by default, as the provincial schemes under
//! 51号 set it).
//!
//! Who may rate what is [`may_rate`]: the submitting resident, once, after
//! the application reached a final state; and once more after the
//! department answered the case a 差评 opened.

use serde::{Deserialize, Serialize};

/// The most characters of a comment or a reason.
pub const TEXT_MAX_CHARS: usize = 500;
/// The most tags on one evaluation.
pub const MAX_TAGS: usize = 5;
/// Working days a department has to answer a 差评, unless configured.
pub const DEFAULT_RECTIFICATION_DAYS: u32 = 15;

/// The five levels of satisfaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 非常不满意.
    VeryDissatisfied,
    /// 不满意.
    Dissatisfied,
    /// 基本满意.
    BasicallySatisfied,
    /// 满意.
    Satisfied,
    /// 非常满意.
    VerySatisfied,
}

impl Level {
    /// Every level, from the worst.
    pub const ALL: [Level; 5] = [
        Level::VeryDissatisfied,
        Level::Dissatisfied,
        Level::BasicallySatisfied,
        Level::Satisfied,
        Level::VerySatisfied,
    ];

    /// The level's grade.
    pub fn grade(self) -> Grade {
        match self {
            Self::VerySatisfied | Self::Satisfied => Grade::Good,
            Self::BasicallySatisfied => Grade::Neutral,
            Self::Dissatisfied | Self::VeryDissatisfied => Grade::Bad,
        }
    }

    /// Its name in Chinese, as residents see it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::VerySatisfied => "非常满意",
            Self::Satisfied => "满意",
            Self::BasicallySatisfied => "基本满意",
            Self::Dissatisfied => "不满意",
            Self::VeryDissatisfied => "非常不满意",
        }
    }

    /// The stable wire name (`very_satisfied` …).
    pub fn code(self) -> &'static str {
        match self {
            Self::VerySatisfied => "very_satisfied",
            Self::Satisfied => "satisfied",
            Self::BasicallySatisfied => "basically_satisfied",
            Self::Dissatisfied => "dissatisfied",
            Self::VeryDissatisfied => "very_dissatisfied",
        }
    }
}

/// 好评, 中评 or 差评.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// 好评 (非常满意, 满意).
    Good,
    /// 中评 (基本满意).
    Neutral,
    /// 差评 (不满意, 非常不满意): needs a reason, opens a rectification case.
    Bad,
}

impl Grade {
    /// Its name in Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Good => "好评",
            Self::Neutral => "中评",
            Self::Bad => "差评",
        }
    }
}

/// The tags a resident may pick (codes, with their Chinese labels): what went
/// well and what did not, in the dimensions 51号 names (服务态度, 办事效率,
/// 办事指南的准确性, 跑动次数, 线上办理的便利).
pub const TAGS: &[(&str, &str)] = &[
    ("fast", "办理速度快"),
    ("courteous", "服务态度好"),
    ("guide_clear", "办事指南清楚准确"),
    ("no_trip", "不用跑腿"),
    ("easy_online", "线上办理方便"),
    ("slow", "办理时间长"),
    ("discourteous", "服务态度差"),
    ("guide_unclear", "办事指南不清楚"),
    ("extra_materials", "要求额外材料"),
    ("several_trips", "多次跑动"),
    ("app_trouble", "线上办理不便"),
];

/// A resident's evaluation of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// How satisfied.
    pub level: Level,
    /// Picked tags (codes of [`TAGS`]), at most [`MAX_TAGS`], no repeats.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A free comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Why (required for a 差评).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Why an evaluation is refused; each has a stable code for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// A 差评 without a (non-blank) reason.
    #[error("a 差评 needs a reason")]
    ReasonRequired,
    /// A comment or reason over [`TEXT_MAX_CHARS`].
    #[error("`{0}` is longer than {TEXT_MAX_CHARS} characters")]
    TooLong(&'static str),
    /// A tag that is not one of [`TAGS`].
    #[error("unknown tag")]
    UnknownTag,
    /// More than [`MAX_TAGS`] tags, or one twice.
    #[error("at most {MAX_TAGS} different tags")]
    Tags,
    /// The application is not in a final state yet.
    #[error("the application is not finished yet")]
    NotFinished,
    /// Rated already (and no answered case allows a second rating).
    #[error("this application was already rated")]
    AlreadyRated,
    /// Someone other than the submitting resident.
    #[error("only the resident who applied may rate")]
    NotTheApplicant,
}

impl EvaluationError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReasonRequired => "reason_required",
            Self::TooLong(_) => "too_long",
            Self::UnknownTag => "unknown_tag",
            Self::Tags => "too_many_tags",
            Self::NotFinished => "not_finished",
            Self::AlreadyRated => "already_rated",
            Self::NotTheApplicant => "not_the_applicant",
        }
    }
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|t| t.trim().is_empty())
}

impl Evaluation {
    /// Checks the evaluation's own shape (the phone before queueing, the
    /// server on receipt).
    pub fn validate(&self) -> Result<(), EvaluationError> {
        for (name, text) in [("comment", &self.comment), ("reason", &self.reason)] {
            if text
                .as_deref()
                .is_some_and(|t| t.chars().count() > TEXT_MAX_CHARS)
            {
                return Err(EvaluationError::TooLong(name));
            }
        }
        if self.level.grade() == Grade::Bad && blank(&self.reason) {
            return Err(EvaluationError::ReasonRequired);
        }
        if self.tags.len() > MAX_TAGS {
            return Err(EvaluationError::Tags);
        }
        for (i, t) in self.tags.iter().enumerate() {
            if !TAGS.iter().any(|(code, _)| code == t) {
                return Err(EvaluationError::UnknownTag);
            }
            if self.tags[..i].contains(t) {
                return Err(EvaluationError::Tags);
            }
        }
        Ok(())
    }

    /// The grade of its level.
    pub fn grade(&self) -> Grade {
        self.level.grade()
    }
}

/// What is known about an application when someone asks to rate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatingContext {
    /// The asker is the resident who submitted it.
    pub is_applicant: bool,
    /// It reached a final state (办结: approved or denied).
    pub finished: bool,
    /// Ratings already given (0, 1 or 2).
    pub ratings: u32,
    /// The first rating was a 差评 and the department answered its case.
    pub case_answered: bool,
}

/// Whether a rating may be given now: the applicant, after the end, once;
/// a second time only after the department answered the 差评's case.
/// Returns whether this is the re-rating.
pub fn may_rate(ctx: RatingContext) -> Result<bool, EvaluationError> {
    if !ctx.is_applicant {
        return Err(EvaluationError::NotTheApplicant);
    }
    if !ctx.finished {
        return Err(EvaluationError::NotFinished);
    }
    match (ctx.ratings, ctx.case_answered) {
        (0, _) => Ok(false),
        (1, true) => Ok(true),
        _ => Err(EvaluationError::AlreadyRated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(level: Level) -> Evaluation {
        Evaluation {
            level,
            tags: vec![],
            comment: None,
            reason: None,
        }
    }

    #[test]
    fn levels_grade_as_51_hao_says() {
        let grades: Vec<Grade> = Level::ALL.iter().map(|l| l.grade()).collect();
        assert_eq!(
            grades,
            [
                Grade::Bad,
                Grade::Bad,
                Grade::Neutral,
                Grade::Good,
                Grade::Good
            ]
        );
        assert_eq!(Level::BasicallySatisfied.label_zh(), "基本满意");
        for l in Level::ALL {
            let wire = serde_json::to_value(l).unwrap();
            assert_eq!(wire, l.code());
        }
    }

    #[test]
    fn a_bad_rating_needs_a_reason_and_good_ones_do_not() {
        for l in [Level::Dissatisfied, Level::VeryDissatisfied] {
            assert_eq!(eval(l).validate(), Err(EvaluationError::ReasonRequired));
            let mut e = eval(l);
            e.reason = Some("  \n ".into());
            assert_eq!(e.validate(), Err(EvaluationError::ReasonRequired));
            e.reason = Some("窗口要求提供已在线提交的材料".into());
            assert_eq!(e.validate(), Ok(()));
        }
        for l in [
            Level::BasicallySatisfied,
            Level::Satisfied,
            Level::VerySatisfied,
        ] {
            assert_eq!(eval(l).validate(), Ok(()));
        }
    }

    #[test]
    fn tags_and_lengths_are_bounded() {
        let mut e = eval(Level::Satisfied);
        e.tags = vec!["fast".into(), "made_up".into()];
        assert_eq!(e.validate(), Err(EvaluationError::UnknownTag));
        e.tags = vec!["fast".into(), "fast".into()];
        assert_eq!(e.validate(), Err(EvaluationError::Tags));
        e.tags = TAGS.iter().take(6).map(|(c, _)| (*c).to_owned()).collect();
        assert_eq!(e.validate(), Err(EvaluationError::Tags));
        e.tags = vec!["fast".into(), "courteous".into()];
        e.comment = Some("好".repeat(TEXT_MAX_CHARS));
        assert_eq!(e.validate(), Ok(()));
        e.comment = Some("好".repeat(TEXT_MAX_CHARS + 1));
        assert_eq!(e.validate(), Err(EvaluationError::TooLong("comment")));
        let mut e = eval(Level::Dissatisfied);
        e.reason = Some("慢".repeat(TEXT_MAX_CHARS + 1));
        assert_eq!(e.validate(), Err(EvaluationError::TooLong("reason")));
    }

    #[test]
    fn unknown_levels_do_not_parse() {
        assert!(serde_json::from_str::<Evaluation>(r#"{"level":"ecstatic"}"#).is_err());
        assert!(serde_json::from_str::<Evaluation>(r#"{"level":5}"#).is_err());
        let e: Evaluation = serde_json::from_str(r#"{"level":"satisfied"}"#).unwrap();
        assert_eq!(e, eval(Level::Satisfied));
    }

    #[test]
    fn who_may_rate_and_when() {
        let ctx = RatingContext {
            is_applicant: true,
            finished: true,
            ratings: 0,
            case_answered: false,
        };
        assert_eq!(may_rate(ctx), Ok(false));
        let not_mine = RatingContext {
            is_applicant: false,
            ..ctx
        };
        assert_eq!(may_rate(not_mine), Err(EvaluationError::NotTheApplicant));
        let running = RatingContext {
            finished: false,
            ..ctx
        };
        assert_eq!(may_rate(running), Err(EvaluationError::NotFinished));
        let rated = RatingContext { ratings: 1, ..ctx };
        assert_eq!(may_rate(rated), Err(EvaluationError::AlreadyRated));
        let answered = RatingContext {
            ratings: 1,
            case_answered: true,
            ..ctx
        };
        assert_eq!(
            may_rate(answered),
            Ok(true),
            "one re-rating after the answer"
        );
        let twice = RatingContext {
            ratings: 2,
            case_answered: true,
            ..ctx
        };
        assert_eq!(may_rate(twice), Err(EvaluationError::AlreadyRated));
    }
}
