//! zhangban-server: the thin server residents' phones and inspectors' devices
//! sync with. Catalog of service guides, device enrolment and token auth,
//! idempotent submissions with licence verification, status timelines, wallet
//! delivery, trust data, and the operator's endpoints.

pub mod activation;
pub mod api;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod database;
pub mod error;
pub mod extract;
pub mod issuing;
pub mod limits;
pub mod metrics;
pub mod nonce;
pub mod roles;
pub mod setup;
pub mod state;
pub mod store;
