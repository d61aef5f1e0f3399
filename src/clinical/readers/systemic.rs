//! Systemic therapy and doses: lines of therapy from MedicationAdministration / Statement /
//! Request (agents by code, contained or referenced Medication), responses per line from
//! the disease-status Observations, the cumulative anthracycline dose and body surface area.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde_json::Value;

use super::disease_status::StatusObservation;
use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::anthracycline::{self, BsaRecord, DoseEntry, DoseInputs, DoseRecord};
use crate::clinical::concepts::{Concept, Vocab};
use crate::clinical::extract::{
    Extractor, MEDICATION, OBSERVATION, ObservationKind, derived, months_between, with_note,
};
use crate::clinical::json::{self, quantity, str_at};
use crate::clinical::picture::*;

const MEDICATION_VALUES: &[&str] = &[
    "status",
    "statusReason",
    "medicationReference",
    "contained",
    "dosage",
];

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "systemic therapy and doses",
    reads: &[
        TypeReads {
            resource_type: "MedicationAdministration",
            classifying: &["medicationCodeableConcept", "medicationReference"],
            values: MEDICATION_VALUES,
        },
        TypeReads {
            resource_type: "MedicationStatement",
            classifying: &["medicationCodeableConcept", "medicationReference"],
            values: MEDICATION_VALUES,
        },
        TypeReads {
            resource_type: "MedicationRequest",
            classifying: &["medicationCodeableConcept", "medicationReference"],
            values: MEDICATION_VALUES,
        },
        TypeReads {
            resource_type: "Medication",
            classifying: &["code"],
            values: &["ingredient"],
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueQuantity"],
        },
    ],
};

/// Agents started within this many days of a line's start belong to that line.
const LINE_WINDOW_DAYS: i64 = 30;

/// A body-surface-area record: (date, m², reference).
pub(crate) type BsaRec = (Option<NaiveDate>, f64, String);

/// The systemic-therapy facts.
pub(crate) struct SystemicFacts {
    pub(crate) history: Fact<SystemicHistory>,
    pub(crate) favourable: Fact<bool>,
    pub(crate) progression: Fact<bool>,
    pub(crate) body_surface_area_m2: Fact<f64>,
    pub(crate) prior_anthracycline: Fact<bool>,
    pub(crate) anthracycline_dose: AnthracyclineDose,
}

/// A medication record of therapy given or under way (not planned, not on hold).
fn is_given<'a>(rec: &impl Read<'a>) -> bool {
    matches!(
        rec.str("status"),
        Some("completed" | "active" | "stopped" | "in-progress")
    )
}

