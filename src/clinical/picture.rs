//! The clinical picture: every fact of the rule catalogue (docs/clinical-spec.md §1) for one
//! patient at one evaluation time, each either known (value + where it was read) or unknown
//! (with the reason). Rules read only this; nothing here defaults an unknown to false.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// A fact of the picture: known with its provenance, or unknown with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact<T> {
    Known { value: T, provenance: Provenance },
    Unknown(Unknown),
}

/// How a value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// A coding's system + code matched (or a typed value such as `valueInteger`).
    Code,
    /// Only free text (`CodeableConcept.text` / `coding.display`) matched.
    Text,
    /// Computed from other facts (e.g. DFI from two dates, ECOG from Karnofsky).
    Derived,
    /// Closed world: no record of the event exists, so the card says "none recorded".
    Absence,
}

impl ReadFrom {
    /// The word the card uses ("coded", "from text", "derived", "none recorded").
    pub fn label(self) -> &'static str {
        match self {
            ReadFrom::Code => "coded",
            ReadFrom::Text => "from text",
            ReadFrom::Derived => "derived",
            ReadFrom::Absence => "none recorded",
        }
    }
}

/// Where a known value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// Relative references of the resources read ("Observation/ecog-1"); empty for a closed
    /// world absence.
    pub resources: Vec<String>,
    pub read_from: ReadFrom,
    /// The clinical date of the deciding resource, where it has one.
    pub date: Option<NaiveDate>,
    /// A short qualification shown with the value, e.g. "Karnofsky 70 converted" or
    /// "2 MedicationStatement resources were set aside; the list may be incomplete".
    pub note: Option<String>,
}

/// Why a fact is unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// Nothing in the data records it (open-world assessments: grade, ECOG, focality …).
    NotRecorded,
    /// The only resources that could carry it failed FHIR validation and were left out, so
    /// its absence cannot be read as "none".
    SetAside { resource_types: Vec<String> },
    /// The data of these types was withheld as a whole (another patient's records in the
    /// key, or the key could not be read): see [`crate::clinical::WithheldReason`].
    Withheld {
        resource_types: Vec<String>,
        reason: crate::clinical::WithheldReason,
    },
    /// An invalid record that carries it is defective where it records it (references).
    Defective { resources: Vec<String> },
    /// Known only from records that failed validation (references): such a fact may make
    /// advice more cautious but is never the basis of favourable advice or of an absence.
    FromDefective { resources: Vec<String> },
    /// Records disagree in a way latest-wins cannot settle (explanation).
    Conflicting(String),
    /// A resource is there but its value cannot be read (explanation, no patient data).
    Unreadable(String),
    /// Derived from facts that are themselves unknown (their catalogue names).
    DependsOn(Vec<&'static str>),
    /// Only records older than the validity window exist (the date of the latest, if any).
    Outdated {
        last: Option<NaiveDate>,
        max_age_days: u32,
    },
    /// The fact does not apply to this patient (e.g. metastasis timing with no metastasis).
    NotApplicable,
}

impl Unknown {
    /// The reason in plain words for the card ("not recorded", …).
    pub fn reason(&self) -> String {
        match self {
            Unknown::NotRecorded => "not recorded".to_owned(),
            Unknown::SetAside { resource_types } => format!(
                "the {} resources that could record it failed validation and were left out",
                resource_types.join("/")
            ),
            Unknown::Withheld {
                resource_types,
                reason,
            } => format!(
                "the {} data {}",
                resource_types.join("/"),
                match reason {
                    crate::clinical::WithheldReason::OtherPatient =>
                        "held records of another patient and was not used",
                    crate::clinical::WithheldReason::Unavailable => "could not be read",
                }
            ),
            // The records themselves are in the card's extension, not in its words.
            Unknown::Defective { resources } => format!(
                "the {} failed validation at this element",
                if resources.len() == 1 {
                    "record"
                } else {
                    "records"
                }
            ),
            Unknown::FromDefective { resources } => format!(
                "recorded only in {} that failed validation, which favourable advice does not \
                 rely on",
                records(resources.len())
            ),
            Unknown::Conflicting(why) => format!("conflicting records: {why}"),
            Unknown::Unreadable(why) => format!("recorded but unreadable: {why}"),
            Unknown::DependsOn(facts) => format!(
                "depends on {}, not known",
                crate::display::lower_first(&crate::display::labels(facts))
            ),
            Unknown::Outdated { last, max_age_days } => match last {
                Some(d) => format!(
                    "last recorded {}, older than {max_age_days} days",
                    crate::display::date(*d)
                ),
                None => format!("nothing recorded in the last {max_age_days} days"),
            },
            Unknown::NotApplicable => "not applicable".to_owned(),
        }
    }
}

