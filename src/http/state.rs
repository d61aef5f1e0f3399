//! What every handler shares: the [`Engine`], the configuration, the audit store, the
//! authenticator and the input byte budget, built once at start-up ([`AppState::new`]), with
//! the two steps every authenticated endpoint takes: verifying the CDS client and reading the
//! body within limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::http::header;
use actix_web::{HttpRequest, web};

use super::ApiError;
use super::body::{self, BodyBudget, BodyLimits, Reservation};
use crate::audit::{AuditStore, StorageError};
use crate::auth::{Authenticator, CdsClient, ReplayGuard, auth_required};
use crate::config::Config;
use crate::engine::{Engine, StartupError};
use crate::telemetry::LogSafe;

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
    pub(super) async fn read_body(
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
    pub(super) async fn authenticate(
        &self,
        req: &HttpRequest,
    ) -> Result<Option<CdsClient>, ApiError> {
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
