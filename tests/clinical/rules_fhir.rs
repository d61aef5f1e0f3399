//! End-to-end rule tests: FHIR charts → `clinical::build_picture` (+ `classify_draft_order`)
//! → `rules::evaluate`, with the embedded knowledge base's value sets. The charts follow the
//! published patient courses (TARPSWG metastatic RPS consensus figures 1 and 2, seed 001;
//! the repeat-resection case report, seed 003) with invented calendar dates.

use std::sync::OnceLock;

use crate::support::chart::*;
use crate::support::findings::check_against_knowledge;
use chrono::NaiveDate;
use rps_cds::clinical::{DraftOrder, Picture, classify_draft_order};
use rps_cds::fhir::InvalidResource;
use rps_cds::knowledge::{Hook, Indicator};
use rps_cds::knowledge::{Knowledge, Parameters, Section};
use rps_cds::rules::{Finding, RuleId, RuleInput, Suggestion, evaluate};
use serde_json::json;

fn kb() -> &'static Knowledge {
    static KB: OnceLock<Knowledge> = OnceLock::new();
    KB.get_or_init(|| Knowledge::embedded().expect("embedded knowledge base"))
}

/// The chart evaluated at `date` (data dated later is ignored by the picture).
fn at(chart: &Chart, date: &str) -> Chart {
    let mut c = chart.clone();
    let d: NaiveDate = date.parse().unwrap();
    c.as_of = d.and_hms_opt(12, 0, 0).unwrap().and_utc();
    c
}

struct Run {
    picture: Picture,
    orders: Vec<DraftOrder>,
    findings: Vec<Finding>,
}

fn run(chart: &Chart, hook: Hook) -> Run {
    let params = Parameters::default();
    let picture = chart.picture(&kb().terminology, &params);
    let orders: Vec<DraftOrder> = if hook.has_draft_orders() {
        chart
            .drafts
            .iter()
            .map(|o| classify_draft_order(o, &[], &picture, &kb().terminology, &params))
            .collect()
    } else {
        Vec::new()
    };
    let invalid: &[InvalidResource] = &chart.set_aside;
    let findings = evaluate(&RuleInput {
        picture: &picture,
        params: &params,
        hook,
        draft_orders: &orders,
        invalid_resources: invalid,
        invalid_draft_orders: &[],
        other_patient: &Default::default(),
        unavailable: &[],
    });
    check_against_knowledge(&findings, hook);
    Run {
        picture,
        orders,
        findings,
    }
}

impl Run {
    fn ids(&self) -> Vec<RuleId> {
        self.findings.iter().map(|f| f.rule).collect()
    }

    fn has(&self, id: impl Into<RuleId>) -> bool {
        let id = id.into();
        self.findings.iter().any(|f| f.rule == id)
    }

    fn get(&self, id: impl Into<RuleId>) -> &Finding {
        let id = id.into();
        self.findings
            .iter()
            .find(|f| f.rule == id)
            .unwrap_or_else(|| {
                panic!(
                    "{id} missing from {:?}\npicture: {:#?}\norders: {:#?}",
                    self.ids(),
                    self.picture,
                    self.orders
                )
            })
    }

    fn verdicts(&self) -> Vec<RuleId> {
        self.ids()
            .into_iter()
            .filter(|id| id.is_verdict() && id.section() == Section::LocalRecurrence)
            .collect()
    }
}

fn text(f: &Finding) -> String {
    f.statements.join("\n")
}

fn resection_code() -> serde_json::Value {
    cc(SCT, "387713003", "Surgical procedure")
}

// ---------------------------------------------------------------------------------------
// TARPSWG figure 1: recurrent multifocal grade 3 DD-LPS six months after an R1 primary
// resection; chemotherapy, complete resection of the recurrence, a second recurrence 20
// months later.

