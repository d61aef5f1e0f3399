//! Shared test support: a FHIR chart builder ([`fhir::Chart`]), a private PostgreSQL
//! database per test ([`postgres::TestPostgres`]). Tests build pictures with
//! the embedded knowledge base's value sets (`Knowledge::embedded()?.terminology`).
//!
//! Use from an integration test with `mod support;` then `use support::fhir::*;`.

#![allow(dead_code)]

pub mod fhir;
pub mod findings;
pub mod postgres;
