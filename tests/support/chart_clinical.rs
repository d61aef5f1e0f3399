//! Chart builders for records that only the `clinical` binary's tests chart so far (fact
//! readers for Karnofsky, smoking, pulmonary function, critical structures, coded symptoms,
//! histology Observations, ICD-10 codes, CT of the chest alone, Li-Fraumeni syndrome, and
//! resources set aside by validation). They extend [`Chart`] of `chart.rs`, which holds the
//! builders both test binaries use: a binary that included a builder it never calls would
//! report it as dead code, so when an `api` test needs one of these, move it to `chart.rs`.

use serde_json::{Value, json};

use super::chart::{Chart, LOINC, SCT, cc};
use rps_cds::fhir::InvalidResource;

pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

impl Chart {
    /// Records that a resource of `resource_type` failed validation and was set aside.
    pub fn set_aside(mut self, resource_type: &str) -> Self {
        self.set_aside
            .push(InvalidResource::new(resource_type.to_owned(), None));
        self
    }

    /// Histology Observation (LOINC 31206-6) with the given value.
    pub fn histology_observation(mut self, date: &str, value: Value) -> Self {
        let mut o = self.observation(
            "histology",
            cc(LOINC, "31206-6", "Histology and behavior ICD-O-3 Cancer"),
            date,
        );
        o["valueCodeableConcept"] = value;
        self.resources.push(o);
        self
    }

    /// Invasion of a critical structure (SCT 370052007) at body site SCT `site`.
    pub fn critical_structure(mut self, date: &str, site: &str, involved: bool) -> Self {
        let mut o = self.observation(
            "critical",
            cc(SCT, "370052007", "Status of invasion by tumor"),
            date,
        );
        o["bodySite"] = cc(SCT, site, "structure");
        o["valueBoolean"] = json!(involved);
        self.resources.push(o);
        self
    }

    /// An active symptom Condition with the given code.
    pub fn symptom(mut self, onset: &str, code: Value) -> Self {
        let c = self.condition("symptom", code, onset);
        self.resources.push(c);
        self
    }

    /// Karnofsky (LOINC 89243-0) as valueInteger.
    pub fn karnofsky(mut self, date: &str, score: u8) -> Self {
        let mut o = self.observation(
            "karnofsky",
            cc(LOINC, "89243-0", "Karnofsky Performance Status score"),
            date,
        );
        o["valueInteger"] = json!(score);
        self.resources.push(o);
        self
    }

    /// Tobacco smoking status (LOINC 72166-2) with SCT `status` (449868002 current,
    /// 8517006 former, 266919005 never).
    pub fn smoking(mut self, date: &str, status: &str) -> Self {
        let mut o = self.observation(
            "smoking",
            cc(LOINC, "72166-2", "Tobacco smoking status"),
            date,
        );
        o["valueCodeableConcept"] = cc(SCT, status, "smoking status");
        self.resources.push(o);
        self
    }

    /// FEV1 (LOINC 20150-9).
    pub fn pft(mut self, date: &str) -> Self {
        let mut o = self.observation("pft", cc(LOINC, "20150-9", "FEV1"), date);
        o["valueQuantity"] =
            json!({"value": 2.9, "unit": "L", "system": "http://unitsofmeasure.org", "code": "L"});
        self.resources.push(o);
        self
    }

    pub fn ct_chest(self, date: &str) -> Self {
        self.report(date, cc(SCT, "169069000", "CT of chest"))
    }

    /// Li-Fraumeni syndrome (ORPHA 524).
    pub fn li_fraumeni(mut self, onset: &str) -> Self {
        let c = self.condition(
            "lfs",
            cc("http://www.orpha.net", "524", "Li-Fraumeni syndrome"),
            onset,
        );
        self.resources.push(c);
        self
    }
}
