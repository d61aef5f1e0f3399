//! The HTTP face of the service (actix-web): discovery, the three hook services, feedback,
//! health and readiness. Handlers are thin: they read the body within limits, authenticate
//! the CDS client, and hand the bytes to the same [`Engine`] the CLI uses.

pub mod admin;
pub mod body;
pub mod errors;
pub mod openapi;
pub mod rules_page;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;

use crate::audit::{AuditStore, CardRecord, FeedbackRecord, InvocationRecord, StorageError};
use crate::auth::{Authenticator, CdsClient, ReplayGuard, auth_required};
use crate::cds_hooks::discovery::{self, discovery_document};
use crate::cds_hooks::feedback::Feedback;
use crate::config::Config;
use crate::engine::{Engine, EvaluationError, StartupError, TracedEvaluation};
use crate::telemetry::{self, LogSafe, Stage};
use body::{BodyBudget, BodyLimits, Reservation};
pub use errors::ApiError;

/// Shared by all workers.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: Config,
    /// `None` when authentication is off (loopback default, or disabled explicitly).
    pub authenticator: Option<Authenticator>,
    /// The audit trail: every call is committed here before its answer is sent.
    pub audit: AuditStore,
    /// Set on SIGTERM: readiness turns false while in-flight calls finish.
    pub draining: AtomicBool,
    /// Input bytes being read and evaluated at once (`max_inflight_body_bytes`): request
    /// bodies and the FHIR data fetched for them (the engine's budget).
    pub body_budget: Arc<BodyBudget>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("authentication setup: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("audit store: {0}")]
    Storage(#[from] StorageError),
    /// The benchmark build without audit must never serve real traffic.
    #[error(
        "this binary was built with the benchmark feature unaudited-baseline (no audit trail) \
         and only binds loopback addresses, not {0}"
    )]
    UnauditedBuild(SocketAddr),
}

impl AppState {
    /// Compiles the engine (off the async workers), opens the audit store and sets up
    /// authentication.
    pub async fn new(config: Config) -> Result<Self, ServeError> {
        let engine_config = config.clone();
        let engine = tokio::task::spawn_blocking(move || {
            let engine = Engine::new(&engine_config)?;
            // The explaining FHIR validator compiles in the background; wait so that the first
            // invalid resource is not slow and a broken schema stops start-up.
            engine.validator.wait_until_ready()?;
            Ok::<_, StartupError>(engine)
        })
        .await
        .expect("engine construction does not panic")?;
        let engine = Arc::new(engine);
        if cfg!(feature = "unaudited-baseline") {
            if !config.bind.ip().is_loopback() {
                return Err(ServeError::UnauditedBuild(config.bind));
            }
            tracing::warn!(
                "benchmark build (feature unaudited-baseline): hook calls are NOT audited"
            );
        }
        let audit = AuditStore::open(&config.storage).await?;
        // Records name the parameter set by digest: it is stored (once) before any of them.
        audit.record_parameter_set(&engine.parameter_set).await?;
        let authenticator = if auth_required(&config.auth.mode, &config.bind) {
            // With PostgreSQL, a token replayed to another replica is refused too.
            let guard = match audit.postgres_pool() {
                Some(pool) => ReplayGuard::Postgres(pool),
                None => ReplayGuard::memory(config.auth.replay_cache_capacity),
            };
            Some(Authenticator::new(
                &config.auth,
                engine.fhir.http().clone(),
                guard,
            )?)
        } else {
            if !config.bind.ip().is_loopback() {
                tracing::warn!(bind = %config.bind, "CDS client authentication is DISABLED on a non-loopback address by configuration");
            } else {
                tracing::info!(
                    "CDS client authentication is off: the service binds a loopback address"
                );
            }
            None
        };
        // One budget for request bodies and the FHIR data fetched for them.
        let body_budget = Arc::clone(&engine.budget);
        Ok(Self {
            engine,
            config,
            authenticator,
            audit,
            draining: AtomicBool::new(false),
            body_budget,
        })
    }

