-- Migration 4: a device's pending challenges are found (and capped) by
-- device id.
-- Shipped: never edit this file (its SQL is pinned by a test); add the next number.

CREATE INDEX challenges_device ON challenges(device_id, expires_at);
