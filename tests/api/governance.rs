//! Audit trail v2 over HTTP (issue 15): responses name the knowledge version and parameter set
//! that produced them, feedback is checked against its card, `/admin/rules/stats` honours its
//! range and its OpenAPI schema and agrees with `rps-cds report`, and `GET /admin` shows the
//! same numbers as HTML. The real server on a random port, SQLite in a temporary directory.

use std::collections::BTreeMap;

use crate::support::http::{Service, example};
use chrono::Utc;
use rps_cds::config::Config;
use rps_cds::knowledge::parameters::{ParameterSource, ParameterValue};
use serde_json::{Value, json};

const REASONS: &str = "https://fhir.rps-cds.org/CodeSystem/rps-override-reason";
const FEEDBACK: &str = "/cds-services/rps-patient-view/feedback";

async fn patient_view(svc: &Service) -> Value {
    let (status, body) = svc
        .post_json(
            "/cds-services/rps-patient-view",
            // A warning card (override reasons listed) and info cards (none).
            &example("patient-view-metastatic.json"),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    body
}

/// The first card matching `pick`.
fn card<'a>(response: &'a Value, what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| pick(c))
        .unwrap_or_else(|| panic!("no card {what} in {response:#}"))
}

fn has_suggestions(c: &Value) -> bool {
    c["suggestions"].as_array().is_some_and(|s| !s.is_empty())
}

fn has_override_reasons(c: &Value) -> bool {
    c["overrideReasons"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
}

async fn stats(svc: &Service, query: &str) -> (u16, Value) {
    let (status, _, body) = svc.get(&format!("/admin/rules/stats{query}")).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn row<'a>(stats: &'a Value, rule: &str) -> &'a Value {
    stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no row for {rule}: {stats:#}"))
}

#[tokio::test]
async fn the_response_names_the_knowledge_version_and_parameter_set_the_audit_keeps() {
    let mut config = Config::default();
    config
        .parameters
        .insert("favorable_dfi_months".to_owned(), 24.0);
    let svc = Service::start(config).await;
    let body = patient_view(&svc).await;
    let engine = &svc.state.engine;
    let ext = &body["extension"];
    assert_eq!(
        ext["https://fhir.rps-cds.org/knowledge-version"],
        engine.knowledge.version.as_str(),
        "{ext:#}"
    );
    let digest = ext["https://fhir.rps-cds.org/parameter-set"]
        .as_str()
        .unwrap_or_else(|| panic!("no parameter-set digest: {ext:#}"));
    assert_eq!(digest, engine.parameter_set.digest);
    let defaults = engine.knowledge.parameters(&BTreeMap::new()).unwrap().set();
    assert_ne!(digest, defaults.digest, "the site override changes the set");

    // The audit record names the same set, with each value's source.
    let mut out = Vec::new();
    svc.state
        .audit
        .export_jsonl(
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::hours(1),
            &mut out,
        )
        .await
        .unwrap();
    let exported: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        exported["knowledge_version"],
        engine.knowledge.version.as_str()
    );
    assert_eq!(exported["parameter_set"], digest);
    let parameters: BTreeMap<String, ParameterValue> =
        serde_json::from_value(exported["parameters"].clone()).unwrap();
    assert_eq!(
        parameters["favorable_dfi_months"],
        ParameterValue {
            value: 24.0,
            source: ParameterSource::SiteConfiguration
        }
    );
    assert_eq!(
        parameters["poor_ecog_min"].source,
        ParameterSource::CatalogueDefault
    );
    assert_eq!(parameters, engine.parameter_set.parameters);
    // Every card the EHR saw is in the record with what it offered.
    let cards = exported["cards"].as_array().unwrap();
    assert_eq!(cards.len(), body["cards"].as_array().unwrap().len());
    for (stored, sent) in cards.iter().zip(body["cards"].as_array().unwrap()) {
        assert_eq!(stored["uuid"], sent["uuid"]);
        let offered: Vec<&Value> = sent["suggestions"]
            .as_array()
            .map(|s| s.iter().map(|s| &s["uuid"]).collect())
            .unwrap_or_default();
        assert_eq!(
            stored["suggestions"].as_array().unwrap().len(),
            offered.len()
        );
    }
    svc.stop().await;
}

