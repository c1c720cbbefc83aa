//! 好差评 (issue 17, ADR 0230): a resident rates a finished submission;
//! a 差评 opens a rectification case due in working days on the calendar
//! operators maintain; the department's reviewer answers it (the answer
//! reaches the resident's timeline, who may then re-rate once); operators
//! see statistics per department and per item, as JSON or CSV, without any
//! resident id.
//!
//! Ratings are validated with core's shared validator
//! ([`Evaluation::validate`], the phone's check before queueing) and stored
//! exactly once by their client-generated rating id (an outbox retry gets
//! the stored rating). Deadlines use core's calendar ([`WorkCalendar`]):
//! the years operators put, else the built-in ones, on China's date from
//! the state's clock. Every operator action goes through [`Act`] (role,
//! scope, one audit row).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zhangban_core::calendar::{CalendarYear, Deadline, WorkCalendar};
use zhangban_core::evaluation::stats::{Tally, by_department, by_item};
use zhangban_core::evaluation::{
    CaseError, Evaluation, Grade, Level, RectificationCase, TEXT_MAX_CHARS,
};

use super::act::Act;
use super::auth::{Operator, Resident};
use super::submissions::valid_client_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::roles::{Action, Role, Target};
use crate::state::{SharedState, blocking, sha256_hex};
use crate::store::evaluations::{
    ALREADY_RATED, CASE_ANSWERED, NOT_FINISHED, RATING_OF_ANOTHER, RATING_REUSED,
};
use crate::store::operators::{OperatorWrite, Written};
use crate::store::{CaseRecord, NewCase, NewRating, RatingRecord, StatusEvent, StoreError};

/// China's date (UTC+8) at `now` (Unix seconds).
pub fn china_today(now: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(now.saturating_add(8 * 3600), 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

fn date(text: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(ApiError::internal)
}

/// The working-day calendar in force: core's built-in years, each replaced
/// by the year an operator put, plus the years only operators put.
pub async fn work_calendar(state: &SharedState) -> ApiResult<WorkCalendar> {
    let stored = blocking(state, |s| s.calendar_years()).await?;
    calendar_with(stored)
}

fn calendar_with(stored: Vec<CalendarYear>) -> ApiResult<WorkCalendar> {
    let mut years: BTreeMap<i32, CalendarYear> = WorkCalendar::builtin()
        .years()
        .iter()
        .map(|y| (y.year, y.clone()))
        .collect();
    for y in stored {
        years.insert(y.year, y);
    }
    let years: Vec<CalendarYear> = years.into_values().collect();
    WorkCalendar::from_years(&years).map_err(ApiError::internal)
}

/// A case as core models it (for due, overdue and answer checks).
fn core_case(c: &CaseRecord) -> ApiResult<RectificationCase> {
    let answered = match (&c.answered_on, &c.answer) {
        (Some(on), Some(text)) => Some((date(on)?, text.clone())),
        _ => None,
    };
    Ok(RectificationCase {
        opened_on: date(&c.opened_on)?,
        due: Deadline {
            date: date(&c.due_on)?,
            provisional: c.provisional,
        },
        answered,
    })
}

// ---------------------------------------------------------------- residents

/// A rating as the phone sends it (core's [`Evaluation`]).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RatingIn {
    /// `very_satisfied` … `very_dissatisfied`.
    pub level: Level,
    /// Tag codes (core's list).
    #[serde(default)]
    pub tags: Vec<String>,
    /// A free comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Why (required for a 差评).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A 差评's case as the resident sees it.
#[derive(Debug, Serialize)]
pub struct ResidentCase {
    /// The case id (the 差评's rating id).
    pub id: String,
    /// Opened on (China's date).
    pub opened_on: String,
    /// Due on.
    pub due_on: String,
    /// The due day reaches a year the calendar did not list yet.
    pub provisional: bool,
    /// The department's answer, once given.
    pub answer: Option<String>,
    /// The day it was answered.
    pub answered_on: Option<String>,
}

/// A stored rating, returned for the first delivery and every retry.
#[derive(Debug, Serialize)]
pub struct RatingOut {
    /// The rating id.
    pub rating_id: String,
    /// The submission.
    pub client_id: String,
    /// Its tracking number.
    pub tracking_number: String,
    /// 1: the first rating; 2: the re-rating after a case answer.
    pub round: u32,
    /// The evaluation.
    pub evaluation: Evaluation,
    /// 好评, 中评 or 差评 (`good`, `neutral`, `bad`).
    pub grade: Grade,
    /// When the server received it.
    pub rated_at: i64,
    /// The rectification case a 差评 opened.
    pub case: Option<ResidentCase>,
}

impl From<RatingRecord> for RatingOut {
    fn from(r: RatingRecord) -> Self {
        Self {
            grade: r.evaluation.grade(),
            rating_id: r.rating_id,
            client_id: r.client_id,
            tracking_number: r.tracking_number,
            round: r.round,
            evaluation: r.evaluation,
            rated_at: r.rated_at,
            case: r.case.map(|c| ResidentCase {
                id: c.id,
                opened_on: c.opened_on,
                due_on: c.due_on,
                provisional: c.provisional,
                answer: c.answer,
                answered_on: c.answered_on,
            }),
        }
    }
}

fn rating_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("no such submission"),
        StoreError::InvalidState(NOT_FINISHED) => ApiError::new(
            StatusCode::CONFLICT,
            "not_finished",
            "the application is not finished yet",
        ),
        StoreError::Conflict(ALREADY_RATED) => ApiError::new(
            StatusCode::CONFLICT,
            "already_rated",
            "this application was already rated",
        ),
        StoreError::Conflict(RATING_OF_ANOTHER) => ApiError::new(
            StatusCode::CONFLICT,
            "rating_id_taken",
            "this rating id is already used",
        ),
        StoreError::Conflict(RATING_REUSED) => ApiError::new(
            StatusCode::CONFLICT,
            "rating_id_reused",
            "this rating id was used for another rating",
        ),
        other => other.into(),
    }
}

