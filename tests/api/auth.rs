//! CDS client JWT authentication (CDS Hooks 2.0 "Trusting CDS Clients").
//!
//! Keys are generated here with aws-lc-rs; remote key sets are served by a real actix-web
//! server on 127.0.0.1 whose request counters prove caching and refetch rate limiting.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{Duration as ChronoDuration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rps_cds::auth::{
    AuthConfig, AuthFailure, AuthMode, AuthSetupError, Authenticator, MemoryReplayCache,
    ReplayError, ReplayGuard, TrustedClient, auth_required,
};
use serde_json::{Value, json};
use url::Url;

const ISS: &str = "https://ehr.example.org/";
const AUD: &str = "https://cds.example.org/cds-services/rps-recurrence";
const OTHER_AUD: &str = "https://cds.example.org/cds-services/rps-metastasis";
const DISCOVERY_AUD: &str = "https://cds.example.org/cds-services";

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// Public JWK (with kid, use, alg).
    jwk: Value,
    /// Raw public key bytes, used as the "secret" in the HMAC confusion attack.
    public_bytes: Vec<u8>,
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ec_key(kid: &str, signing: &'static EcdsaSigningAlgorithm) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("generate EC key");
    let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).expect("parse EC key");
    // Uncompressed SEC1 point: 0x04 || x || y.
    let point = pair.public_key().as_ref().to_vec();
    let half = (point.len() - 1) / 2;
    let (crv, alg, alg_name) = if half == 48 {
        ("P-384", Algorithm::ES384, "ES384")
    } else {
        ("P-256", Algorithm::ES256, "ES256")
    };
    TestKey {
        kid: kid.to_owned(),
        alg,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": crv, "use": "sig", "alg": alg_name, "kid": kid,
            "x": b64url(&point[1..1 + half]), "y": b64url(&point[1 + half..]),
        }),
        public_bytes: point,
    }
}

fn rsa_key(kid: &str, alg: Algorithm, alg_name: &str) -> TestKey {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8 DER");
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let public = pair.public_key();
    TestKey {
        kid: kid.to_owned(),
        alg,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": alg_name, "kid": kid,
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        }),
        public_bytes: public.as_ref().to_vec(),
    }
}

// RSA generation is slow-ish; share keys between tests.
static EC384: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("ec384-1", &ECDSA_P384_SHA384_FIXED_SIGNING));
static EC384_OTHER: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("ec384-2", &ECDSA_P384_SHA384_FIXED_SIGNING));
static EC256: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("ec256-1", &ECDSA_P256_SHA256_FIXED_SIGNING));
static RS384: LazyLock<TestKey> = LazyLock::new(|| rsa_key("rsa-1", Algorithm::RS384, "RS384"));
static PS384: LazyLock<TestKey> = LazyLock::new(|| rsa_key("ps-1", Algorithm::PS384, "PS384"));

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

fn now() -> i64 {
    Utc::now().timestamp()
}

fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISS,
        "sub": "ehr-client-1",
        "aud": AUD,
        "iat": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn header_for(key: &TestKey) -> Header {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    h.typ = Some("JWT".to_owned());
    h
}

fn sign_with(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("sign token")
}

fn sign(key: &TestKey, claims: &Value) -> String {
    sign_with(&header_for(key), claims, &key.encoding)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Builds a token from raw JSON parts and a raw signature (for hand-crafted attacks).
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(signature)
    )
}

// ---------------------------------------------------------------------------------------
// JWKS server
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct JwksServer {
    base: String,
    jwks: Arc<Mutex<Value>>,
    jku_jwks: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    jku_hits: Arc<AtomicUsize>,
    fail_hits: Arc<AtomicUsize>,
}

impl JwksServer {
    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{}", self.base, path)).unwrap()
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn set_keys(&self, keys: &[&TestKey]) {
        *self.jwks.lock().unwrap() = jwks(keys);
    }
}

