//! The exactly-once outbox (being built).
