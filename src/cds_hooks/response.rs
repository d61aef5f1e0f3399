//! CDS Hooks 2.0.1 response: cards with suggestions and actions. Optional fields are omitted
//! rather than sent as null or empty (the spec's "Use of JSON").

use serde::Serialize;
use serde_json::Value;

use crate::knowledge::Indicator;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub topic: Coding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionType,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(rename = "resourceId", skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub label: String,
    pub uuid: String,
    #[serde(rename = "isRecommended", skip_serializing_if = "std::ops::Not::not")]
    pub is_recommended: bool,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectionBehavior {
    #[serde(rename = "at-most-one")]
    AtMostOne,
    #[serde(rename = "any")]
    Any,
}

/// A card link (CDS Hooks 2.0 "Link"): `absolute` opens `url` as it is, `smart` launches a
/// SMART app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    Absolute,
    Smart,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub label: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: LinkType,
    #[serde(rename = "appContext", skip_serializing_if = "Option::is_none")]
    pub app_context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub uuid: String,
    pub summary: String,
    pub detail: String,
    pub indicator: Indicator,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    #[serde(rename = "selectionBehavior", skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<SelectionBehavior>,
    #[serde(rename = "overrideReasons", skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    /// The rule's section of `GET /rules` ("Rule and evidence"): the reasoning a short card
    /// leaves out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Machine-readable provenance of the card (rule, knowledge version, facts); CDS Hooks
    /// allows an `extension` object on a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdsResponse {
    pub cards: Vec<Card>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
}
