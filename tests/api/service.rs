//! The CDS Hooks service end to end: the real server on a random port, spoken to over HTTP.
//! Every response is validated against the CDS Hooks schemas in `schemas/cds-hooks/`.

use std::sync::atomic::Ordering;

use crate::support::http::{
    FhirServer, Schemas, Service, example, fhir_authorization, fhir_fixtures, rule_ids,
};
use rps_cds::config::Config;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_lists_the_three_services_with_the_prefetch_contract() {
    let svc = Service::default().await;
    let schemas = Schemas::load();
    let r = svc
        .client
        .get(svc.url("/cds-services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(schemas.discovery.is_valid(&body), "{body:#}");
    let services = body["services"].as_array().unwrap();
    let ids: Vec<&str> = services.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["rps-patient-view", "rps-order-select", "rps-order-sign"]
    );
    let hooks: Vec<&str> = services
        .iter()
        .map(|s| s["hook"].as_str().unwrap())
        .collect();
    assert_eq!(hooks, ["patient-view", "order-select", "order-sign"]);
    for s in services {
        let keys: Vec<&str> = s["prefetch"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "patient",
            "conditions",
            "observations",
            "procedures",
            "medicationAdministrations",
            "medicationStatements",
            "medicationRequests",
            "diagnosticReports",
        ] {
            assert!(keys.contains(&key), "{} lacks prefetch key {key}", s["id"]);
        }
        assert_eq!(s["prefetch"]["patient"], "Patient/{{context.patientId}}");
        assert!(
            s["usageRequirements"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
    }
    svc.stop().await;
}

#[tokio::test]
async fn every_example_request_is_answered_with_schema_valid_cards() {
    let svc = Service::default().await;
    let schemas = Schemas::load();
    for (file, service) in [
        ("patient-view-local-recurrence.json", "rps-patient-view"),
        ("patient-view-metastatic.json", "rps-patient-view"),
        ("order-select.json", "rps-order-select"),
        ("order-sign.json", "rps-order-sign"),
    ] {
        let (status, body) = svc
            .post_json(&format!("/cds-services/{service}"), &example(file))
            .await;
        assert_eq!(status, 200, "{file}: {body:#}");
        schemas.assert_response(&body);
        assert_eq!(
            body["extension"]["https://fhir.rps-cds.org/knowledge-version"],
            "2026.12.1"
        );
        assert!(!rule_ids(&body).is_empty(), "{file} produced no cards");
    }
    svc.stop().await;
}

#[tokio::test]
async fn client_mistakes_get_4xx_with_an_operation_outcome_naming_the_path() {
    let config = Config {
        max_body_bytes: 64 * 1024,
        ..Config::default()
    };
    let svc = Service::start(config).await;
    let schemas = Schemas::load();
    let pv = "/cds-services/rps-patient-view";

    // 400: malformed JSON
    let r = svc
        .client
        .post(svc.url(pv))
        .header("content-type", "application/json")
        .body("{\"hook\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    schemas.assert_outcome(&body);
    assert_eq!(body["issue"][0]["expression"][0], "$");

    // 400: a required context field is missing, reported at its path
    let mut req = example("patient-view-local-recurrence.json");
    req["context"].as_object_mut().unwrap().remove("patientId");
    let (status, body) = svc.post_json(pv, &req).await;
    assert_eq!(status, 400);
    schemas.assert_outcome(&body);
    let issues = body["issue"].as_array().unwrap();
    assert!(
        issues.iter().any(|i| i["expression"][0] == "context"
            && i["diagnostics"].as_str().unwrap().contains("patientId")),
        "{body:#}"
    );

    // 400: hook does not match the service
    let (status, body) = svc
        .post_json(
            "/cds-services/rps-order-sign",
            &example("patient-view-local-recurrence.json"),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["issue"][0]["expression"][0], "hook");

    // 400: order-select selection that is not among the draft orders
    let mut req = example("order-select.json");
    req["context"]["selections"] = json!(["MedicationRequest/not-there"]);
    let (status, body) = svc.post_json("/cds-services/rps-order-select", &req).await;
    assert_eq!(status, 400);
    assert_eq!(body["issue"][0]["expression"][0], "context.selections[0]");

    // 400: JSON nested too deep (refused before any work)
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let (status, body) = svc
        .post_json(pv, &json!({"hook": "patient-view", "x": deep}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["issue"][0]["code"], "too-costly");

    // 404: unknown service, unknown path
    let (status, body) = svc
        .post_json(
            "/cds-services/nope",
            &example("patient-view-local-recurrence.json"),
        )
        .await;
    assert_eq!(status, 404);
    schemas.assert_outcome(&body);
    let r = svc
        .client
        .get(svc.url("/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // 405: wrong method, with Allow
    let r = svc.client.get(svc.url(pv)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let r = svc
        .client
        .delete(svc.url("/cds-services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    // 413: body over the limit
    let big = json!({"hook": "patient-view", "pad": "x".repeat(70 * 1024)});
    let (status, body) = svc.post_json(pv, &big).await;
    assert_eq!(status, 413);
    schemas.assert_outcome(&body);

    // 415: not JSON
    let r = svc
        .client
        .post(svc.url(pv))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = svc
        .client
        .post(svc.url(pv))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "no content type");

    // 412: prefetch incomplete and no fhirServer to complete it
    let mut req = example("patient-view-local-recurrence.json");
    req["prefetch"]
        .as_object_mut()
        .unwrap()
        .remove("observations");
    let (status, body) = svc.post_json(pv, &req).await;
    assert_eq!(status, 412);
    schemas.assert_outcome(&body);
    assert_eq!(body["issue"][0]["expression"][0], "prefetch.observations");
    svc.stop().await;
}

#[tokio::test]
async fn null_prefetch_means_no_data_and_is_not_fetched() {
    let svc = Service::default().await;
    let mut req = example("patient-view-local-recurrence.json");
    for key in [
        "medicationAdministrations",
        "medicationStatements",
        "medicationRequests",
    ] {
        req["prefetch"][key] = Value::Null;
    }
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    svc.stop().await;
}

#[tokio::test]
async fn absent_prefetch_is_fetched_from_fhir_server_with_the_bearer_token_following_next_links() {
    let full = example("patient-view-local-recurrence.json");
    let (patient, searches) = fhir_fixtures(&full);
    let pages: usize = searches.values().map(|p| p.len()).sum();
    assert!(
        searches.values().any(|p| p.len() > 1),
        "the fixture must paginate"
    );
    let fhir = FhirServer::start(patient, searches, vec![]).await;
    let svc = Service::default().await;

    // The answer with complete prefetch is the reference.
    let (status, reference) = svc.post_json("/cds-services/rps-patient-view", &full).await;
    assert_eq!(status, 200);

    let mut req = full.clone();
    req.as_object_mut().unwrap().remove("prefetch");
    req["fhirServer"] = json!(fhir.base);
    req["fhirAuthorization"] = fhir_authorization();
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    assert_eq!(
        rule_ids(&body),
        rule_ids(&reference),
        "fetched data must give the same cards as prefetch"
    );
    assert_eq!(
        fhir.log.bad_tokens.load(Ordering::SeqCst),
        0,
        "every fetch carried the token"
    );
    // 1 Patient read + every page of every search (empty searches: one page each).
    assert!(fhir.log.requests.load(Ordering::SeqCst) > pages);
    assert!(
        fhir.log
            .paths
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains("_page=1")),
        "next links were followed"
    );

    // A prefetch value that is an OperationOutcome counts as not satisfied: fetched.
    let before = fhir.log.requests.load(Ordering::SeqCst);
    let mut req2 = full.clone();
    req2["prefetch"]["conditions"] = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]});
    req2["fhirServer"] = json!(fhir.base);
    req2["fhirAuthorization"] = req["fhirAuthorization"].clone();
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req2).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(fhir.log.requests.load(Ordering::SeqCst) > before);
    assert_eq!(rule_ids(&body), rule_ids(&reference));
    fhir.stop().await;
    svc.stop().await;
}

/// `prefetch.on_failure = refuse`; the default, `degrade`, is tested in tests/api/edges.rs.
#[tokio::test]
async fn fhir_server_failures_give_412_naming_the_key() {
    let full = example("patient-view-local-recurrence.json");
    let (patient, searches) = fhir_fixtures(&full);
    let fhir = FhirServer::start(patient, searches, vec!["Observation".to_owned()]).await;
    let mut config = Config::default();
    config.prefetch.on_failure = rps_cds::config::OnPrefetchFailure::Refuse;
    let svc = Service::start(config).await;
    let mut req = full.clone();
    req.as_object_mut().unwrap().remove("prefetch");
    req["fhirServer"] = json!(fhir.base);
    req["fhirAuthorization"] = fhir_authorization();
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    assert_eq!(status, 412, "{body:#}");
    let issues = body["issue"].as_array().unwrap();
    assert_eq!(
        issues.len(),
        1,
        "only the failing key is reported: {body:#}"
    );
    assert_eq!(issues[0]["expression"][0], "prefetch.observations");
    assert!(
        issues[0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );

    // A wrong token: the FHIR server refuses, the service says so (and never echoes the token).
    req["fhirAuthorization"]["access_token"] = json!("wrong-token");
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    assert_eq!(status, 412);
    assert!(body.to_string().contains("HTTP 401"));
    assert!(!body.to_string().contains("wrong-token"));

    // https is required unless configured otherwise (the harness allows http for its own
    // loopback FHIR server, so check the client's policy directly).
    let client =
        rps_cds::fhir::client::FhirClient::new(&rps_cds::fhir::FhirClientConfig::default())
            .unwrap();
    assert!(
        client
            .check_server(&url::Url::parse("http://ehr.example/fhir").unwrap())
            .is_err()
    );
    assert!(
        client
            .check_server(&url::Url::parse("https://ehr.example/fhir").unwrap())
            .is_ok()
    );
    fhir.stop().await;
    svc.stop().await;
}

#[tokio::test]
async fn feedback_is_validated() {
    let svc = Service::default().await;
    let (status, _) = svc
        .post_json(
            "/cds-services/rps-patient-view/feedback",
            &example("feedback.json"),
        )
        .await;
    assert!(
        status == 200 || status == 404,
        "valid feedback is accepted or names an unknown card, got {status}"
    );
    let (status, body) = svc
        .post_json(
            "/cds-services/rps-patient-view/feedback",
            &json!({"feedback": [{"card": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "outcome": "maybe", "outcomeTimestamp": "2026-11-23T10:00:00Z"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["issue"][0]["expression"][0], "feedback[0].outcome");
    let (status, _) = svc
        .post_json("/cds-services/nope/feedback", &example("feedback.json"))
        .await;
    assert_eq!(status, 404);
    svc.stop().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_without_credentials_and_health_endpoints_work() {
    let svc = Service::default().await;
    let r = svc
        .client
        .request(
            reqwest::Method::OPTIONS,
            svc.url("/cds-services/rps-patient-view"),
        )
        .header("origin", "https://ehr.example.org")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight status {}", r.status());
    assert!(r.headers().contains_key("access-control-allow-origin"));
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
    let allowed = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("POST"));

    for path in ["/healthz", "/readyz"] {
        let r = svc.client.get(svc.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn an_invalid_resource_is_set_aside_reported_in_data_02_and_the_rest_still_decides() {
    let svc = Service::default().await;
    let schemas = Schemas::load();
    let req = example("patient-view-local-recurrence.json");
    let (_, reference) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    let reference_rules = rule_ids(&reference);
    assert!(
        reference_rules.iter().any(|r| r.starts_with("LR-")),
        "{reference_rules:?}"
    );

    // Break the ECOG observation's status code: it is set aside, the rest still decides.
    let mut broken = req.clone();
    let entries = broken["prefetch"]["observations"]["entry"]
        .as_array_mut()
        .unwrap();
    let ecog = entries
        .iter_mut()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "89247-1")
        .expect("the example has an ECOG observation");
    ecog["resource"]["status"] = json!("finalised");
    let ecog_id = ecog["resource"]["id"].as_str().unwrap().to_owned();
    let (status, body) = svc
        .post_json("/cds-services/rps-patient-view", &broken)
        .await;
    assert_eq!(status, 200, "{body:#}");
    schemas.assert_response(&body);
    let rules = rule_ids(&body);
    assert!(rules.contains(&"DATA-02".to_owned()), "{rules:?}");
    let data02 = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "DATA-02")
        .unwrap();
    assert_eq!(data02["indicator"], "warning");
    assert!(
        data02["extension"]["https://fhir.rps-cds.org/records"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(format!("Observation/{ecog_id}"))),
        "DATA-02 names the resource in its records: {data02:#}"
    );
    // Other cards are still produced; the ECOG-dependent verdict is no longer a candidacy.
    assert!(rules.contains(&"MDT-01".to_owned()), "{rules:?}");
    assert!(
        !rules.contains(&"LR-04".to_owned()),
        "ECOG unknown must not leave LR-04 standing: {rules:?}"
    );
    assert!(
        rules.contains(&"LR-00".to_owned()),
        "ECOG unknown → candidacy cannot be assessed: {rules:?}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn order_hooks_check_the_selected_or_signed_orders() {
    let svc = Service::default().await;
    let (status, body) = svc
        .post_json(
            "/cds-services/rps-order-select",
            &example("order-select.json"),
        )
        .await;
    assert_eq!(status, 200);
    let card = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "ORD-10")
        .expect("pazopanib in liposarcoma");
    let delete = &card["suggestions"][0]["actions"][0];
    assert_eq!(delete["type"], "delete");
    assert_eq!(delete["resourceId"], "MedicationRequest/draft-pazopanib");
    assert!(
        card["overrideReasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    let (status, body) = svc
        .post_json("/cds-services/rps-order-sign", &example("order-sign.json"))
        .await;
    assert_eq!(status, 200);
    let rules = rule_ids(&body);
    assert!(
        rules.contains(&"ORD-03".to_owned()) && rules.contains(&"ORD-15".to_owned()),
        "{rules:?}"
    );
    // Critical before warning before info.
    let indicators: Vec<&str> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["indicator"].as_str().unwrap())
        .collect();
    let rank = |i: &str| {
        ["critical", "warning", "info"]
            .iter()
            .position(|x| *x == i)
            .unwrap()
    };
    assert!(
        indicators.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "{indicators:?}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn feedback_is_stored_against_issued_cards_and_counted_per_rule() {
    let svc = Service::default().await;
    // Its first card is a warning, which lists the override reasons (info cards list none).
    let (_, body) = svc
        .post_json(
            "/cds-services/rps-patient-view",
            &example("patient-view-metastatic.json"),
        )
        .await;
    let card = &body["cards"][0];
    let uuid = card["uuid"].as_str().unwrap();
    let rule = card["source"]["topic"]["code"].as_str().unwrap().to_owned();
    // Every card's uuid names the call (`audit::card_uuid`): one invocation id in the first 14
    // bytes, the card's position from 1 in the last two.
    let uuids: Vec<uuid::Uuid> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(uuids.len() > 1, "{body:#}");
    for (position, card_uuid) in uuids.iter().enumerate() {
        assert_eq!(card_uuid.as_bytes()[..14], uuids[0].as_bytes()[..14]);
        assert_eq!(
            u16::from_be_bytes([card_uuid.as_bytes()[14], card_uuid.as_bytes()[15]]) as usize,
            position + 1
        );
    }
    let mut past_the_cards = *uuids[0].as_bytes();
    past_the_cards[14..].copy_from_slice(&(uuids.len() as u16 + 1).to_be_bytes());
    let feedback = json!({"feedback": [{"card": uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
        "overrideReason": {"reason": {"system": "https://fhir.rps-cds.org/CodeSystem/rps-override-reason", "code": "patient-preference", "display": "Patient preference"}}}]});
    let (status, stored) = svc
        .post_json("/cds-services/rps-patient-view/feedback", &feedback)
        .await;
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored["stored"], 1);
    let (status, again) = svc
        .post_json("/cds-services/rps-patient-view/feedback", &feedback)
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicates"], 1, "a repeated report is kept once");
    // A card this service never issued.
    let mut unknown = feedback.clone();
    unknown["feedback"][0]["card"] = json!("3fa85f64-5717-4562-b3fc-2c963f66afa6");
    let (status, body) = svc
        .post_json("/cds-services/rps-patient-view/feedback", &unknown)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["issue"][0]["expression"][0], "feedback.card");
    // A uuid that names the call but no card of it.
    unknown["feedback"][0]["card"] = json!(uuid::Uuid::from_bytes(past_the_cards).to_string());
    let (status, body) = svc
        .post_json("/cds-services/rps-patient-view/feedback", &unknown)
        .await;
    assert_eq!(status, 404, "{body:#}");

    let stats: Value = svc
        .client
        .get(svc.url("/admin/rules/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule.as_str())
        .unwrap_or_else(|| panic!("{stats:#}"));
    assert_eq!(row["overridden"], 1, "{row:#}");
    svc.stop().await;
}

#[tokio::test]
async fn metrics_and_openapi_describe_the_running_service() {
    let svc = Service::default().await;
    let _ = svc
        .post_json(
            "/cds-services/rps-patient-view",
            &example("patient-view-local-recurrence.json"),
        )
        .await;
    let metrics = svc
        .client
        .get(svc.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "rps_cds_requests_total",
        "rps_cds_stage_duration_seconds",
        "rps_cds_cards_total",
        "rps_cds_audit_write_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let doc: Value = svc
        .client
        .get(svc.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // The documented routes are exactly the routes the server registers, and each answers.
    let documented = rps_cds::http::openapi::documented_routes();
    let mut served: Vec<(String, String)> = rps_cds::http::routes::ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    for (method, path) in &served {
        let url = svc.url(&path.replace("{id}", "rps-patient-view"));
        let r = svc
            .client
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert!(
            r.status() != 404 && r.status() != 405,
            "{method} {path} answered {}",
            r.status()
        );
    }
    svc.stop().await;
}

mod authenticated {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rps_cds::auth::{AuthMode, TrustedClient};

    const ISS: &str = "https://ehr.example.org";
    const BASE: &str = "https://cds.example.org";

    fn key() -> (jsonwebtoken::EncodingKey, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-384", "use": "sig", "alg": "ES384", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]), "y": URL_SAFE_NO_PAD.encode(&point[49..])});
        (jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    fn token(key: &jsonwebtoken::EncodingKey, aud: &str) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        header.kid = Some("k1".to_owned());
        header.typ = Some("JWT".to_owned());
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": ISS, "aud": aud, "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string()});
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[tokio::test]
    async fn jwt_is_required_when_configured_and_failures_are_a_bare_401() {
        let (signing, jwk) = key();
        let mut config = Config {
            public_base_url: BASE.to_owned(),
            ..Config::default()
        };
        config.auth.mode = AuthMode::Required;
        config.auth.trusted_clients = vec![TrustedClient {
            iss: ISS.to_owned(),
            jwks_url: None,
            jwks: Some(json!({"keys": [jwk]})),
            jwks_file: None,
            jku_allowlist: vec![],
            tenants: None,
        }];
        let svc = Service::start(config).await;
        let pv = "/cds-services/rps-patient-view";
        let body = example("patient-view-local-recurrence.json");

        // No token, and a token for another endpoint: bare 401.
        for auth in [
            None,
            Some(token(
                &signing,
                &format!("{BASE}/cds-services/rps-order-sign"),
            )),
        ] {
            let mut r = svc.client.post(svc.url(pv)).json(&body);
            if let Some(t) = &auth {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 401);
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer",
                "RFC 6750: a 401 names the scheme"
            );
            assert!(
                r.bytes().await.unwrap().is_empty(),
                "a 401 carries no detail"
            );
        }
        // The right audience is accepted; discovery needs its own audience.
        let r = svc
            .client
            .post(svc.url(pv))
            .bearer_auth(token(&signing, &format!("{BASE}{pv}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = svc
            .client
            .get(svc.url("/cds-services"))
            .bearer_auth(token(&signing, &format!("{BASE}/cds-services")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = svc
            .client
            .get(svc.url("/cds-services"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        // A replayed token is refused.
        let t = token(&signing, &format!("{BASE}/cds-services"));
        let first = svc
            .client
            .get(svc.url("/cds-services"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        let second = svc
            .client
            .get(svc.url("/cds-services"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (first.status().as_u16(), second.status().as_u16()),
            (200, 401)
        );
        // CORS preflight is answered without credentials.
        let r = svc
            .client
            .request(reqwest::Method::OPTIONS, svc.url(pv))
            .header("origin", "https://ehr.example.org")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        svc.stop().await;
    }

    #[test]
    fn authentication_is_required_off_loopback_by_default() {
        let mode = Config::default().auth.mode;
        assert!(rps_cds::auth::auth_required(
            &mode,
            &"0.0.0.0:8080".parse().unwrap()
        ));
        assert!(!rps_cds::auth::auth_required(
            &mode,
            &"127.0.0.1:8080".parse().unwrap()
        ));
    }
}

/// A real mCODE sarcoma chart (`shared/realdata/onco/`, see its README) over HTTP.
fn onco_request(name: &str) -> Value {
    let file = format!(
        "{}/../shared/realdata/onco/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// What a clinician reads of each card (uuids and suggested resources' ids differ per call).
fn card_texts(response: &Value) -> Vec<[String; 4]> {
    response["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            [
                c["source"]["topic"]["code"].to_string(),
                c["indicator"].to_string(),
                c["summary"].to_string(),
                c["detail"].to_string(),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_no_break_space_in_the_diagnosis_display_changes_no_card() {
    // HL7's reference validator accepts U+00A0 in a FHIR string; the official JSON schema read
    // with Unicode `\s` did not, and the sarcoma diagnosis was set aside with every RPS card.
    let service = Service::default().await;
    let schemas = Schemas::load();
    let path = "/cds-services/rps-patient-view";
    let plain = onco_request("onco-ctm02-lms-icd10cm-icdo3");
    let nbsp = onco_request("onco-ctm02-lms-icd10cm-icdo3-nbsp-display");
    assert!(serde_json::to_string(&nbsp).unwrap().contains('\u{a0}'));
    let (s1, r1) = service.post_json(path, &plain).await;
    let (s2, r2) = service.post_json(path, &nbsp).await;
    assert_eq!((s1, s2), (200, 200));
    schemas.assert_response(&r2);
    let ids = rule_ids(&r2);
    assert!(ids.iter().any(|id| id == "MDT-01"), "{ids:?}");
    assert!(!ids.iter().any(|id| id == "DATA-02"), "{ids:?}");
    assert_eq!(card_texts(&r1), card_texts(&r2));
    service.stop().await;
}

// ---- Patient identity (catalogue v2 §4.1, DATA-03) -------------------------------------

/// An ECOG record of someone else, as a mixed-up chart would carry it.
fn foreign_observation() -> Value {
    json!({"resourceType": "Observation", "id": "foreign-ecog", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
        "subject": {"reference": "Patient/someone-else-77"},
        "effectiveDateTime": "2026-11-20", "valueInteger": 4})
}

fn card(response: &Value, rule: &str) -> Value {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no {rule} card in {:?}", rule_ids(response)))
}

#[tokio::test]
async fn another_patients_record_in_a_prefetch_key_distrusts_the_whole_key() {
    let svc = Service::default().await;
    let path = "/cds-services/rps-patient-view";
    let clean = example("patient-view-local-recurrence.json");
    let (status, reference) = svc.post_json(path, &clean).await;
    assert_eq!(status, 200);
    assert!(!rule_ids(&reference).contains(&"DATA-03".to_owned()));

    let mut mixed = clean.clone();
    mixed["prefetch"]["observations"]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": foreign_observation()}));
    let (status, body) = svc.post_json(path, &mixed).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    let data03 = card(&body, "DATA-03");
    assert_eq!(data03["indicator"], "critical");
    assert!(data03["detail"].as_str().unwrap().contains("observations"));
    // Nothing of the other patient is shown anywhere.
    let text = body.to_string();
    assert!(!text.contains("someone-else-77") && !text.contains("foreign-ecog"));
    // This patient's own observations are not used either: ECOG, focality, resectability are
    // unknown now, so the re-resection verdict cannot be given.
    let ids = rule_ids(&body);
    assert!(rule_ids(&reference).contains(&"LR-04".to_owned()));
    assert!(ids.contains(&"LR-00".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"LR-04".to_owned()), "{ids:?}");
    // The other keys are still read: the diagnosis and the imaging are there.
    assert!(ids.contains(&"MDT-01".to_owned()), "{ids:?}");
    svc.stop().await;
}

#[tokio::test]
async fn a_chart_of_another_patient_is_refused() {
    let svc = Service::default().await;
    let path = "/cds-services/rps-patient-view";
    let schemas = Schemas::load();
    // context.patientId names someone else than the prefetch patient.
    let mut req = example("patient-view-local-recurrence.json");
    req["context"]["patientId"] = json!("someone-else");
    let (status, body) = svc.post_json(path, &req).await;
    assert_eq!(status, 400, "{body:#}");
    schemas.assert_outcome(&body);
    assert_eq!(body["issue"][0]["expression"][0], "prefetch.patient");
    assert!(!body.to_string().contains("rps-lr-001"), "{body}");

    // The same from fhirServer: 412, and nothing of the other chart is used.
    let full = example("patient-view-local-recurrence.json");
    let (mut patient, searches) = fhir_fixtures(&full);
    patient["id"] = json!("another-patient");
    let fhir = FhirServer::start(patient, searches, vec![]).await;
    let mut req = full.clone();
    req.as_object_mut().unwrap().remove("prefetch");
    req["fhirServer"] = json!(fhir.base);
    req["fhirAuthorization"] = fhir_authorization();
    let (status, body) = svc.post_json(path, &req).await;
    assert_eq!(status, 412, "{body:#}");
    schemas.assert_outcome(&body);
    assert_eq!(body["issue"][0]["expression"][0], "prefetch.patient");
    fhir.stop().await;
    svc.stop().await;
}

#[tokio::test]
async fn a_fhir_server_returning_another_patients_records_is_not_believed() {
    let full = example("patient-view-local-recurrence.json");
    let (patient, mut searches) = fhir_fixtures(&full);
    searches
        .get_mut("Observation")
        .unwrap()
        .last_mut()
        .unwrap()
        .push(foreign_observation());
    let fhir = FhirServer::start(patient, searches, vec![]).await;
    let svc = Service::default().await;
    let mut req = full.clone();
    req.as_object_mut().unwrap().remove("prefetch");
    req["fhirServer"] = json!(fhir.base);
    req["fhirAuthorization"] = fhir_authorization();
    let (status, body) = svc.post_json("/cds-services/rps-patient-view", &req).await;
    assert_eq!(status, 200, "{body:#}");
    let ids = rule_ids(&body);
    assert!(ids.contains(&"DATA-03".to_owned()), "{ids:?}");
    assert!(ids.contains(&"LR-00".to_owned()), "{ids:?}");
    assert!(!body.to_string().contains("someone-else-77"));
    fhir.stop().await;
    svc.stop().await;
}

#[tokio::test]
async fn a_draft_order_for_another_patient_is_not_checked_and_is_reported() {
    let svc = Service::default().await;
    let path = "/cds-services/rps-order-select";
    let req = example("order-select.json");
    let (status, reference) = svc.post_json(path, &req).await;
    assert_eq!(status, 200);
    assert!(rule_ids(&reference).contains(&"ORD-10".to_owned()));

    let mut foreign = req.clone();
    foreign["context"]["draftOrders"]["entry"][0]["resource"]["subject"] =
        json!({"reference": "Patient/someone-else-77"});
    let (status, body) = svc.post_json(path, &foreign).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    let ids = rule_ids(&body);
    assert!(!ids.contains(&"ORD-10".to_owned()), "{ids:?}");
    let data03 = card(&body, "DATA-03");
    assert!(data03["detail"].as_str().unwrap().contains("draft order"));
    assert!(!body.to_string().contains("someone-else-77"));

    // A draft order whose subject cannot be compared is not checked either; DATA-02 says so.
    let mut unreadable = req.clone();
    unreadable["context"]["draftOrders"]["entry"][0]["resource"]["subject"] =
        json!({"display": "the patient"});
    let (status, body) = svc.post_json(path, &unreadable).await;
    assert_eq!(status, 200, "{body:#}");
    let ids = rule_ids(&body);
    assert!(!ids.contains(&"ORD-10".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"DATA-03".to_owned()), "{ids:?}");
    let data02 = card(&body, "DATA-02");
    assert!(
        data02["detail"].as_str().unwrap().contains("draft order"),
        "{data02:#}"
    );
    svc.stop().await;
}
