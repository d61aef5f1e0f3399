//! Builds the [`Picture`] from validated FHIR resources (input-profile.md).
//!
//! One pass sorts the resources by type (borrowed, never cloned) and drops the ones the
//! profile ignores (entered in error, refuted, not done, cancelled) and those dated after
//! the evaluation time; the facts are then read type by type. Several records of the same
//! assessment: the latest by clinical date wins; two different values on that latest date
//! make it unknown (conflicting) rather than picking one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::fhir::{
    Concept, Vocab, array, clinical_date, first_code, is_excluded, quantity, references,
    resource_type, str_at,
};
use super::orders::ImagingKind;
use super::picture::*;
use super::{ClinicalInput, SetAsideResource};
use crate::knowledge::{OBSERVATION_SYSTEM, Parameters, Terminology};

/// Every value set id the extraction and draft-order classification use; the service checks
/// at start-up that the knowledge base has them all (`Terminology::require`).
pub const VALUE_SETS: &[&str] = &[
    "rps-diagnosis",
    "sarcoma-diagnosis",
    "site-retroperitoneum",
    "histology-wd-liposarcoma",
    "histology-dd-liposarcoma",
    "histology-liposarcoma-other",
    "histology-liposarcoma-unspecified",
    "histology-leiomyosarcoma",
    "histology-solitary-fibrous-tumor",
    "histology-mpnst",
    "histology-synovial-sarcoma",
    "histology-ups",
    "histology-sarcoma-nos",
    "histology-gist",
    "histology-desmoid",
    "histology-ewing",
    "histology-rhabdomyosarcoma",
    "histology-dsrct",
    "histology-clear-cell-sarcoma",
    "histology-pecoma",
    "histology-imt",
    "histology-carcinosarcoma",
    "histology-sarcomatoid-carcinoma",
    "histology-teratoma-derived",
    "histology-visceral-or-gynecologic",
    "histology-benign",
    "histology-observation",
    "grade-observation",
    "grade-low",
    "grade-intermediate",
    "grade-high",
    "resection-procedure",
    "residual-tumour-observation",
    "residual-r0",
    "residual-r1",
    "residual-r2",
    "radiotherapy-procedure",
    "iort",
    "disease-status-observation",
    "status-worsened",
    "status-improved",
    "status-stable",
    "qualifier-local",
    "qualifier-distant",
    "multifocal-tumour",
    "metastasis-any",
    "metastasis-lung",
    "metastasis-pleura",
    "metastasis-peritoneum",
    "metastasis-liver",
    "metastasis-brain",
    "metastasis-bone",
    "metastasis-adrenal",
    "metastasis-other",
    "site-lung",
    "site-liver",
    "site-bone",
    "site-brain",
    "site-peritoneum",
    "sarcomatosis-morphology",
    "critical-structure-observation",
    "critical-structure-site",
    "symptom-observation",
    "symptom-pain",
    "symptom-obstruction",
    "symptom-dyspnoea",
    "symptom-cord-compression",
    "bone-symptom",
    "ecog-observation",
    "karnofsky-observation",
    "drug-doxorubicin",
    "drug-epirubicin",
    "drug-ifosfamide",
    "drug-dacarbazine",
    "drug-gemcitabine",
    "drug-docetaxel",
    "drug-pazopanib",
    "drug-eribulin",
    "drug-trabectedin",
    "drug-olaratumab",
    "drug-cyclophosphamide",
    "bsa-observation",
    "smoking-observation",
    "smoking-current",
    "smoking-former",
    "smoking-never",
    "pft-observation",
    "imaging-ct-chest",
    "imaging-ct-abdomen-pelvis",
    "imaging-ct-chest-abdomen-pelvis",
    "imaging-bone-scan",
    "imaging-fdg-pet",
    "biopsy-core",
    "biopsy-any",
    "biopsy-fna",
    "li-fraumeni",
    "debulking",
    "hipec",
    "pulmonary-metastasectomy",
    "metastasectomy",
    "neoadjuvant",
    "adjuvant",
];

const MCODE: &str = "http://hl7.org/fhir/us/mcode/StructureDefinition/";
const HISTOLOGY_EXTENSION: &str = "mcode-histology-morphology-behavior";
const SECONDARY_CANCER_PROFILE: &str = "mcode-secondary-cancer-condition";
const DOSE_EXTENSION: &str = "mcode-radiotherapy-dose-delivered-to-volume";
const PROGRESSION_QUALIFIER: &str = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/codexrt-radiotherapy-disease-progression-qualifier";
const SCT: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const ICDO3: &str = "http://terminology.hl7.org/CodeSystem/icd-o-3";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

/// Radiotherapy within this many days of a resection is read as pre- or post-operative to
/// it; further away it is unrelated to surgery. An interpretation constant of the reader,
/// not a clinical threshold of the catalogue.
const RT_RESECTION_WINDOW_DAYS: i64 = 180;
/// Agents started within this many days of a line's start belong to that line.
const LINE_WINDOW_DAYS: i64 = 30;
/// Local recurrence Conditions at different sites detected this close together are one
/// multifocal recurrence (input-profile "focality").
const MULTIFOCAL_WINDOW_DAYS: i64 = 30;
/// Average month length, for month counts from day differences.
const DAYS_PER_MONTH: f64 = 30.4375;

/// Resource types that may carry each closed-world event (for set-aside checks).
const CONDITION: &[&str] = &["Condition"];
const CONDITION_OBS: &[&str] = &["Condition", "Observation"];
const OBSERVATION: &[&str] = &["Observation"];
const PROCEDURE: &[&str] = &["Procedure"];
const MEDICATION: &[&str] = &[
    "MedicationAdministration",
    "MedicationStatement",
    "MedicationRequest",
    "Medication",
];
const IMAGING: &[&str] = &["DiagnosticReport", "ImagingStudy", "Procedure"];

/// A resource kept for extraction.
#[derive(Debug)]
pub(crate) struct Rec<'a> {
    pub(crate) v: &'a Value,
    pub(crate) reference: String,
    pub(crate) date: Option<NaiveDate>,
}

/// Builds the clinical picture of one patient at `input.as_of`.
pub fn build_picture(
    input: &ClinicalInput,
    terminology: &Terminology,
    params: &Parameters,
) -> Picture {
    Extractor::new(input, terminology, params).run()
}

pub(crate) fn months_between(from: NaiveDate, to: NaiveDate) -> f64 {
    (to - from).num_days() as f64 / DAYS_PER_MONTH
}

/// A value read from one resource, candidate for latest-wins.
#[derive(Debug, Clone)]
struct Cand<T> {
    date: Option<NaiveDate>,
    value: T,
    reference: String,
    read_from: ReadFrom,
    note: Option<String>,
}

impl<T> Cand<T> {
    fn new(rec: &Rec, value: T, read_from: ReadFrom) -> Self {
        Cand {
            date: rec.date,
            value,
            reference: rec.reference.clone(),
            read_from,
            note: None,
        }
    }

    fn into_fact(self) -> Fact<T> {
        Fact::known(
            self.value,
            Provenance {
                resources: vec![self.reference],
                read_from: self.read_from,
                date: self.date,
                note: self.note,
            },
        )
    }
}

/// Latest by clinical date wins (undated records rank oldest); different values on the
/// latest date conflict.
fn latest<T: PartialEq>(cands: Vec<Cand<T>>) -> Result<Option<Cand<T>>, Unknown> {
    let Some(max) = cands.iter().map(|c| c.date).max() else {
        return Ok(None);
    };
    let mut at_max: Vec<Cand<T>> = cands.into_iter().filter(|c| c.date == max).collect();
    let first = at_max.remove(0);
    if let Some(other) = at_max.iter().find(|c| c.value != first.value) {
        return Err(Unknown::Conflicting(format!(
            "{} and {} differ on the same date",
            first.reference, other.reference
        )));
    }
    Ok(Some(first))
}

fn absence<T>(value: T) -> Fact<T> {
    Fact::known(
        value,
        Provenance {
            resources: Vec::new(),
            read_from: ReadFrom::Absence,
            date: None,
            note: None,
        },
    )
}

fn derived<T>(value: T, resources: Vec<String>, date: Option<NaiveDate>) -> Fact<T> {
    Fact::known(
        value,
        Provenance {
            resources,
            read_from: ReadFrom::Derived,
            date,
            note: None,
        },
    )
}

fn with_note<T>(mut f: Fact<T>, note: Option<String>) -> Fact<T> {
    if let (Fact::Known { provenance, .. }, Some(n)) = (&mut f, note) {
        provenance.note = Some(match provenance.note.take() {
            Some(old) => format!("{old}; {n}"),
            None => n,
        });
    }
    f
}

/// An RPS diagnosis Condition: how it matched and its histology, if it names one.
type DxCond<'r, 'a> = (&'r Rec<'a>, ReadFrom, Option<(Histology, ReadFrom)>);

/// A parsed resection Procedure before its target is settled.
#[derive(Debug)]
struct ResectionRec<'a> {
    rec: &'a Rec<'a>,
    date: NaiveDate,
    reasons: Vec<&'a str>,
    retroperitoneal: bool,
    met_site: Option<MetastasisSite>,
    organs: u32,
    read_from: ReadFrom,
    completeness: Fact<Completeness>,
    rupture: Fact<bool>,
}

/// A metastasis Condition or distant-progression Observation before activity is settled.
#[derive(Debug)]
struct MetRec {
    source: String,
    site: Option<MetastasisSite>,
    detected: Option<NaiveDate>,
    resolved: bool,
    intra_abdominal: bool,
    read_from: ReadFrom,
    sarcomatosis_morphology: bool,
}

struct Extractor<'a, 'i> {
    input: &'i ClinicalInput<'a>,
    vocab: Vocab<'i>,
    params: &'i Parameters,
    today: NaiveDate,
    set_aside_types: BTreeMap<&'i str, usize>,
    conditions: Vec<Rec<'a>>,
    observations: Vec<Rec<'a>>,
    procedures: Vec<Rec<'a>>,
    medication_uses: Vec<Rec<'a>>,
    medications: BTreeMap<String, &'a Value>,
    imaging: Vec<Rec<'a>>,
}

