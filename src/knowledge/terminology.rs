//! Value sets as data: FHIR `ValueSet` resources under `knowledge/valuesets/`, indexed once at
//! start-up so that a coding lookup during a request is a hash probe.
//!
//! A coding matches on `system` + `code`. Real EHR data is coded unevenly, so a value set may
//! also carry text fallbacks (extension [`TEXT_MATCH_EXTENSION`], `valueString`): a
//! case-insensitive substring match on `CodeableConcept.text` or `coding.display`. A match on
//! text is reported as such so that the card can say the fact was read from text.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// Extension on a `ValueSet` whose `valueString` is a text fallback (matched case-insensitively
/// as a substring of `CodeableConcept.text` / `Coding.display`).
pub(crate) const TEXT_MATCH_EXTENSION: &str =
    "https://fhir.rps-cds.org/StructureDefinition/valueset-text-match";

/// How a concept matched a value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// A coding's system + code is in the value set.
    Code,
    /// Only the text or a display matched one of the value set's text fallbacks.
    Text,
}

/// One value set, expanded into a set of (system, code) pairs and lower-cased text fallbacks.
#[derive(Debug, Clone, Default)]
pub struct ValueSet {
    pub id: String,
    pub url: String,
    pub title: String,
    /// system → codes: a two-level map so that a lookup borrows instead of allocating a key.
    codes: HashMap<String, HashSet<String>>,
    texts: Vec<String>,
}

impl ValueSet {
    /// Builds the index of a FHIR `ValueSet` resource (`compose.include[].concept[]` with a
    /// `system`, plus the text-match extensions).
    pub fn from_resource(resource: &Value) -> Result<Self, TerminologyError> {
        let id = str_at(resource, "id").ok_or(TerminologyError::MissingElement("id"))?;
        if resource.get("resourceType").and_then(Value::as_str) != Some("ValueSet") {
            return Err(TerminologyError::NotAValueSet(id.to_owned()));
        }
        let mut codes: HashMap<String, HashSet<String>> = HashMap::new();
        for include in array_at(resource.pointer("/compose/include")) {
            let Some(system) = str_at(include, "system") else {
                return Err(TerminologyError::IncludeWithoutSystem(id.to_owned()));
            };
            for concept in array_at(include.get("concept")) {
                if let Some(code) = str_at(concept, "code") {
                    codes
                        .entry(system.to_owned())
                        .or_default()
                        .insert(code.to_owned());
                }
            }
        }
        let texts = array_at(resource.get("extension"))
            .filter(|ext| str_at(ext, "url") == Some(TEXT_MATCH_EXTENSION))
            .filter_map(|ext| str_at(ext, "valueString"))
            .map(str::to_lowercase)
            .collect();
        Ok(Self {
            id: id.to_owned(),
            url: str_at(resource, "url").unwrap_or_default().to_owned(),
            title: str_at(resource, "title").unwrap_or(id).to_owned(),
            codes,
            texts,
        })
    }

    /// True when `system` + `code` is in the value set.
    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.codes.get(system).is_some_and(|c| c.contains(code))
    }

    /// True when `text` contains one of the value set's text fallbacks (case-insensitive).
    pub fn matches_text(&self, text: &str) -> bool {
        if self.texts.is_empty() {
            return false;
        }
        let lower = text.to_lowercase();
        self.texts.iter().any(|t| lower.contains(t.as_str()))
    }

    /// Matches a FHIR `CodeableConcept` (or a bare `Coding`): codes first, then text fallbacks
    /// on `text` and each `coding.display`.
    pub fn matches_concept(&self, concept: &Value) -> Option<MatchedBy> {
        let codings: Vec<&Value> = match concept.get("coding") {
            Some(Value::Array(c)) => c.iter().collect(),
            _ if concept.get("code").is_some() => vec![concept],
            _ => Vec::new(),
        };
        for coding in &codings {
            if let (Some(system), Some(code)) = (str_at(coding, "system"), str_at(coding, "code"))
                && self.contains(system, code)
            {
                return Some(MatchedBy::Code);
            }
        }
        if let Some(text) = str_at(concept, "text")
            && self.matches_text(text)
        {
            return Some(MatchedBy::Text);
        }
        codings
            .iter()
            .filter_map(|c| str_at(c, "display"))
            .any(|d| self.matches_text(d))
            .then_some(MatchedBy::Text)
    }

    pub fn code_count(&self) -> usize {
        self.codes.values().map(HashSet::len).sum()
    }

    pub fn text_fallbacks(&self) -> &[String] {
        &self.texts
    }
}

