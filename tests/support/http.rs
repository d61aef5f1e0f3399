//! Test harness for the HTTP tests: the real service on a random loopback port (in-process, or
//! the real binary as a child process when its memory or logs are measured), a real FHIR
//! server (actix-web) that serves fixture resources, checks the bearer token, paginates and
//! can misbehave on purpose ([`Fault`]), and the CDS Hooks schemas every response is
//! validated against.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures::StreamExt;
use rps_cds::config::Config;
use serde_json::{Value, json};

pub const TOKEN: &str = "test-access-token-7f3a";

/// The namespace of the service's extension keys (`{EXT}/unknown`, `{EXT}/rules-applied` …).
pub const EXT: &str = "https://fhir.rps-cds.org";

/// The service under test.
pub struct Service {
    pub base: String,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<rps_cds::http::AppState>,
    handle: actix_web::dev::ServerHandle,
    _data_dir: Option<tempfile::TempDir>,
}

impl Service {
    pub async fn start(mut config: Config) -> Self {
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.fhir.allow_http = true;
        config.workers = 1;
        // Each service gets its own SQLite audit database unless the test chose a store.
        let data_dir = if config.storage.url.is_none() {
            let dir = tempfile::tempdir().unwrap();
            config.storage.data_dir = dir.path().to_path_buf();
            Some(dir)
        } else {
            None
        };
        let running = rps_cds::http::build(config).await.unwrap();
        let (addr, handle, state) = running.spawn();
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            handle,
            _data_dir: data_dir,
        }
    }

    pub async fn default() -> Self {
        Self::start(Config::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        post_json(&self.client, &self.url(path), body).await
    }

    /// Posts a CDS Hooks request to the service of its `hook`, asserts 200 and a response
    /// valid against the CDS Hooks schemas, and returns the response.
    pub async fn call_hook(&self, request: &Value) -> Value {
        let service = match request["hook"].as_str() {
            Some("patient-view") => "rps-patient-view",
            Some("order-sign") => "rps-order-sign",
            _ => "rps-order-select",
        };
        let (status, body) = self
            .post_json(&format!("/cds-services/{service}"), request)
            .await;
        assert_eq!(status, 200, "{body:#}");
        Schemas::load().assert_response(&body);
        body
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    /// GET: status, content type and body text.
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, content_type, r.text().await.unwrap())
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
        self.state.audit.close().await;
    }
}

/// POSTs JSON; the status and the body as JSON (`Null` when it is not JSON).
/// Posts JSON. A CDS Hooks response's cards must pass the clinician-text lint
/// ([`card_lint`](super::card_lint)): every chart a test sends through here is checked for it.
pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let response = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_card_text(url, &response);
    (status, response)
}

/// The compiled CDS Hooks schemas.
pub struct Schemas {
    pub response: jsonschema::Validator,
    pub discovery: jsonschema::Validator,
    pub outcome: jsonschema::Validator,
}

impl Schemas {
    pub fn load() -> Self {
        let load = |text: &str| {
            let v: Value = serde_json::from_str(text).unwrap();
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&v)
                .unwrap()
        };
        use rps_cds::cds_hooks::request::{
            DISCOVERY_SCHEMA, OPERATION_OUTCOME_SCHEMA, RESPONSE_SCHEMA,
        };
        Self {
            response: load(RESPONSE_SCHEMA),
            discovery: load(DISCOVERY_SCHEMA),
            outcome: load(OPERATION_OUTCOME_SCHEMA),
        }
    }

    pub fn assert_response(&self, v: &Value) {
        let errors: Vec<String> = self
            .response
            .iter_errors(v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "response violates response.schema.json: {errors:#?}\n{v:#}"
        );
    }

    pub fn assert_outcome(&self, v: &Value) {
        let errors: Vec<String> = self
            .outcome
            .iter_errors(v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "body violates operation-outcome.schema.json: {errors:#?}\n{v:#}"
        );
    }
}

