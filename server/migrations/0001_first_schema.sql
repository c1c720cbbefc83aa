-- Migration 1: the first schema (catalog, residents and devices, challenges,
-- tokens, submissions with their dedupe rows and timeline, presentation
-- nonces, trust bundles, status lists, licences and grants).
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE guides (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, checksum TEXT NOT NULL,
    body TEXT, deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX guides_seq ON guides(seq);
CREATE TABLE residents (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE activation_codes (
    code_hash TEXT PRIMARY KEY, resident_id TEXT NOT NULL REFERENCES residents(id),
    expires_at INTEGER NOT NULL, uses_left INTEGER NOT NULL);
CREATE TABLE devices (
    id TEXT PRIMARY KEY, resident_id TEXT NOT NULL REFERENCES residents(id),
    jwk TEXT NOT NULL, enrolled_at INTEGER NOT NULL);
CREATE INDEX devices_resident ON devices(resident_id);
CREATE TABLE challenges (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, resident_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE submission_dedupe (
    client_id TEXT PRIMARY KEY, resident_id TEXT NOT NULL, request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE submissions (
    client_id TEXT PRIMARY KEY REFERENCES submission_dedupe(client_id),
    resident_id TEXT NOT NULL, device_id TEXT NOT NULL, guide_id TEXT NOT NULL,
    form_version INTEGER NOT NULL, body TEXT NOT NULL,
    tracking_number TEXT NOT NULL UNIQUE, state TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX submissions_resident ON submissions(resident_id, created_at);
CREATE TABLE submission_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, resident_id TEXT NOT NULL,
    tracking_number TEXT NOT NULL, state TEXT NOT NULL, note TEXT, at INTEGER NOT NULL);
CREATE INDEX events_resident ON submission_events(resident_id, seq);
CREATE TABLE presentation_nonces (
    nonce TEXT PRIMARY KEY, resident_id TEXT NOT NULL, client_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX nonces_owner ON presentation_nonces(resident_id, client_id);
CREATE TABLE trust_bundles (version INTEGER PRIMARY KEY, jws TEXT NOT NULL, published_at INTEGER NOT NULL);
CREATE TABLE status_lists (
    uri TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, bits BLOB NOT NULL, next_idx INTEGER NOT NULL, token TEXT);
CREATE TABLE licences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, licence_id TEXT NOT NULL, resident_id TEXT NOT NULL,
    device_id TEXT NOT NULL, issuer_id TEXT NOT NULL, vct TEXT NOT NULL, status_uri TEXT NOT NULL,
    status_idx INTEGER NOT NULL, sd_jwt TEXT NOT NULL, issued_at INTEGER NOT NULL);
CREATE INDEX licences_resident ON licences(resident_id);
CREATE INDEX licences_id ON licences(licence_id);
CREATE TABLE licence_grants (
    licence_id TEXT PRIMARY KEY, resident_id TEXT NOT NULL, issuer_id TEXT NOT NULL, vct TEXT,
    claims TEXT NOT NULL, status INTEGER NOT NULL DEFAULT 0, granted_at INTEGER NOT NULL);
CREATE INDEX grants_resident ON licence_grants(resident_id);
