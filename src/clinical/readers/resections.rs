//! Resections and completeness: resection Procedures (what they resected, organs, date),
//! the residual-tumour (R0/R1/R2) and rupture Observations attached to them, and the
//! Procedure records other readers take from the same pass (radiotherapy, biopsies).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::Value;

use super::diagnosis::DiagnosisFacts;
use super::metastases::MetastasisRecord;
use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::{self, Concept};
use crate::clinical::extract::{
    Candidate, Extractor, OBSERVATION, ObservationKind, PROCEDURE, derived, latest, value_concept,
};
use crate::clinical::picture::*;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "resections and completeness",
    reads: &[
        TypeReads {
            resource_type: "Procedure",
            classifying: &["code", "bodySite"],
            values: &["status", "reasonReference"],
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &[
                "valueCodeableConcept",
                "valueString",
                "valueBoolean",
                "partOf",
                "focus",
            ],
        },
    ],
};

/// A parsed resection Procedure before its target is settled.
#[derive(Debug)]
pub(crate) struct ResectionRecord<'a> {
    pub(crate) record: &'a Record<'a>,
    pub(crate) date: NaiveDate,
    pub(crate) reasons: Vec<&'a str>,
    pub(crate) retroperitoneal: bool,
    pub(crate) metastasis_site: Option<MetastasisSite>,
    organs: u32,
    read_from: ReadFrom,
    pub(crate) completeness: Fact<Completeness>,
    rupture: Fact<bool>,
}

/// Residual-tumour Observations (R0/R1/R2, or unreadable) and rupture Observations.
pub(crate) struct CompletenessRecords<'r, 'a> {
    residual: Vec<(&'r Record<'a>, Result<Completeness, ()>, ReadFrom)>,
    rupture: Vec<(&'r Record<'a>, bool)>,
}

/// The completed Procedures, by what they are.
pub(crate) struct ProcedureRecords<'r, 'a> {
    /// Dated resections, oldest first, with completeness and rupture attached.
    pub(crate) resections: Vec<ResectionRecord<'r>>,
    pub(crate) undated_resections: Vec<String>,
    pub(crate) rt_records: Vec<&'r Record<'a>>,
    pub(crate) biopsies: Vec<&'r Record<'a>>,
}

