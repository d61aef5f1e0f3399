//! Order checks of catalogue version 2 (docs/clinical-spec.md §4.5, issue 12) through the real
//! HTTP server: ORD-04, ORD-13, ORD-14, ORD-15 and ORD-17 changed, ORD-19 and ORD-20 new.
//! Each rule has a request where it fires, a near miss where it does not, and one where a fact
//! it needs is unknown; every response is checked for at most one card per rule per draft
//! order, and the cards' `selectionBehavior` for their suggestions.

use crate::support::chart::*;
use crate::support::http::{EXT, Schemas, Service, card, rule_ids};
use crate::support::request::{ago, today};
use chrono::{Days, Utc};
use serde_json::{Value, json};

/// Posts the chart to the hook's service; checks status and schema; checks at most one card
/// per rule per draft order (§5); returns the response.
async fn post(svc: &Service, hook: &str, chart: &Chart) -> Value {
    let body = svc.call_chart(hook, chart).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    for c in body["cards"].as_array().unwrap() {
        let key = (
            c["source"]["topic"]["code"].as_str().unwrap().to_owned(),
            c["extension"][format!("{EXT}/draft-order")]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
        assert!(
            key.1.is_empty() || !seen.contains(&key),
            "two {key:?} cards: {:?}",
            rule_ids(&body)
        );
        seen.push(key);
    }
    body
}

/// Both order hooks give the same rules for the chart (order-select checks the selections,
/// which the chart builder sets to every draft).
async fn sign_and_select(svc: &Service, chart: &Chart) -> Value {
    let sign = post(svc, "order-sign", chart).await;
    let select = post(svc, "order-select", chart).await;
    assert_eq!(rule_ids(&sign), rule_ids(&select));
    sign
}

fn has(body: &Value, rule: &str) -> bool {
    rule_ids(body).iter().any(|r| r == rule)
}

fn text_of(card: &Value) -> String {
    format!(
        "{}\n{}",
        card["summary"].as_str().unwrap(),
        card["detail"].as_str().unwrap()
    )
}

/// The suggestion labels of a card.
fn labels(card: &Value) -> Vec<String> {
    card["suggestions"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| x["label"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether any suggestion of the card creates a resource (a create action).
fn creates_anything(card: &Value) -> bool {
    card["suggestions"].as_array().is_some_and(|s| {
        s.iter().any(|x| {
            x["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["type"] == "create")
        })
    })
}

fn parameters(card: &Value) -> Vec<String> {
    card["extension"][format!("{EXT}/parameters")]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A completely resected retroperitoneal leiomyosarcoma with metachronous lung metastases,
/// ECOG 1: in scope, metastatic, with no medication records.
fn lms_chart() -> Chart {
    Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis(&ago(1500), hist::LMS)
        .grade(&ago(1480), 2)
        .primary_resection(&ago(1460), Some("R0"))
        .metastasis(&ago(30), Site::Lung)
        .ecog(&ago(10), 1)
        .ct_chest_abdomen_pelvis(&ago(8))
}

/// A draft doxorubicin order of `mg_m2` (one dose).
fn doxorubicin_draft(chart: Chart, mg_m2: f64) -> Chart {
    chart.draft_medication("3639", "doxorubicin", Some((mg_m2, "mg/m2")), None)
}

fn olaratumab_draft(chart: Chart) -> Chart {
    chart.draft_medication("0", "olaratumab", Some((15.0, "mg/kg")), None)
}

/// Six three-weekly doxorubicin administrations of `mg_m2` each (`None`: charted without a
/// dose), the last about a year ago.
fn six_cycles(mut chart: Chart, mg_m2: Option<f64>) -> Chart {
    for i in 0..6 {
        chart = chart.administration(
            &ago(480 - i * 21),
            "3639",
            "doxorubicin",
            mg_m2.map(|d| (d, "mg/m2")),
        );
    }
    chart
}

/// A medication administration that fails validation in a modifier element (`status`): the
/// whole record is set aside, so medication data is incomplete.
fn set_aside_administration(chart: Chart) -> Chart {
    chart
        .administration(&ago(200), "3639", "doxorubicin", Some((60.0, "mg/m2")))
        .tweak(|m| m["status"] = json!(17))
}

// ---- ORD-04 ------------------------------------------------------------------------------

/// A DD-LPS recurrence resected with margin `completeness` (R0/R1; `None`: not recorded) two
/// months ago, after pre-operative radiotherapy (`iort`: with IORT at the operation).
fn resected_recurrence(completeness: Option<&str>, iort: bool) -> Chart {
    let chart = Chart::new(&today())
        .patient("1961-04-02")
        .diagnosis(&ago(2400), hist::DDLPS)
        .grade(&ago(2380), 2)
        .primary_resection(&ago(2360), Some("R0"))
        .recurrence(&ago(200))
        .radiotherapy(&ago(150), &ago(115), Some(5040.0));
    let chart = if iort { chart.iort(&ago(60)) } else { chart };
    chart
        .recurrence_resection(&ago(60), 1, completeness)
        .ct_chest_abdomen_pelvis(&ago(20))
}

fn postoperative_rt(chart: Chart) -> Chart {
    chart.draft_service(
        text("Post-operative radiotherapy to the tumour bed"),
        None,
        None,
    )
}

// UTD (NCCN as summarised there): after an R1 re-resection an RT boost of 10–16 Gy could be
// considered if pre-operative RT was given and IORT was not, normal-tissue constraints
// permitting; otherwise post-operative therapy after complete resection has no proven role.
#[tokio::test]
async fn ord04_r1_boost_after_preoperative_rt_is_its_own_info_card_without_delete_utd() {
    let svc = Service::default().await;
    let body = sign_and_select(
        &svc,
        &postoperative_rt(resected_recurrence(Some("R1"), false)),
    )
    .await;
    let c = card(&body, "ORD-04");
    assert_eq!(c["indicator"], "info");
    let t = text_of(c);
    assert!(t.contains("10–16 Gy"), "{t}");
    assert!(t.contains("normal-tissue"), "{t}");
    assert!(labels(c).is_empty(), "no delete action: {:?}", labels(c));
    assert!(c.get("selectionBehavior").is_none(), "{c:#}");
    assert!(
        c.get("overrideReasons")
            .is_none_or(|o| o.as_array().unwrap().is_empty())
    );
    svc.stop().await;
}

#[tokio::test]
async fn ord04_warning_after_r0_or_with_iort_or_for_systemic_therapy_does_not_mention_the_boost() {
    let svc = Service::default().await;
    // R0: the exception does not apply.
    let r0 = sign_and_select(
        &svc,
        &postoperative_rt(resected_recurrence(Some("R0"), false)),
    )
    .await;
    // R1 but IORT was given.
    let iort = sign_and_select(
        &svc,
        &postoperative_rt(resected_recurrence(Some("R1"), true)),
    )
    .await;
    // R1 after pre-operative RT, but the draft is adjuvant chemotherapy: RT drafts only.
    let systemic = sign_and_select(
        &svc,
        &resected_recurrence(Some("R1"), false)
            .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), None)
            .tweak_draft(|m| m["courseOfTherapyType"] = text("Adjuvant chemotherapy")),
    )
    .await;
    for body in [&r0, &iort, &systemic] {
        let c = card(body, "ORD-04");
        assert_eq!(c["indicator"], "warning");
        let t = text_of(c);
        assert!(!t.contains("boost") && !t.contains("Gy"), "{t}");
        assert_eq!(labels(c).len(), 1, "{:?}", labels(c));
        assert!(labels(c)[0].starts_with("Remove the draft order"));
        assert_eq!(c["selectionBehavior"], "any");
        assert!(!c["overrideReasons"].as_array().unwrap().is_empty());
    }
    svc.stop().await;
}

#[tokio::test]
async fn ord04_is_silent_when_the_margin_of_the_re_resection_is_unknown() {
    let svc = Service::default().await;
    let body = sign_and_select(&svc, &postoperative_rt(resected_recurrence(None, false))).await;
    assert!(!has(&body, "ORD-04"), "{:?}", rule_ids(&body));
    svc.stop().await;
}

// ---- ORD-14 ------------------------------------------------------------------------------

// TMC 3 (VA): the cumulative anthracycline dose of earlier therapy is to be ascertained; the
// limit itself is EXT (doxorubicin labelling).
#[tokio::test]
async fn ord14_lower_bound_over_the_limit_is_critical_and_says_at_least_tmc3() {
    let svc = Service::default().await;
    // 6 × 70 = 420 mg/m² given; 75 planned: 495 > 450, exact.
    let exact = sign_and_select(
        &svc,
        &doxorubicin_draft(six_cycles(lms_chart(), Some(70.0)), 75.0),
    )
    .await;
    let c = card(&exact, "ORD-14");
    assert_eq!(c["indicator"], "critical");
    assert!(c["summary"].as_str().unwrap().contains("495"), "{c:#}");
    assert!(!c["summary"].as_str().unwrap().contains("at least"));
    assert!(
        !has(&exact, "ORD-19"),
        "ORD-14 fired: {:?}",
        rule_ids(&exact)
    );
    assert_eq!(labels(c).len(), 1);
    assert_eq!(c["selectionBehavior"], "any");
    // Attribution (§4.6): the dose record is TMC 3 (VA), the limit EXT.
    let label = c["source"]["label"].as_str().unwrap();
    assert!(
        label.contains("st. 3 (VA)") && label.contains("EXT"),
        "{label}"
    );
    // A seventh cycle without a dose and a set-aside administration: the total is a lower
    // bound, and the alert fires whatever else was set aside.
    let chart = set_aside_administration(six_cycles(lms_chart(), Some(70.0)).administration(
        &ago(300),
        "3639",
        "doxorubicin",
        None,
    ));
    let bound = sign_and_select(&svc, &doxorubicin_draft(chart, 75.0)).await;
    assert!(has(&bound, "DATA-02"), "{:?}", rule_ids(&bound));
    let c = card(&bound, "ORD-14");
    assert_eq!(c["indicator"], "critical");
    let summary = c["summary"].as_str().unwrap();
    assert!(summary.contains("at least 495"), "{summary}");
    assert!(!has(&bound, "ORD-19"), "{:?}", rule_ids(&bound));
    svc.stop().await;
}

#[tokio::test]
async fn ord14_exactly_at_the_limit_is_silent() {
    let svc = Service::default().await;
    // 420 + 30 = 450: at the limit, not over it; every dose established, so no ORD-19.
    let body = sign_and_select(
        &svc,
        &doxorubicin_draft(six_cycles(lms_chart(), Some(70.0)), 30.0),
    )
    .await;
    assert!(
        !has(&body, "ORD-14") && !has(&body, "ORD-19"),
        "{:?}",
        rule_ids(&body)
    );
    svc.stop().await;
}

#[tokio::test]
async fn ord14_with_the_planned_dose_unknown_is_silent_below_the_limit_and_fires_above_it() {
    let svc = Service::default().await;
    // No planned dose on the order: 420 known, the rest unknown: nothing proves it is over.
    let undosed =
        six_cycles(lms_chart(), Some(70.0)).draft_medication("3639", "doxorubicin", None, None);
    let body = sign_and_select(&svc, &undosed).await;
    assert!(!has(&body, "ORD-14"), "{:?}", rule_ids(&body));
    // 7 × 70 = 490 already given: over the limit whatever the order's dose.
    let over = six_cycles(lms_chart(), Some(70.0))
        .doxorubicin(&ago(300), 70.0)
        .draft_medication("3639", "doxorubicin", None, None);
    let body = sign_and_select(&svc, &over).await;
    let c = card(&body, "ORD-14");
    assert!(
        c["summary"].as_str().unwrap().contains("at least 490"),
        "{c:#}"
    );
    // Another anthracycline draft without a dose: the total is a lower bound for both orders.
    let two = doxorubicin_draft(six_cycles(lms_chart(), Some(70.0)), 75.0).draft_medication(
        "3995",
        "epirubicin",
        None,
        None,
    );
    let body = sign_and_select(&svc, &two).await;
    let ord14: Vec<&Value> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"]["topic"]["code"] == "ORD-14")
        .collect();
    assert_eq!(ord14.len(), 2, "one per draft order: {:?}", rule_ids(&body));
    for c in ord14 {
        let summary = c["summary"].as_str().unwrap();
        assert!(summary.contains("at least 495"), "{summary}");
    }
    svc.stop().await;
}

#[tokio::test]
async fn ord14_fires_when_the_diagnosis_itself_was_set_aside() {
    let svc = Service::default().await;
    // The diagnosis Condition fails validation in its code: no RPS diagnosis can be read,
    // but the dose alert still fires.
    let chart = Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis(&ago(1500), hist::LMS)
        .tweak(|c| c["code"]["coding"] = json!("C48.0"));
    let chart = doxorubicin_draft(six_cycles(chart, Some(70.0)), 75.0);
    let body = sign_and_select(&svc, &chart).await;
    assert!(has(&body, "DATA-02"), "{:?}", rule_ids(&body));
    assert_eq!(card(&body, "ORD-14")["indicator"], "critical");
    // Without any set-aside record a patient without an RPS diagnosis is out of scope.
    let chart = doxorubicin_draft(
        six_cycles(Chart::new(&today()).patient("1958-02-01"), Some(70.0)),
        75.0,
    );
    let body = sign_and_select(&svc, &chart).await;
    assert!(rule_ids(&body).is_empty(), "{:?}", rule_ids(&body));
    svc.stop().await;
}

// ---- ORD-19 ------------------------------------------------------------------------------

// TMC 3 (VA): agents, doses including the cumulative anthracycline dose, and response of
// earlier systemic therapy are to be ascertained. The example: a doxorubicin order
// after six cycles charted without doses got no card.
#[tokio::test]
async fn ord19_six_cycles_charted_without_doses_warn_and_list_the_records_tmc3() {
    let svc = Service::default().await;
    let body = sign_and_select(
        &svc,
        &doxorubicin_draft(six_cycles(lms_chart(), None), 75.0),
    )
    .await;
    assert!(!has(&body, "ORD-14"), "{:?}", rule_ids(&body));
    let c = card(&body, "ORD-19");
    assert_eq!(c["indicator"], "warning");
    assert!(!c["overrideReasons"].as_array().unwrap().is_empty());
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("establish it before ordering")
    );
    let detail = c["detail"].as_str().unwrap();
    let line = detail
        .lines()
        .find(|l| l.contains("without an established dose"))
        .unwrap_or_else(|| panic!("no record list: {detail}"));
    assert!(line.starts_with("- Doxorubicin records"), "{line}");
    for i in 0..6 {
        let shown = (Utc::now().date_naive() - Days::new(480 - i * 21))
            .format("%-d %b %Y")
            .to_string();
        assert!(line.contains(&shown), "{line}");
    }
    assert!(!line.contains("MedicationAdministration"), "{line}");
    assert!(parameters(c).contains(&"doxorubicin_lifetime_max_mg_m2".to_owned()));
    // A history statement only (doxorubicin for an earlier cancer, no administrations).
    let chart = doxorubicin_draft(
        lms_chart().medication_statement(&ago(4000), &ago(3900), "3639", "doxorubicin"),
        75.0,
    );
    let body = sign_and_select(&svc, &chart).await;
    let t = text_of(card(&body, "ORD-19"));
    assert!(t.contains("statement"), "{t}");
    // A dose in mg without a body-surface area recorded before it.
    let chart = doxorubicin_draft(
        lms_chart().administration(&ago(300), "3639", "doxorubicin", Some((120.0, "mg"))),
        75.0,
    );
    let body = sign_and_select(&svc, &chart).await;
    let t = text_of(card(&body, "ORD-19"));
    assert!(t.contains("no body surface area"), "{t}");
    let shown = (Utc::now().date_naive() - Days::new(300))
        .format("%-d %b %Y")
        .to_string();
    assert!(t.contains(&shown), "{t}");
    assert!(
        !t.contains(&format!("{shown} ({shown})")),
        "the date once: {t}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn ord19_is_silent_without_prior_exposure_and_with_every_dose_established() {
    let svc = Service::default().await;
    let none = sign_and_select(&svc, &doxorubicin_draft(lms_chart(), 75.0)).await;
    assert!(!has(&none, "ORD-19"), "{:?}", rule_ids(&none));
    let dosed = sign_and_select(
        &svc,
        &doxorubicin_draft(six_cycles(lms_chart(), Some(50.0)), 75.0),
    )
    .await;
    assert!(!has(&dosed, "ORD-19"), "{:?}", rule_ids(&dosed));
    // Not an anthracycline order.
    let ifosfamide = six_cycles(lms_chart(), None).draft_medication(
        "5657",
        "ifosfamide",
        Some((2000.0, "mg/m2")),
        None,
    );
    let body = sign_and_select(&svc, &ifosfamide).await;
    assert!(!has(&body, "ORD-19"), "{:?}", rule_ids(&body));
    svc.stop().await;
}

#[tokio::test]
async fn ord19_fires_when_prior_exposure_is_unknown_because_medication_records_were_set_aside() {
    let svc = Service::default().await;
    // The one anthracycline record fails validation: exposure is unknown, not "none".
    let body = sign_and_select(
        &svc,
        &doxorubicin_draft(set_aside_administration(lms_chart()), 75.0),
    )
    .await;
    assert!(has(&body, "DATA-02"), "{:?}", rule_ids(&body));
    let c = card(&body, "ORD-19");
    assert!(c["summary"].as_str().unwrap().contains("unknown"), "{c:#}");
    let unknown = c["extension"][format!("{EXT}/unknown")].as_array().unwrap();
    assert!(
        unknown.iter().any(|u| u["fact"] == "prior_anthracycline"),
        "{unknown:?}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn ord19_fires_when_medication_records_could_not_be_had() {
    let svc = Service::default().await;
    // The EHR answered the administrations key with an OperationOutcome (no fhirServer to
    // retry): the service degrades (DATA-04), and "no anthracycline recorded" is not claimed.
    let mut req = doxorubicin_draft(lms_chart(), 75.0).hook_request("order-sign");
    req["prefetch"]["medicationAdministrations"] = json!({"resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}]});
    let (status, body) = svc.post_json("/cds-services/rps-order-sign", &req).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    assert!(has(&body, "DATA-04"), "{:?}", rule_ids(&body));
    let c = card(&body, "ORD-19");
    assert!(c["summary"].as_str().unwrap().contains("unknown"), "{c:#}");
    svc.stop().await;
}

// ---- ORD-20 ------------------------------------------------------------------------------

/// Cardiomyopathy (SCT 85898001) recorded as a Condition.
fn cardiomyopathy(chart: Chart) -> Chart {
    chart.condition_coded(&ago(400), cc(SCT, "85898001", "Cardiomyopathy"))
}

fn ifosfamide_draft(chart: Chart) -> Chart {
    chart.draft_medication("5657", "ifosfamide", Some((2000.0, "mg/m2")), None)
}

// TMC 17 (IVA): the evaluation includes physiologic sequelae of earlier treatment such as
// cardiomyopathy or impaired kidney function. Thresholds EXT: LVEF lower limit of normal,
// KDIGO eGFR.
#[tokio::test]
async fn ord20_cardiomyopathy_with_an_anthracycline_and_renal_impairment_with_ifosfamide_tmc17() {
    let svc = Service::default().await;
    let body = sign_and_select(&svc, &doxorubicin_draft(cardiomyopathy(lms_chart()), 75.0)).await;
    let c = card(&body, "ORD-20");
    assert_eq!(c["indicator"], "warning");
    assert!(!c["overrideReasons"].as_array().unwrap().is_empty());
    assert!(
        c["source"]["label"]
            .as_str()
            .unwrap()
            .contains("st. 17 (IVA)"),
        "{c:#}"
    );
    // A coded Condition decided it: no threshold shown.
    assert!(!parameters(c).contains(&"lvef_min_percent".to_owned()));
    // An LVEF below the lower limit decided it: the threshold is shown.
    let body = sign_and_select(
        &svc,
        &doxorubicin_draft(lms_chart().lvef(&ago(20), 40.0), 75.0),
    )
    .await;
    let c = card(&body, "ORD-20");
    assert!(
        parameters(c).contains(&"lvef_min_percent".to_owned()),
        "{c:#}"
    );
    // eGFR 45 with an ifosfamide order.
    let body = sign_and_select(&svc, &ifosfamide_draft(lms_chart().egfr(&ago(20), 45.0))).await;
    let c = card(&body, "ORD-20");
    assert!(parameters(c).contains(&"egfr_min".to_owned()), "{c:#}");
    assert!(text_of(c).contains("ifosfamide"), "{}", text_of(c));
    svc.stop().await;
}

#[tokio::test]
async fn ord20_is_silent_for_a_normal_lvef_and_for_a_sequela_that_does_not_concern_the_agent() {
    let svc = Service::default().await;
    let normal = doxorubicin_draft(lms_chart().lvef(&ago(20), 60.0), 75.0);
    let body = sign_and_select(&svc, &normal).await;
    assert!(!has(&body, "ORD-20"), "{:?}", rule_ids(&body));
    let ifo_heart = ifosfamide_draft(cardiomyopathy(lms_chart()));
    let body = sign_and_select(&svc, &ifo_heart).await;
    assert!(!has(&body, "ORD-20"), "{:?}", rule_ids(&body));
    let dox_kidney = doxorubicin_draft(lms_chart().egfr(&ago(20), 45.0), 75.0);
    let body = sign_and_select(&svc, &dox_kidney).await;
    assert!(!has(&body, "ORD-20"), "{:?}", rule_ids(&body));
    svc.stop().await;
}

#[tokio::test]
async fn ord20_is_silent_when_the_lvef_record_was_set_aside() {
    let svc = Service::default().await;
    let chart = doxorubicin_draft(
        lms_chart()
            .lvef(&ago(20), 40.0)
            .tweak(|o| o["status"] = json!(3)),
        75.0,
    );
    let body = sign_and_select(&svc, &chart).await;
    assert!(has(&body, "DATA-02"), "{:?}", rule_ids(&body));
    assert!(!has(&body, "ORD-20"), "{:?}", rule_ids(&body));
    // Unknown is not "none": an olaratumab order then gets no doxorubicin suggestion.
    let chart = olaratumab_draft(
        lms_chart()
            .lvef(&ago(20), 40.0)
            .tweak(|o| o["status"] = json!(3)),
    );
    let body = sign_and_select(&svc, &chart).await;
    let c = card(&body, "ORD-15");
    assert!(!creates_anything(c), "{c:#}");
    assert!(text_of(c).contains("unknown"), "{}", text_of(c));
    svc.stop().await;
}

// ---- ORD-13 / ORD-15 ---------------------------------------------------------------------

// TMC 40 (IIB, superseded: olaratumab withdrawn in 2019) and TMC 3 / TMC 17: doxorubicin is
// suggested instead only for a patient who can safely receive it.
#[tokio::test]
async fn ord15_suggests_doxorubicin_only_without_prior_anthracycline_or_cardiomyopathy() {
    let svc = Service::default().await;
    // No anthracycline before, no cardiac sequela: remove, or replace with doxorubicin.
    let body = sign_and_select(&svc, &olaratumab_draft(lms_chart())).await;
    let c = card(&body, "ORD-15");
    assert_eq!(c["indicator"], "critical");
    assert_eq!(labels(c).len(), 2, "{:?}", labels(c));
    assert!(creates_anything(c));
    assert_eq!(c["selectionBehavior"], "at-most-one");
    // The example: 420 mg/m² doxorubicin before. Remove only, and say why.
    let body = sign_and_select(&svc, &olaratumab_draft(six_cycles(lms_chart(), Some(70.0)))).await;
    let c = card(&body, "ORD-15");
    assert_eq!(labels(c).len(), 1, "{:?}", labels(c));
    assert!(!creates_anything(c), "{c:#}");
    assert_eq!(c["selectionBehavior"], "any");
    let t = text_of(c);
    assert!(t.contains("Doxorubicin is not suggested"), "{t}");
    assert!(t.contains("at least 420 mg/m²"), "{t}");
    assert!(t.contains("next line"), "{t}");
    // Cardiomyopathy recorded: remove only.
    let body = sign_and_select(&svc, &olaratumab_draft(cardiomyopathy(lms_chart()))).await;
    let c = card(&body, "ORD-15");
    assert!(!creates_anything(c), "{c:#}");
    svc.stop().await;
}

#[tokio::test]
async fn ord15_does_not_suggest_doxorubicin_when_prior_exposure_is_unknown() {
    let svc = Service::default().await;
    let body = sign_and_select(
        &svc,
        &olaratumab_draft(set_aside_administration(lms_chart())),
    )
    .await;
    let c = card(&body, "ORD-15");
    assert!(!creates_anything(c), "{c:#}");
    assert!(text_of(c).contains("unknown"), "{}", text_of(c));
    svc.stop().await;
}

// TMC 42 (IA): gemcitabine + docetaxel first line is no better than doxorubicin and more
// toxic; TMC 17 (IVA) for the cardiac sequela that rules doxorubicin out.
#[tokio::test]
async fn ord13_offers_doxorubicin_only_when_it_is_safe_tmc42() {
    let svc = Service::default().await;
    let gem_doc = |chart: Chart| {
        chart
            .draft_medication("12574", "gemcitabine", Some((900.0, "mg/m2")), None)
            .draft_medication("72962", "docetaxel", Some((100.0, "mg/m2")), None)
    };
    let body = sign_and_select(&svc, &gem_doc(lms_chart())).await;
    let c = card(&body, "ORD-13");
    assert!(creates_anything(c), "{c:#}");
    assert_eq!(c["selectionBehavior"], "any");
    // With cardiomyopathy: no doxorubicin; removal only, with the reason.
    let body = sign_and_select(&svc, &gem_doc(cardiomyopathy(lms_chart()))).await;
    let c = card(&body, "ORD-13");
    assert!(!creates_anything(c), "{c:#}");
    assert_eq!(labels(c).len(), 1);
    assert!(labels(c)[0].starts_with("Remove the draft order"));
    assert!(text_of(c).contains("cardiomyopathy"), "{}", text_of(c));
    assert_eq!(c["selectionBehavior"], "any");
    // Near miss: docetaxel missing, not the combination.
    let body = sign_and_select(
        &svc,
        &lms_chart().draft_medication("12574", "gemcitabine", Some((900.0, "mg/m2")), None),
    )
    .await;
    assert!(!has(&body, "ORD-13"), "{:?}", rule_ids(&body));
    svc.stop().await;
}

// ---- ORD-17 ------------------------------------------------------------------------------

/// Synchronous lung metastases of an unresected primary (MET-02 fails a criterion), LMS.
fn synchronous_chart(morphology: hist::Morphology) -> Chart {
    Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis(&ago(60), morphology)
        .grade(&ago(55), 2)
        .metastasis(&ago(40), Site::Lung)
        .ecog(&ago(10), 1)
        .ct_chest_abdomen_pelvis(&ago(8))
}

fn fdg_pet_draft(chart: Chart) -> Chart {
    chart.draft_service(cc(SCT, "443271005", "FDG PET-CT"), None, None)
}

fn with_reason(chart: Chart, reason: &str) -> Chart {
    let reason = reason.to_owned();
    chart.tweak_draft(move |s| s["reasonCode"] = json!([{"text": reason}]))
}

// TMC 10 (VA): routine bone imaging is unnecessary except for SFT; TMC 10 (IVB): PET helps
// when other imaging is equivocal or to evaluate response; TMC 27 (IVA): staging before
// definitive treatment of lung metastases.
#[tokio::test]
async fn ord17_fires_on_routine_pet_and_is_silent_for_equivocal_lesions_or_response_tmc10() {
    let svc = Service::default().await;
    let routine = sign_and_select(&svc, &fdg_pet_draft(synchronous_chart(hist::LMS))).await;
    let c = card(&routine, "ORD-17");
    assert_eq!(c["indicator"], "info");
    // Near miss: a reason that is neither equivocal lesions nor response assessment.
    let staging = sign_and_select(
        &svc,
        &with_reason(fdg_pet_draft(synchronous_chart(hist::LMS)), "Staging"),
    )
    .await;
    assert!(has(&staging, "ORD-17"), "{:?}", rule_ids(&staging));
    for reason in [
        "Equivocal pulmonary nodules on CT",
        "Response assessment after three cycles",
    ] {
        let body = sign_and_select(
            &svc,
            &with_reason(fdg_pet_draft(synchronous_chart(hist::LMS)), reason),
        )
        .await;
        assert!(!has(&body, "ORD-17"), "{reason}: {:?}", rule_ids(&body));
    }
    // SFT: bone imaging is warranted (as v1).
    let sft = sign_and_select(&svc, &fdg_pet_draft(synchronous_chart(hist::SFT))).await;
    assert!(!has(&sft, "ORD-17"), "{:?}", rule_ids(&sft));
    svc.stop().await;
}

#[tokio::test]
async fn ord17_is_silent_beside_a_lung_ablation_order_tmc27() {
    let svc = Service::default().await;
    let chart = fdg_pet_draft(synchronous_chart(hist::LMS)).draft_service(
        text("Radiofrequency ablation of lung metastasis"),
        None,
        Some("Condition/met-1"),
    );
    let body = sign_and_select(&svc, &chart).await;
    assert!(!has(&body, "ORD-17"), "{:?}", rule_ids(&body));
    let silenced = body["extension"][format!("{EXT}/silenced")]
        .as_array()
        .unwrap();
    assert!(
        silenced
            .iter()
            .any(|s| s["rule"] == "ORD-17" && s["by"] == "ord17-never-contradicts-met05"),
        "{silenced:?}"
    );
    // Near miss: the ablation is of a liver metastasis and the lung is not involved.
    let liver = Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis(&ago(60), hist::LMS)
        .grade(&ago(55), 2)
        .metastasis(&ago(40), Site::Liver)
        .ecog(&ago(10), 1)
        .ct_chest_abdomen_pelvis(&ago(8));
    let chart = fdg_pet_draft(liver).draft_service(
        text("Microwave ablation of liver metastasis"),
        None,
        Some("Condition/met-1"),
    );
    let body = sign_and_select(&svc, &chart).await;
    assert!(has(&body, "ORD-17"), "{:?}", rule_ids(&body));
    svc.stop().await;
}

#[tokio::test]
async fn ord17_is_silent_when_the_histology_is_unknown() {
    let svc = Service::default().await;
    let chart = Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis_coded(
            &ago(60),
            cc(ICD10CM, "C48.0", "Malignant neoplasm of retroperitoneum"),
            Some(retroperitoneum()),
        )
        .metastasis(&ago(40), Site::Lung)
        .ct_chest_abdomen_pelvis(&ago(8));
    let body = sign_and_select(&svc, &fdg_pet_draft(chart)).await;
    assert!(!has(&body, "ORD-17"), "{:?}", rule_ids(&body));
    svc.stop().await;
}
