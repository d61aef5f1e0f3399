//! What a rule returns: the decision and the evidence for it. Cards are built from findings
//! and the rule's knowledge-base entry (texts, source, evidence level) by `crate::cards`.

use chrono::NaiveDate;

use crate::clinical::ReadFrom;
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

pub use super::registry::RuleId;

/// One rule's conclusion for this patient (and, for order checks, this draft order).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: RuleId,
    /// Usually the knowledge base's indicator for the rule; some rules vary it (MET-02 is
    /// info when every criterion is met and warning when one fails; ORD-04's exception is info).
    pub indicator: Indicator,
    /// A summary built from the patient's facts (< 140 characters) when the knowledge base's
    /// fixed summary would be too vague (e.g. which imaging is overdue since when).
    pub summary: Option<String>,
    /// Patient-specific statements for the card detail, in addition to the knowledge base's
    /// recommendation text (e.g. the factor lists of a verdict, the matching drug options).
    pub statements: Vec<String>,
    /// The known facts that decided the finding, with their values and provenance.
    pub decided_by: Vec<FactUse>,
    /// Facts that were unknown and held something back (shown so nobody reads silence as
    /// "none").
    pub unknown: Vec<UnknownFact>,
    /// Parameters whose values the decision used (printed in the card).
    pub parameters: Vec<ParameterId>,
    pub suggestions: Vec<Suggestion>,
    /// For order checks: the draft order this finding is about ("MedicationRequest/123").
    pub draft_order: Option<String>,
    /// Records the finding is about that no deciding fact names (DATA-02's invalid records):
    /// in the card's `records` extension and footer count, never in its words.
    pub records: Vec<String>,
}

impl Finding {
    pub fn new(rule: impl Into<RuleId>, indicator: Indicator) -> Self {
        Self {
            rule: rule.into(),
            indicator,
            summary: None,
            statements: Vec::new(),
            decided_by: Vec::new(),
            unknown: Vec::new(),
            parameters: Vec::new(),
            suggestions: Vec::new(),
            draft_order: None,
            records: Vec::new(),
        }
    }
}

/// A known fact as the card shows it: "ECOG 1 (2 Oct 2026)"; its references stay in the card's
/// `decided-by` extension.
#[derive(Debug, Clone, PartialEq)]
pub struct FactUse {
    /// The catalogue's fact name (e.g. "ecog", "dfi_months"); the card shows its clinical
    /// label (`crate::display`).
    pub fact: &'static str,
    /// The value in plain words.
    pub value: String,
    /// Where it was read, as one line for the machine-readable extension
    /// ("Observation/ecog-1, coded, 2026-10-02").
    pub provenance: Option<String>,
    /// The same, structured: what the card prose may show (a date, "from a clinical note")
    /// and what it counts in its footer (the records).
    pub origin: Origin,
}

/// Where a fact was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    /// Relative references of the records read ("Observation/ecog-1").
    pub references: Vec<String>,
    /// Read from a code, from free text, derived, or a closed-world absence.
    pub read_from: Option<ReadFrom>,
    /// The clinical date of the deciding record.
    pub date: Option<NaiveDate>,
    /// A short qualification ("Karnofsky 70 converted").
    pub note: Option<String>,
}

impl Origin {
    /// Reads the one-line provenance the rules write ("Observation/x, coded, 2026-10-02",
    /// "from text", "MedicationAdministration/a, MedicationAdministration/b"): references,
    /// how it was read and the date; anything else is kept as the note.
    pub fn parse(line: &str) -> Self {
        let mut o = Origin::default();
        let mut notes: Vec<&str> = Vec::new();
        for part in line.split(", ").map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(r) = [
                ReadFrom::Code,
                ReadFrom::Text,
                ReadFrom::Derived,
                ReadFrom::Absence,
            ]
            .into_iter()
            .find(|r| r.label() == part)
            {
                o.read_from = Some(r);
            } else if let Ok(d) = NaiveDate::parse_from_str(part, "%Y-%m-%d") {
                o.date = Some(d);
            } else if is_reference(part) {
                o.references.push(part.to_owned());
            } else {
                notes.push(part);
            }
        }
        if !notes.is_empty() {
            o.note = Some(notes.join(", "));
        }
        o
    }
}

/// "Observation/ecog-1": a resource type, a slash and an id without spaces.
pub fn is_reference(s: &str) -> bool {
    match s.split_once('/') {
        Some((t, id)) => {
            t.len() > 1
                && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && t.chars().any(|c| c.is_ascii_lowercase())
                && t.chars().all(|c| c.is_ascii_alphabetic())
                && !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        }
        None => false,
    }
}

/// An unknown fact and what it held back ("ECOG not recorded: surgical candidacy not assessed").
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownFact {
    pub fact: &'static str,
    /// Why it is unknown (not recorded; only invalid resources; not derivable …).
    pub reason: String,
    /// What the missing fact would decide.
    pub holds_back: String,
}

/// A suggestion on a card. `Create` names an order template of the knowledge base
/// (`knowledge/orders.json`), filled in for the patient by the card builder; `Delete` names
/// the draft order to remove.
#[derive(Debug, Clone, PartialEq)]
pub enum Suggestion {
    Create {
        label: String,
        order_template: &'static str,
        recommended: bool,
    },
    Delete {
        label: String,
        /// Relative reference of the draft order, e.g. "MedicationRequest/draft-1".
        resource_id: String,
    },
    /// Replace a draft order with a better one: one suggestion with a delete and a create
    /// action, marked `isRecommended` (catalogue §2.7).
    Replace {
        label: String,
        resource_id: String,
        order_template: &'static str,
    },
}
