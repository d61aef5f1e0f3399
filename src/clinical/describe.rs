//! Plain-word display of facts for cards, the list of unknown facts (DATA-01) and derived
//! views the rules use often. The words and formats come from [`crate::display`], which the
//! rules and the cards use too: one vocabulary.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::evidence::{FactUse, UnknownFact, origin_of};
use super::picture::*;
use crate::display;

impl Provenance {
    /// "Observation/ecog-1, coded, 2026-10-02" ("none recorded" for a closed-world absence).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.resources.is_empty() {
            parts.push(self.resources.join(", "));
        }
        parts.push(self.read_from.label().to_owned());
        if let Some(d) = self.date {
            parts.push(d.to_string());
        }
        if let Some(n) = &self.note {
            parts.push(n.clone());
        }
        parts.join(", ")
    }
}

impl<T: Describe> Fact<T> {
    /// The value in plain words, or "unknown (reason)".
    pub fn describe(&self) -> String {
        match self {
            Fact::Known { value, .. } => value.describe(),
            Fact::Unknown(u) => format!("unknown ({})", u.reason()),
        }
    }

    /// The card's view of a known fact: name, value, provenance. `None` when unknown.
    pub fn fact_use(&self, fact: &'static str) -> Option<FactUse> {
        match self {
            Fact::Known { value, provenance } => Some(FactUse {
                fact,
                value: value.describe(),
                provenance: Some(provenance.describe()),
                origin: origin_of(provenance),
            }),
            Fact::Unknown(_) => None,
        }
    }
}

impl<T> Fact<T> {
    /// The card's view of an unknown fact and what it holds back. `None` when known.
    pub fn unknown_fact(&self, fact: &'static str, holds_back: &str) -> Option<UnknownFact> {
        match self {
            Fact::Known { .. } => None,
            Fact::Unknown(u) => Some(UnknownFact {
                fact,
                reason: u.reason(),
                holds_back: holds_back.to_owned(),
            }),
        }
    }
}

impl Describe for bool {
    fn describe(&self) -> String {
        if *self { "yes" } else { "no" }.to_owned()
    }
}

