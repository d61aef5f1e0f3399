//! The edges where the service talks to FHIR servers and untrusted callers (issue 14): a
//! fault-injecting FHIR server on loopback (`support::http::Fault`), bodies that stall, lie
//! about their length or come in too many at once, crafted ids in log lines, and the
//! read-outs (metrics, `WWW-Authenticate`).
//!
//! Memory and logs are measured on the real binary started as a child process
//! (`support::http::ServiceProcess`): the peak RSS is the service's own `VmHWM`, not the test
//! process's. Everything else talks to the in-process server over HTTP.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::http::{
    Fault, FhirServer, Schemas, Service, ServiceProcess, TOKEN, example, fhir_fixtures, rule_ids,
};
use rps_cds::config::{Config, OnPrefetchFailure};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PV: &str = "/cds-services/rps-patient-view";

/// A FHIR server with the example chart, `fault` on the search of `resource_type`.
async fn faulty_fhir(resource_type: &str, fault: Fault) -> FhirServer {
    let (patient, searches) = fhir_fixtures(&example("patient-view-local-recurrence.json"));
    let faults = HashMap::from([(resource_type.to_owned(), fault)]);
    FhirServer::with_faults(patient, searches, faults).await
}

/// The example request without prefetch: everything is fetched from `base`.
fn fetching_request(base: &str) -> Value {
    let mut req = example("patient-view-local-recurrence.json");
    req.as_object_mut().unwrap().remove("prefetch");
    req["fhirServer"] = json!(base);
    req["fhirAuthorization"] = crate::support::http::fhir_authorization();
    req
}

/// An example request with one prefetch key replaced.
fn with_prefetch(file: &str, key: &str, value: Value) -> Value {
    let mut req = example(file);
    req["prefetch"][key] = value;
    req
}

/// What an EHR sends in place of a key its own prefetch could not complete.
fn ehr_failure() -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]})
}

/// The card of `rule` in a response.
fn card<'a>(body: &'a Value, rule: &str) -> &'a Value {
    body["cards"]
        .as_array()
        .and_then(|cards| cards.iter().find(|c| c["source"]["topic"]["code"] == rule))
        .unwrap_or_else(|| panic!("no {rule} card in {body:#}"))
}

/// One fetch scenario: the FHIR server with `fault` on `resource_type`, the service with
/// `config`, the reference answer (complete prefetch) and the answer when everything is
/// fetched.
struct Scenario {
    fhir: FhirServer,
    svc: Service,
    /// Rule ids of the reference answer, without the data-quality cards.
    reference: Vec<String>,
    status: u16,
    body: Value,
    elapsed: Duration,
}

impl Scenario {
    async fn run(resource_type: &str, fault: Fault, config: Config) -> Self {
        let fhir = faulty_fhir(resource_type, fault).await;
        let svc = Service::start(config).await;
        let (status, reference) = svc
            .post_json(PV, &example("patient-view-local-recurrence.json"))
            .await;
        assert_eq!(status, 200);
        let reference = rule_ids(&reference)
            .into_iter()
            .filter(|r| !r.starts_with("DATA-"))
            .collect();
        let started = Instant::now();
        let (status, body) = svc.post_json(PV, &fetching_request(&fhir.base)).await;
        let elapsed = started.elapsed();
        Self {
            fhir,
            svc,
            reference,
            status,
            body,
            elapsed,
        }
    }

    /// A degraded answer: 200, schema-valid, a DATA-04 card naming `kind`, free of URLs and
    /// the token, and the cards the other keys support.
    fn assert_degraded(&self, kind: &str) {
        let body = &self.body;
        assert_eq!(self.status, 200, "{body:#}");
        Schemas::load().assert_response(body);
        let data04 = card(body, "DATA-04");
        assert_eq!(data04["indicator"], "warning");
        // The card's own "Rule and evidence" link points at this service, not the FHIR server.
        let mut without_links = data04.clone();
        without_links.as_object_mut().unwrap().remove("links");
        let text = without_links.to_string();
        assert!(text.contains(kind), "DATA-04 names {kind}: {data04:#}");
        assert!(
            !text.contains(&self.fhir.base) && !text.contains("127.0.0.1") && !text.contains(TOKEN),
            "DATA-04 carries no URL or token: {data04:#}"
        );
        let ids = rule_ids(body);
        assert!(
            self.reference.iter().any(|r| ids.contains(r)),
            "the other keys still give their cards: {ids:?} vs {:?}",
            self.reference
        );
    }