impl<'a> Extractor<'a, '_> {
    pub(crate) fn bsa_records(&self) -> Vec<BsaRec> {
        let _reading = Reading::start(&SPEC);
        self.observations_of(ObservationKind::Bsa)
            .filter_map(|rec| {
                let (m2, _) = rec.get("valueQuantity").and_then(quantity)?;
                Some((rec.date(), m2, rec.reference.clone()))
            })
            .collect()
    }

    pub(crate) fn read_systemic(
        &self,
        status_obs: &[StatusObservation],
        bsa: &[BsaRec],
    ) -> SystemicFacts {
        let _reading = Reading::start(&SPEC);
        let statuses: Vec<(NaiveDate, DiseaseStatus)> = status_obs
            .iter()
            .filter_map(|(r, s, _)| Some((r.date()?, *s)))
            .collect();
        let (history, favourable, progression) = self.systemic(&statuses);
        let (prior_anthracycline, anthracycline_dose) = self.anthracycline(bsa);
        let body_surface_area_m2 = bsa
            .iter()
            .max_by_key(|(d, _, _)| *d)
            .map(|(d, m2, r)| {
                Fact::known(
                    *m2,
                    Provenance {
                        resources: vec![r.clone()],
                        read_from: ReadFrom::Code,
                        date: *d,
                        note: None,
                    },
                )
            })
            .unwrap_or_else(|| self.not_recorded(OBSERVATION));
        SystemicFacts {
            history,
            favourable,
            progression,
            body_surface_area_m2,
            prior_anthracycline,
            anthracycline_dose,
        }
    }

    fn agents_of(
        &self,
        v: &Record<'a>,
        memo: &mut HashMap<String, Vec<(Agent, ReadFrom)>>,
    ) -> Vec<(Agent, ReadFrom)> {
        let c = medication_concept(v, &self.medications);
        memo.entry(c.signature())
            .or_insert_with(|| agents_in(&self.vocab, &c))
            .clone()
    }

    fn systemic(
        &self,
        statuses: &[(NaiveDate, DiseaseStatus)],
    ) -> (Fact<SystemicHistory>, Fact<bool>, Fact<bool>) {
        struct Event<'r> {
            record: &'r Record<'r>,
            agents: Vec<Agent>,
        }
        let mut events: Vec<Event> = Vec::new();
        let mut memo = HashMap::new();
        for rec in &self.medication_uses {
            // What the record is comes first: only then are its values read.
            let agents: Vec<Agent> = self
                .agents_of(rec, &mut memo)
                .into_iter()
                .map(|(a, _)| a)
                .collect();
            if agents.is_empty() {
                continue;
            }
            let status_ok = matches!(
                rec.str("status"),
                Some("completed" | "active" | "stopped" | "in-progress")
            );
            if status_ok {
                events.push(Event {
                    record: rec,
                    agents,
                });
            }
        }
        if events.is_empty() {
            return (
                self.none_recorded(
                    SystemicHistory {
                        lines: Vec::new(),
                        agents: BTreeSet::new(),
                    },
                    MEDICATION,
                ),
                self.none_recorded(false, MEDICATION),
                self.none_recorded(false, MEDICATION),
            );
        }
        // Lines: agents started within LINE_WINDOW_DAYS of the line's start, or agents
        // already in it, continue a line; a new agent later opens the next.
        let mut dated: Vec<&Event> = events
            .iter()
            .filter(|e| e.record.date().is_some())
            .collect();
        dated.sort_by_key(|e| e.record.date());
        let mut lines: Vec<SystemicLine> = Vec::new();
        for e in dated {
            let d = e.record.date().expect("filtered");
            let continues = lines.last().is_some_and(|l| {
                (d - l.start).num_days() <= LINE_WINDOW_DAYS
                    || e.agents.iter().all(|a| l.agents.contains(a))
            });
            if !continues {
                lines.push(SystemicLine {
                    number: lines.len() as u32 + 1,
                    start: d,
                    end: d,
                    agents: BTreeSet::new(),
                    resources: Vec::new(),
                    best_response: None,
                    stable_months: None,
                    last_response: None,
                    ongoing: None,
                    intolerance: false,
                });
            }
            let l = lines.last_mut().expect("pushed");
            l.end = l.end.max(d);
            l.agents.extend(e.agents.iter().copied());
            l.resources.push(e.record.reference.clone());
            // An order or statement says whether the line is still given; an administration
            // is completed dose by dose and says nothing about the line.
            let status = e.record.str("status");
            if matches!(status, Some("active" | "in-progress")) {
                l.ongoing = Some(true);
            } else if e.record.resource_type() != "MedicationAdministration"
                && matches!(status, Some("completed" | "stopped"))
                && l.ongoing.is_none()
            {
                l.ongoing = Some(false);
            }
            if status == Some("stopped") || status == Some("completed") {
                let reason = e.record.concept_all("statusReason");
                if self.vocab.matches("therapy-intolerance", &reason).is_some() {
                    l.intolerance = true;
                }
            }
        }
        // Responses: disease-status results from a line's start to the next line's start.
        let starts: Vec<NaiveDate> = lines.iter().map(|l| l.start).collect();
        for (i, l) in lines.iter_mut().enumerate() {
            let until = starts.get(i + 1).copied();
            let mut rs: Vec<(NaiveDate, DiseaseStatus)> = statuses
                .iter()
                .filter(|(d, _)| *d >= l.start && until.is_none_or(|u| *d < u))
                .copied()
                .collect();
            rs.sort();
            let to_response = |s: DiseaseStatus| match s {
                DiseaseStatus::Improved => Response::Regression,
                DiseaseStatus::Stable => Response::Stable,
                DiseaseStatus::Worsened => Response::Progression,
            };
            l.best_response = rs.iter().map(|(_, s)| to_response(*s)).min();
            l.last_response = rs.last().map(|(_, s)| to_response(*s));
            let mut best: Option<f64> = None;
            let mut run_start: Option<NaiveDate> = None;
            for (d, s) in &rs {
                if *s == DiseaseStatus::Worsened {
                    run_start = None;
                    continue;
                }
                let start = *run_start.get_or_insert(*d);
                let span = months_between(start, *d);
                best = Some(best.map_or(span, |b: f64| b.max(span)));
            }
            l.stable_months = best;
        }
        let agents: BTreeSet<Agent> = events
            .iter()
            .flat_map(|e| e.agents.iter().copied())
            .collect();
        let resources: Vec<String> = events.iter().map(|e| e.record.reference.clone()).collect();
        let last_date = lines.last().map(|l| l.end);
        let favourable = {
            let fav = lines.iter().find(|l| {
                l.best_response == Some(Response::Regression)
                    || l.stable_months
                        .is_some_and(|m| m >= f64::from(self.params.favorable_stable_months))
            });
            match fav {
                Some(l) => derived(true, l.resources.clone(), Some(l.start)),
                None if lines.iter().all(|l| l.best_response.is_some()) && !lines.is_empty() => {
                    derived(false, resources.clone(), last_date)
                }
                None => Fact::Unknown(Unknown::NotRecorded),
            }
        };
        let progression = match lines.last() {
            Some(l) if l.best_response.is_some() => derived(
                statuses
                    .iter()
                    .any(|(d, s)| *d >= l.start && *s == DiseaseStatus::Worsened),
                l.resources.clone(),
                Some(l.start),
            ),
            _ => Fact::Unknown(Unknown::NotRecorded),
        };
        let history = SystemicHistory { lines, agents };
        (
            with_note(
                derived(history, resources, last_date),
                self.incomplete_note(MEDICATION),
            ),
            favourable,
            progression,
        )
    }

    /// Prior anthracycline exposure and the cumulative dose's lower bound (§4.1) from the
    /// medication records and the body-surface-area Observations (those without a usable
    /// value included: the nearest BSA before an mg dose must be usable).
    fn anthracycline(&self, bsa: &[BsaRec]) -> (Fact<bool>, AnthracyclineDose) {
        let mut memo = HashMap::new();
        let mut records = Vec::new();
        for rec in &self.medication_uses {
            // What the record is comes first: only then are its values read.
            let anth: Vec<Agent> = self
                .agents_of(rec, &mut memo)
                .into_iter()
                .map(|(a, _)| a)
                .filter(|a| a.is_anthracycline())
                .collect();
            let Some(&agent) = anth.first() else { continue };
            if !is_given(rec) {
                continue;
            }
            let entry = if anth.len() > 1 {
                DoseEntry::SeveralAgents
            } else if rec.resource_type() == "MedicationAdministration" {
                DoseEntry::Administration(
                    rec.get("dosage")
                        .and_then(|d| d.get("dose"))
                        .and_then(quantity),
                )
            } else {
                DoseEntry::Statement
            };
            records.push(DoseRecord {
                reference: &rec.reference,
                agent,
                date: rec.date(),
                entry,
            });
        }
        let unusable: Vec<(Option<NaiveDate>, &str)> = self
            .observations_of(ObservationKind::Bsa)
            .filter(|rec| {
                !rec.get("valueQuantity")
                    .and_then(quantity)
                    .is_some_and(|(m2, _)| m2 > 0.0)
            })
            .map(|rec| (rec.date(), rec.reference.as_str()))
            .collect();
        let bsa = bsa
            .iter()
            .filter(|(_, m2, _)| *m2 > 0.0)
            .map(|(d, m2, r)| BsaRecord {
                reference: r,
                date: *d,
                m2: Some(*m2),
            })
            .chain(unusable.into_iter().map(|(d, r)| BsaRecord {
                reference: r,
                date: d,
                m2: None,
            }))
            .collect();
        anthracycline::assess(&DoseInputs {
            records,
            bsa,
            epirubicin_factor: self.params.epirubicin_to_doxorubicin_factor,
            medication_missing: self.set_aside(MEDICATION),
            bsa_missing: self.set_aside(OBSERVATION),
        })
    }
}

