//! JSON Web Key Sets: parsing into verification keys, and fetching/caching remote sets.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use url::Url;

/// Largest JWKS document accepted from the network; real sets are a few KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A public key usable for JWT signature verification.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub key: DecodingKey,
    pub family: AlgorithmFamily,
    /// EC curve, checked against the token's algorithm (ES256 needs P-256, ES384 P-384).
    pub curve: Option<EllipticCurve>,
    /// The JWK's own `alg`, if it declares one; the token must then use exactly it.
    pub alg: Option<Algorithm>,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(super) fn accepts(&self, alg: Algorithm) -> bool {
        if self.family != alg.family() {
            return false;
        }
        if let Some(own) = self.alg
            && own != alg
        {
            return false;
        }
        match (alg, &self.curve) {
            (Algorithm::ES256, Some(c)) => *c == EllipticCurve::P256,
            (Algorithm::ES384, Some(c)) => *c == EllipticCurve::P384,
            (Algorithm::ES256 | Algorithm::ES384, None) => false,
            _ => true,
        }
    }
}

/// Keys of one JWKS indexed by `kid`.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, VerifyKey>,
}

impl KeySet {
    pub(super) fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.get(kid)
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Merges `other` into `self`; on duplicate `kid` the existing key wins.
    pub(super) fn extend(&mut self, other: KeySet) {
        for (kid, key) in other.keys {
            self.keys.entry(kid).or_insert(key);
        }
    }

    /// Builds a key set from a JWKS JSON document. Unusable entries (no `kid`, symmetric
    /// keys, encryption keys, unsupported types) are skipped with a log line rather than
    /// failing the whole set, so one odd key published by an EHR does not lock it out.
    pub(super) fn from_json(value: &serde_json::Value, source: &str) -> Result<Self, String> {
        let keys = value
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| "not a JWK Set: missing \"keys\" array".to_owned())?;
        let mut set = KeySet::default();
        for (index, raw) in keys.iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(raw.clone()) {
                Ok(jwk) => jwk,
                Err(e) => {
                    tracing::warn!(source, index, error = %crate::telemetry::LogSafe(&e.to_string()), "skipping unparsable JWK");
                    continue;
                }
            };
            let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty()) else {
                tracing::warn!(source, index, "skipping JWK without kid");
                continue;
            };
            match verify_key_from_jwk(&jwk) {
                Ok(key) => match set.keys.entry(kid) {
                    Entry::Vacant(slot) => {
                        slot.insert(key);
                    }
                    Entry::Occupied(slot) => {
                        let kid = slot.key();
                        tracing::warn!(source, kid, "duplicate kid in JWKS; keeping the first");
                    }
                },
                Err(reason) => tracing::warn!(source, kid, reason, "skipping JWK"),
            }
        }
        Ok(set)
    }
}

fn verify_key_from_jwk(jwk: &Jwk) -> Result<VerifyKey, &'static str> {
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err("key is not a signature key (use != sig)");
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(key_algorithm(ka).ok_or("JWK alg is not a supported signature alg")?),
    };
    let (family, curve) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 | EllipticCurve::P384 => {
                (AlgorithmFamily::Ec, Some(p.curve.clone()))
            }
            _ => return Err("unsupported EC curve"),
        },
        // Symmetric keys must never verify CDS client tokens (CDS Hooks forbids HMAC).
        AlgorithmParameters::OctetKey(_) => return Err("symmetric (oct) key refused"),
        _ => return Err("unsupported key type"),
    };
    if let Some(a) = alg
        && (a.family() != family || a.family() == AlgorithmFamily::Hmac)
    {
        return Err("JWK alg does not match its key type");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "invalid key parameters")?;
    Ok(VerifyKey {
        key,
        family,
        curve,
        alg,
    })
}

fn key_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        _ => return None,
    })
}

/// Outcome of looking up a `kid` in a remote JWKS.
pub(crate) enum Lookup {
    Found(VerifyKey),
    UnknownKid,
    /// The set could not be fetched; the string is the reason (for logs).
    Unavailable(String),
}

#[derive(Clone, Copy)]
pub(crate) struct FetchPolicy {
    pub timeout: Duration,
    pub ttl: Duration,
    pub min_refetch: Duration,
}

#[derive(Default)]
struct RemoteState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// A JWKS published at a URL, cached for `ttl` and refetched on an unknown `kid` at most once
/// per `min_refetch`. The async mutex makes concurrent requests share one fetch instead of
/// stampeding the EHR's endpoint.
pub(crate) struct RemoteJwks {
    pub url: Url,
    state: tokio::sync::Mutex<RemoteState>,
}

impl RemoteJwks {
    pub(super) fn new(url: Url) -> Self {
        Self {
            url,
            state: tokio::sync::Mutex::new(RemoteState::default()),
        }
    }

    pub(super) async fn lookup(
        &self,
        kid: &str,
        http: &reqwest::Client,
        policy: FetchPolicy,
    ) -> Lookup {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        let recently_tried = st
            .last_attempt
            .is_some_and(|t| now.duration_since(t) < policy.min_refetch);
        let fresh = st.keys.is_some()
            && st
                .fetched_at
                .is_some_and(|t| now.duration_since(t) < policy.ttl);

        if fresh {
            if let Some(key) = st.keys.as_ref().and_then(|k| k.get(kid)) {
                return Lookup::Found(key.clone());
            }
            if recently_tried {
                // Rate limit: a flood of made-up kids must not turn us into a request
                // amplifier against the EHR's key endpoint.
                return Lookup::UnknownKid;
            }
        } else if recently_tried && let Some(err) = &st.last_error {
            // The last attempt failed moments ago: fail closed without hammering the
            // endpoint again (and without making every caller wait for the timeout).
            return Lookup::Unavailable(format!("recent fetch failed: {err}"));
        }

        st.last_attempt = Some(now);
        match fetch(&self.url, http, policy.timeout).await {
            Ok(set) => {
                tracing::info!(url = %self.url, keys = set.len(), "fetched JWKS");
                let found = set.get(kid).cloned();
                st.keys = Some(Arc::new(set));
                st.fetched_at = Some(Instant::now());
                st.last_error = None;
                match found {
                    Some(key) => Lookup::Found(key),
                    None => Lookup::UnknownKid,
                }
            }
            Err(reason) => {
                st.last_error = Some(reason.clone());
                if !fresh {
                    // Expired keys are not trusted any longer (a removed key may have
                    // been compromised): fail closed.
                    st.keys = None;
                    st.fetched_at = None;
                }
                Lookup::Unavailable(reason)
            }
        }
    }
}

async fn fetch(url: &Url, http: &reqwest::Client, timeout: Duration) -> Result<KeySet, String> {
    let mut resp = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err("JWKS document too large".to_owned());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading body failed: {e}"))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err("JWKS document too large".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("invalid JSON: {e}"))?;
    KeySet::from_json(&value, url.as_str())
}
