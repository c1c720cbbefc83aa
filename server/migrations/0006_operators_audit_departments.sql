-- Migration 6: named operators with one role and their scopes (ADR 0165),
-- found by the SHA-256 of their token; and the hash-chained audit trail
-- (ADR 0166). Names are never reused (a revoked operator keeps its row), so
-- an audit row's actor names one operator for good. A submission records
-- its guide's department when it is made (a reviewer's scope), filled in
-- for older submissions from their guide where it is still published.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE operators (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, scopes TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX audit_actor ON audit(actor, seq);
CREATE INDEX audit_action ON audit(action, seq);
CREATE INDEX audit_at ON audit(at);
ALTER TABLE submissions ADD COLUMN department_code TEXT NOT NULL DEFAULT '';
UPDATE submissions SET department_code = COALESCE(
    (SELECT json_extract(g.body, '$.department_code') FROM guides g
     WHERE g.id = submissions.guide_id AND g.deleted = 0), '');
