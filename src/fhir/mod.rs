//! FHIR R4: validation against the official schema, OperationOutcome bodies, and the client
//! that completes prefetch from the EHR's FHIR server. Also the one description of a resource
//! set aside ([`InvalidResource`], with how it was used) and of a prefetch key that could not
//! be had ([`UnavailableData`]), which `clinical`, `rules` and `cds_hooks` read: this module
//! is below them and knows nothing of the clinical meaning.

pub mod client;
pub(crate) mod identity;
pub(crate) mod outcome;
pub mod validation;

pub use client::{AccessToken, FhirClientConfig, UnavailableData};
pub use outcome::{Issue, IssueCode, OperationOutcome};
pub use validation::{FhirValidator, InvalidResource, InvalidUse, SchemaViolation};
