//! The working-day calendar: which days government offices work, as data.
//!
//! Deadlines in government services are counted in working days (工作日): a
//! 差评's rectification within 15 working days, a guide's promised time
//! limit. China's working days are Monday to Friday, minus each year's public
//! holidays (放假), plus the weekend days worked in exchange (调休上班), which
//! the State Council's General Office publishes each November for the next
//! year. The calendar is therefore data ([`WorkCalendar::from_json`]), kept
//! by operators, with the years the product knows built in
//! (`core/data/work-calendar.json`, each year citing its notice).
//!
//! A date in a year the calendar does not list counts Monday to Friday as
//! working days, and a [`Deadline`] that needed such a date says so
//! (`provisional`), so that it can be recomputed once the year is added:
//! a case opened in December must not fail because next year's schedule is
//! not out yet.
//!
//! Pure functions of their arguments: no clock is read here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The built-in calendar (the years whose notices have been published).
const BUILTIN: &str = include_str!("../data/work-calendar.json");

/// The longest a deadline may reach, in working days (about four years).
pub const MAX_WORKING_DAYS: u32 = 1000;

/// The longest one holiday range may be, in days (the longest so far is
/// nine: 春节 2026).
const MAX_RANGE_DAYS: i64 = 15;

/// One year's schedule as published: holiday ranges and working weekend days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarYear {
    /// The year.
    pub year: i32,
    /// Where the schedule comes from (the notice, its date, a link).
    pub source: String,
    /// Holidays: `[first, last, name]`, dates `YYYY-MM-DD`, inclusive.
    pub holidays: Vec<(String, String, String)>,
    /// Weekend days that are working days (调休上班), `YYYY-MM-DD`.
    pub workdays: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CalendarFile {
    years: Vec<CalendarYear>,
}

/// Why a calendar was refused. Nothing is half-loaded: a calendar with any
/// error is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The JSON does not have the calendar's shape.
    #[error("calendar is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// A date is not `YYYY-MM-DD`.
    #[error("`{0}` is not a date YYYY-MM-DD")]
    BadDate(String),
    /// A date lies outside the year it is listed under.
    #[error("{date} is listed under year {year}")]
    OutsideYear {
        /// The date.
        date: NaiveDate,
        /// The year it is listed under.
        year: i32,
    },
    /// A holiday range ends before it starts, or is implausibly long.
    #[error("holiday range {first}..{last} is reversed or longer than {MAX_RANGE_DAYS} days")]
    BadRange {
        /// Its first day.
        first: NaiveDate,
        /// Its last day.
        last: NaiveDate,
    },
    /// A day is both a holiday and a working day.
    #[error("{0} is listed both as a holiday and as a working day")]
    Conflict(NaiveDate),
    /// A working day listed as 调休 is a weekday (only weekend days are
    /// ever worked in exchange).
    #[error("{0} is listed as a worked weekend day but is a weekday")]
    WorkdayNotWeekend(NaiveDate),
    /// A year is listed twice.
    #[error("year {0} is listed twice")]
    DuplicateYear(i32),
    /// A deadline of more than [`MAX_WORKING_DAYS`] was asked, or it runs
    /// past the last representable date.
    #[error("a deadline of {0} working days is out of range")]
    TooFar(u32),
}

/// A date reached by counting working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    /// The day.
    pub date: NaiveDate,
    /// Whether a day of a year the calendar does not list was counted (as
    /// Monday to Friday): recompute once that year is added.
    pub provisional: bool,
}

#[derive(Debug, Clone, Default)]
struct YearDays {
    off: BTreeSet<NaiveDate>,
    on: BTreeSet<NaiveDate>,
}

/// Working days: Monday to Friday, minus listed holidays, plus listed
/// worked weekend days, for the years listed.
#[derive(Debug, Clone, Default)]
pub struct WorkCalendar {
    years: BTreeMap<i32, YearDays>,
    published: Vec<CalendarYear>,
}