/// "record" or "2 records".
fn records(n: usize) -> String {
    if n == 1 {
        "record".to_owned()
    } else {
        format!("{n} records")
    }
}

impl<T> Fact<T> {
    pub fn known(value: T, provenance: Provenance) -> Self {
        Fact::Known { value, provenance }
    }

    pub fn unknown(reason: Unknown) -> Self {
        Fact::Unknown(reason)
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Fact::Known { .. })
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Fact::Known { value, .. } => Some(value),
            Fact::Unknown(_) => None,
        }
    }

    pub fn provenance(&self) -> Option<&Provenance> {
        match self {
            Fact::Known { provenance, .. } => Some(provenance),
            Fact::Unknown(_) => None,
        }
    }

    pub fn unknown_reason(&self) -> Option<&Unknown> {
        match self {
            Fact::Known { .. } => None,
            Fact::Unknown(u) => Some(u),
        }
    }

    /// Maps a known value, keeping its provenance.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Fact<U> {
        match self {
            Fact::Known { value, provenance } => Fact::Known {
                value: f(value),
                provenance: provenance.clone(),
            },
            Fact::Unknown(u) => Fact::Unknown(u.clone()),
        }
    }

    /// `Some(true)` / `Some(false)` when known, `None` when unknown: a three-valued test that
    /// cannot silently turn unknown into false.
    pub fn test(&self, f: impl FnOnce(&T) -> bool) -> Option<bool> {
        self.value().map(f)
    }
}

impl Fact<bool> {
    /// True only when known to be true.
    pub fn is_true(&self) -> bool {
        self.value() == Some(&true)
    }

    /// True only when known to be false.
    pub fn is_false(&self) -> bool {
        self.value() == Some(&false)
    }
}

/// A value in plain words for a card ("dedifferentiated liposarcoma", "R1", "14.2 months").
pub trait Describe {
    fn describe(&self) -> String;
}

/// The retroperitoneal sarcoma diagnosis that puts the patient in scope (SCOPE-02).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpsDiagnosis {
    /// "Condition/abc".
    pub condition: String,
    /// `onsetDateTime`, else `recordedDate`.
    pub date: Option<NaiveDate>,
    /// How the retroperitoneal sarcoma diagnosis matched (code, or text fallback).
    pub read_from: ReadFrom,
    /// `clinicalStatus` code as recorded (active, recurrence, remission …), if any.
    pub clinical_status: Option<String>,
}

/// Histology (catalogue §1). The last eleven are out of scope (SCOPE-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Histology {
    WdLiposarcoma,
    DdLiposarcoma,
    /// Myxoid, round cell, pleomorphic, or liposarcoma without subtype.
    LiposarcomaOther,
    Leiomyosarcoma,
    SolitaryFibrousTumor,
    Mpnst,
    SynovialSarcoma,
    Ups,
    SarcomaNos,
    Gist,
    Desmoid,
    Ewing,
    Rhabdomyosarcoma,
    Dsrct,
    ClearCellSarcoma,
    Pecoma,
    Imt,
    Carcinosarcoma,
    SarcomatoidCarcinoma,
    TeratomaDerived,
    VisceralOrGynecologic,
    Benign,
}

impl Histology {
    pub const ALL: [Histology; 22] = [
        Histology::WdLiposarcoma,
        Histology::DdLiposarcoma,
        Histology::LiposarcomaOther,
        Histology::Leiomyosarcoma,
        Histology::SolitaryFibrousTumor,
        Histology::Mpnst,
        Histology::SynovialSarcoma,
        Histology::Ups,
        Histology::SarcomaNos,
        Histology::Gist,
        Histology::Desmoid,
        Histology::Ewing,
        Histology::Rhabdomyosarcoma,
        Histology::Dsrct,
        Histology::ClearCellSarcoma,
        Histology::Pecoma,
        Histology::Imt,
        Histology::Carcinosarcoma,
        Histology::SarcomatoidCarcinoma,
        Histology::TeratomaDerived,
        Histology::VisceralOrGynecologic,
        Histology::Benign,
    ];

    /// The RPS recommendations apply (SCOPE-01 stays silent).
    pub fn is_in_scope(self) -> bool {
        matches!(
            self,
            Histology::WdLiposarcoma
                | Histology::DdLiposarcoma
                | Histology::LiposarcomaOther
                | Histology::Leiomyosarcoma
                | Histology::SolitaryFibrousTumor
                | Histology::Mpnst
                | Histology::SynovialSarcoma
                | Histology::Ups
                | Histology::SarcomaNos
        )
    }

