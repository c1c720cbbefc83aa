-- Migration 10: 好差评 (issue 17, ADR 0230). A resident's ratings of their
-- finished submissions (one per submission and round: 1 the first rating,
-- 2 the re-rating allowed after a case answer; the rating id is the
-- client's idempotency key), the rectification case each 差评 opens (its
-- id is the rating's), and the working-day calendar years operators put
-- (core's built-in calendar serves the years not here).
-- Self-contained: refers to no table of another pending migration.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE evaluations (
    rating_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES submissions(client_id),
    round INTEGER NOT NULL CHECK (round IN (1, 2)),
    resident_id TEXT NOT NULL,
    department_code TEXT NOT NULL,
    guide_id TEXT NOT NULL,
    level TEXT NOT NULL,
    body TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    UNIQUE (client_id, round));
CREATE INDEX evaluations_department ON evaluations(department_code);

CREATE TABLE rectification_cases (
    id TEXT PRIMARY KEY REFERENCES evaluations(rating_id),
    client_id TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    department_code TEXT NOT NULL,
    guide_id TEXT NOT NULL,
    level TEXT NOT NULL,
    reason TEXT NOT NULL,
    opened_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    provisional INTEGER NOT NULL,
    working_days INTEGER NOT NULL,
    opened_at INTEGER NOT NULL,
    answer TEXT,
    answered_on TEXT,
    answered_by TEXT,
    answered_at INTEGER);
CREATE INDEX cases_department ON rectification_cases(department_code, due_on);
CREATE INDEX cases_submission ON rectification_cases(client_id);

CREATE TABLE work_calendar_years (
    year INTEGER PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL);
