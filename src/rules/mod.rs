//! The catalogue's rules: each a small typed function over the clinical picture (and, for
//! order checks, the draft orders), returning findings.

pub mod finding;

pub use finding::{FactUse, Finding, RuleId, Suggestion, UnknownFact};
