-- Migration 5: activation codes are found by their id (first group) and
-- checked by HMAC-SHA256 under the server's activation key, with a failure
-- count that locks a code (ADR 0163). Codes stored before were unsalted
-- SHA-256 hashes of codes that may be guessable; they cannot be turned into
-- keyed hashes without the codes, so they are dropped: devices already
-- enrolled stay enrolled, and operators issue new codes with
-- `resident add`.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

DELETE FROM activation_codes;
ALTER TABLE activation_codes ADD COLUMN code_id TEXT NOT NULL DEFAULT '';
ALTER TABLE activation_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX activation_codes_id ON activation_codes(code_id);