/// `PUT /v1/submissions/{client_id}/rating/{rating_id}`: the submitting
/// resident rates a finished submission (201), once; a retry of the same
/// rating id returns the stored rating (200). Another resident's
/// submission is `404 not_found`, as for `GET /v1/submissions/{client_id}`.
pub async fn rate(
    who: Resident,
    State(state): State<SharedState>,
    ApiPath((client_id, rating_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RatingIn>,
) -> ApiResult<(StatusCode, Json<RatingOut>)> {
    if !valid_client_id(&client_id) || !valid_client_id(&rating_id) {
        return Err(ApiError::bad_request(
            "invalid_client_id",
            "client and rating ids must be 8-64 characters of A-Z a-z 0-9 - _",
        ));
    }
    let evaluation = Evaluation {
        level: body.level,
        tags: body.tags,
        comment: body.comment,
        reason: body.reason,
    };
    evaluation
        .validate()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let (rid, cid) = (who.resident_id.clone(), client_id.clone());
    if blocking(&state, move |s| s.submission(&rid, &cid))
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("no such submission"));
    }
    let canonical = serde_json::to_vec(&json!({"c": client_id, "e": evaluation}))
        .map_err(ApiError::internal)?;
    let now = state.clock.now();
    let case = if evaluation.grade() == Grade::Bad {
        let today = china_today(now);
        let days = state.config.rectification_days;
        let due = work_calendar(&state)
            .await?
            .add_working_days(today, days)
            .map_err(ApiError::internal)?;
        Some(NewCase {
            opened_on: today.to_string(),
            due_on: due.date.to_string(),
            provisional: due.provisional,
            working_days: days,
        })
    } else {
        None
    };
    let new = NewRating {
        rating_id,
        client_id,
        resident_id: who.resident_id,
        evaluation,
        request_hash: sha256_hex(&canonical),
        at: now,
        case,
    };
    let outcome = blocking(&state, move |s| Ok(s.rate(&new)))
        .await?
        .map_err(rating_error)?;
    let status = if outcome.fresh {
        tracing::info!(tracking = %outcome.rating.tracking_number, round = outcome.rating.round, "rating received");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome.rating.into())))
}

// ---------------------------------------------------------------- operators

/// A case as operators see it: the stored case (no resident id) and where
/// it stands today.
#[derive(Debug, Serialize)]
pub struct CaseOut {
    /// The case.
    #[serde(flatten)]
    pub case: CaseRecord,
    /// Unanswered and past its due day.
    pub overdue: bool,
    /// Working days past the due day (until today, or until the answer).
    pub days_late: u32,
}

