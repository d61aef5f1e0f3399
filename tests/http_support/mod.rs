//! Test harness for the HTTP tests: the real service on a random loopback port, a real FHIR
//! server (actix-web) that serves fixture resources, checks the bearer token and paginates,
//! and the CDS Hooks schemas every response is validated against.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rps_cds::config::Config;
use serde_json::{Value, json};

pub const TOKEN: &str = "test-access-token-7f3a";

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
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
    patient: Value,
    searches: HashMap<String, Vec<Vec<Value>>>,
    fail: Vec<String>,
    log: Arc<FhirLog>,
}

impl FhirServer {
    pub async fn start(
        patient: Value,
        searches: HashMap<String, Vec<Vec<Value>>>,
        fail: Vec<String>,
    ) -> Self {
        let log = Arc::new(FhirLog::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}/fhir");
        let data = web::Data::new(FhirData {
            base: base.clone(),
            patient,
            searches,
            fail,
            log: log.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/fhir/{tail:.*}", web::get().to(fhir_handler))
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
    if data.fail.contains(&resource_type) {
        return HttpResponse::InternalServerError().finish();
    }
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let page: usize = query.get("_page").and_then(|p| p.parse().ok()).unwrap_or(0);
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

/// An example request shipped in `examples/`.
pub fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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
