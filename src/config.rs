//! Configuration: built-in defaults, then a TOML file (`--config FILE` or `RPS_CDS_CONFIG`),
//! then environment variables `RPS_CDS_…` with `__` between nested keys
//! (`RPS_CDS_LOG__FORMAT=json`, `RPS_CDS_FHIR__REQUEST_TIMEOUT_MS=5000`). The defaults need
//! nothing else on the machine: loopback, embedded knowledge, SQLite under `./data`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::audit::StorageConfig;
use crate::auth::AuthConfig;
use crate::fhir::FhirClientConfig;
use crate::telemetry::LogConfig;

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_FILE_ENV: &str = "RPS_CDS_CONFIG";
/// Prefix of configuration environment variables.
pub(crate) const ENV_PREFIX: &str = "RPS_CDS_";
/// The top-level configuration keys, as environment variables may name them: the fields
/// [`Config`] deserialises, so a new key needs no second list.
pub(crate) fn top_level_keys() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<Config>()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub bind: SocketAddr,
    /// The service's external base URL as EHRs call it (behind any proxy). The JWT `aud`
    /// claim must equal this plus the endpoint path; each card's "Rule and evidence" link is
    /// this plus `/rules#RULE-ID`.
    pub public_base_url: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Request bodies larger than this are refused with 413 (a declared `Content-Length`
    /// over it before any byte is read).
    pub max_body_bytes: usize,
    /// Bytes of request bodies being read, parsed and evaluated at once, over all requests;
    /// a request that would exceed it gets 503 with `Retry-After`.
    pub max_inflight_body_bytes: usize,
    /// A request body not received completely within this many seconds gets 408.
    pub client_body_timeout_secs: u64,
    /// Draft orders per order-select / order-sign request; more get 400.
    pub max_draft_orders: usize,
    /// JSON nested deeper than this is refused with 400 (guards against stack and CPU abuse).
    pub max_json_depth: usize,
    /// Grace period for in-flight calls and the audit flush on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Origins allowed by CORS (`*` = any). Credentials are never allowed.
    pub cors_allowed_origins: Vec<String>,
    pub log: LogConfig,
    pub fhir: FhirClientConfig,
    pub prefetch: PrefetchConfig,
    pub knowledge: KnowledgeConfig,
    /// Overrides of the catalogue's named parameters (`knowledge/parameters.json`).
    pub parameters: BTreeMap<String, f64>,
    #[serde(skip_serializing)]
    pub auth: AuthConfig,
    pub storage: StorageConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            workers: 0,
            max_body_bytes: 16 * 1024 * 1024,
            max_inflight_body_bytes: 256 * 1024 * 1024,
            client_body_timeout_secs: 10,
            max_draft_orders: 200,
            max_json_depth: 64,
            shutdown_timeout_secs: 30,
            cors_allowed_origins: vec!["*".to_owned()],
            log: LogConfig::default(),
            fhir: FhirClientConfig::default(),
            prefetch: PrefetchConfig::default(),
            knowledge: KnowledgeConfig::default(),
            parameters: BTreeMap::new(),
            auth: AuthConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

/// What a prefetch key that cannot be had does to the call (`[prefetch] on_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnPrefetchFailure {
    /// Answer without it: its facts are unknown and a DATA-04 card says which data could not
    /// be read. The `patient` and `conditions` keys are still required (412).
    #[default]
    Degrade,
    /// Refuse the call with 412 naming every key that failed.
    Refuse,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PrefetchConfig {
    pub on_failure: OnPrefetchFailure,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeConfig {
    /// A knowledge-base directory to use instead of the one embedded in the binary.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults < file (explicit path, else `RPS_CDS_CONFIG`) < environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only variables naming a configuration key: other RPS_CDS_* variables (test harness
        // settings such as RPS_CDS_TEST_POSTGRES_URL) must not be mistaken for configuration.
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    top_level_keys().iter().any(|k| k.eq_ignore_ascii_case(top))
                })
                .split("__"),
        );
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        url::Url::parse(&self.public_base_url)
            .map_err(|e| ConfigError::Invalid(format!("public_base_url: {e}")))?;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".to_owned(),
            ));
        }
        if !(8..=512).contains(&self.max_json_depth) {
            return Err(ConfigError::Invalid(
                "max_json_depth must be within 8..=512".to_owned(),
            ));
        }
        if self.fhir.request_timeout_ms == 0
            || self.fhir.connect_timeout_ms == 0
            || self.fhir.deadline_ms == 0
        {
            return Err(ConfigError::Invalid(
                "fhir timeouts and deadline must be positive".to_owned(),
            ));
        }
        if self.fhir.max_response_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "fhir.max_response_bytes must be at least 1024".to_owned(),
            ));
        }
        if self.max_inflight_body_bytes < self.max_body_bytes {
            return Err(ConfigError::Invalid(
                "max_inflight_body_bytes must be at least max_body_bytes".to_owned(),
            ));
        }
        if self.client_body_timeout_secs == 0 || self.max_draft_orders == 0 {
            return Err(ConfigError::Invalid(
                "client_body_timeout_secs and max_draft_orders must be positive".to_owned(),
            ));
        }
        self.auth
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("auth: {e}")))?;
        Ok(())
    }

    /// The external URL of an endpoint path ("/cds-services/rps-patient-view"): the JWT
    /// audience the EHR must use.
    pub fn external_url(&self, path: &str) -> String {
        format!("{}{}", self.public_base_url.trim_end_matches('/'), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let c = Config::default();
        assert!(c.bind.ip().is_loopback());
        c.validate().unwrap();
        assert_eq!(
            c.external_url("/cds-services"),
            "http://127.0.0.1:8080/cds-services"
        );
    }

    #[test]
    fn top_level_keys_are_the_fields_of_the_configuration_type() {
        let keys = top_level_keys();
        // `auth` is never serialised (secrets), yet environment variables may set it.
        for k in [
            "bind",
            "public_base_url",
            "log",
            "fhir",
            "prefetch",
            "auth",
            "storage",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert!(!keys.contains(&"test_postgres_url"));
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rps-cds.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\n[log]\nformat = \"json\"\n[parameters]\nfavorable_dfi_months = 18\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.bind.port(), 9999);
        assert_eq!(c.log.format, crate::telemetry::LogFormat::Json);
        assert_eq!(c.parameters.get("favorable_dfi_months"), Some(&18.0));
    }

    #[test]
    fn edge_limits_have_their_defaults_and_are_checked() {
        let c = Config::default();
        assert_eq!(c.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(c.max_inflight_body_bytes, 256 * 1024 * 1024);
        assert_eq!(c.client_body_timeout_secs, 10);
        assert_eq!(c.max_draft_orders, 200);
        assert_eq!(c.fhir.max_response_bytes, 16 * 1024 * 1024);
        assert_eq!(c.fhir.deadline_ms, 4_000);
        assert_eq!(c.prefetch.on_failure, OnPrefetchFailure::Degrade);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rps-cds.toml");
        std::fs::write(
            &path,
            "max_draft_orders = 10\n[fhir]\ndeadline_ms = 2500\n[prefetch]\non_failure = \"refuse\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.max_draft_orders, 10);
        assert_eq!(c.fhir.deadline_ms, 2_500);
        assert_eq!(c.prefetch.on_failure, OnPrefetchFailure::Refuse);

        std::fs::write(&path, "[prefetch]\non_failure = \"ignore\"\n").unwrap();
        assert!(Config::load(Some(&path)).is_err());
        let budget_below_body = Config {
            max_inflight_body_bytes: 1024 * 1024,
            ..Config::default()
        };
        assert!(budget_below_body.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rps-cds.toml");
        std::fs::write(&path, "bnd = \"127.0.0.1:9999\"\n").unwrap();
        assert!(Config::load(Some(&path)).is_err());
        assert!(matches!(
            Config::load(Some(&dir.path().join("nope.toml"))),
            Err(ConfigError::MissingFile(_))
        ));
    }
}
