//! The knowledge base: clinical content as reviewed data, separate from the rule logic.
//!
//! `knowledge/` holds, per rule, its id, title, hooks, source, evidence level and card texts
//! (`rules.json`); the parameters with defaults and provenance (`parameters.json`); value sets
//! as FHIR `ValueSet` resources (`valuesets/`); the project's code systems as FHIR
//! `CodeSystem` resources (`codesystems/`); and the order templates used by suggestions
//! (`orders.json`). The directory is embedded in the binary, so the service needs nothing on
//! disk; a deployment may point `knowledge.dir` at a reviewed copy instead. It is loaded and
//! validated once at start-up.

pub mod parameters;
pub mod terminology;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cds_hooks::{Hook, Indicator};
pub use parameters::{ParameterDefinition, ParameterError, ParameterId, Parameters};
pub use terminology::{MatchedBy, Terminology, TerminologyError, ValueSet};

/// The knowledge base shipped with this build.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/knowledge");

/// Code system of rule ids (`source.topic.system` of every card).
pub const RULE_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-rule";
/// The project's own observation code system (input-profile.md).
pub const OBSERVATION_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-observation";
/// Code system of the override reasons offered on warning and critical cards.
pub const OVERRIDE_REASON_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-override-reason";

/// Catalogue section of a rule (rps-knowledge.md §2.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    ScopeAndData,
    ReferralWorkupHistory,
    LocalRecurrence,
    Metastatic,
    SystemicTherapy,
    Surveillance,
    OrderChecks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSource {
    /// e.g. "TARPSWG metastatic RPS consensus, st. 24 (IVA)"
    pub label: String,
    /// The publication (DOI link where one exists).
    pub url: String,
}

/// One rule of the catalogue as reviewed data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    pub id: String,
    pub title: String,
    pub section: Section,
    pub hooks: Vec<Hook>,
    /// The indicator the catalogue gives the card (a rule may vary it, see `Finding`).
    pub indicator: Indicator,
    /// The card summary in the project's own words (< 140 characters).
    pub summary: String,
    /// The recommendation, Markdown, in the project's own words; first part of the detail.
    pub recommendation: String,
    /// When the rule fires, in plain words for clinical reviewers.
    pub condition: String,
    pub source: RuleSource,
    /// Level of evidence / grade as the source states it (e.g. "IVA", "Grade 2C"); `None`
    /// for rules that are data-quality or scope checks with no clinical source.
    pub evidence: Option<String>,
}

/// A FHIR Coding offered as an override reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideReason {
    pub code: String,
    pub display: String,
}

/// `rules.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBook {
    /// The knowledge-base version, reported in every response.
    pub version: String,
    pub override_reasons: Vec<OverrideReason>,
    pub rules: Vec<RuleDefinition>,
}

/// The loaded, validated knowledge base.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub version: String,
    pub rules: Vec<RuleDefinition>,
    rule_index: BTreeMap<String, usize>,
    pub override_reasons: Vec<OverrideReason>,
    pub parameter_definitions: Vec<ParameterDefinition>,
    pub terminology: Terminology,
    /// FHIR `CodeSystem` resources, by id.
    pub code_systems: BTreeMap<String, Value>,
    /// Order templates by id: partial ServiceRequest / MedicationRequest resources.
    pub order_templates: BTreeMap<String, Value>,
}

impl Knowledge {
    /// The knowledge base compiled into the binary.
    pub fn embedded() -> Result<Self, KnowledgeError> {
        let files = collect_embedded(&EMBEDDED);
        Self::from_files(files.iter().map(|(p, b)| (p.as_path(), *b)))
    }

    /// A knowledge base directory on disk (same layout as `knowledge/`).
    pub fn from_dir(dir: &Path) -> Result<Self, KnowledgeError> {
        let mut files = Vec::new();
        collect_dir(dir, dir, &mut files)?;
        Self::from_files(files.iter().map(|(p, b)| (p.as_path(), b.as_slice())))
    }

