//! The catalogue's named parameters (docs/clinical-spec.md §1): thresholds that the sources do not
//! fix, or fix in words only. Defaults and provenance live in `knowledge/parameters.json`;
//! configuration may override any of them (`[parameters]` in the config file). Every card that
//! relied on one prints the value it used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Identifies one parameter; its `name()` is the key in `knowledge/parameters.json` and in the
/// configuration. The variants mirror the keys as the catalogue spells them (`favorable_…`:
/// sites already set these keys), so they keep that spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterId {
    FavorableDfiMonths,
    FavorableStableMonths,
    PoorEcogMin,
    SynchronousWindowDays,
    LowVolumeMaxLesions,
    StagingCtMaxAgeDays,
    DoxorubicinLifetimeMaxMgM2,
    EpirubicinToDoxorubicinFactor,
    PftValidityDays,
    SurveillanceGraceDays,
    MaxCards,
    SymptomAssessmentMaxAgeDays,
    LvefMinPercent,
    EgfrMin,
    SurveillanceAssessmentMaxAgeDays,
}

impl ParameterId {
    pub const ALL: [ParameterId; 15] = [
        ParameterId::FavorableDfiMonths,
        ParameterId::FavorableStableMonths,
        ParameterId::PoorEcogMin,
        ParameterId::SynchronousWindowDays,
        ParameterId::LowVolumeMaxLesions,
        ParameterId::StagingCtMaxAgeDays,
        ParameterId::DoxorubicinLifetimeMaxMgM2,
        ParameterId::EpirubicinToDoxorubicinFactor,
        ParameterId::PftValidityDays,
        ParameterId::SurveillanceGraceDays,
        ParameterId::MaxCards,
        ParameterId::SymptomAssessmentMaxAgeDays,
        ParameterId::LvefMinPercent,
        ParameterId::EgfrMin,
        ParameterId::SurveillanceAssessmentMaxAgeDays,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ParameterId::FavorableDfiMonths => "favorable_dfi_months",
            ParameterId::FavorableStableMonths => "favorable_stable_months",
            ParameterId::PoorEcogMin => "poor_ecog_min",
            ParameterId::SynchronousWindowDays => "synchronous_window_days",
            ParameterId::LowVolumeMaxLesions => "low_volume_max_lesions",
            ParameterId::StagingCtMaxAgeDays => "staging_ct_max_age_days",
            ParameterId::DoxorubicinLifetimeMaxMgM2 => "doxorubicin_lifetime_max_mg_m2",
            ParameterId::EpirubicinToDoxorubicinFactor => "epirubicin_to_doxorubicin_factor",
            ParameterId::PftValidityDays => "pft_validity_days",
            ParameterId::SurveillanceGraceDays => "surveillance_grace_days",
            ParameterId::MaxCards => "max_cards",
            ParameterId::SymptomAssessmentMaxAgeDays => "symptom_assessment_max_age_days",
            ParameterId::LvefMinPercent => "lvef_min_percent",
            ParameterId::EgfrMin => "egfr_min",
            ParameterId::SurveillanceAssessmentMaxAgeDays => "surveillance_assessment_max_age_days",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whole-number parameters (days, months, counts, ECOG) must be integers when overridden.
    fn is_integer(self) -> bool {
        !matches!(
            self,
            ParameterId::DoxorubicinLifetimeMaxMgM2 | ParameterId::EpirubicinToDoxorubicinFactor
        )
    }

    /// Inclusive bounds that keep an override clinically meaningful.
    fn bounds(self) -> (f64, f64) {
        match self {
            ParameterId::PoorEcogMin => (1.0, 4.0),
            ParameterId::EpirubicinToDoxorubicinFactor => (0.1, 2.0),
            ParameterId::DoxorubicinLifetimeMaxMgM2 => (50.0, 1000.0),
            ParameterId::LowVolumeMaxLesions => (1.0, 50.0),
            ParameterId::MaxCards => (1.0, 50.0),
            ParameterId::LvefMinPercent => (10.0, 80.0),
            ParameterId::EgfrMin => (5.0, 120.0),
            _ => (1.0, 3650.0),
        }
    }
}

/// One entry of `knowledge/parameters.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterDefinition {
    pub name: String,
    /// The parameter as a clinical threshold, with `{value}` where the value in force goes
    /// ("poor performance status from ECOG {value}"): cards show this, never the name.
    pub label: String,
    pub default: f64,
    pub unit: String,
    pub description: String,
    /// Where the default comes from: a seed statement (e.g. "TMC 25") or "EXT: …".
    pub source: String,
}

