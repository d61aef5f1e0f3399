//! History: Li-Fraumeni syndrome, a second primary cancer, smoking status, pulmonary
//! function tests, and the cardiac and renal sequelae of earlier treatment (§4.1).

use serde_json::Value;

use super::diagnosis::ClassifiedCondition;
use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::{self, Concept};
use crate::clinical::extract::{
    CONDITION, CONDITION_ACTIVITY, CONDITION_OBS, Candidate, Extractor, ICD10, ICD10CM, ICDO3,
    OBSERVATION, ObservationKind, condition_active, derived, latest, with_note,
};
use crate::clinical::json;
use crate::clinical::picture::*;
use crate::clinical::symptom_text::{Polarity, mentions};

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "history",
    reads: &[
        TypeReads {
            resource_type: "Condition",
            classifying: &["code"],
            values: CONDITION_ACTIVITY,
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueCodeableConcept", "valueQuantity"],
        },
    ],
};

/// The history facts.
pub(crate) struct HistoryFacts {
    pub(crate) li_fraumeni: Fact<bool>,
    pub(crate) second_malignancy: Fact<bool>,
    pub(crate) current_smoker: Fact<bool>,
    pub(crate) last_pft: Fact<Option<chrono::NaiveDate>>,
    pub(crate) pulmonary_function_tested: Fact<bool>,
    pub(crate) cardiomyopathy_or_heart_failure: Fact<bool>,
    pub(crate) renal_impairment: Fact<bool>,
}