    /// Reads a request body within the configured limits (see [`body::read_body`]).
    async fn read_body(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> Result<(web::BytesMut, Reservation), ApiError> {
        let limits = BodyLimits {
            max_bytes: self.config.max_body_bytes,
            timeout: std::time::Duration::from_secs(self.config.client_body_timeout_secs),
        };
        body::read_body(req, payload, limits, &self.body_budget).await
    }

    /// Verifies the CDS client's JWT when authentication is on. The audience is the external
    /// URL of the endpoint being called.
    async fn authenticate(&self, req: &HttpRequest) -> Result<Option<CdsClient>, ApiError> {
        let Some(auth) = &self.authenticator else {
            return Ok(None);
        };
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let audience = self.config.external_url(req.path());
        match auth.verify(header, &audience).await {
            Ok(client) => Ok(Some(client)),
            Err(failure) => {
                crate::telemetry::record_jwt_failure(failure.reason());
                tracing::warn!(
                    reason = failure.reason(),
                    path = %LogSafe(req.path()),
                    "CDS client authentication failed"
                );
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// A running server (tests and `serve`).
pub struct RunningServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub state: web::Data<AppState>,
    server: Server,
}

impl RunningServer {
    /// Runs until the server stops.
    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Starts the server on a background task and returns its address (for tests).
    pub fn spawn(self) -> (SocketAddr, ServerHandle, web::Data<AppState>) {
        let RunningServer {
            addr,
            handle,
            state,
            server,
        } = self;
        tokio::spawn(server);
        (addr, handle, state)
    }
}

/// Builds the server on `config.bind` (port 0 picks a free port).
pub async fn build(config: Config) -> Result<RunningServer, ServeError> {
    let listener = TcpListener::bind(config.bind).map_err(|source| ServeError::Bind {
        addr: config.bind,
        source,
    })?;
    let addr = listener.local_addr()?;
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.workers
    };
    let shutdown_timeout = config.shutdown_timeout_secs;
    let state = web::Data::new(AppState::new(config).await?);
    telemetry::install_metrics();
    telemetry::set_knowledge_version(&state.engine.knowledge.version);
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(cors(&app_state.config.cors_allowed_origins))
            .wrap(from_fn(count_requests))
            .configure(routes)
    })
    .workers(workers)
    .shutdown_timeout(shutdown_timeout)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok(RunningServer {
        addr,
        handle,
        state,
        server,
    })
}

/// `rps-cds serve`: runs until SIGTERM/SIGINT, then drains: readiness false, no new
/// connections, in-flight calls finish within `shutdown_timeout_secs`.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let running = build(config).await?;
    tracing::info!(addr = %running.addr, knowledge = %running.state.engine.knowledge.version, "rps-cds listening");
    let handle = running.handle.clone();
    let state = running.state.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        state.draining.store(true, Ordering::SeqCst);
        telemetry::set_ready(false);
        tracing::info!("shutdown requested: draining in-flight calls");
        handle.stop(true).await;
    });
    let audit = running.state.audit.clone();
    running.wait().await?;
    // Every answered call has its record committed already; close() flushes anything queued.
    audit.close().await;
    tracing::info!("rps-cds stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn cors(origins: &[String]) -> Cors {
    // Browser-based CDS clients call from another origin. Credentials are never allowed: the
    // JWT travels in the Authorization header, and preflights are answered without one.
    let mut cors = Cors::default()
        .allowed_methods(vec!["GET", "POST", "OPTIONS"])
        .allowed_headers(vec![
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
        ])
        .max_age(86_400);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for o in origins {
            cors = cors.allowed_origin(o);
        }
    }
    cors
}

/// Every (method, path) the server answers; `schemas/openapi.json` documents exactly these
/// (checked by a test).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/cds-services"),
    ("POST", "/cds-services/{id}"),
    ("POST", "/cds-services/{id}/feedback"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/admin/rules/stats"),
    ("GET", "/admin"),
    ("GET", "/rules"),
];

