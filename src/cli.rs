//! The command line: `serve`, `evaluate`, `check-knowledge`, `healthcheck`, and the audit
//! commands `report`, `export`, `purge`. `main` only parses arguments and calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::audit::AuditStore;
use crate::audit::cli::{self as audit_cli, ReportFormat};
use crate::audit::range::{parse_from, parse_to};
use crate::cds_hooks::discovery::{self, services};
use crate::config::Config;
use crate::engine::Engine;
use crate::fhir::outcome::{Issue, IssueCode, OperationOutcome};
use crate::knowledge::Hook;

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
    /// Per-rule governance report (firings, cards, feedback, acceptance, override reasons)
    /// over the audit store configured in `[storage]`.
    Report {
        /// Invocations from this time on: YYYY-MM-DD (start of that day, UTC) or RFC 3339.
        /// Default: the first record.
        #[arg(long, value_name = "DATE", value_parser = parse_from)]
        from: Option<DateTime<Utc>>,
        /// Invocations before this time: YYYY-MM-DD (that whole day included) or RFC 3339
        /// (excluded). Default: now.
        #[arg(long, value_name = "DATE", value_parser = parse_to)]
        to: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Export the audit trail (invocations with their cards and feedback) as JSON Lines.
    Export {
        /// Start: YYYY-MM-DD (start of that day, UTC) or RFC 3339 (included).
        #[arg(long, value_name = "DATE", value_parser = parse_from)]
        from: DateTime<Utc>,
        /// End: YYYY-MM-DD (that whole day included) or RFC 3339 (excluded).
        #[arg(long, value_name = "DATE", value_parser = parse_to)]
        to: DateTime<Utc>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Re-evaluate a recorded call: its request (the EHR's copy; the service stores only its
    /// digest) runs through the pipeline again, as of the call's time, with the parameter set
    /// recorded for it, after checking that the request's digest and the loaded knowledge
    /// version are the recorded ones. Says whether the cards are the same (exit 0) or not
    /// (exit 1).
    Replay {
        /// The invocation id (`id` in `rps-cds export`).
        #[arg(long, value_name = "ID")]
        invocation: uuid::Uuid,
        /// The request as the EHR sent it.
        #[arg(long, value_name = "FILE")]
        request: PathBuf,
    },
    /// Delete audit records older than the retention period; prints how many invocations
    /// were deleted.
    Purge {
        /// Keep this many days (default: `storage.retention_days`).
        #[arg(long, value_name = "N")]
        retention_days: Option<u32>,
    },
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
        Command::Report { from, to, format } => {
            with_store(&config, async |store| report(store, from, to, format).await).await
        }
        Command::Export { from, to, output } => {
            with_store(&config, async |store| export(store, from, to, output).await).await
        }
        Command::Replay {
            invocation,
            request,
        } => return replay(config, invocation, request).await,
        Command::Purge { retention_days } => {
            let days = retention_days.unwrap_or(config.storage.retention_days);
            with_store(&config, async |store| purge(store, days).await).await
        }
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
pub(crate) fn parse_as_of(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|dt| dt.and_utc())
        .ok_or_else(|| format!("--as-of {s:?} is neither YYYY-MM-DD nor RFC 3339"))
}

/// Opens the audit store as `serve` does, runs `f`, and closes the store whatever `f`
/// returned (so the writer and connections end cleanly).
async fn with_store<T>(
    config: &Config,
    f: impl AsyncFnOnce(&AuditStore) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let store = AuditStore::open(&config.storage)
        .await
        .context("cannot open the audit store")?;
    let result = f(&store).await;
    store.close().await;
    result
}

fn check_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (from, to) {
        anyhow::ensure!(
            from < to,
            "--from ({}) must be before --to ({})",
            from.to_rfc3339(),
            to.to_rfc3339()
        );
    }
    Ok(())
}

async fn report(
    store: &AuditStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: ReportFormat,
) -> anyhow::Result<()> {
    check_range(from, to)?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    audit_cli::report(store, from, to, format, &mut out)
        .await
        .context("report")
}

async fn export(
    store: &AuditStore,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    check_range(Some(from), Some(to))?;
    let written = match &output {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            audit_cli::export(store, from, to, &mut out)
                .await
                .context("export")?
        }
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let result = audit_cli::export(store, from, to, &mut out).await;
            let result = match result {
                Ok(n) => out
                    .into_inner()
                    .map_err(|e| e.into_error().into())
                    .and_then(|f| f.sync_all().map(|()| n).map_err(anyhow::Error::from)),
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(n) => n,
                Err(e) => {
                    // A truncated export must not be mistaken for a complete one.
                    let _ = std::fs::remove_file(path);
                    return Err(e.context(format!("export to {}", path.display())));
                }
            }
        }
    };
    eprintln!("rps-cds: exported {written} invocation(s)");
    Ok(())
}

