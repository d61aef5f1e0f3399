//! The CDS services: discovery (`GET /cds-services`) and the hook handler
//! (`POST /cds-services/{id}`), which authenticates the client, reads the body within limits,
//! hands it to the [`Engine`](crate::engine::Engine), commits the audit record and only then
//! answers.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::body::check_json_content_type;
use super::errors::evaluation_status;
use super::{ApiError, AppState};
use crate::audit::{CardRecord, InvocationRecord};
use crate::auth::CdsClient;
use crate::cds_hooks::discovery::{self, discovery_document};
use crate::engine::TracedEvaluation;
use crate::telemetry::{self, LogSafe, Stage};

pub(super) async fn discovery_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    Ok(HttpResponse::Ok().json(discovery_document()))
}

pub(super) async fn service_handler(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let service_id = path.into_inner();
    let Some(service) = discovery::service(&service_id) else {
        return Err(ApiError::UnknownService(service_id));
    };
    // Requests are counted by the `count_requests` middleware, like every route.
    answer_hook(&req, &service, payload, &state, started).await
}

async fn answer_hook(
    req: &HttpRequest,
    service: &discovery::ServiceDefinition,
    payload: web::Payload,
    state: &AppState,
    started: Instant,
) -> Result<HttpResponse, ApiError> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::Unavailable("the service is shutting down"));
    }
    let client = state.authenticate(req).await?;
    check_json_content_type(req)?;
    // The reservation is held until the answer is built: the parsed request costs a multiple
    // of its bytes.
    let (body, _reservation) = state.read_body(req, payload).await?;
    // This call's record is on its way: the writer may hold its commit for it (group commit).
    let expected = state.audit.expect_record();
    // The evaluation time is the record's time, so `rps-cds replay` evaluates as of it.
    let as_of = Utc::now();
    let traced = state.engine.evaluate_traced(service, &body, as_of).await;
    if let Ok(e) = &traced.result {
        record_evaluation_metrics(e);
    }
    let status = match &traced.result {
        Ok(_) => 200,
        Err(e) => evaluation_status(e).as_u16(),
    };
    let record = invocation_record(
        state,
        service,
        client.as_ref(),
        &traced,
        (as_of, status),
        started,
    );
    // Durability: the answer is sent only after its audit record is committed.
    let audit_started = Instant::now();
    let audited = state
        .audit
        .record_expected_invocation(record, Some(expected))
        .await;
    telemetry::record_audit_write(audit_started.elapsed().as_secs_f64());
    telemetry::record_stage(Stage::Audit, audit_started.elapsed().as_secs_f64());
    if let Err(e) = audited {
        tracing::error!(error = %e, service = service.id, "audit record could not be committed; answer withheld");
        return Err(ApiError::Unavailable(
            "the audit trail could not be written",
        ));
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    match traced.result {
        Ok(evaluation) => {
            tracing::info!(
                service = service.id,
                hook_instance = %LogSafe(traced.hook_instance.as_deref().unwrap_or("")),
                cards = evaluation.response.cards.len(),
                resources = evaluation.resources_used,
                set_aside = evaluation.resources_set_aside,
                issuer = client.as_ref().map(|c| c.iss.as_str()),
                latency_ms,
                "hook answered"
            );
            Ok(HttpResponse::Ok().json(&evaluation.response))
        }
        Err(e) => {
            tracing::info!(
                service = service.id,
                status,
                latency_ms,
                "hook request refused"
            );
            Err(e.into())
        }
    }
}

fn record_evaluation_metrics(e: &crate::engine::Evaluation) {
    let t = &e.timings;
    if let Some(fetch) = t.prefetch_fetch {
        telemetry::record_stage(Stage::PrefetchFetch, fetch);
    }
    telemetry::record_stage(Stage::Validation, t.validation);
    telemetry::record_stage(Stage::Facts, t.facts);
    telemetry::record_stage(Stage::Rules, t.rules);
    telemetry::record_stage(Stage::Cards, t.cards);
    telemetry::record_invalid_resources(e.resources_set_aside);
    for card in &e.response.cards {
        telemetry::record_card(&card.source.topic.code, card.indicator.as_str());
    }
}

fn invocation_record(
    state: &AppState,
    service: &discovery::ServiceDefinition,
    client: Option<&CdsClient>,
    traced: &TracedEvaluation,
    (time, http_status): (chrono::DateTime<Utc>, u16),
    started: Instant,
) -> InvocationRecord {
    let (rules_fired, cards, parameter_set) = match &traced.result {
        Ok(e) => (
            e.rules_fired.clone(),
            e.response
                .cards
                .iter()
                .map(|c| CardRecord {
                    uuid: uuid::Uuid::parse_str(&c.uuid).unwrap_or_default(),
                    rule_id: c.source.topic.code.clone(),
                    indicator: c.indicator.as_str().to_owned(),
                    summary: c.summary.clone(),
                    suggestions: c.suggestions.iter().map(|s| s.uuid.clone()).collect(),
                    override_reasons: c.override_reasons.iter().map(|r| r.code.clone()).collect(),
                })
                .collect(),
            Some(state.engine.parameter_set.digest.clone()),
        ),
        Err(_) => (Vec::new(), Vec::new(), None),
    };
    InvocationRecord {
        // The id the cards' uuids name; a refused call gets one of the same kind. Time-ordered
        // (v7): cheap appends to the audit trail's indexes.
        id: match &traced.result {
            Ok(e) => e.invocation_id,
            Err(_) => crate::audit::new_invocation_id(),
        },
        time,
        service_id: service.id.to_owned(),
        hook: Some(service.hook.as_str().to_owned()),
        hook_instance: traced.hook_instance.clone(),
        ehr_issuer: client.map(|c| c.iss.clone()),
        knowledge_version: state.engine.knowledge.version.clone(),
        parameter_set,
        patient_id: traced.patient_id.clone(),
        rules_fired,
        cards,
        request_sha256: traced.request_sha256.clone(),
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
        http_status,
    }
}
