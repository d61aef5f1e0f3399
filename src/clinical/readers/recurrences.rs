//! Recurrence episodes: recurrence Conditions and local-progression Observations, whether
//! each episode is still active, the recurrence number, focality, biopsy of the recurrence
//! and the disease state.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::diagnosis::DiagnosisFacts;
use super::disease_status::StatusObservation;
use super::metastases::{MetastasisActivity, MetastasisRecord};
use super::resections::ProcedureRecords;
use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts;
use crate::clinical::extract::{
    CONDITION_OBS, Candidate, Extractor, OBSERVATION, ObservationKind, absence, body_site_keys,
    derived, latest, with_note,
};
use crate::clinical::json;
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "recurrence episodes",
    reads: &[
        TypeReads {
            resource_type: "Condition",
            classifying: &["code", "bodySite"],
            values: &[
                "clinicalStatus",
                "evidence",
                "stage",
                "onsetDateTime",
                "onsetPeriod",
                "abatementDateTime",
                "abatementPeriod",
            ],
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueCodeableConcept", "focus"],
        },
        TypeReads {
            resource_type: "Procedure",
            classifying: &["code"],
            values: &["status", "reasonReference"],
        },
    ],
};

/// Local recurrence Conditions at different sites detected this close together are one
/// multifocal recurrence (docs/input-profile.md "focality").
const MULTIFOCAL_WINDOW_DAYS: i64 = 30;

fn is_resolved_status(s: Option<&str>) -> bool {
    matches!(s, Some("resolved" | "remission" | "inactive"))
}

/// Which episodes are active, and the current one.
pub(crate) struct EpisodeActivity {
    /// Why the latest episode's activity is uncertain, if it is.
    pub(crate) current_uncertain: Option<String>,
    pub(crate) current: Option<RecurrenceEpisode>,
}

/// The recurrence facts.
pub(crate) struct RecurrenceFacts {
    pub(crate) disease_state: Fact<DiseaseState>,
    pub(crate) recurrence_number: Fact<u32>,
    pub(crate) focality: Fact<Focality>,
    pub(crate) recurrence_biopsied: Fact<bool>,
}