async fn purge(store: &AuditStore, retention_days: u32) -> anyhow::Result<()> {
    let cutoff = audit_cli::retention_cutoff(Utc::now(), retention_days);
    let deleted = store.purge_older_than(cutoff).await.context("purge")?;
    println!(
        "deleted {deleted} invocation(s) recorded before {} (retention {retention_days} days)",
        cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(())
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

/// `rps-cds replay`: exit 0 when the cards are the same, 1 when they differ or the call cannot
/// be reproduced (other request, other knowledge version, parameter set not reproducible), 2
/// for usage errors.
async fn replay(mut config: Config, invocation: uuid::Uuid, request: PathBuf) -> ExitCode {
    let recorded = match with_store(&config, async |store| {
        store
            .invocation(invocation)
            .await
            .context("reading the invocation")
    })
    .await
    {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("rps-cds: no invocation {invocation} in the audit trail");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("rps-cds: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let body = match std::fs::read(&request) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rps-cds: cannot read {}: {e}", request.display());
            return ExitCode::from(2);
        }
    };
    println!(
        "invocation {} ({}, {})",
        recorded.id,
        recorded.service_id,
        recorded.time.to_rfc3339()
    );
    let mut reproducible = true;
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => {
            let digest = crate::audit::request_digest(&body, &value);
            match &recorded.request_sha256 {
                Some(r) if *r == digest => println!("request: matches the recorded digest"),
                // Records made before the digest of the body as received used this form for
                // every request.
                Some(r) if *r == crate::audit::canonical_request_digest(&value) => {
                    println!("request: matches the recorded digest (canonical JSON form)")
                }
                Some(r) => {
                    println!(
                        "request: DIFFERENT from the recorded one (digest {digest}, recorded {r})"
                    );
                    reproducible = false;
                }
                None => println!("request: no digest recorded, cannot be checked"),
            }
        }
        Err(e) => {
            println!("request: not JSON ({e})");
            reproducible = false;
        }
    }
    match &recorded.parameters {
        // The recorded set wins over whatever this configuration says.
        Some(p) => {
            config.parameters = crate::knowledge::parameters::ParameterSet {
                digest: String::new(),
                parameters: p.clone(),
            }
            .overrides()
        }
        None => {
            println!("parameters: no parameter set recorded; the configured parameters are used");
            reproducible = false;
        }
    }
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
    if engine.knowledge.version == recorded.knowledge_version {
        println!("knowledge version {}: loaded", recorded.knowledge_version);
    } else {
        println!(
            "knowledge version: recorded {}, loaded {} (load the recorded one with knowledge.dir)",
            recorded.knowledge_version, engine.knowledge.version
        );
        reproducible = false;
    }
    if let Some(digest) = &recorded.parameter_set {
        if *digest == engine.parameter_set.digest {
            println!("parameter set {digest}: reproduced");
        } else {
            println!(
                "parameter set: recorded {digest}, reproduced {} (the catalogue defaults differ)",
                engine.parameter_set.digest
            );
            reproducible = false;
        }
    }
    let Some(service) = discovery::service(&recorded.service_id) else {
        println!(
            "service {:?}: not offered by this build",
            recorded.service_id
        );
        return ExitCode::FAILURE;
    };
    let now: Vec<(String, String, String)> =
        match engine.evaluate(&service, &body, recorded.time).await {
            Ok(e) => e
                .response
                .cards
                .iter()
                .map(|c| {
                    (
                        c.source.topic.code.clone(),
                        c.indicator.as_str().to_owned(),
                        c.summary.clone(),
                    )
                })
                .collect(),
            Err(e) => {
                println!(
                    "evaluation: refused now ({e}); recorded HTTP status {}",
                    recorded.http_status
                );
                return ExitCode::FAILURE;
            }
        };
    let then: Vec<(String, String, String)> = recorded
        .cards
        .iter()
        .map(|c| (c.rule_id.clone(), c.indicator.clone(), c.summary.clone()))
        .collect();
    if now == then {
        println!("cards: the same ({}: {})", now.len(), rule_list(&now));
    } else {
        println!("cards: DIFFERENT");
        println!("  recorded: {}", rule_list(&then));
        println!("  now:      {}", rule_list(&now));
        for (i, (a, b)) in then.iter().zip(&now).enumerate() {
            if a != b {
                println!("  card {i}: recorded {a:?}, now {b:?}");
            }
        }
        return ExitCode::FAILURE;
    }
    if reproducible {
        ExitCode::SUCCESS
    } else {
        println!("the cards agree, but the call was not reproduced as recorded (see above)");
        ExitCode::FAILURE
    }
}