fn figure_1() -> Chart {
    Chart::new("2020-07-25")
        .patient("1961-03-02")
        .diagnosis("2019-12-01", hist::DDLPS)
        .grade("2020-01-20", 3)
        .primary_resection("2020-01-15", Some("R1"))
        .recurrence("2020-07-15")
        .focality("2020-07-16", 1, true)
        .ct_chest_abdomen_pelvis("2020-07-10")
        .ecog("2020-07-16", 1)
        // Epirubicin + ifosfamide, then complete resection of the recurrence.
        .administration("2020-08-01", "3995", "epirubicin", Some((75.0, "mg/m2")))
        .administration("2020-08-01", "5657", "ifosfamide", Some((9000.0, "mg/m2")))
        .recurrence_resection("2021-01-20", 1, Some("R0"))
        .ct_chest_abdomen_pelvis("2021-03-01")
        // Second intraperitoneal recurrence 20 months later.
        .ct_chest_abdomen_pelvis("2022-09-15")
        .recurrence("2022-09-20")
}

#[test]
fn figure_1_first_recurrence_multifocal_short_dfi() {
    let r = run(&figure_1(), Hook::PatientView);
    // One verdict: not a candidate for curative re-resection (multifocal).
    assert_eq!(r.verdicts(), [RuleId::Lr02]);
    let f = r.get(RuleId::Lr02);
    assert_eq!(f.indicator, Indicator::Warning);
    let t = text(f);
    assert!(t.contains("Reason: multifocal recurrence"), "{t}");
    // v2 (§4.3): LR-02 lists only the reasons that decided it.
    assert!(
        !t.contains("disease-free interval") && !t.contains("high grade"),
        "{t}"
    );
    // High-grade DD-LPS with DFI < 12 months: neoadjuvant systemic therapy (the patient got
    // epirubicin + ifosfamide).
    assert!(r.has(RuleId::Lr07));
    assert!(r.has(RuleId::Mdt01));
    assert!(
        r.has(RuleId::Work04),
        "no biopsy of the recurrence recorded"
    );
    assert!(
        !r.has(RuleId::Work01),
        "CT chest/abdomen/pelvis 15 days old"
    );
    assert!(!r.has(RuleId::Lr05) && !r.has(RuleId::Lr04));
}

#[test]
fn figure_1_resection_order_at_first_recurrence_is_questioned() {
    let chart = figure_1().draft_service(
        resection_code(),
        Some(retroperitoneum()),
        Some("Condition/recurrence-1"),
    );
    let r = run(&chart, Hook::OrderSign);
    let f = r.get(RuleId::Ord01);
    assert_eq!(f.draft_order.as_deref(), Some("ServiceRequest/sr-1"));
    assert!(f.suggestions.iter().any(|s| matches!(s,
        Suggestion::Replace { resource_id, order_template, .. }
            if resource_id == "ServiceRequest/sr-1" && *order_template == "medical-oncology-referral")));
    assert!(
        !r.has(RuleId::Mdt01),
        "patient-view rules stay off order-sign"
    );
}

#[test]
fn figure_1_after_complete_resection_of_the_recurrence() {
    // Three weeks after the R0 resection of the recurrence: adjuvant chemotherapy ordered
    // (the patient received two more cycles).
    let chart = at(&figure_1(), "2021-02-10")
        .draft_medication("3995", "epirubicin", Some((75.0, "mg/m2")), Some(1))
        .tweak_draft(|o| o["note"] = json!([{"text": "adjuvant, post-operative"}]));
    let r = run(&chart, Hook::OrderSign);
    let f = r.get(RuleId::Ord04);
    assert_eq!(f.indicator, Indicator::Warning);
    assert_eq!(f.draft_order.as_deref(), Some("MedicationRequest/mr-1"));
    let r = run(&at(&figure_1(), "2021-03-05"), Hook::PatientView);
    assert!(r.has(RuleId::Lr08), "{:?}", r.ids());
    assert!(
        !r.has(RuleId::Mdt01),
        "no evidence of disease after the resection"
    );
}

#[test]
fn figure_1_second_recurrence_shows_the_33_percent_figure() {
    let r = run(&at(&figure_1(), "2022-10-01"), Hook::PatientView);
    let verdicts = r.verdicts();
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let t = text(r.get(verdicts[0]));
    assert!(t.contains("33 %"), "{t}");
    assert!(
        t.contains("disease-free interval") && t.contains("(≥ 12 months)"),
        "DFI 20 months: {t}"
    );
}

// ---------------------------------------------------------------------------------------
// TARPSWG figure 2: grade 2 LMS with synchronous lung metastases found on pre-operative CT;
// doxorubicin + dacarbazine first; later progression in lungs and liver.

