//! Issue 13: cards a clinician reads in ten seconds (catalogue §6).
//!
//! Renders the cards of the example charts and of a representative set of charts built with
//! the shared builders through the service's own pipeline (`Engine::evaluate`, as
//! `POST /cds-services/{id}` does), then:
//!
//! - lints every card's `summary` and `detail`: no snake_case word, backticked name, parameter
//!   key or `Type/id` reference (the footer line's rule ids are allowed); `detail` within 700
//!   characters for info cards and 1,500 for verdict cards; no sentence twice in a card; no
//!   fact listed twice in a card; no unknown fact listed on two cards of one response;
//! - checks `docs/cards.md`, the card gallery, against the same rendering
//!   (`RPS_CDS_BLESS=1 cargo test --test api card_text::` regenerates it).

use std::sync::{Arc, OnceLock};

use crate::support::card_lint::{
    fact_labels, identifiers, is_verdict, problems, sentences, without_footer,
};
use crate::support::chart::*;
use crate::support::http::example;
use chrono::{DateTime, NaiveDate, Utc};
use rps_cds::cards::{MAX_INFO_DETAIL_CHARS, MAX_VERDICT_DETAIL_CHARS};
use rps_cds::cds_hooks::discovery::services;
use rps_cds::config::Config;
use rps_cds::display;
use rps_cds::engine::Engine;
use rps_cds::rules::RuleId;
use serde_json::{Value, json};

const EXAMPLES: &[&str] = &[
    "patient-view-local-recurrence.json",
    "patient-view-metastatic.json",
    "order-select.json",
    "order-sign.json",
];

fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = Engine::new(&Config::default()).expect("engine starts");
        engine
            .validator
            .wait_until_ready()
            .expect("validator compiles");
        Arc::new(engine)
    })
}

/// The examples' evaluation date (examples/README.md).
fn examples_as_of() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 11, 23)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .unwrap()
        .and_utc()
}

/// The response of the service for `request`, as the HTTP route builds it.
fn respond(request: &Value, as_of: DateTime<Utc>) -> Value {
    let hook = request["hook"].as_str().unwrap();
    let service = services()
        .into_iter()
        .find(|s| s.hook.as_str() == hook)
        .unwrap();
    let body = serde_json::to_vec(request).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let evaluation = rt
        .block_on(engine().evaluate(&service, &body, as_of))
        .expect("the request is answered");
    serde_json::to_value(&evaluation.response).unwrap()
}

