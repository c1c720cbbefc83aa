-- Migration 2: presentation nonces became stateless (an HMAC bound to the
-- resident, submission and service item, see `api::submissions`), so their
-- table goes and a table of server secrets (the HMAC key, shared by every
-- replica through the database) comes; expiry indexes make the pruning of
-- challenges and tokens cheap; one copy of a licence per device.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

DROP TABLE presentation_nonces;
CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX challenges_expiry ON challenges(expires_at);
CREATE INDEX tokens_expiry ON tokens(expires_at);
DELETE FROM licences WHERE id NOT IN (SELECT MIN(id) FROM licences GROUP BY licence_id, device_id);
DROP INDEX licences_id;
CREATE UNIQUE INDEX licences_copy ON licences(licence_id, device_id);
