//! The fact readers: one per fact family, each in its own file. Each declares what it reads
//! ([`ReaderSpec`]): the resource types, the *classifying* elements that decide whether a
//! record concerns its facts, and the elements it takes values from. `Extractor::run`
//! (`super::extract`) calls them in the order their inputs need.
//!
//! Every access to a resource goes through [`view::Read`], so what a reader reads is what
//! it asks the view for.

mod diagnosis;
mod disease_status;
mod history;
mod imaging;
mod metastases;
mod pathology;
mod performance;
mod radiotherapy;
mod recurrences;
mod resectability;
mod resections;
mod symptoms;
mod systemic;
pub(crate) mod view;

pub(crate) use diagnosis::SPEC as DIAGNOSIS;
pub(crate) use disease_status::SPEC as DISEASE_STATUS;
pub(crate) use history::SPEC as HISTORY;
pub(crate) use imaging::SPEC as IMAGING;
pub(crate) use metastases::SPEC as METASTASES;
pub(crate) use pathology::SPEC as PATHOLOGY;
pub(crate) use performance::SPEC as PERFORMANCE;
#[cfg(test)]
pub(crate) use performance::{karnofsky_to_ecog, latest_prefer_first};
pub(crate) use radiotherapy::SPEC as RADIOTHERAPY;
pub(crate) use recurrences::SPEC as RECURRENCES;
pub(crate) use resectability::SPEC as RESECTABILITY;
pub(crate) use resections::SPEC as RESECTIONS;
pub(crate) use symptoms::SPEC as SYMPTOMS;
pub(crate) use systemic::SPEC as SYSTEMIC;
pub(crate) use systemic::{agents_in, is_mg_per_m2, medication_concept};

use crate::fhir::InvalidUse;

/// What one reader reads from one resource type.
#[derive(Debug)]
pub(crate) struct TypeReads {
    pub(crate) resource_type: &'static str,
    /// The elements that decide whether a record concerns the reader's facts (`code`,
    /// `medication[x]`, `category`, `bodySite` …).
    pub(crate) classifying: &'static [&'static str],
    /// The elements the reader takes values from (besides the classifying ones and the
    /// clinical date, which every reader reads through `Record::date`). Debug builds check
    /// every read against them (`view::Record`'s `Read::get`).
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) values: &'static [&'static str],
}

/// What a fact reader reads.
#[derive(Debug)]
pub(crate) struct ReaderSpec {
    /// The fact family, in words ("symptoms").
    pub(crate) family: &'static str,
    pub(crate) reads: &'static [TypeReads],
}

impl ReaderSpec {
    /// What this reader reads from `resource_type`, if anything.
    pub(crate) fn reads_of(&self, resource_type: &str) -> Option<&TypeReads> {
        self.reads.iter().find(|r| r.resource_type == resource_type)
    }

    /// Whether the reader declares `element` of `resource_type` (classifying or value).
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn declares(&self, resource_type: &str, element: &str) -> bool {
        self.reads_of(resource_type)
            .is_some_and(|r| r.classifying.contains(&element) || r.values.contains(&element))
    }
}

/// Every reader.
pub(crate) static READERS: &[&ReaderSpec] = &[
    &DIAGNOSIS,
    &DISEASE_STATUS,
    &RESECTIONS,
    &METASTASES,
    &RECURRENCES,
    &IMAGING,
    &RESECTABILITY,
    &PERFORMANCE,
    &SYMPTOMS,
    &SYSTEMIC,
    &HISTORY,
    &RADIOTHERAPY,
    &PATHOLOGY,
];

/// Whether some reader classifies records of `resource_type` by `element`.
pub(crate) fn is_classifying(resource_type: &str, element: &str) -> bool {
    READERS.iter().any(|spec| {
        spec.reads_of(resource_type)
            .is_some_and(|r| r.classifying.contains(&element))
    })
}

/// How the readers used a resource of `resource_type` (`reference`) with defects at
/// `paths`, as `picture` records it.
pub fn invalid_use(
    resource_type: &str,
    reference: &str,
    paths: &[String],
    picture: &crate::clinical::Picture,
) -> InvalidUse {
    let defects = view::Defects::new(paths);
    let read = READERS
        .iter()
        .any(|spec| spec.reads_of(resource_type).is_some());
    if !read {
        InvalidUse::NotRead
    } else if resource_type == "Patient"
        || defects.unusable()
        || defects.elements().any(|e| is_classifying(resource_type, e))
    {
        InvalidUse::LeftOut
    } else if picture.defects_met.iter().any(|r| r == reference) {
        InvalidUse::ReadInPart
    } else {
        InvalidUse::Used
    }
}
