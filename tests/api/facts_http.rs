//! The v2 facts (docs/clinical-spec.md §4.1) as a client sees them: charts posted to the real
//! service over HTTP, cards read from the response. Symptoms need an assessment and are read
//! negation-aware; recurrence episodes count whatever their current status; the prior
//! anthracycline dose is a lower bound that a set-aside record does not hide.

use crate::support::chart::*;
use crate::support::http::{Service, card, rule_ids};
use crate::support::request::{ago, today};
use serde_json::{Value, json};

/// A first local recurrence of a completely resected, low-grade retroperitoneal sarcoma:
/// unifocal, resectable, ECOG 1, no rupture, biopsied, staged with a current CT. Everything
/// the re-resection assessment needs is known except the symptoms.
fn recurrence_chart(morphology: hist::Morphology) -> Chart {
    Chart::new(&today())
        .patient("1960-05-01")
        .diagnosis(&ago(1600), morphology)
        .grade(&ago(1580), 1)
        .primary_resection(&ago(1560), Some("R0"))
        .rupture(&ago(1560), "Procedure/resection-1", false)
        .recurrence(&ago(40))
        .focality(&ago(35), 1, false)
        .resectability(&ago(35), "resectable")
        .ecog(&ago(30), 1)
        .biopsy(&ago(30))
        .ct_chest_abdomen_pelvis(&ago(20))
}

fn verdicts(body: &Value) -> Vec<String> {
    rule_ids(body)
        .into_iter()
        .filter(|r| ["LR-00", "LR-01", "LR-02", "LR-03", "LR-04"].contains(&r.as_str()))
        .collect()
}

#[tokio::test]
async fn negated_symptom_text_is_an_assessment_that_found_none() {
    let svc = Service::default().await;
    // The catalogue's own example: an asymptomatic WD-LPS recurrence gets observation
    // (LR-03), not re-resection.
    let chart = recurrence_chart(hist::WDLPS)
        .symptom_note(&ago(10), "Denies abdominal pain; no obstructive symptoms");
    let body = svc.call_chart("patient-view", &chart).await;
    assert_eq!(verdicts(&body), ["LR-03"], "{:?}", rule_ids(&body));
    for note in [
        "denies pain",
        "No obstruction.",
        "Painless abdominal mass",
        "Pain-free since the last visit",
    ] {
        let chart = recurrence_chart(hist::WDLPS).symptom_note(&ago(10), note);
        let body = svc.call_chart("patient-view", &chart).await;
        assert_eq!(verdicts(&body), ["LR-03"], "{note}: {:?}", rule_ids(&body));
    }
    // Affirmative text is a symptom: re-resection candidacy, not observation.
    for note in ["Painful abdominal mass", "Abdominal pain since May"] {
        let chart = recurrence_chart(hist::WDLPS).symptom_note(&ago(10), note);
        let body = svc.call_chart("patient-view", &chart).await;
        assert_eq!(verdicts(&body), ["LR-04"], "{note}: {:?}", rule_ids(&body));
    }
    // Ambiguous text is unknown, never absent.
    let chart = recurrence_chart(hist::WDLPS).symptom_note(&ago(10), "possible bowel obstruction");
    let body = svc.call_chart("patient-view", &chart).await;
    assert_eq!(verdicts(&body), ["LR-00"], "{:?}", rule_ids(&body));
    svc.stop().await;
}

