//! CDS client authentication: verification of the signed JWT that CDS Hooks 2.0 requires
//! every CDS client (EHR) to send as `Authorization: Bearer <jwt>`.
//!
//! Checks, in order: bearer token shape; header `alg` on the asymmetric allowlist, `kid`
//! present, `typ` (if any) `JWT`; `iss` is a trusted client (read unverified, only to pick its
//! keys); `jku` (if any) on that client's allowlist; key found by `kid`; signature, `exp`,
//! `nbf`, `aud` (exactly the endpoint URL), `iss`; `iat` not in the future; lifetime bound;
//! `jti` present; `tenant` allowlist; finally `jti` not replayed. The replay check comes last so
//! that invalid tokens never consume replay-cache capacity.

mod config;
mod jwks;
mod replay;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use url::Url;

pub use config::{AuthConfig, AuthMode, TrustedClient, auth_required};
pub use replay::{MemoryReplayCache, ReplayError, ReplayGuard};

use jwks::{FetchPolicy, KeySet, Lookup, RemoteJwks, VerifyKey};

/// Tokens longer than this are refused before any parsing (header-size abuse).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Bounds memory per replay-cache entry.
const MAX_JTI_BYTES: usize = 256;

/// Error while building the [`Authenticator`] from configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("auth.allowed_algorithms is empty")]
    NoAlgorithms,
    #[error(
        "auth.allowed_algorithms: {0:?} is forbidden (CDS Hooks requires asymmetric signatures)"
    )]
    ForbiddenAlgorithm(String),
    #[error("auth.allowed_algorithms: unknown or unsupported algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("auth: {0}")]
    InvalidSetting(&'static str),
    #[error("auth.trusted_clients: issuer {0:?} is listed twice")]
    DuplicateIssuer(String),
    #[error(
        "auth.trusted_clients: issuer {0:?} has no key source (jwks_url, jwks, jwks_file or jku_allowlist)"
    )]
    NoKeySource(String),
    #[error("auth.trusted_clients: issuer {0:?} has an empty tenants list")]
    EmptyTenantList(String),
    #[error(
        "auth.trusted_clients: issuer {iss:?}: key URL {url} must use https (http only for loopback)"
    )]
    InsecureKeyUrl { iss: String, url: String },
    #[error("auth.trusted_clients: issuer {iss:?}: cannot read jwks_file {path}: {source}")]
    JwksFile {
        iss: String,
        path: String,
        source: std::io::Error,
    },
    #[error("auth.trusted_clients: issuer {iss:?}: invalid JWKS: {reason}")]
    InvalidJwks { iss: String, reason: String },
}

/// Why a request was not authenticated. Every variant means "refuse the request".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no bearer token")]
    MissingToken,
    #[error("malformed token")]
    Malformed,
    #[error("signing algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("token header has no kid")]
    MissingKid,
    #[error("token header typ is not JWT")]
    BadType,
    #[error("no key with this kid for the issuer")]
    UnknownKid,
    #[error("key does not match the token algorithm")]
    KeyMismatch,
    #[error("signature verification failed")]
    BadSignature,
    #[error("issuer is not a trusted CDS client")]
    UntrustedIssuer,
    #[error("jku is not on the issuer's allowlist")]
    JkuNotAllowed,
    #[error("token audience is not this endpoint")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token iat is in the future")]
    IssuedInFuture,
    #[error("token lifetime exceeds the configured maximum")]
    LifetimeTooLong,
    #[error("required claim {0} is missing")]
    MissingClaim(&'static str),
    #[error("tenant is not allowed for this issuer")]
    TenantNotAllowed,
    #[error("token was already used (jti replay)")]
    Replayed,
    #[error("replay protection store unavailable")]
    ReplayStoreUnavailable,
    #[error("issuer key set unavailable")]
    JwksUnavailable,
}

impl AuthFailure {
    /// Short snake_case label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::Malformed => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::MissingKid => "missing_kid",
            Self::BadType => "bad_type",
            Self::UnknownKid => "unknown_kid",
            Self::KeyMismatch => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::JkuNotAllowed => "jku_not_allowed",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingClaim(_) => "missing_claim",
            Self::TenantNotAllowed => "tenant_not_allowed",
            Self::Replayed => "replayed",
            Self::ReplayStoreUnavailable => "replay_store_unavailable",
            Self::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// True when the failure is on our side or the key provider's (key set or replay store
    /// unreachable) rather than a bad token; the HTTP layer may answer 503 instead of 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::JwksUnavailable | Self::ReplayStoreUnavailable)
    }
}

