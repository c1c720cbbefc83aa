//! The rectification case a 差评 opens: due a number of working days after
//! it was opened (on the [`WorkCalendar`]), answered once by the
//! department's reviewer, overdue while unanswered past its due day.

use chrono::NaiveDate;
use serde::Serialize;

use super::TEXT_MAX_CHARS;
use crate::calendar::{CalendarError, Deadline, WorkCalendar};

/// A 差评's rectification case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RectificationCase {
    /// The day the 差评 arrived (China's date).
    pub opened_on: NaiveDate,
    /// When the answer is due.
    pub due: Deadline,
    /// The day it was answered, and the answer.
    pub answered: Option<(NaiveDate, String)>,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The case was answered already (an answer is final; the resident
    /// may re-rate once after it).
    #[error("the case was answered already")]
    AlreadyAnswered,
    /// An empty answer, or one over the length limit.
    #[error("an answer is 1 to {TEXT_MAX_CHARS} characters")]
    BadAnswer,
    /// An answer dated before the case opened.
    #[error("an answer cannot predate its case")]
    BeforeOpened,
}

impl CaseError {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyAnswered => "case_answered",
            Self::BadAnswer => "bad_answer",
            Self::BeforeOpened => "answer_before_case",
        }
    }
}

impl RectificationCase {
    /// Opens a case on `opened_on`, due `working_days` working days later.
    pub fn open(
        opened_on: NaiveDate,
        calendar: &WorkCalendar,
        working_days: u32,
    ) -> Result<Self, CalendarError> {
        Ok(Self {
            opened_on,
            due: calendar.add_working_days(opened_on, working_days)?,
            answered: None,
        })
    }

    /// Records the department's answer, given on `on`.
    pub fn answer(&mut self, on: NaiveDate, text: &str) -> Result<(), CaseError> {
        if self.answered.is_some() {
            return Err(CaseError::AlreadyAnswered);
        }
        let n = text.trim().chars().count();
        if n == 0 || text.chars().count() > TEXT_MAX_CHARS {
            return Err(CaseError::BadAnswer);
        }
        if on < self.opened_on {
            return Err(CaseError::BeforeOpened);
        }
        self.answered = Some((on, text.to_owned()));
        Ok(())
    }

    /// Working days past the due day: until `today` while unanswered, until
    /// the answer once answered (0 if on time).
    pub fn days_late(&self, today: NaiveDate, calendar: &WorkCalendar) -> u32 {
        let end = self.answered.as_ref().map_or(today, |(on, _)| *on);
        calendar.working_days_between(self.due.date, end)
    }

    /// Unanswered and past its due day on `today`.
    pub fn is_overdue(&self, today: NaiveDate, calendar: &WorkCalendar) -> bool {
        self.answered.is_none() && self.days_late(today, calendar) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_case_is_due_in_working_days_and_overdue_after() {
        let cal = WorkCalendar::builtin();
        let mut case = RectificationCase::open(d("2026-09-24"), cal, 15).unwrap();
        assert_eq!(case.due.date, d("2026-10-22"));
        assert!(
            !case.is_overdue(d("2026-10-22"), cal),
            "due day itself is on time"
        );
        assert!(case.is_overdue(d("2026-10-23"), cal));
        assert_eq!(case.days_late(d("2026-10-26"), cal), 2, "Fri 23 and Mon 26");
        assert_eq!(
            case.days_late(d("2026-10-25"), cal),
            1,
            "the weekend does not count"
        );
        case.answer(d("2026-10-26"), "已核实，窗口人员已整改并电话回访")
            .unwrap();
        assert!(!case.is_overdue(d("2026-11-30"), cal));
        assert_eq!(
            case.days_late(d("2026-11-30"), cal),
            2,
            "answered two working days late"
        );
        assert_eq!(
            case.answer(d("2026-10-27"), "again"),
            Err(CaseError::AlreadyAnswered)
        );
    }

    #[test]
    fn answers_are_checked() {
        let cal = WorkCalendar::builtin();
        let mut case = RectificationCase::open(d("2026-03-02"), cal, 15).unwrap();
        assert_eq!(
            case.answer(d("2026-03-03"), "  "),
            Err(CaseError::BadAnswer)
        );
        assert_eq!(
            case.answer(d("2026-03-03"), &"答".repeat(TEXT_MAX_CHARS + 1)),
            Err(CaseError::BadAnswer)
        );
        assert_eq!(
            case.answer(d("2026-03-01"), "已整改"),
            Err(CaseError::BeforeOpened)
        );
        assert_eq!(case.answered, None);
        assert_eq!(case.answer(d("2026-03-02"), "已整改"), Ok(()));
    }
}
