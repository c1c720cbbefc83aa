-- PostgreSQL migration 3: 好差评 (issue 17, ADR 0230), as SQLite migration 10.
-- Uniqueness is the constraints': one rating per submission and round
-- (two replicas rating at once: the second insert finds the first's row),
-- the rating id as primary key (an outbox retry), one case per 差评.
-- Self-contained: refers to no table of another pending migration.
-- Shipped: never edit this file; add the next number.

CREATE TABLE evaluations (
    rating_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES submissions(client_id),
    round BIGINT NOT NULL CHECK (round IN (1, 2)),
    resident_id TEXT NOT NULL,
    department_code TEXT NOT NULL,
    guide_id TEXT NOT NULL,
    level TEXT NOT NULL,
    body TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    at BIGINT NOT NULL,
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
    provisional BOOLEAN NOT NULL,
    working_days BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    answer TEXT,
    answered_on TEXT,
    answered_by TEXT,
    answered_at BIGINT);
CREATE INDEX cases_department ON rectification_cases(department_code, due_on);
CREATE INDEX cases_submission ON rectification_cases(client_id);

CREATE TABLE work_calendar_years (
    year BIGINT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL);