pub(crate) fn is_mg_per_m2(unit: &str) -> bool {
    matches!(unit, "mg/m2" | "mg/m^2" | "mg/m²" | "mg/(m2)")
}

/// The concept naming a medication: `medicationCodeableConcept`, or the contained /
/// referenced Medication's code and ingredients.
pub(crate) fn medication_concept<'v>(
    v: &impl Read<'v>,
    medications: &BTreeMap<String, &'v Value>,
) -> Concept<'v> {
    let mut c = v.concept("medicationCodeableConcept");
    if let Some(r) = v
        .get("medicationReference")
        .and_then(|r| str_at(r, "reference"))
    {
        let med = if let Some(local) = r.strip_prefix('#') {
            v.array("contained")
                .find(|m| str_at(m, "id") == Some(local))
        } else {
            medications.get(json::normalise_reference(r)).copied()
        };
        if let Some(m) = med {
            c.add(m.get("code").unwrap_or(&Value::Null));
            for ing in json::array(m, "ingredient") {
                c.add(ing.get("itemCodeableConcept").unwrap_or(&Value::Null));
            }
        }
        if let Some(d) = v
            .get("medicationReference")
            .and_then(|r| str_at(r, "display"))
        {
            c.add_text(d);
        }
    }
    c
}

/// The agents a medication concept names: by code when any coding is recognised (a coded
/// product is not re-read from its display), else by text.
pub(crate) fn agents_in(vocab: &Vocab, c: &Concept) -> Vec<(Agent, ReadFrom)> {
    let coded: Vec<(Agent, ReadFrom)> = Agent::ALL
        .iter()
        .filter(|a| vocab.by_code(a.value_set(), c))
        .map(|a| (*a, ReadFrom::Code))
        .collect();
    if !coded.is_empty() {
        return coded;
    }
    Agent::ALL
        .iter()
        .filter(|a| vocab.by_text(a.value_set(), c))
        .map(|a| (*a, ReadFrom::Text))
        .collect()
}