#[tokio::test]
async fn wd_lps_recurrence_without_a_symptom_assessment_gives_lr_00_naming_it() {
    let svc = Service::default().await;
    let body = svc
        .call_chart("patient-view", &recurrence_chart(hist::WDLPS))
        .await;
    assert_eq!(verdicts(&body), ["LR-00"], "{:?}", rule_ids(&body));
    let detail = card(&body, "LR-00")["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("symptom assessment"), "{detail}");
    // An RPS symptom assessment that found none, recent enough: observation.
    let body = svc
        .call_chart(
            "patient-view",
            &recurrence_chart(hist::WDLPS).symptom_assessment(&ago(5), false),
        )
        .await;
    assert_eq!(verdicts(&body), ["LR-03"], "{:?}", rule_ids(&body));
    // Too old an assessment does not establish the absence.
    let body = svc
        .call_chart(
            "patient-view",
            &recurrence_chart(hist::WDLPS).symptom_assessment(&ago(200), false),
        )
        .await;
    assert_eq!(verdicts(&body), ["LR-00"], "{:?}", rule_ids(&body));
    // For a DD-LPS recurrence symptoms do not decide the verdict.
    let body = svc
        .call_chart("patient-view", &recurrence_chart(hist::DDLPS))
        .await;
    assert_eq!(verdicts(&body), ["LR-04"], "{:?}", rule_ids(&body));
    svc.stop().await;
}

#[tokio::test]
async fn a_resolved_first_recurrence_makes_the_new_one_the_second() {
    let svc = Service::default().await;
    // First recurrence resected and charted resolved; a new one now.
    let chart = Chart::new(&today())
        .patient("1960-05-01")
        .diagnosis(&ago(2400), hist::DDLPS)
        .grade(&ago(2380), 2)
        .primary_resection(&ago(2360), Some("R0"))
        .rupture(&ago(2360), "Procedure/resection-1", false)
        .recurrence(&ago(1200))
        .clinical_status("resolved")
        .recurrence_resection(&ago(1150), 1, Some("R0"))
        .recurrence(&ago(40))
        .focality(&ago(35), 2, false)
        .resectability(&ago(35), "resectable")
        .ecog(&ago(30), 1)
        .biopsy(&ago(30))
        .ct_chest_abdomen_pelvis(&ago(20));
    let body = svc.call_chart("patient-view", &chart).await;
    assert_eq!(verdicts(&body), ["LR-04"], "{:?}", rule_ids(&body));
    let detail = card(&body, "LR-04")["detail"].as_str().unwrap().to_owned();
    // The recommendation text quotes all three figures; the patient's line gives one.
    assert!(
        detail.contains("second local recurrence: about 33 %"),
        "second recurrence: {detail}"
    );
    assert!(
        !detail.contains("first local recurrence: about 57 %"),
        "not the first-recurrence figure: {detail}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn the_cumulative_dose_alert_survives_an_unrelated_invalid_medication_record() {
    let svc = Service::default().await;
    // 6 × 70 mg/m² doxorubicin given; 75 mg/m² more is over 450 mg/m².
    let mut chart = recurrence_chart(hist::LMS);
    for i in 0..6 {
        chart = chart.doxorubicin(&ago(400 - i * 21), 70.0);
    }
    // A malformed ondansetron administration (a dose that is not a number): set aside by
    // validation.
    chart = chart
        .administration(&ago(300), "26225", "ondansetron", Some((8.0, "mg")))
        .tweak(|m| m["dosage"]["dose"]["value"] = json!("eight"))
        .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), None);
    let body = svc.call_chart("order-sign", &chart).await;
    let rules = rule_ids(&body);
    assert!(rules.contains(&"DATA-02".to_owned()), "{rules:?}");
    let ord14 = card(&body, "ORD-14");
    assert_eq!(ord14["indicator"], "critical");
    let summary = ord14["summary"].as_str().unwrap();
    // 420 given + 75 planned (a lower bound while the set-aside record's kind is unread).
    assert!(summary.contains("495"), "{summary}");
    svc.stop().await;
}

/// Metachronous lung metastases of a completely resected leiomyosarcoma, staged and fit
/// for surgery, stable on a current disease-status assessment (MET-11 v2 needs one); `n`
/// metastasis Conditions at distinct dates.
fn metastatic_chart(n: u64) -> Chart {
    let mut chart = Chart::new(&today())
        .patient("1958-02-01")
        .diagnosis(&ago(1500), hist::LMS)
        .grade(&ago(1480), 2)
        .primary_resection(&ago(1460), Some("R0"));
    for i in 0..n {
        chart = chart.metastasis(&ago(30 + i), Site::Lung);
    }
    chart
        .ecog(&ago(10), 0)
        .resectability(&ago(10), "resectable")
        .ct_chest_abdomen_pelvis(&ago(8))
        .bone_scan(&ago(8))
        .disease_status(&ago(8), "stable", None)
}

#[tokio::test]
async fn surveillance_and_observation_need_symptoms_known_absent_and_low_volume_proven() {
    let svc = Service::default().await;
    // Two lesions counted, symptoms assessed none: observation and surveillance fit.
    let chart = metastatic_chart(2)
        .lesion_count(&ago(8), 2)
        .symptom_assessment(&ago(8), false);
    let rules = rule_ids(&svc.call_chart("patient-view", &chart).await);
    assert!(
        rules.contains(&"MET-03".to_owned()) && rules.contains(&"MET-11".to_owned()),
        "{rules:?}"
    );
    // No symptom assessment: no symptom recorded is not "asymptomatic".
    let chart = metastatic_chart(2).lesion_count(&ago(8), 2);
    let rules = rule_ids(&svc.call_chart("patient-view", &chart).await);
    assert!(
        !rules.contains(&"MET-03".to_owned()) && !rules.contains(&"MET-11".to_owned()),
        "{rules:?}"
    );
    assert!(rules.contains(&"MET-02".to_owned()), "{rules:?}");
    // Two metastasis Conditions without a lesion count: low volume is not proven.
    let chart = metastatic_chart(2).symptom_assessment(&ago(8), false);
    let rules = rule_ids(&svc.call_chart("patient-view", &chart).await);
    assert!(!rules.contains(&"MET-11".to_owned()), "{rules:?}");
    // Six metastasis Conditions: at least six lesions, more than low volume allows, even
    // with a lower recorded count.
    let chart = metastatic_chart(6)
        .lesion_count(&ago(40), 3)
        .symptom_assessment(&ago(8), false);
    let body = svc.call_chart("patient-view", &chart).await;
    let rules = rule_ids(&body);
    assert!(!rules.contains(&"MET-11".to_owned()), "{rules:?}");
    let detail = card(&body, "MET-02")["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("high volume"), "{detail}");
    svc.stop().await;
}
