//! Logs and metrics.
//!
//! Logging goes to **stderr** (the CLI subcommands write their results to stdout, so logs
//! must never mix with them), either human-readable or one JSON object per line for log
//! collectors. Metrics use the `metrics` facade with the Prometheus exporter; the HTTP layer
//! renders [`install_metrics`]'s handle at `GET /metrics`.
//!
//! # Metrics
//!
//! Every metric the service exports is written by one helper below, so names and labels
//! live in one place (and in `docs/operations.md`):
//!
//! | metric | type | labels | helper |
//! |---|---|---|---|
//! | `rps_cds_requests_total` | counter | `service`, `hook`, `status` | `record_request` |
//! | `rps_cds_request_duration_seconds` | histogram | `service`, `hook`, `status` | `record_request` |
//! | `rps_cds_stage_duration_seconds` | histogram | `stage` | `record_stage` |
//! | `rps_cds_cards_total` | counter | `rule`, `indicator` | `record_card` |
//! | `rps_cds_fhir_fetch_errors_total` | counter | `reason` | `record_fhir_fetch_error` |
//! | `rps_cds_jwt_failures_total` | counter | `reason` | `record_jwt_failure` |
//! | `rps_cds_audit_queue_depth` | gauge | – | `set_audit_queue_depth` |
//! | `rps_cds_audit_write_duration_seconds` | histogram | – | `record_audit_write` |
//! | `rps_cds_audit_commit_duration_seconds` | histogram | – | `record_audit_commit` |
//! | `rps_cds_audit_batch_size` | histogram | – | `record_audit_commit` |
//! | `rps_cds_invalid_resources_total` | counter | – | `record_invalid_resources` |
//! | `rps_cds_ready` | gauge (0/1) | – | `set_ready` |
//! | `rps_cds_knowledge_info` | gauge (always 1) | `version` | `set_knowledge_version` |
//!
//! Label values must come from bounded sets (service ids the service hosts, rule ids of the
//! catalogue, the fixed reason/kind strings): never from raw request input, or a client could
//! grow the series set without bound. Callers map anything else to `"unknown"`.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Content type of the text exposition format `PrometheusHandle::render` produces.
pub(crate) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram bucket upper bounds in seconds, shared by every histogram: dense in the
/// millisecond range where rule evaluation and audit commits live, reaching 10 s because a
/// FHIR fetch may legitimately take up to `fhir.request_timeout_ms` (10 s by default).
pub(crate) const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket upper bounds of `rps_cds_audit_batch_size` (records per group commit), up to the
/// largest sensible `storage.batch_max`.
pub(crate) const BATCH_SIZE_BUCKETS: &[f64] =
    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often histogram samples are folded into their buckets between scrapes, so memory
/// stays bounded even when nothing scrapes `/metrics`.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Characters of one untrusted string kept in a log line.
pub(crate) const MAX_LOGGED_CHARS: usize = 128;

/// An untrusted string (an id, code, URL or path from a request or a FHIR server) as it may
/// appear in a log line: control characters, line and paragraph separators, bidirectional
/// overrides and backslashes are escaped (`\n`, `\u{2028}`, `\\`), so that it can neither
/// start a new line nor disguise itself, and at most [`MAX_LOGGED_CHARS`] characters are
/// kept (then `…`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSafe<'a>(pub &'a str);

impl std::fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX_LOGGED_CHARS {
                return f.write_char('…');
            }
            let unsafe_char = c.is_control()
                || c == '\\'
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            if unsafe_char {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// [`LogSafe`] as an owned string.
pub(crate) fn log_safe(s: &str) -> String {
    LogSafe(s).to_string()
}

/// `[log] format`: `text` or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. "info" or "rps_cds=debug,actix_web=info".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TelemetryError {
    #[error("log.level {level:?} is not a valid filter: {reason}")]
    InvalidLogLevel { level: String, reason: String },
}

/// Installs the global tracing subscriber.
///
/// `level` uses `tracing_subscriber::EnvFilter` syntax (`info`, `rps_cds=debug,actix_web=warn`).
/// A second call (several servers started by one test binary) keeps the first subscriber and
/// returns `Ok`: only an invalid `level` is an error, and it is reported on every call.
pub(crate) fn init_logging(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    // Colours only for a person at a terminal; escape codes would litter collected logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = build_subscriber(format, level, ansi, std::io::stderr)?;
    // try_init fails only when a global subscriber (or `log` logger) is already set, which
    // is expected when tests start several servers in one process.
    let _already_set = subscriber.try_init();
    Ok(())
}

