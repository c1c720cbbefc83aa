-- Migration 8: devices are retired when their resident re-enrols the phone
-- to a new key (ADR 0125). A retired device gets no challenge, no token and
-- no licence copies; `replaced_by` names the device that replaced it, so a
-- retried re-enrolment is answered as the first one was.
-- (0007 is the search lexicon's.)
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

ALTER TABLE devices ADD COLUMN retired_at INTEGER;
ALTER TABLE devices ADD COLUMN replaced_by TEXT;