/// The parameter values in force: defaults from the knowledge base with configured overrides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameters {
    pub favorable_dfi_months: u32,
    pub favorable_stable_months: u32,
    pub poor_ecog_min: u8,
    pub synchronous_window_days: u32,
    pub low_volume_max_lesions: u32,
    pub staging_ct_max_age_days: u32,
    pub doxorubicin_lifetime_max_mg_m2: f64,
    pub epirubicin_to_doxorubicin_factor: f64,
    pub pft_validity_days: u32,
    pub surveillance_grace_days: u32,
    /// Cards per response before the lowest-priority ones are left out (§5).
    pub max_cards: u32,
    /// A symptom assessment older than this does not establish "not symptomatic".
    pub symptom_assessment_max_age_days: u32,
    /// LVEF (%) below this counts as cardiomyopathy or heart failure.
    pub lvef_min_percent: u32,
    /// eGFR (mL/min/1.73 m²) below this counts as renal impairment.
    pub egfr_min: u32,
    /// A disease-status or response record older than this does not show that metastatic
    /// disease is not progressing (MET-11).
    pub surveillance_assessment_max_age_days: u32,
    /// Which values differ from the knowledge base's defaults (shown in cards).
    #[serde(skip)]
    overridden: Vec<ParameterId>,
    /// The clinical labels of `knowledge/parameters.json` (presentation only).
    #[serde(skip)]
    labels: Labels,
}

/// Parameter labels by id. Presentation, not a value: two parameter sets with the same values
/// are equal whatever their labels.
#[derive(Debug, Clone, Default)]
struct Labels(BTreeMap<ParameterId, String>);

impl PartialEq for Labels {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The labels of the knowledge base compiled into the binary, for [`Parameters::default`].
static EMBEDDED_LABELS: std::sync::LazyLock<BTreeMap<ParameterId, String>> =
    std::sync::LazyLock::new(|| {
        let defs: Vec<ParameterDefinition> =
            serde_json::from_str(include_str!("../../knowledge/parameters.json"))
                .unwrap_or_default();
        defs.into_iter()
            .filter_map(|d| ParameterId::from_name(&d.name).map(|id| (id, d.label)))
            .collect()
    });

impl Default for Parameters {
    /// The catalogue's defaults (docs/clinical-spec.md §1). `knowledge/parameters.json` must
    /// agree; a test checks it.
    fn default() -> Self {
        Self {
            favorable_dfi_months: 12,
            favorable_stable_months: 6,
            poor_ecog_min: 3,
            synchronous_window_days: 90,
            low_volume_max_lesions: 5,
            staging_ct_max_age_days: 30,
            doxorubicin_lifetime_max_mg_m2: 450.0,
            epirubicin_to_doxorubicin_factor: 0.5,
            pft_validity_days: 90,
            surveillance_grace_days: 30,
            max_cards: 8,
            symptom_assessment_max_age_days: 90,
            lvef_min_percent: 50,
            egfr_min: 60,
            surveillance_assessment_max_age_days: 120,
            overridden: Vec::new(),
            labels: Labels(EMBEDDED_LABELS.clone()),
        }
    }
}

impl Parameters {
    /// Builds the values in force from the knowledge base's definitions and configured
    /// overrides. Every parameter must be defined exactly once; overrides must name a known
    /// parameter and stay within its bounds.
    pub fn resolve(
        definitions: &[ParameterDefinition],
        overrides: &BTreeMap<String, f64>,
    ) -> Result<Self, ParameterError> {
        let mut values = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for def in definitions {
            let id = ParameterId::from_name(&def.name)
                .ok_or_else(|| ParameterError::Unknown(def.name.clone()))?;
            if values.insert(id, def.default).is_some() {
                return Err(ParameterError::Duplicate(def.name.clone()));
            }
            if !def.label.contains("{value}") || def.label.contains(id.name()) {
                return Err(ParameterError::Label(id.name()));
            }
            labels.insert(id, def.label.clone());
        }
        if let Some(missing) = ParameterId::ALL.iter().find(|id| !values.contains_key(id)) {
            return Err(ParameterError::Undefined(missing.name()));
        }
        let mut overridden = Vec::new();
        for (name, value) in overrides {
            let id = ParameterId::from_name(name)
                .ok_or_else(|| ParameterError::Unknown(name.clone()))?;
            if values.get(&id) != Some(value) {
                overridden.push(id);
            }
            values.insert(id, *value);
        }
        for (id, value) in &values {
            let (lo, hi) = id.bounds();
            if !value.is_finite() || *value < lo || *value > hi {
                return Err(ParameterError::OutOfRange {
                    name: id.name(),
                    value: *value,
                    lo,
                    hi,
                });
            }
            if id.is_integer() && value.fract() != 0.0 {
                return Err(ParameterError::NotInteger {
                    name: id.name(),
                    value: *value,
                });
            }
        }
        let v = |id: ParameterId| values[&id];
        Ok(Self {
            favorable_dfi_months: v(ParameterId::FavorableDfiMonths) as u32,
            favorable_stable_months: v(ParameterId::FavorableStableMonths) as u32,
            poor_ecog_min: v(ParameterId::PoorEcogMin) as u8,
            synchronous_window_days: v(ParameterId::SynchronousWindowDays) as u32,
            low_volume_max_lesions: v(ParameterId::LowVolumeMaxLesions) as u32,
            staging_ct_max_age_days: v(ParameterId::StagingCtMaxAgeDays) as u32,
            doxorubicin_lifetime_max_mg_m2: v(ParameterId::DoxorubicinLifetimeMaxMgM2),
            epirubicin_to_doxorubicin_factor: v(ParameterId::EpirubicinToDoxorubicinFactor),
            pft_validity_days: v(ParameterId::PftValidityDays) as u32,
            surveillance_grace_days: v(ParameterId::SurveillanceGraceDays) as u32,
            max_cards: v(ParameterId::MaxCards) as u32,
            symptom_assessment_max_age_days: v(ParameterId::SymptomAssessmentMaxAgeDays) as u32,
            lvef_min_percent: v(ParameterId::LvefMinPercent) as u32,
            egfr_min: v(ParameterId::EgfrMin) as u32,
            surveillance_assessment_max_age_days: v(ParameterId::SurveillanceAssessmentMaxAgeDays)
                as u32,
            overridden,
            labels: Labels(labels),
        })
    }

