//! End-to-end durability of the audit trail with the real binary: the server is killed with
//! SIGKILL while clients are calling it, and every card a client received must be in the store
//! afterwards (the service commits the audit record before it answers). Also the audit
//! commands `report`, `export` and `purge` as an operator runs them.
//!
//! Each scenario runs on SQLite (a temporary directory) and on PostgreSQL (a fresh database
//! created through RPS_CDS_TEST_POSTGRES_URL, see .ci/postgres.sh). Without that variable the
//! PostgreSQL variants are skipped, except under CI, where they fail (as in tests/storage/storage.rs).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::postgres::TestPostgres;
use chrono::{DateTime, Utc};
use rps_cds::audit::{AuditStore, ExportedInvocation, StorageConfig};
use serde_json::Value;
use tokio::process::Command;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rps-cds");
const SERVICE_PATH: &str = "/cds-services/rps-patient-view";
/// Concurrent client loops during the kill.
const CLIENTS: usize = 8;
/// The kill comes after this long under load (once a response has arrived) …
const LOAD_FOR: Duration = Duration::from_millis(1500);
/// … or after this many responses, whichever is first.
const LOAD_RESPONSES: usize = 400;
/// Upper bounds on every wait, so a hung server fails the test instead of hanging it.
const STARTUP_LIMIT: Duration = Duration::from_secs(20);
const LOAD_LIMIT: Duration = Duration::from_secs(10);
const COMMAND_LIMIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Sqlite,
    Postgres,
}

/// One test's private audit store, as the binary and the test both see it.
struct TestStore {
    dir: tempfile::TempDir,
    /// PostgreSQL: the test's own database, dropped with the store.
    pg: Option<TestPostgres>,
}

impl TestStore {
    async fn new(kind: Kind) -> Option<TestStore> {
        let dir = tempfile::tempdir().unwrap();
        let pg = match kind {
            Kind::Sqlite => None,
            Kind::Postgres => Some(TestPostgres::create().await?),
        };
        Some(TestStore { dir, pg })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config(&self) -> StorageConfig {
        StorageConfig {
            url: self.pg.as_ref().map(|pg| pg.url.clone()),
            data_dir: self.data_dir(),
            ..StorageConfig::default()
        }
    }

    /// `rps-cds <args>` configured for this store and nothing else: inherited RPS_CDS_…
    /// variables (a developer's own configuration) are removed.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RPS_CDS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RPS_CDS_STORAGE__DATA_DIR", self.data_dir())
            .env("RPS_CDS_LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(TestPostgres { url, .. }) = &self.pg {
            cmd.env("RPS_CDS_STORAGE__URL", url);
        }
        cmd
    }

    /// Runs a command to completion (bounded); returns its stdout after checking it exited 0.
    async fn run_ok(&self, args: &[&str]) -> String {
        let out = tokio::time::timeout(COMMAND_LIMIT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("rps-cds {args:?} did not finish in {COMMAND_LIMIT:?}"))
            .unwrap();
        assert!(
            out.status.success(),
            "rps-cds {args:?} exited {:?}; stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every invocation in the store, read directly through the library.
    async fn exported(&self) -> Vec<ExportedInvocation> {
        let store = AuditStore::open(&self.config()).await.unwrap();
        let mut buf = Vec::new();
        store
            .export_jsonl(wide_from(), wide_to(), &mut buf)
            .await
            .unwrap();
        store.close().await;
        parse_jsonl(&String::from_utf8(buf).unwrap())
    }
}

const WIDE_FROM: &str = "2000-01-01";
const WIDE_TO: &str = "2100-01-01";

fn wide_from() -> DateTime<Utc> {
    "2000-01-01T00:00:00Z".parse().unwrap()
}

fn wide_to() -> DateTime<Utc> {
    "2100-01-01T00:00:00Z".parse().unwrap()
}

fn parse_jsonl(text: &str) -> Vec<ExportedInvocation> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("export line {l:?} is not valid: {e}"))
        })
        .collect()
}

fn card_uuids(invocations: &[ExportedInvocation]) -> HashSet<Uuid> {
    invocations
        .iter()
        .flat_map(|i| i.cards.iter().map(|c| c.uuid))
        .collect()
}

/// Runs a scenario against both backends: `<scenario>::sqlite` and `<scenario>::postgres`.
macro_rules! both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(super::Kind::Postgres).await
            }
        }
    };
}

