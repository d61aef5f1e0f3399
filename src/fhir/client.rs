//! The FHIR client that completes prefetch: for each prefetch key the EHR did not satisfy, a
//! search on `fhirServer` with the EHR's bearer token, all keys in parallel, each request with
//! a timeout, following the searchset Bundle's `next` links (same origin and under the
//! server's path only, so the token never leaves the EHR's server) up to a page limit. Bodies
//! are streamed with a byte cap; the caller puts one deadline over all fetches of a call.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::budget::Reservation;

/// A bearer token for the EHR's FHIR server. Used only to fetch prefetch data from
/// `fhirServer`; never logged, stored or sent elsewhere.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[fhir]`: the client that completes prefetch from `fhirServer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FhirClientConfig {
    pub connect_timeout_ms: u64,
    /// Per HTTP request to the FHIR server (each page of a search).
    pub request_timeout_ms: u64,
    /// Bundle `next` links followed per prefetch key at most.
    pub max_pages: usize,
    /// Allow `fhirServer` URLs with plain http (testing only; https otherwise).
    pub allow_http: bool,
    /// Bytes read from the FHIR server per prefetch key (all pages of its search together);
    /// reading stops past it and the key counts as failed.
    pub max_response_bytes: usize,
    /// One deadline for all fetching of a hook call, from the first request to the last
    /// page; fetches still outstanding then are cancelled and their keys count as failed.
    pub deadline_ms: u64,
}

impl Default for FhirClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            max_pages: 20,
            allow_http: false,
            max_response_bytes: 16 * 1024 * 1024,
            deadline_ms: 4_000,
        }
    }
}

/// A prefetch key that could not be had, answered in degraded mode (DATA-04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailableData {
    /// The prefetch key ("procedures").
    pub key: &'static str,
    /// The resource type it carries ("Procedure").
    pub resource_type: &'static str,
    /// Why, in plain words without URLs or tokens ("the FHIR server did not answer in time").
    pub why: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the FHIR server did not answer within {0} ms")]
    Timeout(u64),
    #[error("fetching was not finished within the call's deadline of {0} ms")]
    Deadline(u64),
    #[error("could not connect to the FHIR server")]
    Connect,
    #[error("the FHIR server answered HTTP {0}")]
    Status(u16),
    #[error("the FHIR server's answer is not a FHIR resource in JSON")]
    InvalidBody,
    #[error("the FHIR server's answer is larger than {0} bytes; reading was stopped")]
    TooLarge(usize),
    #[error("the FHIR server answered with an OperationOutcome instead of data")]
    OperationOutcome,
    #[error("the FHIR server answered with another kind of resource than a {0}")]
    WrongResource(&'static str),
    #[error("the service is reading too much data at once (max_inflight_body_bytes)")]
    OverBudget,
    #[error("the search has more than {0} pages")]
    TooManyPages(usize),
    #[error("a `next` link points outside fhirServer; it was not followed")]
    ForeignNextLink,
    #[error("fhirServer must use https")]
    InsecureServer,
    #[error("the prefetch template does not form a valid URL")]
    BadUrl,
}

impl FetchError {
    /// Short label for metrics (`rps_cds_fhir_fetch_errors_total{reason}`): a fixed set.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Deadline(_) => "deadline",
            FetchError::Connect => "connect",
            FetchError::Status(_) => "status",
            FetchError::InvalidBody => "invalid",
            FetchError::TooLarge(_) => "too_large",
            FetchError::OperationOutcome => "operation_outcome",
            FetchError::WrongResource(_) => "wrong_resource",
            FetchError::OverBudget => "over_budget",
            FetchError::TooManyPages(_) => "too_many_pages",
            FetchError::ForeignNextLink => "foreign_next_link",
            FetchError::InsecureServer => "insecure_server",
            FetchError::BadUrl => "bad_url",
        }
    }

    /// Every `kind()` value, for documentation and tests.
    pub const KINDS: [&'static str; 13] = [
        "timeout",
        "deadline",
        "connect",
        "status",
        "invalid",
        "too_large",
        "operation_outcome",
        "wrong_resource",
        "over_budget",
        "too_many_pages",
        "foreign_next_link",
        "insecure_server",
        "bad_url",
    ];
}

/// What a prefetch query must be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A search: a searchset Bundle (every page).
    Searchset,
    /// A read: a resource of this type.
    Resource(&'static str),
}

