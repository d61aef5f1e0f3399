//! rps-cds: CDS Hooks 2.0.1 decision support for locally recurrent and metastatic
//! retroperitoneal sarcoma.
//!
//! One module per concern: [`http`] (actix-web), [`cds_hooks`] (the protocol model),
//! [`fhir`] (validation, OperationOutcome, the prefetch client), [`clinical`] (facts read from
//! FHIR), [`rules`] (the catalogue), [`cards`] (findings → cards), [`knowledge`] (reviewed
//! clinical data), [`audit`] (storage), [`auth`] (CDS client JWTs), [`config`], and
//! [`engine`], the one pipeline that the server and the CLI share.

// `pub` only what the binary, the benches and the tests reach; the rest is `pub(crate)`, so
// the compiler reports what nothing calls.
#![warn(unreachable_pub)]

pub mod audit;
pub mod auth;
pub(crate) mod budget;
pub mod cards;
pub mod cds_hooks;
pub mod cli;
pub mod clinical;
pub mod config;
pub mod display;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod knowledge;
pub mod rules;
pub mod telemetry;
