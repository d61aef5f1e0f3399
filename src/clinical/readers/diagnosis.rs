//! Diagnosis and histology: the RPS diagnosis Condition, histology (Condition or pathology
//! Observation), grade, site and age; also the classification of every Condition that the
//! metastasis, symptom and history readers share.

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::view::{Read, Reading, Record};
use super::{ReaderSpec, TypeReads};
use crate::clinical::concepts::Concept;
use crate::clinical::extract::{
    CONDITION_OBS, Candidate, Extractor, OBSERVATION, ObservationKind, is_recurrence_status,
    latest, value_concept,
};
use crate::clinical::json::{self, str_at};
use crate::clinical::picture::*;
use crate::knowledge::MatchedBy;

pub(crate) static SPEC: ReaderSpec = ReaderSpec {
    family: "diagnosis and histology",
    reads: &[
        TypeReads {
            resource_type: "Condition",
            classifying: &["code", "bodySite"],
            // The histology extension and the secondary-cancer profile refine what a
            // Condition is; a defect there is weighed in `classify_conditions`.
            values: &["clinicalStatus", "extension", "meta"],
        },
        TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueCodeableConcept", "valueString", "valueInteger"],
        },
        TypeReads {
            resource_type: "Patient",
            classifying: &[],
            values: &["birthDate"],
        },
    ],
};

const HISTOLOGY_EXTENSION: &str = "mcode-histology-morphology-behavior";
const SECONDARY_CANCER_PROFILE: &str = "mcode-secondary-cancer-condition";

fn is_secondary(meta: &Value) -> bool {
    json::array(meta, "profile")
        .filter_map(Value::as_str)
        .any(|p| p.contains(SECONDARY_CANCER_PROFILE))
}

/// What a Condition is about, decided from its classifying elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConditionClass {
    /// The RPS diagnosis (or a recurrence of it), and how it was recognised.
    Diagnosis(ReadFrom),
    /// A metastasis: (site, how read, sarcomatosis morphology).
    Metastasis(Option<MetastasisSite>, ReadFrom, bool),
    /// A retroperitoneal mass without a sarcoma diagnosis.
    RetroMass,
    Other,
}

/// One Condition, classified once for every reader.
pub(crate) struct ClassifiedCondition<'r, 'a> {
    pub(crate) record: &'r Record<'a>,
    pub(crate) code: Concept<'a>,
    pub(crate) body: Concept<'a>,
    pub(crate) histology: Option<(Histology, ReadFrom)>,
    pub(crate) histology_ext: Option<&'a Value>,
    pub(crate) class: ConditionClass,
    /// An RPS or sarcoma diagnosis code, or any metastasis (so not another cancer).
    pub(crate) sarcoma_or_metastasis: bool,
}

/// An RPS diagnosis Condition: how it matched and its histology, if it names one.
type DiagnosisCondition<'r, 'a> = (&'r Record<'a>, ReadFrom, Option<(Histology, ReadFrom)>);

/// What the diagnosis reader found.
pub(crate) struct DiagnosisFacts<'r, 'a> {
    pub(crate) diagnosis: Option<RpsDiagnosis>,
    /// Diagnosis Conditions whose status says recurrence / relapse.
    pub(crate) recurrence_conds: Vec<&'r Record<'a>>,
    /// The other diagnosis Conditions (neither the diagnosis nor recurrence-status): the
    /// recurrence reader decides which are recurrences charted with another status.
    pub(crate) other_diagnosis_conditions: Vec<&'r Record<'a>>,
    pub(crate) histology: Fact<Histology>,
    pub(crate) site_retroperitoneal: Fact<bool>,
    pub(crate) grade: Fact<u8>,
    pub(crate) age_years: Fact<u32>,
    /// Dates of the histology (pathology) Observations, for "recurrence biopsied".
    pub(crate) histology_observation_dates: Vec<(Option<NaiveDate>, String)>,
    pub(crate) retro_masses: Vec<String>,
}