#[derive(Debug, Clone)]
pub struct FhirClient {
    http: reqwest::Client,
    config: FhirClientConfig,
}

impl FhirClient {
    pub fn new(config: &FhirClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.request_timeout_ms))
            // Redirects could carry the bearer token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rps-cds/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            config: config.clone(),
        })
    }

    /// The underlying HTTP client (shared with the JWKS fetcher).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The deadline for all fetching of one hook call.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.config.deadline_ms)
    }

    /// Checks that the server may be used (https unless configured otherwise).
    pub fn check_server(&self, server: &Url) -> Result<(), FetchError> {
        match server.scheme() {
            "https" => Ok(()),
            "http" if self.config.allow_http => Ok(()),
            _ => Err(FetchError::InsecureServer),
        }
    }

    /// Runs a prefetch query (`Condition?patient=123` or `Patient/123`) relative to `server`.
    /// A search returns one searchset Bundle with the entries of every page. At most
    /// `max_response_bytes` are read for the query, all pages together; an answer of the
    /// wrong shape (an OperationOutcome, a non-Bundle for a search, another resource type for
    /// a read) is an error, never empty data. Every byte read is added to `held` (the
    /// process-wide budget), which the caller keeps until the data is no longer needed.
    pub async fn fetch(
        &self,
        server: &Url,
        query: &str,
        expected: Expected,
        token: Option<&AccessToken>,
        held: &mut Reservation,
    ) -> Result<Value, FetchError> {
        self.check_server(server)?;
        let base = server.as_str().trim_end_matches('/');
        let first = Url::parse(&format!("{base}/{query}")).map_err(|_| FetchError::BadUrl)?;
        let mut remaining = self.config.max_response_bytes;
        let mut resource = self.get(&first, token, &mut remaining, held).await?;
        check_shape(&resource, expected)?;
        if expected != Expected::Searchset {
            return Ok(resource);
        }
        let mut pages = 1;
        while let Some(next) = next_link(&resource) {
            let next = Url::parse(&next).map_err(|_| FetchError::BadUrl)?;
            if !is_under(&next, server) {
                return Err(FetchError::ForeignNextLink);
            }
            pages += 1;
            if pages > self.config.max_pages {
                return Err(FetchError::TooManyPages(self.config.max_pages));
            }
            let page = self.get(&next, token, &mut remaining, held).await?;
            check_shape(&page, expected)?;
            merge_page(&mut resource, page);
        }
        // The merged Bundle no longer has pages.
        if let Some(obj) = resource.as_object_mut() {
            obj.remove("link");
        }
        Ok(resource)
    }

    /// One GET, its body streamed and refused past `remaining` bytes (which it decreases) or
    /// when `held` cannot grow by the next chunk.
    async fn get(
        &self,
        url: &Url,
        token: Option<&AccessToken>,
        remaining: &mut usize,
        held: &mut Reservation,
    ) -> Result<Value, FetchError> {
        let mut request = self
            .http
            .get(url.clone())
            .header("Accept", "application/fhir+json");
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let mut response = request.send().await.map_err(|e| self.classify(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let cap = self.config.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|n| n > *remaining as u64)
        {
            return Err(FetchError::TooLarge(cap));
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e))? {
            if chunk.len() > *remaining {
                // Dropping the response closes the connection: nothing more is read.
                return Err(FetchError::TooLarge(cap));
            }
            if !held.add(chunk.len()) {
                return Err(FetchError::OverBudget);
            }
            *remaining -= chunk.len();
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| FetchError::InvalidBody)?;
        if value.get("resourceType").and_then(Value::as_str).is_none() {
            return Err(FetchError::InvalidBody);
        }
        Ok(value)
    }

    fn classify(&self, e: &reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.config.request_timeout_ms)
        } else {
            FetchError::Connect
        }
    }
}