/// What the fake FHIR server saw.
#[derive(Default)]
pub struct FhirLog {
    pub requests: AtomicUsize,
    pub bad_tokens: AtomicUsize,
    pub paths: Mutex<Vec<String>>,
    /// Requests to paths outside `/fhir/` (e.g. a sibling `/fhirevil/`), and how many of them
    /// carried an `Authorization` header.
    pub foreign_requests: AtomicUsize,
    pub foreign_tokens: AtomicUsize,
}

/// A misbehaviour of the FHIR server for the search of one resource type.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This HTTP status, empty body.
    Status(u16),
    /// 200 with a chunked body that never ends (it starts like a Bundle).
    EndlessBody,
    /// `pages` pages, each answered after `delay_ms`, each linking to the next.
    SlowPages { pages: usize, delay_ms: u64 },
    /// 200 with an OperationOutcome instead of a Bundle.
    OperationOutcome,
    /// 200 with a Patient instead of a Bundle.
    WrongResource,
    /// A searchset whose `next` link is under a sibling path (`/fhir` → `/fhirevil/…`).
    SiblingNextLink,
}

/// A FHIR server on a random port. `searches` maps a resource type to the pages of its search
/// (each page a list of resources); `fail` lists resource types that answer 500.
pub struct FhirServer {
    pub base: String,
    pub log: Arc<FhirLog>,
    handle: actix_web::dev::ServerHandle,
}

struct FhirData {
    base: String,
    origin: String,
    patient: Value,
    searches: HashMap<String, Vec<Vec<Value>>>,
    faults: HashMap<String, Fault>,
    log: Arc<FhirLog>,
}

impl FhirServer {
    pub async fn start(
        patient: Value,
        searches: HashMap<String, Vec<Vec<Value>>>,
        fail: Vec<String>,
    ) -> Self {
        let faults = fail
            .into_iter()
            .map(|rt| (rt, Fault::Status(500)))
            .collect();
        Self::with_faults(patient, searches, faults).await
    }

    /// As [`FhirServer::start`], with a [`Fault`] per resource type.
    pub async fn with_faults(
        patient: Value,
        searches: HashMap<String, Vec<Vec<Value>>>,
        faults: HashMap<String, Fault>,
    ) -> Self {
        let log = Arc::new(FhirLog::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}/fhir");
        let data = web::Data::new(FhirData {
            base: base.clone(),
            origin: format!("http://{addr}"),
            patient,
            searches,
            faults,
            log: log.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/fhir/{tail:.*}", web::get().to(fhir_handler))
                .default_service(web::to(foreign_handler))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { base, log, handle }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn fhir_handler(req: HttpRequest, data: web::Data<FhirData>) -> HttpResponse {
    data.log.requests.fetch_add(1, Ordering::SeqCst);
    data.log.paths.lock().unwrap().push(req.uri().to_string());
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {TOKEN}") {
        data.log.bad_tokens.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().finish();
    }
    let tail = req.match_info().get("tail").unwrap_or("").to_owned();
    if tail.starts_with("Patient/") {
        return HttpResponse::Ok()
            .content_type("application/fhir+json")
            .json(&data.patient);
    }
    let resource_type = tail.clone();
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let page: usize = query.get("_page").and_then(|p| p.parse().ok()).unwrap_or(0);
    if let Some(fault) = data.faults.get(&resource_type) {
        return faulty_answer(fault, &data, &resource_type, page).await;
    }
    let pages = data
        .searches
        .get(&resource_type)
        .cloned()
        .unwrap_or_default();
    let entries: Vec<Value> = pages
        .get(page)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({"resource": r}))
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    if page + 1 < pages.len() {
        let patient = query.get("patient").cloned().unwrap_or_default();
        bundle["link"] = json!([{"relation": "next", "url": format!("{}/{}?patient={}&_page={}", data.base, resource_type, patient, page + 1)}]);
    }
    HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(bundle)
}

/// Anything outside `/fhir/`: recorded, never answered with data.
async fn foreign_handler(req: HttpRequest, data: web::Data<FhirData>) -> HttpResponse {
    data.log.foreign_requests.fetch_add(1, Ordering::SeqCst);
    if req.headers().contains_key("authorization") {
        data.log.foreign_tokens.fetch_add(1, Ordering::SeqCst);
    }
    HttpResponse::NotFound().finish()
}

fn fhir_json(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(body)
}

async fn faulty_answer(
    fault: &Fault,
    data: &FhirData,
    resource_type: &str,
    page: usize,
) -> HttpResponse {
    match fault {
        Fault::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(*code).unwrap()).finish()
        }
        Fault::EndlessBody => {
            let head = web::Bytes::from_static(
                br#"{"resourceType": "Bundle", "type": "searchset", "entry": ["#,
            );
            let filler = web::Bytes::from(vec![b' '; 64 * 1024]);
            let body = futures::stream::once(async move { Ok::<_, actix_web::Error>(head) })
                .chain(futures::stream::repeat_with(move || Ok(filler.clone())));
            HttpResponse::Ok()
                .content_type("application/fhir+json")
                .streaming(body)
        }
        Fault::SlowPages { pages, delay_ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(*delay_ms)).await;
            let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": []});
            if page + 1 < *pages {
                bundle["link"] = json!([{"relation": "next", "url": format!("{}/{resource_type}?_page={}", data.base, page + 1)}]);
            }
            fhir_json(bundle)
        }
        Fault::OperationOutcome => fhir_json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception", "diagnostics": "search failed"}]
        })),
        Fault::WrongResource => fhir_json(data.patient.clone()),
        Fault::SiblingNextLink => fhir_json(json!({
            "resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": format!("{}/fhirevil/{resource_type}?_page=1", data.origin)}]
        })),
    }
}