impl<'a, 'i> Extractor<'a, 'i> {
    fn new(
        input: &'i ClinicalInput<'a>,
        terminology: &'i Terminology,
        params: &'i Parameters,
    ) -> Self {
        let today = input.as_of.date_naive();
        let mut set_aside_types = BTreeMap::new();
        for SetAsideResource { resource_type, .. } in input.set_aside {
            *set_aside_types.entry(resource_type.as_str()).or_insert(0) += 1;
        }
        let mut x = Extractor {
            input,
            vocab: Vocab::new(terminology),
            params,
            today,
            set_aside_types,
            conditions: Vec::new(),
            observations: Vec::new(),
            procedures: Vec::new(),
            medication_uses: Vec::new(),
            medications: BTreeMap::new(),
            imaging: Vec::new(),
        };
        for &v in input.resources {
            let ty = resource_type(v);
            if ty == "Medication" {
                if let Some(id) = str_at(v, "id") {
                    x.medications.insert(format!("Medication/{id}"), v);
                }
                continue;
            }
            if is_excluded(v) {
                continue;
            }
            let date = clinical_date(v);
            // Evaluation at a fixed time must not see later data.
            if date.is_some_and(|d| d > today) {
                continue;
            }
            let rec = Rec {
                v,
                reference: format!("{ty}/{}", str_at(v, "id").unwrap_or("?")),
                date,
            };
            match ty {
                "Condition" => x.conditions.push(rec),
                "Observation" => x.observations.push(rec),
                "Procedure" => x.procedures.push(rec),
                "MedicationAdministration" | "MedicationStatement" | "MedicationRequest" => {
                    x.medication_uses.push(rec)
                }
                "DiagnosticReport" | "ImagingStudy" => x.imaging.push(rec),
                _ => {}
            }
        }
        x
    }

    /// `Unknown::Withheld` when data of any of `types` was withheld as a whole, else
    /// `Unknown::SetAside` when resources of any of `types` were set aside.
    fn set_aside(&self, types: &[&str]) -> Option<Unknown> {
        for w in self.input.withheld {
            let hit: Vec<String> = types
                .iter()
                .filter(|t| w.resource_types.iter().any(|w| w == *t))
                .map(|t| (*t).to_owned())
                .collect();
            if !hit.is_empty() {
                return Some(Unknown::Withheld {
                    resource_types: hit,
                    reason: w.reason,
                });
            }
        }
        let hit: Vec<String> = types
            .iter()
            .filter(|t| self.set_aside_types.contains_key(**t))
            .map(|t| (*t).to_owned())
            .collect();
        (!hit.is_empty()).then_some(Unknown::SetAside {
            resource_types: hit,
        })
    }

    /// Closed world: "none recorded", unless the carrying resources were set aside.
    fn none_recorded<T>(&self, value: T, types: &[&str]) -> Fact<T> {
        match self.set_aside(types) {
            Some(u) => Fact::Unknown(u),
            None => absence(value),
        }
    }

    /// Open world: not recorded (or set aside, which says more).
    fn not_recorded<T>(&self, types: &[&str]) -> Fact<T> {
        Fact::Unknown(self.set_aside(types).unwrap_or(Unknown::NotRecorded))
    }

    /// A note for a known list that set-aside resources might have completed.
    fn incomplete_note(&self, types: &[&str]) -> Option<String> {
        let n: usize = types
            .iter()
            .filter_map(|t| self.set_aside_types.get(*t))
            .sum();
        (n > 0).then(|| {
            format!(
                "{n} {} resource(s) were set aside; there may be more",
                types.join("/")
            )
        })
    }