fn figure_2() -> Chart {
    Chart::new("2021-04-10")
        .patient("1955-01-20")
        .diagnosis("2021-03-01", hist::LMS)
        .grade("2021-03-05", 2)
        .ct_chest_abdomen_pelvis("2021-04-01")
        .metastasis("2021-04-01", Site::Lung)
        .metastasis("2021-04-01", Site::Lung)
        .ecog("2021-04-02", 0)
}

#[test]
fn figure_2_synchronous_lung_metastases_systemic_first() {
    let r = run(&figure_2(), Hook::PatientView);
    assert!(r.has(RuleId::Met01), "{:?}", r.ids());
    assert!(
        !r.has(RuleId::Met02),
        "MET-02 is for metachronous metastases"
    );
    let t = text(r.get(RuleId::Sys01));
    assert!(t.contains("doxorubicin + dacarbazine"), "{t}");
    assert!(r.has(RuleId::Mdt02) && r.has(RuleId::Mdt03));
}

#[test]
fn figure_2_orders_at_presentation() {
    let chart = figure_2()
        // Resection of the primary.
        .draft_service(
            resection_code(),
            Some(retroperitoneum()),
            Some("Condition/dx"),
        )
        // Pulmonary metastasectomy.
        .draft_service(resection_code(), None, Some("Condition/met-1"))
        // Ifosfamide for a leiomyosarcoma.
        .draft_medication("5657", "ifosfamide", Some((9000.0, "mg/m2")), None);
    let r = run(&chart, Hook::OrderSign);
    let f = r.get(RuleId::Ord06);
    assert_eq!(f.draft_order.as_deref(), Some("ServiceRequest/sr-2"));
    assert!(r.has(RuleId::Ord08), "no pulmonary function tests recorded");
    let f = r.get(RuleId::Ord09);
    assert_eq!(f.draft_order.as_deref(), Some("MedicationRequest/mr-1"));
    let f = r.get(RuleId::Ord18);
    assert_eq!(f.draft_order.as_deref(), Some("ServiceRequest/sr-1"));
}

#[test]
fn figure_2_progression_after_two_lines() {
    let chart = figure_2()
        .doxorubicin("2021-04-15", 60.0)
        .administration("2021-04-15", "3098", "dacarbazine", Some((750.0, "mg/m2")))
        .doxorubicin("2021-05-06", 60.0)
        .administration("2021-06-01", "12574", "gemcitabine", Some((900.0, "mg/m2")))
        .administration("2021-08-20", "12574", "gemcitabine", Some((900.0, "mg/m2")))
        .primary_resection("2021-10-01", Some("R0"))
        .ct_chest_abdomen_pelvis("2021-12-01")
        .metastasis("2021-12-01", Site::Liver)
        .disease_status("2021-12-01", "worsened", Some("distant"));
    let pv = run(&at(&chart, "2021-12-10"), Hook::PatientView);
    let t = text(pv.get(RuleId::Sys02));
    assert!(t.contains("trabectedin") && t.contains("pazopanib"), "{t}");
    assert!(
        !t.contains("Option: gemcitabine") && !t.contains("Option: dacarbazine"),
        "{t}"
    );
    assert!(!t.contains("eribulin") && !t.contains("ifosfamide"), "{t}");
    assert!(!pv.has(RuleId::Met11), "progressing disease");
    // Re-challenge with doxorubicin: 120 given + 5 × 75 planned = 495 > 450.
    let chart = at(&chart, "2021-12-10").draft_medication(
        "3639",
        "doxorubicin",
        Some((75.0, "mg/m2")),
        Some(4),
    );
    let r = run(&chart, Hook::OrderSign);
    let f = r.get(RuleId::Ord14);
    assert_eq!(f.indicator, Indicator::Critical);
    assert!(text(f).contains("495"), "{}", text(f));
    // Four cycles (120 + 300 = 420) stay under the limit.
    let chart = at(&figure_2(), "2021-12-10")
        .doxorubicin("2021-04-15", 60.0)
        .doxorubicin("2021-05-06", 60.0)
        .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), Some(3));
    assert!(!run(&chart, Hook::OrderSign).has(RuleId::Ord14));
}

// ---------------------------------------------------------------------------------------
// Case report (seed 003): retroperitoneal LMS completely resected in 1991; liver metastases
// 24 years later, resected; liver metastases again two years after that.