    /// The value in force, as printed in a card ("favorable_dfi_months = 12").
    pub fn display(&self, id: ParameterId) -> String {
        let value = match id {
            ParameterId::FavorableDfiMonths => self.favorable_dfi_months.to_string(),
            ParameterId::FavorableStableMonths => self.favorable_stable_months.to_string(),
            ParameterId::PoorEcogMin => self.poor_ecog_min.to_string(),
            ParameterId::SynchronousWindowDays => self.synchronous_window_days.to_string(),
            ParameterId::LowVolumeMaxLesions => self.low_volume_max_lesions.to_string(),
            ParameterId::StagingCtMaxAgeDays => self.staging_ct_max_age_days.to_string(),
            ParameterId::DoxorubicinLifetimeMaxMgM2 => {
                self.doxorubicin_lifetime_max_mg_m2.to_string()
            }
            ParameterId::EpirubicinToDoxorubicinFactor => {
                self.epirubicin_to_doxorubicin_factor.to_string()
            }
            ParameterId::PftValidityDays => self.pft_validity_days.to_string(),
            ParameterId::SurveillanceGraceDays => self.surveillance_grace_days.to_string(),
            ParameterId::MaxCards => self.max_cards.to_string(),
            ParameterId::SymptomAssessmentMaxAgeDays => {
                self.symptom_assessment_max_age_days.to_string()
            }
            ParameterId::LvefMinPercent => self.lvef_min_percent.to_string(),
            ParameterId::EgfrMin => self.egfr_min.to_string(),
            ParameterId::SurveillanceAssessmentMaxAgeDays => {
                self.surveillance_assessment_max_age_days.to_string()
            }
        };
        if self.overridden.contains(&id) {
            format!("{value} (site configuration)")
        } else {
            value
        }
    }
}

/// Where a parameter value in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParameterSource {
    /// The default of `knowledge/parameters.json` (the catalogue).
    CatalogueDefault,
    /// A `[parameters]` override in the site's configuration that differs from the default.
    SiteConfiguration,
}

/// One parameter of a [`ParameterSet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterValue {
    pub value: f64,
    pub source: ParameterSource,
}

