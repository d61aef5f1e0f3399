//! A small builder of FHIR R4 charts for tests: each method adds one or two resources the way
//! docs/input-profile.md reads them, and returns the chart so calls chain.
//!
//! ```ignore
//! let chart = Chart::new("2026-11-01")
//!     .patient("1961-04-02")
//!     .diagnosis("2023-01-10", hist::DDLPS)          // Condition/dx
//!     .primary_resection("2023-02-01", Some("R0"))   // Procedure/resection-1 + residual Observation
//!     .recurrence("2025-09-01")                       // Condition/recurrence-1
//!     .ecog("2026-10-02", 1)
//!     .ct_chest_abdomen_pelvis("2026-10-20");
//! let kb = Knowledge::embedded().unwrap();
//! let picture = chart.picture(&kb.terminology, &Parameters::default());
//! ```
//!
//! Ids are predictable so tests can refer to them: the n-th resource of a kind is
//! `<kind>-<n>` (`resection-1`, `recurrence-2`, `met-1`, `rt-1`, `admin-3` …); the diagnosis
//! is `Condition/dx` and the patient `Patient/p1`. [`Chart::tweak`] edits the resource added
//! last (e.g. to drop an element or set a status). Anything the helpers do not cover goes in
//! with [`Chart::resource`].
//!
//! This file holds the builders both test binaries call; `request.rs` (the chart as a hook
//! request, `api` only) and `chart_clinical.rs` (records only the `clinical` tests chart)
//! extend [`Chart`] for one binary each, so that neither includes a builder it never calls.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rps_cds::clinical::{ClinicalInput, Picture, build_picture};
use rps_cds::fhir::InvalidResource;
use rps_cds::knowledge::{Parameters, Terminology};
use serde_json::{Value, json};

pub const SCT: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const ICDO3: &str = "http://terminology.hl7.org/CodeSystem/icd-o-3";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const NCIT: &str = "http://ncit.nci.nih.gov";
pub const RPS: &str = "https://fhir.rps-cds.org/CodeSystem/rps-observation";
pub const MCODE: &str = "http://hl7.org/fhir/us/mcode/StructureDefinition/";
pub const PROGRESSION_QUALIFIER: &str = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/codexrt-radiotherapy-disease-progression-qualifier";

/// ICD-O-3 morphology codes with their display, for [`Chart::diagnosis`].
pub mod hist {
    pub type Morphology = (&'static str, &'static str);
    pub const WDLPS: Morphology = ("8851/3", "Well differentiated liposarcoma");
    pub const DDLPS: Morphology = ("8858/3", "Dedifferentiated liposarcoma");
    pub const LMS: Morphology = ("8890/3", "Leiomyosarcoma");
    pub const SFT: Morphology = ("8815/3", "Solitary fibrous tumor, malignant");
    pub const GIST: Morphology = ("8936/3", "Gastrointestinal stromal tumor");
}

/// Metastasis sites with their SNOMED CT "secondary malignant neoplasm of …" code.
#[derive(Debug, Clone, Copy)]
pub enum Site {
    Lung,
    Liver,
    /// ICD-10-CM C78.6 (peritoneum).
    Peritoneum,
}

impl Site {
    fn coding(self) -> Value {
        let (system, code, display) = match self {
            Site::Lung => (SCT, "94391008", "Secondary malignant neoplasm of lung"),
            Site::Liver => (SCT, "94381002", "Secondary malignant neoplasm of liver"),
            Site::Peritoneum => (
                ICD10CM,
                "C78.6",
                "Secondary malignant neoplasm of retroperitoneum and peritoneum",
            ),
        };
        json!({"system": system, "code": code, "display": display})
    }
}

/// A CodeableConcept with one coding.
pub fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

/// A CodeableConcept with text only.
pub fn text(t: &str) -> Value {
    json!({"text": t})
}

pub fn retroperitoneum() -> Value {
    cc(SCT, "82849001", "Retroperitoneal structure")
}

