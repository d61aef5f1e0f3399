//! rps-cds: CDS Hooks 2.0.1 decision support for locally recurrent and metastatic
//! retroperitoneal sarcoma.

pub mod auth;
pub mod cds_hooks;
pub mod clinical;
pub mod config;
pub mod fhir;
pub mod knowledge;
pub mod rules;
