//! The knowledge base: clinical content as reviewed data, separate from the rule logic.
//!
//! `knowledge/` holds, per rule, its id, title, hooks, source, evidence level and card texts
//! (`rules.json`); the parameters with defaults and provenance (`parameters.json`); value sets
//! as FHIR `ValueSet` resources (`valuesets/`); the project's code systems as FHIR
//! `CodeSystem` resources (`codesystems/`); and the order templates used by suggestions
//! (`orders.json`). The directory is embedded in the binary, so the service needs nothing on
//! disk; a deployment may point `knowledge.dir` at a reviewed copy instead. It is loaded and
//! validated once at start-up: each JSON file against its definition in
//! `schemas/knowledge.schema.json`, then the files against each other (rule ids against the
//! `rps-rule` code system, override reasons against `rps-override-reason`, local order codes
//! against `rps-order`).

pub mod doc;
pub(crate) mod kinds;
pub mod parameters;
pub(crate) mod terminology;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use kinds::{Hook, Indicator};
pub use parameters::{ParameterDefinition, ParameterError, ParameterId, Parameters};
pub use terminology::{MatchedBy, Terminology, TerminologyError, ValueSet};

/// The knowledge base shipped with this build.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/knowledge");

/// Code system of rule ids (`source.topic.system` of every card).
pub(crate) const RULE_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-rule";
/// The project's own observation code system (docs/input-profile.md).
pub(crate) const OBSERVATION_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-observation";
/// Code system of the override reasons offered on warning and critical cards.
pub(crate) const OVERRIDE_REASON_SYSTEM: &str =
    "https://fhir.rps-cds.org/CodeSystem/rps-override-reason";
/// Local order codes for suggested referrals and tests that have no standard code.
pub(crate) const ORDER_SYSTEM: &str = "https://fhir.rps-cds.org/CodeSystem/rps-order";

/// JSON Schema of the knowledge-base files (one `$defs` entry per file).
pub(crate) const KNOWLEDGE_SCHEMA: &str = include_str!("../../schemas/knowledge.schema.json");

/// Catalogue section of a rule (docs/clinical-spec.md §2.x).
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

impl Section {
    pub const ALL: [Section; 7] = [
        Section::ScopeAndData,
        Section::ReferralWorkupHistory,
        Section::LocalRecurrence,
        Section::Metastatic,
        Section::SystemicTherapy,
        Section::Surveillance,
        Section::OrderChecks,
    ];

    /// The value used in `rules.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::ScopeAndData => "scope-and-data",
            Section::ReferralWorkupHistory => "referral-workup-history",
            Section::LocalRecurrence => "local-recurrence",
            Section::Metastatic => "metastatic",
            Section::SystemicTherapy => "systemic-therapy",
            Section::Surveillance => "surveillance",
            Section::OrderChecks => "order-checks",
        }
    }

    /// The catalogue's heading for the section.
    pub fn title(self) -> &'static str {
        match self {
            Section::ScopeAndData => "Scope and data quality",
            Section::ReferralWorkupHistory => "Referral, work-up and history",
            Section::LocalRecurrence => "Locally recurrent RPS",
            Section::Metastatic => "Metastatic RPS",
            Section::SystemicTherapy => "Systemic therapy",
            Section::Surveillance => "Surveillance",
            Section::OrderChecks => "Order checks (order-select and order-sign)",
        }
    }
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
pub(crate) struct RuleBook {
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
                "rules.json" => {
                    rulebook = Some(from_checked_json(&name, bytes, SchemaDef::RuleBook)?)
                }
                "parameters.json" => {
                    parameter_definitions =
                        Some(from_checked_json(&name, bytes, SchemaDef::Parameters)?)
                }
                "orders.json" => {
                    order_templates = Some(from_checked_json(&name, bytes, SchemaDef::Orders)?)
                }
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
        if rulebook.version.trim().is_empty() {
            return Err(KnowledgeError::Invalid(
                "rules.json: version is empty".to_owned(),
            ));
        }
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
        check_rule_code_system(&rulebook, &code_systems)?;
        check_override_reasons(&rulebook, &code_systems)?;
        check_local_order_codes(&order_templates, &code_systems)?;
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