/// The subscriber [`init_logging`] installs, writing to `writer` (tests capture it).
fn build_subscriber<W>(
    format: LogFormat,
    level: &str,
    ansi: bool,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(level).map_err(|e| TelemetryError::InvalidLogLevel {
        level: level.to_owned(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true);
    Ok(match format {
        LogFormat::Text => Box::new(builder.finish()),
        // Event fields at the top level of each object, so collectors index them directly.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    })
}

static METRICS_HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the global `metrics` recorder (once per process) and
/// returns the handle that renders the scrape payload. Later calls return the same handle.
///
/// If some other global recorder was installed first (not by this function), the handle is
/// still returned but stays empty; a warning is logged.
pub fn install_metrics() -> PrometheusHandle {
    METRICS_HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS_SECONDS)
                // The only error is an empty bucket list, and the constant is not empty.
                .expect("LATENCY_BUCKETS_SECONDS is not empty")
                .set_buckets_for_metric(
                    Matcher::Full("rps_cds_audit_batch_size".into()),
                    BATCH_SIZE_BUCKETS,
                )
                .expect("BATCH_SIZE_BUCKETS is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "a metrics recorder was already installed; /metrics will be empty");
            }
            describe_metrics();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                // Rendering also folds samples in, so scrapes keep working without it.
                tracing::warn!(error = %e, "could not start the metrics upkeep thread");
            }
            handle
        })
        .clone()
}

fn describe_metrics() {
    describe_counter!(
        "rps_cds_requests_total",
        "HTTP requests answered, by CDS service id, hook and HTTP status"
    );
    describe_histogram!(
        "rps_cds_request_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time from request received to response sent, by service, hook and status"
    );
    describe_histogram!(
        "rps_cds_stage_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time spent in one stage of a hook evaluation"
    );
    describe_counter!(
        "rps_cds_cards_total",
        "Cards returned, by rule id (card source.topic.code) and indicator"
    );
    describe_counter!(
        "rps_cds_fhir_fetch_errors_total",
        "Failed FHIR reads during prefetch completion, by reason (timeout, deadline, connect, status, invalid, too_large, operation_outcome, wrong_resource, over_budget, too_many_pages, foreign_next_link, insecure_server, bad_url)"
    );
    describe_counter!(
        "rps_cds_jwt_failures_total",
        "CDS client JWTs refused, by reason"
    );
    describe_gauge!(
        "rps_cds_audit_queue_depth",
        "Audit records queued or being written by the group-commit writer"
    );
    describe_histogram!(
        "rps_cds_audit_write_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time for an audit record to be committed, as seen by the request"
    );
    describe_histogram!(
        "rps_cds_audit_commit_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time the group-commit writer took to write and commit one batch"
    );
    describe_histogram!(
        "rps_cds_audit_batch_size",
        ::metrics::Unit::Count,
        "Audit records written in one group commit"
    );
    describe_counter!(
        "rps_cds_invalid_resources_total",
        "FHIR resources set aside because they failed FHIR R4 schema validation"
    );
    describe_gauge!(
        "rps_cds_ready",
        "1 when the instance reports ready (knowledge loaded, database reachable, not draining)"
    );
    describe_gauge!(
        "rps_cds_knowledge_info",
        "Always 1; the version label is the knowledge base version this instance serves"
    );
}

/// One stage of a hook evaluation, for `rps_cds_stage_duration_seconds{stage}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stage {
    /// Fetching missing prefetch data from the EHR's FHIR server.
    PrefetchFetch,
    /// FHIR R4 schema validation of the input resources.
    Validation,
    /// Deriving the clinical facts.
    Facts,
    /// Running the rule catalogue.
    Rules,
    /// Turning findings into cards.
    Cards,
    /// Committing the audit record.
    Audit,
}

impl Stage {
    /// Every stage, for the tests that check each has its metrics.
    #[cfg(test)]
    const ALL: [Stage; 6] = [
        Stage::PrefetchFetch,
        Stage::Validation,
        Stage::Facts,
        Stage::Rules,
        Stage::Cards,
        Stage::Audit,
    ];

    /// The `stage` label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stage::PrefetchFetch => "prefetch_fetch",
            Stage::Validation => "validation",
            Stage::Facts => "facts",
            Stage::Rules => "rules",
            Stage::Cards => "cards",
            Stage::Audit => "audit",
        }
    }
}

/// One answered HTTP request. `service` is the CDS service id for `/cds-services/{id}` routes
/// (`"unknown"` when the id is not hosted) or the route name for the others (`discovery`,
/// `feedback`, …); `hook` is the hook name or `"none"`.
pub(crate) fn record_request(service: &str, hook: &str, status: u16, seconds: f64) {
    let labels = [
        ("service", service.to_owned()),
        ("hook", hook.to_owned()),
        ("status", status.to_string()),
    ];
    counter!("rps_cds_requests_total", &labels).increment(1);
    histogram!("rps_cds_request_duration_seconds", &labels).record(seconds);
}

