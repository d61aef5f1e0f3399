//! Symptoms: tumour-related pain, obstruction, dyspnoea, cord compression and bone pain
//! from active Conditions and symptom Observations (text read negation-aware and whole-word,
//! `symptom_text`), and the symptom assessment that makes their absence known
//! (`symptom_status`, docs/clinical-spec.md §4.1).

use std::collections::BTreeMap;

use serde_json::Value;

use super::diagnosis::ClassifiedCondition;
use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{
    CONDITION_ACTIVITY, CONDITION_OBS, Extractor, ObservationKind, condition_active, value_concept,
    with_note,
};
use crate::clinical::json;
use crate::clinical::picture::*;
use crate::clinical::symptom_status::{self, SymptomReading, SymptomRecord, SymptomTerms};
use crate::knowledge::OBSERVATION_SYSTEM;

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
            values: &[
                "valueBoolean",
                "valueCodeableConcept",
                "valueString",
                "note",
            ],
        },
    ],
};

impl<'a> Extractor<'a, '_> {
    /// The current symptoms (presence, closed world) and `symptomatic` (§4.1: absence needs
    /// a current symptom assessment).
    pub(crate) fn read_symptoms(
        &self,
        conds: &[ClassifiedCondition<'_, 'a>],
    ) -> (Fact<Vec<Symptom>>, Fact<bool>) {
        let _reading = Reading::start(&SPEC);
        let mut records: Vec<SymptomRecord> = Vec::new();
        let terms = SymptomTerms::new(&self.vocab);
        for c in conds {
            let texts: Vec<&str> = c.code.texts().collect();
            // What the Condition says (from its classifying code) comes first: only a
            // symptom record's status is read.
            if let Some(s) = self.symptom_of(&terms, c.record, &c.code, &texts, false, &c.body)
                && condition_active(c.record)
            {
                records.push(s);
            }
        }
        for rec in self.observations_of(ObservationKind::Symptom) {
            let negated = rec.get("valueBoolean").and_then(Value::as_bool) == Some(false);
            let value = value_concept(rec);
            let code = rec.concept("code");
            // The text of the value and the notes; the code's own text only when the code
            // names the symptom (not the generic LOINC "Symptom").
            let mut texts: Vec<&str> = value.texts().collect();
            if !self.vocab.by_code("symptom-observation", &code) {
                texts.extend(code.texts());
            }
            texts.extend(rec.array("note").filter_map(|n| json::str_at(n, "text")));
            let mut c = value_concept(rec);
            c.add(rec.get("code").unwrap_or(&Value::Null));
            let body = rec.concept_all("bodySite");
            if let Some(s) = self.symptom_of(&terms, rec, &c, &texts, negated, &body) {
                records.push(s);
            }
        }
        for rec in self.observations_of(ObservationKind::SymptomAssessment) {
            let vc = rec.concept("valueCodeableConcept");
            let reading = if vc.has_code(OBSERVATION_SYSTEM, "none") {
                SymptomReading::NoneFound
            } else if vc.has_code(OBSERVATION_SYSTEM, "present") {
                SymptomReading::PresentUnnamed
            } else {
                // An assessment whose result cannot be read says nothing either way.
                SymptomReading::Ambiguous
            };
            records.push(SymptomRecord {
                source: rec.reference.clone(),
                date: rec.date(),
                read_from: ReadFrom::Code,
                reading,
            });
        }
        self.current_symptoms(records)
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

    /// What a Condition or symptom Observation says about symptoms: its coded concept, the
    /// texts to read, whether its `valueBoolean` is false, and its body site (bone pain).
    fn symptom_of(
        &self,
        terms: &SymptomTerms,
        rec: &Record,
        c: &Concept,
        texts: &[&str],
        negated: bool,
        body: &Concept,
    ) -> Option<SymptomRecord> {
        let bone_site = self.vocab.by_code("site-bone", body);
        let (reading, read_from) =
            symptom_status::read_record(&self.vocab, terms, c, texts, negated, bone_site)?;
        Some(SymptomRecord {
            source: rec.reference.clone(),
            date: rec.date(),
            read_from,
            reading,
        })
    }

    /// Current symptoms (per kind, the latest affirmative record) and `symptomatic`.
    fn current_symptoms(&self, records: Vec<SymptomRecord>) -> (Fact<Vec<Symptom>>, Fact<bool>) {
        let (list, symptomatic) = symptom_status::combine(
            &records,
            self.today,
            self.params.symptom_assessment_max_age_days,
            self.set_aside(CONDITION_OBS),
        );
        let mut by_kind: BTreeMap<(SymptomKind, bool), Symptom> = BTreeMap::new();
        for s in list {
            let key = (s.kind, s.bone);
            if by_kind.get(&key).is_none_or(|old| old.date <= s.date) {
                by_kind.insert(key, s);
            }
        }
        let list: Vec<Symptom> = by_kind.into_values().collect();
        if list.is_empty() {
            return (self.none_recorded(Vec::new(), CONDITION_OBS), symptomatic);
        }
        let resources = list.iter().map(|s| s.source.clone()).collect();
        let date = list.iter().filter_map(|s| s.date).max();
        let read_from = if list.iter().all(|s| s.read_from == ReadFrom::Text) {
            ReadFrom::Text
        } else {
            ReadFrom::Code
        };
        let symptoms = with_note(
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
        );
        (symptoms, symptomatic)
    }
}
