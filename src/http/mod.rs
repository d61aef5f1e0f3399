//! The HTTP face of the service (actix-web): discovery, the three hook services, feedback,
//! health and readiness. Handlers are thin: they read the body within limits, authenticate
//! the CDS client, and hand the bytes to the same [`Engine`] the CLI uses.

pub mod errors;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use futures::StreamExt;

use crate::auth::{Authenticator, CdsClient, ReplayGuard, auth_required};
use crate::cds_hooks::discovery::{self, discovery_document};
use crate::cds_hooks::feedback::Feedback;
use crate::config::Config;
use crate::engine::{Engine, EvaluationError, StartupError};
pub use errors::ApiError;

/// Shared by all workers.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: Config,
    /// `None` when authentication is off (loopback default, or disabled explicitly).
    pub authenticator: Option<Authenticator>,
    /// Set on SIGTERM: readiness turns false while in-flight calls finish.
    pub draining: AtomicBool,
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
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, ServeError> {
        let engine = Arc::new(Engine::new(&config)?);
        let authenticator = if auth_required(&config.auth.mode, &config.bind) {
            let guard = ReplayGuard::memory(config.auth.replay_cache_capacity);
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
        Ok(Self {
            engine,
            config,
            authenticator,
            draining: AtomicBool::new(false),
        })
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
                tracing::warn!(
                    reason = failure.reason(),
                    path = req.path(),
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
pub fn build(config: Config) -> Result<RunningServer, ServeError> {
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
    let state = web::Data::new(AppState::new(config)?);
    // The explaining FHIR validator compiles in the background; wait so that the first invalid
    // resource is not slow and a broken schema stops start-up.
    state
        .engine
        .validator
        .wait_until_ready()
        .map_err(StartupError::from)?;
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(cors(&app_state.config.cors_allowed_origins))
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
    let running = build(config)?;
    tracing::info!(addr = %running.addr, knowledge = %running.state.engine.knowledge.version, "rps-cds listening");
    let handle = running.handle.clone();
    let state = running.state.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        state.draining.store(true, Ordering::SeqCst);
        tracing::info!("shutdown requested: draining in-flight calls");
        handle.stop(true).await;
    });
    running.wait().await?;
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
    .default_service(web::to(|| async {
        HttpResponse::from_error(ApiError::NotFound)
    }));
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
    if state.draining.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "draining"}));
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "knowledgeVersion": state.engine.knowledge.version,
    }))
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
    let client = state.authenticate(&req).await?;
    check_json_content_type(&req)?;
    let body = read_body(payload, state.config.max_body_bytes).await?;
    let result = state.engine.evaluate(&service, &body, Utc::now()).await;
    match result {
        Ok(evaluation) => {
            tracing::info!(
                service = service.id,
                hook_instance = %evaluation.hook_instance,
                cards = evaluation.response.cards.len(),
                resources = evaluation.resources_used,
                set_aside = evaluation.resources_set_aside,
                issuer = client.as_ref().map(|c| c.iss.as_str()),
                latency_ms = started.elapsed().as_secs_f64() * 1e3,
                "hook answered"
            );
            Ok(HttpResponse::Ok().json(&evaluation.response))
        }
        Err(e) => {
            tracing::info!(
                service = service.id,
                status = e.status(),
                "hook request refused"
            );
            Err(e.into())
        }
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
    let body = read_body(payload, state.config.max_body_bytes).await?;
    let value = state.engine.parse_body(&body)?;
    let feedback =
        Feedback::from_value(value, &state.engine.envelopes).map_err(EvaluationError::from)?;
    tracing::info!(service = %service_id, items = feedback.feedback.len(), "feedback received");
    Ok(HttpResponse::Ok().json(serde_json::json!({"received": feedback.feedback.len()})))
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

/// Reads the body, refusing more than `max` bytes without buffering them.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge(max),
            _ => ApiError::BodyRead,
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Waits (bounded) until the server answers `/healthz`: for tests and the healthcheck.
pub async fn wait_until_listening(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