#[tokio::test]
async fn accepting_a_suggestion_the_card_never_offered_is_refused_naming_the_path() {
    let svc = Service::default().await;
    let body = patient_view(&svc).await;
    let c = card(&body, "with suggestions", has_suggestions);
    let (uuid, rule) = (
        c["uuid"].as_str().unwrap(),
        c["source"]["topic"]["code"].as_str().unwrap(),
    );
    let offered = c["suggestions"][0]["uuid"].as_str().unwrap();
    let accepted = |ids: Vec<&str>| {
        json!({"feedback": [{"card": uuid, "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:00:00Z",
            "acceptedSuggestions": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}]})
    };
    let (status, outcome) = svc
        .post_json(
            FEEDBACK,
            &accepted(vec![offered, "3fa85f64-5717-4562-b3fc-2c963f66afa6"]),
        )
        .await;
    assert_eq!(status, 400, "{outcome:#}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        outcome["issue"][0]["expression"][0], "feedback[0].acceptedSuggestions[1].id",
        "{outcome:#}"
    );
    let (_, s) = stats(&svc, "").await;
    assert_eq!(row(&s, rule)["feedback"], 0, "nothing was stored: {s:#}");

    let (status, stored) = svc.post_json(FEEDBACK, &accepted(vec![offered])).await;
    assert_eq!(status, 200, "{stored:#}");
    let (_, s) = stats(&svc, "").await;
    assert_eq!(row(&s, rule)["accepted"], 1, "{s:#}");
    svc.stop().await;
}

#[tokio::test]
async fn an_override_reason_the_card_did_not_list_is_refused_naming_the_path() {
    let svc = Service::default().await;
    let body = patient_view(&svc).await;
    let c = card(&body, "with override reasons", has_override_reasons);
    let (uuid, rule) = (
        c["uuid"].as_str().unwrap(),
        c["source"]["topic"]["code"].as_str().unwrap(),
    );
    let listed = c["overrideReasons"][0]["code"].as_str().unwrap();
    let overridden = |card: &str, code: &str| {
        json!({"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
            "overrideReason": {"reason": {"system": REASONS, "code": code}}}]})
    };
    let (status, outcome) = svc
        .post_json(FEEDBACK, &overridden(uuid, "not-a-listed-reason"))
        .await;
    assert_eq!(status, 400, "{outcome:#}");
    assert_eq!(
        outcome["issue"][0]["expression"][0], "feedback[0].overrideReason.reason.code",
        "{outcome:#}"
    );
    // A card that lists no override reasons (an info card) takes none.
    if let Some(info) = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !has_override_reasons(c))
    {
        let (status, outcome) = svc
            .post_json(
                FEEDBACK,
                &overridden(info["uuid"].as_str().unwrap(), listed),
            )
            .await;
        assert_eq!(status, 400, "{outcome:#}");
    }
    let (_, s) = stats(&svc, "").await;
    assert_eq!(row(&s, rule)["overridden"], 0, "{s:#}");

    let (status, stored) = svc.post_json(FEEDBACK, &overridden(uuid, listed)).await;
    assert_eq!(status, 200, "{stored:#}");
    let (_, s) = stats(&svc, "").await;
    assert_eq!(row(&s, rule)["overridden"], 1, "{s:#}");
    assert_eq!(row(&s, rule)["override_reasons"][0]["code"], listed);
    svc.stop().await;
}