    async fn stop(self) {
        self.svc.stop().await;
        self.fhir.stop().await;
    }
}

#[tokio::test]
async fn one_failing_key_among_eight_degrades_with_data_04_or_refuses_with_412() {
    // degrade (the default): the other seven keys decide, DATA-04 says what is missing.
    let s = Scenario::run("Observation", Fault::Status(500), Config::default()).await;
    s.assert_degraded("Observations");
    // The failed fetch is counted with its bounded reason.
    let metrics = s.svc.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rps_cds_fhir_fetch_errors_total{reason=\"status\"}")),
        "{metrics}"
    );
    s.stop().await;

    // refuse: today's 412, naming the key.
    let mut config = Config::default();
    config.prefetch.on_failure = OnPrefetchFailure::Refuse;
    let s = Scenario::run("Observation", Fault::Status(500), config).await;
    assert_eq!(s.status, 412, "{:#}", s.body);
    Schemas::load().assert_outcome(&s.body);
    assert_eq!(s.body["issue"][0]["expression"][0], "prefetch.observations");
    s.stop().await;
}

#[tokio::test]
async fn the_conditions_key_stays_required_under_degrade() {
    let s = Scenario::run("Condition", Fault::OperationOutcome, Config::default()).await;
    assert_eq!(
        s.status, 412,
        "without the diagnosis there is nothing to advise on"
    );
    Schemas::load().assert_outcome(&s.body);
    assert_eq!(s.body["issue"][0]["expression"][0], "prefetch.conditions");
    // An OperationOutcome the EHR put in prefetch, with no fhirServer to retry: the same.
    let req = with_prefetch(
        "patient-view-local-recurrence.json",
        "conditions",
        ehr_failure(),
    );
    let (status, body) = s.svc.post_json(PV, &req).await;
    assert_eq!(status, 412);
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains("OperationOutcome") && diagnostics.contains("no fhirServer"),
        "{diagnostics}"
    );
    s.stop().await;
}

/// Posts `req` to `path` and returns the DATA-04 card's text of a 200 answer.
async fn data_04_text(svc: &Service, path: &str, req: &Value) -> String {
    let (status, body) = svc.post_json(path, req).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    card(&body, "DATA-04").to_string()
}