async fn start_server(keys: &[&TestKey], jku_keys: &[&TestKey]) -> JwksServer {
    let state = JwksServer {
        base: String::new(),
        jwks: Arc::new(Mutex::new(jwks(keys))),
        jku_jwks: Arc::new(Mutex::new(jwks(jku_keys))),
        hits: Arc::new(AtomicUsize::new(0)),
        jku_hits: Arc::new(AtomicUsize::new(0)),
        fail_hits: Arc::new(AtomicUsize::new(0)),
    };
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let s = app_state.clone();
        let s2 = app_state.clone();
        let s3 = app_state.clone();
        App::new()
            .route(
                "/jwks",
                web::get().to(move || {
                    let s = s.clone();
                    async move {
                        s.hits.fetch_add(1, Ordering::SeqCst);
                        let body = s.jwks.lock().unwrap().clone();
                        HttpResponse::Ok().json(body)
                    }
                }),
            )
            .route(
                "/jku-jwks",
                web::get().to(move || {
                    let s = s2.clone();
                    async move {
                        s.jku_hits.fetch_add(1, Ordering::SeqCst);
                        let body = s.jku_jwks.lock().unwrap().clone();
                        HttpResponse::Ok().json(body)
                    }
                }),
            )
            .route(
                "/broken",
                web::get().to(move || {
                    let s = s3.clone();
                    async move {
                        s.fail_hits.fetch_add(1, Ordering::SeqCst);
                        HttpResponse::InternalServerError().body("down")
                    }
                }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
                    HttpResponse::Ok().json(json!({"keys": []}))
                }),
            )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind JWKS server");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    JwksServer {
        base: format!("http://{addr}"),
        ..state
    }
}

/// An address on which nothing listens: bind, read the port, close.
fn dead_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{addr}/jwks")).unwrap()
}

// ---------------------------------------------------------------------------------------
// Authenticator set-up
// ---------------------------------------------------------------------------------------

fn client(jwks_url: Option<Url>) -> TrustedClient {
    TrustedClient {
        iss: ISS.to_owned(),
        jwks_url,
        jwks: None,
        jwks_file: None,
        jku_allowlist: Vec::new(),
        tenants: None,
    }
}

fn config(clients: Vec<TrustedClient>) -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Required,
        trusted_clients: clients,
        ..AuthConfig::default()
    }
}

fn authenticator(cfg: &AuthConfig) -> Authenticator {
    Authenticator::new(
        cfg,
        reqwest::Client::new(),
        ReplayGuard::memory(cfg.replay_cache_capacity),
    )
    .expect("valid auth config")
}

/// Authenticator trusting `ISS` with the given keys inline (no network).
fn inline_auth(keys: &[&TestKey]) -> Authenticator {
    let mut c = client(None);
    c.jwks = Some(jwks(keys));
    authenticator(&config(vec![c]))
}

async fn expect_failure(auth: &Authenticator, authorization: Option<&str>, want: AuthFailure) {
    let got = auth.verify(authorization, AUD).await;
    assert_eq!(got, Err(want), "authorization {authorization:?}");
}

// ---------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn es384_token_from_jwks_url_is_accepted() {
    let server = start_server(&[&EC384], &[]).await;
    let auth = authenticator(&config(vec![client(Some(server.url("/jwks")))]));
    let mut c = claims();
    c["tenant"] = json!("hospital-a");
    let token = sign(&EC384, &c);

    let who = auth
        .verify(Some(&bearer(&token)), AUD)
        .await
        .expect("valid ES384 token");
    assert_eq!(who.iss, ISS);
    assert_eq!(who.sub.as_deref(), Some("ehr-client-1"));
    assert_eq!(who.tenant.as_deref(), Some("hospital-a"));
    assert_eq!(who.kid, "ec384-1");
    assert_eq!(who.jti, c["jti"].as_str().unwrap());
    assert_eq!(server.hits(), 1);
}

#[actix_web::test]
async fn rs384_token_is_accepted() {
    let server = start_server(&[&RS384], &[]).await;
    let auth = authenticator(&config(vec![client(Some(server.url("/jwks")))]));
    let token = sign(&RS384, &claims());
    let who = auth
        .verify(Some(&bearer(&token)), AUD)
        .await
        .expect("valid RS384 token");
    assert_eq!(who.kid, "rsa-1");
    assert_eq!(who.tenant, None);
}

#[actix_web::test]
async fn es256_and_ps384_tokens_are_accepted() {
    let auth = inline_auth(&[&EC256, &PS384]);
    for key in [&*EC256, &*PS384] {
        let token = sign(key, &claims());
        let who = auth.verify(Some(&bearer(&token)), AUD).await;
        assert_eq!(who.map(|c| c.kid), Ok(key.kid.clone()));
    }
}

