-- Migration 7: the search lexicon maintained by operators (ADR 0181). The
-- current entries, in the order phones receive them (a replaced entry keeps
-- its place, a new one goes last); and one history row per version, never
-- updated or deleted: the seed (the whole built-in document), then each
-- entry put (its JSON) or deleted (no body), by whom and when.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE lexicon_entries (
    term TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE lexicon_versions (
    version INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('seed', 'put', 'delete')),
    term TEXT, body TEXT);
CREATE TRIGGER lexicon_versions_no_update BEFORE UPDATE ON lexicon_versions
    BEGIN SELECT RAISE(ABORT, 'lexicon history is append-only'); END;
CREATE TRIGGER lexicon_versions_no_delete BEFORE DELETE ON lexicon_versions
    BEGIN SELECT RAISE(ABORT, 'lexicon history is append-only'); END;
