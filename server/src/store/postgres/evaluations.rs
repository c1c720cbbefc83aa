//! [`EvaluationStore`] on PostgreSQL: ratings, rectification cases and the
//! operators' calendar years, correct with several replicas at once.
//!
//! A rating locks its submission row (`FOR UPDATE`) before it counts the
//! ratings given, so two ratings of one submission serialise; the insert is
//! `ON CONFLICT DO NOTHING` on the constraints (the rating id, one rating
//! per submission and round), and a row it did not insert is read back: the
//! same id is a retry (the stored rating), another round's winner is
//! `ALREADY_RATED`. A case answer is `UPDATE … WHERE answer IS NULL
//! RETURNING` (one answer wins) and its timeline event goes through
//! [`append_event`] (the resident's feed lock), in the same transaction.

use super::Tx;
use postgres::types::ToSql;
use zhangban_core::calendar::CalendarYear;
use zhangban_core::evaluation::stats::Rated;
use zhangban_core::evaluation::{
    Evaluation, EvaluationError, Grade, Level, RatingContext, may_rate,
};

use super::events::append_event;
use super::{PgStore, db};
use crate::store::evaluations::{
    ALREADY_RATED, ANSWER_NOTE_PREFIX, CASE_ANSWERED, FINAL_STATES, NOT_FINISHED,
    RATING_OF_ANOTHER, RATING_REUSED,
};
use crate::store::{
    CaseRecord, EvaluationStore, NewRating, RatingOutcome, RatingRecord, StatusEvent, StoreError,
    StoreResult,
};

fn level_of(code: &str) -> StoreResult<Level> {
    Level::ALL
        .into_iter()
        .find(|l| l.code() == code)
        .ok_or_else(|| StoreError::Database(format!("unknown level `{code}`")))
}

fn small(v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(db)
}

const CASE_COLUMNS: &str = "id, tracking_number, department_code, guide_id, level, reason,
    opened_on, due_on, provisional, working_days, answer, answered_on, answered_by";

fn case_of(r: &postgres::Row) -> StoreResult<CaseRecord> {
    Ok(CaseRecord {
        id: r.get(0),
        tracking_number: r.get(1),
        department_code: r.get(2),
        guide_id: r.get(3),
        level: level_of(r.get(4))?,
        reason: r.get(5),
        opened_on: r.get(6),
        due_on: r.get(7),
        provisional: r.get(8),
        working_days: small(r.get(9))?,
        answer: r.get(10),
        answered_on: r.get(11),
        answered_by: r.get(12),
    })
}