/// Representative charts built with the shared builders: each verdict of the local
/// recurrence and metastatic groups, unknowns, a fact read from text, long intervals, a
/// record that failed validation, and order checks.
fn built_charts() -> Vec<(&'static str, Chart, &'static str)> {
    vec![
        (
            "second recurrence of DD-LPS with unknowns",
            Chart::new("2020-07-25")
                .patient("1961-03-02")
                .diagnosis("2019-12-01", hist::DDLPS)
                .primary_resection("2020-01-15", Some("R1"))
                .recurrence("2020-07-15")
                .ct_chest_abdomen_pelvis("2020-07-10"),
            "patient-view",
        ),
        (
            "multifocal recurrence, ECOG 1, grade 3",
            Chart::new("2020-07-25")
                .patient("1961-03-02")
                .diagnosis("2019-12-01", hist::DDLPS)
                .grade("2020-01-20", 3)
                .primary_resection("2020-01-15", Some("R1"))
                .recurrence("2020-07-15")
                .focality("2020-07-16", 1, true)
                .ct_chest_abdomen_pelvis("2020-07-10")
                .ecog("2020-07-16", 1),
            "patient-view",
        ),
        (
            "synchronous lung metastases of LMS",
            Chart::new("2021-04-10")
                .patient("1955-01-20")
                .diagnosis("2021-03-01", hist::LMS)
                .grade("2021-03-05", 2)
                .ct_chest_abdomen_pelvis("2021-04-01")
                .metastasis("2021-04-01", Site::Lung)
                .metastasis("2021-04-01", Site::Lung)
                .ecog("2021-04-02", 0),
            "patient-view",
        ),
        (
            "liver metastases 24 years after resection of LMS",
            Chart::new("2015-03-15")
                .patient("1939-02-01")
                .diagnosis("1991-05-01", hist::LMS)
                .primary_resection("1991-06-01", Some("R0"))
                .rupture("1991-06-01", "Procedure/resection-1", false)
                .ct_chest_abdomen_pelvis("2015-03-01")
                .metastasis("2015-03-01", Site::Liver)
                .lesion_count("2015-03-02", 4)
                .ecog("2015-03-02", 1),
            "patient-view",
        ),
        (
            "WD-LPS recurrence with a symptom note",
            Chart::new("2026-11-01")
                .patient("1950-05-05")
                .diagnosis("2019-01-10", hist::WDLPS)
                .grade("2019-02-01", 1)
                .primary_resection("2019-02-01", Some("R0"))
                .recurrence("2026-10-01")
                .focality("2026-10-02", 1, false)
                .resectability("2026-10-02", "resectable")
                .ecog("2026-10-02", 1)
                .symptom_note(
                    "2026-10-02",
                    "Patient reports no pain and no other symptoms.",
                )
                .ct_chest_abdomen_pelvis("2026-10-01"),
            "patient-view",
        ),
        (
            "peritoneal sarcomatosis after radiotherapy",
            Chart::new("2026-11-01")
                .patient("1960-01-01")
                .diagnosis("2022-01-10", hist::DDLPS)
                .grade("2022-02-01", 3)
                .primary_resection("2022-02-01", Some("R1"))
                .radiotherapy("2021-12-01", "2022-01-05", Some(5040.0))
                .metastasis("2026-09-01", Site::Peritoneum)
                .ct_chest_abdomen_pelvis("2026-09-01")
                .ecog("2026-09-02", 2)
                .doxorubicin("2026-09-10", 75.0),
            "patient-view",
        ),
        (
            "anthracycline over the lifetime limit",
            Chart::new("2026-11-01")
                .patient("1960-01-01")
                .diagnosis("2022-01-10", hist::LMS)
                .primary_resection("2022-02-01", Some("R0"))
                .metastasis("2026-06-01", Site::Lung)
                .ct_chest_abdomen_pelvis("2026-10-01")
                .bsa("2026-06-01", 1.8)
                .doxorubicin("2026-06-10", 75.0)
                .doxorubicin("2026-07-01", 75.0)
                .doxorubicin("2026-07-22", 75.0)
                .doxorubicin("2026-08-12", 75.0)
                .doxorubicin("2026-09-02", 75.0)
                .doxorubicin("2026-09-23", 75.0)
                .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), None),
            "order-sign",
        ),
        (
            "a record that failed validation",
            Chart::new("2026-11-01")
                .patient("1960-01-01")
                .diagnosis("2024-01-10", hist::SFT)
                .primary_resection("2024-02-01", Some("R0"))
                .recurrence("2026-10-01")
                .ecog("2026-10-02", 0)
                .tweak(|r| r["valueInteger"] = json!("zero")),
            "patient-view",
        ),
    ]
}

/// Every chart the lint renders: (name, response).
fn responses() -> &'static Vec<(String, Value)> {
    static RESPONSES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    RESPONSES.get_or_init(|| {
        let mut out = Vec::new();
        for name in EXAMPLES {
            out.push((
                format!("examples/{name}"),
                respond(&example(name), examples_as_of()),
            ));
        }
        for (name, chart, hook) in built_charts() {
            out.push((
                name.to_owned(),
                respond(&chart.hook_request(hook), chart.as_of),
            ));
        }
        out
    })
}

#[test]
fn cards_read_as_clinical_text() {
    let mut all = Vec::new();
    let mut cards = 0;
    for (name, response) in responses() {
        cards += response["cards"].as_array().unwrap().len();
        all.extend(problems(name, response));
    }
    assert!(cards > 20, "the charts give too few cards to lint: {cards}");
    assert!(
        all.is_empty(),
        "{} problems:\n{}",
        all.len(),
        all.join("\n")
    );
}