/// The authenticated CDS client of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdsClient {
    pub iss: String,
    pub sub: Option<String>,
    pub tenant: Option<String>,
    pub jti: String,
    pub kid: String,
}

/// Verifies CDS client JWTs. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuers", &self.inner.issuers.len())
            .field("algorithms", &self.inner.algorithms)
            .finish_non_exhaustive()
    }
}

struct Inner {
    algorithms: Vec<Algorithm>,
    leeway: u64,
    max_lifetime: u64,
    policy: FetchPolicy,
    issuers: HashMap<String, Issuer>,
    http: reqwest::Client,
    replay: ReplayGuard,
}

struct Issuer {
    static_keys: KeySet,
    jwks_url: Option<Arc<RemoteJwks>>,
    /// Allowlisted `jku` values, compared after URL normalisation.
    jku: HashMap<Url, Arc<RemoteJwks>>,
    tenants: Option<HashSet<String>>,
}

impl Authenticator {
    /// Validates the configuration and loads inline / file key sets. Remote key sets are
    /// fetched lazily on first use.
    pub fn new(
        cfg: &AuthConfig,
        http: reqwest::Client,
        replay: ReplayGuard,
    ) -> Result<Self, AuthSetupError> {
        cfg.validate()?;
        let algorithms = config::parse_algorithms(&cfg.allowed_algorithms)?;
        let mut issuers = HashMap::new();
        for client in &cfg.trusted_clients {
            issuers.insert(client.iss.clone(), build_issuer(client)?);
        }
        if issuers.is_empty() {
            tracing::warn!(
                "auth: no trusted_clients configured; every authenticated request will be refused"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                algorithms,
                leeway: cfg.leeway_secs,
                max_lifetime: cfg.max_token_lifetime_secs,
                policy: FetchPolicy {
                    timeout: Duration::from_millis(cfg.jwks_timeout_ms),
                    ttl: Duration::from_secs(cfg.jwks_cache_ttl_secs),
                    min_refetch: Duration::from_secs(cfg.jwks_min_refetch_interval_secs),
                },
                issuers,
                http,
                replay,
            }),
        })
    }

    /// Verifies the `Authorization` header value for a call to `audience`, the configured
    /// external URL of the endpoint being invoked. Failures are logged (reason, issuer, kid;
    /// never the token).
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        audience: &str,
    ) -> Result<CdsClient, AuthFailure> {
        let mut ctx = TokenLogFields::default();
        let result = self.verify_inner(authorization, audience, &mut ctx).await;
        match &result {
            Ok(client) => tracing::debug!(
                iss = client.iss.as_str(),
                kid = client.kid.as_str(),
                tenant = client.tenant.as_deref().unwrap_or(""),
                "CDS client authenticated"
            ),
            Err(failure) => tracing::warn!(
                reason = failure.reason(),
                iss = ctx.iss.as_deref().unwrap_or("-"),
                kid = ctx.kid.as_deref().unwrap_or("-"),
                audience,
                "CDS client authentication failed"
            ),
        }
        result
    }

    async fn verify_inner(
        &self,
        authorization: Option<&str>,
        audience: &str,
        ctx: &mut TokenLogFields,
    ) -> Result<CdsClient, AuthFailure> {
        let inner = &*self.inner;
        let token = bearer_token(authorization)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::Malformed);
        }
        let (header, payload) = split_unverified(token)?;

        // Header checks come first: an `alg` we do not accept is refused before any key is
        // looked up, which closes the `none` and HMAC-with-public-key attacks.
        let alg_name = header
            .get("alg")
            .and_then(|a| a.as_str())
            .ok_or(AuthFailure::Malformed)?;
        let alg = alg_name
            .parse::<Algorithm>()
            .ok()
            .filter(|a| inner.algorithms.contains(a))
            .ok_or(AuthFailure::AlgorithmNotAllowed)?;
        if let Some(typ) = header.get("typ") {
            // RFC 7515 says typ values compare case-insensitively.
            if !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT")) {
                return Err(AuthFailure::BadType);
            }
        }
        if header.get("crit").is_some() {
            // We implement no critical header extensions, so RFC 7515 requires rejection.
            return Err(AuthFailure::Malformed);
        }
        let kid = match header.get("kid") {
            None => return Err(AuthFailure::MissingKid),
            Some(k) => k
                .as_str()
                .filter(|k| !k.is_empty())
                .ok_or(AuthFailure::MissingKid)?,
        };
        ctx.kid = Some(truncate(kid));

        // The issuer is read before verification only to select its keys; `decode` below
        // checks it again against the verified payload.
        let iss = payload
            .get("iss")
            .and_then(|i| i.as_str())
            .ok_or(AuthFailure::MissingClaim("iss"))?;
        ctx.iss = Some(truncate(iss));
        let issuer = inner.issuers.get(iss).ok_or(AuthFailure::UntrustedIssuer)?;

        let remote = match header.get("jku") {
            Some(jku) => {
                let url = jku
                    .as_str()
                    .and_then(|s| Url::parse(s).ok())
                    .ok_or(AuthFailure::JkuNotAllowed)?;
                Some(issuer.jku.get(&url).ok_or(AuthFailure::JkuNotAllowed)?)
            }
            None => issuer.jwks_url.as_ref(),
        };
        let key = self.find_key(issuer, remote, iss, kid).await?;
        if !key.accepts(alg) {
            return Err(AuthFailure::KeyMismatch);
        }

        let claims = self.check_signature_and_claims(token, &key, alg, iss, audience)?;

        let now = Utc::now().timestamp();
        let leeway = i64::try_from(inner.leeway).unwrap_or(i64::MAX);
        let iat = claims.iat.ok_or(AuthFailure::MissingClaim("iat"))?;
        if iat > now.saturating_add(leeway) {
            return Err(AuthFailure::IssuedInFuture);
        }
        let exp = claims.exp.ok_or(AuthFailure::MissingClaim("exp"))?;
        let max_lifetime = i64::try_from(inner.max_lifetime).unwrap_or(i64::MAX);
        if exp.saturating_sub(iat) > max_lifetime {
            return Err(AuthFailure::LifetimeTooLong);
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty())
            .ok_or(AuthFailure::MissingClaim("jti"))?;
        if jti.len() > MAX_JTI_BYTES {
            return Err(AuthFailure::Malformed);
        }
        if let Some(allowed) = &issuer.tenants {
            // With an allowlist, a token that names no tenant is refused too: the client
            // was configured as multi-tenant, so the tenant is part of its identity.
            match &claims.tenant {
                Some(t) if allowed.contains(t) => {}
                _ => return Err(AuthFailure::TenantNotAllowed),
            }
        }

        // Remember the jti for as long as the token could still be accepted.
        let expires_at = DateTime::<Utc>::from_timestamp(exp.saturating_add(leeway), 0)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        match inner.replay.first_use(iss, &jti, expires_at).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthFailure::Replayed),
            Err(e) => {
                tracing::warn!(iss = ctx.iss.as_deref().unwrap_or("-"), error = %e, "replay check failed");
                return Err(AuthFailure::ReplayStoreUnavailable);
            }
        }

        Ok(CdsClient {
            iss: iss.to_owned(),
            sub: claims.sub,
            tenant: claims.tenant,
            jti,
            kid: kid.to_owned(),
        })
    }

    async fn find_key(
        &self,
        issuer: &Issuer,
        remote: Option<&Arc<RemoteJwks>>,
        iss: &str,
        kid: &str,
    ) -> Result<VerifyKey, AuthFailure> {
        if let Some(key) = issuer.static_keys.get(kid) {
            return Ok(key.clone());
        }
        let Some(remote) = remote else {
            return Err(AuthFailure::UnknownKid);
        };
        match remote
            .lookup(kid, &self.inner.http, self.inner.policy)
            .await
        {
            Lookup::Found(key) => Ok(key),
            Lookup::UnknownKid => Err(AuthFailure::UnknownKid),
            Lookup::Unavailable(reason) => {
                tracing::warn!(
                    iss = truncate(iss).as_str(),
                    url = %remote.url,
                    reason,
                    "JWKS unavailable; refusing the request (fail closed)"
                );
                Err(AuthFailure::JwksUnavailable)
            }
        }
    }

    fn check_signature_and_claims(
        &self,
        token: &str,
        key: &VerifyKey,
        alg: Algorithm,
        iss: &str,
        audience: &str,
    ) -> Result<Claims, AuthFailure> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.inner.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.into_kind() {
                ErrorKind::InvalidSignature => AuthFailure::BadSignature,
                ErrorKind::ExpiredSignature => AuthFailure::Expired,
                ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
                ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
                ErrorKind::InvalidIssuer => AuthFailure::UntrustedIssuer,
                ErrorKind::MissingRequiredClaim(c) => AuthFailure::MissingClaim(match c.as_str() {
                    "exp" => "exp",
                    "iss" => "iss",
                    "aud" => "aud",
                    _ => "unknown",
                }),
                ErrorKind::InvalidAlgorithm => AuthFailure::KeyMismatch,
                ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
                    AuthFailure::KeyMismatch
                }
                _ => AuthFailure::Malformed,
            }),
        }
    }
}