fn case_in(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<CaseRecord>> {
    tx.query_opt(
        &format!("SELECT {CASE_COLUMNS} FROM rectification_cases WHERE id = $1"),
        &[&id],
    )?
    .as_ref()
    .map(case_of)
    .transpose()
}

/// The stored rating `rating_id` with its case: owner, request hash, record.
fn rating_in(
    tx: &mut Tx<'_>,
    rating_id: &str,
) -> StoreResult<Option<(String, String, RatingRecord)>> {
    let Some(row) = tx.query_opt(
        "SELECT e.resident_id, e.request_hash, e.client_id, s.tracking_number, e.round,
                e.body, e.at
         FROM evaluations e JOIN submissions s ON s.client_id = e.client_id
         WHERE e.rating_id = $1",
        &[&rating_id],
    )?
    else {
        return Ok(None);
    };
    let evaluation: Evaluation = serde_json::from_str(row.get(5)).map_err(db)?;
    let record = RatingRecord {
        rating_id: rating_id.to_owned(),
        client_id: row.get(2),
        tracking_number: row.get(3),
        round: small(row.get(4))?,
        evaluation,
        rated_at: row.get(6),
        case: case_in(tx, rating_id)?,
    };
    Ok(Some((row.get(0), row.get(1), record)))
}

fn retried(
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

fn round_for(finished: bool, ratings: u32, case_answered: bool) -> StoreResult<u32> {
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

/// Answers case `id` once and appends the answer to its submission's
/// timeline (the resident's feed lock, [`append_event`]).
pub(super) fn answer_case_in(
    tx: &mut Tx<'_>,
    id: &str,
    answer: &str,
    on: &str,
    by: &str,
    at: i64,
) -> StoreResult<StatusEvent> {
    let updated = tx.query_opt(
        "UPDATE rectification_cases SET answer = $2, answered_on = $3, answered_by = $4,
             answered_at = $5
         WHERE id = $1 AND answer IS NULL RETURNING client_id",
        &[&id, &answer, &on, &by, &at],
    )?;
    let Some(updated) = updated else {
        return Err(match case_in(tx, id)? {
            Some(_) => StoreError::InvalidState(CASE_ANSWERED),
            None => StoreError::NotFound,
        });
    };
    let client_id: String = updated.get(0);
    let row = tx.query_one(
        "SELECT resident_id, tracking_number, state FROM submissions WHERE client_id = $1
         FOR SHARE",
        &[&client_id],
    )?;
    let (resident_id, tracking_number, state): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    let note = format!("{ANSWER_NOTE_PREFIX}{answer}");
    append_event(
        tx,
        &resident_id,
        &client_id,
        &tracking_number,
        &state,
        Some(&note),
        at,
    )
}

/// Stores one calendar year (added or replaced) and moves the due days of
/// the unanswered cases given.
pub(super) fn put_calendar_year_in(
    tx: &mut Tx<'_>,
    year: &CalendarYear,
    redue: &[(String, String, bool)],
    at: i64,
) -> StoreResult<()> {
    let body = serde_json::to_string(year).map_err(db)?;
    tx.execute(
        "INSERT INTO work_calendar_years(year, body, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (year) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        &[&i64::from(year.year), &body, &at],
    )?;
    for (id, due_on, provisional) in redue {
        tx.execute(
            "UPDATE rectification_cases SET due_on = $2, provisional = $3
             WHERE id = $1 AND answer IS NULL",
            &[id, due_on, provisional],
        )?;
    }
    Ok(())
}

fn scope(departments: Option<&[String]>) -> Option<Vec<String>> {
    departments.map(<[String]>::to_vec)
}

impl EvaluationStore for PgStore {
    fn rate(&self, r: &NewRating) -> StoreResult<RatingOutcome> {
        self.write(|tx| {
            if let Some((owner, hash, record)) = rating_in(tx, &r.rating_id)? {
                return retried(r, &owner, &hash, record);
            }
            // Ratings of one submission serialise on its row.
            let Some(sub) = tx.query_opt(
                "SELECT resident_id, state, tracking_number, department_code, guide_id
                 FROM submissions WHERE client_id = $1 FOR UPDATE",
                &[&r.client_id],
            )?
            else {
                return Err(StoreError::NotFound);
            };
            let (owner, state, tracking_number, department, guide_id): (
                String,
                String,
                String,
                String,
                String,
            ) = (sub.get(0), sub.get(1), sub.get(2), sub.get(3), sub.get(4));
            if owner != r.resident_id {
                return Err(StoreError::NotFound);
            }
            // A retry that waited on the lock finds the first attempt's row.
            if let Some((owner, hash, record)) = rating_in(tx, &r.rating_id)? {
                return retried(r, &owner, &hash, record);
            }
            let ratings: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM evaluations WHERE client_id = $1",
                    &[&r.client_id],
                )?
                .get(0);
            let case_answered: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM evaluations e
                         JOIN rectification_cases k ON k.id = e.rating_id
                         WHERE e.client_id = $1 AND e.round = 1 AND k.answer IS NOT NULL)",
                    &[&r.client_id],
                )?
                .get(0);
            let round = round_for(
                FINAL_STATES.contains(&state.as_str()),
                small(ratings)?,
                case_answered,
            )?;
            let body = serde_json::to_string(&r.evaluation).map_err(db)?;
            let params: [&(dyn ToSql + Sync); 10] = [
                &r.rating_id,
                &r.client_id,
                &i64::from(round),
                &r.resident_id,
                &department,
                &guide_id,
                &r.evaluation.level.code(),
                &body,
                &r.request_hash,
                &r.at,
            ];
            let inserted = tx.execute(
                "INSERT INTO evaluations(rating_id, client_id, round, resident_id, department_code,
                     guide_id, level, body, request_hash, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT DO NOTHING",
                &params,
            )?;
            if inserted == 0 {
                // The id was taken meanwhile (by a rating of another
                // submission), or the round was.
                return match rating_in(tx, &r.rating_id)? {
                    Some((owner, hash, record)) => retried(r, &owner, &hash, record),
                    None => Err(StoreError::Conflict(ALREADY_RATED)),
                };
            }
            let case = match (&r.case, r.evaluation.grade()) {
                (Some(k), Grade::Bad) => {
                    let reason = r.evaluation.reason.clone().unwrap_or_default();
                    let params: [&(dyn ToSql + Sync); 12] = [
                        &r.rating_id,
                        &r.client_id,
                        &tracking_number,
                        &department,
                        &guide_id,
                        &r.evaluation.level.code(),
                        &reason,
                        &k.opened_on,
                        &k.due_on,
                        &k.provisional,
                        &i64::from(k.working_days),
                        &r.at,
                    ];
                    tx.execute(
                        "INSERT INTO rectification_cases(id, client_id, tracking_number,
                             department_code, guide_id, level, reason, opened_on, due_on,
                             provisional, working_days, opened_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        &params,
                    )?;
                    case_in(tx, &r.rating_id)?
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
        self.read(|tx| case_in(tx, id))
    }

    fn cases(
        &self,
        departments: Option<&[String]>,
        open_only: bool,
    ) -> StoreResult<Vec<CaseRecord>> {
        let scope = scope(departments);
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {CASE_COLUMNS} FROM rectification_cases
                     WHERE ($1::text[] IS NULL OR department_code = ANY($1))
                       AND (NOT $2 OR answer IS NULL)
                     ORDER BY due_on COLLATE \"C\", id COLLATE \"C\""
                ),
                &[&scope, &open_only],
            )?;
            rows.iter().map(case_of).collect()
        })
    }

    fn rated(&self, departments: Option<&[String]>) -> StoreResult<Vec<Rated>> {
        let scope = scope(departments);
        self.read(|tx| {
            let rows = tx.query(
                "SELECT department_code, guide_id, level FROM evaluations e
                 WHERE ($1::text[] IS NULL OR department_code = ANY($1))
                   AND round = (SELECT MAX(round) FROM evaluations x
                                WHERE x.client_id = e.client_id)
                 ORDER BY department_code COLLATE \"C\", guide_id COLLATE \"C\",
                          rating_id COLLATE \"C\"",
                &[&scope],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(Rated {
                        department: r.get(0),
                        guide_id: r.get(1),
                        level: level_of(r.get(2))?,
                    })
                })
                .collect()
        })
    }

    fn calendar_years(&self) -> StoreResult<Vec<CalendarYear>> {
        self.read(|tx| {
            let rows = tx.query("SELECT body FROM work_calendar_years ORDER BY year", &[])?;
            rows.iter()
                .map(|r| serde_json::from_str(r.get(0)).map_err(db))
                .collect()
        })
    }
}