/// Time spent in one evaluation stage.
pub(crate) fn record_stage(stage: Stage, seconds: f64) {
    histogram!("rps_cds_stage_duration_seconds", "stage" => stage.as_str()).record(seconds);
}

/// One card returned: `rule` is the catalogue rule id, `indicator` info/warning/critical.
pub(crate) fn record_card(rule: &str, indicator: &str) {
    counter!(
        "rps_cds_cards_total",
        "rule" => rule.to_owned(),
        "indicator" => indicator.to_owned()
    )
    .increment(1);
}

/// One prefetch key whose fetch failed; `reason` is `FetchError::kind()` (a fixed set,
/// `FetchError::KINDS`).
pub(crate) fn record_fhir_fetch_error(reason: &'static str) {
    counter!("rps_cds_fhir_fetch_errors_total", "reason" => reason).increment(1);
}

/// One refused JWT; `reason` is the auth module's snake_case `AuthFailure::reason()`.
pub(crate) fn record_jwt_failure(reason: &str) {
    counter!("rps_cds_jwt_failures_total", "reason" => reason.to_owned()).increment(1);
}

/// Current audit queue depth (`AuditStore::queue_depth()`), sampled by the caller.
pub(crate) fn set_audit_queue_depth(n: usize) {
    gauge!("rps_cds_audit_queue_depth").set(n as f64);
}

/// Time one audit record took to be committed.
pub(crate) fn record_audit_write(seconds: f64) {
    histogram!("rps_cds_audit_write_duration_seconds").record(seconds);
}

/// One group commit of the audit writer: how long the transaction took and how many records
/// it carried (the writer-side view; `record_audit_write` is what a request waited).
pub(crate) fn record_audit_commit(seconds: f64, records: usize) {
    histogram!("rps_cds_audit_commit_duration_seconds").record(seconds);
    histogram!("rps_cds_audit_batch_size").record(records as f64);
}

/// `n` input resources set aside as invalid in one request.
pub(crate) fn record_invalid_resources(n: usize) {
    counter!("rps_cds_invalid_resources_total").increment(n as u64);
}

/// The readiness verdict just computed (by `/readyz` or the drain logic).
pub(crate) fn set_ready(ready: bool) {
    gauge!("rps_cds_ready").set(if ready { 1.0 } else { 0.0 });
}

