//! The CDS Hooks 2.0.1 service request, parsed once: the body is read into one
//! `serde_json::Value`, checked against `schemas/cds-hooks/request.schema.json` (compiled at
//! start-up), then moved — not cloned — into typed parts.

use std::fmt;

use serde_json::{Map, Value};

use crate::fhir::UnavailableData;
use crate::fhir::client::AccessToken;
use crate::fhir::outcome::{Issue, IssueCode, pointer_to_path};
use crate::knowledge::Hook;

/// `fhirAuthorization`. The token is wrapped so that it cannot reach a log by `Debug`.
#[derive(Clone)]
pub struct FhirAuthorization {
    pub access_token: AccessToken,
    pub token_type: String,
    pub scope: String,
    pub subject: String,
}

impl fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FhirAuthorization")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The hook context this service reads.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub user_id: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    /// order-select: the orders just chosen ("MedicationRequest/123").
    pub selections: Vec<String>,
    /// order-select / order-sign: the draft orders Bundle.
    pub draft_orders: Option<Value>,
}

/// A validated hook request.
#[derive(Debug)]
pub struct HookRequest {
    pub hook: Hook,
    pub hook_instance: String,
    pub fhir_server: Option<url::Url>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: HookContext,
    /// Prefetch key → resource (or `Value::Null` when the client had no data).
    pub prefetch: Map<String, Value>,
    /// Prefetch keys that could not be had and were answered without (filled by prefetch
    /// completion under `prefetch.on_failure = degrade`; DATA-04).
    pub unavailable: Vec<UnavailableData>,
}

/// The request envelope was not a valid CDS Hooks request: one issue per problem, each with
/// the JSON path.
#[derive(Debug, thiserror::Error)]
#[error("invalid CDS Hooks request ({} issue(s))", .0.len())]
pub struct InvalidRequest(pub Vec<Issue>);

/// Compiled CDS Hooks envelope schemas (request and feedback), built once at start-up.
pub struct EnvelopeSchemas {
    request: jsonschema::Validator,
    feedback: jsonschema::Validator,
}

impl fmt::Debug for EnvelopeSchemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvelopeSchemas")
    }
}

pub(crate) const REQUEST_SCHEMA: &str = include_str!("../../schemas/cds-hooks/request.schema.json");
pub(crate) const FEEDBACK_SCHEMA: &str =
    include_str!("../../schemas/cds-hooks/feedback.schema.json");
pub const RESPONSE_SCHEMA: &str = include_str!("../../schemas/cds-hooks/response.schema.json");
pub const DISCOVERY_SCHEMA: &str = include_str!("../../schemas/cds-hooks/discovery.schema.json");
pub const OPERATION_OUTCOME_SCHEMA: &str =
    include_str!("../../schemas/cds-hooks/operation-outcome.schema.json");

impl EnvelopeSchemas {
    pub fn compile() -> Result<Self, String> {
        let build = |text: &str| -> Result<jsonschema::Validator, String> {
            let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            request: build(REQUEST_SCHEMA)?,
            feedback: build(FEEDBACK_SCHEMA)?,
        })
    }

    /// Validates a request body against the request schema; every error becomes an issue with
    /// its JSON path.
    pub fn check_request(&self, body: &Value) -> Result<(), InvalidRequest> {
        check(&self.request, body)
    }

    pub fn check_feedback(&self, body: &Value) -> Result<(), InvalidRequest> {
        check(&self.feedback, body)
    }
}

fn check(validator: &jsonschema::Validator, body: &Value) -> Result<(), InvalidRequest> {
    if validator.is_valid(body) {
        return Ok(());
    }
    let issues: Vec<Issue> = validator
        .iter_errors(body)
        .take(50)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let code = match e.kind() {
                jsonschema::error::ValidationErrorKind::Required { .. } => IssueCode::Required,
                _ => IssueCode::Invalid,
            };
            Issue::error(code, schema_message(&e)).at(pointer_to_path(&pointer))
        })
        .collect();
    Err(InvalidRequest(issues))
}

/// The validator's message, without echoing long values (which could carry patient data).
fn schema_message(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::Required { property } => format!("required property {property} is missing"),
        K::Type { kind } => format!("wrong JSON type (expected {kind:?})"),
        K::Enum { options } => format!("value is not one of {options}"),
        K::Constant { expected_value } => format!("value must be {expected_value}"),
        K::Pattern { .. } | K::Format { .. } => {
            "value does not have the required format".to_owned()
        }
        K::MinItems { limit } => format!("must have at least {limit} item(s)"),
        K::MinLength { .. } => "must not be empty".to_owned(),
        other => format!(
            "violates the `{}` rule of the CDS Hooks request schema",
            other.keyword()
        ),
    }
}