impl<'a> Extractor<'a, '_> {
    pub(crate) fn classify_conditions(&self) -> Vec<ClassifiedCondition<'_, 'a>> {
        let _reading = Reading::start(&SPEC);
        let v = &self.vocab;
        self.conditions
            .iter()
            .map(|rec| {
                let code = rec.concept("code");
                let body = rec.concept_all("bodySite");
                // The histology extension and the profile are read item by item around any
                // defect: only a defect in what they would say leaves the Condition's kind
                // uncertain (an unrelated extension with a defect taints nothing).
                let mut uncertain = false;
                let histology_ext = self.histology_extension(rec, &mut uncertain);
                let histology = histology_ext
                    .and_then(|h| self.histology_of(&Concept::of(Some(h))))
                    .or_else(|| self.histology_of(&code));
                let is_secondary_profile = match rec.defects() {
                    Some(d) if d.blocks_path("/meta/profile") => {
                        uncertain = true;
                        false
                    }
                    Some(_) => rec.raw_around_defects("meta").is_some_and(is_secondary),
                    None => rec.get("meta").is_some_and(is_secondary),
                };
                let met = self.metastasis_of(&code, &body, is_secondary_profile);
                let rps_code = v.by_code("rps-diagnosis", &code);
                let sarcoma = v.by_code("sarcoma-diagnosis", &code)
                    || histology.is_some_and(|(h, _)| h != Histology::Benign);
                let retro = v.matches("site-retroperitoneum", &body).or_else(|| {
                    v.by_text("site-retroperitoneum", &code)
                        .then_some(MatchedBy::Text)
                });
                let class = if rps_code && met.is_none() {
                    ConditionClass::Diagnosis(ReadFrom::Code)
                } else if let Some((site, read_from, morph)) =
                    met.filter(|(_, rf, _)| *rf == ReadFrom::Code)
                {
                    ConditionClass::Metastasis(site, read_from, morph)
                } else if sarcoma && retro.is_some() {
                    let by_text = histology.is_some_and(|(_, rf)| rf == ReadFrom::Text)
                        && !v.by_code("sarcoma-diagnosis", &code)
                        || retro == Some(MatchedBy::Text);
                    ConditionClass::Diagnosis(if by_text {
                        ReadFrom::Text
                    } else {
                        ReadFrom::Code
                    })
                } else if let Some((site, read_from, morph)) = met {
                    ConditionClass::Metastasis(site, read_from, morph)
                } else if retro.is_some() && !self.is_symptom_concept(&code) {
                    ConditionClass::RetroMass
                } else {
                    ConditionClass::Other
                };
                if uncertain && let Some(d) = rec.defects() {
                    // What the extension or profile would have said is unknown: for a
                    // diagnosis, metastasis or mass it is its histology or kind; for any other
                    // Condition, whether it is another primary cancer.
                    let family = if class == ConditionClass::Other {
                        super::HISTORY.family
                    } else {
                        SPEC.family
                    };
                    d.note_blocked(family, "extension");
                }
                ClassifiedCondition {
                    record: rec,
                    code,
                    body,
                    histology,
                    histology_ext,
                    class,
                    sarcoma_or_metastasis: rps_code || sarcoma || met.is_some(),
                }
            })
            .collect()
    }

    /// The mCODE histology extension's value. For an invalid Condition each extension is
    /// read only where intact; `uncertain` is set when a defective one may be it.
    fn histology_extension(&self, rec: &Record<'a>, uncertain: &mut bool) -> Option<&'a Value> {
        let is_histology =
            |e: &Value| str_at(e, "url").is_some_and(|u| u.ends_with(HISTOLOGY_EXTENSION));
        let Some(d) = rec.defects().filter(|d| d.blocks("extension")) else {
            return rec
                .array("extension")
                .find(|e| is_histology(e))
                .and_then(|e| e.get("valueCodeableConcept"));
        };
        if d.blocks_path("/extension/-") {
            *uncertain = true;
            return None;
        }
        let items = rec
            .raw_around_defects("extension")
            .and_then(Value::as_array)?;
        let mut found = None;
        for (i, e) in items.iter().enumerate() {
            let at = format!("/extension/{i}");
            if !d.blocks_path(&at) {
                if found.is_none() && is_histology(e) {
                    found = e.get("valueCodeableConcept");
                }
            } else if d.blocks_path(&format!("{at}/url")) || is_histology(e) {
                *uncertain = true;
            }
        }
        found
    }

    pub(crate) fn read_diagnosis<'r>(
        &self,
        conds: &[ClassifiedCondition<'r, 'a>],
    ) -> DiagnosisFacts<'r, 'a> {
        let _reading = Reading::start(&SPEC);
        let mut dx_conds: Vec<DiagnosisCondition<'r, 'a>> = conds
            .iter()
            .filter_map(|c| match c.class {
                ConditionClass::Diagnosis(rf) => Some((c.record, rf, c.histology)),
                _ => None,
            })
            .collect();
        let retro_masses = conds
            .iter()
            .filter(|c| c.class == ConditionClass::RetroMass)
            .map(|c| c.record.reference.clone())
            .collect();
        // The diagnosis: the earliest RPS Condition that is not itself a recurrence.
        dx_conds.sort_by_key(|(r, _, _)| (r.date().is_none(), r.date()));
        let primary_dx = dx_conds
            .iter()
            .find(|(r, _, _)| !is_recurrence_status(r.first_code("clinicalStatus")));
        let diagnosis = match primary_dx.or(dx_conds.first()) {
            Some((rec, rf, _)) => {
                let lone_recurrence = primary_dx.is_none();
                Some(RpsDiagnosis {
                    condition: rec.reference.clone(),
                    // A lone recurrence-status Condition may carry either date.
                    date: if lone_recurrence { None } else { rec.date() },
                    read_from: *rf,
                    clinical_status: rec.first_code("clinicalStatus").map(str::to_owned),
                })
            }
            None => None,
        };
        let mut recurrence_conds = Vec::new();
        let mut other_diagnosis_conditions = Vec::new();
        let mut histology_cands: Vec<Candidate<Histology>> = Vec::new();
        let dx_ref = diagnosis.as_ref().map(|d| d.condition.as_str());
        for (rec, _, h) in &dx_conds {
            if is_recurrence_status(rec.first_code("clinicalStatus")) {
                recurrence_conds.push(*rec);
            } else if Some(rec.reference.as_str()) != dx_ref {
                other_diagnosis_conditions.push(*rec);
            }
            if let Some((h, rf)) = h {
                histology_cands.push(Candidate::new(rec, *h, *rf));
            }
        }
        let mut histology_observation_dates = Vec::new();
        for rec in self.observations_of(ObservationKind::Histology) {
            histology_observation_dates.push((rec.date(), rec.reference.clone()));
            let vc = value_concept(rec);
            if let Some((h, rf)) = self.histology_of(&vc) {
                histology_cands.push(Candidate::new(rec, h, rf));
            }
        }
        let mut grade_cands = Vec::new();
        let mut grade_unreadable = None;
        for rec in self.observations_of(ObservationKind::Grade) {
            match self.grade_of(rec) {
                Some((g, rf)) => grade_cands.push(Candidate::new(rec, g, rf)),
                None => grade_unreadable = Some(rec.reference.clone()),
            }
        }

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
        DiagnosisFacts {
            diagnosis,
            recurrence_conds,
            other_diagnosis_conditions,
            histology,
            site_retroperitoneal,
            grade,
            age_years: self.age(),
            histology_observation_dates,
            retro_masses,
        }
    }

    /// Histology of a concept: codes of all sets first, then texts with the more specific
    /// (and out-of-scope look-alike) sets before the generic ones.
    pub(crate) fn histology_of(&self, c: &Concept) -> Option<(Histology, ReadFrom)> {
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

    fn grade_of(&self, obs: &Record<'a>) -> Option<(u8, ReadFrom)> {
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

    fn age(&self) -> Fact<u32> {
        let Some(p) = self.input.patient else {
            return self.not_recorded(&["Patient"]);
        };
        let Some(birth) = str_at(p, "birthDate").and_then(json::parse_date) else {
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
                resources: vec![json::reference_of(p)],
                read_from: ReadFrom::Derived,
                date: Some(birth),
                note: None,
            },
        )
    }
}
