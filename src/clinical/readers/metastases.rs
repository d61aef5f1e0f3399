//! Metastases: metastasis Conditions and distant-progression Observations, whether each is
//! still active, sites, sarcomatosis, lesion count, timing and the disease-free interval.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::diagnosis::{ClassifiedCondition, ConditionClass, DiagnosisFacts};
use super::disease_status::StatusObservation;
use super::imaging::ImagingFacts;
use super::view::{Read, Reading};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{
    CONDITION_OBS, Candidate, Extractor, ICDO3, OBSERVATION, ObservationKind, PROCEDURE, absence,
    body_site_keys, derived, latest, months_between, with_note,
};
use crate::clinical::picture::*;
use crate::knowledge::MatchedBy;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "metastases",
    reads: &[
        TypeReads {
            resource_type: "Condition",
            classifying: &["code", "bodySite"],
            values: &["clinicalStatus"],
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueInteger", "valueCodeableConcept", "extension"],
        },
    ],
};

/// A metastasis Condition or distant-progression Observation before activity is settled.
#[derive(Debug)]
pub(crate) struct MetastasisRecord {
    pub(crate) source: String,
    pub(crate) site: Option<MetastasisSite>,
    detected: Option<NaiveDate>,
    resolved: bool,
    intra_abdominal: bool,
    read_from: ReadFrom,
    sarcomatosis_morphology: bool,
    /// Identifies the lesion for the lower bound of the lesion count: `None` for records
    /// that give no count (peritoneal disease, "multiple" lesions, sarcomatosis, progression
    /// Observations). Records with the same key are one lesion.
    count_key: Option<String>,
}

/// The metastases with their activity settled.
pub(crate) struct MetastasisActivity {
    /// Sorted by detection date (undated last).
    pub(crate) metastases: Vec<Metastasis>,
    /// Per metastasis record (in record order): still active.
    metastasis_active: Vec<bool>,
}

impl MetastasisActivity {
    pub(crate) fn active(&self) -> Vec<&Metastasis> {
        self.metastases.iter().filter(|m| m.active).collect()
    }
}

/// The metastasis facts.
pub(crate) struct MetastasisFacts {
    pub(crate) distant_disease: Fact<bool>,
    pub(crate) metastasis_sites: Fact<BTreeSet<MetastasisSite>>,
    pub(crate) metastasis_timing: Fact<MetastasisTiming>,
    pub(crate) synchronous_local_distant: Fact<bool>,
    pub(crate) sarcomatosis: Fact<bool>,
    pub(crate) metastatic_lesion_count: Fact<u32>,
    pub(crate) metastatic_lesions_at_least: Fact<u32>,
    pub(crate) low_volume: Fact<bool>,
    pub(crate) dfi_months: Fact<f64>,
    pub(crate) recurrent_metastases_after_metastasectomy: Fact<bool>,
}