/// The verified payload fields we use. NumericDate may legally be fractional; fractions are
/// dropped (the leeway dwarfs them).
#[derive(Deserialize)]
struct Claims {
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
}

fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.trunc() as i64)),
        Some(_) => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

/// The issuer and key id of the JWT being verified, as far as read: what a failure logs.
#[derive(Default)]
struct TokenLogFields {
    iss: Option<String>,
    kid: Option<String>,
}

/// An untrusted claim as it may be logged: escaped and truncated.
fn truncate(s: &str) -> String {
    crate::telemetry::log_safe(s)
}

fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthFailure> {
    let value = authorization
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AuthFailure::MissingToken)?;
    let (scheme, rest) = value.split_once(' ').ok_or(AuthFailure::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(AuthFailure::MissingToken);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(AuthFailure::MissingToken);
    }
    Ok(token)
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Decodes header and payload JSON objects without verifying anything.
fn split_unverified(token: &str) -> Result<(JsonObject, JsonObject), AuthFailure> {
    let mut parts = token.split('.');
    // An empty signature is let through here so that an unsecured (`alg: none`) token is
    // reported as a refused algorithm; signature verification rejects it anyway.
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure::Malformed);
    };
    if h.is_empty() || p.is_empty() {
        return Err(AuthFailure::Malformed);
    }
    let decode = |part: &str| -> Result<JsonObject, AuthFailure> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| AuthFailure::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| AuthFailure::Malformed)
    };
    Ok((decode(h)?, decode(p)?))
}