fn case_report() -> Chart {
    Chart::new("2015-03-15")
        .patient("1939-02-01")
        .diagnosis("1991-05-01", hist::LMS)
        .primary_resection("1991-06-01", Some("R0"))
        .rupture("1991-06-01", "Procedure/resection-1", false)
        .ct_chest_abdomen_pelvis("2015-03-01")
        .metastasis("2015-03-01", Site::Liver)
        .lesion_count("2015-03-02", 4)
        .ecog("2015-03-05", 1)
        .resectability("2015-03-05", "resectable")
        .bone_scan("2015-03-03")
        .metastasectomy("2015-04-01", 1, Some("R0"))
        .ct_chest_abdomen_pelvis("2015-09-01")
        .ct_chest_abdomen_pelvis("2017-06-01")
        .metastasis("2017-06-01", Site::Liver)
}

#[test]
fn case_report_metachronous_liver_metastases_after_long_dfi() {
    // The report does not state symptoms: a period of observation (MET-03) needs them known
    // absent, so it is silent until a symptom assessment records none (§4.4).
    let r = run(&case_report(), Hook::PatientView);
    assert!(
        r.has(RuleId::Met02) && !r.has(RuleId::Met03),
        "{:?}",
        r.ids()
    );
    let r = run(
        &case_report().symptom_assessment("2015-03-05", false),
        Hook::PatientView,
    );
    let f = r.get(RuleId::Met02);
    assert_eq!(f.indicator, Indicator::Info, "{}", text(f));
    let t = text(f);
    assert!(
        t.contains("Favourable biology: disease-free interval"),
        "{t}"
    );
    assert!(t.contains("low volume"), "{t}");
    assert!(r.has(RuleId::Met03));
    assert!(
        r.has(RuleId::Met04),
        "liver metastases: ablation alternative"
    );
    assert!(!r.has(RuleId::Met01) && !r.has(RuleId::Met05));
}

#[test]
fn case_report_surveillance_after_metastasectomy_and_repeat_metastases() {
    // A year after the liver resection with the last imaging 9 months old: overdue.
    let r = run(&at(&case_report(), "2016-06-01"), Hook::PatientView);
    assert!(r.has(RuleId::Met08), "{:?}", r.ids());
    // Liver metastases again in 2017: repeat metastasectomy only with favourable biology.
    let r = run(&at(&case_report(), "2017-06-15"), Hook::PatientView);
    let f = r.get(RuleId::Met09);
    assert!(
        text(f).contains("For: disease-free interval"),
        "{}",
        text(f)
    );
}

// ---------------------------------------------------------------------------------------
// Scope and data quality from FHIR

#[test]
fn out_of_scope_histology_from_fhir() {
    let chart = Chart::new("2026-11-01")
        .patient("1960-01-01")
        .diagnosis("2026-01-01", hist::GIST)
        .metastasis("2026-10-01", Site::Liver);
    let r = run(&chart, Hook::PatientView);
    assert_eq!(r.ids(), [RuleId::Scope01]);
}

#[test]
fn no_diagnosis_but_set_aside_resources_reports_data_02_only() {
    let chart = Chart::new("2026-11-01")
        .patient("1960-01-01")
        .metastasis("2026-10-01", Site::Lung)
        .set_aside("Condition");
    let r = run(&chart, Hook::PatientView);
    assert_eq!(r.ids(), [RuleId::Data02]);
}

#[test]
fn fna_of_an_undiagnosed_retroperitoneal_mass() {
    let chart = Chart::new("2026-11-01")
        .patient("1960-01-01")
        .draft_service(
            cc(SCT, "15719007", "Fine needle aspiration"),
            Some(retroperitoneum()),
            None,
        );
    let r = run(&chart, Hook::OrderSelect);
    let f = r.get(RuleId::Ord16);
    assert!(f.suggestions.iter().any(|s| matches!(s,
        Suggestion::Replace { order_template, .. } if *order_template == "core-needle-biopsy")));
    // FNA of a known sarcoma's recurrence is fine.
    let chart = figure_1().draft_service(
        cc(SCT, "15719007", "Fine needle aspiration"),
        Some(retroperitoneum()),
        None,
    );
    assert!(!run(&chart, Hook::OrderSelect).has(RuleId::Ord16));
}
