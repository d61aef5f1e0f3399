//! The command line: `serve`, `evaluate`, `check-knowledge`, `healthcheck`. `main` only parses
//! arguments and calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::cds_hooks::Hook;
use crate::cds_hooks::discovery::{self, services};
use crate::config::Config;
use crate::engine::Engine;
use crate::fhir::outcome::{Issue, IssueCode, OperationOutcome};

#[derive(Debug, Parser)]
#[command(
    name = "rps-cds",
    version,
    about = "CDS Hooks 2.0 decision support for recurrent and metastatic retroperitoneal sarcoma"
)]
pub struct Cli {
    /// Configuration file (TOML); also RPS_CDS_CONFIG. Environment variables RPS_CDS_… override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the CDS Hooks service (default bind 127.0.0.1:8080).
    Serve,
    /// Run one hook request (a JSON file as an EHR would POST it) through the service's own
    /// pipeline and print the CDS Hooks response on stdout.
    Evaluate {
        /// The request file.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
        /// Evaluation time: YYYY-MM-DD (end of that day, UTC) or RFC 3339. Default: now.
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        /// Service id (default: the service of the request's hook).
        #[arg(long, value_name = "ID")]
        service: Option<String>,
    },
    /// Load and validate the knowledge base (embedded, or `knowledge.dir`) and summarise it.
    CheckKnowledge,
    /// Exit 0 when the local server answers /healthz (container health checks).
    Healthcheck,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rps-cds: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::telemetry::init_logging(config.log.format, &config.log.level) {
        eprintln!("rps-cds: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Serve => serve(config).await,
        Command::Evaluate {
            request,
            as_of,
            service,
        } => return evaluate(config, request, as_of, service).await,
        Command::CheckKnowledge => check_knowledge(&config),
        Command::Healthcheck => healthcheck(&config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rps-cds: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::http::serve(config).await.context("serve")
}

/// Parses `--as-of`: a date means the end of that day in UTC, so that everything recorded on
/// that day counts as "before".
pub fn parse_as_of(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("--as-of {s:?} is neither YYYY-MM-DD nor RFC 3339"))
}

async fn evaluate(
    config: Config,
    request: PathBuf,
    as_of: Option<String>,
    service: Option<String>,
) -> ExitCode {
    let fail = |code: IssueCode, msg: String, path: &str| {
        let outcome = OperationOutcome::single(Issue::error(code, msg).at(path));
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
        ExitCode::from(2)
    };
    let as_of = match as_of.as_deref().map(parse_as_of).transpose() {
        Ok(t) => t.unwrap_or_else(Utc::now),
        Err(e) => return fail(IssueCode::Invalid, e, "--as-of"),
    };
    let body = match std::fs::read(&request) {
        Ok(b) => b,
        Err(e) => {
            return fail(
                IssueCode::NotFound,
                format!("cannot read {}: {e}", request.display()),
                "--request",
            );
        }
    };
    let service = match service {
        Some(id) => match discovery::service(&id) {
            Some(s) => s,
            None => {
                return fail(
                    IssueCode::NotFound,
                    format!("unknown service {id:?}"),
                    "--service",
                );
            }
        },
        None => {
            let hook = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("hook").and_then(Value::as_str).and_then(Hook::parse));
            match hook.and_then(|h| services().into_iter().find(|s| s.hook == h)) {
                Some(s) => s,
                None => {
                    // Let the engine explain what is wrong with the request.
                    services().into_iter().next().expect("three services")
                }
            }
        }
    };
    let engine = match tokio::task::spawn_blocking(move || Engine::new(&config)).await {
        Ok(Ok(e)) => Arc::new(e),
        Ok(Err(e)) => {
            eprintln!("rps-cds: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("rps-cds: {e}");
            return ExitCode::FAILURE;
        }
    };
    match engine.evaluate(&service, &body, as_of).await {
        Ok(evaluation) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&evaluation.response).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "{}",
                serde_json::to_string_pretty(&e.outcome()).unwrap_or_default()
            );
            ExitCode::from(2)
        }
    }
}

fn check_knowledge(config: &Config) -> anyhow::Result<()> {
    let engine = Engine::new(config).context("knowledge base check failed")?;
    println!("{}", engine.knowledge.check_report());
    Ok(())
}

async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/healthz");
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url} answered {}",
        response.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_accepts_dates_and_rfc3339() {
        assert_eq!(
            parse_as_of("2026-11-23").unwrap().to_rfc3339(),
            "2026-11-23T23:59:59+00:00"
        );
        assert_eq!(
            parse_as_of("2026-11-23T10:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        assert!(parse_as_of("23/11/2026").is_err());
    }
}
