//! One request, one pass: the pipeline that the HTTP server and `rps-cds evaluate` share.
//!
//! body bytes → JSON (once) → envelope check → prefetch completion (parallel fetches) →
//! FHIR validation (invalid resources set aside) → clinical picture → rules → cards.
//!
//! Everything expensive is built once in [`Engine::new`] and shared read-only.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::budget::{ByteBudget, Reservation};
use crate::cards::{self, CardContext, EXTENSION_NAMESPACE};
use crate::cds_hooks::discovery::{
    ServiceDefinition, prefetch_is_required, prefetch_is_search, prefetch_keys,
    prefetch_resource_type, prefetch_template,
};
use crate::cds_hooks::request::bundle_resources;
use crate::cds_hooks::{CdsResponse, EnvelopeSchemas, HookRequest, InvalidRequest};
use crate::clinical::{
    self, ClinicalInput, DraftOrder, InvalidInput, WithheldData, WithheldReason,
};
use crate::config::{Config, OnPrefetchFailure};
use crate::fhir::client::{Expected, FetchError, FhirClient};
use crate::fhir::identity::{Belonging, PatientInContext};
use crate::fhir::outcome::{Issue, IssueCode, OperationOutcome};
use crate::fhir::{FhirValidator, InvalidResource, SchemaViolation, UnavailableData};
use crate::knowledge::parameters::ParameterSet;
use crate::knowledge::{Hook, Knowledge, KnowledgeError, Parameters};
use crate::rules::{self, Finding, OtherPatientData, RuleInput};
use crate::telemetry::{self, LogSafe};

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

/// Why a call could not be answered with cards: what went wrong, as an OperationOutcome;
/// the HTTP layer chooses the status (`http::errors`).
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
    /// The process is already reading and evaluating `max_inflight_body_bytes`; retry.
    #[error("too much input data in flight")]
    Busy,
}

