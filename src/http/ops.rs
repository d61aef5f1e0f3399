//! Operations endpoints: `GET /healthz` (the process answers), `GET /readyz` (ready to take
//! hook calls), `GET /metrics` (Prometheus) and `GET /openapi.json`.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use super::{ApiError, AppState, openapi};
use crate::telemetry;

/// Liveness: the process answers.
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub(super) async fn readiness_handler(
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ready = readiness(&state).await;
    telemetry::set_ready(ready.is_ok());
    ready.map_err(ApiError::NotReady)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "knowledgeVersion": state.engine.knowledge.version,
    })))
}

/// Ready = not draining and the audit store answers (the knowledge base and schemas are
/// loaded before the server accepts connections at all).
async fn readiness(state: &AppState) -> Result<(), &'static str> {
    if state.draining.load(Ordering::SeqCst) {
        return Err("draining");
    }
    if let Err(e) = state.audit.ping().await {
        tracing::warn!(error = %e, "readiness: audit store unreachable");
        return Err("audit store unavailable");
    }
    Ok(())
}

/// Prometheus exposition of the process's metrics.
pub(super) async fn metrics_handler(state: web::Data<AppState>) -> HttpResponse {
    telemetry::set_audit_queue_depth(state.audit.queue_depth());
    HttpResponse::Ok()
        .content_type(telemetry::PROMETHEUS_CONTENT_TYPE)
        .body(telemetry::install_metrics().render())
}

/// The OpenAPI 3.1 description of these endpoints, with this deployment's base URL.
pub(super) async fn openapi_handler(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi::openapi_json_with_server(
        &state.config.public_base_url,
    ))
}
