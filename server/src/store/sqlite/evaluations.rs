//! [`EvaluationStore`] on SQLite: ratings, rectification cases and the
//! operators' calendar years. One writer commits every write, so a rating's
//! checks (owner, final state, rounds left) and its insert cannot interleave
//! with another rating of the same submission; the unique keys (rating id,
//! submission and round) back that up. A case answer appends its timeline
//! event in the same savepoint (the `submission_events` insert).

use rusqlite::{Connection, OptionalExtension as _, params};
use zhangban_core::calendar::CalendarYear;
use zhangban_core::evaluation::stats::Rated;
use zhangban_core::evaluation::{
    Evaluation, EvaluationError, Grade, Level, RatingContext, may_rate,
};

use super::{SqliteStore, db, owned};
use crate::store::evaluations::{
    ALREADY_RATED, ANSWER_NOTE_PREFIX, CASE_ANSWERED, FINAL_STATES, NOT_FINISHED,
    RATING_OF_ANOTHER, RATING_REUSED,
};
use crate::store::{
    CaseRecord, EvaluationStore, NewRating, RatingOutcome, RatingRecord, StatusEvent, StoreError,
    StoreResult,
};

pub(super) fn level_of(code: &str) -> StoreResult<Level> {
    Level::ALL
        .into_iter()
        .find(|l| l.code() == code)
        .ok_or_else(|| StoreError::Database(format!("unknown level `{code}`")))
}

const CASE_COLUMNS: &str = "id, tracking_number, department_code, guide_id, level, reason,
    opened_on, due_on, provisional, working_days, answer, answered_on, answered_by";

type CaseRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    u32,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn case_of(row: CaseRow) -> StoreResult<CaseRecord> {
    let (id, tracking_number, department_code, guide_id, level, reason) =
        (row.0, row.1, row.2, row.3, row.4, row.5);
    Ok(CaseRecord {
        id,
        tracking_number,
        department_code,
        guide_id,
        level: level_of(&level)?,
        reason,
        opened_on: row.6,
        due_on: row.7,
        provisional: row.8,
        working_days: row.9,
        answer: row.10,
        answered_on: row.11,
        answered_by: row.12,
    })
}

fn case_in(c: &Connection, id: &str) -> StoreResult<Option<CaseRecord>> {
    c.query_row(
        &format!("SELECT {CASE_COLUMNS} FROM rectification_cases WHERE id = ?1"),
        [id],
        case_row,
    )
    .optional()?
    .map(case_of)
    .transpose()
}