impl EvaluationError {
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
            EvaluationError::Busy => OperationOutcome::single(Issue::error(
                IssueCode::Transient,
                "the service is reading too much data at once; retry shortly",
            )),
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
    /// The id the audit trail records this call by; the cards' uuids name it
    /// ([`crate::audit::card_uuid`]).
    pub invocation_id: uuid::Uuid,
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
    /// [`crate::audit::request_digest`] of the request (never of a token); `None` when the body
    /// was not JSON (its bytes could hold a token nothing could tell apart).
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
    /// `parameters` with the source of each value and its digest, as the audit trail keeps it.
    pub parameter_set: ParameterSet,
    pub validator: FhirValidator,
    pub envelopes: EnvelopeSchemas,
    pub fhir: FhirClient,
    pub max_json_depth: usize,
    /// Draft orders per request at most (400 beyond).
    pub max_draft_orders: usize,
    /// `prefetch.on_failure`: degrade (DATA-04) or refuse (412).
    pub on_prefetch_failure: OnPrefetchFailure,
    /// Input bytes being read and evaluated at once, request bodies and fetched FHIR data
    /// (`max_inflight_body_bytes`).
    pub budget: Arc<ByteBudget>,
    /// `public_base_url`: cards link to `{public_base_url}/rules#RULE-ID`.
    pub public_base_url: String,
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
        let parameter_set = parameters.set();
        Ok(Self {
            knowledge,
            parameters,
            parameter_set,
            validator,
            envelopes,
            fhir,
            max_json_depth: config.max_json_depth,
            max_draft_orders: config.max_draft_orders,
            on_prefetch_failure: config.prefetch.on_failure,
            budget: ByteBudget::new(config.max_inflight_body_bytes),
            public_base_url: config.public_base_url.clone(),
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
        let request_sha256 = (!cfg!(feature = "unaudited-baseline"))
            .then(|| crate::audit::request_digest(body, &value));
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
        // Before the envelope schema walks them all: 10,000 draft orders would mean 10,000
        // validations, cards and audit rows.
        let draft_orders = value
            .pointer("/context/draftOrders/entry")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if draft_orders > self.max_draft_orders {
            return Err(EvaluationError::Invalid(InvalidRequest(vec![
                Issue::error(
                    IssueCode::TooCostly,
                    format!(
                        "{draft_orders} draft orders; this service checks at most {} per request",
                        self.max_draft_orders
                    ),
                )
                .at("context.draftOrders.entry"),
            ])));
        }
        let mut request = HookRequest::from_value(value, &self.envelopes, service.hook)?;
        let started = Instant::now();
        // The fetched data's bytes stay reserved until the analysis is done.
        let mut held: Vec<Reservation> = Vec::new();
        let fetched = self.complete_prefetch(&mut request, &mut held).await?;
        let prefetch_fetch = (!fetched.is_empty()).then(|| started.elapsed().as_secs_f64());
        self.check_patient_key(&request, &fetched)?;
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
        drop(held);
        Ok(evaluation)
    }

    /// Fills every prefetch key the client left absent, answered with an OperationOutcome, or
    /// answered with something other than a Bundle for a search, from `fhirServer`. Returns
    /// the keys fetched. `null` means the client has no data for the key: nothing to fetch.
    ///
    /// All fetches share one deadline (`fhir.deadline_ms`); those outstanding then are
    /// cancelled. A key that cannot be had fails the call with 412 under
    /// `prefetch.on_failure = refuse`, and always for the required keys (`patient`,
    /// `conditions`); otherwise it is left out and recorded in `request.unavailable`, so that
    /// its facts are unknown and DATA-04 says so. When the byte budget runs out while
    /// fetching, the call is refused with 503 (an overload of this service, not missing data).
    /// The reservations of the fetched bytes are pushed to `held`.
    async fn complete_prefetch(
        &self,
        request: &mut HookRequest,
        held: &mut Vec<Reservation>,
    ) -> Result<Vec<&'static str>, EvaluationError> {
        let mut absent: Vec<&'static str> = Vec::new();
        let mut unusable: Vec<(&'static str, FetchError)> = Vec::new();
        for key in prefetch_keys() {
            match request.prefetch.get(key) {
                None => absent.push(key),
                Some(Value::Null) => {}
                Some(v) => {
                    if let Err(e) = prefetch_shape(key, v) {
                        unusable.push((key, e));
                    }
                }
            }
        }
        if absent.is_empty() && unusable.is_empty() {
            return Ok(Vec::new());
        }
        let mut failures: Vec<(&'static str, FetchError)> = Vec::new();
        let mut fetched: Vec<&'static str> = Vec::new();
        match request.fhir_server.clone() {
            None => {
                // An absent key without a server to fetch it from is the client's mistake.
                if !absent.is_empty() {
                    let issues = absent
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
                }
                failures = unusable;
            }
            Some(server) => {
                if let Err(e) = self.fhir.check_server(&server) {
                    return Err(EvaluationError::Invalid(InvalidRequest(vec![
                        Issue::error(IssueCode::Security, e.to_string()).at("fhirServer"),
                    ])));
                }
                let keys: Vec<&'static str> = absent
                    .into_iter()
                    .chain(unusable.into_iter().map(|(k, _)| k))
                    .collect();
                let mut results = self.fetch_keys(request, &server, &keys).await;
                let over_budget = results
                    .iter()
                    .any(|(_, r, _)| matches!(r, Err(FetchError::OverBudget)));
                held.extend(results.iter_mut().filter_map(|(_, _, h)| h.take()));
                for (key, result, _) in results {
                    match result {
                        Ok(resource) => {
                            request.prefetch.insert(key.to_owned(), resource);
                            fetched.push(key);
                        }
                        Err(e) => {
                            telemetry::record_fhir_fetch_error(e.kind());
                            tracing::warn!(
                                prefetch_key = key,
                                error = e.kind(),
                                "prefetch fetch failed"
                            );
                            failures.push((key, e));
                        }
                    }
                }
                if over_budget {
                    return Err(EvaluationError::Busy);
                }
            }
        }
        if failures.is_empty() {
            return Ok(fetched);
        }
        let required = failures.iter().any(|(key, _)| prefetch_is_required(key));
        if required || self.on_prefetch_failure == OnPrefetchFailure::Refuse {
            let issues = failures
                .iter()
                .map(|(key, e)| fetch_issue(key, e, request.fhir_server.is_some()))
                .collect();
            return Err(EvaluationError::PrefetchUnavailable(issues));
        }
        for (key, e) in failures {
            request.prefetch.remove(key);
            request.unavailable.push(UnavailableData {
                key,
                resource_type: prefetch_resource_type(key).unwrap_or_default(),
                why: unavailable_why(&e),
            });
        }
        Ok(fetched)
    }

    /// Fetches `keys` in parallel under one deadline; every key gets a result and the
    /// reservation of the bytes it read.
    async fn fetch_keys(
        &self,
        request: &HookRequest,
        server: &url::Url,
        keys: &[&'static str],
    ) -> Vec<(&'static str, Result<Value, FetchError>, Option<Reservation>)> {
        let patient = url_component(&request.context.patient_id);
        let token = request.fhir_authorization.as_ref().map(|a| &a.access_token);
        let deadline_ms = self.fhir.deadline().as_millis() as u64;
        let deadline = tokio::time::Instant::now() + self.fhir.deadline();
        let fetches = keys.iter().map(|key| {
            let query = prefetch_template(key)
                .unwrap_or_default()
                .replace("{{context.patientId}}", &patient);
            let expected = expected_answer(key);
            let mut held = self.budget.reserve(0);
            async move {
                let Some(reservation) = held.as_mut() else {
                    return (*key, Err(FetchError::OverBudget), held);
                };
                // Past the deadline the fetch future is dropped: its connection is closed.
                let result = tokio::time::timeout_at(
                    deadline,
                    self.fhir
                        .fetch(server, &query, expected, token, reservation),
                )
                .await
                .unwrap_or(Err(FetchError::Deadline(deadline_ms)));
                (*key, result, held)
            }
        });
        futures::future::join_all(fetches).await
    }

    /// The `patient` key must be the patient in `context.patientId`: a chart of another patient
    /// is refused outright (400 when the client sent it, 412 when `fhirServer` returned it),
    /// since there would be nothing of this patient to advise on. The message names no id.
    fn check_patient_key(
        &self,
        request: &HookRequest,
        fetched: &[&str],
    ) -> Result<(), EvaluationError> {
        let Some(value) = request.prefetch.get("patient") else {
            return Ok(());
        };
        let ctx = patient_in_context(request);
        let other = bundle_resources(value).any(|r| {
            r.get("resourceType").and_then(Value::as_str) == Some("Patient")
                && ctx.belonging(r, self.validator.patient_elements()) == Belonging::OtherPatient
        });
        if !other {
            return Ok(());
        }
        tracing::warn!("prefetch key patient holds another patient: call refused");
        if fetched.contains(&"patient") {
            Err(EvaluationError::PrefetchUnavailable(vec![
                Issue::error(
                    IssueCode::Invalid,
                    "fhirServer returned a Patient other than the one in context.patientId",
                )
                .at("prefetch.patient"),
            ]))
        } else {
            Err(EvaluationError::Invalid(InvalidRequest(vec![
                Issue::error(
                    IssueCode::Invalid,
                    "prefetch.patient is not the patient in context.patientId",
                )
                .at("prefetch.patient"),
            ])))
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
        let mut set_aside: Vec<InvalidResource> = Vec::new();
        let mut patient: Option<&Value> = None;
        let identity = patient_in_context(&request);
        let elements = self.validator.patient_elements();
        let mut withheld: Vec<WithheldData> = Vec::new();
        let mut other_patient = OtherPatientData::default();
        for (key, value) in &request.prefetch {
            let resources: Vec<(&Value, &str, Belonging)> = bundle_resources(value)
                .map(|r| {
                    let rt = r.get("resourceType").and_then(Value::as_str);
                    (r, rt.unwrap_or_default(), identity.belonging(r, elements))
                })
                .filter(|(_, rt, _)| *rt != "OperationOutcome")
                .collect();
            // One record of another patient and the whole key is distrusted: whatever the
            // EHR or server did wrong may have mixed the charts in ways no record shows.
            if resources
                .iter()
                .any(|(_, _, b)| *b == Belonging::OtherPatient)
            {
                let mut types: BTreeSet<String> = resources
                    .iter()
                    .map(|(_, rt, _)| (*rt).to_owned())
                    .collect();
                types.extend(prefetch_resource_type(key).map(str::to_owned));
                tracing::warn!(
                    prefetch_key = %LogSafe(key),
                    resources = resources.len(),
                    "prefetch key holds records of another patient: not used"
                );
                other_patient.resource_types.extend(types.iter().cloned());
                withheld.push(WithheldData {
                    resource_types: types.into_iter().collect(),
                    reason: WithheldReason::OtherPatient,
                });
                continue;
            }
            for (resource, rt, belonging) in resources {
                if let Some(id) = resource.get("id").and_then(Value::as_str)
                    && !seen.insert((rt.to_owned(), id.to_owned()))
                {
                    continue;
                }
                let validated = match (self.validator.validate_resource(resource), belonging) {
                    (Ok(()), Belonging::Unreadable(element)) => {
                        Err(unreadable_subject(resource, element, None))
                    }
                    (Err(e), Belonging::Unreadable(element)) => {
                        Err(unreadable_subject(resource, element, Some(e)))
                    }
                    (result, _) => result,
                };
                match validated {
                    Ok(()) if rt == "Patient" && key == "patient" => patient = Some(resource),
                    Ok(()) => valid.push(resource),
                    Err(e) => {
                        if rt != "Patient" && e.resource_type == rt {
                            invalid_inputs.push(InvalidInput {
                                resource,
                                defects: e.defect_paths(),
                            });
                        } else {
                            set_aside.push(e.clone());
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
                let validated = match (
                    self.validator.validate_resource(order),
                    identity.belonging(order, elements),
                ) {
                    (_, Belonging::OtherPatient) => {
                        // Never checked against this patient's chart; DATA-03 reports it.
                        if selected {
                            other_patient.draft_orders += 1;
                        }
                        continue;
                    }
                    (result, Belonging::Unreadable(element)) => {
                        Err(unreadable_subject(order, element, result.err()))
                    }
                    (result, _) => result,
                };
                match validated {
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
        log_set_aside(&invalid);

        let t = Instant::now();
        withheld.extend(withheld_unavailable(&request.unavailable));
        let input = ClinicalInput {
            as_of,
            patient,
            resources: &valid,
            set_aside: &set_aside,
            invalid: &invalid_inputs,
            withheld: &withheld,
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
        // How each set-aside resource was used, now that the picture is built (DATA-02): the
        // chart's, then the draft orders checked in part; the others are listed by reference.
        let resources_set_aside = invalid.len();
        invalid.truncate(prefetch_invalid);
        for e in &mut invalid {
            e.used = clinical::invalid_use(
                &e.resource_type,
                &e.reference(),
                &e.defect_paths(),
                &picture,
            );
        }
        for mut e in checked_invalid_orders {
            e.used = clinical::draft_order_use(&e.defect_paths());
            invalid.push(e);
        }
        let facts = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let input = RuleInput {
            picture: &picture,
            params: &self.parameters,
            hook: request.hook,
            draft_orders: &orders,
            invalid_resources: &invalid,
            invalid_draft_orders: &invalid_draft_orders,
            other_patient: &other_patient,
            unavailable: &request.unavailable,
        };
        // First pass: every rule's findings; second pass: the coherence rules (§5).
        let mut findings: Vec<Finding> = rules::evaluate(&input);
        rules::registry::settle(&mut findings, &self.knowledge, request.hook);
        let (findings, silenced) = rules::coherence::apply(&input, findings);
        for s in &silenced {
            tracing::debug!(rule = %s.rule, pair = s.pair, "finding silenced by coherence");
        }
        let rules_time = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let ctx = CardContext {
            knowledge: &self.knowledge,
            parameters: &self.parameters,
            patient_id: &request.context.patient_id,
            encounter_id: request.context.encounter_id.as_deref(),
            public_base_url: &self.public_base_url,
        };
        let rendered = cards::render(&findings, &ctx);
        // Every id that applied, merged and left-out cards included: the audit trail and the
        // feedback statistics count rules, not cards.
        let rules_fired = rendered
            .rules_applied
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        // Each card's uuid names this invocation, so feedback on it finds the call without an
        // index row per card (`audit::ids`).
        let invocation_id = crate::audit::new_invocation_id();
        let mut cards = rendered.cards;
        for (position, card) in cards.iter_mut().enumerate() {
            if let Some(uuid) = crate::audit::card_uuid(invocation_id, position) {
                card.uuid = uuid.to_string();
            }
        }
        let response = CdsResponse {
            cards,
            extension: Some(response_extension(
                &self.knowledge.version,
                &self.parameter_set.digest,
                &silenced,
            )),
        };
        let cards_time = t.elapsed().as_secs_f64();
        Evaluation {
            invocation_id,
            response,
            hook: request.hook,
            hook_instance: request.hook_instance,
            patient_id: request.context.patient_id,
            rules_fired,
            resources_used: valid.len() + usize::from(patient.is_some()),
            resources_set_aside,
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

/// Every rule of the registry must be in the knowledge base (texts, source) with the section
/// and hooks its evaluation serves, and every order template it names must exist: checked
/// once, so a request can never meet a gap.
fn check_coverage(knowledge: &Knowledge) -> Result<(), StartupError> {
    rules::registry::check_knowledge(knowledge)
        .map_err(|problems| StartupError::Coverage(problems.join("; ")))?;
    knowledge
        .terminology
        .require(clinical::VALUE_SETS)
        .map_err(|e| StartupError::Coverage(e.to_string()))?;
    knowledge
        .check_order_templates(rules::ORDER_TEMPLATES)
        .map_err(|e| StartupError::Coverage(e.to_string()))
}

/// The keys left out under `degrade`, as data withheld from the picture (DATA-04): every fact
/// their resource types could carry is unknown, closed world or not.
fn withheld_unavailable(unavailable: &[UnavailableData]) -> Vec<WithheldData> {
    if unavailable.is_empty() {
        return Vec::new();
    }
    vec![WithheldData {
        resource_types: unavailable
            .iter()
            .map(|u| u.resource_type.to_owned())
            .collect(),
        reason: WithheldReason::Unavailable,
    }]
}

/// What a query for `key` must be answered with.
fn expected_answer(key: &str) -> Expected {
    if prefetch_is_search(key) {
        Expected::Searchset
    } else {
        Expected::Resource(prefetch_resource_type(key).unwrap_or_default())
    }
}

/// A prefetch value the EHR sent is usable: not an OperationOutcome, a Bundle for a search,
/// the template's resource type for a read.
fn prefetch_shape(key: &str, value: &Value) -> Result<(), FetchError> {
    let resource_type = value.get("resourceType").and_then(Value::as_str);
    match (resource_type, expected_answer(key)) {
        (Some("OperationOutcome"), _) => Err(FetchError::OperationOutcome),
        (Some("Bundle"), Expected::Searchset) => Ok(()),
        (_, Expected::Searchset) => Err(FetchError::WrongResource("searchset Bundle")),
        (Some(found), Expected::Resource(rt)) if found == rt => Ok(()),
        (_, Expected::Resource(rt)) => Err(FetchError::WrongResource(rt)),
    }
}

/// Why a key could not be had, for the DATA-04 card: plain words, no URL, no token.
fn unavailable_why(e: &FetchError) -> &'static str {
    match e {
        FetchError::Timeout(_) => "the FHIR server did not answer in time",
        FetchError::Deadline(_) => "fetching did not finish within the time limit of the call",
        FetchError::Connect => "the FHIR server could not be reached",
        FetchError::Status(_) => "the FHIR server answered with an error",
        FetchError::InvalidBody => "the answer was not readable FHIR data",
        FetchError::TooLarge(_) => "the answer exceeded the size limit",
        FetchError::OperationOutcome => "an error report (OperationOutcome) came instead of data",
        FetchError::WrongResource(_) => "another kind of data came than was asked for",
        FetchError::TooManyPages(_) => "the search had more pages than the service reads",
        FetchError::OverBudget => "the service was reading too much data at once",
        FetchError::ForeignNextLink => {
            "the next page was on another server, where the access token is not sent"
        }
        FetchError::InsecureServer | FetchError::BadUrl => "the data could not be requested",
    }
}

/// Resources set aside by validation: one log line per request (counts by type, the first
/// few references), every untrusted string escaped and truncated.
fn log_set_aside(invalid: &[InvalidResource]) {
    const MAX_TYPES: usize = 10;
    const MAX_REFERENCES: usize = 5;
    if invalid.is_empty() {
        return;
    }
    let mut by_type: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in invalid {
        *by_type.entry(e.resource_type.as_str()).or_default() += 1;
    }
    let mut types: Vec<String> = by_type
        .iter()
        .take(MAX_TYPES)
        .map(|(t, n)| format!("{}={n}", LogSafe(t)))
        .collect();
    if by_type.len() > MAX_TYPES {
        types.push(format!("+{} more types", by_type.len() - MAX_TYPES));
    }
    let references: Vec<String> = invalid
        .iter()
        .take(MAX_REFERENCES)
        .map(|e| LogSafe(&e.reference()).to_string())
        .collect();
    tracing::info!(
        set_aside = invalid.len(),
        by_type = %types.join(","),
        first = %references.join(","),
        "resources set aside: failed FHIR validation"
    );
}

/// The response's extension: the knowledge-base version, the digest of the effective parameter
/// set (audit trail), and what the coherence pass silenced
/// (rule, draft order, the pair and its reason), so a missing card can be explained.
fn response_extension(
    version: &str,
    parameter_set: &str,
    silenced: &[rules::coherence::Silenced],
) -> Value {
    let mut e = json!({
        format!("{EXTENSION_NAMESPACE}/knowledge-version"): version,
        format!("{EXTENSION_NAMESPACE}/parameter-set"): parameter_set,
    });
    if !silenced.is_empty() {
        e[format!("{EXTENSION_NAMESPACE}/silenced")] = silenced
            .iter()
            .map(|s| {
                json!({
                    "rule": s.rule.as_str(),
                    "draftOrder": s.draft_order,
                    "by": s.pair,
                    "reason": s.reason,
                })
            })
            .collect();
    }
    e
}

/// The 412 issue of a key that could not be had; `fetched` tells whether it was fetched from
/// fhirServer or is the EHR's own prefetch value (with no server to retry).
fn fetch_issue(key: &str, e: &FetchError, fetched: bool) -> Issue {
    let code = match e {
        FetchError::Timeout(_) | FetchError::Deadline(_) => IssueCode::Timeout,
        FetchError::TooLarge(_) => IssueCode::TooCostly,
        FetchError::Status(401 | 403) => IssueCode::Security,
        _ => IssueCode::Incomplete,
    };
    let diagnostics = if fetched {
        format!("prefetch key `{key}` could not be fetched from fhirServer: {e}")
    } else {
        let what = match e {
            FetchError::OperationOutcome => "an OperationOutcome",
            _ => "not the resource its template asks for",
        };
        format!(
            "prefetch key `{key}` holds {what} and the request has no fhirServer to fetch it from"
        )
    };
    Issue::error(code, diagnostics).at(format!("prefetch.{key}"))
}

fn patient_in_context(request: &HookRequest) -> PatientInContext<'_> {
    PatientInContext {
        patient_id: &request.context.patient_id,
        fhir_server: request.fhir_server.as_ref(),
    }
}

/// A resource whose patient reference cannot be compared with `context.patientId` is not read
/// (it is not "another patient" either): it is set aside like an invalid one, so DATA-02 names
/// it and the facts it could carry are unknown, never absent.
fn unreadable_subject(
    resource: &Value,
    element: &'static str,
    invalid: Option<InvalidResource>,
) -> InvalidResource {
    let mut e = invalid.unwrap_or_else(|| {
        InvalidResource::new(
            resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        )
    });
    let pointer = format!("/{element}");
    e.violations.push(SchemaViolation {
        paths: vec![pointer.clone()],
        pointer,
        message: "does not reference the patient in context (missing, not a Patient, or not \
                  comparable)"
            .to_owned(),
        kind: "does not reference the patient in context".to_owned(),
    });
    e
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
pub(crate) fn depth_exceeds(value: &Value, max: usize) -> bool {
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