    pub fn is_liposarcoma(self) -> bool {
        matches!(
            self,
            Histology::WdLiposarcoma | Histology::DdLiposarcoma | Histology::LiposarcomaOther
        )
    }

    /// The catalogue's name (`dd_liposarcoma`).
    pub fn code(self) -> &'static str {
        match self {
            Histology::WdLiposarcoma => "wd_liposarcoma",
            Histology::DdLiposarcoma => "dd_liposarcoma",
            Histology::LiposarcomaOther => "liposarcoma_other",
            Histology::Leiomyosarcoma => "leiomyosarcoma",
            Histology::SolitaryFibrousTumor => "solitary_fibrous_tumor",
            Histology::Mpnst => "mpnst",
            Histology::SynovialSarcoma => "synovial_sarcoma",
            Histology::Ups => "ups",
            Histology::SarcomaNos => "sarcoma_nos",
            Histology::Gist => "gist",
            Histology::Desmoid => "desmoid",
            Histology::Ewing => "ewing",
            Histology::Rhabdomyosarcoma => "rhabdomyosarcoma",
            Histology::Dsrct => "dsrct",
            Histology::ClearCellSarcoma => "clear_cell_sarcoma",
            Histology::Pecoma => "pecoma",
            Histology::Imt => "imt",
            Histology::Carcinosarcoma => "carcinosarcoma",
            Histology::SarcomatoidCarcinoma => "sarcomatoid_carcinoma",
            Histology::TeratomaDerived => "teratoma_derived",
            Histology::VisceralOrGynecologic => "visceral_or_gynecologic",
            Histology::Benign => "benign",
        }
    }

    /// Plain clinical words for the card.
    pub fn label(self) -> &'static str {
        match self {
            Histology::WdLiposarcoma => "well-differentiated liposarcoma",
            Histology::DdLiposarcoma => "dedifferentiated liposarcoma",
            Histology::LiposarcomaOther => "liposarcoma (other subtype)",
            Histology::Leiomyosarcoma => "leiomyosarcoma",
            Histology::SolitaryFibrousTumor => "solitary fibrous tumour",
            Histology::Mpnst => "malignant peripheral nerve sheath tumour",
            Histology::SynovialSarcoma => "synovial sarcoma",
            Histology::Ups => "undifferentiated pleomorphic sarcoma",
            Histology::SarcomaNos => "sarcoma, not otherwise specified",
            Histology::Gist => "gastrointestinal stromal tumour",
            Histology::Desmoid => "desmoid tumour",
            Histology::Ewing => "Ewing sarcoma",
            Histology::Rhabdomyosarcoma => "rhabdomyosarcoma",
            Histology::Dsrct => "desmoplastic small round cell tumour",
            Histology::ClearCellSarcoma => "clear cell sarcoma",
            Histology::Pecoma => "PEComa",
            Histology::Imt => "inflammatory myofibroblastic tumour",
            Histology::Carcinosarcoma => "carcinosarcoma",
            Histology::SarcomatoidCarcinoma => "sarcomatoid carcinoma",
            Histology::TeratomaDerived => "teratoma-derived sarcoma",
            Histology::VisceralOrGynecologic => "visceral or gynaecological sarcoma",
            Histology::Benign => "benign tumour",
        }
    }
}

/// What a resection removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResectionTarget {
    Primary,
    /// A local recurrence (reasonReference → a recurrence, or retroperitoneal bodySite while
    /// a recurrence was present).
    Recurrence,
    /// A metastasectomy; the site when known, the Condition when referenced.
    Metastasis {
        site: Option<MetastasisSite>,
        condition: Option<String>,
    },
    /// Neither reasonReference nor bodySite says what was resected.
    Unknown,
}

/// Residual tumour classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Completeness {
    R0,
    R1,
    R2,
}

impl Completeness {
    /// R0 or R1 (a "complete" resection in the catalogue's sense).
    pub fn is_complete(self) -> bool {
        matches!(self, Completeness::R0 | Completeness::R1)
    }
}

/// One resection (a completed surgical `Procedure`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resection {
    /// "Procedure/abc".
    pub procedure: String,
    pub date: NaiveDate,
    pub target: ResectionTarget,
    /// Open world: unknown unless a residual tumour Observation records it.
    pub completeness: Fact<Completeness>,
    /// Open world: unknown unless an RPS `rupture-or-piecemeal` Observation records it.
    pub rupture_or_piecemeal: Fact<bool>,
    /// Organs resected with the tumour, counted from the Procedure's non-retroperitoneal
    /// `bodySite` entries; unknown when it lists none.
    pub organs_resected: Fact<u32>,
    /// How the Procedure was recognised as a resection (code or text).
    pub read_from: ReadFrom,
}