both_backends!(audit_commands_on_an_empty_store);
both_backends!(sigkill_under_load_loses_no_answered_record);
both_backends!(replay_reproduces_a_recorded_call_with_its_parameters);

async fn audit_commands_on_an_empty_store(kind: Kind) {
    let Some(store) = TestStore::new(kind).await else {
        return;
    };

    let json = store.run_ok(&["report", "--format", "json"]).await;
    let report: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("report --format json is not JSON ({e}):\n{json}"));
    assert_eq!(report["rules"], serde_json::json!([]), "{report}");
    assert!(
        report["from"].is_null() && report["to"].is_null(),
        "{report}"
    );

    let json = store
        .run_ok(&[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--format",
            "json",
        ])
        .await;
    let report: Value = serde_json::from_str(&json).unwrap();
    let from: DateTime<Utc> = serde_json::from_value(report["from"].clone()).unwrap();
    let to: DateTime<Utc> = serde_json::from_value(report["to"].clone()).unwrap();
    assert_eq!(
        from,
        "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    // A date as `--to` includes that whole day (the bound is exclusive).
    assert_eq!(to, "2026-07-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());

    let table = store.run_ok(&["report"]).await;
    assert!(table.contains("No rule fired in this period."), "{table}");

    let lines = store
        .run_ok(&["export", "--from", WIDE_FROM, "--to", WIDE_TO])
        .await;
    assert!(parse_jsonl(&lines).is_empty(), "{lines}");

    let file = store.dir.path().join("export.jsonl");
    let stdout = store
        .run_ok(&[
            "export",
            "--from",
            WIDE_FROM,
            "--to",
            WIDE_TO,
            "--output",
            file.to_str().unwrap(),
        ])
        .await;
    assert!(stdout.is_empty(), "{stdout}");
    assert!(parse_jsonl(&std::fs::read_to_string(&file).unwrap()).is_empty());

    let purged = store.run_ok(&["purge"]).await;
    assert!(purged.starts_with("deleted 0 invocation(s)"), "{purged}");
    assert!(purged.contains("retention 3650 days"), "{purged}");

    // Usage errors are refused, not run.
    let out = store
        .command(&["export", "--from", "2026-02-01", "--to", "2026-01-01"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let out = store
        .command(&["report", "--from", "01/02/2026"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// What the clients saw.
#[derive(Default)]
struct Observed {
    /// Card uuids of every 200 response a client read completely.
    cards: Mutex<Vec<Uuid>>,
    responses: AtomicUsize,
    /// Requests that failed (connection refused or reset: the kill).
    failures: AtomicUsize,
    /// Any status other than 200 before the kill would be a bug of its own.
    unexpected: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
}

async fn client_loop(
    client: reqwest::Client,
    url: String,
    body: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Observed>,
) {
    while !stop.load(Ordering::SeqCst) {
        seen.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
            .send()
            .await;
        // The body is read before the request counts: a response cut by the kill was not seen.
        let outcome = match sent {
            Ok(r) if r.status() == 200 => r.json::<Value>().await.map(Ok),
            Ok(r) => Ok(Err(r.status().as_u16())),
            Err(e) => Err(e),
        };
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Ok(Ok(v)) => {
                let uuids = v["cards"]
                    .as_array()
                    .map(|cards| {
                        cards
                            .iter()
                            .filter_map(|c| c["uuid"].as_str())
                            .map(|u| Uuid::parse_str(u).unwrap())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if uuids.is_empty() {
                    seen.unexpected
                        .lock()
                        .unwrap()
                        .push("a 200 response without cards".into());
                }
                seen.cards.lock().unwrap().extend(uuids);
                seen.responses.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Err(status)) => {
                if !stop.load(Ordering::SeqCst) {
                    seen.unexpected
                        .lock()
                        .unwrap()
                        .push(format!("status {status}"));
                }
            }
            Err(_) => {
                seen.failures.fetch_add(1, Ordering::SeqCst);
                // Refused connections come back at once; do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn free_port() -> u16 {
    // The port is free when we drop the listener; the server binds it a moment later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `rps-cds serve` on a free loopback port for this store, with extra environment, once
/// /healthz answers (bounded; the server must not have exited meanwhile).
async fn start_server(
    store: &TestStore,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, PathBuf) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = store.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = store
        .command(&["serve"])
        .env("RPS_CDS_BIND", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + STARTUP_LIMIT;
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if let Some(status) = server.try_wait().unwrap() {
            panic!(
                "the server exited ({status}) before answering; log:\n{}",
                server_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer /healthz within {STARTUP_LIMIT:?}; log:\n{}",
            server_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, base, log_path)
}

async fn sigkill_under_load_loses_no_answered_record(kind: Kind) {
    let test_started = Instant::now();
    let Some(store) = TestStore::new(kind).await else {
        return;
    };
    let (mut server, base, log_path) = start_server(&store, &[]).await;
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Load: CLIENTS loops posting the same chart as fast as the server answers.
    let body = Arc::new(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/patient-view-local-recurrence.json"
        ))
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Observed::default());
    let loops: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client_loop(
                client.clone(),
                format!("{base}{SERVICE_PATH}"),
                body.clone(),
                stop.clone(),
                seen.clone(),
            ))
        })
        .collect();
    let load_started = Instant::now();
    let mut first_response: Option<Instant> = None;
    loop {
        let n = seen.responses.load(Ordering::SeqCst);
        if n > 0 && first_response.is_none() {
            first_response = Some(Instant::now());
        }
        let loaded_long_enough = first_response.is_some_and(|t| t.elapsed() >= LOAD_FOR);
        if loaded_long_enough || n >= LOAD_RESPONSES || load_started.elapsed() >= LOAD_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // SIGKILL while the loops keep sending: no graceful shutdown, no final flush.
    let in_flight_at_kill = seen.in_flight.load(Ordering::SeqCst);
    let answered_before_kill = seen.responses.load(Ordering::SeqCst);
    server.start_kill().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("the killed server did not exit")
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        tokio::time::timeout(Duration::from_secs(10), l)
            .await
            .expect("a client loop did not stop")
            .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "unexpected answers: {unexpected:?}; log:\n{}",
        server_log()
    );
    let received: Vec<Uuid> = seen.cards.lock().unwrap().clone();
    let responses = seen.responses.load(Ordering::SeqCst);
    eprintln!(
        "{kind:?}: {responses} responses ({answered_before_kill} counted at the kill), \
         {} cards, {in_flight_at_kill} requests in flight at the kill, {} failed requests",
        received.len(),
        seen.failures.load(Ordering::SeqCst)
    );
    // Not vacuous: clients did receive cards before the kill.
    assert!(
        responses >= 1 && !received.is_empty(),
        "no response before the kill; log:\n{}",
        server_log()
    );

    // After the "restart": every card any client saw is in the store.
    let stored = store.exported().await;
    let stored_cards = card_uuids(&stored);
    let missing: Vec<&Uuid> = received
        .iter()
        .filter(|u| !stored_cards.contains(u))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} cards the clients received are not in the audit trail: {missing:?}",
        missing.len(),
        received.len()
    );
    // Each answered call is one invocation; calls cut by the kill may have been committed too.
    assert!(stored.len() >= responses, "{} < {responses}", stored.len());

    // The operator's view of the same recovered store: `export` and `report` from the binary.
    let lines = store
        .run_ok(&["export", "--from", WIDE_FROM, "--to", WIDE_TO])
        .await;
    assert_eq!(card_uuids(&parse_jsonl(&lines)), stored_cards);
    let report: Value =
        serde_json::from_str(&store.run_ok(&["report", "--format", "json"]).await).unwrap();
    let rules = report["rules"].as_array().unwrap();
    assert!(!rules.is_empty(), "{report}");
    let cards_in_report: u64 = rules.iter().map(|r| r["cards"].as_u64().unwrap()).sum();
    assert_eq!(cards_in_report, stored_cards.len() as u64, "{report}");

    // `purge --retention-days 0` deletes everything recorded before now.
    let purged = store.run_ok(&["purge", "--retention-days", "0"]).await;
    assert!(
        purged.starts_with(&format!("deleted {} invocation(s)", stored.len())),
        "{purged}"
    );
    assert!(store.exported().await.is_empty());

    eprintln!("{kind:?}: done in {:?}", test_started.elapsed());
}

const EXAMPLE_REQUEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/patient-view-local-recurrence.json"
);

/// A call answered under a site parameter is replayed from the EHR's copy of the request with
/// the recorded knowledge version and parameter set, whatever the replaying configuration says.
async fn replay_reproduces_a_recorded_call_with_its_parameters(kind: Kind) {
    let Some(store) = TestStore::new(kind).await else {
        return;
    };
    let (mut server, base, _) = start_server(
        &store,
        &[("RPS_CDS_PARAMETERS__FAVORABLE_DFI_MONTHS", "24")],
    )
    .await;
    let body = std::fs::read(EXAMPLE_REQUEST).unwrap();
    let response: Value = reqwest::Client::new()
        .post(format!("{base}{SERVICE_PATH}"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let digest = response["extension"]["https://fhir.rps-cds.org/parameter-set"]
        .as_str()
        .unwrap_or_else(|| panic!("{response:#}"))
        .to_owned();
    let first_card = Uuid::parse_str(response["cards"][0]["uuid"].as_str().unwrap()).unwrap();

    // The auditor finds the call in the export by a card uuid the EHR kept.
    let exported = store.exported().await;
    let call = exported
        .iter()
        .find(|i| i.cards.iter().any(|c| c.uuid == first_card))
        .expect("the answered call is in the audit trail");
    assert_eq!(call.parameter_set.as_deref(), Some(digest.as_str()));
    let dfi = &call.parameters.as_ref().unwrap()["favorable_dfi_months"];
    assert_eq!(dfi.value, 24.0);
    let call_id = call.id.to_string();

    // Replayed under a configuration that says 36: the recorded 24 is used.
    let replay = |id: &str, request: PathBuf| {
        let mut cmd = store.command(&[
            "replay",
            "--invocation",
            id,
            "--request",
            request.to_str().unwrap(),
        ]);
        cmd.env("RPS_CDS_PARAMETERS__FAVORABLE_DFI_MONTHS", "36");
        async move {
            let out = tokio::time::timeout(COMMAND_LIMIT, cmd.output())
                .await
                .expect("replay finished")
                .unwrap();
            (out.status.code(), String::from_utf8(out.stdout).unwrap())
        }
    };
    let (code, out) = replay(&call_id, PathBuf::from(EXAMPLE_REQUEST)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("request: matches the recorded digest"),
        "{out}"
    );
    assert!(
        out.contains(&format!("parameter set {digest}: reproduced")),
        "{out}"
    );
    assert!(out.contains("cards: the same"), "{out}");

    // Another request is not the recorded call's.
    let mut other: Value = serde_json::from_slice(&body).unwrap();
    other["hookInstance"] = Value::String(Uuid::new_v4().to_string());
    let other_file = store.dir.path().join("other-request.json");
    std::fs::write(&other_file, serde_json::to_vec(&other).unwrap()).unwrap();
    let (code, out) = replay(&call_id, other_file).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("request: DIFFERENT"), "{out}");

    // The digest is of the body as sent (no token in it): a re-formatted copy is another one.
    let reformatted = store.dir.path().join("reformatted-request.json");
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    std::fs::write(&reformatted, serde_json::to_vec_pretty(&parsed).unwrap()).unwrap();
    let (code, out) = replay(&call_id, reformatted.clone()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("request: DIFFERENT"), "{out}");

    // A call recorded before, when every digest was of the canonical JSON: either copy matches.
    let id = {
        let audit = AuditStore::open(&store.config()).await.unwrap();
        let id = rps_cds::audit::new_invocation_id();
        let cards = call
            .cards
            .iter()
            .enumerate()
            .map(|(position, c)| rps_cds::audit::CardRecord {
                uuid: rps_cds::audit::card_uuid(id, position).unwrap(),
                rule_id: c.rule_id.clone(),
                indicator: c.indicator.clone(),
                summary: c.summary.clone(),
                suggestions: c.suggestions.clone(),
                override_reasons: c.override_reasons.clone(),
            })
            .collect();
        audit
            .record_invocation(rps_cds::audit::InvocationRecord {
                id,
                time: call.time,
                service_id: call.service_id.clone(),
                hook: call.hook.clone(),
                hook_instance: call.hook_instance.clone(),
                ehr_issuer: call.ehr_issuer.clone(),
                knowledge_version: call.knowledge_version.clone(),
                parameter_set: call.parameter_set.clone(),
                patient_id: call.patient_id.clone(),
                rules_fired: call.rules_fired.clone(),
                cards,
                request_sha256: Some(rps_cds::audit::canonical_request_digest(&parsed)),
                latency_ms: call.latency_ms,
                http_status: call.http_status,
            })
            .await
            .unwrap();
        audit.close().await;
        id.to_string()
    };
    for copy in [PathBuf::from(EXAMPLE_REQUEST), reformatted] {
        let (code, out) = replay(&id, copy).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("request: matches the recorded digest (canonical JSON form)"),
            "{out}"
        );
        assert!(out.contains("cards: the same"), "{out}");
    }
}