/// The stored rating `rating_id` with its case: owner, request hash, record.
fn rating_in(
    c: &Connection,
    rating_id: &str,
) -> StoreResult<Option<(String, String, RatingRecord)>> {
    let row: Option<(String, String, String, String, u32, String, i64)> = c
        .query_row(
            "SELECT e.resident_id, e.request_hash, e.client_id, s.tracking_number, e.round,
                    e.body, e.at
             FROM evaluations e JOIN submissions s ON s.client_id = e.client_id
             WHERE e.rating_id = ?1",
            [rating_id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((owner, hash, client_id, tracking_number, round, body, at)) = row else {
        return Ok(None);
    };
    let evaluation: Evaluation = serde_json::from_str(&body).map_err(db)?;
    let record = RatingRecord {
        rating_id: rating_id.to_owned(),
        client_id,
        tracking_number,
        round,
        evaluation,
        rated_at: at,
        case: case_in(c, rating_id)?,
    };
    Ok(Some((owner, hash, record)))
}

/// A retry of a stored rating: the same resident and request, else a conflict.
pub(super) fn retried(
    r: &NewRating,
    owner: &str,
    hash: &str,
    record: RatingRecord,
) -> StoreResult<RatingOutcome> {
    if owner != r.resident_id {
        return Err(StoreError::Conflict(RATING_OF_ANOTHER));
    }
    if hash != r.request_hash {
        return Err(StoreError::Conflict(RATING_REUSED));
    }
    Ok(RatingOutcome {
        rating: record,
        fresh: false,
    })
}

/// Core's rule on who may rate when, as a store error: the round to store.
pub(super) fn round_for(finished: bool, ratings: u32, case_answered: bool) -> StoreResult<u32> {
    let ctx = RatingContext {
        is_applicant: true,
        finished,
        ratings,
        case_answered,
    };
    match may_rate(ctx) {
        Ok(_) => Ok(ratings + 1),
        Err(EvaluationError::NotFinished) => Err(StoreError::InvalidState(NOT_FINISHED)),
        Err(_) => Err(StoreError::Conflict(ALREADY_RATED)),
    }
}

/// Departments as a JSON array for `json_each` (`None`: every department).
fn scope(departments: Option<&[String]>) -> StoreResult<Option<String>> {
    departments
        .map(|d| serde_json::to_string(d).map_err(db))
        .transpose()
}

pub(super) fn answer_case_in(
    c: &Connection,
    id: &str,
    answer: &str,
    on: &str,
    by: &str,
    at: i64,
) -> StoreResult<StatusEvent> {
    let changed = c.execute(
        "UPDATE rectification_cases SET answer = ?2, answered_on = ?3, answered_by = ?4,
             answered_at = ?5
         WHERE id = ?1 AND answer IS NULL",
        params![id, answer, on, by, at],
    )?;
    if changed == 0 {
        return Err(match case_in(c, id)? {
            Some(_) => StoreError::InvalidState(CASE_ANSWERED),
            None => StoreError::NotFound,
        });
    }
    let (client_id, resident_id, tracking_number, state): (String, String, String, String) = c
        .query_row(
            "SELECT s.client_id, s.resident_id, s.tracking_number, s.state
             FROM rectification_cases k JOIN submissions s ON s.client_id = k.client_id
             WHERE k.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    let note = format!("{ANSWER_NOTE_PREFIX}{answer}");
    c.execute(
        "INSERT INTO submission_events(client_id, resident_id, tracking_number, state, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![client_id, resident_id, tracking_number, state, note, at],
    )?;
    Ok(StatusEvent {
        seq: super::to_u64(c.last_insert_rowid()),
        client_id,
        tracking_number,
        state,
        note: Some(note),
        at,
    })
}

pub(super) fn put_calendar_year_in(
    c: &Connection,
    year: &CalendarYear,
    redue: &[(String, String, bool)],
    at: i64,
) -> StoreResult<()> {
    let body = serde_json::to_string(year).map_err(db)?;
    c.execute(
        "INSERT INTO work_calendar_years(year, body, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(year) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        params![year.year, body, at],
    )?;
    for (id, due_on, provisional) in redue {
        c.execute(
            "UPDATE rectification_cases SET due_on = ?2, provisional = ?3
             WHERE id = ?1 AND answer IS NULL",
            params![id, due_on, provisional],
        )?;
    }
    Ok(())
}

impl EvaluationStore for SqliteStore {
    fn rate(&self, r: &NewRating) -> StoreResult<RatingOutcome> {
        let r = r.clone();
        self.write(move |c| {
            if let Some((owner, hash, record)) = rating_in(c, &r.rating_id)? {
                return retried(&r, &owner, &hash, record);
            }
            let sub: Option<(String, String, String, String, String)> = c
                .query_row(
                    "SELECT resident_id, state, tracking_number, department_code, guide_id
                     FROM submissions WHERE client_id = ?1",
                    [&r.client_id],
                    |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?)),
                )
                .optional()?;
            let Some((owner, state, tracking_number, department, guide_id)) = sub else {
                return Err(StoreError::NotFound);
            };
            if owner != r.resident_id {
                return Err(StoreError::NotFound);
            }
            let ratings: u32 = c.query_row(
                "SELECT COUNT(*) FROM evaluations WHERE client_id = ?1",
                [&r.client_id],
                |x| x.get(0),
            )?;
            let case_answered: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM evaluations e
                     JOIN rectification_cases k ON k.id = e.rating_id
                     WHERE e.client_id = ?1 AND e.round = 1 AND k.answer IS NOT NULL)",
                [&r.client_id],
                |x| x.get(0),
            )?;
            let round = round_for(
                FINAL_STATES.contains(&state.as_str()),
                ratings,
                case_answered,
            )?;
            let body = serde_json::to_string(&r.evaluation).map_err(db)?;
            c.execute(
                "INSERT INTO evaluations(rating_id, client_id, round, resident_id, department_code,
                     guide_id, level, body, request_hash, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.rating_id,
                    r.client_id,
                    round,
                    r.resident_id,
                    department,
                    guide_id,
                    r.evaluation.level.code(),
                    body,
                    r.request_hash,
                    r.at
                ],
            )?;
            let case = match (&r.case, r.evaluation.grade()) {
                (Some(k), Grade::Bad) => {
                    c.execute(
                        "INSERT INTO rectification_cases(id, client_id, tracking_number,
                             department_code, guide_id, level, reason, opened_on, due_on,
                             provisional, working_days, opened_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        params![
                            r.rating_id,
                            r.client_id,
                            tracking_number,
                            department,
                            guide_id,
                            r.evaluation.level.code(),
                            r.evaluation.reason.clone().unwrap_or_default(),
                            k.opened_on,
                            k.due_on,
                            k.provisional,
                            k.working_days,
                            r.at
                        ],
                    )?;
                    case_in(c, &r.rating_id)?
                }
                _ => None,
            };
            Ok(RatingOutcome {
                rating: RatingRecord {
                    rating_id: r.rating_id.clone(),
                    client_id: r.client_id.clone(),
                    tracking_number,
                    round,
                    evaluation: r.evaluation.clone(),
                    rated_at: r.at,
                    case,
                },
                fresh: true,
            })
        })
    }

    fn case(&self, id: &str) -> StoreResult<Option<CaseRecord>> {
        let id = owned(id);
        self.read(move |c| case_in(c, &id))
    }

    fn cases(
        &self,
        departments: Option<&[String]>,
        open_only: bool,
    ) -> StoreResult<Vec<CaseRecord>> {
        let scope = scope(departments)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CASE_COLUMNS} FROM rectification_cases
                 WHERE (?1 IS NULL OR department_code IN (SELECT value FROM json_each(?1)))
                   AND (?2 = 0 OR answer IS NULL)
                 ORDER BY due_on, id"
            ))?;
            let rows = stmt
                .query_map(params![scope, open_only], case_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(case_of).collect()
        })
    }

    fn rated(&self, departments: Option<&[String]>) -> StoreResult<Vec<Rated>> {
        let scope = scope(departments)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT department_code, guide_id, level FROM evaluations e
                 WHERE (?1 IS NULL OR department_code IN (SELECT value FROM json_each(?1)))
                   AND round = (SELECT MAX(round) FROM evaluations x
                                WHERE x.client_id = e.client_id)
                 ORDER BY department_code, guide_id, rating_id",
            )?;
            let rows = stmt
                .query_map(params![scope], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(department, guide_id, level)| {
                    Ok(Rated {
                        department,
                        guide_id,
                        level: level_of(&level)?,
                    })
                })
                .collect()
        })
    }

    fn calendar_years(&self) -> StoreResult<Vec<CalendarYear>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT body FROM work_calendar_years ORDER BY year")?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.iter()
                .map(|b| serde_json::from_str(b).map_err(db))
                .collect()
        })
    }
}
