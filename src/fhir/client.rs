//! The FHIR client that completes prefetch: for each prefetch key the EHR did not satisfy, a
//! search on `fhirServer` with the EHR's bearer token, all keys in parallel, each request with
//! a timeout, following the searchset Bundle's `next` links (same origin only, so the token
//! never leaves the EHR's server) up to a page limit.

use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use crate::cds_hooks::request::AccessToken;
use crate::config::FhirClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the FHIR server did not answer within {0} ms")]
    Timeout(u64),
    #[error("could not connect to the FHIR server")]
    Connect,
    #[error("the FHIR server answered HTTP {0}")]
    Status(u16),
    #[error("the FHIR server's answer is not a FHIR resource in JSON")]
    InvalidBody,
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
    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Connect => "connect",
            FetchError::Status(_) => "status",
            FetchError::InvalidBody => "invalid",
            FetchError::TooManyPages(_) => "too_many_pages",
            FetchError::ForeignNextLink => "foreign_next_link",
            FetchError::InsecureServer => "insecure_server",
            FetchError::BadUrl => "bad_url",
        }
    }
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

    /// Checks that the server may be used (https unless configured otherwise).
    pub fn check_server(&self, server: &Url) -> Result<(), FetchError> {
        match server.scheme() {
            "https" => Ok(()),
            "http" if self.config.allow_http => Ok(()),
            _ => Err(FetchError::InsecureServer),
        }
    }

    /// Runs a prefetch query (`Condition?patient=123` or `Patient/123`) relative to `server`.
    /// A search returns one searchset Bundle with the entries of every page.
    pub async fn fetch(
        &self,
        server: &Url,
        query: &str,
        token: Option<&AccessToken>,
    ) -> Result<Value, FetchError> {
        self.check_server(server)?;
        let base = server.as_str().trim_end_matches('/');
        let first = Url::parse(&format!("{base}/{query}")).map_err(|_| FetchError::BadUrl)?;
        let mut resource = self.get(&first, token).await?;
        if resource.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Ok(resource);
        }
        let mut pages = 1;
        while let Some(next) = next_link(&resource) {
            let next = Url::parse(&next).map_err(|_| FetchError::BadUrl)?;
            if next.origin() != server.origin()
                || !next.path().starts_with(server.path().trim_end_matches('/'))
            {
                return Err(FetchError::ForeignNextLink);
            }
            pages += 1;
            if pages > self.config.max_pages {
                return Err(FetchError::TooManyPages(self.config.max_pages));
            }
            let page = self.get(&next, token).await?;
            merge_page(&mut resource, page);
        }
        // The merged Bundle no longer has pages.
        if let Some(obj) = resource.as_object_mut() {
            obj.remove("link");
        }
        Ok(resource)
    }

    async fn get(&self, url: &Url, token: Option<&AccessToken>) -> Result<Value, FetchError> {
        let mut request = self
            .http
            .get(url.clone())
            .header("Accept", "application/fhir+json");
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| self.classify(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let body = response.bytes().await.map_err(|e| self.classify(&e))?;
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
}
