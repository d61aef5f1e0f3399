//! The fact readers: one per fact family, each in its own file. Each declares what it reads
//! ([`ReaderSpec`]): the resource types, the *classifying* elements that decide whether a
//! record concerns its facts, and the elements it takes values from. `Extractor::run`
//! (`super::extract`) calls them in the order their inputs need.
//!
//! Every access to a resource goes through [`view::Read`], so what a reader reads is what
//! it asks the view for.

mod diagnosis;
mod history;
mod imaging;
mod metastases;
mod performance;
mod radiotherapy;
mod recurrences;
mod resectability;
mod resections;
mod status;
mod symptoms;
mod systemic;
pub(crate) mod view;

#[cfg(test)]
pub(crate) use performance::{karnofsky_to_ecog, latest_prefer_first};
pub(crate) use systemic::{agents_in, is_mg_per_m2, medication_concept};

/// What one reader reads from one resource type.
#[derive(Debug)]
pub(crate) struct TypeReads {
    pub(crate) resource_type: &'static str,
    /// The elements that decide whether a record concerns the reader's facts (`code`,
    /// `medication[x]`, `category`, `bodySite` …).
    pub(crate) classifying: &'static [&'static str],
    /// The elements the reader takes values from (besides the classifying ones and the
    /// clinical date, which every reader reads through `Rec::date`).
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
    pub(crate) fn declares(&self, resource_type: &str, element: &str) -> bool {
        self.reads_of(resource_type)
            .is_some_and(|r| r.classifying.contains(&element) || r.values.contains(&element))
    }
}