#[actix_web::test]
async fn aud_as_array_containing_the_endpoint_is_accepted() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["aud"] = json!([OTHER_AUD, AUD]);
    assert!(
        auth.verify(Some(&bearer(&sign(&EC384, &c))), AUD)
            .await
            .is_ok()
    );
}

#[actix_web::test]
async fn inline_and_file_jwks_and_small_clock_skew_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ehr-jwks.json");
    std::fs::write(&path, jwks(&[&RS384]).to_string()).unwrap();
    let mut c = client(None);
    c.jwks = Some(jwks(&[&EC384]));
    c.jwks_file = Some(path);
    let auth = authenticator(&config(vec![c]));

    // Within the 60 s leeway: expired 30 s ago, issued 30 s in the future, nbf soon.
    let mut skewed = claims();
    skewed["exp"] = json!(now() - 30);
    skewed["iat"] = json!(now() + 30);
    skewed["nbf"] = json!(now() + 30);
    assert!(
        auth.verify(Some(&bearer(&sign(&EC384, &skewed))), AUD)
            .await
            .is_ok()
    );
    assert!(
        auth.verify(Some(&bearer(&sign(&RS384, &claims()))), AUD)
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------
// One test per failure
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn missing_token_is_refused() {
    let auth = inline_auth(&[&EC384]);
    expect_failure(&auth, None, AuthFailure::MissingToken).await;
    expect_failure(&auth, Some(""), AuthFailure::MissingToken).await;
    expect_failure(&auth, Some("Bearer "), AuthFailure::MissingToken).await;
    expect_failure(&auth, Some("Basic dXNlcjpwYXNz"), AuthFailure::MissingToken).await;
    assert_eq!(AuthFailure::MissingToken.reason(), "missing_token");
}

#[actix_web::test]
async fn malformed_token_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let valid = sign(&EC384, &claims());
    let (h, rest) = valid.split_once('.').unwrap();
    for bad in [
        "not-a-jwt".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{h}.!!!notbase64!!!.sig"),
        format!("{}.{rest}", b64url(b"not json")),
        format!("{}.{rest}", b64url(b"[1,2,3]")),
        format!("{h}.{}.sig", b64url(b"\"a string\"")),
    ] {
        expect_failure(&auth, Some(&bearer(&bad)), AuthFailure::Malformed).await;
    }
    let huge = format!("{h}.{}.sig", "A".repeat(20_000));
    expect_failure(&auth, Some(&bearer(&huge)), AuthFailure::Malformed).await;
}

#[actix_web::test]
async fn alg_none_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let header = json!({"alg": "none", "typ": "JWT", "kid": EC384.kid});
    let unsigned = raw_token(&header, &claims(), b"");
    expect_failure(
        &auth,
        Some(&bearer(&unsigned)),
        AuthFailure::AlgorithmNotAllowed,
    )
    .await;
    // Same with a junk signature and with the other spellings.
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": EC384.kid});
        let token = raw_token(&header, &claims(), b"junk");
        expect_failure(
            &auth,
            Some(&bearer(&token)),
            AuthFailure::AlgorithmNotAllowed,
        )
        .await;
    }
}

#[actix_web::test]
async fn hs256_signed_with_public_key_as_secret_is_refused() {
    let auth = inline_auth(&[&EC384, &RS384]);
    for key in [&*EC384, &*RS384] {
        for secret in [key.public_bytes.clone(), key.jwk.to_string().into_bytes()] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(key.kid.clone());
            let token = sign_with(&header, &claims(), &EncodingKey::from_secret(&secret));
            expect_failure(
                &auth,
                Some(&bearer(&token)),
                AuthFailure::AlgorithmNotAllowed,
            )
            .await;
        }
    }
}

#[test]
fn symmetric_or_none_algorithms_are_rejected_at_config_load() {
    for bad in ["HS256", "HS384", "HS512", "none"] {
        let mut cfg = config(vec![]);
        cfg.allowed_algorithms = vec!["ES384".to_owned(), bad.to_owned()];
        let err = Authenticator::new(&cfg, reqwest::Client::new(), ReplayGuard::memory(10));
        assert!(
            matches!(err, Err(AuthSetupError::ForbiddenAlgorithm(ref a)) if a == bad),
            "{bad}: {err:?}"
        );
    }
    let mut cfg = config(vec![]);
    cfg.allowed_algorithms = vec!["XS999".to_owned()];
    assert!(matches!(
        cfg.validate(),
        Err(AuthSetupError::UnknownAlgorithm(_))
    ));
    cfg.allowed_algorithms = vec![];
    assert!(matches!(cfg.validate(), Err(AuthSetupError::NoAlgorithms)));
}