/// When a radiotherapy course was given relative to the nearest resection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtTiming {
    PreOperative,
    PostOperative,
    IntraOperative,
    /// No resection is recorded to relate it to (definitive or palliative RT).
    WithoutResection,
}

/// One radiotherapy course (a completed RT `Procedure`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RadiotherapyCourse {
    /// "Procedure/abc".
    pub procedure: String,
    /// Start of the course (`performedPeriod.start` or `performedDateTime`).
    pub date: NaiveDate,
    pub timing: RtTiming,
    /// The resection the timing refers to ("Procedure/…"), when there is one.
    pub relative_to: Option<String>,
    /// Total dose delivered in Gy (mCODE dose-delivered-to-volume, cGy converted); unknown
    /// when not recorded.
    pub total_dose_gy: Fact<f64>,
    pub read_from: ReadFrom,
}

/// Disease state (catalogue §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiseaseState {
    NoEvidenceOfDisease,
    PrimaryUntreated,
    LocalRecurrence,
    DistantMetastasis,
    LocalAndDistant,
}

impl DiseaseState {
    /// The disease state in clinical words (the rules and `describe` share it).
    pub fn label(self) -> &'static str {
        match self {
            DiseaseState::NoEvidenceOfDisease => "no evidence of disease",
            DiseaseState::PrimaryUntreated => "primary tumour not resected",
            DiseaseState::LocalRecurrence => "local recurrence",
            DiseaseState::DistantMetastasis => "distant metastasis",
            DiseaseState::LocalAndDistant => "local recurrence and distant metastasis",
        }
    }

    /// Distant metastasis, with or without local recurrence.
    pub fn is_metastatic(self) -> bool {
        matches!(
            self,
            DiseaseState::DistantMetastasis | DiseaseState::LocalAndDistant
        )
    }

    /// A local recurrence is present (alone or with distant disease).
    pub fn has_local_recurrence(self) -> bool {
        matches!(
            self,
            DiseaseState::LocalRecurrence | DiseaseState::LocalAndDistant
        )
    }
}

/// One local recurrence episode (docs/input-profile.md "local recurrence").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecurrenceEpisode {
    /// The Condition (a) or disease-status Observation (b) that records it.
    pub source: String,
    /// Date of detection.
    pub detected: NaiveDate,
    /// Not known to be treated: no later complete (R0/R1) resection of it and not
    /// resolved / in remission.
    pub active: bool,
    /// The resection that removed it, when one is recorded after its detection.
    pub resected_by: Option<String>,
    /// Codes of the recurrence's `bodySite` ("system|code" or text), for focality.
    pub body_sites: Vec<String>,
    pub read_from: ReadFrom,
    /// The episode this record belongs to (1 = first recurrence): several records before a
    /// complete resection or a record of no evidence of disease are one episode.
    pub number: u32,
}

/// Unifocal or multifocal recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Focality {
    Unifocal,
    Multifocal,
}

/// Metastasis site (catalogue §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetastasisSite {
    Lung,
    Liver,
    Bone,
    Brain,
    SoftTissue,
    Peritoneum,
    Pleura,
    Adrenal,
    Other,
}

impl MetastasisSite {
    pub fn label(self) -> &'static str {
        match self {
            MetastasisSite::Lung => "lung",
            MetastasisSite::Liver => "liver",
            MetastasisSite::Bone => "bone",
            MetastasisSite::Brain => "brain",
            MetastasisSite::SoftTissue => "soft tissue",
            MetastasisSite::Peritoneum => "peritoneum",
            MetastasisSite::Pleura => "pleura",
            MetastasisSite::Adrenal => "adrenal",
            MetastasisSite::Other => "other site",
        }
    }
}

/// One recorded distant metastasis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metastasis {
    /// "Condition/abc", or the distant disease-status "Observation/…".
    pub source: String,
    /// `None` when neither code nor bodySite names a site.
    pub site: Option<MetastasisSite>,
    /// `onsetDateTime`, else `recordedDate` / `effective[x]`.
    pub detected: Option<NaiveDate>,
    /// False when resolved / in remission, or removed by a complete metastasectomy.
    pub active: bool,
    /// Lies in the abdomen outside the liver (peritoneal, mesenteric, omental): counts
    /// towards sarcomatosis.
    pub intra_abdominal: bool,
    pub read_from: ReadFrom,
}

/// Synchronous or metachronous metastasis (catalogue §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetastasisTiming {
    Synchronous,
    Metachronous,
}

/// A critical structure involved by tumour (LR-02, resectability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticalStructure {
    Aorta,
    SuperiorMesentericVessels,
    PortaHepatisOrPortalVein,
    NerveRootOrPlexus,
}

