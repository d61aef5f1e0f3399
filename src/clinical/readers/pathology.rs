//! Pathology: expert sarcoma pathology review and molecular confirmation of the subtype
//! (PATH-01, docs/clinical-spec.md §4.7), and whether the metastases have a tissue diagnosis
//! (WORK-06).

use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts;
use crate::clinical::extract::{Extractor, derived};
use crate::clinical::picture::*;
use chrono::NaiveDate;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "pathology review",
    reads: &[
        TypeReads {
            resource_type: "DiagnosticReport",
            classifying: &["code"],
            values: &["status"],
        },
        TypeReads {
            resource_type: "Procedure",
            classifying: &["code"],
            values: &["status", "reasonReference"],
        },
    ],
};

/// The records a pathology review or a molecular test may be written on.
const REVIEW_TYPES: &[&str] = &["DiagnosticReport", "Procedure"];

/// The pathology facts.
pub(crate) struct PathologyFacts {
    pub(crate) expert_pathology_review: Fact<Option<NaiveDate>>,
    pub(crate) molecular_test: Fact<Option<NaiveDate>>,
    pub(crate) metastasis_biopsied: Fact<bool>,
}

impl<'a> Extractor<'a, '_> {
    /// `biopsies`: the completed biopsy Procedures (read with the resections);
    /// `histology_obs`: dates of histology Observations (a pathology result).
    pub(crate) fn read_pathology(
        &self,
        biopsies: &[&Record<'a>],
        metastases: &[Metastasis],
        histology_obs: &[(Option<NaiveDate>, String)],
    ) -> PathologyFacts {
        let _reading = Reading::start(&SPEC);
        let mut review: Vec<(NaiveDate, String, ReadFrom)> = Vec::new();
        let mut molecular: Vec<(NaiveDate, String, ReadFrom)> = Vec::new();
        for rec in self.imaging.iter().chain(&self.procedures) {
            if rec.resource_type() == "ImagingStudy" {
                continue;
            }
            let c = rec.concept("code");
            // What the record is comes first: only then are its values read.
            let is_review = self.vocab.matches("pathology-review", &c);
            let is_molecular = self.vocab.matches("molecular-pathology", &c);
            if is_review.is_none() && is_molecular.is_none() {
                continue;
            }
            // A Procedure counts once completed; a report once it is there (entered-in-error
            // and cancelled ones are excluded before any reader sees them).
            let status = rec.str("status");
            if rec.resource_type() == "Procedure" && status != Some("completed") {
                continue;
            }
            if status.is_none() {
                continue;
            }
            let Some(date) = rec.date() else { continue };
            if let Some(m) = is_review {
                review.push((date, rec.reference.clone(), concepts::read_from(m)));
            }
            if let Some(m) = is_molecular {
                molecular.push((date, rec.reference.clone(), concepts::read_from(m)));
            }
        }
        let latest = |v: Vec<(NaiveDate, String, ReadFrom)>| -> Fact<Option<NaiveDate>> {
            match v.into_iter().max_by_key(|(d, ..)| *d) {
                Some((d, r, rf)) => Fact::known(
                    Some(d),
                    Provenance {
                        resources: vec![r],
                        read_from: rf,
                        date: Some(d),
                        note: None,
                    },
                ),
                None => self.none_recorded(None, REVIEW_TYPES),
            }
        };
        PathologyFacts {
            expert_pathology_review: latest(review),
            molecular_test: latest(molecular),
            metastasis_biopsied: self.metastasis_biopsied(biopsies, metastases, histology_obs),
        }
    }

    /// Whether the active metastases have a tissue diagnosis: a biopsy naming one of them as
    /// its reason or done on or after the first was detected, or a histology result from
    /// then on. Not applicable without an active metastasis.
    fn metastasis_biopsied(
        &self,
        biopsies: &[&Record<'a>],
        metastases: &[Metastasis],
        histology_obs: &[(Option<NaiveDate>, String)],
    ) -> Fact<bool> {
        let active: Vec<&Metastasis> = metastases.iter().filter(|m| m.active).collect();
        if active.is_empty() {
            return Fact::Unknown(Unknown::NotApplicable);
        }
        let first = active.iter().filter_map(|m| m.detected).min();
        let by_procedure = biopsies.iter().find(|b| {
            let reasons = b.references("reasonReference");
            active.iter().any(|m| reasons.contains(&m.source.as_str()))
                || first.is_some_and(|f| b.date().is_some_and(|d| d >= f))
        });
        if let Some(b) = by_procedure {
            return Fact::known(
                true,
                Provenance {
                    resources: vec![b.reference.clone()],
                    read_from: ReadFrom::Code,
                    date: b.date(),
                    note: None,
                },
            );
        }
        let by_pathology = histology_obs
            .iter()
            .find(|(d, _)| first.is_some_and(|f| d.is_some_and(|d| d >= f)));
        match by_pathology {
            Some((d, r)) => derived(true, vec![r.clone()], *d),
            None => self.none_recorded(false, &["Procedure", "Observation"]),
        }
    }
}