impl<'a> Extractor<'a, '_> {
    pub(crate) fn completeness_records(&self) -> CompletenessRecords<'_, 'a> {
        let _reading = Reading::start(&SPEC);
        let v = &self.vocab;
        let residual = self
            .observations_of(ObservationKind::Residual)
            .map(|rec| {
                let vc = value_concept(rec);
                let r = v.first(
                    &[
                        ("residual-r0", Completeness::R0),
                        ("residual-r1", Completeness::R1),
                        ("residual-r2", Completeness::R2),
                    ],
                    &vc,
                );
                match r {
                    Some((c, rf)) => (rec, Ok(c), rf),
                    None => (rec, Err(()), ReadFrom::Code),
                }
            })
            .collect();
        let rupture = self
            .observations_of(ObservationKind::Rupture)
            .filter_map(|rec| Some((rec, rec.get("valueBoolean").and_then(Value::as_bool)?)))
            .collect();
        CompletenessRecords { residual, rupture }
    }

    pub(crate) fn read_procedures<'r>(
        &'r self,
        completeness: &CompletenessRecords<'r, 'a>,
    ) -> ProcedureRecords<'r, 'a> {
        let _reading = Reading::start(&SPEC);
        let v = &self.vocab;
        let mut resection_recs: Vec<ResectionRecord> = Vec::new();
        let mut undated_resections = Vec::new();
        let mut rt_records: Vec<&Record> = Vec::new();
        let mut biopsies: Vec<&Record> = Vec::new();
        for rec in &self.procedures {
            // What the Procedure is comes first: only then are its values read.
            let code = rec.concept("code");
            let biopsy = v.matches("biopsy-any", &code).is_some()
                || v.matches("biopsy-fna", &code).is_some()
                || v.by_code("biopsy-core", &code);
            let radiotherapy = !biopsy
                && (v.by_code("radiotherapy-procedure", &code)
                    || v.by_text("radiotherapy-procedure", &code));
            let resection = (!biopsy && !radiotherapy)
                .then(|| v.matches("resection-procedure", &code))
                .flatten();
            if !biopsy && !radiotherapy && resection.is_none() {
                continue;
            }
            let completed = rec.str("status") == Some("completed");
            if !completed {
                continue;
            }
            if biopsy {
                biopsies.push(rec);
            } else if radiotherapy {
                rt_records.push(rec);
            } else if let Some(m) = resection {
                let Some(date) = rec.date() else {
                    undated_resections.push(rec.reference.clone());
                    continue;
                };
                let body = rec.concept_all("bodySite");
                let retroperitoneal = v.matches("site-retroperitoneum", &body).is_some()
                    || v.by_text("site-retroperitoneum", &code);
                let metastasis_site = if v.by_code("site-lung", &body)
                    || v.matches("pulmonary-metastasectomy", &code).is_some()
                {
                    Some(MetastasisSite::Lung)
                } else if v.by_code("site-liver", &body) {
                    Some(MetastasisSite::Liver)
                } else {
                    None
                };
                let organs = rec
                    .array("bodySite")
                    .filter(|b| {
                        v.matches("site-retroperitoneum", &Concept::of(Some(b)))
                            .is_none()
                    })
                    .count() as u32;
                resection_recs.push(ResectionRecord {
                    record: rec,
                    date,
                    reasons: rec.references("reasonReference"),
                    retroperitoneal,
                    metastasis_site,
                    organs,
                    read_from: concepts::read_from(m),
                    completeness: Fact::Unknown(Unknown::NotRecorded),
                    rupture: Fact::Unknown(Unknown::NotRecorded),
                });
            }
        }
        resection_recs.sort_by_key(|r| r.date);
        self.attach_completeness(
            &mut resection_recs,
            &completeness.residual,
            &completeness.rupture,
        );
        ProcedureRecords {
            resections: resection_recs,
            undated_resections,
            rt_records,
            biopsies,
        }
    }

    /// What each resection resected: a metastasis (by reason or site), a recurrence (by
    /// reason, or a local resection after a recurrence episode), else the primary.
    pub(crate) fn resection_targets(
        &self,
        procs: &ProcedureRecords,
        episodes: &[RecurrenceEpisode],
        met_recs: &[MetastasisRecord],
        dx: &DiagnosisFacts,
    ) -> Vec<Resection> {
        let _reading = Reading::start(&SPEC);
        let met_sources: BTreeSet<&str> = met_recs.iter().map(|m| m.source.as_str()).collect();
        let dx_ref = dx.diagnosis.as_ref().map(|d| d.condition.as_str());
        let episode_sources: BTreeSet<String> = episodes.iter().map(|e| e.source.clone()).collect();
        let mut resections: Vec<Resection> = Vec::new();
        let mut last_local: Option<NaiveDate> = None;
        let mut primary_seen = false;
        for r in &procs.resections {
            let recurrence_between = episodes
                .iter()
                .any(|e| e.detected <= r.date && last_local.is_none_or(|l| e.detected > l));
            let met_reason = r.reasons.iter().find(|x| met_sources.contains(**x));
            let target = if let Some(m) = met_reason {
                let site = met_recs
                    .iter()
                    .find(|x| x.source == **m)
                    .and_then(|x| x.site);
                ResectionTarget::Metastasis {
                    site: site.or(r.metastasis_site),
                    condition: Some((*m).to_owned()),
                }
            } else if r.reasons.iter().any(|x| episode_sources.contains(*x)) {
                ResectionTarget::Recurrence
            } else if r.reasons.iter().any(|x| Some(*x) == dx_ref) || r.retroperitoneal {
                if recurrence_between {
                    ResectionTarget::Recurrence
                } else if !primary_seen {
                    ResectionTarget::Primary
                } else {
                    ResectionTarget::Unknown
                }
            } else if let Some(site) = r.metastasis_site {
                ResectionTarget::Metastasis {
                    site: Some(site),
                    condition: None,
                }
            } else {
                ResectionTarget::Unknown
            };
            match target {
                ResectionTarget::Primary => {
                    primary_seen = true;
                    last_local = Some(r.date);
                }
                ResectionTarget::Recurrence => last_local = Some(r.date),
                _ => {}
            }
            resections.push(Resection {
                procedure: r.record.reference.clone(),
                date: r.date,
                target,
                completeness: r.completeness.clone(),
                rupture_or_piecemeal: r.rupture.clone(),
                organs_resected: if r.organs > 0 {
                    derived(r.organs, vec![r.record.reference.clone()], Some(r.date))
                } else {
                    Fact::Unknown(Unknown::NotRecorded)
                },
                read_from: r.read_from,
            });
        }
        resections
    }

    /// The primary resection (closed world) and the metastasectomies.
    pub(crate) fn primary_resection(
        &self,
        resections: &[Resection],
        procs: &ProcedureRecords,
        dx: &DiagnosisFacts,
    ) -> (Fact<Option<Resection>>, Vec<Resection>) {
        let _reading = Reading::start(&SPEC);
        let primary = resections
            .iter()
            .rev()
            .find(|r| r.target == ResectionTarget::Primary)
            .cloned();
        let untargeted_after_dx: Vec<&Resection> = resections
            .iter()
            .filter(|r| r.target == ResectionTarget::Unknown)
            .filter(|r| {
                dx.diagnosis
                    .as_ref()
                    .and_then(|d| d.date)
                    .is_none_or(|d| r.date >= d)
            })
            .collect();
        let primary_resection: Fact<Option<Resection>> = match primary {
            Some(p) => Fact::known(
                Some(p.clone()),
                Provenance {
                    resources: vec![p.procedure.clone()],
                    read_from: p.read_from,
                    date: Some(p.date),
                    note: None,
                },
            ),
            None if !untargeted_after_dx.is_empty() => Fact::Unknown(Unknown::Unreadable(format!(
                "{} does not say what it resected",
                untargeted_after_dx[0].procedure
            ))),
            None if !procs.undated_resections.is_empty() => Fact::Unknown(Unknown::Unreadable(
                format!("{} has no date", procs.undated_resections[0]),
            )),
            None => self.none_recorded(None, PROCEDURE),
        };
        let metastasectomies: Vec<Resection> = resections
            .iter()
            .filter(|r| matches!(r.target, ResectionTarget::Metastasis { .. }))
            .cloned()
            .collect();
        (primary_resection, metastasectomies)
    }

    /// Completeness and rupture Observations: `partOf`/`focus` → the Procedure, else the
    /// nearest resection on or before the Observation's date. Latest wins per resection.
    fn attach_completeness(
        &self,
        resections: &mut [ResectionRecord],
        residual: &[(&Record, Result<Completeness, ()>, ReadFrom)],
        rupture: &[(&Record, bool)],
    ) {
        let target = |rec: &Record| -> Option<usize> {
            let mut refs = rec.references("partOf");
            refs.extend(rec.references("focus"));
            if let Some(i) = resections
                .iter()
                .position(|r| refs.contains(&r.record.reference.as_str()))
            {
                return Some(i);
            }
            let d = rec.date()?;
            resections.iter().rposition(|r| r.date <= d)
        };
        let residual_targets: Vec<Option<usize>> =
            residual.iter().map(|(r, ..)| target(r)).collect();
        let rupture_targets: Vec<Option<usize>> = rupture.iter().map(|(r, _)| target(r)).collect();
        let mut per: BTreeMap<usize, Vec<Candidate<Completeness>>> = BTreeMap::new();
        let mut unreadable: BTreeMap<usize, String> = BTreeMap::new();
        for ((rec, value, rf), t) in residual.iter().zip(residual_targets) {
            let Some(i) = t else { continue };
            match value {
                Ok(c) => per.entry(i).or_default().push(Candidate::new(rec, *c, *rf)),
                Err(()) => {
                    unreadable.insert(i, rec.reference.clone());
                }
            }
        }
        for (i, r) in resections.iter_mut().enumerate() {
            r.completeness = match per.remove(&i).map(latest) {
                Some(Ok(Some(c))) => c.into_fact(),
                Some(Err(u)) => Fact::Unknown(u),
                _ => match unreadable.get(&i) {
                    Some(o) => Fact::Unknown(Unknown::Unreadable(format!("{o} has no R0/R1/R2"))),
                    None => self.not_recorded(OBSERVATION),
                },
            };
        }
        let mut per: BTreeMap<usize, Vec<Candidate<bool>>> = BTreeMap::new();
        for ((rec, b), t) in rupture.iter().zip(rupture_targets) {
            if let Some(i) = t {
                per.entry(i)
                    .or_default()
                    .push(Candidate::new(rec, *b, ReadFrom::Code));
            }
        }
        for (i, r) in resections.iter_mut().enumerate() {
            r.rupture = match per.remove(&i).map(latest) {
                Some(Ok(Some(c))) => c.into_fact(),
                Some(Err(u)) => Fact::Unknown(u),
                _ => self.not_recorded(OBSERVATION),
            };
        }
    }
}