fn case_out(case: CaseRecord, today: NaiveDate, cal: &WorkCalendar) -> ApiResult<CaseOut> {
    let model = core_case(&case)?;
    Ok(CaseOut {
        overdue: model.is_overdue(today, cal),
        days_late: model.days_late(today, cal),
        case,
    })
}

/// `?overdue=true`: only the overdue cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesQuery {
    /// Only the overdue cases.
    #[serde(default)]
    pub overdue: bool,
}

/// The departments an operator's statistics and lists cover (`None`: all,
/// for an admin).
fn departments_of(act: &Act) -> Option<Vec<String>> {
    match act.who().role {
        Role::Admin => None,
        _ => Some(act.who().scopes.clone()),
    }
}

/// `GET /v1/operator/evaluations/cases[?overdue=true]`: a reviewer's open
/// cases (its departments), the overdue first, then by due day.
pub async fn cases(
    op: Operator,
    State(state): State<SharedState>,
    ApiQuery(q): ApiQuery<CasesQuery>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::ListEvaluationCases);
    let result = cases_in(&state, &mut act, q).await;
    act.settle(&state, result).await
}

async fn cases_in(state: &SharedState, act: &mut Act, q: CasesQuery) -> ApiResult<Json<Value>> {
    act.allow(state, Target::Unscoped).await?;
    let departments = departments_of(act);
    let cal = work_calendar(state).await?;
    let today = china_today(state.clock.now());
    let rows = blocking(state, move |s| s.cases(departments.as_deref(), true)).await?;
    let mut out = rows
        .into_iter()
        .map(|c| case_out(c, today, &cal))
        .collect::<ApiResult<Vec<_>>>()?;
    // Stable: by due day within each group.
    out.sort_by_key(|c| !c.overdue);
    if q.overdue {
        out.retain(|c| c.overdue);
    }
    Ok(Json(json!({"today": today.to_string(), "cases": out})))
}

/// The department's answer to a case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    /// The answer (1 to 500 characters), shown to the resident.
    pub answer: String,
}

/// `POST /v1/operator/evaluations/cases/{id}/answer`: the reviewer of the
/// case's department answers it, once; the answer is appended to the
/// submission's timeline.
pub async fn answer(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AnswerIn>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::AnswerEvaluationCase);
    act.target("case", &id);
    let result = answer_in(&state, &mut act, id, body).await;
    act.settle(&state, result).await
}