/// All routes; unknown paths get a 404 OperationOutcome and wrong methods a 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cds-services")
            .route(web::get().to(discovery_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/cds-services/{id}")
            .route(web::post().to(service_handler))
            .default_service(web::to(|| not_allowed("POST"))),
    )
    .service(
        web::resource("/cds-services/{id}/feedback")
            .route(web::post().to(feedback_handler))
            .default_service(web::to(|| not_allowed("POST"))),
    )
    .service(
        web::resource("/healthz")
            .route(
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readiness_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/admin/rules/stats")
            .route(web::get().to(rule_stats_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/admin")
            .route(web::get().to(admin_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .service(
        web::resource("/rules")
            .route(web::get().to(rules_handler))
            .default_service(web::to(|| not_allowed("GET"))),
    )
    .default_service(web::to(|| async {
        HttpResponse::from_error(ApiError::NotFound)
    }));
}

/// `rps_cds_requests_total` and `rps_cds_request_duration_seconds` for every route, CORS
/// preflights and unknown paths included; labels from bounded sets only (the matched route,
/// a hosted service id), never the raw path.
async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let preflight = req.method() == actix_web::http::Method::OPTIONS;
    let result = next.call(req).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(res) => {
            let (service, hook) = route_labels(res.request(), preflight);
            telemetry::record_request(service, hook, res.status().as_u16(), seconds);
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            telemetry::record_request("unknown", "none", status, seconds);
        }
    }
    result
}

/// The `service` and `hook` labels of a request after routing.
fn route_labels(req: &HttpRequest, preflight: bool) -> (&'static str, &'static str) {
    let route = match req.match_pattern().as_deref() {
        Some("/cds-services/{id}") => {
            return req
                .match_info()
                .get("id")
                .and_then(discovery::service)
                .map_or(("unknown", "none"), |s| (s.id, s.hook.as_str()));
        }
        _ if preflight => "preflight",
        Some("/cds-services") => "discovery",
        Some("/cds-services/{id}/feedback") => "feedback",
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        Some("/metrics") => "metrics",
        Some("/openapi.json") => "openapi",
        Some("/admin/rules/stats") => "rule_stats",
        _ => "not_found",
    };
    (route, "none")
}

async fn not_allowed(allowed: &'static str) -> HttpResponse {
    HttpResponse::from_error(ApiError::MethodNotAllowed(allowed))
}

async fn discovery_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    Ok(HttpResponse::Ok().json(discovery_document()))
}

async fn readiness_handler(state: web::Data<AppState>) -> HttpResponse {
    let ready = readiness(&state).await;
    telemetry::set_ready(ready.is_ok());
    match ready {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "knowledgeVersion": state.engine.knowledge.version,
        })),
        Err(why) => HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": why})),
    }
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

async fn service_handler(
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
        Err(e) => e.status(),
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
        // Time-ordered (v7) like card uuids: cheap appends to the audit trail's indexes.
        id: uuid::Uuid::now_v7(),
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

async fn feedback_handler(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service_id = path.into_inner();
    if discovery::service(&service_id).is_none() {
        return Err(ApiError::UnknownService(service_id));
    }
    state.authenticate(&req).await?;
    check_json_content_type(&req)?;
    let (body, _reservation) = state.read_body(&req, payload).await?;
    let value = state.engine.parse_body(&body)?;
    let feedback =
        Feedback::from_value(value, &state.engine.envelopes).map_err(EvaluationError::from)?;
    let records: Vec<FeedbackRecord> = feedback
        .feedback
        .iter()
        .map(|f| {
            let reason = f.override_reason.as_ref().and_then(|r| r.reason.as_ref());
            FeedbackRecord {
                card: f.card,
                outcome: f.outcome.as_str().to_owned(),
                accepted_suggestions: f
                    .accepted_suggestions
                    .iter()
                    .map(|s| s.id.clone())
                    .collect(),
                override_reason_code: reason.and_then(|r| r.code.clone()),
                override_reason_system: reason.and_then(|r| r.system.clone()),
                override_reason_display: reason.and_then(|r| r.display.clone()),
                user_comment: f
                    .override_reason
                    .as_ref()
                    .and_then(|r| r.user_comment.clone()),
                outcome_timestamp: f.outcome_timestamp,
            }
        })
        .collect();
    // 200 only once the feedback is committed.
    let stored = state
        .audit
        .record_feedback(&service_id, &records)
        .await
        .map_err(|e| match e {
            StorageError::UnknownCard(uuid) => ApiError::UnknownCard(uuid.to_string()),
            StorageError::FeedbackMismatch { path, message } => {
                ApiError::FeedbackMismatch { path, message }
            }
            other => {
                tracing::error!(error = %other, "feedback could not be stored");
                ApiError::Unavailable("feedback could not be stored")
            }
        })?;
    tracing::info!(service = %service_id, new = stored.new, duplicates = stored.duplicates, "feedback stored");
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"stored": stored.new, "duplicates": stored.duplicates})))
}

/// Prometheus exposition of the process's metrics.
async fn metrics_handler(state: web::Data<AppState>) -> HttpResponse {
    telemetry::set_audit_queue_depth(state.audit.queue_depth());
    HttpResponse::Ok()
        .content_type(telemetry::PROMETHEUS_CONTENT_TYPE)
        .body(telemetry::install_metrics().render())
}

/// The OpenAPI 3.1 description of these endpoints, with this deployment's base URL.
async fn openapi_handler(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi::openapi_json_with_server(
        &state.config.public_base_url,
    ))
}

/// Per-rule governance numbers (fired, feedback, accepted, overridden, override reasons).
/// Authenticated like every other endpoint.
/// `from`/`to` as `rps-cds report` reads them; the body is the report's JSON.
async fn rule_stats_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    let (from, to) = admin::range(req.query_string())?;
    let stats = state.audit.rule_stats(from, to).await.map_err(|e| {
        tracing::error!(error = %e, "rule statistics unavailable");
        ApiError::Unavailable("rule statistics unavailable")
    })?;
    let report = crate::audit::cli::report_json(from, to, &stats).map_err(|e| {
        tracing::error!(error = %e, "rule statistics could not be serialised");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok().json(report))
}

/// The governance page: the same numbers as `/admin/rules/stats` for the same `from`/`to`,
/// per week too, as server-rendered HTML (no scripts, fonts or styles from elsewhere).
async fn admin_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.authenticate(&req).await?;
    let (from, to) = admin::range(req.query_string())?;
    let governance = state.audit.governance(from, to).await.map_err(|e| {
        tracing::error!(error = %e, "governance numbers unavailable");
        ApiError::Unavailable("governance numbers unavailable")
    })?;
    let knowledge = &state.engine.knowledge;
    let page = admin::render(&governance, from, to, &|id| {
        knowledge.rule(id).map(|r| r.title.clone())
    });
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", admin::CONTENT_SECURITY_POLICY))
        .body(page))
}

/// The knowledge base as HTML, the target of each card's "Rule and evidence" link. Public: it
/// holds no patient data, and a clinician opens it from the EHR in a browser without a CDS
/// client token.
async fn rules_handler(state: web::Data<AppState>) -> HttpResponse {
    let page = rules_page::render(&state.engine.knowledge, &state.engine.parameters);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", admin::CONTENT_SECURITY_POLICY))
        .body(page)
}

/// CDS Hooks bodies are JSON; anything else is a 415, not a parse error.
fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/fhir+json" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}