/// All value sets of the knowledge base, by id.
#[derive(Debug, Clone, Default)]
pub struct Terminology {
    value_sets: HashMap<String, ValueSet>,
}

impl Terminology {
    pub fn from_value_sets(
        sets: impl IntoIterator<Item = ValueSet>,
    ) -> Result<Self, TerminologyError> {
        let mut value_sets = HashMap::new();
        for vs in sets {
            if let Some(previous) = value_sets.insert(vs.id.clone(), vs) {
                return Err(TerminologyError::DuplicateId(previous.id));
            }
        }
        Ok(Self { value_sets })
    }

    /// The value set with this id. Rules and fact extraction name value sets by id; a missing
    /// one is a defect of the knowledge base, caught at start-up by
    /// [`Terminology::require`], so lookups during a request cannot fail.
    pub fn get(&self, id: &str) -> Option<&ValueSet> {
        self.value_sets.get(id)
    }

    /// Checks at start-up that every value set the code refers to exists.
    pub fn require(&self, ids: &[&str]) -> Result<(), TerminologyError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !self.value_sets.contains_key(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TerminologyError::Missing(missing))
        }
    }

    /// `matches_concept` of the named value set; an unknown id never matches.
    pub fn matches(&self, value_set_id: &str, concept: &Value) -> Option<MatchedBy> {
        self.get(value_set_id)?.matches_concept(concept)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.value_sets.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.value_sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.value_sets.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TerminologyError {
    #[error("value set without required element `{0}`")]
    MissingElement(&'static str),
    #[error("resource {0} is not a ValueSet")]
    NotAValueSet(String),
    #[error("value set {0}: compose.include without a system")]
    IncludeWithoutSystem(String),
    #[error("two value sets share the id {0}")]
    DuplicateId(String),
    #[error("value sets required by the rules are missing: {0:?}")]
    Missing(Vec<String>),
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn array_at(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lms() -> ValueSet {
        ValueSet::from_resource(&json!({
            "resourceType": "ValueSet", "id": "histology-leiomyosarcoma",
            "url": "https://fhir.rps-cds.org/ValueSet/histology-leiomyosarcoma",
            "extension": [{"url": TEXT_MATCH_EXTENSION, "valueString": "Leiomyosarcoma"}],
            "compose": {"include": [{"system": "http://terminology.hl7.org/CodeSystem/icd-o-3",
                                     "concept": [{"code": "8890/3"}]}]}
        }))
        .unwrap()
    }

    #[test]
    fn matches_code_before_text() {
        let vs = lms();
        let by_code = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/icd-o-3", "code": "8890/3"}], "text": "LMS"});
        assert_eq!(vs.matches_concept(&by_code), Some(MatchedBy::Code));
        let by_text = json!({"text": "Retroperitoneal leiomyosarcoma, grade 3"});
        assert_eq!(vs.matches_concept(&by_text), Some(MatchedBy::Text));
        let by_display =
            json!({"coding": [{"system": "urn:local", "code": "x", "display": "LEIOMYOSARCOMA"}]});
        assert_eq!(vs.matches_concept(&by_display), Some(MatchedBy::Text));
        let other_system =
            json!({"coding": [{"system": "http://snomed.info/sct", "code": "8890/3"}]});
        assert_eq!(vs.matches_concept(&other_system), None);
    }

    #[test]
    fn require_reports_missing_sets() {
        let t = Terminology::from_value_sets([lms()]).unwrap();
        assert!(t.require(&["histology-leiomyosarcoma"]).is_ok());
        let err = t
            .require(&["histology-leiomyosarcoma", "nope"])
            .unwrap_err();
        assert!(matches!(err, TerminologyError::Missing(m) if m == vec!["nope".to_owned()]));
    }
}
