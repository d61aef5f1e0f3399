//! What a rule returns: the decision and the evidence for it. Cards are built from findings
//! and the rule's knowledge-base entry (texts, source, evidence level) by `crate::cards`.

use crate::clinical::{FactUse, UnknownFact};
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