impl<'a> Extractor<'a, '_> {
    /// Episodes from recurrence Conditions, and from a local progression Observation that
    /// is the first after a complete resection with no recurrence Condition covering that
    /// interval; oldest first.
    pub(crate) fn recurrence_episodes(
        &self,
        dx: &DiagnosisFacts,
        procs: &ProcedureRecords,
        met_recs: &[MetastasisRecord],
        status_obs: &[StatusObservation],
    ) -> Vec<RecurrenceEpisode> {
        let _reading = Reading::start(&SPEC);
        let met_sources: BTreeSet<&str> = met_recs.iter().map(|m| m.source.as_str()).collect();
        let is_met_resection = |r: &super::resections::ResectionRecord| {
            r.reasons.iter().any(|x| met_sources.contains(x)) || r.metastasis_site.is_some()
        };
        // v2: a later RPS Condition is a recurrence whatever its current clinicalStatus (EHRs
        // mark treated recurrences resolved): one with an onset after the first resection
        // of the primary.
        let dx_ref = dx.diagnosis.as_ref().map(|d| d.condition.as_str());
        let first_local_resection = procs
            .resections
            .iter()
            .filter(|r| !is_met_resection(r))
            .filter(|r| r.retroperitoneal || r.reasons.iter().any(|x| Some(*x) == dx_ref))
            .map(|r| r.date)
            .min();
        let later = dx.other_diagnosis_conditions.iter().filter(|rec| {
            let has_onset = rec.get("onsetDateTime").is_some() || rec.get("onsetPeriod").is_some();
            has_onset && first_local_resection.is_some_and(|f| rec.date().is_some_and(|d| d > f))
        });
        let mut episodes: Vec<RecurrenceEpisode> = dx
            .recurrence_conds
            .iter()
            .chain(later)
            .filter_map(|rec| {
                Some(RecurrenceEpisode {
                    source: rec.reference.clone(),
                    detected: rec.date()?,
                    active: true,
                    resected_by: None,
                    body_sites: body_site_keys(*rec),
                    read_from: ReadFrom::Code,
                    number: 0,
                })
            })
            .collect();
        let complete_local: Vec<NaiveDate> = procs
            .resections
            .iter()
            .filter(|r| !is_met_resection(r))
            .filter(|r| r.completeness.value().is_some_and(|c| c.is_complete()))
            .map(|r| r.date)
            .collect();
        let mut local_obs: Vec<&StatusObservation> = status_obs
            .iter()
            .filter(|(_, s, local)| *s == DiseaseStatus::Worsened && *local == Some(true))
            .collect();
        local_obs.sort_by_key(|(r, _, _)| r.date());
        let mut opened_after: BTreeSet<NaiveDate> = BTreeSet::new();
        for (rec, _, _) in local_obs {
            let Some(d) = rec.date() else { continue };
            let Some(&r) = complete_local.iter().rev().find(|&&r| r < d) else {
                continue;
            };
            let next = complete_local.iter().find(|&&n| n > r).copied();
            let covered = episodes
                .iter()
                .any(|e| e.detected > r && next.is_none_or(|n| e.detected <= n));
            if !covered && opened_after.insert(r) {
                episodes.push(RecurrenceEpisode {
                    source: rec.reference.clone(),
                    detected: d,
                    active: true,
                    resected_by: None,
                    body_sites: Vec::new(),
                    read_from: ReadFrom::Code,
                    number: 0,
                });
            }
        }
        episodes.sort_by_key(|e| e.detected);
        // A new episode only after a complete resection or a record that the recurrence was
        // gone (a resolved recurrence Condition: its abatement, else its detection date).
        let mut disease_gone: Vec<NaiveDate> = complete_local.clone();
        for e in &episodes {
            let Some(c) = self.conditions.iter().find(|c| c.reference == e.source) else {
                continue;
            };
            if is_resolved_status(c.first_code("clinicalStatus")) {
                let abated = ["abatementDateTime", "abatementPeriod"]
                    .iter()
                    .find_map(|k| c.get(k))
                    .and_then(|a| match a {
                        serde_json::Value::String(x) => json::parse_date(x),
                        _ => json::str_at(a, "start").and_then(json::parse_date),
                    });
                disease_gone.push(abated.unwrap_or(e.detected));
            }
        }
        let detected: Vec<NaiveDate> = episodes.iter().map(|e| e.detected).collect();
        for (e, n) in episodes
            .iter_mut()
            .zip(crate::clinical::episodes::episode_numbers(
                &detected,
                &disease_gone,
            ))
        {
            e.number = n;
        }
        episodes
    }

    /// Episode activity: resolved, or removed by a later complete resection.
    pub(crate) fn episode_activity(
        &self,
        episodes: &mut [RecurrenceEpisode],
        resections: &[Resection],
    ) -> EpisodeActivity {
        let _reading = Reading::start(&SPEC);
        let mut uncertainties: Vec<Option<String>> = Vec::with_capacity(episodes.len());
        for e in episodes.iter_mut() {
            let status_resolved = self
                .conditions
                .iter()
                .find(|c| c.reference == e.source)
                .is_some_and(|c| is_resolved_status(c.first_code("clinicalStatus")));
            let removal = resections
                .iter()
                .find(|r| r.date >= e.detected && r.target == ResectionTarget::Recurrence);
            let untargeted = resections
                .iter()
                .find(|r| r.date >= e.detected && r.target == ResectionTarget::Unknown);
            e.resected_by = removal.map(|r| r.procedure.clone());
            let mut uncertain = None;
            e.active = if status_resolved {
                false
            } else if let Some(r) = removal {
                match r.completeness.value() {
                    Some(c) => !c.is_complete(),
                    None => {
                        uncertain = Some(format!(
                            "the completeness of the resection of the recurrence ({}) is not recorded",
                            crate::display::date(r.date)
                        ));
                        true
                    }
                }
            } else if let Some(r) = untargeted {
                uncertain = Some(format!(
                    "a resection after the recurrence ({}) does not say what it resected",
                    crate::display::date(r.date)
                ));
                true
            } else {
                true
            };
            uncertainties.push(uncertain);
        }
        // The current recurrence: the latest active record of the latest episode.
        let last_episode = episodes.last().map(|e| e.number);
        let current_idx = episodes
            .iter()
            .rposition(|e| e.active && Some(e.number) == last_episode);
        EpisodeActivity {
            current_uncertain: current_idx.and_then(|i| uncertainties[i].clone()),
            current: current_idx.map(|i| episodes[i].clone()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_recurrences(
        &self,
        dx: &DiagnosisFacts,
        episodes: &[RecurrenceEpisode],
        activity: &EpisodeActivity,
        resections: &[Resection],
        procs: &ProcedureRecords,
        mets: &MetastasisActivity,
        primary_resection: &Fact<Option<Resection>>,
    ) -> RecurrenceFacts {
        let _reading = Reading::start(&SPEC);
        let active_mets = mets.active();
        let active_refs: Vec<String> = active_mets.iter().map(|m| m.source.clone()).collect();
        let undated_recurrences: Vec<String> = dx
            .recurrence_conds
            .iter()
            .filter(|r| r.date().is_none())
            .map(|r| r.reference.clone())
            .collect();
        let current_recurrence = &activity.current;
        let current_uncertain = &activity.current_uncertain;
        let local_state: Result<Option<&RecurrenceEpisode>, Unknown> =
            if let Some(why) = current_uncertain {
                Err(Unknown::Unreadable(why.clone()))
            } else if !undated_recurrences.is_empty() {
                Err(Unknown::Unreadable(format!(
                    "{} has no onset date",
                    undated_recurrences[0]
                )))
            } else {
                Ok(current_recurrence.as_ref())
            };
        let disease_state = if dx.diagnosis.is_none() {
            Fact::Unknown(Unknown::NotApplicable)
        } else {
            match (local_state, active_mets.is_empty()) {
                (Ok(Some(e)), false) => {
                    let mut refs = vec![e.source.clone()];
                    refs.extend(active_refs.clone());
                    derived(DiseaseState::LocalAndDistant, refs, Some(e.detected))
                }
                (Ok(Some(e)), true) => derived(
                    DiseaseState::LocalRecurrence,
                    vec![e.source.clone()],
                    Some(e.detected),
                ),
                (Err(_), false) | (Ok(None), false) => with_note(
                    derived(DiseaseState::DistantMetastasis, active_refs.clone(), None),
                    None,
                ),
                (Err(u), true) => Fact::Unknown(u),
                (Ok(None), true) => {
                    if let Some(u) = self.set_aside(CONDITION_OBS) {
                        Fact::Unknown(u)
                    } else {
                        match primary_resection.value() {
                            Some(None) => absence(DiseaseState::PrimaryUntreated),
                            Some(Some(_)) => {
                                let last = resections.last().map(|r| r.procedure.clone());
                                derived(
                                    DiseaseState::NoEvidenceOfDisease,
                                    last.into_iter().collect(),
                                    resections.last().map(|r| r.date),
                                )
                            }
                            None if resections
                                .iter()
                                .any(|r| r.target == ResectionTarget::Recurrence) =>
                            {
                                derived(
                                    DiseaseState::NoEvidenceOfDisease,
                                    resections
                                        .last()
                                        .map(|r| r.procedure.clone())
                                        .into_iter()
                                        .collect(),
                                    resections.last().map(|r| r.date),
                                )
                            }
                            None => Fact::Unknown(Unknown::DependsOn(vec!["primary_resection"])),
                        }
                    }
                }
            }
        };
        // Local recurrence with an uncertain removal but distant disease: the state says
        // distant only; note it.
        let disease_state = match (&disease_state, current_uncertain) {
            (
                Fact::Known {
                    value: DiseaseState::DistantMetastasis,
                    ..
                },
                Some(why),
            ) => with_note(
                disease_state.clone(),
                Some(format!("local recurrence status unknown: {why}")),
            ),
            _ => disease_state,
        };

        let recurrence_number = match self.set_aside(CONDITION_OBS) {
            Some(u) => Fact::Unknown(u),
            None if episodes.is_empty() => absence(0),
            // Episodes, not records: several records of one episode count once.
            None => derived(
                episodes.last().map_or(0, |e| e.number),
                episodes.iter().map(|e| e.source.clone()).collect(),
                episodes.last().map(|e| e.detected),
            ),
        };

        let focality_obs: Vec<(&Record, Focality)> = self
            .observations_of(ObservationKind::Focality)
            .filter_map(|rec| {
                let vc = rec.concept("valueCodeableConcept");
                let f = if vc.has_code(crate::knowledge::OBSERVATION_SYSTEM, "multifocal") {
                    Focality::Multifocal
                } else if vc.has_code(crate::knowledge::OBSERVATION_SYSTEM, "unifocal") {
                    Focality::Unifocal
                } else {
                    return None;
                };
                Some((rec, f))
            })
            .collect();
        let focality = self.focality(current_recurrence, episodes, &focality_obs);

        let recurrence_biopsied = match current_recurrence {
            None => Fact::Unknown(Unknown::NotApplicable),
            Some(e) => {
                let by_procedure = procs.biopsies.iter().find(|b| {
                    b.references("reasonReference").contains(&e.source.as_str())
                        || b.date().is_some_and(|d| d >= e.detected)
                });
                let by_pathology = dx
                    .histology_observation_dates
                    .iter()
                    .find(|(d, _)| d.is_some_and(|d| d >= e.detected));
                match (by_procedure, by_pathology) {
                    (Some(b), _) => Fact::known(
                        true,
                        Provenance {
                            resources: vec![b.reference.clone()],
                            read_from: ReadFrom::Code,
                            date: b.date(),
                            note: None,
                        },
                    ),
                    (None, Some((d, r))) => derived(true, vec![r.clone()], *d),
                    (None, None) => self.none_recorded(false, &["Procedure", "Observation"]),
                }
            }
        };
        RecurrenceFacts {
            disease_state,
            recurrence_number,
            focality,
            recurrence_biopsied,
        }
    }

    fn focality(
        &self,
        current: &Option<RecurrenceEpisode>,
        episodes: &[RecurrenceEpisode],
        observations: &[(&Record, Focality)],
    ) -> Fact<Focality> {
        let Some(cur) = current else {
            return Fact::Unknown(Unknown::NotApplicable);
        };
        // An RPS focality Observation about this recurrence (focus), or dated since it.
        let cands: Vec<Candidate<Focality>> = observations
            .iter()
            .filter(|(r, _)| {
                let focus = r.references("focus");
                if focus.is_empty() {
                    r.date().is_some_and(|d| d >= cur.detected)
                } else {
                    focus.contains(&cur.source.as_str())
                }
            })
            .map(|(r, f)| Candidate::new(r, *f, ReadFrom::Code))
            .collect();
        match latest(cands) {
            Ok(Some(c)) => return c.into_fact(),
            Err(u) => return Fact::Unknown(u),
            Ok(None) => {}
        }
        // SCT multifocal tumour in the recurrence Condition's code, evidence or stage.
        if let Some(cond) = self.conditions.iter().find(|c| c.reference == cur.source) {
            let mut c = cond.concept("code");
            for e in cond.array("evidence") {
                c.add(e.get("code").unwrap_or(&serde_json::Value::Null));
            }
            for s in cond.array("stage") {
                c.add(s.get("summary").unwrap_or(&serde_json::Value::Null));
            }
            if let Some(m) = self.vocab.matches("multifocal-tumour", &c) {
                return Fact::known(
                    Focality::Multifocal,
                    Provenance {
                        resources: vec![cur.source.clone()],
                        read_from: concepts::read_from(m),
                        date: Some(cur.detected),
                        note: None,
                    },
                );
            }
        }
        // Two recurrence Conditions at different sites detected within 30 days.
        let other = episodes.iter().find(|e| {
            e.source != cur.source
                && e.source.starts_with("Condition/")
                && (e.detected - cur.detected).num_days().abs() <= MULTIFOCAL_WINDOW_DAYS
                && !e.body_sites.is_empty()
                && !cur.body_sites.is_empty()
                && e.body_sites != cur.body_sites
        });
        if let Some(o) = other {
            return with_note(
                derived(
                    Focality::Multifocal,
                    vec![cur.source.clone(), o.source.clone()],
                    Some(cur.detected),
                ),
                Some("recurrences at two sites within 30 days".to_owned()),
            );
        }
        self.not_recorded(OBSERVATION)
    }
}
