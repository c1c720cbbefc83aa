-- Migration 9: life-event bundles (一件事一次办, ADR 0230). Operators publish
-- bundles (`bundles`, one row per bundle id, its current version and JSON);
-- every change takes the next value of the `bundles` counter, the version
-- of the bundle list phones sync. A bundle application has its own dedupe
-- row (`bundle_submissions`, keyed by the bundle client id, holding the
-- receipt) and one ordinary submission per member (`bundle_members` links
-- them), all written in one transaction.
-- (0010 is taken by another change.)
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE bundles (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    list_version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE bundle_submissions (
    client_id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    bundle_version INTEGER NOT NULL,
    body TEXT NOT NULL,
    tracking_number TEXT NOT NULL UNIQUE,
    receipt TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX bundle_submissions_resident ON bundle_submissions(resident_id, created_at);

CREATE TABLE bundle_members (
    bundle_client_id TEXT NOT NULL REFERENCES bundle_submissions(client_id),
    member TEXT NOT NULL,
    position INTEGER NOT NULL,
    client_id TEXT NOT NULL UNIQUE REFERENCES submissions(client_id),
    PRIMARY KEY (bundle_client_id, member)
);