/// The knowledge base version this instance serves; call once after loading it.
pub(crate) fn set_knowledge_version(version: &str) {
    gauge!("rps_cds_knowledge_info", "version" => version.to_owned()).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the sample lines of `metric` (not HELP/TYPE) in a rendered payload.
    fn samples<'a>(rendered: &'a str, metric: &str) -> Vec<&'a str> {
        rendered
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(metric)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    #[test]
    fn install_is_idempotent_and_shares_one_registry() {
        let a = install_metrics();
        let b = install_metrics();
        record_jwt_failure("idempotence_probe");
        // Both handles render the same registry.
        assert!(a.render().contains(r#"reason="idempotence_probe""#));
        assert!(b.render().contains(r#"reason="idempotence_probe""#));
    }

    #[test]
    fn request_metrics_have_names_labels_and_buckets() {
        let handle = install_metrics();
        record_request("rps-patient-view", "patient-view", 200, 0.012);
        record_request("rps-patient-view", "patient-view", 200, 0.003);
        let out = handle.render();

        let counter = samples(&out, "rps_cds_requests_total");
        let line = counter
            .iter()
            .find(|l| l.contains(r#"service="rps-patient-view""#) && l.contains(r#"status="200""#))
            .unwrap_or_else(|| panic!("no request counter sample in:\n{out}"));
        assert!(line.contains(r#"hook="patient-view""#), "{line}");
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 2.0, "{line}");

        assert!(
            out.contains("# TYPE rps_cds_request_duration_seconds histogram"),
            "{out}"
        );
        // The 5 ms and 25 ms buckets are configured: 3 ms falls in le=0.005, 12 ms does not.
        let bucket_5ms = samples(&out, "rps_cds_request_duration_seconds_bucket")
            .into_iter()
            .find(|l| l.contains(r#"service="rps-patient-view""#) && l.contains(r#"le="0.005""#))
            .unwrap_or_else(|| panic!("no 5 ms bucket in:\n{out}"));
        let in_5ms: f64 = bucket_5ms.rsplit(' ').next().unwrap().parse().unwrap();
        let count_line = samples(&out, "rps_cds_request_duration_seconds_count")
            .into_iter()
            .find(|l| l.contains(r#"service="rps-patient-view""#))
            .unwrap();
        let count: f64 = count_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            in_5ms >= 1.0 && in_5ms < count,
            "{bucket_5ms} / {count_line}"
        );
    }

    #[test]
    fn every_helper_exports_its_documented_metric() {
        let handle = install_metrics();
        for stage in Stage::ALL {
            record_stage(stage, 0.001);
        }
        record_card("MET-01", "warning");
        record_fhir_fetch_error("timeout");
        record_jwt_failure("expired");
        set_audit_queue_depth(7);
        record_audit_write(0.004);
        record_audit_commit(0.002, 5);
        record_invalid_resources(3);
        set_ready(true);
        set_knowledge_version("2026.11.0-test");
        let out = handle.render();

        for stage in Stage::ALL {
            let label = format!(r#"stage="{}""#, stage.as_str());
            assert!(
                samples(&out, "rps_cds_stage_duration_seconds_count")
                    .iter()
                    .any(|l| l.contains(&label)),
                "missing {label} in:\n{out}"
            );
        }
        let expect = [
            ("rps_cds_cards_total", r#"indicator="warning""#),
            ("rps_cds_cards_total", r#"rule="MET-01""#),
            ("rps_cds_fhir_fetch_errors_total", r#"reason="timeout""#),
            ("rps_cds_jwt_failures_total", r#"reason="expired""#),
            ("rps_cds_knowledge_info", r#"version="2026.11.0-test""#),
        ];
        for (metric, label) in expect {
            assert!(
                samples(&out, metric).iter().any(|l| l.contains(label)),
                "missing {metric}{{{label}}} in:\n{out}"
            );
        }
        assert!(
            samples(&out, "rps_cds_audit_queue_depth").contains(&"rps_cds_audit_queue_depth 7")
        );
        assert!(samples(&out, "rps_cds_ready").contains(&"rps_cds_ready 1"));
        assert!(!samples(&out, "rps_cds_audit_write_duration_seconds_count").is_empty());
        assert!(!samples(&out, "rps_cds_audit_commit_duration_seconds_count").is_empty());
        // Batch sizes have buckets of their own (counts, not seconds).
        assert!(
            samples(&out, "rps_cds_audit_batch_size_bucket")
                .iter()
                .any(|l| l.contains(r#"le="8""#)),
            "{out}"
        );
        let invalid = samples(&out, "rps_cds_invalid_resources_total");
        let n: f64 = invalid[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 3.0, "{invalid:?}");
        // Descriptions are exported as HELP lines.
        assert!(out.contains("# HELP rps_cds_cards_total"), "{out}");
    }

    /// A writer that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(format: LogFormat, level: &str) -> String {
        let out = Capture::default();
        let subscriber = build_subscriber(format, level, false, out.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(cards = 3, service = "rps-patient-view", "hook answered");
            tracing::debug!("filtered out at info");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_logs_are_one_object_per_line_with_flattened_fields() {
        let text = capture(LogFormat::Json, "info");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "debug must be filtered out: {text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "hook answered");
        assert_eq!(v["cards"], 3);
        assert_eq!(v["service"], "rps-patient-view");
        assert!(v["timestamp"].is_string() && v["target"].is_string(), "{v}");
    }

    #[test]
    fn text_logs_are_human_readable_and_honour_the_level() {
        let text = capture(LogFormat::Text, "info");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
        assert!(
            text.contains("hook answered") && text.contains("cards=3"),
            "{text}"
        );
        assert!(!text.contains("filtered out"), "{text}");
        let debug = capture(LogFormat::Text, "debug");
        assert!(debug.contains("filtered out at info"), "{debug}");
    }

    #[test]
    fn untrusted_strings_cannot_start_a_log_line_and_are_truncated() {
        let forged = "x\n2026-12-01T00:00:00Z ERROR rps_cds::audit: FORGED\r\u{2028}\u{202e}\\";
        let safe = log_safe(forged);
        assert!(
            !safe.contains(['\n', '\r', '\u{2028}', '\u{202e}']),
            "{safe}"
        );
        assert!(safe.starts_with("x\\n2026"), "{safe}");
        assert!(safe.ends_with("\\u{2028}\\u{202e}\\\\"), "{safe}");
        let long = "a".repeat(1_000_000);
        let safe = log_safe(&long);
        assert_eq!(safe.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(safe.ends_with('…'));
        assert_eq!(log_safe("Observation/ecog-1"), "Observation/ecog-1");
        // Through a real subscriber: one line, whatever the id holds.
        let out = Capture::default();
        let subscriber = build_subscriber(LogFormat::Text, "info", false, out.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(resource = %LogSafe(forged), "resource set aside");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn init_logging_rejects_bad_filters_and_tolerates_repeat_calls() {
        assert!(matches!(
            init_logging(LogFormat::Json, "rps_cds=notalevel"),
            Err(TelemetryError::InvalidLogLevel { .. })
        ));
        init_logging(LogFormat::Json, "info").unwrap();
        init_logging(LogFormat::Text, "rps_cds=debug,actix_web=warn").unwrap();
    }
}
