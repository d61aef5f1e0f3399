//! rps-cds: CDS Hooks 2.0.1 decision support for locally recurrent and metastatic
//! retroperitoneal sarcoma.

pub mod auth;
pub mod cards;
pub mod cds_hooks;
pub mod cli;
pub mod clinical;
pub mod config;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod knowledge;
pub mod logging;
pub mod rules;
pub mod telemetry;
