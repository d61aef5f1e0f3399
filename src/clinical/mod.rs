//! The clinical picture: the facts of the rule catalogue (docs/clinical-spec.md §1) read from
//! validated FHIR R4 resources as docs/input-profile.md describes.
//!
//! Each fact is [`Fact::Known`] with its provenance (resource, code or text, date) or
//! [`Fact::Unknown`] with a reason. Events (metastasis, radiotherapy, systemic therapy,
//! symptoms, biopsy, imaging, PFT) are closed-world: no record means "none recorded" — unless
//! resources of the type that would carry them were set aside as invalid, in which case the
//! fact is unknown. Assessments (grade, ECOG, focality, resectability, completeness, rupture)
//! are open-world: unknown unless recorded. Version 2 (docs/clinical-spec.md §4.1): the absence
//! of symptoms is open-world too (`symptomatic` needs a symptom assessment), the lesion count
//! is known only from a count Observation (Conditions give a lower bound), and the prior
//! anthracycline dose is a lower bound with exposure as its own fact.
//!
//! Entry points: [`build_picture`] once per request, then [`classify_draft_order`] per draft
//! order. [`VALUE_SETS`] lists the value sets both need (checked at start-up).

mod anthracycline;
pub(crate) mod concepts;
mod describe;
pub(crate) mod draft_orders;
mod episodes;
mod evidence;
mod extract;
pub(crate) mod json;
pub(crate) mod picture;
pub(crate) mod readers;
mod symptom_status;
mod symptom_text;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fhir::InvalidResource;

pub use draft_orders::{DraftOrder, ImagingKind, OrderKind, classify_draft_order};
pub(crate) use draft_orders::{
    classify_draft_order_in_part, draft_order_checkable, draft_order_use,
};
pub(crate) use evidence::origin_of;
pub use evidence::{FactUse, Origin, UnknownFact, is_reference};
pub use extract::{VALUE_SETS, build_picture};
pub use picture::*;
pub use readers::invalid_use;

/// What the picture is built from: the validated resources of prefetch and fetches.
#[derive(Debug, Clone, Copy)]
pub struct ClinicalInput<'a> {
    pub as_of: DateTime<Utc>,
    pub patient: Option<&'a Value>,
    /// Every valid resource (Condition, Observation, Procedure, MedicationAdministration /
    /// Statement / Request, Medication, DiagnosticReport, ImagingStudy …), deduplicated by
    /// type/id. Other resource types are ignored.
    pub resources: &'a [&'a Value],
    /// Resources set aside as a whole (unreadable: no usable resource type).
    pub set_aside: &'a [InvalidResource],
    /// Resources that failed validation, read element by element (§4.1 "invalid records").
    pub invalid: &'a [InvalidInput<'a>],
    /// Data the service knows it does not have: every fact these resource types could carry
    /// is unknown, overriding the closed world (DATA-03, DATA-04).
    pub withheld: &'a [WithheldData],
}

/// A resource that failed FHIR validation, with the JSON pointers of its defective elements
/// (`SchemaViolation::paths`). Readers read it through a view that yields unknown for any
/// element at, under or above a defective path.
#[derive(Debug, Clone)]
pub struct InvalidInput<'a> {
    pub resource: &'a Value,
    pub defects: Vec<String>,
}

/// Resource types whose data was withheld from the picture as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldData {
    /// FHIR resource types ("Condition", "MedicationAdministration" …).
    pub resource_types: Vec<String>,
    pub reason: WithheldReason,
}

/// Why data was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithheldReason {
    /// The prefetch key or search held records of another patient, so none of it is trusted
    /// (DATA-03).
    OtherPatient,
    /// The prefetch key could not be had: timeout, HTTP error, size limit, an
    /// OperationOutcome or a non-Bundle where a searchset was expected (DATA-04).
    Unavailable,
}
