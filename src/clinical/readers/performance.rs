//! Performance status: ECOG Observations, and Karnofsky converted to ECOG.

use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::extract::{
    Candidate, Extractor, LOINC, OBSERVATION, ObservationKind, integer_value, latest,
};
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "performance status",
    reads: &[TypeReads {
        resource_type: "Observation",
        classifying: &["code"],
        values: &["valueInteger", "valueQuantity", "valueCodeableConcept"],
    }],
};

impl Extractor<'_, '_> {
    pub(crate) fn read_performance(&self) -> Fact<u8> {
        let _reading = Reading::start(&SPEC);
        let mut ecog_cands = Vec::new();
        for (rec, kind) in &self.observations {
            match kind {
                ObservationKind::Ecog => {
                    if let Some(e) = ecog_value(rec) {
                        ecog_cands.push(Candidate::new(rec, e, ReadFrom::Code));
                    }
                }
                ObservationKind::Karnofsky => {
                    if let Some(k) = integer_value(rec) {
                        let mut c = Candidate::new(rec, karnofsky_to_ecog(k), ReadFrom::Derived);
                        c.note = Some(format!("Karnofsky {k} converted"));
                        ecog_cands.push(c);
                    }
                }
                _ => {}
            }
        }
        match latest_prefer_first(ecog_cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => self.not_recorded(OBSERVATION),
            Err(u) => Fact::Unknown(u),
        }
    }
}

/// ECOG from `valueInteger` 0–5 or LOINC answers LA9622-7 … LA9627-6.
fn ecog_value(obs: &Record) -> Option<u8> {
    if let Some(i) = integer_value(obs) {
        return (0..=5).contains(&i).then_some(i as u8);
    }
    let c = obs.concept("valueCodeableConcept");
    const ANSWERS: [&str; 6] = [
        "LA9622-7", "LA9623-5", "LA9624-3", "LA9625-0", "LA9626-8", "LA9627-6",
    ];
    ANSWERS
        .iter()
        .position(|a| c.has_code(LOINC, a))
        .map(|i| i as u8)
}

/// Karnofsky → ECOG (catalogue §1): 100–90→0, 80–70→1, 60–50→2, 40–30→3, 20–10→4, 0→5.
pub(crate) fn karnofsky_to_ecog(k: i64) -> u8 {
    match k {
        90.. => 0,
        70..=89 => 1,
        50..=69 => 2,
        30..=49 => 3,
        10..=29 => 4,
        _ => 5,
    }
}

/// Latest wins; on the latest date a coded ECOG outranks a converted Karnofsky.
pub(crate) fn latest_prefer_first(
    cands: Vec<Candidate<u8>>,
) -> Result<Option<Candidate<u8>>, Unknown> {
    let Some(max) = cands.iter().map(|c| c.date).max() else {
        return Ok(None);
    };
    let at_max: Vec<Candidate<u8>> = cands.into_iter().filter(|c| c.date == max).collect();
    let coded: Vec<Candidate<u8>> = at_max
        .iter()
        .filter(|c| c.read_from == ReadFrom::Code)
        .cloned()
        .collect();
    latest(if coded.is_empty() { at_max } else { coded })
}