    /// Builds the knowledge base from `(relative path, bytes)` pairs.
    pub fn from_files<'a>(
        files: impl Iterator<Item = (&'a Path, &'a [u8])>,
    ) -> Result<Self, KnowledgeError> {
        let mut rulebook: Option<RuleBook> = None;
        let mut parameter_definitions: Option<Vec<ParameterDefinition>> = None;
        let mut order_templates: Option<BTreeMap<String, Value>> = None;
        let mut value_sets = Vec::new();
        let mut code_systems = BTreeMap::new();
        for (path, bytes) in files {
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path.to_string_lossy().replace('\\', "/");
            match name.as_str() {
                "rules.json" => rulebook = Some(from_json(&name, bytes)?),
                "parameters.json" => parameter_definitions = Some(from_json(&name, bytes)?),
                "orders.json" => order_templates = Some(from_json(&name, bytes)?),
                n if n.starts_with("valuesets/") => {
                    value_sets.push(ValueSet::from_resource(&from_json(&name, bytes)?).map_err(
                        |e| KnowledgeError::Terminology {
                            file: name.clone(),
                            source: e,
                        },
                    )?)
                }
                n if n.starts_with("codesystems/") => {
                    let cs: Value = from_json(&name, bytes)?;
                    let id = cs
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            KnowledgeError::Invalid(format!("{name}: CodeSystem without id"))
                        })?
                        .to_owned();
                    code_systems.insert(id, cs);
                }
                _ => {}
            }
        }
        let rulebook = rulebook.ok_or(KnowledgeError::MissingFile("rules.json"))?;
        let parameter_definitions =
            parameter_definitions.ok_or(KnowledgeError::MissingFile("parameters.json"))?;
        let order_templates = order_templates.ok_or(KnowledgeError::MissingFile("orders.json"))?;
        let mut rule_index = BTreeMap::new();
        for (i, rule) in rulebook.rules.iter().enumerate() {
            if rule_index.insert(rule.id.clone(), i).is_some() {
                return Err(KnowledgeError::Invalid(format!(
                    "rule {} is defined twice",
                    rule.id
                )));
            }
            if rule.summary.chars().count() >= 140 {
                return Err(KnowledgeError::Invalid(format!(
                    "rule {}: summary has 140 characters or more",
                    rule.id
                )));
            }
        }
        // Validates that every parameter is defined, once, within bounds.
        Parameters::resolve(&parameter_definitions, &BTreeMap::new())?;
        Ok(Self {
            version: rulebook.version,
            rules: rulebook.rules,
            rule_index,
            override_reasons: rulebook.override_reasons,
            parameter_definitions,
            terminology: Terminology::from_value_sets(value_sets)?,
            code_systems,
            order_templates,
        })
    }

    /// The knowledge-base entry of a rule. Rules are checked against the knowledge base at
    /// start-up, so every rule id the code emits is present.
    pub fn rule(&self, id: &str) -> Option<&RuleDefinition> {
        self.rule_index.get(id).map(|&i| &self.rules[i])
    }

    /// Position of the rule in the catalogue (for card ordering).
    pub fn catalogue_position(&self, id: &str) -> usize {
        self.rule_index.get(id).copied().unwrap_or(usize::MAX)
    }

    /// Parameter values in force with the configured overrides.
    pub fn parameters(
        &self,
        overrides: &BTreeMap<String, f64>,
    ) -> Result<Parameters, ParameterError> {
        Parameters::resolve(&self.parameter_definitions, overrides)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge base: {file}: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("knowledge base: {file}: {source}")]
    Terminology {
        file: String,
        source: TerminologyError,
    },
    #[error("knowledge base: {0}")]
    TerminologySet(#[from] TerminologyError),
    #[error("knowledge base: {0}")]
    Parameter(#[from] ParameterError),
    #[error("knowledge base: missing {0}")]
    MissingFile(&'static str),
    #[error("knowledge base: {0}")]
    Invalid(String),
    #[error("knowledge base: cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn from_json<T: serde::de::DeserializeOwned>(
    file: &str,
    bytes: &[u8],
) -> Result<T, KnowledgeError> {
    serde_json::from_slice(bytes).map_err(|source| KnowledgeError::Json {
        file: file.to_owned(),
        source,
    })
}

fn collect_embedded<'a>(dir: &'a Dir<'a>) -> Vec<(PathBuf, &'a [u8])> {
    let mut out = Vec::new();
    for file in dir.files() {
        out.push((file.path().to_path_buf(), file.contents()));
    }
    for sub in dir.dirs() {
        out.extend(collect_embedded(sub));
    }
    out
}

fn collect_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Result<(), KnowledgeError> {
    let io = |e| KnowledgeError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_dir(root, &path, out)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|e| KnowledgeError::Io {
                path: path.clone(),
                source: e,
            })?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push((rel, bytes));
        }
    }
    Ok(())
}
