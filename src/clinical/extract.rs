//! Builds the [`Picture`] from validated FHIR resources (docs/input-profile.md).
//!
//! One pass sorts the resources by type (borrowed, never cloned) and drops the ones the
//! profile ignores (entered in error, refuted, not done, cancelled) and those dated after
//! the evaluation time; the fact readers (`super::readers`, one per fact family) then read
//! them, and [`Extractor::run`] puts their facts together. Several records of the same
//! assessment: the latest by clinical date wins; two different values on that latest date
//! make it unknown (conflicting) rather than picking one.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde_json::Value;

use super::ClinicalInput;
use super::concepts::{Concept, Vocab};
use super::json::{clinical_date, is_excluded, str_at};
use super::picture::*;
use super::readers::view::{Defects, Read, Record, current_reader};
use super::readers::{self, ReaderSpec};
use crate::fhir::InvalidResource;
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
    super::symptom_status::ASYMPTOMATIC,
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
    "cardiomyopathy-condition",
    "renal-impairment-condition",
    "lvef-observation",
    "egfr-observation",
    "debulking",
    "hipec",
    "pulmonary-metastasectomy",
    "metastasectomy",
    "ablation",
    "imaging-reason-equivocal-or-response",
    "pathology-review",
    "molecular-pathology",
    "therapy-intolerance",
    "neoadjuvant",
    "adjuvant",
];

pub(crate) const MCODE: &str = "http://hl7.org/fhir/us/mcode/StructureDefinition/";
pub(crate) const SCT: &str = "http://snomed.info/sct";
pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const ICDO3: &str = "http://terminology.hl7.org/CodeSystem/icd-o-3";
pub(crate) const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub(crate) const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

/// Average month length, for month counts from day differences.
const DAYS_PER_MONTH: f64 = 30.4375;

/// Resource types that may carry each closed-world event (for set-aside checks).
pub(crate) const CONDITION: &[&str] = &["Condition"];
pub(crate) const CONDITION_OBS: &[&str] = &["Condition", "Observation"];
pub(crate) const OBSERVATION: &[&str] = &["Observation"];
pub(crate) const PROCEDURE: &[&str] = &["Procedure"];
pub(crate) const MEDICATION: &[&str] = &[
    "MedicationAdministration",
    "MedicationStatement",
    "MedicationRequest",
    "Medication",
];
pub(crate) const IMAGING: &[&str] = &["DiagnosticReport", "ImagingStudy", "Procedure"];

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
pub(crate) struct Candidate<T> {
    pub(crate) date: Option<NaiveDate>,
    pub(crate) value: T,
    pub(crate) reference: String,
    pub(crate) read_from: ReadFrom,
    pub(crate) note: Option<String>,
}

impl<T> Candidate<T> {
    pub(crate) fn new(rec: &Record, value: T, read_from: ReadFrom) -> Self {
        Candidate {
            date: rec.date(),
            value,
            reference: rec.reference.clone(),
            read_from,
            note: None,
        }
    }