impl CriticalStructure {
    pub fn label(self) -> &'static str {
        match self {
            CriticalStructure::Aorta => "aorta",
            CriticalStructure::SuperiorMesentericVessels => "superior mesenteric vessels",
            CriticalStructure::PortaHepatisOrPortalVein => "porta hepatis / portal vein",
            CriticalStructure::NerveRootOrPlexus => "major nerve root or plexus",
        }
    }
}

/// Clinician's resectability assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resectability {
    Resectable,
    Borderline,
    Unresectable,
}

impl Resectability {
    /// "borderline resectable".
    pub fn label(self) -> &'static str {
        match self {
            Resectability::Resectable => "resectable",
            Resectability::Borderline => "borderline resectable",
            Resectability::Unresectable => "unresectable",
        }
    }
}

/// A symptom kind the catalogue names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SymptomKind {
    Pain,
    Obstruction,
    Dyspnoea,
    CordCompression,
}

impl SymptomKind {
    pub fn label(self) -> &'static str {
        match self {
            SymptomKind::Pain => "pain",
            SymptomKind::Obstruction => "bowel obstruction",
            SymptomKind::Dyspnoea => "dyspnoea",
            SymptomKind::CordCompression => "spinal cord compression",
        }
    }
}

/// One current symptom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Symptom {
    pub kind: SymptomKind,
    /// Bone pain (bone-symptom value set, or pain with a bone bodySite): ORD-17.
    pub bone: bool,
    /// "Condition/…" or "Observation/…".
    pub source: String,
    pub date: Option<NaiveDate>,
    pub read_from: ReadFrom,
}

/// A systemic agent the catalogue names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    Doxorubicin,
    Epirubicin,
    Ifosfamide,
    Dacarbazine,
    Gemcitabine,
    Docetaxel,
    Pazopanib,
    Eribulin,
    Trabectedin,
    Olaratumab,
    Cyclophosphamide,
}

impl Agent {
    pub const ALL: [Agent; 11] = [
        Agent::Doxorubicin,
        Agent::Epirubicin,
        Agent::Ifosfamide,
        Agent::Dacarbazine,
        Agent::Gemcitabine,
        Agent::Docetaxel,
        Agent::Pazopanib,
        Agent::Eribulin,
        Agent::Trabectedin,
        Agent::Olaratumab,
        Agent::Cyclophosphamide,
    ];

    pub fn is_anthracycline(self) -> bool {
        matches!(self, Agent::Doxorubicin | Agent::Epirubicin)
    }

    /// The value set that recognises the agent (knowledge/valuesets/drug-*.json).
    pub fn value_set(self) -> &'static str {
        match self {
            Agent::Doxorubicin => "drug-doxorubicin",
            Agent::Epirubicin => "drug-epirubicin",
            Agent::Ifosfamide => "drug-ifosfamide",
            Agent::Dacarbazine => "drug-dacarbazine",
            Agent::Gemcitabine => "drug-gemcitabine",
            Agent::Docetaxel => "drug-docetaxel",
            Agent::Pazopanib => "drug-pazopanib",
            Agent::Eribulin => "drug-eribulin",
            Agent::Trabectedin => "drug-trabectedin",
            Agent::Olaratumab => "drug-olaratumab",
            Agent::Cyclophosphamide => "drug-cyclophosphamide",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Agent::Doxorubicin => "doxorubicin",
            Agent::Epirubicin => "epirubicin",
            Agent::Ifosfamide => "ifosfamide",
            Agent::Dacarbazine => "dacarbazine",
            Agent::Gemcitabine => "gemcitabine",
            Agent::Docetaxel => "docetaxel",
            Agent::Pazopanib => "pazopanib",
            Agent::Eribulin => "eribulin",
            Agent::Trabectedin => "trabectedin",
            Agent::Olaratumab => "olaratumab",
            Agent::Cyclophosphamide => "cyclophosphamide",
        }
    }
}

/// Disease-status value (mCODE cancer disease status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiseaseStatus {
    /// SCT 268910001 improved (regression).
    Improved,
    /// SCT 359746009 stable.
    Stable,
    /// SCT 271299001 worsened (progression).
    Worsened,
}

/// Best response on a line of systemic therapy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Regression,
    Stable,
    Progression,
}

