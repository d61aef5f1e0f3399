//! CDS Hooks 2.0 feedback: `{"feedback": [...]}` — what the clinician did with a card.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::request::{EnvelopeSchemas, InvalidRequest};
use crate::fhir::outcome::{Issue, IssueCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Accepted,
    Overridden,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AcceptedSuggestion {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CodingIn {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OverrideReason {
    pub reason: Option<CodingIn>,
    #[serde(rename = "userComment")]
    pub user_comment: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FeedbackItem {
    pub card: uuid::Uuid,
    pub outcome: Outcome,
    #[serde(rename = "acceptedSuggestions", default)]
    pub accepted_suggestions: Vec<AcceptedSuggestion>,
    #[serde(rename = "overrideReason")]
    pub override_reason: Option<OverrideReason>,
    #[serde(rename = "outcomeTimestamp")]
    pub outcome_timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Feedback {
    pub feedback: Vec<FeedbackItem>,
}

impl Feedback {
    /// Validates against `schemas/cds-hooks/feedback.schema.json`, then types it.
    pub(crate) fn from_value(
        body: Value,
        schemas: &EnvelopeSchemas,
    ) -> Result<Self, InvalidRequest> {
        schemas.check_feedback(&body)?;
        serde_json::from_value(body).map_err(|e| {
            InvalidRequest(vec![
                Issue::error(IssueCode::Invalid, format!("feedback: {e}")).at("feedback"),
            ])
        })
    }
}