#[test]
fn unsafe_trusted_client_settings_are_rejected_at_config_load() {
    // Plain-HTTP key set on a non-loopback host could be swapped in transit.
    let mut c = client(Some(Url::parse("http://ehr.example.org/jwks").unwrap()));
    assert!(matches!(
        config(vec![c.clone()]).validate(),
        Err(AuthSetupError::InsecureKeyUrl { .. })
    ));
    c.jwks_url = Some(Url::parse("https://ehr.example.org/jwks").unwrap());
    assert!(config(vec![c.clone()]).validate().is_ok());
    // No key source at all.
    assert!(matches!(
        config(vec![client(None)]).validate(),
        Err(AuthSetupError::NoKeySource(_))
    ));
    // Same issuer twice.
    assert!(matches!(
        config(vec![c.clone(), c.clone()]).validate(),
        Err(AuthSetupError::DuplicateIssuer(_))
    ));
    // An inline JWKS holding only a symmetric key has no usable key.
    let mut sym = client(None);
    sym.jwks = Some(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s1"}]}));
    let err = Authenticator::new(
        &config(vec![sym]),
        reqwest::Client::new(),
        ReplayGuard::memory(10),
    );
    assert!(
        matches!(err, Err(AuthSetupError::InvalidJwks { .. })),
        "{err:?}"
    );
}

#[actix_web::test]
async fn unknown_kid_is_refused() {
    let server = start_server(&[&EC384], &[]).await;
    let auth = authenticator(&config(vec![client(Some(server.url("/jwks")))]));
    let mut header = header_for(&EC384);
    header.kid = Some("no-such-kid".to_owned());
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::UnknownKid).await;
    // A second unknown kid right away does not trigger another fetch (rate limit).
    header.kid = Some("another-unknown".to_owned());
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::UnknownKid).await;
    assert_eq!(server.hits(), 1);
}

#[actix_web::test]
async fn missing_kid_and_bad_typ_are_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut header = header_for(&EC384);
    header.kid = None;
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::MissingKid).await;

    let mut header = header_for(&EC384);
    header.typ = Some("at+jwt".to_owned());
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::BadType).await;

    // typ is optional for us; absent is fine.
    let mut header = header_for(&EC384);
    header.typ = None;
    let token = sign_with(&header, &claims(), &EC384.encoding);
    assert!(auth.verify(Some(&bearer(&token)), AUD).await.is_ok());
}

#[actix_web::test]
async fn bad_signature_is_refused() {
    let auth = inline_auth(&[&EC384]);
    // Signed by a different key under the trusted kid.
    let token = sign_with(&header_for(&EC384), &claims(), &EC384_OTHER.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::BadSignature).await;

    // Valid token whose payload was changed after signing.
    let token = sign(&EC384, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(forged.to_string().as_bytes()),
        parts[2]
    );
    expect_failure(&auth, Some(&bearer(&tampered)), AuthFailure::BadSignature).await;
}

#[actix_web::test]
async fn key_of_wrong_type_or_curve_is_refused() {
    let mut c = client(None);
    // The P-384 key published without its own alg, so only the curve check can catch it.
    let mut jwk = EC384.jwk.clone();
    jwk.as_object_mut().unwrap().remove("alg");
    c.jwks = Some(json!({"keys": [jwk, RS384.jwk.clone()]}));
    let auth = authenticator(&config(vec![c]));
    // ES256 token pointing at the P-384 key.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(EC384.kid.clone());
    let token = sign_with(&header, &claims(), &EC256.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::KeyMismatch).await;
    // ES384 token pointing at the RSA key.
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(RS384.kid.clone());
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::KeyMismatch).await;
}

#[actix_web::test]
async fn untrusted_issuer_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::UntrustedIssuer,
    )
    .await;
    // A near-miss spelling is not the trusted issuer either.
    c["iss"] = json!("https://ehr.example.org");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::UntrustedIssuer,
    )
    .await;
    c.as_object_mut().unwrap().remove("iss");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::MissingClaim("iss"),
    )
    .await;
}