/// The effective parameter set of a running service, as the audit trail records it: every
/// value with where it came from, identified by a digest so identical sets are stored once
/// and a response can name the set that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterSet {
    /// SHA-256 (lower-case hex) of the compact JSON of `parameters` (keys sorted).
    pub digest: String,
    pub parameters: BTreeMap<String, ParameterValue>,
}

impl ParameterSet {
    /// The set with its digest computed from `parameters`.
    pub fn new(parameters: BTreeMap<String, ParameterValue>) -> Self {
        use sha2::{Digest, Sha256};
        // A BTreeMap of plain structs always serializes the same bytes for the same values.
        let bytes = serde_json::to_vec(&parameters).unwrap_or_default();
        Self {
            digest: hex::encode(Sha256::digest(&bytes)),
            parameters,
        }
    }

    /// The site-configuration overrides of this set, as `[parameters]` would give them.
    pub fn overrides(&self) -> BTreeMap<String, f64> {
        self.parameters
            .iter()
            .filter(|(_, v)| v.source == ParameterSource::SiteConfiguration)
            .map(|(k, v)| (k.clone(), v.value))
            .collect()
    }
}

impl Parameters {
    /// The parameter as a clinical threshold with the value in force and where it comes from:
    /// "poor performance status from ECOG 3 — catalogue default" ("— site setting" when the
    /// site's configuration changed it).
    pub fn threshold(&self, id: ParameterId) -> String {
        let origin = if self.overridden.contains(&id) {
            "site setting"
        } else {
            "catalogue default"
        };
        format!("{} — {origin}", self.threshold_text(id))
    }

    /// The threshold without its origin ("poor performance status from ECOG 3").
    pub fn threshold_text(&self, id: ParameterId) -> String {
        let value = self.number(id);
        match self.labels.0.get(&id) {
            Some(label) => label.replace("{value}", &value),
            // Only a set built without definitions lacks labels; still no key in the text.
            None => format!("{} {value}", id.name().replace('_', " ")),
        }
    }

    /// Whether the site's configuration set this value.
    pub fn is_site_setting(&self, id: ParameterId) -> bool {
        self.overridden.contains(&id)
    }

    /// The value in force as printed ("3", "0.5").
    fn number(&self, id: ParameterId) -> String {
        let v = self.value(id);
        if v.fract() == 0.0 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    }

    /// The value in force as a number.
    pub fn value(&self, id: ParameterId) -> f64 {
        match id {
            ParameterId::FavorableDfiMonths => f64::from(self.favorable_dfi_months),
            ParameterId::FavorableStableMonths => f64::from(self.favorable_stable_months),
            ParameterId::PoorEcogMin => f64::from(self.poor_ecog_min),
            ParameterId::SynchronousWindowDays => f64::from(self.synchronous_window_days),
            ParameterId::LowVolumeMaxLesions => f64::from(self.low_volume_max_lesions),
            ParameterId::StagingCtMaxAgeDays => f64::from(self.staging_ct_max_age_days),
            ParameterId::DoxorubicinLifetimeMaxMgM2 => self.doxorubicin_lifetime_max_mg_m2,
            ParameterId::EpirubicinToDoxorubicinFactor => self.epirubicin_to_doxorubicin_factor,
            ParameterId::PftValidityDays => f64::from(self.pft_validity_days),
            ParameterId::SurveillanceGraceDays => f64::from(self.surveillance_grace_days),
            ParameterId::MaxCards => f64::from(self.max_cards),
            ParameterId::SymptomAssessmentMaxAgeDays => {
                f64::from(self.symptom_assessment_max_age_days)
            }
            ParameterId::LvefMinPercent => f64::from(self.lvef_min_percent),
            ParameterId::EgfrMin => f64::from(self.egfr_min),
            ParameterId::SurveillanceAssessmentMaxAgeDays => {
                f64::from(self.surveillance_assessment_max_age_days)
            }
        }
    }

