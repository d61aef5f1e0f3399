//! Small closed vocabularies of CDS Hooks 2.0.1 used across the crate. They sit in `knowledge`
//! because the knowledge base is written in them (which hooks a rule serves, a card's
//! indicator), and `knowledge` is below `cds_hooks`, `rules` and `cards`, which use them too.

use serde::{Deserialize, Serialize};

/// The hooks this service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hook {
    #[serde(rename = "patient-view")]
    PatientView,
    #[serde(rename = "order-select")]
    OrderSelect,
    #[serde(rename = "order-sign")]
    OrderSign,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// order-select and order-sign carry draft orders to check.
    pub fn has_draft_orders(self) -> bool {
        matches!(self, Hook::OrderSelect | Hook::OrderSign)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Card urgency. The derived order (critical < warning < info) is the display order the
/// catalogue asks for (§3: critical, warning, info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Critical,
    Warning,
    Info,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Critical => "critical",
            Indicator::Warning => "warning",
            Indicator::Info => "info",
        }
    }
}