/// Validates `instance` against component `name` of the served OpenAPI document.
fn assert_schema(doc: &Value, name: &str, instance: &Value) {
    let schema = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{instance:#}");
}

#[tokio::test]
async fn rule_stats_honour_from_and_to_match_the_schema_and_agree_with_report() {
    let svc = Service::default().await;
    let body = patient_view(&svc).await;
    patient_view(&svc).await;
    let c = card(&body, "with override reasons", has_override_reasons);
    let listed = c["overrideReasons"][0]["code"].as_str().unwrap();
    let (status, _) = svc
        .post_json(
            FEEDBACK,
            &json!({"feedback": [{"card": c["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
                "overrideReason": {"reason": {"system": REASONS, "code": listed, "display": "As listed"}}}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, doc) = svc.get("/openapi.json").await;
    let doc: Value = serde_json::from_str(&doc).unwrap();

    // Garbage and empty ranges: 400 naming the parameter(s).
    for (query, expression) in [
        ("?from=garbage", json!(["from"])),
        ("?to=2026-13-45", json!(["to"])),
        ("?from=2026-12-02&to=2026-12-01", json!(["from", "to"])),
        (
            "?from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            json!(["from", "to"]),
        ),
    ] {
        let (status, outcome) = stats(&svc, query).await;
        assert_eq!(status, 400, "{query}: {outcome:#}");
        assert_eq!(outcome["issue"][0]["expression"], expression, "{query}");
        assert_schema(&doc, "OperationOutcome", &outcome);
    }

    let today = Utc::now().date_naive();
    let (from, to) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
    let around_now = format!("?from={from}&to={to}");
    let cases = [
        ("", None, None),
        (
            around_now.as_str(),
            Some(from.to_string()),
            Some(to.to_string()),
        ),
        (
            "?from=2100-01-01&to=2100-02-01",
            Some("2100-01-01".into()),
            Some("2100-02-01".into()),
        ),
        ("?to=2001-01-01", None, Some("2001-01-01".into())),
    ];
    let (_, all) = stats(&svc, "").await;
    for (query, from, to) in cases {
        let (status, s) = stats(&svc, query).await;
        assert_eq!(status, 200, "{query}: {s:#}");
        assert_schema(&doc, "RuleStatsReport", &s);
        // The same range through the binary, against the same store.
        let mut args = vec!["report", "--format", "json"];
        if let Some(f) = &from {
            args.extend(["--from", f]);
        }
        if let Some(t) = &to {
            args.extend(["--to", t]);
        }
        let report = report_json(&svc, &args).await;
        assert_eq!(s, report, "{query}");
        match query {
            q if q.contains("2100") || q.contains("2001") => {
                assert_eq!(
                    s["rules"],
                    json!([]),
                    "{query}: a range without calls is empty"
                )
            }
            _ => {
                assert_eq!(s["rules"], all["rules"], "{query}");
                assert_eq!(
                    row(&s, c["source"]["topic"]["code"].as_str().unwrap())["overridden"],
                    1
                );
            }
        }
    }
    svc.stop().await;
}

/// `rps-cds report …` on the service's own SQLite file, parsed.
async fn report_json(svc: &Service, args: &[&str]) -> Value {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rps-cds"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RPS_CDS_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .args(args)
        .env(
            "RPS_CDS_STORAGE__DATA_DIR",
            &svc.state.config.storage.data_dir,
        )
        .env("RPS_CDS_LOG__LEVEL", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "rps-cds {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `<tr data-rule="…">` row of the page.
fn html_row<'a>(page: &'a str, rule: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<tr data-rule="{rule}">"#))
        .unwrap_or_else(|| panic!("no row for {rule} in the page:\n{page}"));
    let end = page[start..].find("</tr>").unwrap() + start;
    &page[start..end]
}

#[tokio::test]
async fn the_governance_page_shows_the_json_numbers_escaped_without_scripts() {
    let svc = Service::default().await;
    let body = patient_view(&svc).await;
    patient_view(&svc).await;
    let c = card(&body, "with override reasons", has_override_reasons);
    let listed = c["overrideReasons"][0]["code"].as_str().unwrap();
    // The display text is the EHR's: it must be shown as text, never as markup.
    let (status, _) = svc
        .post_json(
            FEEDBACK,
            &json!({"feedback": [{"card": c["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z",
                "overrideReason": {"reason": {"system": REASONS, "code": listed,
                    "display": "<script>alert('x')</script> & <b>more</b>"}}}]}),
        )
        .await;
    assert_eq!(status, 200);

    let r = svc.client.get(svc.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        r.headers()
    );
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<b>more"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;b&gt;more&lt;/b&gt;"),
        "{page}"
    );
    assert!(
        !page.contains("src=\"http"),
        "nothing is loaded from elsewhere"
    );
    assert!(page.contains("<svg"), "the weekly chart is inline SVG");

    // Every rule of the JSON stats, with the same numbers.
    let (_, s) = stats(&svc, "").await;
    let rules = s["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for r in rules {
        let html = html_row(&page, r["rule_id"].as_str().unwrap());
        for key in ["fired", "cards", "feedback", "accepted", "overridden"] {
            let cell = format!(r#"<td class="n {key}">{}</td>"#, r[key]);
            assert!(html.contains(&cell), "{key}: {cell} not in {html}");
        }
    }
    let overridden_rule = c["source"]["topic"]["code"].as_str().unwrap();
    assert!(
        html_row(&page, overridden_rule).contains(r#"<td class="n override-rate">100 %</td>"#),
        "{}",
        html_row(&page, overridden_rule)
    );
    // The knowledge version and parameter set in use.
    let engine = &svc.state.engine;
    assert!(
        page.contains(&format!("<td>{}</td>", engine.knowledge.version)),
        "{page}"
    );
    assert!(page.contains(&engine.parameter_set.digest), "{page}");

    // The range is honoured, and refused like the JSON's.
    let (status, _, empty) = svc.get("/admin?from=2100-01-01").await;
    assert_eq!(status, 200);
    assert!(empty.contains("No rule fired in this period."), "{empty}");
    let (status, content_type, bad) = svc.get("/admin?to=nonsense").await;
    assert_eq!(status, 400, "{bad}");
    assert!(content_type.contains("fhir+json"), "{content_type}");
    svc.stop().await;
}