fn rule_list(cards: &[(String, String, String)]) -> String {
    if cards.is_empty() {
        return "no cards".to_owned();
    }
    cards
        .iter()
        .map(|(rule, indicator, _)| format!("{rule} {indicator}"))
        .collect::<Vec<_>>()
        .join(", ")
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

    #[test]
    fn audit_commands_parse() {
        let cli = Cli::try_parse_from([
            "rps-cds",
            "report",
            "--from",
            "2026-01-01",
            "--format",
            "json",
        ])
        .unwrap();
        match cli.command {
            Command::Report { from, to, format } => {
                assert_eq!(from, Some(parse_from("2026-01-01").unwrap()));
                assert_eq!(to, None);
                assert_eq!(format, ReportFormat::Json);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "rps-cds",
            "export",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--output",
            "jan.jsonl",
        ])
        .unwrap();
        match cli.command {
            Command::Export { from, to, output } => {
                assert_eq!(from.to_rfc3339(), "2026-01-01T00:00:00+00:00");
                assert_eq!(to.to_rfc3339(), "2026-02-01T00:00:00+00:00");
                assert_eq!(output, Some(PathBuf::from("jan.jsonl")));
            }
            other => panic!("{other:?}"),
        }
        // Export needs both bounds; purge's default comes from the configuration.
        assert!(Cli::try_parse_from(["rps-cds", "export", "--from", "2026-01-01"]).is_err());
        assert!(Cli::try_parse_from(["rps-cds", "report", "--format", "csv"]).is_err());
        match Cli::try_parse_from(["rps-cds", "purge"]).unwrap().command {
            Command::Purge { retention_days } => assert_eq!(retention_days, None),
            other => panic!("{other:?}"),
        }
        match Cli::try_parse_from(["rps-cds", "purge", "--retention-days", "30"])
            .unwrap()
            .command
        {
            Command::Purge { retention_days } => assert_eq!(retention_days, Some(30)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn range_must_not_be_empty() {
        let a = parse_from("2026-01-01").ok();
        let b = parse_to("2026-01-01").ok();
        assert!(check_range(a, b).is_ok());
        assert!(check_range(b, a).is_err());
        assert!(check_range(a, a).is_err());
        assert!(check_range(None, a).is_ok());
    }
}
