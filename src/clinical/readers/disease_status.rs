//! Disease status: the RPS disease-status Observations (worsened / improved / stable, with
//! the local or distant progression qualifier). Recurrences, metastases and the responses
//! to systemic therapy all read them.

use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{Candidate, Extractor, OBSERVATION, ObservationKind, latest};
use crate::clinical::json::str_at;
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "disease status",
    reads: &[TypeReads {
        resource_type: "Observation",
        classifying: &["code"],
        values: &["valueCodeableConcept", "extension"],
    }],
};

const PROGRESSION_QUALIFIER: &str = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/codexrt-radiotherapy-disease-progression-qualifier";

/// A disease-status Observation: its value, and whether the progression qualifier says
/// local (`Some(true)`) or distant (`Some(false)`).
pub(crate) type StatusObservation<'r, 'a> = (&'r Record<'a>, DiseaseStatus, Option<bool>);

impl<'a> Extractor<'a, '_> {
    pub(crate) fn disease_status_records(&self) -> Vec<StatusObservation<'_, 'a>> {
        let _reading = Reading::start(&SPEC);
        self.observations_of(ObservationKind::DiseaseStatus)
            .filter_map(|rec| {
                let (s, local) = self.disease_status_of(rec)?;
                Some((rec, s, local))
            })
            .collect()
    }

    pub(crate) fn latest_disease_status(
        &self,
        status_obs: &[StatusObservation],
    ) -> Fact<DiseaseStatus> {
        let _reading = Reading::start(&SPEC);
        let cands: Vec<Candidate<DiseaseStatus>> = status_obs
            .iter()
            .map(|(r, s, _)| Candidate::new(r, *s, ReadFrom::Code))
            .collect();
        match latest(cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => self.not_recorded(OBSERVATION),
            Err(u) => Fact::Unknown(u),
        }
    }

    fn disease_status_of(&self, obs: &Record<'a>) -> Option<(DiseaseStatus, Option<bool>)> {
        let c = obs.concept("valueCodeableConcept");
        let (s, _) = self.vocab.first(
            &[
                ("status-worsened", DiseaseStatus::Worsened),
                ("status-improved", DiseaseStatus::Improved),
                ("status-stable", DiseaseStatus::Stable),
            ],
            &c,
        )?;
        let qualifier = obs
            .array("extension")
            .filter(|e| str_at(e, "url") == Some(PROGRESSION_QUALIFIER))
            .find_map(|e| {
                let q = Concept::of(e.get("valueCodeableConcept"));
                if self.vocab.by_code("qualifier-local", &q) {
                    Some(true)
                } else if self.vocab.by_code("qualifier-distant", &q) {
                    Some(false)
                } else {
                    None
                }
            });
        Some((s, qualifier))
    }
}