/// The lint itself finds what it must: each forbidden kind of text is caught.
#[test]
fn the_lint_catches_identifiers() {
    assert!(
        !identifiers("ECOG 1 (2 Oct 2026, from a clinical note)")
            .iter()
            .any(|_| true)
    );
    assert_eq!(identifiers("`ecog`").len(), 1);
    assert!(identifiers("DFI (< poor_ecog_min = 3)").len() >= 2);
    assert_eq!(identifiers("read from Observation/obs-r01-8").len(), 1);
    assert_eq!(identifiers("2 fact(s) still unknown").len(), 1);
    assert_eq!(
        identifiers("active surveillance (MET-11) not assessed").len(),
        1
    );
    assert_eq!(
        sentences("A long sentence that says one thing. A long sentence that says one thing.")
            .len(),
        2
    );
    let detail = "**Decided by**\n\n- ECOG 1\n- ECOG 2\n\nSource: x.";
    assert_eq!(fact_labels(detail), ["ECOG", "ECOG"]);
    let bad = json!({"cards": [{
        "summary": "x", "detail": "**Decided by**\n\n- ECOG 1\n- ECOG 1 (2 Oct 2026)\n\nlow_volume",
        "source": {"topic": {"code": "MET-02"}}, "extension": {}
    }]});
    let p = problems("bad", &bad);
    assert!(p.iter().any(|l| l.contains("fact listed twice")), "{p:?}");
    assert!(p.iter().any(|l| l.contains("snake_case")), "{p:?}");
    assert!(
        p.iter().any(|l| l.contains("no Rule and evidence link")),
        "{p:?}"
    );
}