impl<'a> Extractor<'a, '_> {
    pub(crate) fn read_history(&self, conds: &[ClassifiedCondition<'_, 'a>]) -> HistoryFacts {
        let _reading = Reading::start(&SPEC);
        let v = &self.vocab;
        let mut li_fraumeni: Vec<Candidate<bool>> = Vec::new();
        let mut other_cancers: Vec<String> = Vec::new();
        let mut cardiac: Vec<Candidate<bool>> = Vec::new();
        let mut renal: Vec<Candidate<bool>> = Vec::new();
        for c in conds {
            // Sequelae of earlier treatment count whatever their clinical status.
            if let Some(rf) = self.sequela_of("cardiomyopathy-condition", &c.code) {
                cardiac.push(Candidate::new(c.record, true, rf));
            }
            if let Some(rf) = self.sequela_of("renal-impairment-condition", &c.code) {
                renal.push(Candidate::new(c.record, true, rf));
            }
            if let Some(m) = v.matches("li-fraumeni", &c.code) {
                li_fraumeni.push(Candidate::new(c.record, true, concepts::read_from(m)));
            }
            if !c.sarcoma_or_metastasis
                && self.is_other_cancer(&c.code, c.histology_ext)
                && condition_active(c.record)
            {
                other_cancers.push(c.record.reference.clone());
            }
        }
        let li_fraumeni = match latest(li_fraumeni) {
            Ok(Some(c)) => c.into_fact(),
            _ => self.none_recorded(false, CONDITION),
        };
        let second_malignancy = if other_cancers.is_empty() {
            self.none_recorded(false, CONDITION)
        } else {
            derived(true, other_cancers, None)
        };

        let mut smoking_cands = Vec::new();
        let mut smoking_unreadable = None;
        for rec in self.observations_of(ObservationKind::Smoking) {
            let vc = rec.concept("valueCodeableConcept");
            match v.first(
                &[
                    ("smoking-current", true),
                    ("smoking-former", false),
                    ("smoking-never", false),
                ],
                &vc,
            ) {
                Some((b, rf)) => smoking_cands.push(Candidate::new(rec, b, rf)),
                None => smoking_unreadable = Some(rec.reference.clone()),
            }
        }
        let current_smoker = match latest(smoking_cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => match smoking_unreadable {
                Some(r) => Fact::Unknown(Unknown::Unreadable(format!(
                    "{r}: smoking status not coded"
                ))),
                None => self.not_recorded(OBSERVATION),
            },
            Err(u) => Fact::Unknown(u),
        };

        let pft: Vec<&Record> = self.observations_of(ObservationKind::Pft).collect();
        let last_pft_rec = pft
            .iter()
            .filter(|r| r.date().is_some())
            .max_by_key(|r| r.date());
        let last_pft = match last_pft_rec {
            Some(r) => Fact::known(
                r.date(),
                Provenance {
                    resources: vec![r.reference.clone()],
                    read_from: ReadFrom::Code,
                    date: r.date(),
                    note: None,
                },
            ),
            None => self.none_recorded(None, OBSERVATION),
        };
        let pft_days = i64::from(self.params.pft_validity_days);
        let pulmonary_function_tested = match last_pft_rec.and_then(|r| r.date().map(|d| (r, d))) {
            Some((r, d)) if (self.today - d).num_days() <= pft_days => Fact::known(
                true,
                Provenance {
                    resources: vec![r.reference.clone()],
                    read_from: ReadFrom::Code,
                    date: Some(d),
                    note: None,
                },
            ),
            Some((r, d)) => match self.set_aside(OBSERVATION) {
                Some(u) => Fact::Unknown(u),
                None => with_note(
                    derived(false, vec![r.reference.clone()], Some(d)),
                    Some(format!("last PFT {d}, older than {pft_days} days")),
                ),
            },
            None => self.none_recorded(false, OBSERVATION),
        };
        let measure = |kind: ObservationKind| -> Vec<Candidate<f64>> {
            self.observations_of(kind)
                .filter_map(|rec| {
                    let (x, _) = rec.get("valueQuantity").and_then(json::quantity)?;
                    Some(Candidate::new(rec, x, ReadFrom::Code))
                })
                .collect()
        };
        let cardiomyopathy_or_heart_failure = self.sequela(
            cardiac,
            measure(ObservationKind::Lvef),
            self.params.lvef_min_percent,
            ("LVEF", "%"),
        );
        let renal_impairment = self.sequela(
            renal,
            measure(ObservationKind::Egfr),
            self.params.egfr_min,
            ("eGFR", "mL/min/1.73 m²"),
        );
        HistoryFacts {
            li_fraumeni,
            second_malignancy,
            current_smoker,
            last_pft,
            pulmonary_function_tested,
            cardiomyopathy_or_heart_failure,
            renal_impairment,
        }
    }

    /// A sequela Condition (cardiomyopathy, renal impairment): by code, or by text that
    /// affirms it (negation-aware, whole words: "no heart failure" is not heart failure).
    fn sequela_of(&self, id: &'static str, c: &Concept) -> Option<ReadFrom> {
        if self.vocab.by_code(id, c) {
            return Some(ReadFrom::Code);
        }
        let vs = self.vocab.terminology.get(id)?;
        let terms: Vec<((), &str)> = vs
            .text_fallbacks()
            .iter()
            .map(|t| ((), t.as_str()))
            .collect();
        c.texts()
            .any(|t| {
                mentions(t, &terms)
                    .iter()
                    .any(|m| m.polarity == Polarity::Affirmed)
            })
            .then_some(ReadFrom::Text)
    }

    /// Cardiomyopathy / renal impairment: a Condition, else the latest measurement below
    /// `min` (LVEF %, eGFR); closed world like other conditions.
    fn sequela(
        &self,
        conditions: Vec<Candidate<bool>>,
        measures: Vec<Candidate<f64>>,
        min: u32,
        (what, unit): (&str, &str),
    ) -> Fact<bool> {
        if let Some(c) = conditions.into_iter().max_by_key(|c| c.date) {
            return c.into_fact();
        }
        match latest(measures) {
            Ok(Some(m)) => {
                let below = m.value < f64::from(min);
                if !below && let Some(u) = self.set_aside(CONDITION) {
                    return Fact::Unknown(u);
                }
                let note = format!(
                    "{what} {} {unit} ({} {min} {unit})",
                    m.value,
                    if below { "below" } else { "not below" }
                );
                Candidate {
                    date: m.date,
                    value: below,
                    reference: m.reference,
                    read_from: m.read_from,
                    note: Some(note),
                }
                .into_fact()
            }
            Ok(None) => self.none_recorded(false, CONDITION_OBS),
            Err(u) => Fact::Unknown(u),
        }
    }

    /// Another primary cancer: ICD-10 C00–C96 outside C48–C49 and the secondary codes
    /// C77–C79, or an ICD-O-3 malignant morphology outside the sarcoma ranges (carcinomas and
    /// melanomas below 8800, haematological from 9590).
    fn is_other_cancer(&self, code: &Concept, histology_ext: Option<&Value>) -> bool {
        let icd = code.codings().any(|(s, c)| {
            (s == ICD10CM || s == ICD10)
                && c.starts_with('C')
                && c.get(1..3)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= 96 && !(48..=49).contains(&n) && !(77..=79).contains(&n))
        });
        let morph = |c: &Concept| {
            c.codings().any(|(s, c)| {
                s == ICDO3
                    && c.ends_with("/3")
                    && c.get(..4)
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| !(8800..9590).contains(&n))
            })
        };
        icd || morph(code) || histology_ext.is_some_and(|h| morph(&Concept::of(Some(h))))
    }
}
