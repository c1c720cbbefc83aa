-- Migration 3: attachments. A resident's upload of one content
-- (`attachment_uploads`, keyed by resident and SHA-256) is stored as BLOB
-- chunks keyed by their byte offset (`attachment_chunks`); a submission
-- records the attachments its values reference (`submission_attachments`,
-- one per field, written in the submission's transaction). The foreign keys
-- keep referenced content from being dropped.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE TABLE attachment_uploads (
    resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    media_type TEXT NOT NULL, received INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (resident_id, sha256));
CREATE TABLE attachment_chunks (
    resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, pos INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (resident_id, sha256, pos),
    FOREIGN KEY (resident_id, sha256) REFERENCES attachment_uploads(resident_id, sha256)
        ON DELETE CASCADE);
CREATE TABLE submission_attachments (
    client_id TEXT NOT NULL REFERENCES submissions(client_id), field TEXT NOT NULL,
    resident_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    media_type TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (client_id, field),
    FOREIGN KEY (resident_id, sha256) REFERENCES attachment_uploads(resident_id, sha256));
CREATE INDEX submission_attachments_content ON submission_attachments(resident_id, sha256);