    /// Checks at start-up that every order template the rules suggest exists in
    /// `orders.json`, so that building a suggestion during a request cannot fail.
    pub fn check_order_templates(&self, ids: &[&str]) -> Result<(), KnowledgeError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !self.order_templates.contains_key(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(KnowledgeError::MissingOrderTemplates(missing))
        }
    }

    /// A plain-text summary of the loaded knowledge base, for `rps-cds check-knowledge`.
    pub fn check_report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "knowledge base version {}: valid", self.version);
        let _ = writeln!(out, "rules: {}", self.rules.len());
        for section in Section::ALL {
            let ids: Vec<&str> = self
                .rules
                .iter()
                .filter(|r| r.section == section)
                .map(|r| r.id.as_str())
                .collect();
            let (first, last) = (ids.first().unwrap_or(&"-"), ids.last().unwrap_or(&"-"));
            let _ = writeln!(
                out,
                "  {:<24} {:>3}  ({first} .. {last})",
                section.as_str(),
                ids.len()
            );
        }
        let count = |ind: Indicator| self.rules.iter().filter(|r| r.indicator == ind).count();
        let _ = writeln!(
            out,
            "  by indicator: critical {}, warning {}, info {}",
            count(Indicator::Critical),
            count(Indicator::Warning),
            count(Indicator::Info)
        );
        let without_evidence = self.rules.iter().filter(|r| r.evidence.is_none()).count();
        let _ = writeln!(
            out,
            "  with an evidence level: {}, without: {without_evidence}",
            self.rules.len() - without_evidence
        );
        let mut ids: Vec<&str> = self.terminology.ids().collect();
        ids.sort_unstable();
        let (codes, texts) = ids
            .iter()
            .filter_map(|id| self.terminology.get(id))
            .fold((0, 0), |(c, t), vs| {
                (c + vs.code_count(), t + vs.text_fallbacks().len())
            });
        let _ = writeln!(
            out,
            "value sets: {} ({codes} codes, {texts} text fallbacks)",
            ids.len()
        );
        let _ = writeln!(out, "code systems: {}", self.code_systems.len());
        for (id, cs) in &self.code_systems {
            let n = cs
                .get("concept")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let _ = writeln!(out, "  {id:<24} {n:>3} concepts");
        }
        let _ = writeln!(out, "order templates: {}", self.order_templates.len());
        let _ = writeln!(out, "override reasons: {}", self.override_reasons.len());
        let _ = writeln!(out, "parameters: {}", self.parameter_definitions.len());
        for p in &self.parameter_definitions {
            let _ = writeln!(out, "  {:<34} {} {}", p.name, p.default, p.unit);
        }
        out
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
    /// A file does not conform to its definition in `schemas/knowledge.schema.json`.
    #[error("knowledge base: {file}: {}", format_violations(.violations))]
    Schema {
        file: String,
        violations: Vec<SchemaViolation>,
    },
    #[error(
        "knowledge base: order templates required by the rules are missing from orders.json: {0:?}"
    )]
    MissingOrderTemplates(Vec<String>),
    #[error("knowledge base: {0}")]
    Invalid(String),
    #[error("knowledge base: cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One schema violation: where (JSON pointer into the file) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    pub pointer: String,
    pub message: String,
}

fn format_violations(violations: &[SchemaViolation]) -> String {
    violations
        .iter()
        .map(|v| {
            let at = if v.pointer.is_empty() {
                "(document root)"
            } else {
                v.pointer.as_str()
            };
            format!("at {at}: {}", v.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `$defs` entry of the knowledge schema that a file must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaDef {
    RuleBook,
    Parameters,
    Orders,
}

impl SchemaDef {
    fn def_name(self) -> &'static str {
        match self {
            SchemaDef::RuleBook => "rulebook",
            SchemaDef::Parameters => "parameters",
            SchemaDef::Orders => "orders",
        }
    }
}

struct SchemaValidators {
    rulebook: jsonschema::Validator,
    parameters: jsonschema::Validator,
    orders: jsonschema::Validator,
}

/// The knowledge schema compiled once per process, one validator per `$defs` entry. The
/// schema is embedded, so a failure to compile is a build defect; it is still reported as an
/// error rather than a panic so that the service refuses to start with a clear message.
static VALIDATORS: LazyLock<Result<SchemaValidators, String>> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(KNOWLEDGE_SCHEMA)
        .map_err(|e| format!("schemas/knowledge.schema.json is not JSON: {e}"))?;
    let compile = |def: SchemaDef| {
        // Each file is validated against the whole schema with its root pointed at the
        // definition, so that the definitions can refer to each other.
        let mut root = schema.clone();
        root["$ref"] = Value::String(format!("#/$defs/{}", def.def_name()));
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("schemas/knowledge.schema.json ({}): {e}", def.def_name()))
    };
    Ok(SchemaValidators {
        rulebook: compile(SchemaDef::RuleBook)?,
        parameters: compile(SchemaDef::Parameters)?,
        orders: compile(SchemaDef::Orders)?,
    })
});