fn case_error(e: &CaseError) -> ApiError {
    let status = match e {
        CaseError::AlreadyAnswered => StatusCode::CONFLICT,
        CaseError::BadAnswer | CaseError::BeforeOpened => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

async fn answer_in(
    state: &SharedState,
    act: &mut Act,
    id: String,
    body: AnswerIn,
) -> ApiResult<Json<Value>> {
    act.allow(state, Target::Unscoped).await?;
    let cid = id.clone();
    let case = blocking(state, move |s| s.case(&cid))
        .await?
        .ok_or_else(|| ApiError::not_found("no such case"))?;
    act.target("department", &case.department_code);
    act.allow(state, Target::Department(&case.department_code))
        .await?;
    let now = state.clock.now();
    let today = china_today(now);
    let mut model = core_case(&case)?;
    model
        .answer(today, &body.answer)
        .map_err(|e| case_error(&e))?;
    let write = OperatorWrite::AnswerCase {
        id: id.clone(),
        answer: body.answer,
        on: today.to_string(),
        by: act.who().name.clone(),
        at: now,
    };
    let event: StatusEvent = match act.write(state, write).await {
        Ok(Written::Event(e)) => e,
        Ok(_) => return Err(ApiError::internal("a case answer returned no event")),
        Err(e) if e.code == "invalid_state" && e.message == CASE_ANSWERED => {
            return Err(case_error(&CaseError::AlreadyAnswered));
        }
        Err(e) => return Err(e),
    };
    let answered = blocking(state, move |s| s.case(&id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such case"))?;
    let cal = work_calendar(state).await?;
    let out = case_out(answered, today, &cal)?;
    Ok(Json(json!({"case": out, "event": event})))
}

/// `?format=csv` for a CSV export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: StatsFormat,
}

/// How statistics are returned.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatsFormat {
    /// JSON.
    #[default]
    Json,
    /// CSV (UTF-8, one header row).
    Csv,
}

/// One row of the statistics: a department or an item of one.
#[derive(Debug, Serialize)]
pub struct StatsRow {
    /// The department code.
    pub department_code: String,
    /// The item (guide id); `None` for a department's row.
    pub guide_id: Option<String>,
    /// Ratings counted (the latest of each rated submission).
    pub total: u64,
    /// Counts per level, by level code.
    pub levels: BTreeMap<&'static str, u64>,
    /// 好评 (非常满意 + 满意).
    pub good: u64,
    /// 中评.
    pub neutral: u64,
    /// 差评.
    pub bad: u64,
    /// 好评率 (好评 / total), `None` without ratings.
    pub good_rate: Option<f64>,
    /// Unanswered rectification cases.
    pub open_cases: u64,
    /// Of which past their due day.
    pub overdue_cases: u64,
}

fn stats_row(
    department_code: String,
    guide_id: Option<String>,
    t: Tally,
    (open_cases, overdue_cases): (u64, u64),
) -> StatsRow {
    StatsRow {
        department_code,
        guide_id,
        total: t.total(),
        levels: Level::ALL
            .iter()
            .zip(t.levels)
            .map(|(l, n)| (l.code(), n))
            .collect(),
        good: t.of(Grade::Good),
        neutral: t.of(Grade::Neutral),
        bad: t.of(Grade::Bad),
        good_rate: t.good_rate(),
        open_cases,
        overdue_cases,
    }
}

/// A CSV field: quoted when needed, and a leading `= + - @` neutralised
/// (a spreadsheet would run it as a formula).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv(rows: &[StatsRow]) -> String {
    let mut out = String::from("department_code,guide_id,total");
    for l in Level::ALL {
        out.push(',');
        out.push_str(l.code());
    }
    out.push_str(",good,neutral,bad,good_rate,open_cases,overdue_cases\r\n");
    for r in rows {
        let mut cells = vec![
            csv_field(&r.department_code),
            csv_field(r.guide_id.as_deref().unwrap_or("")),
            r.total.to_string(),
        ];
        cells.extend(Level::ALL.iter().map(|l| {
            r.levels
                .get(l.code())
                .copied()
                .unwrap_or_default()
                .to_string()
        }));
        cells.extend([
            r.good.to_string(),
            r.neutral.to_string(),
            r.bad.to_string(),
            r.good_rate.map(|g| format!("{g:.4}")).unwrap_or_default(),
            r.open_cases.to_string(),
            r.overdue_cases.to_string(),
        ]);
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /v1/operator/evaluations/stats[?format=csv]`: per department and
/// per item, counts per level, 好评率, open and overdue cases. An admin
/// sees every department, a reviewer its own. No resident id is read.
pub async fn stats(
    op: Operator,
    State(state): State<SharedState>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Response> {
    let mut act = Act::new(op, Action::EvaluationStats);
    if q.format == StatsFormat::Csv {
        act.target("format", "csv");
    }
    let result = stats_in(&state, &mut act, q).await;
    act.settle(&state, result).await
}

async fn stats_in(state: &SharedState, act: &mut Act, q: StatsQuery) -> ApiResult<Response> {
    act.allow(state, Target::Unscoped).await?;
    let departments = departments_of(act);
    let d2 = departments.clone();
    let rated = blocking(state, move |s| s.rated(d2.as_deref())).await?;
    let open = blocking(state, move |s| s.cases(departments.as_deref(), true)).await?;
    let cal = work_calendar(state).await?;
    let today = china_today(state.clock.now());
    let mut dept_cases: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut item_cases: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for c in &open {
        let overdue = u64::from(core_case(c)?.is_overdue(today, &cal));
        for slot in [
            dept_cases.entry(c.department_code.clone()).or_default(),
            item_cases
                .entry((c.department_code.clone(), c.guide_id.clone()))
                .or_default(),
        ] {
            slot.0 += 1;
            slot.1 += overdue;
        }
    }
    let mut depts = by_department(&rated);
    for d in dept_cases.keys() {
        depts.entry(d.clone()).or_default();
    }
    let mut items = by_item(&rated);
    for k in item_cases.keys() {
        items.entry(k.clone()).or_default();
    }
    let departments: Vec<StatsRow> = depts
        .into_iter()
        .map(|(d, t)| {
            let cases = dept_cases.get(&d).copied().unwrap_or_default();
            stats_row(d, None, t, cases)
        })
        .collect();
    let items: Vec<StatsRow> = items
        .into_iter()
        .map(|((d, g), t)| {
            let cases = item_cases
                .get(&(d.clone(), g.clone()))
                .copied()
                .unwrap_or_default();
            stats_row(d, Some(g), t, cases)
        })
        .collect();
    Ok(match q.format {
        StatsFormat::Json => Json(json!({
            "as_of": today.to_string(),
            "departments": departments,
            "items": items,
        }))
        .into_response(),
        StatsFormat::Csv => {
            let mut rows = departments;
            rows.extend(items);
            (
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                csv(&rows),
            )
                .into_response()
        }
    })
}

/// One year of the working-day calendar, as an operator puts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYearIn {
    /// The notice it comes from (the State Council General Office's).
    pub source: String,
    /// `[first, last, name]` holiday ranges.
    #[serde(default)]
    pub holidays: Vec<(String, String, String)>,
    /// Weekend days worked (调休).
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// `PUT /v1/operator/calendar/{year}`: an admin adds or replaces a year of
/// the working-day calendar; the due days of unanswered cases are
/// recomputed with it.
pub async fn put_calendar(
    op: Operator,
    State(state): State<SharedState>,
    ApiPath(year): ApiPath<i32>,
    ApiJson(body): ApiJson<CalendarYearIn>,
) -> ApiResult<Json<Value>> {
    let mut act = Act::new(op, Action::PutWorkCalendar);
    act.target("year", year.to_string());
    let result = put_calendar_in(&state, &mut act, year, body).await;
    act.settle(&state, result).await
}

fn invalid_calendar(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_calendar",
        message,
    )
}

async fn put_calendar_in(
    state: &SharedState,
    act: &mut Act,
    year: i32,
    body: CalendarYearIn,
) -> ApiResult<Json<Value>> {
    act.allow(state, Target::Unscoped).await?;
    if !(2000..=2100).contains(&year) {
        return Err(invalid_calendar("the year must be 2000 to 2100"));
    }
    if body.source.trim().is_empty() || body.source.chars().count() > TEXT_MAX_CHARS {
        return Err(invalid_calendar("source is 1 to 500 characters"));
    }
    if body.holidays.len() > 64 || body.workdays.len() > 64 {
        return Err(invalid_calendar("at most 64 holidays and 64 workdays"));
    }
    let y = CalendarYear {
        year,
        source: body.source,
        holidays: body.holidays,
        workdays: body.workdays,
    };
    WorkCalendar::from_years(std::slice::from_ref(&y))
        .map_err(|e| invalid_calendar(e.to_string()))?;
    let mut stored = blocking(state, |s| s.calendar_years()).await?;
    stored.retain(|s| s.year != year);
    stored.push(y.clone());
    let cal = calendar_with(stored)?;
    let open = blocking(state, |s| s.cases(None, true)).await?;
    let mut redue = Vec::new();
    for c in &open {
        let due = cal
            .add_working_days(date(&c.opened_on)?, c.working_days)
            .map_err(ApiError::internal)?;
        let due_on = due.date.to_string();
        if due_on != c.due_on || due.provisional != c.provisional {
            redue.push((c.id.clone(), due_on, due.provisional));
        }
    }
    let moved = redue.len();
    let write = OperatorWrite::PutCalendarYear {
        year: y,
        redue,
        at: state.clock.now(),
    };
    act.write(state, write).await?;
    Ok(Json(json!({"year": year, "cases_redue": moved})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("11511603"), "11511603");
    }

    #[test]
    fn china_today_is_utc_plus_eight() {
        // 2026-09-30 16:00 UTC is 10-01 00:00 in China.
        let t = chrono::NaiveDate::from_ymd_opt(2026, 9, 30)
            .and_then(|d| d.and_hms_opt(16, 0, 0))
            .map(|d| d.and_utc().timestamp())
            .unwrap_or_default();
        assert_eq!(china_today(t).to_string(), "2026-10-01");
        assert_eq!(china_today(t - 1).to_string(), "2026-09-30");
    }
}