/// Whether `next` may receive the token: the same origin as `server` and a path under the
/// server's path at a segment boundary (`/fhir` admits `/fhir` and `/fhir/…`, not `/fhirevil`).
pub(crate) fn is_under(next: &Url, server: &Url) -> bool {
    if next.origin() != server.origin() || !next.username().is_empty() || next.password().is_some()
    {
        return false;
    }
    let base = server.path().trim_end_matches('/');
    let path = next.path();
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The answer has the shape the query asks for.
fn check_shape(resource: &Value, expected: Expected) -> Result<(), FetchError> {
    let resource_type = resource.get("resourceType").and_then(Value::as_str);
    if resource_type == Some("OperationOutcome") {
        return Err(FetchError::OperationOutcome);
    }
    match expected {
        Expected::Searchset => {
            let searchset = resource_type == Some("Bundle")
                && resource.get("type").and_then(Value::as_str) == Some("searchset");
            if !searchset {
                return Err(FetchError::WrongResource("searchset Bundle"));
            }
        }
        Expected::Resource(rt) => {
            if resource_type != Some(rt) {
                return Err(FetchError::WrongResource(rt));
            }
        }
    }
    Ok(())
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
        .map(str::to_owned)
}

fn merge_page(into: &mut Value, mut page: Value) {
    let entries = page
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    if let Some(link) = page.get_mut("link").map(Value::take) {
        into["link"] = link;
    } else if let Some(obj) = into.as_object_mut() {
        obj.remove("link");
    }
    match into.get_mut("entry").and_then(Value::as_array_mut) {
        Some(existing) => existing.extend(entries),
        None => into["entry"] = json!(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_merge_and_links_advance() {
        let mut first = json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "https://x/fhir?page=2"}], "entry": [{"resource": {"resourceType": "Condition", "id": "a"}}]});
        let second = json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Condition", "id": "b"}}]});
        assert_eq!(next_link(&first).as_deref(), Some("https://x/fhir?page=2"));
        merge_page(&mut first, second);
        assert_eq!(first["entry"].as_array().unwrap().len(), 2);
        assert!(next_link(&first).is_none());
    }

    #[test]
    fn next_links_must_stay_under_the_server_path_at_a_segment_boundary() {
        let server = Url::parse("https://ehr.example/fhir/next_prefix").unwrap();
        let ok = |u: &str| is_under(&Url::parse(u).unwrap(), &server);
        assert!(ok("https://ehr.example/fhir/next_prefix?page=2"));
        assert!(ok("https://ehr.example/fhir/next_prefix/Condition?page=2"));
        assert!(!ok("https://ehr.example/fhir/next_prefixevil/Condition"));
        assert!(!ok("https://ehr.example/fhir/next_prefix/../evil/x"));
        assert!(!ok("https://ehr.example/fhir/next_prefix/%2e%2e/evil/x"));
        assert!(!ok("https://ehr.example:444/fhir/next_prefix/x"));
        assert!(!ok("http://ehr.example/fhir/next_prefix/x"));
        assert!(!ok("https://evil.example/fhir/next_prefix/x"));
        assert!(!ok("https://user@ehr.example/fhir/next_prefix/x"));
        let root = Url::parse("https://ehr.example/").unwrap();
        assert!(is_under(
            &Url::parse("https://ehr.example/x").unwrap(),
            &root
        ));
    }

    #[test]
    fn every_error_has_one_of_the_bounded_metric_reasons() {
        let all = [
            FetchError::Timeout(1),
            FetchError::Deadline(1),
            FetchError::Connect,
            FetchError::Status(500),
            FetchError::InvalidBody,
            FetchError::TooLarge(1),
            FetchError::OperationOutcome,
            FetchError::WrongResource("Patient"),
            FetchError::OverBudget,
            FetchError::TooManyPages(1),
            FetchError::ForeignNextLink,
            FetchError::InsecureServer,
            FetchError::BadUrl,
        ];
        let kinds: Vec<&str> = all.iter().map(FetchError::kind).collect();
        assert_eq!(kinds, FetchError::KINDS);
    }

    #[test]
    fn answers_of_the_wrong_shape_are_errors() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": []});
        assert!(matches!(
            check_shape(&oo, Expected::Searchset),
            Err(FetchError::OperationOutcome)
        ));
        let patient = json!({"resourceType": "Patient", "id": "p"});
        assert!(matches!(
            check_shape(&patient, Expected::Searchset),
            Err(FetchError::WrongResource(_))
        ));
        assert!(check_shape(&patient, Expected::Resource("Patient")).is_ok());
        let bundle = json!({"resourceType": "Bundle", "type": "searchset"});
        assert!(check_shape(&bundle, Expected::Searchset).is_ok());
        assert!(matches!(
            check_shape(&bundle, Expected::Resource("Patient")),
            Err(FetchError::WrongResource("Patient"))
        ));
        let history = json!({"resourceType": "Bundle", "type": "history"});
        assert!(check_shape(&history, Expected::Searchset).is_err());
    }
}