fn date(text: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| CalendarError::BadDate(text.chars().take(32).collect()))
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl WorkCalendar {
    /// A calendar of the given years, checked whole.
    pub fn from_years(years: &[CalendarYear]) -> Result<Self, CalendarError> {
        let mut out = Self::default();
        for y in years {
            if out.years.contains_key(&y.year) {
                return Err(CalendarError::DuplicateYear(y.year));
            }
            let in_year = |d: NaiveDate| {
                if d.year() == y.year {
                    Ok(d)
                } else {
                    Err(CalendarError::OutsideYear {
                        date: d,
                        year: y.year,
                    })
                }
            };
            let mut days = YearDays::default();
            for (first, last, _name) in &y.holidays {
                let (first, last) = (in_year(date(first)?)?, in_year(date(last)?)?);
                let len = (last - first).num_days();
                if !(0..MAX_RANGE_DAYS).contains(&len) {
                    return Err(CalendarError::BadRange { first, last });
                }
                days.off
                    .extend(first.iter_days().take_while(|d| *d <= last));
            }
            for w in &y.workdays {
                let d = in_year(date(w)?)?;
                if !is_weekend(d) {
                    return Err(CalendarError::WorkdayNotWeekend(d));
                }
                if days.off.contains(&d) {
                    return Err(CalendarError::Conflict(d));
                }
                days.on.insert(d);
            }
            out.years.insert(y.year, days);
            out.published.push(y.clone());
        }
        Ok(out)
    }

    /// A calendar from its JSON form (`{"years": [CalendarYear…]}`).
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let file: CalendarFile =
            serde_json::from_str(text).map_err(|e| CalendarError::Json(e.to_string()))?;
        Self::from_years(&file.years)
    }

    /// The built-in calendar. (A test proves the shipped file loads; were it
    /// ever unreadable, this would be the empty calendar, every deadline
    /// provisional, rather than a panic.)
    pub fn builtin() -> &'static WorkCalendar {
        static CAL: OnceLock<WorkCalendar> = OnceLock::new();
        CAL.get_or_init(|| Self::from_json(BUILTIN).unwrap_or_default())
    }

    /// The years listed, as published.
    pub fn years(&self) -> &[CalendarYear] {
        &self.published
    }

    /// Whether `year`'s schedule is listed.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Whether `d` is a working day (Monday to Friday for a year not listed).
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.years.get(&d.year()) {
            Some(days) if days.on.contains(&d) => true,
            Some(days) if days.off.contains(&d) => false,
            _ => !is_weekend(d),
        }
    }

    /// The `n`-th working day after `from` (`from` itself is not counted;
    /// `n = 0` gives `from`). A case opened on a Friday with one working day
    /// is due on Monday, unless Monday is a holiday.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> Result<Deadline, CalendarError> {
        if n > MAX_WORKING_DAYS {
            return Err(CalendarError::TooFar(n));
        }
        let mut d = from;
        let mut left = n;
        let mut provisional = false;
        while left > 0 {
            d = d.succ_opt().ok_or(CalendarError::TooFar(n))?;
            provisional |= !self.covers(d.year());
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        Ok(Deadline {
            date: d,
            provisional,
        })
    }

    /// How many working days lie after `from` up to and including `to`
    /// (0 if `to` is not after `from`): how late a case is past its due day.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0u32;
        for d in from.iter_days().skip(1).take_while(|d| *d <= to) {
            if self.is_working_day(d) {
                n = n.saturating_add(1);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        date(s).unwrap()
    }

    fn year(holidays: &[(&str, &str)], workdays: &[&str]) -> CalendarYear {
        CalendarYear {
            year: 2026,
            source: "test".into(),
            holidays: holidays
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into(), "x".into()))
                .collect(),
            workdays: workdays.iter().map(|w| (*w).into()).collect(),
        }
    }

    #[test]
    fn the_builtin_calendar_loads_and_knows_2026() {
        let cal = WorkCalendar::from_json(BUILTIN).unwrap();
        assert!(cal.covers(2026));
        assert_eq!(WorkCalendar::builtin().years().len(), cal.years().len());
        // 春节 2026: Sunday 15 Feb to Monday 23 Feb off; Saturdays 14 and 28 Feb worked.
        assert!(!cal.is_working_day(d("2026-02-16")), "a Monday of 春节");
        assert!(
            !cal.is_working_day(d("2026-02-23")),
            "the last day, a Monday"
        );
        assert!(cal.is_working_day(d("2026-02-14")), "调休 Saturday");
        assert!(cal.is_working_day(d("2026-02-28")), "调休 Saturday");
        assert!(cal.is_working_day(d("2026-02-24")), "back to work");
        assert!(
            !cal.is_working_day(d("2026-02-21")),
            "an ordinary Saturday inside 春节"
        );
        assert!(!cal.is_working_day(d("2026-03-07")), "an ordinary Saturday");
        assert!(cal.is_working_day(d("2026-03-09")), "an ordinary Monday");
    }

    #[test]
    fn a_deadline_skips_weekends_and_holidays_and_counts_worked_saturdays() {
        let cal = WorkCalendar::builtin();
        // Thursday 24 Sep 2026 + 15 working days: 25–27 Sep (中秋) off,
        // 28–30 Sep work (3), 1–7 Oct (国庆) off, Thu 8, Fri 9 (5),
        // Sat 10 Oct worked (6), 12–16 Oct (11), 19–22 Oct (15).
        let due = cal.add_working_days(d("2026-09-24"), 15).unwrap();
        assert_eq!(due.date, d("2026-10-22"));
        assert!(!due.provisional);
        // Without the holidays it would be three weeks: 15 Oct.
        let plain = WorkCalendar::default()
            .add_working_days(d("2026-09-24"), 15)
            .unwrap();
        assert_eq!(plain.date, d("2026-10-15"));
        assert!(plain.provisional);
        // Friday + 1 is Monday; a Friday before 国庆 + 1 is the worked Saturday 10 Oct.
        assert_eq!(
            cal.add_working_days(d("2026-03-06"), 1).unwrap().date,
            d("2026-03-09")
        );
        assert_eq!(
            cal.add_working_days(d("2026-09-30"), 3).unwrap().date,
            d("2026-10-10")
        );
        assert_eq!(
            cal.add_working_days(d("2026-09-30"), 0).unwrap().date,
            d("2026-09-30")
        );
    }

    #[test]
    fn a_deadline_into_an_unlisted_year_is_provisional() {
        let cal = WorkCalendar::builtin();
        // Monday 21 Dec 2026 + 15 working days reaches January 2027.
        let due = cal.add_working_days(d("2026-12-21"), 15).unwrap();
        assert!(due.provisional);
        assert_eq!(due.date, d("2027-01-11"), "Monday to Friday in 2027");
        assert!(
            !cal.add_working_days(d("2026-12-01"), 5)
                .unwrap()
                .provisional
        );
    }

    #[test]
    fn working_days_between_counts_after_the_first_day() {
        let cal = WorkCalendar::builtin();
        assert_eq!(
            cal.working_days_between(d("2026-09-30"), d("2026-10-10")),
            3
        );
        assert_eq!(
            cal.working_days_between(d("2026-10-10"), d("2026-09-30")),
            0
        );
        assert_eq!(
            cal.working_days_between(d("2026-03-06"), d("2026-03-06")),
            0
        );
    }

    #[test]
    fn too_far_is_an_error_not_a_long_loop() {
        let cal = WorkCalendar::builtin();
        assert_eq!(
            cal.add_working_days(d("2026-01-01"), u32::MAX),
            Err(CalendarError::TooFar(u32::MAX))
        );
        assert_eq!(
            cal.add_working_days(NaiveDate::MAX, 1),
            Err(CalendarError::TooFar(1))
        );
    }

    #[test]
    fn bad_calendars_are_refused_whole() {
        let cases: Vec<(CalendarYear, CalendarError)> = vec![
            (
                year(&[("2026-02-30", "2026-03-01")], &[]),
                CalendarError::BadDate("2026-02-30".into()),
            ),
            (
                year(&[("2026-2-1", "2026-02-02")], &[]),
                CalendarError::BadDate("2026-2-1".into()),
            ),
            (
                year(&[("2025-12-31", "2026-01-01")], &[]),
                CalendarError::OutsideYear {
                    date: d("2025-12-31"),
                    year: 2026,
                },
            ),
            (
                year(&[("2026-05-05", "2026-05-01")], &[]),
                CalendarError::BadRange {
                    first: d("2026-05-05"),
                    last: d("2026-05-01"),
                },
            ),
            (
                year(&[("2026-07-01", "2026-08-01")], &[]),
                CalendarError::BadRange {
                    first: d("2026-07-01"),
                    last: d("2026-08-01"),
                },
            ),
            (
                year(&[], &["2026-03-09"]),
                CalendarError::WorkdayNotWeekend(d("2026-03-09")),
            ),
            (
                year(&[("2026-02-14", "2026-02-15")], &["2026-02-14"]),
                CalendarError::Conflict(d("2026-02-14")),
            ),
        ];
        for (y, want) in cases {
            assert_eq!(WorkCalendar::from_years(&[y]).unwrap_err(), want);
        }
        let y = year(&[], &[]);
        assert_eq!(
            WorkCalendar::from_years(&[y.clone(), y]).unwrap_err(),
            CalendarError::DuplicateYear(2026)
        );
        assert!(matches!(
            WorkCalendar::from_json("{\"years\": 3}"),
            Err(CalendarError::Json(_))
        ));
    }
}