/// The `fhirAuthorization` of a request whose data is fetched from the test FHIR server.
pub fn fhir_authorization() -> Value {
    json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "rps-cds"})
}

/// An example request shipped in `examples/`.
pub fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The example chart split into what a FHIR server would answer per search.
pub fn fhir_fixtures(request: &Value) -> (Value, HashMap<String, Vec<Vec<Value>>>) {
    let prefetch = request["prefetch"].as_object().unwrap();
    let patient = prefetch["patient"].clone();
    let mut searches: HashMap<String, Vec<Vec<Value>>> = HashMap::new();
    for (key, value) in prefetch {
        if key == "patient" {
            continue;
        }
        let resources: Vec<Value> = value["entry"]
            .as_array()
            .map(|e| e.iter().map(|x| x["resource"].clone()).collect())
            .unwrap_or_default();
        let Some(rt) = resources
            .first()
            .and_then(|r| r["resourceType"].as_str())
            .map(str::to_owned)
        else {
            continue;
        };
        // Two resources per page, so every search with more than two paginates.
        searches.insert(rt, resources.chunks(2).map(<[Value]>::to_vec).collect());
    }
    (patient, searches)
}

/// The card of `rule` (its `source.topic.code`); panics naming the cards there are.
pub fn card<'b>(response: &'b Value, rule: &str) -> &'b Value {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == rule)
        .unwrap_or_else(|| panic!("{rule} missing from {:?}", rule_ids(response)))
}

