//! Shared test support: a FHIR chart builder ([`fhir::Chart`]) and a terminology built from
//! inline value sets ([`terminology::terminology`]).
//!
//! Use from an integration test with `mod support;` then `use support::fhir::*;`.

#![allow(dead_code)]

pub mod fhir;
#[allow(dead_code)]
pub mod terminology;
