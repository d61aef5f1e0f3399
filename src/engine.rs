//! One request, one pass: the pipeline that the HTTP server and `rps-cds evaluate` share.
//!
//! body bytes → JSON (once) → envelope check → prefetch completion (parallel fetches) →
//! FHIR validation (invalid resources set aside) → clinical picture → rules → cards.
//!
//! Everything expensive is built once in [`Engine::new`] and shared read-only.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cards::{self, CardContext, EXTENSION_NAMESPACE};
use crate::cds_hooks::discovery::{PREFETCH_KEYS, ServiceDefinition, prefetch_template};
use crate::cds_hooks::request::bundle_resources;
use crate::cds_hooks::{CdsResponse, EnvelopeSchemas, Hook, HookRequest, InvalidRequest};
use crate::clinical::{self, ClinicalInput, DraftOrder, InvalidInput, SetAsideResource};
use crate::config::Config;
use crate::fhir::client::{FetchError, FhirClient};
use crate::fhir::outcome::{Issue, IssueCode, OperationOutcome};
use crate::fhir::{FhirValidator, InvalidResource};
use crate::knowledge::{Knowledge, KnowledgeError, Parameters};
use crate::rules::{self, Finding, InvalidSummary, RuleInput};

/// Charts with more resources than this are analysed on the blocking thread pool, so that a
/// huge chart never stalls the async workers (a typical chart takes well under 1 ms inline).
const INLINE_ANALYSIS_MAX_RESOURCES: usize = 300;

/// Start-up failures: the service refuses to start rather than run with a broken part.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error("knowledge base parameters: {0}")]
    Parameters(#[from] crate::knowledge::ParameterError),
    #[error("FHIR schema: {0}")]
    Schema(#[from] crate::fhir::validation::SchemaLoadError),
    #[error("CDS Hooks schemas: {0}")]
    Envelope(String),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("knowledge base does not cover the rules: {0}")]
    Coverage(String),
}

/// Why a call could not be answered with cards. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    #[error("request JSON is nested deeper than {0} levels")]
    TooDeep(usize),
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    #[error("prefetch could not be completed")]
    PrefetchUnavailable(Vec<Issue>),
}

impl EvaluationError {
    pub fn status(&self) -> u16 {
        match self {
            EvaluationError::Malformed(_)
            | EvaluationError::TooDeep(_)
            | EvaluationError::Invalid(_) => 400,
            EvaluationError::PrefetchUnavailable(_) => 412,
        }
    }

    pub fn outcome(&self) -> OperationOutcome {
        match self {
            EvaluationError::Malformed(msg) => OperationOutcome::single(
                Issue::error(IssueCode::Structure, format!("malformed JSON: {msg}")).at("$"),
            ),
            EvaluationError::TooDeep(max) => OperationOutcome::single(
                Issue::error(
                    IssueCode::TooCostly,
                    format!("JSON is nested deeper than {max} levels"),
                )
                .at("$"),
            ),
            EvaluationError::Invalid(InvalidRequest(issues)) => {
                OperationOutcome::new(issues.clone())
            }
            EvaluationError::PrefetchUnavailable(issues) => OperationOutcome::new(issues.clone()),
        }
    }
}

/// Stage durations of one evaluation, for metrics and logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub prefetch_fetch: Option<f64>,
    pub validation: f64,
    pub facts: f64,
    pub rules: f64,
    pub cards: f64,
}

/// The answer to one hook call, with what the audit trail and metrics need.
#[derive(Debug)]
pub struct Evaluation {
    pub response: CdsResponse,
    pub hook: Hook,
    pub hook_instance: String,
    pub patient_id: String,
    pub rules_fired: Vec<String>,
    pub resources_used: usize,
    pub resources_set_aside: usize,
    pub timings: StageTimings,
}

/// An evaluation with the request's identity, for the audit trail.
#[derive(Debug)]
pub struct TracedEvaluation {
    /// SHA-256 of the request with `fhirAuthorization` removed; `None` when the body was not
    /// JSON (a digest of raw bytes could cover a token).
    pub request_sha256: Option<String>,
    pub hook_instance: Option<String>,
    pub patient_id: Option<String>,
    pub result: Result<Evaluation, EvaluationError>,
}

/// Everything compiled once at start-up.
#[derive(Debug)]
pub struct Engine {
    pub knowledge: Knowledge,
    pub parameters: Parameters,
    pub validator: FhirValidator,
    pub envelopes: EnvelopeSchemas,
    pub fhir: FhirClient,
    pub max_json_depth: usize,
}