/// One line of systemic therapy: agents started together (within 30 days of the line's
/// start); a new agent later than that opens the next line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemicLine {
    /// 1 for first line.
    pub number: u32,
    pub start: NaiveDate,
    /// Last administration / statement date of the line.
    pub end: NaiveDate,
    pub agents: BTreeSet<Agent>,
    /// The medication resources of the line.
    pub resources: Vec<String>,
    /// Best response recorded during the line; `None` when no disease status was recorded.
    pub best_response: Option<Response>,
    /// Longest span (months) of consecutive stable/improved results during the line.
    pub stable_months: Option<f64>,
    /// The latest response during the line (for progression on the current/last line).
    pub last_response: Option<Response>,
    /// Whether the line is still being given: `Some(true)` when a record of it is active or
    /// in progress, `Some(false)` when an order or statement of it is completed or stopped
    /// and none is active, `None` when only administrations are recorded (they do not say).
    pub ongoing: Option<bool>,
    /// A record of the line was stopped for toxicity or intolerance (its status reason).
    pub intolerance: bool,
}

/// Systemic therapy history (closed world: none recorded = no lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemicHistory {
    pub lines: Vec<SystemicLine>,
    pub agents: BTreeSet<Agent>,
}

/// Prior cumulative anthracycline dose, doxorubicin-equivalent mg/m²
/// (docs/clinical-spec.md §4.1): valid, de-duplicated administrations give a lower bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnthracyclineDose {
    /// The dose the records prove: the cumulative dose is at least this.
    pub at_least_mg_m2: f64,
    /// The cumulative dose itself: known only when every anthracycline record has an
    /// established dose and no medication data is missing; otherwise unknown with the reason
    /// (the lower bound still holds).
    pub total_mg_m2: Fact<f64>,
    /// The administrations (and body-surface-area Observations) counted.
    pub counted: Vec<String>,
    /// Anthracycline records whose dose could not be established.
    pub without_dose: Vec<DoseGap>,
}

impl AnthracyclineDose {
    /// The dose is established exactly (not only a lower bound).
    pub fn is_exact(&self) -> bool {
        self.total_mg_m2.is_known()
    }
}

/// An anthracycline record that adds an unknown amount to the cumulative dose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoseGap {
    /// "MedicationAdministration/…", "MedicationStatement/…".
    pub source: String,
    pub agent: Agent,
    pub date: Option<NaiveDate>,
    /// Why its dose is unknown, in plain words ("no dose recorded").
    pub reason: String,
}

