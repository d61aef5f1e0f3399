//! The `clinical` test binary: facts and rules on the library, without a server. FHIR charts
//! (`support::chart::Chart`) are read into a `Picture`, the rules evaluated on it, and each
//! finding checked against the knowledge base (`support::findings`); the knowledge base as
//! shipped in `knowledge/` is checked against the code and the clinical specification.
//!
//! Run one module with `cargo test --test clinical MODULE::` (e.g. `knowledge::`).

/// The parts of the shared support tree (`tests/support/`) this binary uses.
#[path = "../support"]
mod support {
    pub mod chart;
    pub mod chart_clinical;
    pub mod findings;
}

mod clinical_facts;
mod knowledge;
mod rules;
mod rules_fhir;