impl Engine {
    pub fn new(config: &Config) -> Result<Self, StartupError> {
        let knowledge = match &config.knowledge.dir {
            Some(dir) => Knowledge::from_dir(dir)?,
            None => Knowledge::embedded()?,
        };
        let parameters = knowledge.parameters(&config.parameters)?;
        check_coverage(&knowledge)?;
        let validator = FhirValidator::official()?;
        let envelopes = EnvelopeSchemas::compile().map_err(StartupError::Envelope)?;
        let fhir = FhirClient::new(&config.fhir)?;
        Ok(Self {
            knowledge,
            parameters,
            validator,
            envelopes,
            fhir,
            max_json_depth: config.max_json_depth,
        })
    }

    /// Parses the body once and checks its nesting depth.
    pub fn parse_body(&self, body: &[u8]) -> Result<Value, EvaluationError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EvaluationError::Malformed(e.to_string()))?;
        if depth_exceeds(&value, self.max_json_depth) {
            return Err(EvaluationError::TooDeep(self.max_json_depth));
        }
        Ok(value)
    }

    /// Answers one hook call for `service`, evaluated as of `as_of`.
    pub async fn evaluate(
        self: &Arc<Self>,
        service: &ServiceDefinition,
        body: &[u8],
        as_of: DateTime<Utc>,
    ) -> Result<Evaluation, EvaluationError> {
        self.evaluate_traced(service, body, as_of).await.result
    }

    /// As [`Engine::evaluate`], also returning what the audit trail records for every call,
    /// refused ones included: the request digest (tokens removed) and its identifiers.
    pub async fn evaluate_traced(
        self: &Arc<Self>,
        service: &ServiceDefinition,
        body: &[u8],
        as_of: DateTime<Utc>,
    ) -> TracedEvaluation {
        let value = match self.parse_body(body) {
            Ok(v) => v,
            Err(e) => {
                return TracedEvaluation {
                    request_sha256: None,
                    hook_instance: None,
                    patient_id: None,
                    result: Err(e),
                };
            }
        };
        // The digest is part of the audit cost, so the unaudited benchmark build skips it too.
        let request_sha256 =
            (!cfg!(feature = "unaudited-baseline")).then(|| crate::audit::request_digest(&value));
        let hook_instance = value
            .get("hookInstance")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let patient_id = value
            .pointer("/context/patientId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let result = self.evaluate_value(service, value, as_of).await;
        TracedEvaluation {
            request_sha256,
            hook_instance,
            patient_id,
            result,
        }
    }

    async fn evaluate_value(
        self: &Arc<Self>,
        service: &ServiceDefinition,
        value: Value,
        as_of: DateTime<Utc>,
    ) -> Result<Evaluation, EvaluationError> {
        let mut request = HookRequest::from_value(value, &self.envelopes, service.hook)?;
        let started = Instant::now();
        let fetched = self.complete_prefetch(&mut request).await?;
        let prefetch_fetch = fetched.then(|| started.elapsed().as_secs_f64());
        let resource_count: usize = request
            .prefetch
            .values()
            .map(|v| bundle_resources(v).count())
            .sum();
        let mut evaluation = if resource_count > INLINE_ANALYSIS_MAX_RESOURCES {
            let engine = Arc::clone(self);
            tokio::task::spawn_blocking(move || engine.analyse(request, as_of))
                .await
                .expect("analysis does not panic")
        } else {
            self.analyse(request, as_of)
        };
        evaluation.timings.prefetch_fetch = prefetch_fetch;
        Ok(evaluation)
    }

    /// Fills every prefetch key the client left absent or answered with an OperationOutcome,
    /// from `fhirServer`. Returns whether anything was fetched. `null` means the client has no
    /// data for the key: nothing to fetch.
    async fn complete_prefetch(&self, request: &mut HookRequest) -> Result<bool, EvaluationError> {
        let missing: Vec<&'static str> = PREFETCH_KEYS
            .iter()
            .copied()
            .filter(|key| match request.prefetch.get(*key) {
                None => true,
                Some(Value::Null) => false,
                Some(v) => {
                    v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome")
                }
            })
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        let Some(server) = request.fhir_server.clone() else {
            let issues = missing
                .iter()
                .map(|key| {
                    Issue::error(
                        IssueCode::Incomplete,
                        format!("prefetch key `{key}` was not provided and the request has no fhirServer to fetch it from"),
                    )
                    .at(format!("prefetch.{key}"))
                })
                .collect();
            return Err(EvaluationError::PrefetchUnavailable(issues));
        };
        if let Err(e) = self.fhir.check_server(&server) {
            return Err(EvaluationError::Invalid(InvalidRequest(vec![
                Issue::error(IssueCode::Security, e.to_string()).at("fhirServer"),
            ])));
        }
        let patient = url_component(&request.context.patient_id);
        let token = request.fhir_authorization.as_ref().map(|a| &a.access_token);
        let fetches = missing.iter().map(|key| {
            let query = prefetch_template(key)
                .unwrap_or_default()
                .replace("{{context.patientId}}", &patient);
            let server = &server;
            async move { (*key, self.fhir.fetch(server, &query, token).await) }
        });
        let results = futures::future::join_all(fetches).await;
        let mut issues = Vec::new();
        for (key, result) in results {
            match result {
                Ok(resource) => {
                    request.prefetch.insert(key.to_owned(), resource);
                }
                Err(e) => {
                    tracing::warn!(
                        prefetch_key = key,
                        error = e.kind(),
                        "prefetch fetch failed"
                    );
                    issues.push(fetch_issue(key, &e));
                }
            }
        }
        if issues.is_empty() {
            Ok(true)
        } else {
            Err(EvaluationError::PrefetchUnavailable(issues))
        }
    }

    /// The CPU part: validation, facts, rules, cards. Synchronous and free of I/O.
    pub fn analyse(&self, request: HookRequest, as_of: DateTime<Utc>) -> Evaluation {
        let t = Instant::now();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut valid: Vec<&Value> = Vec::new();
        let mut invalid: Vec<InvalidResource> = Vec::new();
        // Invalid prefetch resources other than the patient are read element by element.
        let mut invalid_inputs: Vec<InvalidInput> = Vec::new();
        let mut set_aside: Vec<SetAsideResource> = Vec::new();
        let mut patient: Option<&Value> = None;
        for (key, value) in &request.prefetch {
            for resource in bundle_resources(value) {
                let rt = resource
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if rt == "OperationOutcome" {
                    continue;
                }
                if let Some(id) = resource.get("id").and_then(Value::as_str)
                    && !seen.insert((rt.to_owned(), id.to_owned()))
                {
                    continue;
                }
                match self.validator.validate_resource(resource) {
                    Ok(()) if rt == "Patient" && key == "patient" => patient = Some(resource),
                    Ok(()) => valid.push(resource),
                    Err(e) => {
                        if rt != "Patient" && e.resource_type == rt {
                            invalid_inputs.push(InvalidInput {
                                resource,
                                defects: e.defect_paths(),
                            });
                        } else {
                            set_aside.push(SetAsideResource {
                                resource_type: e.resource_type.clone(),
                                id: e.id.clone(),
                            });
                        }
                        invalid.push(e);
                    }
                }
            }
        }
        // Only prefetch / fetched resources can hide facts; invalid draft orders are reported
        // separately (their checks cannot run) and must not make history unknown.
        let prefetch_invalid = invalid.len();
        let mut draft_orders: Vec<(&Value, Vec<String>)> = Vec::new();
        let mut invalid_draft_orders: Vec<String> = Vec::new();
        let mut checked_invalid_orders: Vec<InvalidResource> = Vec::new();
        if let Some(bundle) = &request.context.draft_orders {
            for order in bundle_resources(bundle) {
                let reference = reference_of(order);
                let selected = request.hook != Hook::OrderSelect
                    || request
                        .context
                        .selections
                        .iter()
                        .any(|s| Some(s) == reference.as_ref());
                match self.validator.validate_resource(order) {
                    Ok(()) if selected => draft_orders.push((order, Vec::new())),
                    Ok(()) => {}
                    // Checked element by element when what the checks read is intact (§4.1
                    // "invalid draft orders"), and listed in DATA-02 either way.
                    Err(e) if selected && clinical::draft_order_checkable(&e.defect_paths()) => {
                        draft_orders.push((order, e.defect_paths()));
                        checked_invalid_orders.push(e);
                    }
                    Err(e) => {
                        if selected {
                            invalid_draft_orders.push(e.reference());
                        }
                        invalid.push(e);
                    }
                }
            }
        }
        let validation = t.elapsed().as_secs_f64();
        for e in &invalid {
            tracing::info!(resource = %e.reference(), violations = e.violations.len(), "resource failed FHIR validation");
        }

        let t = Instant::now();
        let input = ClinicalInput {
            as_of,
            patient,
            resources: &valid,
            set_aside: &set_aside,
            invalid: &invalid_inputs,
            withheld: &[],
        };
        let picture =
            clinical::build_picture(&input, &self.knowledge.terminology, &self.parameters);
        let medications: Vec<&Value> = valid
            .iter()
            .copied()
            .chain(
                request
                    .context
                    .draft_orders
                    .iter()
                    .flat_map(bundle_resources),
            )
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Medication"))
            .collect();
        let orders: Vec<DraftOrder> = draft_orders
            .iter()
            .map(|(o, defects)| {
                clinical::classify_draft_order_in_part(
                    o,
                    defects,
                    &medications,
                    &picture,
                    &self.knowledge.terminology,
                    &self.parameters,
                )
            })
            .collect();
        let invalid_summaries: Vec<InvalidSummary> = invalid[..prefetch_invalid]
            .iter()
            .map(|e| {
                let used = clinical::invalid_use(
                    &e.resource_type,
                    &e.reference(),
                    &e.defect_paths(),
                    &picture,
                );
                InvalidSummary::of(e, used)
            })
            .chain(
                checked_invalid_orders
                    .iter()
                    .map(|e| InvalidSummary::of(e, clinical::draft_order_use(&e.defect_paths()))),
            )
            .collect();
        let facts = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let findings: Vec<Finding> = rules::evaluate(&RuleInput {
            picture: &picture,
            params: &self.parameters,
            hook: request.hook,
            draft_orders: &orders,
            invalid_resources: &invalid_summaries,
            invalid_draft_orders: &invalid_draft_orders,
        });
        let rules_time = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let ctx = CardContext {
            knowledge: &self.knowledge,
            parameters: &self.parameters,
            patient_id: &request.context.patient_id,
            encounter_id: request.context.encounter_id.as_deref(),
        };
        let cards = cards::render(&findings, &ctx);
        let rules_fired = cards.iter().map(|c| c.source.topic.code.clone()).collect();
        let response = CdsResponse {
            cards,
            extension: Some(
                json!({ format!("{EXTENSION_NAMESPACE}/knowledge-version"): self.knowledge.version }),
            ),
        };
        let cards_time = t.elapsed().as_secs_f64();
        Evaluation {
            response,
            hook: request.hook,
            hook_instance: request.hook_instance,
            patient_id: request.context.patient_id,
            rules_fired,
            resources_used: valid.len() + usize::from(patient.is_some()),
            resources_set_aside: invalid.len(),
            timings: StageTimings {
                prefetch_fetch: None,
                validation,
                facts,
                rules: rules_time,
                cards: cards_time,
            },
        }
    }
}

