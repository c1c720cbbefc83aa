//! Offline Chinese search over cached guides (being built).