    pub(crate) fn into_fact(self) -> Fact<T> {
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
pub(crate) fn latest<T: PartialEq>(
    cands: Vec<Candidate<T>>,
) -> Result<Option<Candidate<T>>, Unknown> {
    let Some(max) = cands.iter().map(|c| c.date).max() else {
        return Ok(None);
    };
    let mut at_max: Vec<Candidate<T>> = cands.into_iter().filter(|c| c.date == max).collect();
    let first = at_max.remove(0);
    if let Some(other) = at_max.iter().find(|c| c.value != first.value) {
        return Err(Unknown::Conflicting(format!(
            "{} and {} differ on the same date",
            first.reference, other.reference
        )));
    }
    Ok(Some(first))
}

pub(crate) fn absence<T>(value: T) -> Fact<T> {
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

pub(crate) fn derived<T>(value: T, resources: Vec<String>, date: Option<NaiveDate>) -> Fact<T> {
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

pub(crate) fn with_note<T>(mut f: Fact<T>, note: Option<String>) -> Fact<T> {
    if let (Fact::Known { provenance, .. }, Some(n)) = (&mut f, note) {
        provenance.note = Some(match provenance.note.take() {
            Some(old) => format!("{old}; {n}"),
            None => n,
        });
    }
    f
}

/// The records of one request, sorted by type, and what every reader needs.
pub(crate) struct Extractor<'a, 'i> {
    pub(crate) input: &'i ClinicalInput<'a>,
    pub(crate) vocab: Vocab<'i>,
    pub(crate) params: &'i Parameters,
    pub(crate) today: NaiveDate,
    set_aside_types: BTreeMap<&'a str, usize>,
    pub(crate) conditions: Vec<Record<'a>>,
    /// Observations with what each records (from its code alone).
    pub(crate) observations: Vec<(Record<'a>, ObservationKind)>,
    pub(crate) procedures: Vec<Record<'a>>,
    pub(crate) medication_uses: Vec<Record<'a>>,
    pub(crate) medications: BTreeMap<String, &'a Value>,
    pub(crate) imaging: Vec<Record<'a>>,
}

impl<'a, 'i> Extractor<'a, 'i> {
    pub(crate) fn new(
        input: &'i ClinicalInput<'a>,
        terminology: &'i Terminology,
        params: &'i Parameters,
    ) -> Self {
        let today = input.as_of.date_naive();
        let mut set_aside_types: BTreeMap<&'a str, usize> = BTreeMap::new();
        for InvalidResource { resource_type, .. } in input.set_aside {
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
        // Observations repeat their codes (serial ECOGs, labs): classify each code once.
        let mut obs_kinds: HashMap<String, ObservationKind> = HashMap::new();
        let valid = input.resources.iter().map(|&v| (v, None));
        let invalid = input
            .invalid
            .iter()
            .map(|i| (i.resource, Some(Defects::new(&i.defects))));
        for (v, defects) in valid.chain(invalid) {
            let ty = super::json::resource_type(v);
            let reference = format!("{ty}/{}", str_at(v, "id").unwrap_or("?"));
            // An invalid resource whose classifying elements cannot be read could concern any
            // fact of its type: the type is set aside as a whole.
            if let Some(d) = &defects
                && (d.blocks("") || d.elements().any(|e| readers::is_classifying(ty, e)))
            {
                *x.set_aside_types.entry(ty).or_insert(0) += 1;
                continue;
            }
            if ty == "Medication" {
                // A referenced product is read as a whole (code and ingredients), so one
                // with a defect in what it says it is, or unusable, is set aside.
                match &defects {
                    Some(d) if d.unusable() || d.blocks("ingredient") => {
                        *x.set_aside_types.entry(ty).or_insert(0) += 1;
                    }
                    _ => {
                        if let Some(id) = str_at(v, "id") {
                            x.medications.insert(format!("Medication/{id}"), v);
                        }
                    }
                }
                continue;
            }
            let rec = match defects {
                None => Record::new(v, reference, clinical_date(v)),
                Some(d) => Record::with_defects(v, reference, d),
            };
            if is_excluded(&rec) {
                continue;
            }
            // Evaluation at a fixed time must not see later data.
            if rec.date().is_some_and(|d| d > today) {
                continue;
            }
            match ty {
                "Condition" => x.conditions.push(rec),
                "Observation" => {
                    let code = rec.concept("code");
                    let kind = *obs_kinds
                        .entry(code.signature())
                        .or_insert_with(|| x.obs_kind(&code));
                    x.observations.push((rec, kind));
                }
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

    /// The Observations that record `kind`, in input order.
    pub(crate) fn observations_of(
        &self,
        kind: ObservationKind,
    ) -> impl Iterator<Item = &Record<'a>> {
        self.observations
            .iter()
            .filter(move |(_, k)| *k == kind)
            .map(|(r, _)| r)
    }

    /// `Unknown::Withheld` when data of any of `types` was withheld as a whole, else
    /// `Unknown::SetAside` when resources of any of `types` were set aside.
    pub(crate) fn set_aside(&self, types: &[&str]) -> Option<Unknown> {
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

    /// Closed world: "none recorded", unless the carrying resources were set aside, or the
    /// running reader read an invalid resource of `types` (a fact from a defective record is
    /// never the basis of an absence, §4.1).
    pub(crate) fn none_recorded<T>(&self, value: T, types: &[&str]) -> Fact<T> {
        if let Some(u) = self.set_aside(types) {
            return Fact::Unknown(u);
        }
        match current_reader().and_then(|spec| self.defective_reads(&[(spec, types)])) {
            Some(u) => Fact::Unknown(u),
            None => absence(value),
        }
    }

    /// Every record kept for reading.
    fn records(&self) -> impl Iterator<Item = &Record<'a>> {
        self.conditions
            .iter()
            .chain(self.observations.iter().map(|(r, _)| r))
            .chain(&self.procedures)
            .chain(&self.medication_uses)
            .chain(&self.imaging)
    }

    /// `Unknown::Defective` when one of `readers` had a read of an invalid record of the
    /// paired types blocked, else `Unknown::FromDefective` when it took values from one.
    pub(crate) fn defective_reads(&self, readers: &[(&ReaderSpec, &[&str])]) -> Option<Unknown> {
        if self.input.invalid.is_empty() {
            return None;
        }
        let mut blocked = Vec::new();
        let mut read = Vec::new();
        for rec in self.records() {
            let Some(d) = rec.defects() else { continue };
            for (spec, types) in readers {
                if !types.contains(&rec.resource_type()) {
                    continue;
                }
                match d.reads_by(spec.family) {
                    Some(true) => blocked.push(rec.reference.clone()),
                    Some(false) => read.push(rec.reference.clone()),
                    None => {}
                }
            }
        }
        blocked.dedup();
        read.dedup();
        if !blocked.is_empty() {
            Some(Unknown::Defective { resources: blocked })
        } else if !read.is_empty() {
            Some(Unknown::FromDefective { resources: read })
        } else {
            None
        }
    }

    /// `fact`, or unknown when one of `readers` had a read of an invalid record of the
    /// paired types blocked: what that record says is missing from it.
    fn taint<T>(&self, readers: &[(&ReaderSpec, &[&str])], fact: Fact<T>) -> Fact<T> {
        match (&fact, self.defective_reads(readers)) {
            (
                Fact::Known { .. } | Fact::Unknown(Unknown::NotRecorded),
                Some(u @ Unknown::Defective { .. }),
            ) => Fact::Unknown(u),
            _ => fact,
        }
    }

    /// Open world: not recorded (or set aside, which says more).
    pub(crate) fn not_recorded<T>(&self, types: &[&str]) -> Fact<T> {
        Fact::Unknown(self.set_aside(types).unwrap_or(Unknown::NotRecorded))
    }

    /// A note for a known list that set-aside resources might have completed.
    pub(crate) fn incomplete_note(&self, types: &[&str]) -> Option<String> {
        let n: usize = types
            .iter()
            .filter_map(|t| self.set_aside_types.get(*t))
            .sum();
        (n > 0).then(|| {
            format!(
                "{} set aside; there may be more",
                crate::display::count(n, &format!("{} record", types.join("/")))
            )
        })
    }

    /// Runs the fact readers in the order their inputs need and assembles the picture.
    fn run(self) -> Picture {
        let conds = self.classify_conditions();
        let dx = self.read_diagnosis(&conds);
        let status_obs = self.disease_status_records();
        let completeness = self.completeness_records();
        let procs = self.read_procedures(&completeness);
        let mut met_recs = self.metastasis_records(&conds);
        let mut episodes = self.recurrence_episodes(&dx, &procs, &met_recs, &status_obs);
        let resections = self.resection_targets(&procs, &episodes, &met_recs, &dx);
        let activity = self.episode_activity(&mut episodes, &resections);
        let mets = self.metastases(&mut met_recs, &status_obs, &resections);
        let imaging = self.read_imaging();
        let (primary_resection, metastasectomies) =
            self.primary_resection(&resections, &procs, &dx);
        let recurrences = self.read_recurrences(
            &dx,
            &episodes,
            &activity,
            &resections,
            &procs,
            &mets,
            &primary_resection,
        );
        let met_facts = self.read_metastases(
            &met_recs,
            &mets,
            &imaging,
            &dx,
            &resections,
            &metastasectomies,
            &primary_resection,
            activity.current.as_ref(),
        );
        let assessment = self.read_resectability();
        let ecog = self.read_performance();
        let (symptoms, symptomatic) = self.read_symptoms(&conds);
        let latest_disease_status = self.latest_disease_status(&status_obs);
        let bsa = self.bsa_records();
        let systemic = self.read_systemic(&status_obs, &bsa);
        let history = self.read_history(&conds);
        let radiotherapy = self.radiotherapy(&procs.rt_records, &resections);
        let pathology = self.read_pathology(
            &procs.biopsies,
            &mets.metastases,
            &dx.histology_observation_dates,
        );

        // A blocked read of an invalid record leaves out what it records: the facts of the
        // readers that made it, and of those built on what they read, are unknown.
        use readers::{
            DIAGNOSIS, DISEASE_STATUS, HISTORY, IMAGING as IMG, METASTASES, PATHOLOGY, PERFORMANCE,
            RADIOTHERAPY, RECURRENCES, RESECTABILITY, RESECTIONS, SYMPTOMS, SYSTEMIC,
        };
        let dx_t: &[(&ReaderSpec, &[&str])] = &[(&DIAGNOSIS, CONDITION_OBS)];
        let resection_t: &[(&ReaderSpec, &[&str])] =
            &[(&RESECTIONS, &["Procedure", "Observation"])];
        let recurrence_t: &[(&ReaderSpec, &[&str])] = &[
            (&RECURRENCES, IMAGING),
            (&RECURRENCES, CONDITION_OBS),
            (&DIAGNOSIS, CONDITION),
            (&DISEASE_STATUS, OBSERVATION),
            (&RESECTIONS, &["Procedure", "Observation"]),
        ];
        let met_t: &[(&ReaderSpec, &[&str])] = &[
            (&METASTASES, CONDITION_OBS),
            (&DISEASE_STATUS, OBSERVATION),
            (&RESECTIONS, &["Procedure", "Observation"]),
            (&IMG, IMAGING),
        ];
        let systemic_t: &[(&ReaderSpec, &[&str])] = &[
            (&SYSTEMIC, MEDICATION),
            (&SYSTEMIC, OBSERVATION),
            (&DISEASE_STATUS, OBSERVATION),
        ];
        let read_in_part = self
            .records()
            .filter(|r| r.defects().is_some_and(|d| d.read_in_part()))
            .map(|r| r.reference.clone())
            .collect();
        let defects_met = self
            .records()
            .filter(|r| r.defects().is_some_and(|d| d.met()))
            .map(|r| r.reference.clone())
            .collect();
        Picture {
            as_of: self.input.as_of,
            patient: self.input.patient.map(super::json::reference_of),
            diagnosis: dx.diagnosis,
            histology: self.taint(dx_t, dx.histology),
            site_retroperitoneal: dx.site_retroperitoneal,
            grade: self.taint(dx_t, dx.grade),
            age_years: dx.age_years,
            resections,
            primary_resection: self.taint(resection_t, primary_resection),
            metastasectomies,
            radiotherapy: self.taint(&[(&RADIOTHERAPY, PROCEDURE), resection_t[0]], radiotherapy),
            disease_state: self.taint(recurrence_t, recurrences.disease_state),
            recurrence_episodes: episodes,
            recurrence_number: self.taint(recurrence_t, recurrences.recurrence_number),
            current_recurrence: activity.current,
            focality: self.taint(recurrence_t, recurrences.focality),
            recurrence_biopsied: self.taint(recurrence_t, recurrences.recurrence_biopsied),
            metastases: mets.metastases,
            distant_disease: self.taint(met_t, met_facts.distant_disease),
            metastasis_sites: self.taint(met_t, met_facts.metastasis_sites),
            metastasis_timing: self.taint(met_t, met_facts.metastasis_timing),
            synchronous_local_distant: self.taint(met_t, met_facts.synchronous_local_distant),
            sarcomatosis: self.taint(met_t, met_facts.sarcomatosis),
            metastatic_lesion_count: self.taint(met_t, met_facts.metastatic_lesion_count),
            metastatic_lesions_at_least: self.taint(met_t, met_facts.metastatic_lesions_at_least),
            low_volume: self.taint(met_t, met_facts.low_volume),
            dfi_months: self.taint(met_t, met_facts.dfi_months),
            recurrent_metastases_after_metastasectomy: self
                .taint(met_t, met_facts.recurrent_metastases_after_metastasectomy),
            critical_structures: self.taint(
                &[(&RESECTABILITY, OBSERVATION)],
                assessment.critical_structures,
            ),
            resectability: self.taint(&[(&RESECTABILITY, OBSERVATION)], assessment.resectability),
            ecog: self.taint(&[(&PERFORMANCE, OBSERVATION)], ecog),
            symptoms: self.taint(&[(&SYMPTOMS, CONDITION_OBS)], symptoms),
            symptomatic: self.taint(&[(&SYMPTOMS, CONDITION_OBS)], symptomatic),
            latest_disease_status: self
                .taint(&[(&DISEASE_STATUS, OBSERVATION)], latest_disease_status),
            systemic_history: self.taint(systemic_t, systemic.history),
            prior_anthracycline: self.taint(systemic_t, systemic.prior_anthracycline),
            // The lower bound counts valid records only; a defective read makes the exact
            // total unknown, never the bound.
            anthracycline_dose: AnthracyclineDose {
                total_mg_m2: self.taint(systemic_t, systemic.anthracycline_dose.total_mg_m2),
                ..systemic.anthracycline_dose
            },
            cardiomyopathy_or_heart_failure: self.taint(
                &[(&HISTORY, CONDITION_OBS)],
                history.cardiomyopathy_or_heart_failure,
            ),
            renal_impairment: self.taint(&[(&HISTORY, CONDITION_OBS)], history.renal_impairment),
            favorable_systemic_response: self.taint(systemic_t, systemic.favourable),
            progression_on_systemic: self.taint(systemic_t, systemic.progression),
            body_surface_area_m2: self
                .taint(&[(&SYSTEMIC, OBSERVATION)], systemic.body_surface_area_m2),
            li_fraumeni: self.taint(&[(&HISTORY, CONDITION)], history.li_fraumeni),
            second_malignancy: self.taint(&[(&HISTORY, CONDITION)], history.second_malignancy),
            current_smoker: self.taint(&[(&HISTORY, OBSERVATION)], history.current_smoker),
            last_pft: self.taint(&[(&HISTORY, OBSERVATION)], history.last_pft),
            pulmonary_function_tested: self.taint(
                &[(&HISTORY, OBSERVATION)],
                history.pulmonary_function_tested,
            ),
            last_ct_chest: self.taint(&[(&IMG, IMAGING)], imaging.last_ct_chest),
            last_ct_abdomen_pelvis: self.taint(&[(&IMG, IMAGING)], imaging.last_ct_abdomen_pelvis),
            last_bone_or_pet: self.taint(&[(&IMG, IMAGING)], imaging.last_bone_or_pet),
            last_imaging: self.taint(&[(&IMG, IMAGING)], imaging.last_imaging),
            expert_pathology_review: self.taint(
                &[(&PATHOLOGY, &["DiagnosticReport", "Procedure"])],
                pathology.expert_pathology_review,
            ),
            molecular_test: self.taint(
                &[(&PATHOLOGY, &["DiagnosticReport", "Procedure"])],
                pathology.molecular_test,
            ),
            metastasis_biopsied: self.taint(
                &[(&PATHOLOGY, PROCEDURE), resection_t[0], dx_t[0]],
                pathology.metastasis_biopsied,
            ),
            undiagnosed_retroperitoneal_masses: dx.retro_masses,
            set_aside: self
                .set_aside_types
                .iter()
                .map(|(t, n)| SetAsideCount {
                    resource_type: (*t).to_owned(),
                    count: *n,
                })
                .collect(),
            read_in_part,
            defects_met,
        }
    }

    fn obs_kind(&self, code: &Concept) -> ObservationKind {
        let v = &self.vocab;
        let rps = |c: &str| code.has_code(OBSERVATION_SYSTEM, c);
        if rps("rupture-or-piecemeal") {
            ObservationKind::Rupture
        } else if rps("focality") {
            ObservationKind::Focality
        } else if rps("metastatic-lesion-count") {
            ObservationKind::LesionCount
        } else if rps("resectability") {
            ObservationKind::Resectability
        } else if v.by_code("ecog-observation", code) {
            ObservationKind::Ecog
        } else if v.by_code("disease-status-observation", code) {
            ObservationKind::DiseaseStatus
        } else if v.by_code("histology-observation", code) {
            ObservationKind::Histology
        } else if v.by_code("grade-observation", code) {
            ObservationKind::Grade
        } else if v.by_code("residual-tumour-observation", code) {
            ObservationKind::Residual
        } else if v.by_code("critical-structure-observation", code) {
            ObservationKind::Critical
        } else if v.by_code("karnofsky-observation", code) {
            ObservationKind::Karnofsky
        } else if v.by_code("bsa-observation", code) {
            ObservationKind::Bsa
        } else if v.by_code("smoking-observation", code) {
            ObservationKind::Smoking
        } else if v.by_code("pft-observation", code) {
            ObservationKind::Pft
        } else if rps("symptom-assessment") {
            ObservationKind::SymptomAssessment
        } else if v.by_code("lvef-observation", code) {
            ObservationKind::Lvef
        } else if v.by_code("egfr-observation", code) {
            ObservationKind::Egfr
        } else if v.by_code("symptom-observation", code)
            || self.is_symptom_concept(code)
            || v.by_code(super::symptom_status::ASYMPTOMATIC, code)
        {
            ObservationKind::Symptom
        } else {
            ObservationKind::Other
        }
    }
}

/// What an Observation records, from its code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObservationKind {
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
    SymptomAssessment,
    Lvef,
    Egfr,
    Other,
}

pub(crate) fn is_recurrence_status(s: Option<&str>) -> bool {
    matches!(s, Some("recurrence" | "relapse"))
}

/// The elements [`condition_active`] reads.
pub(crate) const CONDITION_ACTIVITY: &[&str] = &[
    "clinicalStatus",
    "abatementDateTime",
    "abatementPeriod",
    "abatementString",
    "abatementAge",
];

/// A Condition neither abated nor resolved / in remission / inactive.
pub(crate) fn condition_active<'a>(rec: &impl Read<'a>) -> bool {
    let abated = CONDITION_ACTIVITY
        .iter()
        .filter(|k| k.starts_with("abatement"))
        .any(|k| rec.get(k).is_some());
    !abated
        && !matches!(
            rec.first_code("clinicalStatus"),
            Some("resolved" | "remission" | "inactive")
        )
}

/// `valueCodeableConcept`, else `valueString` as text.
pub(crate) fn value_concept<'a>(obs: &impl Read<'a>) -> Concept<'a> {
    let mut c = obs.concept("valueCodeableConcept");
    if let Some(s) = obs.str("valueString") {
        c.add_text(s);
    }
    c
}

/// "system|code" (or lower-case text) of each bodySite, for comparing sites.
pub(crate) fn body_site_keys<'a>(v: &impl Read<'a>) -> Vec<String> {
    let mut keys: Vec<String> = v
        .array("bodySite")
        .flat_map(|b| {
            let codes: Vec<String> = super::json::array(b, "coding")
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

/// `valueInteger`, else a rounded `valueQuantity.value`.
pub(crate) fn integer_value<'a>(obs: &impl Read<'a>) -> Option<i64> {
    obs.get("valueInteger").and_then(Value::as_i64).or_else(|| {
        obs.get("valueQuantity")
            .and_then(|q| q.get("value"))
            .and_then(Value::as_f64)
            .map(|f| f.round() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinical::ClinicalInput;
    use crate::clinical::readers::{is_mg_per_m2, karnofsky_to_ecog, latest_prefer_first};
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

    fn cand<T>(date: Option<&str>, value: T, id: &str) -> Candidate<T> {
        Candidate {
            date: date.map(d),
            value,
            reference: id.to_owned(),
            read_from: ReadFrom::Code,
            note: None,
        }
    }

    fn build(resources: &[serde_json::Value], set_aside: &[&str]) -> Picture {
        let refs: Vec<&Value> = resources.iter().collect();
        let set_aside: Vec<InvalidResource> = set_aside
            .iter()
            .map(|t| InvalidResource::new((*t).to_owned(), None))
            .collect();
        let input = ClinicalInput {
            as_of: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(),
            patient: None,
            resources: &refs,
            set_aside: &set_aside,
            invalid: &[],
            withheld: &[],
        };
        build_picture(&input, &vs::terminology(), &Parameters::default())
    }

    /// `build` with invalid resources (each with its defective paths).
    fn build_with_invalid(resources: &[Value], invalid: &[(Value, &[&str])]) -> Picture {
        let refs: Vec<&Value> = resources.iter().collect();
        let invalid: Vec<crate::clinical::InvalidInput> = invalid
            .iter()
            .map(|(v, paths)| crate::clinical::InvalidInput {
                resource: v,
                defects: paths.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect();
        let input = ClinicalInput {
            as_of: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(),
            patient: None,
            resources: &refs,
            set_aside: &[],
            invalid: &invalid,
            withheld: &[],
        };
        build_picture(&input, &vs::terminology(), &Parameters::default())
    }

    #[test]
    fn a_defective_histology_extension_makes_the_histology_unknown_not_the_codes_reading() {
        let dx = json!({"resourceType": "Condition", "id": "dx", "onsetDateTime": "2024-01-01",
            "code": {"coding": [{"system": ICD10CM, "code": "C48.0"}]},
            "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
                           "valueCodeableConcept": {"coding": [{"system": ICDO3, "code": 88583}]}}]});
        let pic = build_with_invalid(
            &[],
            &[(dx, &["/extension/0/valueCodeableConcept/coding/0/code"])],
        );
        assert!(pic.diagnosis.is_some(), "the code still says RPS");
        assert!(
            matches!(
                pic.histology.unknown_reason(),
                Some(Unknown::Defective { .. })
            ),
            "{:?}",
            pic.histology
        );
    }

    #[test]
    fn a_symptom_record_read_from_an_invalid_observation_is_no_basis_for_none_recorded() {
        let no_pain = json!({"resourceType": "Observation", "id": "s", "status": "final",
            "effectiveDateTime": "2026-10-01",
            "code": {"coding": [{"system": LOINC, "code": "75325-1"}]},
            "valueCodeableConcept": {"coding": [{"system": SCT, "code": "22253000"}]},
            "valueBoolean": false, "note": "denies pain"});
        assert!(
            build(&[dx(), no_pain.clone()], &[])
                .symptoms
                .value()
                .is_some_and(|s| s.is_empty())
        );
        let pic = build_with_invalid(&[dx()], &[(no_pain, &["/note"])]);
        // Unknown either way: the symptom reader now reads the note itself (negation-aware
        // text), so the defect blocks that read; it never reads as "none recorded".
        assert!(
            matches!(
                pic.symptoms.unknown_reason(),
                Some(Unknown::FromDefective { .. } | Unknown::Defective { .. })
            ),
            "{:?}",
            pic.symptoms
        );
        assert_eq!(pic.read_in_part, ["Observation/s"]);
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
            invalid: &[],
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