impl SystemicHistory {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// The clinical picture of one patient at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Picture {
    /// Evaluation time; every "within N days" is measured back from it. Data dated after it
    /// is ignored so that an evaluation at a fixed time is reproducible.
    pub as_of: DateTime<Utc>,
    /// "Patient/abc" when a Patient resource was given.
    pub patient: Option<String>,
    /// `None`: no retroperitoneal sarcoma diagnosis, so the service stays silent (SCOPE-02),
    /// except ORD-16 on `undiagnosed_retroperitoneal_masses`.
    pub diagnosis: Option<RpsDiagnosis>,
    pub histology: Fact<Histology>,
    /// Primary tumour site is the retroperitoneum.
    pub site_retroperitoneal: Fact<bool>,
    /// FNCLCC grade 1–3 (open world).
    pub grade: Fact<u8>,
    pub age_years: Fact<u32>,
    /// Every resection, oldest first.
    pub resections: Vec<Resection>,
    /// The resection of the primary tumour; known `None` when none is recorded (closed
    /// world: the primary is untreated).
    pub primary_resection: Fact<Option<Resection>>,
    /// Metastasectomies (resections whose target is a metastasis), oldest first.
    pub metastasectomies: Vec<Resection>,
    /// Radiotherapy courses, oldest first (closed world: empty = none recorded).
    pub radiotherapy: Fact<Vec<RadiotherapyCourse>>,
    pub disease_state: Fact<DiseaseState>,
    /// Every local recurrence episode, oldest first.
    pub recurrence_episodes: Vec<RecurrenceEpisode>,
    /// Number of local recurrence episodes (the current one's number).
    pub recurrence_number: Fact<u32>,
    /// The latest episode when it is still active.
    pub current_recurrence: Option<RecurrenceEpisode>,
    pub focality: Fact<Focality>,
    pub recurrence_biopsied: Fact<bool>,
    /// Every recorded metastasis (active and treated), oldest first.
    pub metastases: Vec<Metastasis>,
    /// Distant disease present: true when an active metastasis is recorded; false only when
    /// a CT chest lies within `staging_ct_max_age_days` and none is recorded.
    pub distant_disease: Fact<bool>,
    /// Sites of active metastases.
    pub metastasis_sites: Fact<BTreeSet<MetastasisSite>>,
    pub metastasis_timing: Fact<MetastasisTiming>,
    pub synchronous_local_distant: Fact<bool>,
    pub sarcomatosis: Fact<bool>,
    /// Known only from an Observation that records a lesion count (docs/clinical-spec.md §4.1).
    pub metastatic_lesion_count: Fact<u32>,
    /// Lower bound of the lesion count from the active metastasis Conditions (one lesion per
    /// distinct Condition; peritoneal, "multiple" and sarcomatosis Conditions give none).
    /// Unknown (not applicable) when no Condition gives a count.
    pub metastatic_lesions_at_least: Fact<u32>,
    /// `metastatic_lesion_count` ≤ `low_volume_max_lesions`; false also when the lower bound
    /// exceeds it (a lower bound never makes it true).
    pub low_volume: Fact<bool>,
    /// Months from the last complete (R0/R1) resection to detection of the current
    /// recurrence or metastasis.
    pub dfi_months: Fact<f64>,
    /// Active metastases detected after a metastasectomy (MET-09).
    pub recurrent_metastases_after_metastasectomy: Fact<bool>,
    /// Critical structures involved (empty: assessed, none involved).
    pub critical_structures: Fact<Vec<CriticalStructure>>,
    /// Clinician assessment; else unresectable when a critical structure is involved.
    pub resectability: Fact<Resectability>,
    /// ECOG 0–5 (Karnofsky converted).
    pub ecog: Fact<u8>,
    /// Current symptoms from affirmative records (presence is closed world: empty = none
    /// recorded). Not an absence of symptoms: see `symptomatic`.
    pub symptoms: Fact<Vec<Symptom>>,
    /// Tumour-related symptoms (docs/clinical-spec.md §4.1): true from an affirmative record;
    /// false only from a symptom assessment that found none within
    /// `symptom_assessment_max_age_days`, with no affirmative record after it; else unknown.
    pub symptomatic: Fact<bool>,
    /// Latest disease-status Observation (open world).
    pub latest_disease_status: Fact<DiseaseStatus>,
    pub systemic_history: Fact<SystemicHistory>,
    /// Prior anthracycline exposure (any doxorubicin/epirubicin record, for any cancer),
    /// known even when its dose is not; unknown, not "none", when medication records were
    /// set aside or could not be had.
    pub prior_anthracycline: Fact<bool>,
    /// Prior cumulative anthracycline dose as a lower bound.
    pub anthracycline_dose: AnthracyclineDose,
    /// Cardiomyopathy or heart failure: a Condition, or the latest LVEF below
    /// `lvef_min_percent` (ORD-20, SYS-02).
    pub cardiomyopathy_or_heart_failure: Fact<bool>,
    /// Renal impairment: a chronic kidney disease Condition, or the latest eGFR below
    /// `egfr_min` (ORD-20).
    pub renal_impairment: Fact<bool>,
    /// Regression, or stable disease for ≥ `favorable_stable_months`, on systemic therapy.
    /// Named as the catalogue names the fact (its American spelling is the fact's name in
    /// responses); other identifiers spell "favourable".
    pub favorable_systemic_response: Fact<bool>,
    /// Progression during the current or last line.
    pub progression_on_systemic: Fact<bool>,
    /// Latest body surface area (m², LOINC 8277-6): converts mg doses of draft orders.
    pub body_surface_area_m2: Fact<f64>,
    pub li_fraumeni: Fact<bool>,
    pub second_malignancy: Fact<bool>,
    pub current_smoker: Fact<bool>,
    /// Date of the latest PFT (closed world: known `None` = none recorded).
    pub last_pft: Fact<Option<NaiveDate>>,
    /// A PFT within `pft_validity_days`.
    pub pulmonary_function_tested: Fact<bool>,
    /// Latest CT chest (a CT chest/abdomen/pelvis counts); closed world.
    pub last_ct_chest: Fact<Option<NaiveDate>>,
    /// Latest CT abdomen/pelvis (a CT chest/abdomen/pelvis counts); closed world.
    pub last_ct_abdomen_pelvis: Fact<Option<NaiveDate>>,
    /// Latest bone scan or FDG-PET; closed world.
    pub last_bone_or_pet: Fact<Option<NaiveDate>>,
    /// Latest imaging study of any recognised kind (MET-08); closed world.
    pub last_imaging: Fact<Option<NaiveDate>>,
    /// Latest record of an expert sarcoma pathology review (PATH-01); closed world.
    pub expert_pathology_review: Fact<Option<NaiveDate>>,
    /// Latest molecular pathology test (MDM2, FISH, fusion; PATH-01); closed world.
    pub molecular_test: Fact<Option<NaiveDate>>,
    /// The active metastases have a tissue diagnosis (WORK-06); not applicable without one.
    pub metastasis_biopsied: Fact<bool>,
    /// Retroperitoneal Conditions that are not a sarcoma diagnosis ("Condition/…"): masses
    /// still awaiting a diagnosis, for ORD-16.
    pub undiagnosed_retroperitoneal_masses: Vec<String>,
    /// Resources left out by validation, per type (count), for DATA-02.
    pub set_aside: Vec<SetAsideCount>,
    /// Records that failed validation but were read element by element, some value taken
    /// from them ("Observation/x"). A fact whose provenance names one of them counts as
    /// unknown for favourable advice ([`Picture::cautious`]).
    pub read_in_part: Vec<String>,
    /// Records that failed validation where a reader needed them: what they record there is
    /// unknown (`Unknown::Defective`).
    pub defects_met: Vec<String>,
}