impl HookRequest {
    /// Checks the envelope and moves its parts into a typed request. `expected` is the hook of
    /// the service being called: a request for another hook is refused.
    pub fn from_value(
        body: Value,
        schemas: &EnvelopeSchemas,
        expected: Hook,
    ) -> Result<Self, InvalidRequest> {
        if !body.is_object() {
            return Err(InvalidRequest(vec![
                Issue::error(
                    IssueCode::Structure,
                    "the request body must be a JSON object",
                )
                .at("$"),
            ]));
        }
        schemas.check_request(&body)?;
        let Value::Object(mut body) = body else {
            unreachable!("checked above")
        };
        let hook_name = take_string(&mut body, "hook").unwrap_or_default();
        let hook = match Hook::parse(&hook_name) {
            Some(h) if h == expected => h,
            _ => {
                return Err(InvalidRequest(vec![
                    Issue::error(
                        IssueCode::Invalid,
                        format!(
                            "this service answers the {expected} hook, not {}",
                            quote(&hook_name)
                        ),
                    )
                    .at("hook"),
                ]));
            }
        };
        let hook_instance = take_string(&mut body, "hookInstance").unwrap_or_default();
        let fhir_server = match take_string(&mut body, "fhirServer") {
            Some(s) => Some(url::Url::parse(&s).map_err(|e| {
                InvalidRequest(vec![
                    Issue::error(IssueCode::Invalid, format!("not a URL: {e}")).at("fhirServer"),
                ])
            })?),
            None => None,
        };
        let fhir_authorization = match body.remove("fhirAuthorization") {
            Some(Value::Object(mut a)) => Some(FhirAuthorization {
                access_token: AccessToken::new(
                    take_string(&mut a, "access_token").unwrap_or_default(),
                ),
                token_type: take_string(&mut a, "token_type").unwrap_or_default(),
                scope: take_string(&mut a, "scope").unwrap_or_default(),
                subject: take_string(&mut a, "subject").unwrap_or_default(),
            }),
            _ => None,
        };
        let Some(Value::Object(mut context)) = body.remove("context") else {
            unreachable!("schema requires context")
        };
        let selections = match context.remove("selections") {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let draft_orders = context.remove("draftOrders");
        if hook == Hook::OrderSelect
            && let Some(orders) = &draft_orders
        {
            check_selections(&selections, orders)?;
        }
        let context = HookContext {
            user_id: take_string(&mut context, "userId").unwrap_or_default(),
            patient_id: take_string(&mut context, "patientId").unwrap_or_default(),
            encounter_id: take_string(&mut context, "encounterId"),
            selections,
            draft_orders,
        };
        let prefetch = match body.remove("prefetch") {
            Some(Value::Object(p)) => p,
            _ => Map::new(),
        };
        Ok(Self {
            hook,
            hook_instance,
            fhir_server,
            fhir_authorization,
            context,
            prefetch,
            unavailable: Vec::new(),
        })
    }
}

/// order-select: every selection must name an order present in draftOrders (spec: the
/// selections are a subset of the draft orders).
fn check_selections(selections: &[String], draft_orders: &Value) -> Result<(), InvalidRequest> {
    let present: Vec<String> = bundle_resources(draft_orders)
        .filter_map(|r| {
            Some(format!(
                "{}/{}",
                r.get("resourceType")?.as_str()?,
                r.get("id")?.as_str()?
            ))
        })
        .collect();
    let issues: Vec<Issue> = selections
        .iter()
        .enumerate()
        .filter(|(_, s)| !present.iter().any(|p| p == *s))
        .map(|(i, s)| {
            Issue::error(
                IssueCode::Invalid,
                format!("selection {} is not among context.draftOrders", quote(s)),
            )
            .at(format!("context.selections[{i}]"))
        })
        .collect();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(InvalidRequest(issues))
    }
}

/// The resources of a Bundle's entries (or the value itself when it is not a Bundle).
pub(crate) fn bundle_resources(value: &Value) -> impl Iterator<Item = &Value> {
    let entries = (value.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
        .then(|| value.get("entry").and_then(Value::as_array))
        .flatten();
    let single = if entries.is_none() && value.is_object() {
        Some(value)
    } else {
        None
    };
    entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .chain(single)
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Echo identifiers only when they look like tokens; never echo free text.
fn quote(s: &str) -> String {
    if s.len() <= 80
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/:".contains(c))
    {
        format!("\"{s}\"")
    } else {
        "the given value".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> EnvelopeSchemas {
        EnvelopeSchemas::compile().unwrap()
    }

    fn pv() -> Value {
        json!({"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
               "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": {"patient": null}})
    }

    #[test]
    fn parses_a_patient_view_request() {
        let r = HookRequest::from_value(pv(), &schemas(), Hook::PatientView).unwrap();
        assert_eq!(r.context.patient_id, "p1");
        assert_eq!(r.prefetch.get("patient"), Some(&Value::Null));
    }

    #[test]
    fn missing_context_field_is_reported_with_its_path() {
        let mut body = pv();
        body["context"].as_object_mut().unwrap().remove("patientId");
        let err = HookRequest::from_value(body, &schemas(), Hook::PatientView).unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|i| i.expression == vec!["context".to_owned()]
                    && i.diagnostics.contains("patientId")),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_hook_for_the_service_is_refused() {
        let err = HookRequest::from_value(pv(), &schemas(), Hook::OrderSign).unwrap_err();
        assert_eq!(err.0[0].expression, vec!["hook".to_owned()]);
    }

    #[test]
    fn token_never_shows_in_debug() {
        let a = FhirAuthorization {
            access_token: AccessToken::new("secret-token".into()),
            token_type: "Bearer".into(),
            scope: "x".into(),
            subject: "y".into(),
        };
        assert!(!format!("{a:?}").contains("secret-token"));
    }
}