#[actix_web::test]
async fn wrong_audience_is_refused() {
    let auth = inline_auth(&[&EC384]);
    for aud in [
        json!(OTHER_AUD),     // another service of this same CDS service
        json!(DISCOVERY_AUD), // the discovery endpoint
        json!(format!("{AUD}/")),
        json!("https://other.example.org/cds-services/rps-recurrence"),
        json!([OTHER_AUD, DISCOVERY_AUD]),
        json!([]),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        let token = sign(&EC384, &c);
        let got = auth.verify(Some(&bearer(&token)), AUD).await;
        assert_eq!(got, Err(AuthFailure::WrongAudience), "aud {aud}");
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::MissingClaim("aud"),
    )
    .await;
}

#[actix_web::test]
async fn expired_token_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["iat"] = json!(now() - 600);
    c["exp"] = json!(now() - 120); // beyond the 60 s leeway
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::Expired,
    )
    .await;
}

#[actix_web::test]
async fn not_yet_valid_token_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["nbf"] = json!(now() + 200);
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::NotYetValid,
    )
    .await;
}

#[actix_web::test]
async fn iat_in_the_future_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["iat"] = json!(now() + 300);
    c["exp"] = json!(now() + 600);
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::IssuedInFuture,
    )
    .await;
    c.as_object_mut().unwrap().remove("iat");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::MissingClaim("iat"),
    )
    .await;
}

#[actix_web::test]
async fn overlong_lifetime_and_missing_jti_are_refused() {
    let auth = inline_auth(&[&EC384]);
    let mut c = claims();
    c["exp"] = json!(now() + 3601);
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::LifetimeTooLong,
    )
    .await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("jti");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::MissingClaim("jti"),
    )
    .await;
}

#[actix_web::test]
async fn replayed_jti_is_refused() {
    let auth = inline_auth(&[&EC384]);
    let token = sign(&EC384, &claims());
    assert!(auth.verify(Some(&bearer(&token)), AUD).await.is_ok());
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::Replayed).await;
    // Same jti in a freshly signed token is a replay too.
    let mut c = claims();
    c["jti"] = json!("fixed-jti");
    assert!(
        auth.verify(Some(&bearer(&sign(&EC384, &c))), AUD)
            .await
            .is_ok()
    );
    c["iat"] = json!(now() - 1);
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &c))),
        AuthFailure::Replayed,
    )
    .await;
    // A rejected token does not burn its jti: the same jti with a correct aud still works.
    let mut c = claims();
    c["aud"] = json!(OTHER_AUD);
    let wrong = sign(&EC384, &c);
    expect_failure(&auth, Some(&bearer(&wrong)), AuthFailure::WrongAudience).await;
    c["aud"] = json!(AUD);
    assert!(
        auth.verify(Some(&bearer(&sign(&EC384, &c))), AUD)
            .await
            .is_ok()
    );
}

#[actix_web::test]
async fn full_replay_cache_fails_closed() {
    let mut c = client(None);
    c.jwks = Some(jwks(&[&EC384]));
    let mut cfg = config(vec![c]);
    cfg.replay_cache_capacity = 2;
    let auth = authenticator(&cfg);
    for _ in 0..2 {
        assert!(
            auth.verify(Some(&bearer(&sign(&EC384, &claims()))), AUD)
                .await
                .is_ok()
        );
    }
    let failure = auth
        .verify(Some(&bearer(&sign(&EC384, &claims()))), AUD)
        .await;
    assert_eq!(failure, Err(AuthFailure::ReplayStoreUnavailable));
    assert!(failure.unwrap_err().is_unavailable());
}

#[test]
fn memory_replay_cache_evicts_expired_entries_before_refusing() {
    let cache = MemoryReplayCache::new(2);
    let t0 = Utc::now();
    let soon = t0 + ChronoDuration::seconds(10);
    let later = t0 + ChronoDuration::seconds(100);
    assert!(cache.first_use("iss", "a", soon, t0).unwrap());
    assert!(cache.first_use("iss", "b", later, t0).unwrap());
    assert!(
        !cache.first_use("iss", "a", soon, t0).unwrap(),
        "replay detected"
    );
    assert!(
        cache.first_use("other-iss", "a", later, t0).is_err(),
        "full: fail closed"
    );
    assert!(matches!(
        cache.first_use("iss", "c", later, t0),
        Err(ReplayError::CapacityExhausted { capacity: 2 })
    ));
    // After "a" expires, it is evicted to make room, and may be used again.
    let t1 = t0 + ChronoDuration::seconds(11);
    assert!(cache.first_use("iss", "c", later, t1).unwrap());
    assert_eq!(cache.len(), 2);
    assert!(
        !cache.first_use("iss", "b", later, t1).unwrap(),
        "b still remembered"
    );
}