/// How many resources of one type were set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAsideCount {
    pub resource_type: String,
    pub count: usize,
}

impl Picture {
    /// Whether `fact` was read from a record that failed validation.
    pub fn from_defective<T>(&self, fact: &Fact<T>) -> bool {
        fact.provenance()
            .is_some_and(|p| p.resources.iter().any(|r| self.read_in_part.contains(r)))
    }

    /// The picture favourable or permissive advice may rely on (§4.1 asymmetry): every fact
    /// read from a record that failed validation is unknown. `None` when no such record was
    /// read (the picture itself).
    pub fn cautious(&self) -> Option<Picture> {
        if self.read_in_part.is_empty() {
            return None;
        }
        let bad = &self.read_in_part;
        fn strip<T: Clone>(f: &mut Fact<T>, bad: &[String]) {
            let hit: Vec<String> = f
                .provenance()
                .map(|p| {
                    p.resources
                        .iter()
                        .filter(|r| bad.contains(r))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if !hit.is_empty() {
                *f = Fact::Unknown(Unknown::FromDefective { resources: hit });
            }
        }
        let mut p = self.clone();
        for r in p.resections.iter_mut().chain(p.metastasectomies.iter_mut()) {
            strip(&mut r.completeness, bad);
            strip(&mut r.rupture_or_piecemeal, bad);
            strip(&mut r.organs_resected, bad);
        }
        if let Fact::Known { value: Some(r), .. } = &mut p.primary_resection {
            strip(&mut r.completeness, bad);
            strip(&mut r.rupture_or_piecemeal, bad);
            strip(&mut r.organs_resected, bad);
        }
        strip(&mut p.histology, bad);
        strip(&mut p.site_retroperitoneal, bad);
        strip(&mut p.grade, bad);
        strip(&mut p.age_years, bad);
        strip(&mut p.primary_resection, bad);
        strip(&mut p.radiotherapy, bad);
        strip(&mut p.disease_state, bad);
        strip(&mut p.recurrence_number, bad);
        strip(&mut p.focality, bad);
        strip(&mut p.recurrence_biopsied, bad);
        strip(&mut p.distant_disease, bad);
        strip(&mut p.metastasis_sites, bad);
        strip(&mut p.metastasis_timing, bad);
        strip(&mut p.synchronous_local_distant, bad);
        strip(&mut p.sarcomatosis, bad);
        strip(&mut p.metastatic_lesion_count, bad);
        strip(&mut p.low_volume, bad);
        strip(&mut p.dfi_months, bad);
        strip(&mut p.recurrent_metastases_after_metastasectomy, bad);
        strip(&mut p.critical_structures, bad);
        strip(&mut p.resectability, bad);
        strip(&mut p.ecog, bad);
        strip(&mut p.symptoms, bad);
        strip(&mut p.latest_disease_status, bad);
        strip(&mut p.systemic_history, bad);
        strip(&mut p.favorable_systemic_response, bad);
        strip(&mut p.progression_on_systemic, bad);
        strip(&mut p.body_surface_area_m2, bad);
        strip(&mut p.li_fraumeni, bad);
        strip(&mut p.second_malignancy, bad);
        strip(&mut p.current_smoker, bad);
        strip(&mut p.last_pft, bad);
        strip(&mut p.pulmonary_function_tested, bad);
        strip(&mut p.last_ct_chest, bad);
        strip(&mut p.last_ct_abdomen_pelvis, bad);
        strip(&mut p.last_bone_or_pet, bad);
        strip(&mut p.last_imaging, bad);
        strip(&mut p.expert_pathology_review, bad);
        strip(&mut p.molecular_test, bad);
        strip(&mut p.metastasis_biopsied, bad);
        strip(&mut p.metastatic_lesions_at_least, bad);
        strip(&mut p.symptomatic, bad);
        strip(&mut p.prior_anthracycline, bad);
        strip(&mut p.anthracycline_dose.total_mg_m2, bad);
        strip(&mut p.cardiomyopathy_or_heart_failure, bad);
        strip(&mut p.renal_impairment, bad);
        Some(p)
    }
}