    fn run(self) -> Picture {
        let v = &self.vocab;

        // ---- Conditions: diagnosis, recurrences, metastases, other --------------------
        let mut dx_conds: Vec<DxCond> = Vec::new();
        let mut recurrence_conds: Vec<&Rec> = Vec::new();
        let mut met_recs: Vec<MetRec> = Vec::new();
        let mut retro_masses = Vec::new();
        let mut li_fraumeni: Vec<Cand<bool>> = Vec::new();
        let mut other_cancers: Vec<String> = Vec::new();
        let mut symptom_list: Vec<Symptom> = Vec::new();
        let mut histology_cands: Vec<Cand<Histology>> = Vec::new();
        for rec in &self.conditions {
            let code = Concept::of(rec.v.get("code"));
            let body = Concept::of_all(rec.v.get("bodySite"));
            let status = first_code(rec.v, "clinicalStatus");
            let histology_ext = array(rec.v, "extension")
                .find(|e| str_at(e, "url").is_some_and(|u| u.ends_with(HISTOLOGY_EXTENSION)))
                .and_then(|e| e.get("valueCodeableConcept"));
            let histology = histology_ext
                .and_then(|h| self.histology_of(&Concept::of(Some(h))))
                .or_else(|| self.histology_of(&code));
            let is_secondary_profile = array(rec.v.get("meta").unwrap_or(&Value::Null), "profile")
                .filter_map(Value::as_str)
                .any(|p| p.contains(SECONDARY_CANCER_PROFILE));
            let met = self.metastasis_of(&code, &body, is_secondary_profile);
            let rps_code = v.by_code("rps-diagnosis", &code);
            let sarcoma = v.by_code("sarcoma-diagnosis", &code)
                || histology.is_some_and(|(h, _)| h != Histology::Benign);
            let retro = v.matches("site-retroperitoneum", &body).or_else(|| {
                v.by_text("site-retroperitoneum", &code)
                    .then_some(crate::knowledge::MatchedBy::Text)
            });
            if rps_code && met.is_none() {
                dx_conds.push((rec, ReadFrom::Code, histology));
            } else if let Some((site, read_from, morph)) =
                met.filter(|(_, rf, _)| *rf == ReadFrom::Code)
            {
                met_recs.push(self.met_rec(rec, &body, site, read_from, morph, status));
            } else if sarcoma && retro.is_some() {
                let by_text = histology.is_some_and(|(_, rf)| rf == ReadFrom::Text)
                    && !v.by_code("sarcoma-diagnosis", &code)
                    || retro == Some(crate::knowledge::MatchedBy::Text);
                let rf = if by_text {
                    ReadFrom::Text
                } else {
                    ReadFrom::Code
                };
                dx_conds.push((rec, rf, histology));
            } else if let Some((site, read_from, morph)) = met {
                met_recs.push(self.met_rec(rec, &body, site, read_from, morph, status));
            } else if retro.is_some() && !self.is_symptom_concept(&code) {
                retro_masses.push(rec.reference.clone());
            }
            if let Some(m) = v.matches("li-fraumeni", &code) {
                li_fraumeni.push(Cand::new(rec, true, super::fhir::read_from(m)));
            }
            let abated = [
                "abatementDateTime",
                "abatementPeriod",
                "abatementString",
                "abatementAge",
            ]
            .iter()
            .any(|k| rec.v.get(*k).is_some());
            let active = !abated && !matches!(status, Some("resolved" | "remission" | "inactive"));
            if active
                && !rps_code
                && !sarcoma
                && met.is_none()
                && self.is_other_cancer(&code, histology_ext)
            {
                other_cancers.push(rec.reference.clone());
            }
            if active && let Some(s) = self.symptom_of(rec, &code, &body) {
                symptom_list.push(s);
            }
        }
        // The diagnosis: the earliest RPS Condition that is not itself a recurrence.
        dx_conds.sort_by_key(|(r, _, _)| (r.date.is_none(), r.date));
        let primary_dx = dx_conds
            .iter()
            .find(|(r, _, _)| !is_recurrence_status(first_code(r.v, "clinicalStatus")));
        let diagnosis = match primary_dx.or(dx_conds.first()) {
            Some((rec, rf, _)) => {
                let lone_recurrence = primary_dx.is_none();
                Some(RpsDiagnosis {
                    condition: rec.reference.clone(),
                    // A lone recurrence-status Condition may carry either date.
                    date: if lone_recurrence { None } else { rec.date },
                    read_from: *rf,
                    clinical_status: first_code(rec.v, "clinicalStatus").map(str::to_owned),
                })
            }
            None => None,
        };
        for (rec, _, h) in &dx_conds {
            if is_recurrence_status(first_code(rec.v, "clinicalStatus")) {
                recurrence_conds.push(rec);
            }
            if let Some((h, rf)) = h {
                histology_cands.push(Cand::new(rec, *h, *rf));
            }
        }

        // ---- Observations ----------------------------------------------------------
        let mut grade_cands = Vec::new();
        let mut grade_unreadable = None;
        let mut residual_obs: Vec<(&Rec, Result<Completeness, ()>, ReadFrom)> = Vec::new();
        let mut rupture_obs: Vec<(&Rec, bool)> = Vec::new();
        let mut status_obs: Vec<(&Rec, DiseaseStatus, Option<bool>)> = Vec::new();
        let mut focality_obs: Vec<(&Rec, Focality)> = Vec::new();
        let mut lesion_counts = Vec::new();
        let mut critical: BTreeMap<CriticalStructure, Cand<bool>> = BTreeMap::new();
        let mut critical_seen: Vec<String> = Vec::new();
        let mut resectability_cands = Vec::new();
        let mut ecog_cands = Vec::new();
        let mut bsa: Vec<(Option<NaiveDate>, f64, String)> = Vec::new();
        let mut smoking_cands = Vec::new();
        let mut smoking_unreadable = None;
        let mut pft: Vec<&Rec> = Vec::new();
        let mut histology_obs_dates: Vec<(Option<NaiveDate>, String)> = Vec::new();
        let mut obs_kinds: HashMap<String, ObsKind> = HashMap::new();
        for rec in &self.observations {
            let code = Concept::of(rec.v.get("code"));
            let value = rec.v.get("valueCodeableConcept");
            // Observations repeat their codes (serial ECOGs, labs): classify each code once.
            let kind = *obs_kinds
                .entry(code.signature())
                .or_insert_with(|| self.obs_kind(&code));
            if kind == ObsKind::Histology {
                histology_obs_dates.push((rec.date, rec.reference.clone()));
                let vc = value_concept(rec.v);
                if let Some((h, rf)) = self.histology_of(&vc) {
                    histology_cands.push(Cand::new(rec, h, rf));
                }
            } else if kind == ObsKind::Grade {
                match self.grade_of(rec.v) {
                    Some((g, rf)) => grade_cands.push(Cand::new(rec, g, rf)),
                    None => grade_unreadable = Some(rec.reference.clone()),
                }
            } else if kind == ObsKind::Residual {
                let vc = value_concept(rec.v);
                let r = v.first(
                    &[
                        ("residual-r0", Completeness::R0),
                        ("residual-r1", Completeness::R1),
                        ("residual-r2", Completeness::R2),
                    ],
                    &vc,
                );
                match r {
                    Some((c, rf)) => residual_obs.push((rec, Ok(c), rf)),
                    None => residual_obs.push((rec, Err(()), ReadFrom::Code)),
                }
            } else if kind == ObsKind::Rupture {
                if let Some(b) = rec.v.get("valueBoolean").and_then(Value::as_bool) {
                    rupture_obs.push((rec, b));
                }
            } else if kind == ObsKind::DiseaseStatus {
                if let Some((s, local)) = self.disease_status_of(rec.v) {
                    status_obs.push((rec, s, local));
                }
            } else if kind == ObsKind::Focality {
                let vc = Concept::of(value);
                let f = if vc.has_code(OBSERVATION_SYSTEM, "multifocal") {
                    Some(Focality::Multifocal)
                } else if vc.has_code(OBSERVATION_SYSTEM, "unifocal") {
                    Some(Focality::Unifocal)
                } else {
                    None
                };
                if let Some(f) = f {
                    focality_obs.push((rec, f));
                }
            } else if kind == ObsKind::LesionCount {
                if let Some(n) = rec.v.get("valueInteger").and_then(Value::as_u64) {
                    lesion_counts.push(Cand::new(rec, n as u32, ReadFrom::Code));
                }
            } else if kind == ObsKind::Critical {
                let involved = rec
                    .v
                    .get("valueBoolean")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                critical_seen.push(rec.reference.clone());
                let body = Concept::of_all(rec.v.get("bodySite"));
                for s in self.critical_structures_of(&body) {
                    let c = Cand::new(rec, involved, ReadFrom::Code);
                    let newer = critical.get(&s).is_none_or(|old| old.date <= c.date);
                    if newer {
                        critical.insert(s, c);
                    }
                }
            } else if kind == ObsKind::Resectability {
                let vc = Concept::of(value);
                let r = [
                    ("resectable", Resectability::Resectable),
                    ("borderline", Resectability::Borderline),
                    ("unresectable", Resectability::Unresectable),
                ]
                .into_iter()
                .find(|(c, _)| vc.has_code(OBSERVATION_SYSTEM, c));
                if let Some((_, r)) = r {
                    resectability_cands.push(Cand::new(rec, r, ReadFrom::Code));
                }
            } else if kind == ObsKind::Ecog {
                if let Some(e) = ecog_value(rec.v) {
                    ecog_cands.push(Cand::new(rec, e, ReadFrom::Code));
                }
            } else if kind == ObsKind::Karnofsky {
                if let Some(k) = integer_value(rec.v) {
                    let mut c = Cand::new(rec, karnofsky_to_ecog(k), ReadFrom::Derived);
                    c.note = Some(format!("Karnofsky {k} converted"));
                    ecog_cands.push(c);
                }
            } else if kind == ObsKind::Bsa {
                if let Some((m2, _)) = rec.v.get("valueQuantity").and_then(quantity) {
                    bsa.push((rec.date, m2, rec.reference.clone()));
                }
            } else if kind == ObsKind::Smoking {
                let vc = Concept::of(value);
                match v.first(
                    &[
                        ("smoking-current", true),
                        ("smoking-former", false),
                        ("smoking-never", false),
                    ],
                    &vc,
                ) {
                    Some((b, rf)) => smoking_cands.push(Cand::new(rec, b, rf)),
                    None => smoking_unreadable = Some(rec.reference.clone()),
                }
            } else if kind == ObsKind::Pft {
                pft.push(rec);
            } else if kind == ObsKind::Symptom {
                let present = rec.v.get("valueBoolean").and_then(Value::as_bool) != Some(false);
                let mut c = value_concept(rec.v);
                c.add(rec.v.get("code").unwrap_or(&Value::Null));
                let body = Concept::of_all(rec.v.get("bodySite"));
                if present && let Some(s) = self.symptom_of(rec, &c, &body) {
                    symptom_list.push(s);
                }
            }
        }

        // ---- Histology, grade, age ------------------------------------------------
        let histology = match latest(histology_cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => self.not_recorded(CONDITION_OBS),
            Err(u) => Fact::Unknown(u),
        };
        let site_retroperitoneal = match &diagnosis {
            Some(d) => Fact::known(
                true,
                Provenance {
                    resources: vec![d.condition.clone()],
                    read_from: d.read_from,
                    date: d.date,
                    note: None,
                },
            ),
            None => Fact::Unknown(Unknown::NotApplicable),
        };
        let grade = match latest(grade_cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => match grade_unreadable {
                Some(r) => Fact::Unknown(Unknown::Unreadable(format!("{r} has no grade 1–3"))),
                None => self.not_recorded(OBSERVATION),
            },
            Err(u) => Fact::Unknown(u),
        };
        let age_years = self.age();

        // ---- Resections -------------------------------------------------------------
        let mut resection_recs: Vec<ResectionRec> = Vec::new();
        let mut undated_resections = Vec::new();
        let mut rt_recs: Vec<&Rec> = Vec::new();
        let mut biopsies: Vec<&Rec> = Vec::new();
        for rec in &self.procedures {
            let code = Concept::of(rec.v.get("code"));
            let completed = str_at(rec.v, "status") == Some("completed");
            if !completed {
                continue;
            }
            let biopsy = v.matches("biopsy-any", &code).is_some()
                || v.matches("biopsy-fna", &code).is_some()
                || v.by_code("biopsy-core", &code);
            if biopsy {
                biopsies.push(rec);
            } else if v.by_code("radiotherapy-procedure", &code)
                || v.by_text("radiotherapy-procedure", &code)
            {
                rt_recs.push(rec);
            } else if let Some(m) = v.matches("resection-procedure", &code) {
                let Some(date) = rec.date else {
                    undated_resections.push(rec.reference.clone());
                    continue;
                };
                let body = Concept::of_all(rec.v.get("bodySite"));
                let retroperitoneal = v.matches("site-retroperitoneum", &body).is_some()
                    || v.by_text("site-retroperitoneum", &code);
                let met_site = if v.by_code("site-lung", &body)
                    || v.matches("pulmonary-metastasectomy", &code).is_some()
                {
                    Some(MetastasisSite::Lung)
                } else if v.by_code("site-liver", &body) {
                    Some(MetastasisSite::Liver)
                } else {
                    None
                };
                let organs = array(rec.v, "bodySite")
                    .filter(|b| {
                        v.matches("site-retroperitoneum", &Concept::of(Some(b)))
                            .is_none()
                    })
                    .count() as u32;
                resection_recs.push(ResectionRec {
                    rec,
                    date,
                    reasons: references(rec.v, "reasonReference"),
                    retroperitoneal,
                    met_site,
                    organs,
                    read_from: super::fhir::read_from(m),
                    completeness: Fact::Unknown(Unknown::NotRecorded),
                    rupture: Fact::Unknown(Unknown::NotRecorded),
                });
            }
        }
        resection_recs.sort_by_key(|r| r.date);
        self.attach_completeness(&mut resection_recs, &residual_obs, &rupture_obs);

        // ---- Metastases referenced by resections, then recurrence episodes ------------
        let met_sources: BTreeSet<&str> = met_recs.iter().map(|m| m.source.as_str()).collect();
        let is_met_resection = |r: &ResectionRec| {
            r.reasons.iter().any(|x| met_sources.contains(x)) || r.met_site.is_some()
        };
        let mut episodes: Vec<RecurrenceEpisode> = recurrence_conds
            .iter()
            .filter_map(|rec| {
                Some(RecurrenceEpisode {
                    source: rec.reference.clone(),
                    detected: rec.date?,
                    active: true,
                    resected_by: None,
                    body_sites: body_site_keys(rec.v),
                    read_from: ReadFrom::Code,
                })
            })
            .collect();
        let undated_recurrences: Vec<String> = recurrence_conds
            .iter()
            .filter(|r| r.date.is_none())
            .map(|r| r.reference.clone())
            .collect();
        // (b): a local progression Observation opens an episode when it is the first after a
        // complete resection and no recurrence Condition covers that interval.
        let complete_local: Vec<NaiveDate> = resection_recs
            .iter()
            .filter(|r| !is_met_resection(r))
            .filter(|r| r.completeness.value().is_some_and(|c| c.is_complete()))
            .map(|r| r.date)
            .collect();
        let mut local_obs: Vec<&(&Rec, DiseaseStatus, Option<bool>)> = status_obs
            .iter()
            .filter(|(_, s, local)| *s == DiseaseStatus::Worsened && *local == Some(true))
            .collect();
        local_obs.sort_by_key(|(r, _, _)| r.date);
        let mut opened_after: BTreeSet<NaiveDate> = BTreeSet::new();
        for (rec, _, _) in local_obs {
            let Some(d) = rec.date else { continue };
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
                });
            }
        }
        episodes.sort_by_key(|e| e.detected);

        // ---- Resection targets -------------------------------------------------------
        let dx_ref = diagnosis.as_ref().map(|d| d.condition.as_str());
        let episode_sources: BTreeSet<String> = episodes.iter().map(|e| e.source.clone()).collect();
        let mut resections: Vec<Resection> = Vec::new();
        let mut last_local: Option<NaiveDate> = None;
        let mut primary_seen = false;
        for r in &resection_recs {
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
                    site: site.or(r.met_site),
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
            } else if let Some(site) = r.met_site {
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
                procedure: r.rec.reference.clone(),
                date: r.date,
                target,
                completeness: r.completeness.clone(),
                rupture_or_piecemeal: r.rupture.clone(),
                organs_resected: if r.organs > 0 {
                    derived(r.organs, vec![r.rec.reference.clone()], Some(r.date))
                } else {
                    Fact::Unknown(Unknown::NotRecorded)
                },
                read_from: r.read_from,
            });
        }

        // ---- Episode activity: resolved, or removed by a later complete resection --------
        let mut current_uncertain: Option<String> = None;
        let n_episodes = episodes.len();
        for (i, e) in episodes.iter_mut().enumerate() {
            let status_resolved = self
                .conditions
                .iter()
                .find(|c| c.reference == e.source)
                .is_some_and(|c| {
                    matches!(
                        first_code(c.v, "clinicalStatus"),
                        Some("resolved" | "remission" | "inactive")
                    )
                });
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
                            "completeness of {}, which resected the recurrence, is not recorded",
                            r.procedure
                        ));
                        true
                    }
                }
            } else if let Some(r) = untargeted {
                uncertain = Some(format!(
                    "{} after the recurrence does not say what it resected",
                    r.procedure
                ));
                true
            } else {
                true
            };
            if i + 1 == n_episodes {
                current_uncertain = uncertain;
            }
        }
        let current_recurrence = episodes.last().filter(|e| e.active).cloned();

        // ---- Metastases: activity and derived facts ---------------------------------
        let mut metastases: Vec<Metastasis> = Vec::new();
        let has_met_condition = met_recs.iter().any(|m| m.source.starts_with("Condition/"));
        for (rec, s, local) in &status_obs {
            if *s == DiseaseStatus::Worsened && *local == Some(false) && !has_met_condition {
                met_recs.push(MetRec {
                    source: rec.reference.clone(),
                    site: None,
                    detected: rec.date,
                    resolved: false,
                    intra_abdominal: false,
                    read_from: ReadFrom::Code,
                    sarcomatosis_morphology: false,
                });
            }
        }
        let met_active: Vec<bool> = met_recs
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
        for (m, active) in met_recs.iter().zip(&met_active) {
            metastases.push(Metastasis {
                source: m.source.clone(),
                site: m.site,
                detected: m.detected,
                active: *active,
                intra_abdominal: m.intra_abdominal,
                read_from: m.read_from,
            });
        }
        metastases.sort_by_key(|m| (m.detected.is_none(), m.detected));
        let active_mets: Vec<&Metastasis> = metastases.iter().filter(|m| m.active).collect();
        let active_refs: Vec<String> = active_mets.iter().map(|m| m.source.clone()).collect();

        // ---- Imaging ---------------------------------------------------------------
        let imaging = self.imaging_dates();
        let last_ct_chest = imaging.fact(
            &[ImagingKind::CtChest, ImagingKind::CtChestAbdomenPelvis],
            &self,
        );
        let last_ct_abdomen_pelvis = imaging.fact(
            &[
                ImagingKind::CtAbdomenPelvis,
                ImagingKind::CtChestAbdomenPelvis,
            ],
            &self,
        );
        let last_bone_or_pet = imaging.fact(&[ImagingKind::BoneScan, ImagingKind::FdgPet], &self);
        let last_imaging = imaging.fact(
            &[
                ImagingKind::CtChest,
                ImagingKind::CtAbdomenPelvis,
                ImagingKind::CtChestAbdomenPelvis,
                ImagingKind::BoneScan,
                ImagingKind::FdgPet,
            ],
            &self,
        );

        let met_set_aside = self.set_aside(CONDITION_OBS);
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
                .zip(&met_active)
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
        let metastatic_lesion_count = match latest(lesion_counts) {
            Ok(Some(c)) => c.into_fact(),
            Err(u) => Fact::Unknown(u),
            Ok(None) => match met_set_aside.clone() {
                Some(u) => Fact::Unknown(u),
                None if active_mets.is_empty() => absence(0),
                None => with_note(
                    derived(active_mets.len() as u32, active_refs.clone(), None),
                    Some("counted from the metastasis records".to_owned()),
                ),
            },
        };
        let low_volume = match metastatic_lesion_count.value() {
            Some(&n) => derived(
                n <= self.params.low_volume_max_lesions,
                metastatic_lesion_count
                    .provenance()
                    .map(|p| p.resources.clone())
                    .unwrap_or_default(),
                None,
            ),
            None => Fact::Unknown(Unknown::DependsOn(vec!["metastatic_lesion_count"])),
        };

        // ---- Primary resection, disease state --------------------------------------
        let primary = resections
            .iter()
            .rev()
            .find(|r| r.target == ResectionTarget::Primary)
            .cloned();
        let untargeted_after_dx: Vec<&Resection> = resections
            .iter()
            .filter(|r| r.target == ResectionTarget::Unknown)
            .filter(|r| {
                diagnosis
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
            None if !undated_resections.is_empty() => Fact::Unknown(Unknown::Unreadable(format!(
                "{} has no date",
                undated_resections[0]
            ))),
            None => self.none_recorded(None, PROCEDURE),
        };
        let metastasectomies: Vec<Resection> = resections
            .iter()
            .filter(|r| matches!(r.target, ResectionTarget::Metastasis { .. }))
            .cloned()
            .collect();

        let local_state: Result<Option<&RecurrenceEpisode>, Unknown> =
            if let Some(why) = &current_uncertain {
                Err(Unknown::Unreadable(why.clone()))
            } else if !undated_recurrences.is_empty() {
                Err(Unknown::Unreadable(format!(
                    "{} has no onset date",
                    undated_recurrences[0]
                )))
            } else {
                Ok(current_recurrence.as_ref())
            };
        let disease_state = if diagnosis.is_none() {
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
        let disease_state = match (&disease_state, &current_uncertain) {
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

        // Recurrence Conditions at different sites detected within 30 days of the previous
        // one, with no resection between, are one (multifocal) episode, not a new recurrence.
        let distinct_episodes: Vec<&RecurrenceEpisode> = {
            let mut out: Vec<&RecurrenceEpisode> = Vec::new();
            for e in &episodes {
                let same = out.last().is_some_and(|p| {
                    (e.detected - p.detected).num_days() <= MULTIFOCAL_WINDOW_DAYS
                        && p.body_sites != e.body_sites
                        && !resections
                            .iter()
                            .any(|r| r.date >= p.detected && r.date <= e.detected)
                });
                if !same {
                    out.push(e);
                }
            }
            out
        };
        let recurrence_number = match self.set_aside(CONDITION_OBS) {
            Some(u) => Fact::Unknown(u),
            None if episodes.is_empty() => absence(0),
            None => derived(
                distinct_episodes.len() as u32,
                episodes.iter().map(|e| e.source.clone()).collect(),
                episodes.last().map(|e| e.detected),
            ),
        };

        // ---- Focality --------------------------------------------------------------
        let focality = self.focality(&current_recurrence, &episodes, &focality_obs);

        // ---- Recurrence biopsied ----------------------------------------------------
        let recurrence_biopsied = match &current_recurrence {
            None => Fact::Unknown(Unknown::NotApplicable),
            Some(e) => {
                let by_procedure = biopsies.iter().find(|b| {
                    references(b.v, "reasonReference").contains(&e.source.as_str())
                        || b.date.is_some_and(|d| d >= e.detected)
                });
                let by_pathology = histology_obs_dates
                    .iter()
                    .find(|(d, _)| d.is_some_and(|d| d >= e.detected));
                match (by_procedure, by_pathology) {
                    (Some(b), _) => Fact::known(
                        true,
                        Provenance {
                            resources: vec![b.reference.clone()],
                            read_from: ReadFrom::Code,
                            date: b.date,
                            note: None,
                        },
                    ),
                    (None, Some((d, r))) => derived(true, vec![r.clone()], *d),
                    (None, None) => self.none_recorded(false, &["Procedure", "Observation"]),
                }
            }
        };

        // ---- DFI, timing, synchronous local + distant --------------------------------
        let dfi_months = self.dfi(&resections, &current_recurrence, &active_mets);
        let metastasis_timing = self.metastasis_timing(&metastases, &diagnosis, &primary_resection);
        let synchronous_local_distant = match (&current_recurrence, active_mets.is_empty()) {
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

        // ---- Critical structures, resectability --------------------------------------
        let critical_structures = if critical_seen.is_empty() {
            self.not_recorded(OBSERVATION)
        } else {
            let involved: Vec<CriticalStructure> = critical
                .iter()
                .filter(|(_, c)| c.value)
                .map(|(s, _)| *s)
                .collect();
            let resources = critical
                .values()
                .filter(|c| c.value)
                .map(|c| c.reference.clone())
                .collect::<Vec<_>>();
            let resources = if resources.is_empty() {
                critical_seen.clone()
            } else {
                resources
            };
            Fact::known(
                involved,
                Provenance {
                    resources,
                    read_from: ReadFrom::Code,
                    date: critical.values().filter_map(|c| c.date).max(),
                    note: None,
                },
            )
        };
        let resectability = match latest(resectability_cands) {
            Ok(Some(c)) => c.into_fact(),
            Err(u) => Fact::Unknown(u),
            Ok(None) => match critical_structures.value() {
                Some(list) if !list.is_empty() => with_note(
                    derived(
                        Resectability::Unresectable,
                        critical_structures
                            .provenance()
                            .map(|p| p.resources.clone())
                            .unwrap_or_default(),
                        None,
                    ),
                    Some("a critical structure is involved".to_owned()),
                ),
                _ => self.not_recorded(OBSERVATION),
            },
        };

        // ---- ECOG, symptoms, disease status ----------------------------------------------
        let ecog = match latest_prefer_first(ecog_cands) {
            Ok(Some(c)) => c.into_fact(),
            Ok(None) => self.not_recorded(OBSERVATION),
            Err(u) => Fact::Unknown(u),
        };
        let symptoms = self.current_symptoms(symptom_list);
        let latest_disease_status = {
            let cands: Vec<Cand<DiseaseStatus>> = status_obs
                .iter()
                .map(|(r, s, _)| Cand::new(r, *s, ReadFrom::Code))
                .collect();
            match latest(cands) {
                Ok(Some(c)) => c.into_fact(),
                Ok(None) => self.not_recorded(OBSERVATION),
                Err(u) => Fact::Unknown(u),
            }
        };

        // ---- Systemic therapy ------------------------------------------------------
        let statuses: Vec<(NaiveDate, DiseaseStatus)> = status_obs
            .iter()
            .filter_map(|(r, s, _)| Some((r.date?, *s)))
            .collect();
        let (systemic_history, favorable_systemic_response, progression_on_systemic) =
            self.systemic(&statuses, &bsa);
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

        // ---- History, smoking, PFT -----------------------------------------------------
        let li_fraumeni = match latest(li_fraumeni) {
            Ok(Some(c)) => c.into_fact(),
            _ => self.none_recorded(false, CONDITION),
        };
        let second_malignancy = if other_cancers.is_empty() {
            self.none_recorded(false, CONDITION)
        } else {
            derived(true, other_cancers, None)
        };
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
        let last_pft_rec = pft
            .iter()
            .filter(|r| r.date.is_some())
            .max_by_key(|r| r.date);
        let last_pft = match last_pft_rec {
            Some(r) => Fact::known(
                r.date,
                Provenance {
                    resources: vec![r.reference.clone()],
                    read_from: ReadFrom::Code,
                    date: r.date,
                    note: None,
                },
            ),
            None => self.none_recorded(None, OBSERVATION),
        };
        let pft_days = i64::from(self.params.pft_validity_days);
        let pulmonary_function_tested = match last_pft_rec.and_then(|r| r.date.map(|d| (r, d))) {
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

        let radiotherapy = self.radiotherapy(&rt_recs, &resections);

        Picture {
            as_of: self.input.as_of,
            patient: self.input.patient.map(super::fhir::reference_of),
            diagnosis,
            histology,
            site_retroperitoneal,
            grade,
            age_years,
            resections,
            primary_resection,
            metastasectomies,
            radiotherapy,
            disease_state,
            recurrence_episodes: episodes,
            recurrence_number,
            current_recurrence,
            focality,
            recurrence_biopsied,
            metastases,
            distant_disease,
            metastasis_sites,
            metastasis_timing,
            synchronous_local_distant,
            sarcomatosis,
            metastatic_lesion_count,
            low_volume,
            dfi_months,
            recurrent_metastases_after_metastasectomy,
            critical_structures,
            resectability,
            ecog,
            symptoms,
            latest_disease_status,
            systemic_history,
            favorable_systemic_response,
            progression_on_systemic,
            body_surface_area_m2,
            li_fraumeni,
            second_malignancy,
            current_smoker,
            last_pft,
            pulmonary_function_tested,
            last_ct_chest,
            last_ct_abdomen_pelvis,
            last_bone_or_pet,
            last_imaging,
            undiagnosed_retroperitoneal_masses: retro_masses,
            set_aside: self
                .set_aside_types
                .iter()
                .map(|(t, n)| SetAsideCount {
                    resource_type: (*t).to_owned(),
                    count: *n,
                })
                .collect(),
        }
    }
}

/// What an Observation records, from its code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObsKind {
    Histology,
    Grade,
    Residual,
    Rupture,
    DiseaseStatus,
    Focality,
    LesionCount,
    Critical,
    Resectability,
    Ecog,
    Karnofsky,
    Bsa,
    Smoking,
    Pft,
    Symptom,
    Other,
}

/// Dates of the imaging studies found, per kind.
struct ImagingDates {
    /// (kind, date, reference, read_from)
    studies: Vec<(ImagingKind, NaiveDate, String, ReadFrom)>,
}

impl ImagingDates {
    /// The latest study of any of `kinds` (closed world).
    fn fact(&self, kinds: &[ImagingKind], x: &Extractor) -> Fact<Option<NaiveDate>> {
        let best = self
            .studies
            .iter()
            .filter(|(k, ..)| kinds.contains(k))
            .max_by_key(|(_, d, ..)| *d);
        match best {
            Some((_, d, r, rf)) => with_note(
                Fact::known(
                    Some(*d),
                    Provenance {
                        resources: vec![r.clone()],
                        read_from: *rf,
                        date: Some(*d),
                        note: None,
                    },
                ),
                x.incomplete_note(IMAGING),
            ),
            None => x.none_recorded(None, IMAGING),
        }
    }
}

impl<'a> Extractor<'a, '_> {
    fn obs_kind(&self, code: &Concept) -> ObsKind {
        let v = &self.vocab;
        let rps = |c: &str| code.has_code(OBSERVATION_SYSTEM, c);
        if rps("rupture-or-piecemeal") {
            ObsKind::Rupture
        } else if rps("focality") {
            ObsKind::Focality
        } else if rps("metastatic-lesion-count") {
            ObsKind::LesionCount
        } else if rps("resectability") {
            ObsKind::Resectability
        } else if v.by_code("ecog-observation", code) {
            ObsKind::Ecog
        } else if v.by_code("disease-status-observation", code) {
            ObsKind::DiseaseStatus
        } else if v.by_code("histology-observation", code) {
            ObsKind::Histology
        } else if v.by_code("grade-observation", code) {
            ObsKind::Grade
        } else if v.by_code("residual-tumour-observation", code) {
            ObsKind::Residual
        } else if v.by_code("critical-structure-observation", code) {
            ObsKind::Critical
        } else if v.by_code("karnofsky-observation", code) {
            ObsKind::Karnofsky
        } else if v.by_code("bsa-observation", code) {
            ObsKind::Bsa
        } else if v.by_code("smoking-observation", code) {
            ObsKind::Smoking
        } else if v.by_code("pft-observation", code) {
            ObsKind::Pft
        } else if v.by_code("symptom-observation", code) || self.is_symptom_concept(code) {
            ObsKind::Symptom
        } else {
            ObsKind::Other
        }
    }

    /// Histology of a concept: codes of all sets first, then texts with the more specific
    /// (and out-of-scope look-alike) sets before the generic ones.
    fn histology_of(&self, c: &Concept) -> Option<(Histology, ReadFrom)> {
        use Histology as H;
        // `None` marks "liposarcoma, subtype unspecified".
        const ORDER: &[(&str, Option<Histology>)] = &[
            (
                "histology-visceral-or-gynecologic",
                Some(H::VisceralOrGynecologic),
            ),
            (
                "histology-sarcomatoid-carcinoma",
                Some(H::SarcomatoidCarcinoma),
            ),
            ("histology-carcinosarcoma", Some(H::Carcinosarcoma)),
            ("histology-teratoma-derived", Some(H::TeratomaDerived)),
            ("histology-dsrct", Some(H::Dsrct)),
            ("histology-clear-cell-sarcoma", Some(H::ClearCellSarcoma)),
            ("histology-gist", Some(H::Gist)),
            ("histology-desmoid", Some(H::Desmoid)),
            ("histology-ewing", Some(H::Ewing)),
            ("histology-rhabdomyosarcoma", Some(H::Rhabdomyosarcoma)),
            ("histology-pecoma", Some(H::Pecoma)),
            ("histology-imt", Some(H::Imt)),
            ("histology-wd-liposarcoma", Some(H::WdLiposarcoma)),
            ("histology-dd-liposarcoma", Some(H::DdLiposarcoma)),
            ("histology-liposarcoma-other", Some(H::LiposarcomaOther)),
            ("histology-leiomyosarcoma", Some(H::Leiomyosarcoma)),
            (
                "histology-solitary-fibrous-tumor",
                Some(H::SolitaryFibrousTumor),
            ),
            ("histology-mpnst", Some(H::Mpnst)),
            ("histology-synovial-sarcoma", Some(H::SynovialSarcoma)),
            ("histology-ups", Some(H::Ups)),
            ("histology-sarcoma-nos", Some(H::SarcomaNos)),
            ("histology-liposarcoma-unspecified", None),
            ("histology-benign", Some(H::Benign)),
        ];
        let (h, rf) = self.vocab.first(ORDER, c)?;
        match h {
            Some(h) => Some((h, rf)),
            None => {
                // Liposarcoma without subtype code: the subtype from text, else "other".
                let subtype = [
                    ("histology-wd-liposarcoma", H::WdLiposarcoma),
                    ("histology-dd-liposarcoma", H::DdLiposarcoma),
                    ("histology-liposarcoma-other", H::LiposarcomaOther),
                ]
                .into_iter()
                .find(|(id, _)| self.vocab.by_text(id, c));
                match subtype {
                    Some((_, h)) => Some((h, ReadFrom::Text)),
                    None => Some((H::LiposarcomaOther, rf)),
                }
            }
        }
    }

    /// A metastasis Condition: (site, how read, sarcomatosis morphology).
    fn metastasis_of(
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
            || any == Some(crate::knowledge::MatchedBy::Code)
            || sarcomatosis == Some(crate::knowledge::MatchedBy::Code)
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

    fn met_rec(
        &self,
        rec: &Rec,
        body: &Concept,
        site: Option<MetastasisSite>,
        read_from: ReadFrom,
        sarcomatosis_morphology: bool,
        status: Option<&str>,
    ) -> MetRec {
        let intra_abdominal = site == Some(MetastasisSite::Peritoneum)
            || ["abdom", "mesenter", "oment", "peritone"]
                .iter()
                .any(|w| body.text_contains(w));
        MetRec {
            source: rec.reference.clone(),
            site,
            detected: rec.date,
            resolved: matches!(status, Some("resolved" | "remission" | "inactive")),
            intra_abdominal,
            read_from,
            sarcomatosis_morphology,
        }
    }

    fn is_symptom_concept(&self, c: &Concept) -> bool {
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

    fn symptom_of(&self, rec: &Rec, c: &Concept, body: &Concept) -> Option<Symptom> {
        let (kind, read_from) = self.vocab.first(
            &[
                ("symptom-cord-compression", SymptomKind::CordCompression),
                ("symptom-obstruction", SymptomKind::Obstruction),
                ("symptom-dyspnoea", SymptomKind::Dyspnoea),
                ("bone-symptom", SymptomKind::Pain),
                ("symptom-pain", SymptomKind::Pain),
            ],
            c,
        )?;
        let bone = self.vocab.matches("bone-symptom", c).is_some()
            || (kind == SymptomKind::Pain && self.vocab.by_code("site-bone", body));
        Some(Symptom {
            kind,
            bone,
            source: rec.reference.clone(),
            date: rec.date,
            read_from,
        })
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

    fn grade_of(&self, obs: &Value) -> Option<(u8, ReadFrom)> {
        if let Some(i) = obs.get("valueInteger").and_then(Value::as_u64) {
            return (1..=3).contains(&i).then_some((i as u8, ReadFrom::Code));
        }
        let c = value_concept(obs);
        self.vocab.first(
            &[
                ("grade-low", 1u8),
                ("grade-intermediate", 2),
                ("grade-high", 3),
            ],
            &c,
        )
    }

    /// Disease status value, and whether the progression qualifier says local (`Some(true)`)
    /// or distant (`Some(false)`).
    fn disease_status_of(&self, obs: &Value) -> Option<(DiseaseStatus, Option<bool>)> {
        let c = Concept::of(obs.get("valueCodeableConcept"));
        let (s, _) = self.vocab.first(
            &[
                ("status-worsened", DiseaseStatus::Worsened),
                ("status-improved", DiseaseStatus::Improved),
                ("status-stable", DiseaseStatus::Stable),
            ],
            &c,
        )?;
        let qualifier = array(obs, "extension")
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

    fn critical_structures_of(&self, body: &Concept) -> Vec<CriticalStructure> {
        use CriticalStructure as C;
        let mut out = Vec::new();
        for (system, code) in body.codings() {
            if system != SCT {
                continue;
            }
            let s = match code {
                "15825003" => C::Aorta,
                "42258001" => C::SuperiorMesentericVessels,
                "32764006" | "245288002" => C::PortaHepatisOrPortalVein,
                "40958000" | "62397004" => C::NerveRootOrPlexus,
                _ => continue,
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if out.is_empty() && self.vocab.by_text("critical-structure-site", body) {
            for (word, s) in [
                ("aort", C::Aorta),
                ("mesenteric", C::SuperiorMesentericVessels),
                ("portal", C::PortaHepatisOrPortalVein),
                ("porta hepatis", C::PortaHepatisOrPortalVein),
                ("nerve", C::NerveRootOrPlexus),
                ("plexus", C::NerveRootOrPlexus),
            ] {
                if body.text_contains(word) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    fn age(&self) -> Fact<u32> {
        let Some(p) = self.input.patient else {
            return self.not_recorded(&["Patient"]);
        };
        let Some(birth) = str_at(p, "birthDate").and_then(super::fhir::parse_date) else {
            return Fact::Unknown(Unknown::NotRecorded);
        };
        let t = self.today;
        let mut years = t.year() - birth.year();
        if (t.month(), t.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        if years < 0 {
            return Fact::Unknown(Unknown::Unreadable(
                "birth date after the evaluation time".into(),
            ));
        }
        Fact::known(
            years as u32,
            Provenance {
                resources: vec![super::fhir::reference_of(p)],
                read_from: ReadFrom::Derived,
                date: Some(birth),
                note: None,
            },
        )
    }

    fn imaging_kind(&self, c: &Concept) -> Option<(ImagingKind, ReadFrom)> {
        self.vocab.first(
            &[
                (
                    "imaging-ct-chest-abdomen-pelvis",
                    ImagingKind::CtChestAbdomenPelvis,
                ),
                ("imaging-ct-chest", ImagingKind::CtChest),
                ("imaging-ct-abdomen-pelvis", ImagingKind::CtAbdomenPelvis),
                ("imaging-bone-scan", ImagingKind::BoneScan),
                ("imaging-fdg-pet", ImagingKind::FdgPet),
            ],
            c,
        )
    }

    fn imaging_dates(&self) -> ImagingDates {
        let mut studies = Vec::new();
        let mut memo: HashMap<String, Option<(ImagingKind, ReadFrom)>> = HashMap::new();
        let procedures = self
            .procedures
            .iter()
            .filter(|p| str_at(p.v, "status") == Some("completed"));
        for rec in self.imaging.iter().chain(procedures) {
            let Some(date) = rec.date else { continue };
            let mut c = Concept::default();
            match resource_type(rec.v) {
                "ImagingStudy" => {
                    for pc in array(rec.v, "procedureCode") {
                        c.add(pc);
                    }
                    if let Some(d) = str_at(rec.v, "description") {
                        c.add_text(d);
                    }
                }
                _ => c.add(rec.v.get("code").unwrap_or(&Value::Null)),
            }
            let kind = *memo
                .entry(c.signature())
                .or_insert_with(|| self.imaging_kind(&c));
            if let Some((k, rf)) = kind {
                studies.push((k, date, rec.reference.clone(), rf));
            }
        }
        ImagingDates { studies }
    }

    /// Completeness and rupture Observations: `partOf`/`focus` → the Procedure, else the
    /// nearest resection on or before the Observation's date. Latest wins per resection.
    fn attach_completeness(
        &self,
        resections: &mut [ResectionRec],
        residual: &[(&Rec, Result<Completeness, ()>, ReadFrom)],
        rupture: &[(&Rec, bool)],
    ) {
        let target = |rec: &Rec| -> Option<usize> {
            let mut refs = references(rec.v, "partOf");
            refs.extend(references(rec.v, "focus"));
            if let Some(i) = resections
                .iter()
                .position(|r| refs.contains(&r.rec.reference.as_str()))
            {
                return Some(i);
            }
            let d = rec.date?;
            resections.iter().rposition(|r| r.date <= d)
        };
        let residual_targets: Vec<Option<usize>> =
            residual.iter().map(|(r, ..)| target(r)).collect();
        let rupture_targets: Vec<Option<usize>> = rupture.iter().map(|(r, _)| target(r)).collect();
        let mut per: BTreeMap<usize, Vec<Cand<Completeness>>> = BTreeMap::new();
        let mut unreadable: BTreeMap<usize, String> = BTreeMap::new();
        for ((rec, value, rf), t) in residual.iter().zip(residual_targets) {
            let Some(i) = t else { continue };
            match value {
                Ok(c) => per.entry(i).or_default().push(Cand::new(rec, *c, *rf)),
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
        let mut per: BTreeMap<usize, Vec<Cand<bool>>> = BTreeMap::new();
        for ((rec, b), t) in rupture.iter().zip(rupture_targets) {
            if let Some(i) = t {
                per.entry(i)
                    .or_default()
                    .push(Cand::new(rec, *b, ReadFrom::Code));
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

    fn focality(
        &self,
        current: &Option<RecurrenceEpisode>,
        episodes: &[RecurrenceEpisode],
        observations: &[(&Rec, Focality)],
    ) -> Fact<Focality> {
        let Some(cur) = current else {
            return Fact::Unknown(Unknown::NotApplicable);
        };
        // An RPS focality Observation about this recurrence (focus), or dated since it.
        let cands: Vec<Cand<Focality>> = observations
            .iter()
            .filter(|(r, _)| {
                let focus = references(r.v, "focus");
                if focus.is_empty() {
                    r.date.is_some_and(|d| d >= cur.detected)
                } else {
                    focus.contains(&cur.source.as_str())
                }
            })
            .map(|(r, f)| Cand::new(r, *f, ReadFrom::Code))
            .collect();
        match latest(cands) {
            Ok(Some(c)) => return c.into_fact(),
            Err(u) => return Fact::Unknown(u),
            Ok(None) => {}
        }
        // SCT multifocal tumour in the recurrence Condition's code, evidence or stage.
        if let Some(cond) = self.conditions.iter().find(|c| c.reference == cur.source) {
            let mut c = Concept::of(cond.v.get("code"));
            for e in array(cond.v, "evidence") {
                c.add(e.get("code").unwrap_or(&Value::Null));
            }
            for s in array(cond.v, "stage") {
                c.add(s.get("summary").unwrap_or(&Value::Null));
            }
            if let Some(m) = self.vocab.matches("multifocal-tumour", &c) {
                return Fact::known(
                    Focality::Multifocal,
                    Provenance {
                        resources: vec![cur.source.clone()],
                        read_from: super::fhir::read_from(m),
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

    /// Months from the last complete (R0/R1) resection to the first active recurrence or
    /// metastasis detected after it.
    fn dfi(
        &self,
        resections: &[Resection],
        current: &Option<RecurrenceEpisode>,
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
            return Fact::Unknown(Unknown::Unreadable(format!(
                "{} has no detection date",
                first.source
            )));
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

    /// The agents of a medication resource (code, contained or referenced Medication);
    /// administrations repeat the same product, so each concept is matched once.
    fn agents_of(
        &self,
        v: &'a Value,
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
        bsa: &[(Option<NaiveDate>, f64, String)],
    ) -> (Fact<SystemicHistory>, Fact<bool>, Fact<bool>) {
        struct Event<'r> {
            rec: &'r Rec<'r>,
            agents: Vec<Agent>,
        }
        let mut events: Vec<Event> = Vec::new();
        let mut memo = HashMap::new();
        for rec in &self.medication_uses {
            let status_ok = matches!(
                str_at(rec.v, "status"),
                Some("completed" | "active" | "stopped" | "in-progress")
            );
            if !status_ok {
                continue;
            }
            let agents: Vec<Agent> = self
                .agents_of(rec.v, &mut memo)
                .into_iter()
                .map(|(a, _)| a)
                .collect();
            if !agents.is_empty() {
                events.push(Event { rec, agents });
            }
        }
        if events.is_empty() {
            return (
                self.none_recorded(
                    SystemicHistory {
                        lines: Vec::new(),
                        agents: BTreeSet::new(),
                        anthracycline_mg_m2: absence(0.0),
                    },
                    MEDICATION,
                ),
                self.none_recorded(false, MEDICATION),
                self.none_recorded(false, MEDICATION),
            );
        }
        // Lines: agents started within LINE_WINDOW_DAYS of the line's start, or agents
        // already in it, continue a line; a new agent later opens the next.
        let mut dated: Vec<&Event> = events.iter().filter(|e| e.rec.date.is_some()).collect();
        dated.sort_by_key(|e| e.rec.date);
        let mut lines: Vec<SystemicLine> = Vec::new();
        for e in dated {
            let d = e.rec.date.expect("filtered");
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
                });
            }
            let l = lines.last_mut().expect("pushed");
            l.end = l.end.max(d);
            l.agents.extend(e.agents.iter().copied());
            l.resources.push(e.rec.reference.clone());
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
        let anthracycline_mg_m2 = self.anthracycline_dose(
            &events
                .iter()
                .map(|e| (e.rec, e.agents.as_slice()))
                .collect::<Vec<_>>(),
            bsa,
        );
        let resources: Vec<String> = events.iter().map(|e| e.rec.reference.clone()).collect();
        let last_date = lines.last().map(|l| l.end);
        let favorable = {
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
        let history = SystemicHistory {
            lines,
            agents,
            anthracycline_mg_m2,
        };
        (
            with_note(
                derived(history, resources, last_date),
                self.incomplete_note(MEDICATION),
            ),
            favorable,
            progression,
        )
    }

    /// Cumulative anthracycline dose (doxorubicin-equivalent mg/m²) from
    /// MedicationAdministrations; unknown when any anthracycline record lacks a usable dose.
    fn anthracycline_dose(
        &self,
        events: &[(&Rec, &[Agent])],
        bsa: &[(Option<NaiveDate>, f64, String)],
    ) -> Fact<f64> {
        let anthracyclines: Vec<&(&Rec, &[Agent])> = events
            .iter()
            .filter(|(_, a)| a.iter().any(|a| a.is_anthracycline()))
            .collect();
        if anthracyclines.is_empty() {
            return self.none_recorded(0.0, MEDICATION);
        }
        if let Some(u) = self.set_aside(&["MedicationAdministration"]) {
            return Fact::Unknown(u);
        }
        let mut total = 0.0;
        let mut resources = Vec::new();
        let mut administrations = 0;
        for (rec, agents) in &anthracyclines {
            if resource_type(rec.v) != "MedicationAdministration" {
                continue;
            }
            administrations += 1;
            let anth: Vec<&Agent> = agents.iter().filter(|a| a.is_anthracycline()).collect();
            if anth.len() != 1 {
                return Fact::Unknown(Unknown::Unreadable(format!(
                    "{} names more than one anthracycline",
                    rec.reference
                )));
            }
            let factor = if *anth[0] == Agent::Epirubicin {
                self.params.epirubicin_to_doxorubicin_factor
            } else {
                1.0
            };
            let dose = rec
                .v
                .get("dosage")
                .and_then(|d| d.get("dose"))
                .and_then(quantity);
            let mg_m2 = match dose {
                Some((x, Some(u))) if is_mg_per_m2(u) => Some(x),
                Some((x, Some("mg"))) => {
                    let b = bsa
                        .iter()
                        .filter(|(d, _, _)| d.is_some() && *d <= rec.date)
                        .max_by_key(|(d, _, _)| *d);
                    match b {
                        Some((_, m2, r)) if *m2 > 0.0 => {
                            resources.push(r.clone());
                            Some(x / m2)
                        }
                        _ => {
                            return Fact::Unknown(Unknown::Unreadable(format!(
                                "{} is dosed in mg with no body surface area recorded before it",
                                rec.reference
                            )));
                        }
                    }
                }
                _ => None,
            };
            let Some(mg_m2) = mg_m2 else {
                return Fact::Unknown(Unknown::Unreadable(format!(
                    "{} has no dose in mg/m2 or mg",
                    rec.reference
                )));
            };
            total += mg_m2 * factor;
            resources.push(rec.reference.clone());
        }
        // Anthracycline recorded only as a statement well before the first recorded
        // administration (e.g. given elsewhere): those doses are missing from the sum.
        let first_admin = anthracyclines
            .iter()
            .filter(|(r, _)| resource_type(r.v) == "MedicationAdministration")
            .filter_map(|(r, _)| r.date)
            .min();
        let earlier = anthracyclines.iter().find(|(r, _)| {
            resource_type(r.v) != "MedicationAdministration"
                && match (r.date, first_admin) {
                    (Some(d), Some(f)) => (f - d).num_days() > LINE_WINDOW_DAYS,
                    _ => false,
                }
        });
        if let Some((r, _)) = earlier {
            return Fact::Unknown(Unknown::Unreadable(format!(
                "{} records anthracycline before the recorded administrations, without doses",
                r.reference
            )));
        }
        if administrations == 0 {
            return Fact::Unknown(Unknown::Unreadable(
                "anthracycline recorded without administrations, so no doses".to_owned(),
            ));
        }
        let date = anthracyclines.iter().filter_map(|(r, _)| r.date).max();
        let mut f = derived(total, resources, date);
        if anthracyclines
            .iter()
            .any(|(_, a)| a.contains(&Agent::Epirubicin))
        {
            f = with_note(
                f,
                Some(format!(
                    "epirubicin × {} as doxorubicin-equivalent",
                    self.params.epirubicin_to_doxorubicin_factor
                )),
            );
        }
        f
    }

    fn radiotherapy(
        &self,
        recs: &[&Rec],
        resections: &[Resection],
    ) -> Fact<Vec<RadiotherapyCourse>> {
        let mut courses = Vec::new();
        let mut undated = None;
        for rec in recs {
            let Some(date) = rec.date else {
                undated = Some(rec.reference.clone());
                continue;
            };
            let code = Concept::of(rec.v.get("code"));
            let read_from = if self.vocab.by_code("radiotherapy-procedure", &code) {
                ReadFrom::Code
            } else {
                ReadFrom::Text
            };
            let mut ext = Concept::default();
            collect_extension_concepts(rec.v, &mut ext);
            let iort =
                self.vocab.matches("iort", &ext).is_some() || self.vocab.by_text("iort", &code);
            let local: Vec<&Resection> = resections
                .iter()
                .filter(|r| !matches!(r.target, ResectionTarget::Metastasis { .. }))
                .collect();
            let nearest = local
                .iter()
                .min_by_key(|r| (r.date - date).num_days().abs())
                .filter(|r| (r.date - date).num_days().abs() <= RT_RESECTION_WINDOW_DAYS);
            let (timing, relative_to) = if iort {
                (
                    RtTiming::IntraOperative,
                    local
                        .iter()
                        .find(|r| r.date == date)
                        .map(|r| r.procedure.clone()),
                )
            } else {
                match nearest {
                    Some(r) if r.date > date => (RtTiming::PreOperative, Some(r.procedure.clone())),
                    Some(r) => (RtTiming::PostOperative, Some(r.procedure.clone())),
                    None => (RtTiming::WithoutResection, None),
                }
            };
            let total_dose_gy = match total_dose_gy(rec.v) {
                Some(gy) => Fact::known(
                    gy,
                    Provenance {
                        resources: vec![rec.reference.clone()],
                        read_from: ReadFrom::Code,
                        date: Some(date),
                        note: None,
                    },
                ),
                None => Fact::Unknown(Unknown::NotRecorded),
            };
            courses.push(RadiotherapyCourse {
                procedure: rec.reference.clone(),
                date,
                timing,
                relative_to,
                total_dose_gy,
                read_from,
            });
        }
        courses.sort_by_key(|c| c.date);
        if courses.is_empty() {
            return match undated {
                Some(r) => Fact::Unknown(Unknown::Unreadable(format!("{r} has no date"))),
                None => self.none_recorded(Vec::new(), PROCEDURE),
            };
        }
        let resources = courses.iter().map(|c| c.procedure.clone()).collect();
        let date = courses.last().map(|c| c.date);
        with_note(
            Fact::known(
                courses,
                Provenance {
                    resources,
                    read_from: ReadFrom::Code,
                    date,
                    note: None,
                },
            ),
            self.incomplete_note(PROCEDURE),
        )
    }
}

fn is_recurrence_status(s: Option<&str>) -> bool {
    matches!(s, Some("recurrence" | "relapse"))
}

/// `valueCodeableConcept`, else `valueString` as text.
fn value_concept(obs: &Value) -> Concept<'_> {
    let mut c = Concept::of(obs.get("valueCodeableConcept"));
    if let Some(s) = str_at(obs, "valueString") {
        c.add_text(s);
    }
    c
}

/// "system|code" (or lower-case text) of each bodySite, for comparing sites.
fn body_site_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = array(v, "bodySite")
        .flat_map(|b| {
            let codes: Vec<String> = array(b, "coding")
                .filter_map(|c| Some(format!("{}|{}", str_at(c, "system")?, str_at(c, "code")?)))
                .collect();
            if codes.is_empty() {
                str_at(b, "text")
                    .map(str::to_lowercase)
                    .into_iter()
                    .collect()
            } else {
                codes
            }
        })
        .collect();
    keys.sort();
    keys
}

fn integer_value(obs: &Value) -> Option<i64> {
    obs.get("valueInteger").and_then(Value::as_i64).or_else(|| {
        obs.get("valueQuantity")
            .and_then(|q| q.get("value"))
            .and_then(Value::as_f64)
            .map(|f| f.round() as i64)
    })
}

/// ECOG from `valueInteger` 0–5 or LOINC answers LA9622-7 … LA9627-6.
fn ecog_value(obs: &Value) -> Option<u8> {
    if let Some(i) = integer_value(obs) {
        return (0..=5).contains(&i).then_some(i as u8);
    }
    let c = Concept::of(obs.get("valueCodeableConcept"));
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
fn latest_prefer_first(cands: Vec<Cand<u8>>) -> Result<Option<Cand<u8>>, Unknown> {
    let Some(max) = cands.iter().map(|c| c.date).max() else {
        return Ok(None);
    };
    let at_max: Vec<Cand<u8>> = cands.into_iter().filter(|c| c.date == max).collect();
    let coded: Vec<Cand<u8>> = at_max
        .iter()
        .filter(|c| c.read_from == ReadFrom::Code)
        .cloned()
        .collect();
    latest(if coded.is_empty() { at_max } else { coded })
}

pub(crate) fn is_mg_per_m2(unit: &str) -> bool {
    matches!(unit, "mg/m2" | "mg/m^2" | "mg/m²" | "mg/(m2)")
}

/// The concept naming a medication: `medicationCodeableConcept`, or the contained /
/// referenced Medication's code and ingredients.
pub(crate) fn medication_concept<'v>(
    v: &'v Value,
    medications: &BTreeMap<String, &'v Value>,
) -> Concept<'v> {
    let mut c = Concept::of(v.get("medicationCodeableConcept"));
    if let Some(r) = v
        .get("medicationReference")
        .and_then(|r| str_at(r, "reference"))
    {
        let med = if let Some(local) = r.strip_prefix('#') {
            array(v, "contained").find(|m| str_at(m, "id") == Some(local))
        } else {
            medications
                .get(super::fhir::normalise_reference(r))
                .copied()
        };
        if let Some(m) = med {
            c.add(m.get("code").unwrap_or(&Value::Null));
            for ing in array(m, "ingredient") {
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

/// Every CodeableConcept inside the resource's extensions (nested), for IORT.
fn collect_extension_concepts<'v>(v: &'v Value, out: &mut Concept<'v>) {
    for e in array(v, "extension") {
        if let Some(c) = e.get("valueCodeableConcept") {
            out.add(c);
        }
        collect_extension_concepts(e, out);
    }
}

/// Total dose delivered (Gy) from mCODE dose-delivered-to-volume (cGy unless Gy stated);
/// the largest over volumes.
fn total_dose_gy(v: &Value) -> Option<f64> {
    array(v, "extension")
        .filter(|e| {
            str_at(e, "url").is_some_and(|u| {
                u.ends_with(DOSE_EXTENSION) || u == format!("{MCODE}{DOSE_EXTENSION}")
            })
        })
        .flat_map(|e| array(e, "extension"))
        .filter(|e| str_at(e, "url") == Some("totalDoseDelivered"))
        .filter_map(|e| e.get("valueQuantity").and_then(quantity))
        .map(|(x, unit)| match unit {
            Some("Gy") => x,
            _ => x / 100.0,
        })
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinical::ClinicalInput;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    /// The reviewed value sets shipped in `knowledge/valuesets/`.
    mod vs {
        use crate::knowledge::{Knowledge, Terminology};

        pub(super) fn terminology() -> Terminology {
            Knowledge::embedded()
                .expect("embedded knowledge")
                .terminology
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn cand<T>(date: Option<&str>, value: T, id: &str) -> Cand<T> {
        Cand {
            date: date.map(d),
            value,
            reference: id.to_owned(),
            read_from: ReadFrom::Code,
            note: None,
        }
    }

    fn build(resources: &[serde_json::Value], set_aside: &[&str]) -> Picture {
        let refs: Vec<&Value> = resources.iter().collect();
        let set_aside: Vec<SetAsideResource> = set_aside
            .iter()
            .map(|t| SetAsideResource {
                resource_type: (*t).to_owned(),
                id: None,
            })
            .collect();
        let input = ClinicalInput {
            as_of: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(),
            patient: None,
            resources: &refs,
            set_aside: &set_aside,
            withheld: &[],
        };
        build_picture(&input, &vs::terminology(), &Parameters::default())
    }

    fn dx() -> Value {
        json!({"resourceType": "Condition", "id": "dx", "onsetDateTime": "2024-01-01",
               "code": {"coding": [{"system": ICD10CM, "code": "C48.0"}]}})
    }

    #[test]
    fn karnofsky_bands() {
        let cases = [
            (100, 0),
            (95, 0),
            (90, 0),
            (85, 1),
            (70, 1),
            (65, 2),
            (50, 2),
            (45, 3),
            (30, 3),
            (25, 4),
            (10, 4),
            (0, 5),
        ];
        for (k, e) in cases {
            assert_eq!(karnofsky_to_ecog(k), e, "KPS {k}");
        }
    }

    #[test]
    fn latest_wins_undated_ranks_oldest_and_same_date_conflicts() {
        let picked = latest(vec![
            cand(None, 9, "Observation/undated"),
            cand(Some("2026-01-01"), 1, "Observation/a"),
            cand(Some("2025-01-01"), 2, "Observation/b"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(picked.value, 1);
        let same_value = latest(vec![
            cand(Some("2026-01-01"), 1, "Observation/a"),
            cand(Some("2026-01-01"), 1, "Observation/b"),
        ]);
        assert_eq!(same_value.unwrap().unwrap().value, 1);
        let conflict = latest(vec![
            cand(Some("2026-01-01"), 1, "Observation/a"),
            cand(Some("2026-01-01"), 2, "Observation/b"),
        ]);
        assert!(matches!(conflict, Err(Unknown::Conflicting(_))));
        assert!(latest::<u8>(Vec::new()).unwrap().is_none());
    }

    #[test]
    fn coded_ecog_outranks_converted_karnofsky_on_the_same_day() {
        let mut k = cand(Some("2026-01-01"), 3u8, "Observation/kps");
        k.read_from = ReadFrom::Derived;
        let e = cand(Some("2026-01-01"), 1u8, "Observation/ecog");
        let picked = latest_prefer_first(vec![k, e]).unwrap().unwrap();
        assert_eq!(picked.reference, "Observation/ecog");
    }

    #[test]
    fn short_text_fallbacks_match_whole_words_only() {
        let t = vs::terminology();
        let v = Vocab::new(&t);
        let r1 = json!({"text": "Margins R1 (microscopic)"});
        assert!(v.by_text("residual-r1", &Concept::of(Some(&r1))));
        let r10 = json!({"text": "R10 lymph node"});
        assert!(!v.by_text("residual-r1", &Concept::of(Some(&r10))));
        let score = json!({"text": "Risk score biopsy"});
        assert!(!v.by_text("biopsy-core", &Concept::of(Some(&score))));
        let core = json!({"text": "US-guided core biopsy"});
        assert!(v.by_text("biopsy-core", &Concept::of(Some(&core))));
        let pet = json!({"coding": [{"system": "urn:local", "code": "x", "display": "PET/CT whole body"}]});
        assert_eq!(
            v.matches("imaging-fdg-pet", &Concept::of(Some(&pet))),
            Some(crate::knowledge::MatchedBy::Text)
        );
    }

    #[test]
    fn codes_of_any_set_beat_text_of_an_earlier_one() {
        let t = vs::terminology();
        let v = Vocab::new(&t);
        // Coded leiomyosarcoma with a display that mentions liposarcoma.
        let c = json!({"coding": [{"system": ICDO3, "code": "8890/3", "display": "not a liposarcoma"}]});
        let input = ClinicalInput {
            as_of: Utc::now(),
            patient: None,
            resources: &[],
            set_aside: &[],
            withheld: &[],
        };
        let params = Parameters::default();
        let x = Extractor::new(&input, &t, &params);
        assert_eq!(
            x.histology_of(&Concept::of(Some(&c))),
            Some((Histology::Leiomyosarcoma, ReadFrom::Code))
        );
        assert!(v.by_code("histology-leiomyosarcoma", &Concept::of(Some(&c))));
    }

    #[test]
    fn closed_world_absence_and_set_aside() {
        let pic = build(&[dx()], &[]);
        assert_eq!(pic.pulmonary_function_tested.value(), Some(&false));
        assert_eq!(
            pic.pulmonary_function_tested
                .provenance()
                .unwrap()
                .read_from,
            ReadFrom::Absence
        );
        let pic = build(&[dx()], &["Observation"]);
        assert_eq!(
            pic.pulmonary_function_tested.unknown_reason(),
            Some(&Unknown::SetAside {
                resource_types: vec!["Observation".to_owned()]
            })
        );
        // Open world: ECOG is "not recorded", but with Observations set aside the reason
        // says so.
        assert!(matches!(
            pic.ecog.unknown_reason(),
            Some(Unknown::SetAside { .. })
        ));
        assert_eq!(
            build(&[dx()], &[]).ecog.unknown_reason(),
            Some(&Unknown::NotRecorded)
        );
    }

    #[test]
    fn future_dated_records_are_not_seen() {
        let future = json!({"resourceType": "Condition", "id": "m", "onsetDateTime": "2027-01-01",
            "code": {"coding": [{"system": SCT, "code": "94391008"}]}});
        let pic = build(&[dx(), future], &[]);
        assert!(pic.metastases.is_empty());
    }

    #[test]
    fn dose_units_and_months() {
        let gy = json!({"extension": [{"url": format!("{MCODE}{DOSE_EXTENSION}"), "extension": [
            {"url": "totalDoseDelivered", "valueQuantity": {"value": 50.4, "code": "Gy"}}]}]});
        assert_eq!(total_dose_gy(&gy), Some(50.4));
        let cgy = json!({"extension": [{"url": format!("{MCODE}{DOSE_EXTENSION}"), "extension": [
            {"url": "totalDoseDelivered", "valueQuantity": {"value": 4500, "code": "cGy"}}]}]});
        assert_eq!(total_dose_gy(&cgy), Some(45.0));
        assert!(is_mg_per_m2("mg/m2") && !is_mg_per_m2("mg/kg"));
        let m = months_between(d("2025-01-01"), d("2026-01-01"));
        assert!((m - 12.0).abs() < 0.05, "{m}");
    }

    #[test]
    fn other_primary_cancers_only() {
        let breast = json!({"resourceType": "Condition", "id": "b", "onsetDateTime": "2020-01-01",
            "code": {"coding": [{"system": ICD10CM, "code": "C50.911"}]}});
        assert_eq!(
            build(&[dx(), breast], &[]).second_malignancy.value(),
            Some(&true)
        );
        // Secondary (C78) and soft-tissue (C49) codes are not a second primary.
        let secondary = json!({"resourceType": "Condition", "id": "s", "onsetDateTime": "2020-01-01",
            "code": {"coding": [{"system": ICD10CM, "code": "C49.4"}]}});
        assert_eq!(
            build(&[dx(), secondary], &[]).second_malignancy.value(),
            Some(&false)
        );
        let carcinoma = json!({"resourceType": "Condition", "id": "c", "onsetDateTime": "2020-01-01",
            "code": {"coding": [{"system": ICDO3, "code": "8140/3"}]}});
        assert_eq!(
            build(&[dx(), carcinoma], &[]).second_malignancy.value(),
            Some(&true)
        );
    }
}
