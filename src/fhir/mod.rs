//! FHIR R4: validation against the official schema, OperationOutcome bodies, and the client
//! that completes prefetch from the EHR's FHIR server.

pub mod client;
pub mod identity;
pub mod outcome;
pub mod validation;

pub use client::{AccessToken, FhirClientConfig, UnavailableData};
pub use outcome::{Issue, IssueCode, OperationOutcome};
pub use validation::{FhirValidator, InvalidResource, InvalidUse, SchemaViolation};