impl Describe for u8 {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Describe for u32 {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Describe for f64 {
    /// One decimal: months and doses are not more precise than that.
    fn describe(&self) -> String {
        format!("{self:.1}")
    }
}

impl Describe for NaiveDate {
    fn describe(&self) -> String {
        display::date(*self)
    }
}

impl Describe for Option<NaiveDate> {
    fn describe(&self) -> String {
        display::date_or_none(*self)
    }
}

impl Describe for Histology {
    fn describe(&self) -> String {
        self.label().to_owned()
    }
}

impl Describe for Completeness {
    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

impl Describe for DiseaseState {
    fn describe(&self) -> String {
        self.label().to_owned()
    }
}

impl Describe for Focality {
    fn describe(&self) -> String {
        match self {
            Focality::Unifocal => "unifocal",
            Focality::Multifocal => "multifocal",
        }
        .to_owned()
    }
}

impl Describe for Resectability {
    fn describe(&self) -> String {
        self.label().to_owned()
    }
}

impl Describe for MetastasisTiming {
    fn describe(&self) -> String {
        match self {
            MetastasisTiming::Synchronous => "synchronous",
            MetastasisTiming::Metachronous => "metachronous",
        }
        .to_owned()
    }
}

impl Describe for DiseaseStatus {
    fn describe(&self) -> String {
        match self {
            DiseaseStatus::Improved => "improved",
            DiseaseStatus::Stable => "stable",
            DiseaseStatus::Worsened => "worsened",
        }
        .to_owned()
    }
}

impl Describe for Response {
    fn describe(&self) -> String {
        match self {
            Response::Regression => "regression",
            Response::Stable => "stable disease",
            Response::Progression => "progression",
        }
        .to_owned()
    }
}

fn list_or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        display::NONE_RECORDED.to_owned()
    } else {
        items.join(", ")
    }
}

impl Describe for BTreeSet<MetastasisSite> {
    fn describe(&self) -> String {
        list_or_none(self.iter().map(|s| s.label().to_owned()).collect())
    }
}

impl Describe for Vec<CriticalStructure> {
    fn describe(&self) -> String {
        if self.is_empty() {
            "none involved".to_owned()
        } else {
            self.iter()
                .map(|s| s.label())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

impl Describe for Vec<Symptom> {
    fn describe(&self) -> String {
        list_or_none(
            self.iter()
                .map(|s| {
                    if s.bone {
                        "bone pain".to_owned()
                    } else {
                        s.kind.label().to_owned()
                    }
                })
                .collect(),
        )
    }
}

impl Describe for Resection {
    fn describe(&self) -> String {
        let completeness = match self.completeness.value() {
            Some(c) => c.describe(),
            None => "completeness unknown".to_owned(),
        };
        format!("{} ({completeness})", display::date(self.date))
    }
}

impl Describe for Option<Resection> {
    fn describe(&self) -> String {
        match self {
            Some(r) => r.describe(),
            None => "none recorded".to_owned(),
        }
    }
}

impl Describe for RtTiming {
    fn describe(&self) -> String {
        match self {
            RtTiming::PreOperative => "pre-operative",
            RtTiming::PostOperative => "post-operative",
            RtTiming::IntraOperative => "intra-operative",
            RtTiming::WithoutResection => "not related to a resection",
        }
        .to_owned()
    }
}

impl Describe for Vec<RadiotherapyCourse> {
    fn describe(&self) -> String {
        list_or_none(
            self.iter()
                .map(|c| {
                    let dose = match c.total_dose_gy.value() {
                        Some(g) => display::dose_gy(*g),
                        None => "dose not recorded".to_owned(),
                    };
                    format!("{} {} ({dose})", c.timing.describe(), display::date(c.date))
                })
                .collect(),
        )
    }
}

impl Describe for SystemicHistory {
    fn describe(&self) -> String {
        if self.lines.is_empty() {
            return "none recorded".to_owned();
        }
        self.lines
            .iter()
            .map(|l| {
                let agents: Vec<&str> = l.agents.iter().map(|a| a.label()).collect();
                let response = match l.best_response {
                    Some(r) => r.describe(),
                    None => "response not recorded".to_owned(),
                };
                format!(
                    "line {} from {}: {} ({response})",
                    l.number,
                    display::date(l.start),
                    agents.join(" + ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Picture {
    /// The RPS service applies: an RPS diagnosis whose histology is not known to be out of
    /// scope. (Unknown histology stays in scope; DATA-01 reports it.)
    pub fn is_in_scope(&self) -> bool {
        self.diagnosis.is_some() && self.histology.value().is_none_or(|h| h.is_in_scope())
    }

    /// Distant metastatic disease (with or without local recurrence).
    pub fn metastatic(&self) -> Fact<bool> {
        self.disease_state.map(|s| s.is_metastatic())
    }

    /// A local recurrence is present.
    pub fn local_recurrence(&self) -> Fact<bool> {
        self.disease_state.map(|s| s.has_local_recurrence())
    }

    /// Current symptoms of the given kinds (MET-10: pain, dyspnoea, cord compression).
    pub fn has_symptom(&self, kinds: &[SymptomKind]) -> Fact<bool> {
        self.symptoms
            .map(|s| s.iter().any(|x| kinds.contains(&x.kind)))
    }

    /// Bone symptoms (ORD-17).
    pub fn bone_symptoms(&self) -> Fact<bool> {
        self.symptoms.map(|s| s.iter().any(|x| x.bone))
    }

    /// Any prior radiotherapy.
    pub fn prior_rt(&self) -> Fact<bool> {
        self.radiotherapy.map(|c| !c.is_empty())
    }

    /// Any prior systemic therapy.
    pub fn prior_systemic(&self) -> Fact<bool> {
        self.systemic_history.map(|h| !h.is_empty())
    }

    /// The most recent resection of any kind.
    pub fn last_resection(&self) -> Option<&Resection> {
        self.resections.last()
    }

    /// Every top-level fact that is unknown for a reason other than "not applicable", with
    /// its catalogue name (DATA-01 picks the ones a rule needed).
    pub fn unknown_facts(&self) -> Vec<(&'static str, &Unknown)> {
        let all: [(&'static str, Option<&Unknown>); 43] = [
            ("histology", self.histology.unknown_reason()),
            (
                "site_retroperitoneal",
                self.site_retroperitoneal.unknown_reason(),
            ),
            ("grade", self.grade.unknown_reason()),
            ("age_years", self.age_years.unknown_reason()),
            ("primary_resection", self.primary_resection.unknown_reason()),
            ("prior_rt", self.radiotherapy.unknown_reason()),
            ("disease_state", self.disease_state.unknown_reason()),
            ("recurrence_number", self.recurrence_number.unknown_reason()),
            ("focality", self.focality.unknown_reason()),
            (
                "recurrence_biopsied",
                self.recurrence_biopsied.unknown_reason(),
            ),
            ("distant_disease", self.distant_disease.unknown_reason()),
            ("metastasis_sites", self.metastasis_sites.unknown_reason()),
            ("metastasis_timing", self.metastasis_timing.unknown_reason()),
            (
                "synchronous_local_distant",
                self.synchronous_local_distant.unknown_reason(),
            ),
            ("sarcomatosis", self.sarcomatosis.unknown_reason()),
            (
                "metastatic_lesion_count",
                self.metastatic_lesion_count.unknown_reason(),
            ),
            ("low_volume", self.low_volume.unknown_reason()),
            ("dfi_months", self.dfi_months.unknown_reason()),
            (
                "recurrent_metastases_after_metastasectomy",
                self.recurrent_metastases_after_metastasectomy
                    .unknown_reason(),
            ),
            (
                "critical_structure_involved",
                self.critical_structures.unknown_reason(),
            ),
            ("resectability", self.resectability.unknown_reason()),
            ("ecog", self.ecog.unknown_reason()),
            ("symptomatic", self.symptomatic.unknown_reason()),
            (
                "latest_disease_status",
                self.latest_disease_status.unknown_reason(),
            ),
            ("systemic_history", self.systemic_history.unknown_reason()),
            (
                "prior_anthracycline",
                self.prior_anthracycline.unknown_reason(),
            ),
            (
                "anthracycline_cumulative_dose",
                self.anthracycline_dose.total_mg_m2.unknown_reason(),
            ),
            (
                "cardiomyopathy_or_heart_failure",
                self.cardiomyopathy_or_heart_failure.unknown_reason(),
            ),
            ("renal_impairment", self.renal_impairment.unknown_reason()),
            (
                "favorable_systemic_response",
                self.favorable_systemic_response.unknown_reason(),
            ),
            (
                "progression_on_systemic",
                self.progression_on_systemic.unknown_reason(),
            ),
            (
                "body_surface_area",
                self.body_surface_area_m2.unknown_reason(),
            ),
            ("li_fraumeni", self.li_fraumeni.unknown_reason()),
            ("second_malignancy", self.second_malignancy.unknown_reason()),
            ("current_smoker", self.current_smoker.unknown_reason()),
            (
                "pulmonary_function_tested",
                self.pulmonary_function_tested.unknown_reason(),
            ),
            ("last_ct_chest", self.last_ct_chest.unknown_reason()),
            (
                "last_ct_abdomen_pelvis",
                self.last_ct_abdomen_pelvis.unknown_reason(),
            ),
            ("last_bone_or_pet", self.last_bone_or_pet.unknown_reason()),
            ("last_imaging", self.last_imaging.unknown_reason()),
            (
                "expert_pathology_review",
                self.expert_pathology_review.unknown_reason(),
            ),
            ("molecular_test", self.molecular_test.unknown_reason()),
            (
                "metastasis_biopsied",
                self.metastasis_biopsied.unknown_reason(),
            ),
        ];
        all.into_iter()
            .filter_map(|(n, u)| u.map(|u| (n, u)))
            .filter(|(_, u)| **u != Unknown::NotApplicable)
            .collect()
    }
}
