-- PostgreSQL migration 2: life-event bundles (一件事一次办, ADR 0230), as
-- SQLite migration 9. Every bundle change takes the next value of the
-- `bundles` counter row under its row lock (held to commit), the version of
-- the bundle list phones sync. A bundle application's dedupe row
-- (`bundle_submissions`, primary key the bundle client id: a concurrent
-- retry waits on it with ON CONFLICT DO NOTHING) and one ordinary
-- submission per member (`bundle_members`) are one transaction.
-- (0003 is taken by another change.)
-- Shipped: never edit this file; add the next number.

INSERT INTO counters(name, value) VALUES ('bundles', 0) ON CONFLICT (name) DO NOTHING;

CREATE TABLE bundles (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    list_version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE bundle_submissions (
    client_id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    bundle_version BIGINT NOT NULL,
    body TEXT NOT NULL,
    tracking_number TEXT NOT NULL UNIQUE,
    receipt TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX bundle_submissions_resident ON bundle_submissions(resident_id, created_at);

CREATE TABLE bundle_members (
    bundle_client_id TEXT NOT NULL REFERENCES bundle_submissions(client_id),
    member TEXT NOT NULL,
    position BIGINT NOT NULL,
    client_id TEXT NOT NULL UNIQUE REFERENCES submissions(client_id),
    PRIMARY KEY (bundle_client_id, member)
);