/// A patient's chart at an evaluation time, plus draft orders.
#[derive(Debug, Clone)]
pub struct Chart {
    pub as_of: DateTime<Utc>,
    pub patient: Option<Value>,
    pub resources: Vec<Value>,
    pub set_aside: Vec<InvalidResource>,
    pub drafts: Vec<Value>,
    counters: BTreeMap<&'static str, usize>,
}

impl Chart {
    /// An empty chart evaluated at noon UTC of `as_of` ("2026-11-01").
    pub fn new(as_of: &str) -> Self {
        let d: NaiveDate = as_of.parse().expect("as_of is YYYY-MM-DD");
        Chart {
            as_of: d.and_hms_opt(12, 0, 0).unwrap().and_utc(),
            patient: None,
            resources: Vec::new(),
            set_aside: Vec::new(),
            drafts: Vec::new(),
            counters: BTreeMap::new(),
        }
    }

    pub(super) fn next_id(&mut self, kind: &'static str) -> String {
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        format!("{kind}-{n}")
    }

    pub(super) fn subject() -> Value {
        json!({"reference": "Patient/p1"})
    }

    /// `Patient/p1` born on `birth_date`.
    pub fn patient(mut self, birth_date: &str) -> Self {
        self.patient = Some(json!({
            "resourceType": "Patient", "id": "p1", "birthDate": birth_date, "gender": "female"
        }));
        self
    }

    /// Adds any resource as is.
    pub fn resource(mut self, r: Value) -> Self {
        self.resources.push(r);
        self
    }

    /// Edits the resource added last.
    pub fn tweak(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(self.resources.last_mut().expect("a resource to tweak"));
        self
    }

    pub(super) fn condition(&mut self, kind: &'static str, code: Value, onset: &str) -> Value {
        let id = self.next_id(kind);
        json!({
            "resourceType": "Condition", "id": id, "subject": Self::subject(),
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "code": code, "onsetDateTime": onset
        })
    }