/// The gallery: each example chart's cards as the clinician reads them. Uuids are not shown
/// and the evaluation date is fixed, so the document is stable.
fn gallery() -> String {
    let mut d = String::from(
        "# Card gallery\n\n\
         The cards of the example charts (`examples/`), as the service answers them on \
         2026-11-23 (the examples' evaluation date), rendered by the same pipeline as \
         `POST /cds-services/{id}`. Generated by `tests/api/card_text.rs`; regenerate with \
         `RPS_CDS_BLESS=1 cargo test --test api card_text::` and commit the result.\n\n\
         Each card: indicator, summary, source, the detail as the EHR shows it (Markdown), and \
         its suggestions and links.\n",
    );
    for (name, response) in responses()
        .iter()
        .filter(|(n, _)| n.starts_with("examples/"))
    {
        let cards = response["cards"].as_array().unwrap();
        d.push_str(&format!(
            "\n## `{name}`\n\n{}.\n",
            display::count(cards.len(), "card")
        ));
        for (i, card) in cards.iter().enumerate() {
            d.push_str(&format!(
                "\n### {}. {} — {}\n\n",
                i + 1,
                card["indicator"].as_str().unwrap_or(""),
                card["summary"].as_str().unwrap_or("")
            ));
            d.push_str(&format!(
                "Source: {}{}\n\n",
                card["source"]["label"].as_str().unwrap_or(""),
                card["source"]["url"]
                    .as_str()
                    .map(|u| format!(" <{u}>"))
                    .unwrap_or_default()
            ));
            for line in card["detail"].as_str().unwrap_or("").lines() {
                // Quoted, headings one level down so the gallery's own stay on top.
                if line.is_empty() {
                    d.push_str(">\n");
                } else {
                    d.push_str(&format!("> {}\n", line.replace("### ", "#### ")));
                }
            }
            let suggestions: Vec<&str> = card["suggestions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["label"].as_str())
                .collect();
            if !suggestions.is_empty() {
                d.push_str(&format!("\nSuggestions: {}\n", suggestions.join("; ")));
            }
            for l in card["links"].as_array().into_iter().flatten() {
                d.push_str(&format!(
                    "\nLink: {} <{}>\n",
                    l["label"].as_str().unwrap_or(""),
                    l["url"].as_str().unwrap_or("")
                ));
            }
        }
    }
    d
}

#[test]
fn card_gallery_is_current() {
    let path = manifest_dir().join("docs/cards.md");
    let rendered = gallery();
    if std::env::var_os("RPS_CDS_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/cards.md is out of date with the cards the service renders; regenerate it with \
         `RPS_CDS_BLESS=1 cargo test --test api card_text::` and commit the result"
    );
    assert!(rendered.contains("## `examples/patient-view-metastatic.json`"));
    assert!(!rendered.contains("uuid"));
}

/// Prints the before/after numbers of the issue over these charts (run with
/// `--nocapture`): cards, cards with identifiers, details over their limit. With
/// `RPS_CDS_DUMP_REQUESTS=<dir>` it also writes each chart's request (`<n>.json`, with its
/// evaluation date in `<n>.as-of`), so another build can be measured on the same charts with
/// `rps-cds evaluate --request <n>.json --as-of <date>`.
#[test]
fn card_text_numbers() {
    if let Some(dir) = std::env::var_os("RPS_CDS_DUMP_REQUESTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (_, chart, hook)) in built_charts().iter().enumerate() {
            let request = serde_json::to_vec_pretty(&chart.hook_request(hook)).unwrap();
            std::fs::write(dir.join(format!("{i}.json")), request).unwrap();
            std::fs::write(dir.join(format!("{i}.as-of")), chart.as_of.to_rfc3339()).unwrap();
        }
    }
    let (mut cards, mut with_ids, mut ids, mut long) = (0, 0, 0, 0);
    for (_, response) in responses() {
        for card in response["cards"].as_array().unwrap() {
            cards += 1;
            let text = format!(
                "{}\n{}",
                card["summary"].as_str().unwrap(),
                without_footer(card["detail"].as_str().unwrap())
            );
            let n = identifiers(&text).len();
            ids += n;
            with_ids += usize::from(n > 0);
            let max = if is_verdict(card) {
                MAX_VERDICT_DETAIL_CHARS
            } else {
                MAX_INFO_DETAIL_CHARS
            };
            long += usize::from(card["detail"].as_str().unwrap().chars().count() > max);
        }
    }
    println!(
        "charts {}, cards {cards}, cards with identifiers {with_ids} ({ids} identifiers), \
         details over the limit {long}",
        responses().len()
    );
    assert!(cards > 0);
}

/// `GET /rules` over the real server: public even when CDS client authentication is required
/// (a clinician opens it from the card in a browser), HTML without scripts, an anchor per rule
/// (the target of every card's link), and the thresholds with the values in force.
#[tokio::test]
async fn the_rules_page_is_public_html_with_an_anchor_per_rule() {
    use rps_cds::auth::{AuthConfig, AuthMode, TrustedClient};
    let mut config = Config {
        auth: AuthConfig {
            mode: AuthMode::Required,
            trusted_clients: vec![TrustedClient {
                iss: "https://ehr.example.org".to_owned(),
                // Never fetched: the page is answered without a token.
                jwks_url: Some("https://ehr.example.org/jwks.json".parse().unwrap()),
                jwks: None,
                jwks_file: None,
                jku_allowlist: Vec::new(),
                tenants: None,
            }],
            ..AuthConfig::default()
        },
        ..Config::default()
    };
    config.parameters.insert("poor_ecog_min".to_owned(), 2.0);
    let svc = crate::support::http::Service::start(config).await;
    let r = svc.client.get(svc.url("/rules")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script"));
    for id in RuleId::ALL {
        assert!(page.contains(&format!("id=\"{id}\"")), "no anchor for {id}");
    }
    // The site's setting shows, in clinical words.
    assert!(
        page.contains("poor performance status from ECOG 2 — site setting"),
        "site setting not shown"
    );
    assert!(!page.contains("poor_ecog_min ="));
    // The governance page is not public.
    let admin = svc.client.get(svc.url("/admin")).send().await.unwrap();
    assert_eq!(admin.status(), 401);
    svc.stop().await;
}