impl<'a> Extractor<'a, '_> {
    /// The metastasis Conditions, in record order.
    pub(crate) fn metastasis_records(
        &self,
        conds: &[ClassifiedCondition],
    ) -> Vec<MetastasisRecord> {
        let _reading = Reading::start(&SPEC);
        conds
            .iter()
            .filter_map(|c| match c.class {
                ConditionClass::Metastasis(site, read_from, morph) => {
                    let status = c.record.first_code("clinicalStatus");
                    let intra_abdominal = site == Some(MetastasisSite::Peritoneum)
                        || ["abdom", "mesenter", "oment", "peritone"]
                            .iter()
                            .any(|w| c.body.text_contains(w));
                    let no_count = site == Some(MetastasisSite::Peritoneum)
                        || morph
                        || ["multiple", "sarcomatosis"].iter().any(|w| {
                            c.code.text_has_word_start(w) || c.body.text_has_word_start(w)
                        });
                    let count_key = (!no_count).then(|| {
                        format!(
                            "{site:?}|{}|{:?}",
                            body_site_keys(c.record).join(","),
                            c.record.date()
                        )
                    });
                    Some(MetastasisRecord {
                        source: c.record.reference.clone(),
                        site,
                        detected: c.record.date(),
                        resolved: matches!(status, Some("resolved" | "remission" | "inactive")),
                        intra_abdominal,
                        read_from,
                        sarcomatosis_morphology: morph,
                        count_key,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Adds the distant-progression Observations (when no metastasis Condition exists) and
    /// settles which metastases are active: not resolved, not completely resected.
    pub(crate) fn metastases(
        &self,
        met_recs: &mut Vec<MetastasisRecord>,
        status_obs: &[StatusObservation],
        resections: &[Resection],
    ) -> MetastasisActivity {
        let _reading = Reading::start(&SPEC);
        let has_met_condition = met_recs.iter().any(|m| m.source.starts_with("Condition/"));
        for (rec, s, local) in status_obs {
            if *s == DiseaseStatus::Worsened && *local == Some(false) && !has_met_condition {
                met_recs.push(MetastasisRecord {
                    source: rec.reference.clone(),
                    site: None,
                    detected: rec.date(),
                    resolved: false,
                    intra_abdominal: false,
                    read_from: ReadFrom::Code,
                    sarcomatosis_morphology: false,
                    count_key: None,
                });
            }
        }
        let metastasis_active: Vec<bool> = met_recs
            .iter()
            .map(|m| {
                let removed = resections.iter().any(|r| {
                    matches!(&r.target, ResectionTarget::Metastasis { condition: Some(c), .. } if *c == m.source)
                        && m.detected.is_none_or(|d| r.date >= d)
                        && r.completeness.value().is_some_and(|c| c.is_complete())
                });
                !m.resolved && !removed
            })
            .collect();
        let mut metastases: Vec<Metastasis> = met_recs
            .iter()
            .zip(&metastasis_active)
            .map(|(m, active)| Metastasis {
                source: m.source.clone(),
                site: m.site,
                detected: m.detected,
                active: *active,
                intra_abdominal: m.intra_abdominal,
                read_from: m.read_from,
            })
            .collect();
        metastases.sort_by_key(|m| (m.detected.is_none(), m.detected));
        MetastasisActivity {
            metastases,
            metastasis_active,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_metastases(
        &self,
        met_recs: &[MetastasisRecord],
        mets: &MetastasisActivity,
        imaging: &ImagingFacts,
        dx: &DiagnosisFacts,
        resections: &[Resection],
        metastasectomies: &[Resection],
        primary_resection: &Fact<Option<Resection>>,
        current_recurrence: Option<&RecurrenceEpisode>,
    ) -> MetastasisFacts {
        let _reading = Reading::start(&SPEC);
        let active_mets = mets.active();
        let active_refs: Vec<String> = active_mets.iter().map(|m| m.source.clone()).collect();
        let met_set_aside = self.set_aside(CONDITION_OBS);
        let last_ct_chest = &imaging.last_ct_chest;
        let distant_disease = if !active_mets.is_empty() {
            derived(
                true,
                active_refs.clone(),
                active_mets.iter().filter_map(|m| m.detected).max(),
            )
        } else if let Some(u) = met_set_aside.clone() {
            Fact::Unknown(u)
        } else {
            let max_age = self.params.staging_ct_max_age_days;
            match last_ct_chest.value().copied().flatten() {
                Some(d) if (self.today - d).num_days() <= i64::from(max_age) => {
                    let mut f = derived(
                        false,
                        last_ct_chest
                            .provenance()
                            .map(|p| p.resources.clone())
                            .unwrap_or_default(),
                        Some(d),
                    );
                    f = with_note(f, Some(format!("no metastasis recorded; CT chest on {d}")));
                    f
                }
                last => Fact::Unknown(Unknown::Outdated {
                    last,
                    max_age_days: max_age,
                }),
            }
        };
        let metastasis_sites = if active_mets.is_empty() {
            self.none_recorded(BTreeSet::new(), CONDITION_OBS)
        } else {
            let sites: BTreeSet<MetastasisSite> = active_mets
                .iter()
                .map(|m| m.site.unwrap_or(MetastasisSite::Other))
                .collect();
            with_note(
                derived(sites, active_refs.clone(), None),
                self.incomplete_note(CONDITION_OBS),
            )
        };
        let sarcomatosis = {
            let peritoneal: Vec<String> = met_recs
                .iter()
                .zip(&mets.metastasis_active)
                .filter(|(m, active)| {
                    **active
                        && (m.site == Some(MetastasisSite::Peritoneum) || m.sarcomatosis_morphology)
                })
                .map(|(m, _)| m.source.clone())
                .collect();
            let intra: Vec<String> = active_mets
                .iter()
                .filter(|m| m.intra_abdominal)
                .map(|m| m.source.clone())
                .collect();
            if !peritoneal.is_empty() {
                derived(true, peritoneal, None)
            } else if intra.len() >= 2 {
                derived(true, intra, None)
            } else {
                self.none_recorded(false, CONDITION_OBS)
            }
        };
        let lesion_counts: Vec<Candidate<u32>> = self
            .observations_of(ObservationKind::LesionCount)
            .filter_map(|rec| {
                let n = rec
                    .get("valueInteger")
                    .and_then(serde_json::Value::as_u64)?;
                Some(Candidate::new(rec, n as u32, ReadFrom::Code))
            })
            .collect();
        // The count is known only from a lesion-count Observation (§4.1); metastasis
        // Conditions give a lower bound (one lesion per distinct record), which can make low
        // volume false but never true.
        let metastatic_lesion_count = match latest(lesion_counts) {
            Ok(Some(c)) => c.into_fact(),
            Err(u) => Fact::Unknown(u),
            Ok(None) => match met_set_aside.clone() {
                Some(u) => Fact::Unknown(u),
                None if active_mets.is_empty() => absence(0),
                None => self.not_recorded(OBSERVATION),
            },
        };
        let metastatic_lesions_at_least = {
            let mut keys: BTreeSet<&str> = BTreeSet::new();
            let mut sources: Vec<String> = Vec::new();
            for (m, active) in met_recs.iter().zip(&mets.metastasis_active) {
                if let (true, Some(k)) = (*active, m.count_key.as_deref()) {
                    keys.insert(k);
                    sources.push(m.source.clone());
                }
            }
            if keys.is_empty() {
                Fact::Unknown(Unknown::NotApplicable)
            } else {
                with_note(
                    derived(keys.len() as u32, sources, None),
                    Some("one lesion per metastasis record".to_owned()),
                )
            }
        };
        let max_lesions = self.params.low_volume_max_lesions;
        let low_volume = match (
            metastatic_lesions_at_least.value(),
            metastatic_lesion_count.value(),
        ) {
            (Some(&at_least), _) if at_least > max_lesions => with_note(
                derived(
                    false,
                    metastatic_lesions_at_least
                        .provenance()
                        .map(|p| p.resources.clone())
                        .unwrap_or_default(),
                    None,
                ),
                Some(format!("at least {at_least} lesions")),
            ),
            (_, Some(&n)) => derived(
                n <= max_lesions,
                metastatic_lesion_count
                    .provenance()
                    .map(|p| p.resources.clone())
                    .unwrap_or_default(),
                None,
            ),
            _ => Fact::Unknown(Unknown::DependsOn(vec!["metastatic_lesion_count"])),
        };
        let dfi_months = self.dfi(resections, current_recurrence, &active_mets);
        let metastasis_timing =
            self.metastasis_timing(&mets.metastases, &dx.diagnosis, primary_resection);
        let synchronous_local_distant = match (current_recurrence, active_mets.is_empty()) {
            (_, true) | (None, _) => match self.set_aside(CONDITION_OBS) {
                Some(u) => Fact::Unknown(u),
                None => derived(false, Vec::new(), None),
            },
            (Some(e), false) => {
                let window = i64::from(self.params.synchronous_window_days);
                let dated: Vec<&&Metastasis> = active_mets
                    .iter()
                    .filter(|m| m.detected.is_some())
                    .collect();
                let close = dated
                    .iter()
                    .find(|m| (m.detected.unwrap() - e.detected).num_days().abs() <= window);
                match close {
                    Some(m) => derived(true, vec![e.source.clone(), m.source.clone()], m.detected),
                    None if dated.len() == active_mets.len() => derived(
                        false,
                        std::iter::once(e.source.clone())
                            .chain(active_refs.clone())
                            .collect(),
                        None,
                    ),
                    None => Fact::Unknown(Unknown::Unreadable(
                        "a metastasis has no detection date".to_owned(),
                    )),
                }
            }
        };
        let recurrent_metastases_after_metastasectomy = match metastasectomies.first() {
            None => self.none_recorded(false, PROCEDURE),
            Some(first) => {
                let after: Vec<String> = active_mets
                    .iter()
                    .filter(|m| m.detected.is_some_and(|d| d > first.date))
                    .map(|m| m.source.clone())
                    .collect();
                if after.is_empty() {
                    self.none_recorded(false, CONDITION_OBS)
                } else {
                    derived(true, after, None)
                }
            }
        };
        MetastasisFacts {
            distant_disease,
            metastasis_sites,
            metastasis_timing,
            synchronous_local_distant,
            sarcomatosis,
            metastatic_lesion_count,
            metastatic_lesions_at_least,
            low_volume,
            dfi_months,
            recurrent_metastases_after_metastasectomy,
        }
    }

    /// A metastasis Condition: (site, how read, sarcomatosis morphology).
    pub(crate) fn metastasis_of(
        &self,
        code: &Concept,
        body: &Concept,
        secondary_profile: bool,
    ) -> Option<(Option<MetastasisSite>, ReadFrom, bool)> {
        use MetastasisSite as S;
        const SITE_CODES: &[(&str, MetastasisSite)] = &[
            ("metastasis-lung", S::Lung),
            ("metastasis-pleura", S::Pleura),
            ("metastasis-peritoneum", S::Peritoneum),
            ("metastasis-liver", S::Liver),
            ("metastasis-brain", S::Brain),
            ("metastasis-bone", S::Bone),
            ("metastasis-adrenal", S::Adrenal),
            ("metastasis-other", S::Other),
        ];
        let v = &self.vocab;
        let sarcomatosis = v.matches("sarcomatosis-morphology", code);
        let by_site = SITE_CODES.iter().find(|(id, _)| v.by_code(id, code));
        let morphology_6 = code.codings().any(|(s, c)| s == ICDO3 && c.ends_with("/6"));
        let any = v.matches("metastasis-any", code);
        let read_from = if by_site.is_some()
            || morphology_6
            || secondary_profile
            || any == Some(MatchedBy::Code)
            || sarcomatosis == Some(MatchedBy::Code)
        {
            ReadFrom::Code
        } else if any.is_some() || sarcomatosis.is_some() {
            ReadFrom::Text
        } else {
            return None;
        };
        let site = by_site.map(|(_, s)| *s).or_else(|| {
            [
                ("site-lung", S::Lung),
                ("site-liver", S::Liver),
                ("site-bone", S::Bone),
                ("site-brain", S::Brain),
                ("site-peritoneum", S::Peritoneum),
            ]
            .into_iter()
            .find(|(id, _)| v.by_code(id, body))
            .map(|(_, s)| s)
            .or(sarcomatosis.map(|_| S::Peritoneum))
        });
        Some((site, read_from, sarcomatosis.is_some()))
    }

    /// Months from the last complete (R0/R1) resection to the first active recurrence or
    /// metastasis detected after it.
    fn dfi(
        &self,
        resections: &[Resection],
        current: Option<&RecurrenceEpisode>,
        active_mets: &[&Metastasis],
    ) -> Fact<f64> {
        let mut events: Vec<(NaiveDate, &str)> = active_mets
            .iter()
            .filter_map(|m| Some((m.detected?, m.source.as_str())))
            .collect();
        if let Some(e) = current {
            events.push((e.detected, e.source.as_str()));
        }
        let Some(&(latest_event, _)) = events.iter().max() else {
            return Fact::Unknown(Unknown::NotApplicable);
        };
        // Walk back from the latest event through the resections before it.
        for r in resections.iter().rev().filter(|r| r.date < latest_event) {
            match r.completeness.value() {
                Some(c) if c.is_complete() => {
                    let (event, source) = events
                        .iter()
                        .filter(|(d, _)| *d > r.date)
                        .min()
                        .copied()
                        .expect("the latest event lies after this resection");
                    return derived(
                        months_between(r.date, event),
                        vec![r.procedure.clone(), source.to_owned()],
                        Some(event),
                    );
                }
                Some(_) => continue,
                None => return Fact::Unknown(Unknown::DependsOn(vec!["completeness"])),
            }
        }
        Fact::Unknown(Unknown::NotApplicable)
    }

    fn metastasis_timing(
        &self,
        metastases: &[Metastasis],
        diagnosis: &Option<RpsDiagnosis>,
        primary: &Fact<Option<Resection>>,
    ) -> Fact<MetastasisTiming> {
        let active: Vec<&Metastasis> = metastases.iter().filter(|m| m.active).collect();
        let pool: Vec<&Metastasis> = if active.is_empty() {
            metastases.iter().collect()
        } else {
            active
        };
        let Some(first) = pool.first() else {
            return Fact::Unknown(Unknown::NotApplicable);
        };
        let Some(detected) = first.detected else {
            return Fact::Unknown(Unknown::Unreadable(
                "a metastasis record has no detection date".to_owned(),
            ));
        };
        let window = i64::from(self.params.synchronous_window_days);
        let dx_date = diagnosis.as_ref().and_then(|d| d.date);
        let mut refs = vec![first.source.clone()];
        if let Some(d) = diagnosis {
            refs.push(d.condition.clone());
        }
        if let Some(dx) = dx_date
            && (detected - dx).num_days() <= window
        {
            return derived(MetastasisTiming::Synchronous, refs, Some(detected));
        }
        match primary.value() {
            Some(None) => derived(MetastasisTiming::Synchronous, refs, Some(detected)),
            Some(Some(p)) if detected < p.date => {
                refs.push(p.procedure.clone());
                derived(MetastasisTiming::Synchronous, refs, Some(detected))
            }
            Some(Some(p)) => {
                refs.push(p.procedure.clone());
                // Diagnosis precedes resection, so this far after the resection is also this
                // far after the diagnosis.
                if dx_date.is_some() || (detected - p.date).num_days() > window {
                    derived(MetastasisTiming::Metachronous, refs, Some(detected))
                } else {
                    Fact::Unknown(Unknown::DependsOn(vec!["diagnosis date"]))
                }
            }
            None => Fact::Unknown(Unknown::DependsOn(vec!["primary_resection"])),
        }
    }
}