/// Every rule the code implements must be in the knowledge base (texts, source) and every
/// order template it names must exist: checked once, so a request can never meet a gap.
fn check_coverage(knowledge: &Knowledge) -> Result<(), StartupError> {
    let missing: Vec<&str> = rules::IMPLEMENTED_RULES
        .iter()
        .copied()
        .filter(|id| knowledge.rule(id).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(StartupError::Coverage(format!(
            "rules without a knowledge-base entry: {missing:?}"
        )));
    }
    knowledge
        .terminology
        .require(clinical::VALUE_SETS)
        .map_err(|e| StartupError::Coverage(e.to_string()))?;
    let missing_templates: Vec<&str> = rules::ORDER_TEMPLATES
        .iter()
        .copied()
        .filter(|t| !knowledge.order_templates.contains_key(*t))
        .collect();
    if !missing_templates.is_empty() {
        return Err(StartupError::Coverage(format!(
            "order templates missing: {missing_templates:?}"
        )));
    }
    Ok(())
}

fn fetch_issue(key: &str, e: &FetchError) -> Issue {
    let code = match e {
        FetchError::Timeout(_) => IssueCode::Timeout,
        FetchError::Status(401 | 403) => IssueCode::Security,
        _ => IssueCode::Incomplete,
    };
    Issue::error(
        code,
        format!("prefetch key `{key}` could not be fetched from fhirServer: {e}"),
    )
    .at(format!("prefetch.{key}"))
}

fn reference_of(resource: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        resource.get("resourceType")?.as_str()?,
        resource.get("id")?.as_str()?
    ))
}

/// Percent-encodes a patient id for use in a query (ids are [A-Za-z0-9.-] in FHIR, but the
/// context comes from the client).
fn url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// True when the JSON nests deeper than `max` (iterative: no recursion on hostile input).
pub fn depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_measured_without_recursion() {
        let mut v = json!(1);
        for _ in 0..100 {
            v = json!([v]);
        }
        assert!(depth_exceeds(&v, 64));
        assert!(!depth_exceeds(&json!({"a": [1, {"b": 2}]}), 64));
    }
}
