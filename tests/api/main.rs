//! The `api` test binary: the service as a client sees it. Most modules start the real
//! server on a random loopback port (`support::http::Service`) with a fake FHIR server beside
//! it, post CDS Hooks requests built from the example files or the chart builder
//! (`support::chart::Chart`), and check every response against the CDS Hooks schemas and the
//! card-text lint (`support::card_lint`); a few check the schemas, the examples and the
//! engine's card rendering without a server.
//!
//! Run one module with `cargo test --test api MODULE::` (e.g. `card_text::`).

/// The parts of the shared support tree (`tests/support/`) this binary uses.
#[path = "../support"]
mod support {
    pub mod card_lint;
    pub mod chart;
    pub mod http;
    pub mod request;
}

mod auth;
mod card_text;
mod cds_hooks_schemas;
mod coherence;
mod edges;
mod facts_http;
mod fhir_validation;
mod governance;
mod invalid_records;
mod seed_patients;
mod service;
mod v2_local_recurrence;
mod v2_metastatic;
mod v2_orders;
