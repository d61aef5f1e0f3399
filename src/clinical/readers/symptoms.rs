//! Symptoms: tumour-related pain, obstruction, dyspnoea, cord compression and bone pain
//! from active Conditions and symptom Observations.

use std::collections::BTreeMap;

use serde_json::Value;

use super::diagnosis::CondInfo;
use super::view::{Read, Reading, Rec};
use super::{ReaderSpec, TypeReads};
use crate::clinical::extract::{
    CONDITION_ACTIVITY, CONDITION_OBS, Extractor, ObsKind, condition_active, value_concept,
    with_note,
};
use crate::clinical::fhir::Concept;
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "symptoms",
    reads: &[
        TypeReads {
            resource_type: "Condition",
            classifying: &["code", "bodySite"],
            values: CONDITION_ACTIVITY,
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code", "bodySite"],
            values: &["valueBoolean", "valueCodeableConcept", "valueString"],
        },
    ],
};

impl<'a> Extractor<'a, '_> {
    pub(crate) fn read_symptoms(&self, conds: &[CondInfo<'_, 'a>]) -> Fact<Vec<Symptom>> {
        let _reading = Reading::start(&SPEC);
        let mut symptom_list: Vec<Symptom> = Vec::new();
        for c in conds {
            if self.is_symptom_kind(&c.code)
                && condition_active(c.rec)
                && let Some(s) = self.symptom_of(c.rec, &c.code, &c.body)
            {
                symptom_list.push(s);
            }
        }
        for rec in self.observations_of(ObsKind::Symptom) {
            let present = rec.get("valueBoolean").and_then(Value::as_bool) != Some(false);
            let mut c = value_concept(rec);
            c.add(rec.get("code").unwrap_or(&Value::Null));
            let body = rec.concept_all("bodySite");
            if present && let Some(s) = self.symptom_of(rec, &c, &body) {
                symptom_list.push(s);
            }
        }
        self.current_symptoms(symptom_list)
    }

    pub(crate) fn is_symptom_concept(&self, c: &Concept) -> bool {
        [
            "symptom-pain",
            "symptom-obstruction",
            "symptom-dyspnoea",
            "symptom-cord-compression",
            "bone-symptom",
        ]
        .iter()
        .any(|id| self.vocab.by_code(id, c))
    }

    /// The symptom a concept names, if any.
    fn symptom_kind(&self, c: &Concept) -> Option<(SymptomKind, ReadFrom)> {
        self.vocab.first(
            &[
                ("symptom-cord-compression", SymptomKind::CordCompression),
                ("symptom-obstruction", SymptomKind::Obstruction),
                ("symptom-dyspnoea", SymptomKind::Dyspnoea),
                ("bone-symptom", SymptomKind::Pain),
                ("symptom-pain", SymptomKind::Pain),
            ],
            c,
        )
    }

    /// Whether a Condition's code names a symptom (its classification, read first).
    fn is_symptom_kind(&self, c: &Concept) -> bool {
        self.symptom_kind(c).is_some()
    }

    fn symptom_of(&self, rec: &Rec, c: &Concept, body: &Concept) -> Option<Symptom> {
        let (kind, read_from) = self.symptom_kind(c)?;
        let bone = self.vocab.matches("bone-symptom", c).is_some()
            || (kind == SymptomKind::Pain && self.vocab.by_code("site-bone", body));
        Some(Symptom {
            kind,
            bone,
            source: rec.reference.clone(),
            date: rec.date(),
            read_from,
        })
    }

    /// Current symptoms: per kind, the latest record (Conditions are active ones only).
    fn current_symptoms(&self, list: Vec<Symptom>) -> Fact<Vec<Symptom>> {
        let mut by_kind: BTreeMap<(SymptomKind, bool), Symptom> = BTreeMap::new();
        for s in list {
            let key = (s.kind, s.bone);
            if by_kind.get(&key).is_none_or(|old| old.date <= s.date) {
                by_kind.insert(key, s);
            }
        }
        let list: Vec<Symptom> = by_kind.into_values().collect();
        if list.is_empty() {
            return self.none_recorded(Vec::new(), CONDITION_OBS);
        }
        let resources = list.iter().map(|s| s.source.clone()).collect();
        let date = list.iter().filter_map(|s| s.date).max();
        let read_from = if list.iter().all(|s| s.read_from == ReadFrom::Text) {
            ReadFrom::Text
        } else {
            ReadFrom::Code
        };
        with_note(
            Fact::known(
                list,
                Provenance {
                    resources,
                    read_from,
                    date,
                    note: None,
                },
            ),
            self.incomplete_note(CONDITION_OBS),
        )
    }
}