/// Validates `value` (the content of `file`) against its definition in the knowledge schema.
pub(crate) fn validate_against_schema(
    file: &str,
    value: &Value,
    def: SchemaDef,
) -> Result<(), KnowledgeError> {
    let validators = VALIDATORS
        .as_ref()
        .map_err(|e| KnowledgeError::Invalid(e.clone()))?;
    let validator = match def {
        SchemaDef::RuleBook => &validators.rulebook,
        SchemaDef::Parameters => &validators.parameters,
        SchemaDef::Orders => &validators.orders,
    };
    let violations: Vec<SchemaViolation> = validator
        .iter_errors(value)
        .map(|e| {
            // Recommendations are long; quoting one whole in the message would bury the point.
            let full = e.to_string();
            let message = if full.chars().count() > 200 {
                e.masked().to_string()
            } else {
                full
            };
            SchemaViolation {
                pointer: e.instance_path().to_string(),
                message,
            }
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(KnowledgeError::Schema {
            file: file.to_owned(),
            violations,
        })
    }
}

/// Parses a knowledge file, validates it against its schema definition, then deserialises it.
fn from_checked_json<T: serde::de::DeserializeOwned>(
    file: &str,
    bytes: &[u8],
    def: SchemaDef,
) -> Result<T, KnowledgeError> {
    let value: Value = from_json(file, bytes)?;
    validate_against_schema(file, &value, def)?;
    serde_json::from_value(value).map_err(|source| KnowledgeError::Json {
        file: file.to_owned(),
        source,
    })
}

/// The `code` of each concept of a code system, in order (None when it is not loaded).
fn concept_codes<'a>(
    code_systems: &'a BTreeMap<String, Value>,
    id: &str,
) -> Option<Vec<(&'a str, Option<&'a str>)>> {
    let concepts = code_systems.get(id)?.get("concept")?.as_array()?;
    Some(
        concepts
            .iter()
            .map(|c| {
                (
                    c.get("code").and_then(Value::as_str).unwrap_or_default(),
                    c.get("display").and_then(Value::as_str),
                )
            })
            .collect(),
    )
}

/// `rps-rule` must list exactly the rules of `rules.json`, in catalogue order, with the rule
/// titles as displays: it is what `source.topic` of every card refers to.
fn check_rule_code_system(
    rulebook: &RuleBook,
    code_systems: &BTreeMap<String, Value>,
) -> Result<(), KnowledgeError> {
    let concepts = concept_codes(code_systems, "rps-rule").ok_or_else(|| {
        KnowledgeError::Invalid("codesystems/: the rps-rule CodeSystem is missing".to_owned())
    })?;
    let codes: Vec<&str> = concepts.iter().map(|(c, _)| *c).collect();
    let ids: Vec<&str> = rulebook.rules.iter().map(|r| r.id.as_str()).collect();
    if codes != ids {
        let first = codes
            .iter()
            .zip(&ids)
            .position(|(a, b)| a != b)
            .unwrap_or(codes.len().min(ids.len()));
        return Err(KnowledgeError::Invalid(format!(
            "codesystems/rps-rule.json does not list the rules of rules.json in order              (first difference at position {first}: {:?} vs {:?});              regenerate it with knowledge/tools/build_codesystems.py",
            codes.get(first),
            ids.get(first)
        )));
    }
    for ((code, display), rule) in concepts.iter().zip(&rulebook.rules) {
        if *display != Some(rule.title.as_str()) {
            return Err(KnowledgeError::Invalid(format!(
                "codesystems/rps-rule.json: display of {code} differs from the rule title;                  regenerate it with knowledge/tools/build_codesystems.py"
            )));
        }
    }
    Ok(())
}

/// Override reasons offered on cards must be codes of `rps-override-reason`.
fn check_override_reasons(
    rulebook: &RuleBook,
    code_systems: &BTreeMap<String, Value>,
) -> Result<(), KnowledgeError> {
    let concepts = concept_codes(code_systems, "rps-override-reason").ok_or_else(|| {
        KnowledgeError::Invalid(
            "codesystems/: the rps-override-reason CodeSystem is missing".to_owned(),
        )
    })?;
    let known: BTreeSet<&str> = concepts.iter().map(|(c, _)| *c).collect();
    let unknown: Vec<&str> = rulebook
        .override_reasons
        .iter()
        .map(|o| o.code.as_str())
        .filter(|c| !known.contains(c))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(KnowledgeError::Invalid(format!(
            "rules.json: override reasons not in the rps-override-reason CodeSystem: {unknown:?}"
        )))
    }
}

/// Every coding of an order template in the `rps-order` system must be a code of it.
fn check_local_order_codes(
    order_templates: &BTreeMap<String, Value>,
    code_systems: &BTreeMap<String, Value>,
) -> Result<(), KnowledgeError> {
    let known: BTreeSet<&str> = concept_codes(code_systems, "rps-order")
        .unwrap_or_default()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    for (id, template) in order_templates {
        let concept = template
            .get("code")
            .or_else(|| template.get("medicationCodeableConcept"));
        let codings = concept
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for coding in codings {
            if coding.get("system").and_then(Value::as_str) == Some(ORDER_SYSTEM) {
                let code = coding
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !known.contains(code) {
                    return Err(KnowledgeError::Invalid(format!(
                        "orders.json: template {id} uses {code}, which is not in the rps-order CodeSystem"
                    )));
                }
            }
        }
    }
    Ok(())
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
