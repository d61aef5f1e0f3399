//! The catalogue's rules: each a small typed function over the clinical picture (and, for
//! order checks, the draft orders), returning findings.

pub mod finding;

pub use finding::{FactUse, Finding, RuleId, Suggestion, UnknownFact};

// ---- Interim until the rules branch lands (replaced by the real catalogue) ----
use crate::cds_hooks::Hook;
use crate::clinical::{DraftOrder, Picture};
use crate::knowledge::Parameters;

pub struct InvalidSummary {
    pub resource_type: String,
    pub id: Option<String>,
}

pub struct RuleInput<'a> {
    pub picture: &'a Picture,
    pub params: &'a Parameters,
    pub hook: Hook,
    pub draft_orders: &'a [DraftOrder],
    pub invalid_resources: &'a [InvalidSummary],
    pub invalid_draft_orders: &'a [String],
}

pub const IMPLEMENTED_RULES: &[&str] = &[];
pub const ORDER_TEMPLATES: &[&str] = &[];

pub fn evaluate(_input: &RuleInput) -> Vec<Finding> {
    Vec::new()
}
