//! Configuration of CDS client authentication (`[auth]` section).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::{Deserialize, Deserializer};
use url::Url;

use super::AuthSetupError;

/// When the JWT check is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Required unless the service only listens on a loopback address.
    #[default]
    Auto,
    /// Always required.
    Required,
    /// Never checked (development only).
    Disabled,
}

/// Whether requests must carry a valid CDS client JWT for this bind address.
///
/// `Auto` is secure by default: anything reachable from another host needs a token; only a
/// loopback-only listener (developer machine, sidecar behind a TLS proxy) may skip it.
pub fn auth_required(mode: &AuthMode, bind: &SocketAddr) -> bool {
    match mode {
        AuthMode::Required => true,
        AuthMode::Disabled => false,
        AuthMode::Auto => !bind.ip().is_loopback(),
    }
}

/// The `[auth]` configuration section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// JWS algorithms accepted in the token header. Only asymmetric ones are allowed.
    pub allowed_algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Tokens whose `exp - iat` exceeds this are refused; this also bounds how long a `jti`
    /// must be remembered.
    pub max_token_lifetime_secs: u64,
    /// Maximum number of unexpired `jti` values remembered by the in-memory replay cache.
    pub replay_cache_capacity: usize,
    /// Timeout for one JWKS fetch.
    pub jwks_timeout_ms: u64,
    /// Minimum delay between two fetches of the same JWKS URL (unknown `kid`, failures).
    pub jwks_min_refetch_interval_secs: u64,
    /// How long a fetched JWKS is used before it is fetched again.
    pub jwks_cache_ttl_secs: u64,
    pub trusted_clients: Vec<TrustedClient>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Auto,
            allowed_algorithms: ["ES384", "RS384", "ES256", "RS256", "PS384"]
                .into_iter()
                .map(String::from)
                .collect(),
            leeway_secs: 60,
            max_token_lifetime_secs: 3600,
            replay_cache_capacity: 100_000,
            jwks_timeout_ms: 3000,
            jwks_min_refetch_interval_secs: 60,
            jwks_cache_ttl_secs: 3600,
            trusted_clients: Vec::new(),
        }
    }
}

/// One CDS client (EHR) allowed to call the service, identified by its `iss`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedClient {
    /// Exact `iss` claim value of the client's tokens.
    pub iss: String,
    /// JWKS published by the client (fetched and cached).
    #[serde(default, deserialize_with = "de_opt_url")]
    pub jwks_url: Option<Url>,
    /// JWKS given inline in the configuration.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// JWKS read from a file at start-up.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// `jku` header values honoured for this client; any other `jku` is refused.
    #[serde(default, deserialize_with = "de_url_vec")]
    pub jku_allowlist: Vec<Url>,
    /// When set, the `tenant` claim is required and must be one of these.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
}

// `url` is built without its serde feature here; parse from strings ourselves so a bad URL
// fails at configuration load with a clear message.
fn de_opt_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| Url::parse(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn de_url_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Url>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| Url::parse(s).map_err(serde::de::Error::custom))
        .collect()
}

/// Parses and checks the algorithm allowlist: only asymmetric algorithms that the verifier
/// supports; `none` and HMAC would let anyone holding the public key forge tokens.
pub(crate) fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, AuthSetupError> {
    if names.is_empty() {
        return Err(AuthSetupError::NoAlgorithms);
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if name.eq_ignore_ascii_case("none") {
            return Err(AuthSetupError::ForbiddenAlgorithm(name.clone()));
        }
        let alg: Algorithm = name
            .parse()
            .map_err(|_| AuthSetupError::UnknownAlgorithm(name.clone()))?;
        if alg.family() == AlgorithmFamily::Hmac {
            return Err(AuthSetupError::ForbiddenAlgorithm(name.clone()));
        }
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

/// A key-set URL must use TLS unless it points at this machine (tests, local sidecars):
/// a JWKS fetched over plain HTTP could be swapped in transit.
pub(crate) fn check_key_url(iss: &str, url: &Url) -> Result<(), AuthSetupError> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(AuthSetupError::InsecureKeyUrl {
            iss: iss.to_owned(),
            url: url.to_string(),
        }),
    }
}

impl AuthConfig {
    /// Checks the configuration without loading any key material.
    pub fn validate(&self) -> Result<(), AuthSetupError> {
        parse_algorithms(&self.allowed_algorithms)?;
        if self.max_token_lifetime_secs == 0 {
            return Err(AuthSetupError::InvalidSetting(
                "max_token_lifetime_secs must be greater than 0",
            ));
        }
        if self.replay_cache_capacity == 0 {
            return Err(AuthSetupError::InvalidSetting(
                "replay_cache_capacity must be greater than 0",
            ));
        }
        if self.jwks_timeout_ms == 0 {
            return Err(AuthSetupError::InvalidSetting(
                "jwks_timeout_ms must be greater than 0",
            ));
        }
        let mut seen = HashSet::new();
        for client in &self.trusted_clients {
            if client.iss.trim().is_empty() {
                return Err(AuthSetupError::InvalidSetting(
                    "trusted_clients: iss must not be empty",
                ));
            }
            if !seen.insert(client.iss.as_str()) {
                return Err(AuthSetupError::DuplicateIssuer(client.iss.clone()));
            }
            if client.jwks_url.is_none()
                && client.jwks.is_none()
                && client.jwks_file.is_none()
                && client.jku_allowlist.is_empty()
            {
                return Err(AuthSetupError::NoKeySource(client.iss.clone()));
            }
            for url in client.jwks_url.iter().chain(&client.jku_allowlist) {
                check_key_url(&client.iss, url)?;
            }
            if let Some(tenants) = &client.tenants
                && tenants.is_empty()
            {
                // An empty list would silently lock the client out; make it explicit.
                return Err(AuthSetupError::EmptyTenantList(client.iss.clone()));
            }
        }
        Ok(())
    }
}
