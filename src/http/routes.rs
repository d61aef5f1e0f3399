//! The route table and the app factory: [`build`] binds the listener, builds the shared
//! [`AppState`] and starts actix-web with CORS, the request metrics middleware and [`routes`].

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, Route as ActixRoute, web};

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

/// The HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    /// As in a request line and the `Allow` header: `GET`, `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }

    /// As an OpenAPI path item names its operations: `get`, `post`.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
        }
    }

    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
        }
    }
}

/// What `rps_cds_requests_total` and `rps_cds_request_duration_seconds` say about a request
/// to a route (`service` and `hook` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsLabel {
    /// `service` = this name, `hook` = `none`; a CORS preflight is `preflight`.
    Route(&'static str),
    /// `service` = the CDS service id in `{id}`, `hook` = its hook, preflights included;
    /// `unknown` / `none` for an id the service does not host.
    HostedService,
}

/// One route: its method and path, its metrics label, and the handler that answers it.
#[derive(Debug)]
pub struct Route {
    pub method: Verb,
    /// The path template, as actix-web matches it and the OpenAPI document keys it.
    pub path: &'static str,
    pub label: MetricsLabel,
    /// Attaches the handler to the route that matches `method`.
    handler: fn(ActixRoute) -> ActixRoute,
}

/// Every route the server answers, one row each. The actix route table ([`routes`]), the
/// OpenAPI document's `paths` ([`super::openapi`]: it refuses to build when a route is
/// undocumented or a documented operation is not here) and the request metrics labels
/// (`route_labels`) are all derived from this list, so they cannot disagree: a new
/// endpoint is one row here and its operation in `schemas/openapi.json`.
pub const ROUTES: &[Route] = &[
    Route {
        method: Verb::Get,
        path: "/cds-services",
        label: MetricsLabel::Route("discovery"),
        handler: |r| r.to(discovery_handler),
    },
    Route {
        method: Verb::Post,
        path: "/cds-services/{id}",
        label: MetricsLabel::HostedService,
        handler: |r| r.to(service_handler),
    },
    Route {
        method: Verb::Post,
        path: "/cds-services/{id}/feedback",
        label: MetricsLabel::Route("feedback"),
        handler: |r| r.to(feedback_handler),
    },
    Route {
        method: Verb::Get,
        path: "/healthz",
        label: MetricsLabel::Route("healthz"),
        handler: |r| r.to(healthz),
    },
    Route {
        method: Verb::Get,
        path: "/readyz",
        label: MetricsLabel::Route("readyz"),
        handler: |r| r.to(readiness_handler),
    },
    Route {
        method: Verb::Get,
        path: "/metrics",
        label: MetricsLabel::Route("metrics"),
        handler: |r| r.to(metrics_handler),
    },
    Route {
        method: Verb::Get,
        path: "/openapi.json",
        label: MetricsLabel::Route("openapi"),
        handler: |r| r.to(openapi_handler),
    },
    Route {
        method: Verb::Get,
        path: "/admin/rules/stats",
        label: MetricsLabel::Route("rule_stats"),
        handler: |r| r.to(rule_stats_handler),
    },
    Route {
        method: Verb::Get,
        path: "/admin",
        label: MetricsLabel::Route("admin"),
        handler: |r| r.to(admin_handler),
    },
    Route {
        method: Verb::Get,
        path: "/rules",
        label: MetricsLabel::Route("rules"),
        handler: |r| r.to(rules_handler),
    },
];

/// The actix route table, one resource per row of [`ROUTES`]; unknown paths get a 404
/// OperationOutcome and other methods on a known path a 405 naming the one it accepts.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for route in ROUTES {
        let allowed = route.method.as_str();
        cfg.service(
            web::resource(route.path)
                .route((route.handler)(web::route().method(route.method.method())))
                .default_service(web::to(move || not_allowed(allowed))),
        );
    }
    cfg.default_service(web::to(|| async {
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
    let preflight = req.method() == Method::OPTIONS;
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

/// The `service` and `hook` labels of a request after routing, from its row of [`ROUTES`]
/// (`not_found` for a path that matches none).
fn route_labels(req: &HttpRequest, preflight: bool) -> (&'static str, &'static str) {
    let pattern = req.match_pattern();
    let route = pattern
        .as_deref()
        .and_then(|p| ROUTES.iter().find(|r| r.path == p));
    match route.map(|r| r.label) {
        Some(MetricsLabel::HostedService) => req
            .match_info()
            .get("id")
            .and_then(discovery::service)
            .map_or(("unknown", "none"), |s| (s.id, s.hook.as_str())),
        _ if preflight => ("preflight", "none"),
        Some(MetricsLabel::Route(name)) => (name, "none"),
        None => ("not_found", "none"),
    }
}

async fn not_allowed(allowed: &'static str) -> HttpResponse {
    HttpResponse::from_error(ApiError::MethodNotAllowed(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_path_and_one_label_per_route() {
        // actix-web would register a second row for a path as a resource it never reaches.
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), ROUTES.len(), "a path listed twice");
        let mut names: Vec<&str> = ROUTES
            .iter()
            .filter_map(|r| match r.label {
                MetricsLabel::Route(name) => Some(name),
                MetricsLabel::HostedService => None,
            })
            .collect();
        let named = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), named, "two routes share a metrics label");
        // The fixed labels that are not routes stay distinct from the routes'.
        for reserved in ["preflight", "not_found", "unknown"] {
            assert!(!names.contains(&reserved), "{reserved}");
        }
        // The hook call is the one route labelled by the hosted service.
        let hosted: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.label == MetricsLabel::HostedService)
            .map(|r| r.path)
            .collect();
        assert_eq!(hosted, ["/cds-services/{id}"]);
    }
}