#[actix_web::test]
async fn tenant_allowlist_is_enforced() {
    let mut c = client(None);
    c.jwks = Some(jwks(&[&EC384]));
    c.tenants = Some(vec!["hospital-a".to_owned(), "hospital-b".to_owned()]);
    let auth = authenticator(&config(vec![c]));

    let mut ok = claims();
    ok["tenant"] = json!("hospital-b");
    let who = auth
        .verify(Some(&bearer(&sign(&EC384, &ok))), AUD)
        .await
        .unwrap();
    assert_eq!(who.tenant.as_deref(), Some("hospital-b"));

    let mut other = claims();
    other["tenant"] = json!("hospital-z");
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &other))),
        AuthFailure::TenantNotAllowed,
    )
    .await;
    // With an allowlist, a token naming no tenant is refused.
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &claims()))),
        AuthFailure::TenantNotAllowed,
    )
    .await;
}

#[actix_web::test]
async fn jku_is_honoured_only_when_allowlisted() {
    let server = start_server(&[&EC384], &[&RS384]).await;
    let mut c = client(Some(server.url("/jwks")));
    c.jku_allowlist = vec![server.url("/jku-jwks")];
    let auth = authenticator(&config(vec![c]));

    // Attacker-hosted key set: refused before anything is fetched from it.
    let mut header = header_for(&RS384);
    header.jku = Some("https://evil.example.com/jwks".to_owned());
    let token = sign_with(&header, &claims(), &RS384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::JkuNotAllowed).await;
    // A different path on the trusted host is not on the list either.
    header.jku = Some(server.url("/jwks-other").to_string());
    let token = sign_with(&header, &claims(), &RS384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::JkuNotAllowed).await;
    assert_eq!(server.jku_hits.load(Ordering::SeqCst), 0);

    // Allowlisted jku: keys come from that URL.
    header.jku = Some(server.url("/jku-jwks").to_string());
    let token = sign_with(&header, &claims(), &RS384.encoding);
    let who = auth
        .verify(Some(&bearer(&token)), AUD)
        .await
        .expect("allowlisted jku");
    assert_eq!(who.kid, RS384.kid);
    assert_eq!(server.jku_hits.load(Ordering::SeqCst), 1);
    assert_eq!(server.hits(), 0);
}

#[actix_web::test]
async fn jwks_url_down_fails_closed() {
    let auth = authenticator(&config(vec![client(Some(dead_url()))]));
    let token = sign(&EC384, &claims());
    let got = auth.verify(Some(&bearer(&token)), AUD).await;
    assert_eq!(got, Err(AuthFailure::JwksUnavailable));
    assert!(got.unwrap_err().is_unavailable());
}

