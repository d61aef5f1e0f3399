//! The HTTP face of the service (actix-web): discovery, the three hook services, feedback,
//! health, readiness, metrics, the OpenAPI document and the governance pages. Handlers are
//! thin: they read the body within limits, authenticate the CDS client, and hand the bytes to
//! the same [`Engine`](crate::engine::Engine) the CLI uses.
//!
//! - [`routes`]: the route table (one list: actix routes, OpenAPI paths, metrics labels) and
//!   the app factory [`build`];
//! - `state`: [`AppState`], shared by all workers (authentication, body limits);
//! - `hooks`: discovery and the hook handler; `feedback`; `ops`: health, readiness,
//!   metrics, OpenAPI; `admin` and `rules_page`: the governance and rule pages;
//! - `body`: request bodies within limits; `errors`: the one API error type and every
//!   HTTP status the service answers with; [`openapi`]: the served OpenAPI document.

pub(crate) mod admin;
pub(crate) mod body;
pub(crate) mod errors;
mod feedback;
mod hooks;
pub mod openapi;
mod ops;
pub mod routes;
pub(crate) mod rules_page;
mod state;

use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::telemetry;
pub(crate) use errors::ApiError;
pub use routes::{RunningServer, build};
pub use state::{AppState, ServeError};

/// `rps-cds serve`: runs until SIGTERM/SIGINT, then drains: readiness false, no new
/// connections, in-flight calls finish within `shutdown_timeout_secs`.
pub(crate) async fn serve(config: Config) -> Result<(), ServeError> {
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