#[tokio::test]
async fn an_operation_outcome_with_200_is_a_failure_of_the_key_not_empty_data() {
    let s = Scenario::run("Procedure", Fault::OperationOutcome, Config::default()).await;
    s.assert_degraded("Procedures");
    // The same from the EHR itself: an OperationOutcome in prefetch and no fhirServer, on
    // patient-view and on the order hooks.
    let req = with_prefetch(
        "patient-view-local-recurrence.json",
        "procedures",
        ehr_failure(),
    );
    assert!(data_04_text(&s.svc, PV, &req).await.contains("Procedures"));
    let req = with_prefetch("order-sign.json", "procedures", ehr_failure());
    let text = data_04_text(&s.svc, "/cds-services/rps-order-sign", &req).await;
    assert!(text.contains("Procedures"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn a_patient_where_a_bundle_was_expected_is_a_failure_of_the_key() {
    let s = Scenario::run(
        "MedicationAdministration",
        Fault::WrongResource,
        Config::default(),
    )
    .await;
    s.assert_degraded("Medication administrations");
    // The EHR's own prefetch of the wrong shape counts the same.
    let patient = example("patient-view-local-recurrence.json")["prefetch"]["patient"].clone();
    let req = with_prefetch(
        "patient-view-local-recurrence.json",
        "medicationAdministrations",
        patient,
    );
    let text = data_04_text(&s.svc, PV, &req).await;
    assert!(text.contains("Medication administrations"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn a_failed_key_makes_its_facts_unknown_even_where_the_world_is_closed() {
    // With procedures unreadable, "no radiotherapy / no resection recorded" must not be
    // claimed: the facts are unknown, and the cards say why.
    let s = Scenario::run("Procedure", Fault::Status(503), Config::default()).await;
    s.assert_degraded("Procedures");
    let text = s.body.to_string();
    assert!(
        text.contains("the Procedure data could not be read"),
        "facts of the failed key are reported unknown because of it: {:#}",
        s.body
    );
    assert!(
        !text.to_lowercase().contains("no radiotherapy recorded"),
        "{:#}",
        s.body
    );
    s.stop().await;
}

#[tokio::test]
async fn a_next_link_under_a_sibling_path_never_receives_the_token() {
    let s = Scenario::run(
        "DiagnosticReport",
        Fault::SiblingNextLink,
        Config::default(),
    )
    .await;
    s.assert_degraded("Diagnostic reports");
    let log = &s.fhir.log;
    assert_eq!(
        log.foreign_requests.load(Ordering::SeqCst),
        0,
        "the sibling path /fhirevil/ was not requested at all"
    );
    assert_eq!(log.foreign_tokens.load(Ordering::SeqCst), 0);
    assert_eq!(log.bad_tokens.load(Ordering::SeqCst), 0);
    s.stop().await;
}

#[tokio::test]
async fn twenty_slow_next_pages_are_cut_off_by_the_one_deadline() {
    // 20 pages at 1 s each would take 20 s; the call's deadline (default 4 s) cuts it off.
    let slow = Fault::SlowPages {
        pages: 20,
        delay_ms: 1_000,
    };
    let config = Config::default();
    let deadline = Duration::from_millis(config.fhir.deadline_ms);
    let s = Scenario::run("Observation", slow, config).await;
    eprintln!("20 slow pages: answered after {:?}", s.elapsed);
    assert!(
        s.elapsed < deadline + Duration::from_secs(1),
        "answered after {:?}, deadline {deadline:?}",
        s.elapsed
    );
    s.assert_degraded("Observations");
    let pages = s
        .fhir
        .log
        .paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.contains("Observation"))
        .count();
    assert!(
        pages < 20,
        "outstanding fetches were cancelled: {pages} pages"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_byte_cap_within_the_deadline() {
    let mut config = Config::default();
    config.fhir.max_response_bytes = 1024 * 1024;
    let deadline = Duration::from_millis(config.fhir.deadline_ms);
    let s = Scenario::run("Observation", Fault::EndlessBody, config).await;
    assert!(
        s.elapsed < deadline + Duration::from_secs(1),
        "{:?}",
        s.elapsed
    );
    s.assert_degraded("exceeded the size limit");
    s.stop().await;
}

/// The real binary with the default 16 MiB cap: an endless body neither grows the service's
/// memory without bound nor delays the answer past the deadline.
#[tokio::test]
async fn an_endless_body_keeps_the_service_process_under_300_mb() {
    let fhir = faulty_fhir("Observation", Fault::EndlessBody).await;
    let svc = ServiceProcess::start(&[]);
    let before = svc.vm_hwm_kib();
    let started = Instant::now();
    let (status, body) = svc.post_json(PV, &fetching_request(&fhir.base)).await;
    let elapsed = started.elapsed();
    let after = svc.vm_hwm_kib();
    eprintln!(
        "endless body: service VmHWM {} MiB at start, {} MiB after, answered in {elapsed:?}",
        before / 1024,
        after / 1024
    );
    assert_eq!(status, 200, "{body:#}");
    assert!(card(&body, "DATA-04").to_string().contains("Observations"));
    assert!(
        elapsed
            < Duration::from_millis(Config::default().fhir.deadline_ms) + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(after < 300 * 1024, "peak RSS {} MiB", after / 1024);
    fhir.stop().await;
}

/// A real chart of ≈ 6,000 resources (the 1,000 pooled Synthea resources of
/// `shared/realdata/scale-sample`, each present six times under new ids) is over the old 5 MiB
/// limit and is answered, not refused with 413.
#[tokio::test]
async fn a_real_chart_of_6000_resources_fits_the_default_body_limit() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/realdata/scale-sample/scale-01000.json"
    );
    let mut req: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut resources = 0;
    for (_, bundle) in req["prefetch"].as_object_mut().unwrap().iter_mut() {
        let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
            continue;
        };
        let originals = entries.clone();
        for copy in 1..6 {
            entries.extend(originals.iter().map(|e| {
                let mut e = e.clone();
                let id = e["resource"]["id"].as_str().unwrap_or("x").to_owned();
                e["resource"]["id"] = json!(format!("{id}-c{copy}"));
                e
            }));
        }
        resources += entries.len();
    }
    let bytes = serde_json::to_vec(&req).unwrap().len();
    assert!(
        resources >= 5_000 && bytes > 5 * 1024 * 1024,
        "{resources} resources, {bytes} bytes"
    );
    let svc = Service::default().await;
    let (status, body) = svc.post_json(PV, &req).await;
    assert_eq!(
        status, 200,
        "{resources} resources, {bytes} bytes: {body:#}"
    );
    Schemas::load().assert_response(&body);
    svc.stop().await;
}

/// Sends raw bytes and reads the answer until the server closes the connection or `wait`
/// passes; returns the text and how long the status line took.
async fn raw_exchange(addr: &str, request: &[u8], wait: Duration) -> (String, Duration) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(
        wait.saturating_sub(started.elapsed()),
        stream.read(&mut buf),
    )
    .await
    {
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| started.elapsed());
        out.extend_from_slice(&buf[..n]);
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        first.unwrap_or(wait),
    )
}

fn hook_head(content_length: u64) -> String {
    format!(
        "POST {PV} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_stalled_body_gets_408_within_the_timeout() {
    let config = Config {
        client_body_timeout_secs: 1,
        ..Config::default()
    };
    let svc = Service::start(config).await;
    let addr = svc.base.trim_start_matches("http://").to_owned();
    let request = format!("{}0123456789", hook_head(1000));
    let (answer, took) = raw_exchange(&addr, request.as_bytes(), Duration::from_secs(20)).await;
    eprintln!("stalled body: answered after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "OperationOutcome: {answer}");
    assert!(took < Duration::from_secs(1 + 2), "408 after {took:?}");
    svc.stop().await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_gets_413_before_reading() {
    // The body timeout is long: a 413 that arrives without a byte of body is an early one.
    let config = Config {
        client_body_timeout_secs: 60,
        ..Config::default()
    };
    let svc = Service::start(config).await;
    let addr = svc.base.trim_start_matches("http://").to_owned();
    let (answer, took) = raw_exchange(
        &addr,
        hook_head(10_737_418_240).as_bytes(),
        Duration::from_secs(30),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too-long"), "{answer}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    svc.stop().await;
}

#[tokio::test]
async fn draft_orders_over_the_cap_get_400() {
    let config = Config {
        max_draft_orders: 3,
        ..Config::default()
    };
    let svc = Service::start(config).await;
    let mut req = example("order-sign.json");
    let order = req["context"]["draftOrders"]["entry"][0].clone();
    let entries = req["context"]["draftOrders"]["entry"]
        .as_array_mut()
        .unwrap();
    for i in 0..(4 - entries.len()) {
        let mut o = order.clone();
        o["resource"]["id"] = json!(format!("draft-extra-{i}"));
        entries.push(o);
    }
    let (status, body) = svc.post_json("/cds-services/rps-order-sign", &req).await;
    assert_eq!(status, 400, "{body:#}");
    Schemas::load().assert_outcome(&body);
    assert_eq!(body["issue"][0]["code"], "too-costly");
    assert_eq!(
        body["issue"][0]["expression"][0],
        "context.draftOrders.entry"
    );
    req["context"]["draftOrders"]["entry"]
        .as_array_mut()
        .unwrap()
        .truncate(3);
    let (status, body) = svc.post_json("/cds-services/rps-order-sign", &req).await;
    assert_eq!(status, 200, "{body:#}");
    svc.stop().await;
}

#[tokio::test]
async fn bodies_beyond_the_in_flight_budget_get_503_with_retry_after() {
    let config = Config {
        max_body_bytes: 64 * 1024,
        max_inflight_body_bytes: 96 * 1024,
        client_body_timeout_secs: 60,
        ..Config::default()
    };
    let svc = Service::start(config).await;
    let addr = svc.base.trim_start_matches("http://").to_owned();
    // One request holds 60,000 bytes of the budget while its body trickles in.
    let mut holder = tokio::net::TcpStream::connect(&addr).await.unwrap();
    holder
        .write_all(format!("{}{{", hook_head(60_000)).as_bytes())
        .await
        .unwrap();
    // A second request of 40,000 bytes does not fit beside it (bounded retries: the holder's
    // reservation is made once its headers have been read).
    let mut req = example("patient-view-local-recurrence.json");
    let pad = 40_000 - serde_json::to_vec(&req).unwrap().len().min(40_000);
    req["padding"] = json!("x".repeat(pad));
    let mut refused = None;
    for _ in 0..100 {
        let r = svc
            .client
            .post(svc.url(PV))
            .json(&req)
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = refused.expect("a request over the in-flight budget is refused with 503");
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    Schemas::load().assert_outcome(&body);
    assert_eq!(body["issue"][0]["code"], "transient");
    // Once the holder goes away, its bytes are returned and the same request is admitted.
    drop(holder);
    let mut admitted = false;
    for _ in 0..100 {
        let r = svc
            .client
            .post(svc.url(PV))
            .json(&req)
            .send()
            .await
            .unwrap();
        if r.status() != 503 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "the budget is given back when a request ends");
    assert_eq!(svc.state.body_budget.used(), 0);
    svc.stop().await;
}

#[tokio::test]
async fn fetched_data_counts_against_the_same_budget() {
    // Bodies up to 1 MiB, 1 MiB in flight: the request fits, the endless search does not.
    let config = Config {
        max_body_bytes: 1024 * 1024,
        max_inflight_body_bytes: 1024 * 1024,
        ..Config::default()
    };
    let s = Scenario::run("Observation", Fault::EndlessBody, config).await;
    assert_eq!(s.status, 503, "{:#}", s.body);
    Schemas::load().assert_outcome(&s.body);
    assert_eq!(s.body["issue"][0]["code"], "transient");
    assert_eq!(
        s.svc.state.body_budget.used(),
        0,
        "every byte is given back"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_route_is_counted_in_requests_total() {
    let svc = Service::default().await;
    for path in [
        "/healthz",
        "/readyz",
        "/cds-services",
        "/openapi.json",
        "/no-such-path",
    ] {
        svc.client.get(svc.url(path)).send().await.unwrap();
    }
    let metrics = svc.metrics().await;
    for service in ["healthz", "readyz", "discovery", "openapi", "not_found"] {
        let label = format!("service=\"{service}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("rps_cds_requests_total{") && l.contains(&label)),
            "{label} missing:\n{metrics}"
        );
    }
    svc.stop().await;
}

/// Logs of the real binary: a crafted id cannot start a line of its own, a 1 MB id does not
/// make a 1 MB line, and resources set aside are one line per request.
#[tokio::test]
async fn crafted_ids_cannot_forge_log_lines_and_set_aside_resources_are_one_line() {
    let svc = ServiceProcess::start(&[]);
    let mut req = example("patient-view-local-recurrence.json");
    let forged = "x\n2026-12-01T00:00:00.000000Z ERROR rps_cds::audit: FORGED";
    let entries = req["prefetch"]["observations"]["entry"]
        .as_array_mut()
        .unwrap();
    let mut bad = Vec::new();
    for i in 0..50 {
        bad.push(json!({"resource": {"resourceType": "Observation", "id": format!("bad-{i}!"), "status": "final", "code": {"text": "x"}}}));
    }
    bad.push(json!({"resource": {"resourceType": "Observation", "id": forged, "status": "final", "code": {"text": "x"}}}));
    bad.push(json!({"resource": {"resourceType": "Observation", "id": "y".repeat(1024 * 1024), "status": "final", "code": {"text": "x"}}}));
    // The forged id first, so that it is among the few listed.
    bad.rotate_right(2);
    entries.splice(0..0, bad);
    let (status, body) = svc.post_json(PV, &req).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(rule_ids(&body).contains(&"DATA-02".to_owned()));
    // The log line is written before the answer is sent.
    let lines = svc.log_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("ERROR rps_cds::audit: FORGED")
                && !l.contains("resources set aside")),
        "a forged line appeared: {lines:#?}"
    );
    let set_aside: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("resources set aside"))
        .collect();
    assert_eq!(set_aside.len(), 1, "one line per request: {set_aside:#?}");
    let line = set_aside[0];
    assert!(line.contains("set_aside=52"), "{line}");
    assert!(line.contains("Observation=52"), "{line}");
    assert!(
        line.contains(r"x\n2026-12-01T00:00:00.000000Z ERROR"),
        "escaped: {line}"
    );
    let longest = lines.iter().map(String::len).max().unwrap_or(0);
    assert!(longest < 4096, "a log line of {longest} bytes");
}

/// docs/operations.md (metrics reference and alert runbook) names only metrics that the
/// service actually records: after one of each kind of call, every name has a sample in
/// `/metrics` (not just a HELP line).
#[tokio::test]
async fn the_runbook_names_only_metrics_the_service_records() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let mut names: Vec<String> = doc
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("rps_cds_"))
        .map(|w| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .fold(w, |w, suffix| w.strip_suffix(suffix).unwrap_or(w))
                .to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");

    // A hook call with a key that fails (fetch error, DATA-04), one with an invalid resource
    // (set aside), readiness, and a refused JWT.
    let s = Scenario::run("Observation", Fault::Status(500), Config::default()).await;
    let mut req = example("patient-view-local-recurrence.json");
    req["prefetch"]["observations"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"resource": {"resourceType": "Observation", "id": "bad!", "status": "final"}}),
        );
    assert_eq!(s.svc.post_json(PV, &req).await.0, 200);
    s.svc.client.get(s.svc.url("/readyz")).send().await.unwrap();
    let mut config = Config::default();
    config.auth.mode = rps_cds::auth::AuthMode::Required;
    config.auth.trusted_clients = vec![rps_cds::auth::TrustedClient {
        iss: "https://ehr.example.org".to_owned(),
        jwks_url: None,
        // The P-256 public key of RFC 7517 appendix A.1: any token is refused before it matters.
        jwks: Some(
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "1", "use": "sig",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}),
        ),
        jwks_file: None,
        jku_allowlist: vec![],
        tenants: None,
    }];
    let guarded = Service::start(config).await;
    let r = guarded
        .client
        .get(guarded.url("/cds-services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    guarded.stop().await;

    let metrics = s.svc.metrics().await;
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !metrics.lines().any(|l| {
                !l.starts_with('#')
                    && l.strip_prefix(name.as_str()).is_some_and(|rest| {
                        ["{", " ", "_bucket", "_count", "_sum"]
                            .iter()
                            .any(|p| rest.starts_with(p))
                    })
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named in docs/operations.md but never recorded: {missing:?}"
    );
    s.stop().await;
}

/// Every row of the route list is counted under the label the list gives it (the governance
/// and rules pages included), with the status it answered: the labels come from the same list
/// as the route table.
#[tokio::test]
async fn every_listed_route_is_counted_under_its_own_label() {
    use rps_cds::http::routes::{MetricsLabel, ROUTES, Verb};
    let svc = Service::default().await;
    let mut expected = Vec::new();
    for route in ROUTES {
        let url = svc.url(&route.path.replace("{id}", "rps-patient-view"));
        let request = match route.method {
            Verb::Get => svc.client.get(&url),
            Verb::Post => svc
                .client
                .post(&url)
                .header("content-type", "application/json")
                .body("{}"),
        };
        let status = request.send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405, "{} {}", route.path, status);
        let (service, hook) = match route.label {
            MetricsLabel::Route(name) => (name, "none"),
            MetricsLabel::HostedService => ("rps-patient-view", "patient-view"),
        };
        expected.push((
            route.path,
            [
                format!("service=\"{service}\""),
                format!("hook=\"{hook}\""),
                format!("status=\"{status}\""),
            ],
        ));
    }
    let metrics = svc.metrics().await;
    for (path, labels) in expected {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("rps_cds_requests_total{")
                    && labels.iter().all(|label| l.contains(label.as_str()))),
            "{path}: no requests_total sample with {labels:?}:\n{metrics}"
        );
    }
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("rps_cds_requests_total{")
                && l.contains("service=\"not_found\"")
                && l.contains("status=\"200\"")),
        "a listed route was counted as not_found:\n{metrics}"
    );
    svc.stop().await;
}

/// Draining (SIGTERM): readiness turns 503 with its JSON status, not an OperationOutcome, and
/// a hook call is refused with 503 while health still answers.
#[tokio::test]
async fn a_draining_instance_is_not_ready_and_refuses_hook_calls() {
    let svc = Service::default().await;
    svc.state.draining.store(true, Ordering::SeqCst);
    let r = svc.client.get(svc.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "draining"}));
    let (status, body) = svc
        .post_json(PV, &example("patient-view-local-recurrence.json"))
        .await;
    assert_eq!(status, 503, "{body:#}");
    Schemas::load().assert_outcome(&body);
    assert_eq!(svc.get("/healthz").await.0, 200);
    svc.state.draining.store(false, Ordering::SeqCst);
    assert_eq!(svc.get("/readyz").await.0, 200);
    svc.stop().await;
}