    /// Every value in force with its source, for the audit trail.
    pub fn set(&self) -> ParameterSet {
        ParameterSet::new(
            ParameterId::ALL
                .iter()
                .map(|id| {
                    let source = if self.overridden.contains(id) {
                        ParameterSource::SiteConfiguration
                    } else {
                        ParameterSource::CatalogueDefault
                    };
                    (
                        id.name().to_owned(),
                        ParameterValue {
                            value: self.value(*id),
                            source,
                        },
                    )
                })
                .collect(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("unknown parameter `{0}`")]
    Unknown(String),
    #[error("parameter `{0}` is defined twice")]
    Duplicate(String),
    #[error("parameter `{0}` has no definition in knowledge/parameters.json")]
    Undefined(&'static str),
    #[error("parameter `{name}` = {value} is outside {lo}..={hi}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        lo: f64,
        hi: f64,
    },
    #[error("parameter `{name}` = {value} must be a whole number")]
    NotInteger { name: &'static str, value: f64 },
    #[error(
        "parameter `{0}` needs a clinical label with {{value}} in knowledge/parameters.json, \
         without its name"
    )]
    Label(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Vec<ParameterDefinition> {
        let d = Parameters::default();
        ParameterId::ALL
            .iter()
            .map(|id| ParameterDefinition {
                name: id.name().to_owned(),
                label: "test threshold {value}".to_owned(),
                default: d.display(*id).parse().unwrap(),
                unit: String::new(),
                description: String::new(),
                source: String::new(),
            })
            .collect()
    }

    #[test]
    fn overrides_apply_and_are_marked() {
        let mut o = BTreeMap::new();
        o.insert("favorable_dfi_months".to_owned(), 18.0);
        let p = Parameters::resolve(&defs(), &o).unwrap();
        assert_eq!(p.favorable_dfi_months, 18);
        assert_eq!(
            p.display(ParameterId::FavorableDfiMonths),
            "18 (site configuration)"
        );
        assert_eq!(p.display(ParameterId::PoorEcogMin), "3");
        assert_eq!(
            p.threshold(ParameterId::FavorableDfiMonths),
            "test threshold 18 — site setting"
        );
        assert_eq!(
            p.threshold(ParameterId::PoorEcogMin),
            "test threshold 3 — catalogue default"
        );
    }

    #[test]
    fn labels_come_from_the_knowledge_base_and_name_no_key() {
        let d = Parameters::default();
        assert_eq!(
            d.threshold(ParameterId::PoorEcogMin),
            "poor performance status from ECOG 3 — catalogue default"
        );
        for id in ParameterId::ALL {
            let t = d.threshold(id);
            assert!(!t.contains('_') && !t.contains('{'), "{t}");
        }
        let mut bad = defs();
        bad[0].label = "no placeholder".to_owned();
        assert!(matches!(
            Parameters::resolve(&bad, &BTreeMap::new()),
            Err(ParameterError::Label(_))
        ));
    }

    #[test]
    fn bad_overrides_are_refused() {
        let mut o = BTreeMap::new();
        o.insert("favourite".to_owned(), 1.0);
        assert!(matches!(
            Parameters::resolve(&defs(), &o),
            Err(ParameterError::Unknown(_))
        ));
        let mut o = BTreeMap::new();
        o.insert("poor_ecog_min".to_owned(), 2.5);
        assert!(matches!(
            Parameters::resolve(&defs(), &o),
            Err(ParameterError::NotInteger { .. })
        ));
        let mut o = BTreeMap::new();
        o.insert("poor_ecog_min".to_owned(), 9.0);
        assert!(matches!(
            Parameters::resolve(&defs(), &o),
            Err(ParameterError::OutOfRange { .. })
        ));
    }

    #[test]
    fn parameter_set_records_values_sources_and_a_stable_digest() {
        let defaults = Parameters::resolve(&defs(), &BTreeMap::new())
            .unwrap()
            .set();
        let mut o = BTreeMap::new();
        o.insert("favorable_dfi_months".to_owned(), 24.0);
        let site = Parameters::resolve(&defs(), &o).unwrap().set();
        let dfi = &site.parameters["favorable_dfi_months"];
        assert_eq!(dfi.value, 24.0);
        assert_eq!(dfi.source, ParameterSource::SiteConfiguration);
        assert_eq!(
            defaults.parameters["favorable_dfi_months"].source,
            ParameterSource::CatalogueDefault
        );
        assert_eq!(site.parameters.len(), ParameterId::ALL.len());
        assert_ne!(site.digest, defaults.digest);
        assert_eq!(site.digest.len(), 64);
        // Same values, same digest; the overrides give the set back.
        assert_eq!(Parameters::resolve(&defs(), &o).unwrap().set(), site);
        assert_eq!(site.overrides(), o);
        assert!(defaults.overrides().is_empty());
    }

    #[test]
    fn defaults_match_the_catalogue() {
        assert_eq!(
            Parameters::resolve(&defs(), &BTreeMap::new()).unwrap(),
            Parameters::default()
        );
    }
}