    pub(super) fn observation(&mut self, kind: &'static str, code: Value, date: &str) -> Value {
        let id = self.next_id(kind);
        json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "subject": Self::subject(), "code": code, "effectiveDateTime": date
        })
    }

    pub(super) fn procedure(&mut self, kind: &'static str, code: Value, date: &str) -> Value {
        let id = self.next_id(kind);
        json!({
            "resourceType": "Procedure", "id": id, "status": "completed",
            "subject": Self::subject(), "code": code, "performedDateTime": date
        })
    }

    // ---- Diagnosis and tumour -------------------------------------------------------

    /// `Condition/dx`: mCODE primary cancer condition, ICD-10-CM C48.0, retroperitoneal
    /// bodySite, histology in the mCODE histology-morphology-behavior extension.
    pub fn diagnosis(mut self, onset: &str, morphology: hist::Morphology) -> Self {
        self.resources.push(json!({
            "resourceType": "Condition", "id": "dx", "subject": Self::subject(),
            "meta": {"profile": [format!("{MCODE}mcode-primary-cancer-condition")]},
            "extension": [{
                "url": format!("{MCODE}mcode-histology-morphology-behavior"),
                "valueCodeableConcept": cc(ICDO3, morphology.0, morphology.1)
            }],
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "code": cc(ICD10CM, "C48.0", "Malignant neoplasm of retroperitoneum"),
            "bodySite": [retroperitoneum()],
            "onsetDateTime": onset
        }));
        self
    }

    /// `Condition/dx` with a free-form code and body site (other encodings of the profile).
    pub fn diagnosis_coded(mut self, onset: &str, code: Value, body_site: Option<Value>) -> Self {
        let mut c = json!({
            "resourceType": "Condition", "id": "dx", "subject": Self::subject(),
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "code": code, "onsetDateTime": onset
        });
        if let Some(b) = body_site {
            c["bodySite"] = json!([b]);
        }
        self.resources.push(c);
        self
    }

    /// mCODE histologic grade (NCIT C18000) coded with SNOMED CT low / intermediate / high.
    pub fn grade(mut self, date: &str, grade: u8) -> Self {
        let value = match grade {
            1 => cc(SCT, "1155708003", "Low grade"),
            2 => cc(SCT, "1286893008", "Intermediate grade"),
            _ => cc(SCT, "1155707008", "High grade"),
        };
        let mut o = self.observation("grade", cc(NCIT, "C18000", "Histologic Grade"), date);
        o["valueCodeableConcept"] = value;
        self.resources.push(o);
        self
    }

    // ---- Surgery and radiotherapy --------------------------------------------------

    fn resection_with(
        mut self,
        date: &str,
        reason: Option<String>,
        body_site: Option<Value>,
        completeness: Option<&str>,
    ) -> Self {
        let mut p = self.procedure(
            "resection",
            cc(SCT, "387713003", "Surgical procedure"),
            date,
        );
        if let Some(r) = reason {
            p["reasonReference"] = json!([{"reference": r}]);
        }
        if let Some(b) = body_site {
            p["bodySite"] = json!([b]);
        }
        let proc_ref = format!("Procedure/{}", p["id"].as_str().unwrap());
        self.resources.push(p);
        if let Some(c) = completeness {
            self = self.residual_tumour(date, &proc_ref, c);
        }
        self
    }

    /// Resection of the primary (`reasonReference` → `Condition/dx`, retroperitoneal body
    /// site) as `Procedure/resection-N`, with a residual-tumour Observation when
    /// `completeness` ("R0" / "R1" / "R2") is given.
    pub fn primary_resection(self, date: &str, completeness: Option<&str>) -> Self {
        self.resection_with(
            date,
            Some("Condition/dx".to_owned()),
            Some(retroperitoneum()),
            completeness,
        )
    }

    /// Resection of `Condition/recurrence-<n>`.
    pub fn recurrence_resection(self, date: &str, n: usize, completeness: Option<&str>) -> Self {
        self.resection_with(
            date,
            Some(format!("Condition/recurrence-{n}")),
            Some(retroperitoneum()),
            completeness,
        )
    }

    /// Resection of `Condition/met-<n>` (a metastasectomy).
    pub fn metastasectomy(self, date: &str, n: usize, completeness: Option<&str>) -> Self {
        self.resection_with(date, Some(format!("Condition/met-{n}")), None, completeness)
    }

    /// Residual tumour classification (LOINC 84892-9) of `procedure`, as text ("R0").
    pub fn residual_tumour(mut self, date: &str, procedure: &str, value: &str) -> Self {
        let mut o = self.observation(
            "residual",
            cc(LOINC, "84892-9", "Residual tumor classification"),
            date,
        );
        o["partOf"] = json!([{"reference": procedure}]);
        o["valueCodeableConcept"] = text(value);
        self.resources.push(o);
        self
    }

    /// RPS rupture-or-piecemeal Observation about `procedure`.
    pub fn rupture(mut self, date: &str, procedure: &str, value: bool) -> Self {
        let mut o = self.observation(
            "rupture",
            cc(
                RPS,
                "rupture-or-piecemeal",
                "Rupture or piecemeal resection",
            ),
            date,
        );
        o["partOf"] = json!([{"reference": procedure}]);
        o["valueBoolean"] = json!(value);
        self.resources.push(o);
        self
    }

    /// mCODE radiotherapy course summary (`Procedure/rt-N`) over `start`..`end`, with the
    /// total dose in cGy when given.
    pub fn radiotherapy(mut self, start: &str, end: &str, dose_cgy: Option<f64>) -> Self {
        let mut p = self.procedure(
            "rt",
            cc(SCT, "1217123003", "Radiotherapy course of treatment"),
            start,
        );
        p.as_object_mut().unwrap().remove("performedDateTime");
        p["performedPeriod"] = json!({"start": start, "end": end});
        if let Some(d) = dose_cgy {
            p["extension"] = json!([{
                "url": format!("{MCODE}mcode-radiotherapy-dose-delivered-to-volume"),
                "extension": [
                    {"url": "volume", "valueReference": {"reference": "BodyStructure/v1"}},
                    {"url": "totalDoseDelivered", "valueQuantity": {"value": d, "unit": "cGy", "system": "http://unitsofmeasure.org", "code": "cGy"}}
                ]
            }]);
        }
        self.resources.push(p);
        self
    }

    /// Intra-operative radiotherapy on `date` (modality-and-technique SCT 168524008).
    pub fn iort(mut self, date: &str) -> Self {
        let mut p = self.procedure(
            "rt",
            cc(SCT, "1217123003", "Radiotherapy course of treatment"),
            date,
        );
        p["extension"] = json!([{
            "url": format!("{MCODE}mcode-radiotherapy-modality-and-technique"),
            "extension": [{"url": "technique", "valueCodeableConcept": cc(SCT, "168524008", "Intraoperative radiation therapy")}]
        }]);
        self.resources.push(p);
        self
    }

    // ---- Disease course -------------------------------------------------------------

    /// A local recurrence Condition `Condition/recurrence-N` (C48.0, clinicalStatus
    /// recurrence, retroperitoneal) detected on `onset`.
    pub fn recurrence(mut self, onset: &str) -> Self {
        let mut c = self.condition(
            "recurrence",
            cc(ICD10CM, "C48.0", "Malignant neoplasm of retroperitoneum"),
            onset,
        );
        c["clinicalStatus"] = cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "recurrence",
            "Recurrence",
        );
        c["bodySite"] = json!([retroperitoneum()]);
        self.resources.push(c);
        self
    }

    /// mCODE disease status (LOINC 97509-4): "improved", "stable" or "worsened", with an
    /// optional progression qualifier "local" / "distant".
    pub fn disease_status(mut self, date: &str, status: &str, qualifier: Option<&str>) -> Self {
        let value = match status {
            "improved" => cc(SCT, "268910001", "Patient's condition improved"),
            "stable" => cc(SCT, "359746009", "Patient's condition stable"),
            _ => cc(SCT, "271299001", "Patient's condition worsened"),
        };
        let mut o = self.observation(
            "status",
            cc(LOINC, "97509-4", "Cancer disease progression"),
            date,
        );
        o["valueCodeableConcept"] = value;
        if let Some(q) = qualifier {
            let q = if q == "local" {
                cc(SCT, "255470001", "Local")
            } else {
                cc(SCT, "261007001", "Distant")
            };
            o["extension"] = json!([{"url": PROGRESSION_QUALIFIER, "valueCodeableConcept": q}]);
        }
        self.resources.push(o);
        self
    }

    /// mCODE secondary cancer condition `Condition/met-N` at `site`, detected on `onset`.
    pub fn metastasis(mut self, onset: &str, site: Site) -> Self {
        let mut c = self.condition("met", json!({"coding": [site.coding()]}), onset);
        c["meta"] = json!({"profile": [format!("{MCODE}mcode-secondary-cancer-condition")]});
        self.resources.push(c);
        self
    }

    /// RPS focality Observation about `Condition/recurrence-<n>`.
    pub fn focality(mut self, date: &str, recurrence: usize, multifocal: bool) -> Self {
        let code = if multifocal { "multifocal" } else { "unifocal" };
        let mut o = self.observation("focality", cc(RPS, "focality", "Focality"), date);
        o["focus"] = json!([{"reference": format!("Condition/recurrence-{recurrence}")}]);
        o["valueCodeableConcept"] = cc(RPS, code, code);
        self.resources.push(o);
        self
    }

    /// RPS resectability: "resectable", "borderline" or "unresectable".
    pub fn resectability(mut self, date: &str, value: &str) -> Self {
        let mut o = self.observation(
            "resectability",
            cc(RPS, "resectability", "Resectability"),
            date,
        );
        o["valueCodeableConcept"] = cc(RPS, value, value);
        self.resources.push(o);
        self
    }

    /// RPS metastatic-lesion-count.
    pub fn lesion_count(mut self, date: &str, n: u32) -> Self {
        let mut o = self.observation(
            "lesions",
            cc(RPS, "metastatic-lesion-count", "Metastatic lesion count"),
            date,
        );
        o["valueInteger"] = json!(n);
        self.resources.push(o);
        self
    }

    /// RPS symptom-assessment Observation `symptom-assessment-N`: `none` when
    /// `found_symptoms` is false, `present` when true.
    pub fn symptom_assessment(mut self, date: &str, found_symptoms: bool) -> Self {
        let mut o = self.observation(
            "symptom-assessment",
            cc(RPS, "symptom-assessment", "Symptom assessment"),
            date,
        );
        let v = if found_symptoms { "present" } else { "none" };
        o["valueCodeableConcept"] = cc(RPS, v, v);
        self.resources.push(o);
        self
    }

    /// A symptom Observation (LOINC 75325-1) `symptom-note-N` whose value is free text, e.g.
    /// "Denies abdominal pain; no obstructive symptoms".
    pub fn symptom_note(mut self, date: &str, note: &str) -> Self {
        let mut o = self.observation("symptom-note", cc(LOINC, "75325-1", "Symptom"), date);
        o["valueString"] = json!(note);
        self.resources.push(o);
        self
    }

    /// Sets the `clinicalStatus` of the Condition added last ("resolved", "remission" …).
    pub fn clinical_status(self, code: &str) -> Self {
        let code = code.to_owned();
        self.tweak(move |c| {
            c["clinicalStatus"] = cc(
                "http://terminology.hl7.org/CodeSystem/condition-clinical",
                &code,
                &code,
            )
        })
    }

    // ---- Patient status and history --------------------------------------------------

    /// ECOG (LOINC 89247-1) as valueInteger.
    pub fn ecog(mut self, date: &str, ecog: u8) -> Self {
        let mut o = self.observation(
            "ecog",
            cc(LOINC, "89247-1", "ECOG Performance Status score"),
            date,
        );
        o["valueInteger"] = json!(ecog);
        self.resources.push(o);
        self
    }

    /// Body surface area (LOINC 8277-6) in m².
    pub fn bsa(mut self, date: &str, m2: f64) -> Self {
        let mut o = self.observation("bsa", cc(LOINC, "8277-6", "Body surface area"), date);
        o["valueQuantity"] =
            json!({"value": m2, "unit": "m2", "system": "http://unitsofmeasure.org", "code": "m2"});
        self.resources.push(o);
        self
    }

    /// A completed MedicationAdministration `admin-N` of RxNorm `rxnorm` (`name`), with a
    /// dose in `unit` ("mg/m2" or "mg") when given.
    pub fn administration(
        mut self,
        date: &str,
        rxnorm: &str,
        name: &str,
        dose: Option<(f64, &str)>,
    ) -> Self {
        let id = self.next_id("admin");
        let mut m = json!({
            "resourceType": "MedicationAdministration", "id": id, "status": "completed",
            "subject": Self::subject(),
            "medicationCodeableConcept": cc(RXNORM, rxnorm, name),
            "effectiveDateTime": date
        });
        if let Some((value, unit)) = dose {
            m["dosage"] = json!({"dose": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}});
        }
        self.resources.push(m);
        self
    }

    /// Doxorubicin (RxNorm 3639) given on `date` at `mg_m2`.
    pub fn doxorubicin(self, date: &str, mg_m2: f64) -> Self {
        self.administration(date, "3639", "doxorubicin", Some((mg_m2, "mg/m2")))
    }

    /// A completed MedicationStatement `stmt-N` of RxNorm `rxnorm` over `start`..`end`.
    pub fn medication_statement(
        mut self,
        start: &str,
        end: &str,
        rxnorm: &str,
        name: &str,
    ) -> Self {
        let id = self.next_id("stmt");
        self.resources.push(json!({
            "resourceType": "MedicationStatement", "id": id, "status": "completed",
            "subject": Self::subject(),
            "medicationCodeableConcept": cc(RXNORM, rxnorm, name),
            "effectivePeriod": {"start": start, "end": end}
        }));
        self
    }

    /// A final DiagnosticReport `report-N` with the given code.
    pub fn report(mut self, date: &str, code: Value) -> Self {
        let id = self.next_id("report");
        self.resources.push(json!({
            "resourceType": "DiagnosticReport", "id": id, "status": "final",
            "subject": Self::subject(), "code": code, "effectiveDateTime": date
        }));
        self
    }

    pub fn ct_chest_abdomen_pelvis(self, date: &str) -> Self {
        self.report(
            date,
            cc(SCT, "1148700003", "CT of chest, abdomen and pelvis"),
        )
    }

    pub fn bone_scan(self, date: &str) -> Self {
        self.report(date, cc(SCT, "41747008", "Bone scan"))
    }

    /// A completed needle biopsy Procedure (SCT 129249002).
    pub fn biopsy(mut self, date: &str) -> Self {
        let p = self.procedure("biopsy", cc(SCT, "129249002", "Core needle biopsy"), date);
        self.resources.push(p);
        self
    }

    /// Left-ventricular ejection fraction (LOINC 10230-1) in %.
    pub fn lvef(mut self, date: &str, percent: f64) -> Self {
        let mut o = self.observation(
            "lvef",
            cc(LOINC, "10230-1", "Left ventricular Ejection fraction"),
            date,
        );
        o["valueQuantity"] = json!({"value": percent, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"});
        self.resources.push(o);
        self
    }

    /// eGFR (LOINC 33914-3) in mL/min/1.73 m².
    pub fn egfr(mut self, date: &str, value: f64) -> Self {
        let mut o = self.observation(
            "egfr",
            cc(
                LOINC,
                "33914-3",
                "Glomerular filtration rate/1.73 sq M.predicted",
            ),
            date,
        );
        o["valueQuantity"] = json!({"value": value, "unit": "mL/min/{1.73_m2}",
            "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"});
        self.resources.push(o);
        self
    }

    /// A Condition `history-N` with the given code (cardiomyopathy, chronic kidney disease …).
    pub fn condition_coded(mut self, onset: &str, code: Value) -> Self {
        let c = self.condition("history", code, onset);
        self.resources.push(c);
        self
    }

    // ---- Draft orders ----------------------------------------------------------------

    /// A draft ServiceRequest `sr-N` with `code`, optional body site and reason.
    pub fn draft_service(
        mut self,
        code: Value,
        body_site: Option<Value>,
        reason: Option<&str>,
    ) -> Self {
        let id = self.next_id("sr");
        let mut s = json!({
            "resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "proposal",
            "subject": Self::subject(), "code": code
        });
        if let Some(b) = body_site {
            s["bodySite"] = json!([b]);
        }
        if let Some(r) = reason {
            s["reasonReference"] = json!([{"reference": r}]);
        }
        self.drafts.push(s);
        self
    }

    /// A draft MedicationRequest `mr-N` of RxNorm `rxnorm` with an optional dose per
    /// administration (`unit` "mg/m2" or "mg") and number of repeats.
    pub fn draft_medication(
        mut self,
        rxnorm: &str,
        name: &str,
        dose: Option<(f64, &str)>,
        repeats: Option<u32>,
    ) -> Self {
        let id = self.next_id("mr");
        let mut m = json!({
            "resourceType": "MedicationRequest", "id": id, "status": "draft", "intent": "order",
            "subject": Self::subject(), "medicationCodeableConcept": cc(RXNORM, rxnorm, name)
        });
        if let Some((value, unit)) = dose {
            m["dosageInstruction"] = json!([{"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}]}]);
        }
        if let Some(n) = repeats {
            m["dispenseRequest"] = json!({"numberOfRepeatsAllowed": n});
        }
        self.drafts.push(m);
        self
    }

    /// Edits the draft order added last.
    pub fn tweak_draft(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(self.drafts.last_mut().expect("a draft to tweak"));
        self
    }

    // ---- Output ----------------------------------------------------------------------

    /// The clinical picture of this chart.
    pub fn picture(&self, terminology: &Terminology, params: &Parameters) -> Picture {
        let refs: Vec<&Value> = self.resources.iter().collect();
        let input = ClinicalInput {
            as_of: self.as_of,
            patient: self.patient.as_ref(),
            resources: &refs,
            set_aside: &self.set_aside,
            invalid: &[],
            withheld: &[],
        };
        build_picture(&input, terminology, params)
    }
}
