//! The route table and the app factory: [`build`] binds the listener, builds the shared
//! [`AppState`] and starts actix-web with CORS, the request metrics middleware and [`routes`].

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use super::admin::{admin_handler, rule_stats_handler};
use super::feedback::feedback_handler;
use super::hooks::{discovery_handler, service_handler};
use super::ops::{healthz, metrics_handler, openapi_handler, readiness_handler};
use super::rules_page::rules_handler;
use super::{ApiError, AppState, ServeError};
use crate::cds_hooks::discovery;
use crate::config::Config;
use crate::telemetry;

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
            .route(web::get().to(healthz))
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