#[actix_web::test]
async fn jwks_endpoint_error_fails_closed_and_is_not_hammered() {
    let server = start_server(&[], &[]).await;
    let auth = authenticator(&config(vec![client(Some(server.url("/broken")))]));
    for _ in 0..3 {
        let token = sign(&EC384, &claims());
        expect_failure(&auth, Some(&bearer(&token)), AuthFailure::JwksUnavailable).await;
    }
    // One attempt; the following requests fail closed without a new fetch.
    assert_eq!(server.fail_hits.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn slow_jwks_endpoint_times_out_and_fails_closed() {
    let server = start_server(&[], &[]).await;
    let mut cfg = config(vec![client(Some(server.url("/slow")))]);
    cfg.jwks_timeout_ms = 300;
    let auth = authenticator(&cfg);
    let started = std::time::Instant::now();
    let token = sign(&EC384, &claims());
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::JwksUnavailable).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn jwks_is_cached_and_refetch_on_unknown_kid_is_rate_limited() {
    let server = start_server(&[&EC384], &[]).await;
    let mut cfg = config(vec![client(Some(server.url("/jwks")))]);
    cfg.jwks_min_refetch_interval_secs = 1;
    let auth = authenticator(&cfg);

    for _ in 0..3 {
        let token = sign(&EC384, &claims());
        assert!(auth.verify(Some(&bearer(&token)), AUD).await.is_ok());
    }
    assert_eq!(server.hits(), 1, "cached between requests");

    // Key rotation: the EHR publishes a new key. Within the refetch interval the new kid is
    // unknown and the endpoint is not queried again.
    server.set_keys(&[&EC384, &RS384]);
    let rotated = sign(&RS384, &claims());
    expect_failure(&auth, Some(&bearer(&rotated)), AuthFailure::UnknownKid).await;
    assert_eq!(server.hits(), 1);

    // After the interval, the unknown kid triggers one refetch and the new key works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = sign(&RS384, &claims());
    assert!(auth.verify(Some(&bearer(&rotated)), AUD).await.is_ok());
    assert_eq!(server.hits(), 2);

    // An unknown kid right after that refetch is refused without another fetch.
    let mut header = header_for(&EC384);
    header.kid = Some("made-up".to_owned());
    let token = sign_with(&header, &claims(), &EC384.encoding);
    expect_failure(&auth, Some(&bearer(&token)), AuthFailure::UnknownKid).await;
    assert_eq!(server.hits(), 2);
}

#[actix_web::test]
async fn jwks_is_refetched_after_ttl() {
    let server = start_server(&[&EC384], &[]).await;
    let mut cfg = config(vec![client(Some(server.url("/jwks")))]);
    cfg.jwks_cache_ttl_secs = 1;
    cfg.jwks_min_refetch_interval_secs = 0;
    let auth = authenticator(&cfg);
    assert!(
        auth.verify(Some(&bearer(&sign(&EC384, &claims()))), AUD)
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Key removed upstream: after the TTL the old key is no longer trusted.
    server.set_keys(&[&RS384]);
    expect_failure(
        &auth,
        Some(&bearer(&sign(&EC384, &claims()))),
        AuthFailure::UnknownKid,
    )
    .await;
    assert_eq!(server.hits(), 2);
}

// ---------------------------------------------------------------------------------------
// Logging: reason and issuer, never the token
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn failures_are_logged_with_reason_and_issuer_but_never_the_token() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let auth = authenticator(&config(vec![client(Some(dead_url()))]));
    let token = sign(&EC384, &claims());
    let got = auth.verify(Some(&bearer(&token)), AUD).await;
    assert_eq!(got, Err(AuthFailure::JwksUnavailable));

    let inline = inline_auth(&[&EC384]);
    let forged = sign_with(&header_for(&EC384), &claims(), &EC384_OTHER.encoding);
    let _ = inline.verify(Some(&bearer(&forged)), AUD).await;

    // An attacker-chosen issuer cannot forge a log line.
    let mut evil = claims();
    evil["iss"] = json!("https://evil.example.com/\nINFO forged line");
    let _ = inline
        .verify(Some(&bearer(&sign(&EC384, &evil))), AUD)
        .await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("untrusted_issuer"), "{text}");
    assert!(!text.contains("\nINFO forged line"), "{text}");
    assert!(text.contains("jwks_unavailable"), "{text}");
    assert!(text.contains("bad_signature"), "{text}");
    assert!(text.contains(ISS), "{text}");
    assert!(text.contains("ec384-1"), "{text}");
    assert!(text.contains("fail closed"), "{text}");
    for t in [&token, &forged] {
        for part in t.split('.') {
            assert!(!text.contains(part), "log leaks a token part");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mode and configuration
// ---------------------------------------------------------------------------------------

#[test]
fn auth_required_depends_on_mode_and_bind_address() {
    let loopback4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let loopback6: SocketAddr = "[::1]:8080".parse().unwrap();
    let any4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let any6: SocketAddr = "[::]:8080".parse().unwrap();
    let lan: SocketAddr = "192.0.2.10:8080".parse().unwrap();
    assert!(!auth_required(&AuthMode::Auto, &loopback4));
    assert!(!auth_required(&AuthMode::Auto, &loopback6));
    assert!(auth_required(&AuthMode::Auto, &any4));
    assert!(auth_required(&AuthMode::Auto, &any6));
    assert!(auth_required(&AuthMode::Auto, &lan));
    assert!(auth_required(&AuthMode::Required, &loopback4));
    assert!(!auth_required(&AuthMode::Disabled, &any4));
    assert_eq!(AuthConfig::default().mode, AuthMode::Auto);
}

#[test]
fn config_loads_from_toml_with_defaults() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let toml = r#"
        [auth]
        mode = "required"
        leeway_secs = 30

        [[auth.trusted_clients]]
        iss = "https://ehr.example.org/"
        jwks_url = "https://ehr.example.org/.well-known/jwks.json"
        jku_allowlist = ["https://ehr.example.org/jwks/alt"]
        tenants = ["hospital-a"]

        [[auth.trusted_clients]]
        iss = "https://other-ehr.example.net"
        jwks = { keys = [ { kty = "EC", crv = "P-384", kid = "k1", x = "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk", y = "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI" } ] }
    "#;
    let cfg: AuthConfig = Figment::from(Toml::string(toml))
        .extract_inner("auth")
        .expect("auth section parses");
    assert_eq!(cfg.mode, AuthMode::Required);
    assert_eq!(cfg.leeway_secs, 30);
    assert_eq!(cfg.max_token_lifetime_secs, 3600);
    assert_eq!(cfg.replay_cache_capacity, 100_000);
    assert_eq!(
        cfg.allowed_algorithms,
        ["ES384", "RS384", "ES256", "RS256", "PS384"]
    );
    assert_eq!(cfg.trusted_clients.len(), 2);
    assert_eq!(
        cfg.trusted_clients[0].jwks_url.as_ref().map(Url::as_str),
        Some("https://ehr.example.org/.well-known/jwks.json")
    );
    assert_eq!(
        cfg.trusted_clients[0].tenants.as_deref(),
        Some(&["hospital-a".to_owned()][..])
    );
    Authenticator::new(&cfg, reqwest::Client::new(), ReplayGuard::memory(10))
        .expect("inline P-384 key from the CDS Hooks example loads");

    // Typos in a security section are errors, not silently ignored.
    let typo = "[auth]\nmode = \"required\"\nleway_secs = 5\n";
    assert!(
        Figment::from(Toml::string(typo))
            .extract_inner::<AuthConfig>("auth")
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL replay store
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn postgres_replay_guard_detects_replays() {
    let Ok(url) = std::env::var("RPS_CDS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but RPS_CDS_TEST_POSTGRES_URL is not: the PostgreSQL replay test must run in CI"
        );
        eprintln!(
            "skipping postgres_replay_guard_detects_replays: RPS_CDS_TEST_POSTGRES_URL unset"
        );
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect to RPS_CDS_TEST_POSTGRES_URL");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS jwt_replay (iss TEXT NOT NULL, jti TEXT NOT NULL, \
         expires_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (iss, jti))",
    )
    .execute(&pool)
    .await
    .expect("create jwt_replay");

    let guard = ReplayGuard::Postgres(pool.clone());
    let jti = uuid::Uuid::new_v4().to_string();
    let exp = Utc::now() + ChronoDuration::seconds(300);
    assert!(guard.first_use(ISS, &jti, exp).await.unwrap());
    assert!(!guard.first_use(ISS, &jti, exp).await.unwrap(), "replay");
    assert!(
        guard.first_use("https://other/", &jti, exp).await.unwrap(),
        "per issuer"
    );

    // An expired row (not purged yet) does not count as a replay.
    let old = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO jwt_replay (iss, jti, expires_at) VALUES ($1, $2, $3)")
        .bind(ISS)
        .bind(&old)
        .bind(Utc::now() - ChronoDuration::seconds(10))
        .execute(&pool)
        .await
        .unwrap();
    assert!(guard.first_use(ISS, &old, exp).await.unwrap());
    assert!(!guard.first_use(ISS, &old, exp).await.unwrap());

    // End to end through the authenticator, shared by two "instances".
    let mut c = client(None);
    c.jwks = Some(jwks(&[&EC384]));
    let cfg = config(vec![c]);
    let a1 = Authenticator::new(
        &cfg,
        reqwest::Client::new(),
        ReplayGuard::Postgres(pool.clone()),
    )
    .unwrap();
    let a2 = Authenticator::new(
        &cfg,
        reqwest::Client::new(),
        ReplayGuard::Postgres(pool.clone()),
    )
    .unwrap();
    let token = sign(&EC384, &claims());
    assert!(a1.verify(Some(&bearer(&token)), AUD).await.is_ok());
    expect_failure(&a2, Some(&bearer(&token)), AuthFailure::Replayed).await;

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM jwt_replay WHERE jti = $1")
        .bind(&jti)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 2);
}

#[test]
fn authenticator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_send_sync::<Authenticator>();
    let auth = inline_auth(&[&EC384]);
    // The verification future can be spawned on a multi-threaded runtime.
    let fut = auth.verify(None, AUD);
    assert_send(&fut);
}