/// Every rule id that applied, members of merged cards included (the cards'
/// `rules-applied` extension).
pub fn rules_applied(response: &Value) -> Vec<String> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["extension"]["https://fhir.rps-cds.org/rules-applied"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `rule` applied: it has a card of its own or is a member of a merged card.
pub fn applies(response: &Value, rule: &str) -> bool {
    rules_applied(response).iter().any(|r| r == rule)
}

/// The verdict rules of catalogue v2 (§4.3, §4.4): exactly one of them per local recurrence.
pub const VERDICTS: &[&str] = &[
    "LR-00", "LR-01", "LR-02", "LR-03", "LR-04", "LR-09", "MET-12",
];

/// The verdict rules that applied (see [`VERDICTS`]).
pub fn verdicts(response: &Value) -> Vec<String> {
    rules_applied(response)
        .into_iter()
        .filter(|r| VERDICTS.contains(&r.as_str()))
        .collect()
}

/// Every fact a response's cards list as unknown (DATA-01 and verdict cards).
pub fn unknown_facts(response: &Value) -> Vec<String> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["extension"][format!("{EXT}/unknown")]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["fact"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Rule ids of the cards in a response.
pub fn rule_ids(response: &Value) -> Vec<String> {
    response["cards"]
        .as_array()
        .map(|cards| {
            cards
                .iter()
                .filter_map(|c| c["source"]["topic"]["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The real binary (`rps-cds serve`) as a child process on a random loopback port, for what
/// only a separate process can show: its own memory high-water mark (`VmHWM` in
/// `/proc/PID/status`, not the test process's) and its log lines (stderr, text format).
pub struct ServiceProcess {
    pub base: String,
    pub client: reqwest::Client,
    child: std::process::Child,
    stderr: Arc<Mutex<Vec<String>>>,
    _data_dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts the binary with the harness defaults plus `env` (`RPS_CDS_…` configuration)
    /// and waits for its "listening" log line.
    pub fn start(env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rps-cds"));
        cmd.arg("serve")
            .env_remove(rps_cds::config::CONFIG_FILE_ENV)
            .env("RPS_CDS_BIND", "127.0.0.1:0")
            .env("RPS_CDS_WORKERS", "1")
            .env("RPS_CDS_FHIR__ALLOW_HTTP", "true")
            .env("RPS_CDS_STORAGE__DATA_DIR", data_dir.path())
            .env("RPS_CDS_LOG__FORMAT", "text")
            .env("RPS_CDS_LOG__LEVEL", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the rps-cds binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let started = std::time::Instant::now();
        let addr = loop {
            let found = stderr.lock().unwrap().iter().find_map(|l| {
                l.contains("rps-cds listening")
                    .then(|| l.split("addr=").nth(1)?.split_whitespace().next())
                    .flatten()
                    .map(str::to_owned)
            });
            if let Some(addr) = found {
                break addr;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "rps-cds exited with {status}: {:#?}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(180),
                "rps-cds did not start: {:#?}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            child,
            stderr,
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        post_json(&self.client, &self.url(path), body).await
    }

    /// Peak resident set size of the service process so far, in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// The log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `resource` to the prefetch searchset `key` of a request (creating its `entry`).
pub fn add_to_prefetch(request: &mut Value, key: &str, resource: Value) {
    let bundle = &mut request["prefetch"][key];
    if bundle["entry"].is_null() {
        bundle["entry"] = json!([]);
    }
    let entries = bundle["entry"].as_array_mut().unwrap();
    entries.push(json!({ "resource": resource }));
    let n = entries.len();
    if bundle.get("total").is_some() {
        bundle["total"] = json!(n);
    }
}

/// The prefetch resource `id` of searchset `key`, to change it in place.
pub fn prefetch_resource<'a>(request: &'a mut Value, key: &str, id: &str) -> &'a mut Value {
    request["prefetch"][key]["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|e| &mut e["resource"])
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {key}"))
}

/// Removes the prefetch resource `id` from searchset `key`.
pub fn remove_from_prefetch(request: &mut Value, key: &str, id: &str) {
    let entries = request["prefetch"][key]["entry"].as_array_mut().unwrap();
    let before = entries.len();
    entries.retain(|e| e["resource"]["id"] != id);
    assert_eq!(entries.len() + 1, before, "{id} in {key}");
}

/// Panics with every clinician-text problem of a CDS Hooks response (a response without cards
/// — an OperationOutcome, feedback — has none).
pub fn assert_card_text(path: &str, response: &Value) {
    if response.get("cards").and_then(Value::as_array).is_none() {
        return;
    }
    let problems = super::card_lint::problems(path, response);
    assert!(
        problems.is_empty(),
        "{} card text problem(s) (catalogue §6):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