fn build_issuer(client: &TrustedClient) -> Result<Issuer, AuthSetupError> {
    let mut static_keys = KeySet::default();
    if let Some(value) = &client.jwks {
        let set = KeySet::from_json(value, &client.iss).map_err(|reason| {
            AuthSetupError::InvalidJwks {
                iss: client.iss.clone(),
                reason,
            }
        })?;
        static_keys.extend(set);
    }
    if let Some(path) = &client.jwks_file {
        let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::JwksFile {
            iss: client.iss.clone(),
            path: path.display().to_string(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| AuthSetupError::InvalidJwks {
                iss: client.iss.clone(),
                reason: format!("{}: {e}", path.display()),
            })?;
        let set = KeySet::from_json(&value, &client.iss).map_err(|reason| {
            AuthSetupError::InvalidJwks {
                iss: client.iss.clone(),
                reason,
            }
        })?;
        static_keys.extend(set);
    }
    if (client.jwks.is_some() || client.jwks_file.is_some()) && static_keys.len() == 0 {
        return Err(AuthSetupError::InvalidJwks {
            iss: client.iss.clone(),
            reason: "no usable signature key (each key needs a kid and an RSA or EC P-256/P-384 public key)".to_owned(),
        });
    }
    // One cache per distinct URL, so a jku equal to jwks_url shares its cache.
    let mut remotes: HashMap<Url, Arc<RemoteJwks>> = HashMap::new();
    let mut remote_for = |url: &Url| {
        remotes
            .entry(url.clone())
            .or_insert_with(|| Arc::new(RemoteJwks::new(url.clone())))
            .clone()
    };
    let jwks_url = client.jwks_url.as_ref().map(&mut remote_for);
    let jku = client
        .jku_allowlist
        .iter()
        .map(|u| (u.clone(), remote_for(u)))
        .collect();
    Ok(Issuer {
        static_keys,
        jwks_url,
        jku,
        tenants: client.tenants.as_ref().map(|t| t.iter().cloned().collect()),
    })
}
