//! Fact extraction (src/clinical) against docs/input-profile.md: every encoding, latest-wins,
//! exclusions, closed and open world, set-aside resources, derived facts, draft orders.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::support::chart::*;
use crate::support::chart_clinical::ICD10;
use rps_cds::clinical::*;
use rps_cds::knowledge::{Knowledge, Parameters, Terminology};
use serde_json::{Value, json};

/// The reviewed value sets shipped in `knowledge/valuesets/`.
fn t() -> &'static Terminology {
    static KB: OnceLock<Knowledge> = OnceLock::new();
    &KB.get_or_init(|| Knowledge::embedded().expect("embedded knowledge base"))
        .terminology
}

fn p() -> Parameters {
    Parameters::default()
}

fn picture(chart: &Chart) -> Picture {
    chart.picture(t(), &p())
}

fn date(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

fn read_from<T>(f: &Fact<T>) -> ReadFrom {
    f.provenance().expect("known").read_from
}

/// An RPS patient with a resected DD-LPS, the base of most scenarios.
fn base() -> Chart {
    Chart::new("2026-11-01")
        .patient("1961-04-02")
        .diagnosis("2023-01-10", hist::DDLPS)
        .primary_resection("2023-02-01", Some("R0"))
}

fn classify(chart: &Chart, i: usize) -> DraftOrder {
    let pic = picture(chart);
    classify_draft_order(&chart.drafts[i], &[], &pic, t(), &p())
}

// ---- Diagnosis and histology encodings ------------------------------------------------

#[test]
fn mcode_diagnosis_gives_histology_site_and_age() {
    let pic = picture(&base());
    let dx = pic.diagnosis.as_ref().expect("RPS diagnosis");
    assert_eq!(dx.condition, "Condition/dx");
    assert_eq!(dx.date, Some(date("2023-01-10")));
    assert_eq!(pic.histology.value(), Some(&Histology::DdLiposarcoma));
    assert_eq!(read_from(&pic.histology), ReadFrom::Code);
    assert_eq!(pic.site_retroperitoneal.value(), Some(&true));
    assert_eq!(pic.age_years.value(), Some(&65));
    assert!(pic.is_in_scope());
    assert_eq!(pic.patient.as_deref(), Some("Patient/p1"));
}

#[test]
fn icd10_who_and_icdo3_topography_are_rps_diagnoses() {
    for system in [ICD10, ICDO3] {
        let chart = Chart::new("2026-11-01").diagnosis_coded(
            "2024-01-01",
            cc(system, "C48.0", "Retroperitoneum"),
            None,
        );
        let pic = picture(&chart);
        assert!(pic.diagnosis.is_some(), "{system}");
        assert_eq!(pic.histology.unknown_reason(), Some(&Unknown::NotRecorded));
    }
}

#[test]
fn sarcoma_code_needs_a_retroperitoneal_body_site() {
    let with_site = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        cc(SCT, "424952003", "Soft tissue sarcoma"),
        Some(retroperitoneum()),
    );
    assert!(picture(&with_site).diagnosis.is_some());
    let without = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        cc(SCT, "424952003", "Soft tissue sarcoma"),
        Some(cc(SCT, "61685007", "Lower limb structure")),
    );
    let pic = picture(&without);
    assert!(pic.diagnosis.is_none());
    assert!(!pic.is_in_scope());
}

#[test]
fn histology_code_in_condition_code_sct_and_icdo3() {
    let sct = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        cc(SCT, "1163022006", "Leiomyosarcoma"),
        Some(retroperitoneum()),
    );
    assert_eq!(
        picture(&sct).histology.value(),
        Some(&Histology::Leiomyosarcoma)
    );
    let icdo = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        cc(ICDO3, "9540/3", "MPNST"),
        Some(retroperitoneum()),
    );
    assert_eq!(picture(&icdo).histology.value(), Some(&Histology::Mpnst));
}

#[test]
fn histology_observation_loinc_31206_6() {
    let chart = Chart::new("2026-11-01")
        .diagnosis_coded("2024-01-01", cc(ICD10CM, "C48.0", "Retroperitoneum"), None)
        .histology_observation("2024-01-05", cc(ICDO3, hist::SFT.0, "SFT"));
    let pic = picture(&chart);
    assert_eq!(
        pic.histology.value(),
        Some(&Histology::SolitaryFibrousTumor)
    );
    assert_eq!(
        pic.histology.provenance().unwrap().resources,
        vec!["Observation/histology-1"]
    );
}

#[test]
fn text_fallbacks_for_diagnosis_and_histology() {
    let chart = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        text("Retroperitoneal dedifferentiated liposarcoma"),
        None,
    );
    let pic = picture(&chart);
    let dx = pic.diagnosis.as_ref().expect("diagnosis from text");
    assert_eq!(dx.read_from, ReadFrom::Text);
    assert_eq!(pic.histology.value(), Some(&Histology::DdLiposarcoma));
    assert_eq!(read_from(&pic.histology), ReadFrom::Text);
    assert_eq!(
        pic.histology.provenance().unwrap().describe(),
        "Condition/dx, from text, 2024-01-01"
    );
}

#[test]
fn ups_abbreviation_matches_only_as_a_whole_word() {
    let ups = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        json!({"coding": [{"system": SCT, "code": "1187396000", "display": "Sarcoma"}], "text": "Sarcoma (UPS)"}),
        Some(retroperitoneum()),
    );
    assert_eq!(picture(&ups).histology.value(), Some(&Histology::Ups));
    let groups = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        json!({"coding": [{"system": SCT, "code": "1187396000", "display": "Sarcoma"}], "text": "Sarcoma, risk groups pending"}),
        Some(retroperitoneum()),
    );
    assert!(picture(&groups).histology.unknown_reason().is_some());
}

#[test]
fn unspecified_liposarcoma_takes_subtype_from_text() {
    let wd = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        json!({"coding": [{"system": SCT, "code": "1162815008", "display": "Liposarcoma"}], "text": "Well-differentiated liposarcoma"}),
        Some(retroperitoneum()),
    );
    let pic = picture(&wd);
    assert_eq!(pic.histology.value(), Some(&Histology::WdLiposarcoma));
    assert_eq!(read_from(&pic.histology), ReadFrom::Text);
    let nos = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        cc(SCT, "1162815008", "Liposarcoma"),
        Some(retroperitoneum()),
    );
    assert_eq!(
        picture(&nos).histology.value(),
        Some(&Histology::LiposarcomaOther)
    );
}

#[test]
fn atypical_lipomatous_tumour_is_wd_liposarcoma_not_benign() {
    let chart = Chart::new("2026-11-01").diagnosis_coded(
        "2024-01-01",
        text("Atypical lipomatous tumour of the retroperitoneum"),
        Some(retroperitoneum()),
    );
    // Text-only histology: ALT counts as WD-LPS (profile), found before the benign "lipoma".
    assert_eq!(
        picture(&chart).histology.value(),
        Some(&Histology::WdLiposarcoma)
    );
}

#[test]
fn out_of_scope_histology_is_reported() {
    let chart = Chart::new("2026-11-01")
        .patient("1970-01-01")
        .diagnosis("2024-01-01", hist::GIST);
    let pic = picture(&chart);
    assert_eq!(pic.histology.value(), Some(&Histology::Gist));
    assert!(!Histology::Gist.is_in_scope());
    assert!(!pic.is_in_scope());
}

#[test]
fn latest_histology_wins_dedifferentiation_at_recurrence() {
    let chart = Chart::new("2026-11-01")
        .diagnosis("2020-01-01", hist::WDLPS)
        .histology_observation("2025-06-01", cc(ICDO3, "8858/3", "DDLPS"));
    assert_eq!(
        picture(&chart).histology.value(),
        Some(&Histology::DdLiposarcoma)
    );
}

#[test]
fn no_rps_diagnosis_but_a_retroperitoneal_mass() {
    let chart = Chart::new("2026-11-01")
        .diagnosis_coded(
            "2026-10-01",
            cc(SCT, "300848003", "Mass of body structure"),
            Some(retroperitoneum()),
        )
        .resource(json!({
            "resourceType": "Condition", "id": "lung-ca",
            "code": cc(ICD10CM, "C34.90", "Lung cancer"), "onsetDateTime": "2025-01-01"
        }));
    let pic = picture(&chart);
    assert!(pic.diagnosis.is_none());
    assert_eq!(pic.undiagnosed_retroperitoneal_masses, vec!["Condition/dx"]);
    assert_eq!(
        pic.disease_state.unknown_reason(),
        Some(&Unknown::NotApplicable)
    );
}

// ---- Grade, ECOG, Karnofsky: open world, latest wins, exclusions -------------------------

#[test]
fn grade_coded_integer_and_text() {
    let coded = base().grade("2023-02-01", 3);
    assert_eq!(picture(&coded).grade.value(), Some(&3));
    let integer = base().grade("2023-02-01", 1).tweak(|o| {
        o.as_object_mut().unwrap().remove("valueCodeableConcept");
        o["valueInteger"] = json!(2);
    });
    assert_eq!(picture(&integer).grade.value(), Some(&2));
    for (t, g) in [("FNCLCC G2", 2), ("grade 3", 3), ("Low grade", 1)] {
        let chart = base()
            .grade("2023-02-01", 1)
            .tweak(|o| o["valueCodeableConcept"] = text(t));
        let pic = picture(&chart);
        assert_eq!(pic.grade.value(), Some(&g), "{t}");
        assert_eq!(read_from(&pic.grade), ReadFrom::Text);
    }
    // "G12" is not grade 1.
    let noise = base()
        .grade("2023-02-01", 1)
        .tweak(|o| o["valueCodeableConcept"] = text("G12 antigen"));
    assert!(matches!(
        picture(&noise).grade.unknown_reason(),
        Some(Unknown::Unreadable(_))
    ));
}

#[test]
fn grade_is_open_world() {
    assert_eq!(
        picture(&base()).grade.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn latest_wins_and_same_day_disagreement_conflicts() {
    let chart = base().ecog("2026-01-01", 3).ecog("2026-10-02", 1);
    let pic = picture(&chart);
    assert_eq!(pic.ecog.value(), Some(&1));
    assert_eq!(
        pic.ecog.provenance().unwrap().describe(),
        "Observation/ecog-2, coded, 2026-10-02"
    );
    let conflict = base().ecog("2026-10-02", 1).ecog("2026-10-02", 3);
    assert!(matches!(
        picture(&conflict).ecog.unknown_reason(),
        Some(Unknown::Conflicting(_))
    ));
}

#[test]
fn ecog_loinc_answer_codes_and_karnofsky_conversion() {
    for (i, answer) in [
        "LA9622-7", "LA9623-5", "LA9624-3", "LA9625-0", "LA9626-8", "LA9627-6",
    ]
    .iter()
    .enumerate()
    {
        let chart = base().ecog("2026-10-02", 0).tweak(|o| {
            o.as_object_mut().unwrap().remove("valueInteger");
            o["valueCodeableConcept"] = cc(LOINC, answer, "answer");
        });
        assert_eq!(picture(&chart).ecog.value(), Some(&(i as u8)), "{answer}");
    }
    for (k, e) in [
        (100, 0),
        (90, 0),
        (80, 1),
        (70, 1),
        (60, 2),
        (50, 2),
        (40, 3),
        (30, 3),
        (20, 4),
        (10, 4),
    ] {
        let pic = picture(&base().karnofsky("2026-10-02", k));
        assert_eq!(pic.ecog.value(), Some(&e), "KPS {k}");
        assert_eq!(read_from(&pic.ecog), ReadFrom::Derived);
        assert_eq!(
            pic.ecog.provenance().unwrap().note.as_deref(),
            Some(format!("Karnofsky {k} converted").as_str())
        );
    }
    // The later of ECOG and Karnofsky wins.
    let chart = base().ecog("2026-01-01", 0).karnofsky("2026-10-01", 50);
    assert_eq!(picture(&chart).ecog.value(), Some(&2));
}

#[test]
fn excluded_and_future_records_are_ignored() {
    let chart = base()
        .ecog("2026-10-01", 1)
        .ecog("2026-10-20", 4)
        .tweak(|o| o["status"] = json!("entered-in-error"))
        .ecog("2026-12-01", 3) // after as_of
        .metastasis("2026-09-01", Site::Lung)
        .tweak(|c| {
            c["verificationStatus"] = cc(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "refuted",
                "Refuted",
            )
        })
        .radiotherapy("2023-01-01", "2023-01-20", Some(5000.0))
        .tweak(|p| p["status"] = json!("not-done"));
    let pic = picture(&chart);
    assert_eq!(pic.ecog.value(), Some(&1));
    assert!(pic.metastases.is_empty());
    assert_eq!(pic.radiotherapy.value().map(Vec::len), Some(0));
}

// ---- Closed world and set-aside resources -----------------------------------------------

#[test]
fn events_are_closed_world_none_recorded() {
    let pic = picture(&base());
    assert_eq!(pic.metastasis_sites.value(), Some(&BTreeSet::new()));
    assert_eq!(read_from(&pic.metastasis_sites), ReadFrom::Absence);
    assert_eq!(pic.metastasis_sites.describe(), "none recorded");
    assert_eq!(pic.radiotherapy.value(), Some(&Vec::new()));
    assert_eq!(pic.prior_rt().value(), Some(&false));
    assert_eq!(pic.prior_systemic().value(), Some(&false));
    // Presence of symptoms is closed world; their absence needs an assessment (§4.1).
    assert_eq!(pic.symptoms.value(), Some(&Vec::new()));
    assert_eq!(
        pic.symptomatic.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    assert_eq!(pic.last_ct_chest.value(), Some(&None));
    assert_eq!(pic.pulmonary_function_tested.value(), Some(&false));
    assert_eq!(pic.li_fraumeni.value(), Some(&false));
    assert_eq!(pic.second_malignancy.value(), Some(&false));
    assert_eq!(pic.anthracycline_dose.total_mg_m2.value(), Some(&0.0));
    assert_eq!(pic.prior_anthracycline.value(), Some(&false));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&false));
    assert_eq!(pic.renal_impairment.value(), Some(&false));
}

#[test]
fn set_aside_resources_make_events_unknown_never_none() {
    let pic = picture(&base().set_aside("Condition"));
    assert!(matches!(
        pic.metastasis_sites.unknown_reason(),
        Some(Unknown::SetAside { resource_types }) if resource_types == &vec!["Condition".to_owned()]
    ));
    assert!(pic.sarcomatosis.unknown_reason().is_some());
    assert!(pic.li_fraumeni.unknown_reason().is_some());
    assert!(pic.symptoms.unknown_reason().is_some());
    assert!(pic.distant_disease.unknown_reason().is_some());
    // Procedures carry RT, surgery and imaging.
    let pic = picture(&base().set_aside("Procedure"));
    assert!(matches!(
        pic.radiotherapy.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
    assert!(matches!(
        pic.last_ct_chest.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
    // Medication resources carry systemic therapy.
    let pic = picture(&base().set_aside("MedicationStatement"));
    assert!(matches!(
        pic.systemic_history.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
    assert!(pic.favorable_systemic_response.unknown_reason().is_some());
    // A known positive stays known, with a note that more may be missing.
    let pic = picture(
        &base()
            .metastasis("2026-01-01", Site::Lung)
            .set_aside("Condition"),
    );
    assert_eq!(
        pic.metastasis_sites.value(),
        Some(&BTreeSet::from([MetastasisSite::Lung]))
    );
    assert!(pic.metastasis_sites.provenance().unwrap().note.is_some());
    assert_eq!(
        pic.set_aside,
        vec![SetAsideCount {
            resource_type: "Condition".into(),
            count: 1
        }]
    );
}

#[test]
fn unknown_facts_list_for_data_01() {
    let pic = picture(&base().recurrence("2026-09-01"));
    let names: Vec<&str> = pic.unknown_facts().iter().map(|(n, _)| *n).collect();
    for expected in [
        "grade",
        "ecog",
        "focality",
        "resectability",
        "distant_disease",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(
        !names.contains(&"metastasis_timing"),
        "not applicable is not missing"
    );
    let u = pic
        .ecog
        .unknown_fact("ecog", "surgical candidacy not assessed")
        .unwrap();
    assert_eq!(u.reason, "not recorded");
    let used = pic.histology.fact_use("histology").unwrap();
    assert_eq!(used.value, "dedifferentiated liposarcoma");
    assert_eq!(
        used.provenance.as_deref(),
        Some("Condition/dx, coded, 2023-01-10")
    );
}

// ---- Disease course ---------------------------------------------------------------------

#[test]
fn primary_untreated_and_no_evidence_of_disease() {
    let untreated = Chart::new("2026-11-01").diagnosis("2026-09-01", hist::LMS);
    let pic = picture(&untreated);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::PrimaryUntreated)
    );
    assert_eq!(pic.primary_resection.value(), Some(&None));
    let pic = picture(&base());
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::NoEvidenceOfDisease)
    );
    let primary = pic.primary_resection.value().unwrap().as_ref().unwrap();
    assert_eq!(primary.completeness.value(), Some(&Completeness::R0));
    assert_eq!(read_from(&primary.completeness), ReadFrom::Text);
    assert_eq!(pic.recurrence_number.value(), Some(&0));
}

#[test]
fn completeness_and_rupture_are_open_world() {
    let chart = Chart::new("2026-11-01")
        .diagnosis("2023-01-10", hist::DDLPS)
        .primary_resection("2023-02-01", None);
    let pic = picture(&chart);
    let r = &pic.resections[0];
    assert_eq!(r.target, ResectionTarget::Primary);
    assert_eq!(r.completeness.unknown_reason(), Some(&Unknown::NotRecorded));
    assert_eq!(
        r.rupture_or_piecemeal.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    let chart = base().rupture("2023-02-01", "Procedure/resection-1", true);
    let pic = picture(&chart);
    assert_eq!(pic.resections[0].rupture_or_piecemeal.value(), Some(&true));
}

#[test]
fn residual_observation_without_part_of_goes_to_nearest_earlier_resection() {
    let chart = Chart::new("2026-11-01")
        .diagnosis("2023-01-10", hist::DDLPS)
        .primary_resection("2023-02-01", None)
        .residual_tumour("2023-02-05", "Procedure/none", "R1 margin")
        .tweak(|o| {
            o.as_object_mut().unwrap().remove("partOf");
        });
    let pic = picture(&chart);
    assert_eq!(
        pic.resections[0].completeness.value(),
        Some(&Completeness::R1)
    );
}

#[test]
fn local_recurrence_condition_and_dfi() {
    let chart = base().recurrence("2025-09-01");
    let pic = picture(&chart);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::LocalRecurrence)
    );
    assert_eq!(pic.recurrence_number.value(), Some(&1));
    let cur = pic.current_recurrence.as_ref().unwrap();
    assert_eq!(cur.source, "Condition/recurrence-1");
    let dfi = *pic.dfi_months.value().unwrap();
    assert!((dfi - 31.0).abs() < 0.5, "{dfi}");
    assert_eq!(
        pic.dfi_months.provenance().unwrap().resources,
        vec!["Procedure/resection-1", "Condition/recurrence-1"]
    );
    assert_eq!(pic.dfi_months.describe(), format!("{dfi:.1}"));
}

#[test]
fn dfi_unknown_when_completeness_unknown() {
    let chart = Chart::new("2026-11-01")
        .diagnosis("2023-01-10", hist::DDLPS)
        .primary_resection("2023-02-01", None)
        .recurrence("2025-09-01");
    let pic = picture(&chart);
    assert_eq!(
        pic.dfi_months.unknown_reason(),
        Some(&Unknown::DependsOn(vec!["completeness"]))
    );
}

#[test]
fn resected_recurrence_then_a_second_one() {
    let chart = base()
        .recurrence("2024-06-01")
        .recurrence_resection("2024-08-01", 1, Some("R0"));
    let pic = picture(&chart);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::NoEvidenceOfDisease)
    );
    assert!(pic.current_recurrence.is_none());
    assert_eq!(pic.resections[1].target, ResectionTarget::Recurrence);
    let chart = chart.recurrence("2026-08-01");
    let pic = picture(&chart);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::LocalRecurrence)
    );
    assert_eq!(pic.recurrence_number.value(), Some(&2));
    // DFI from the recurrence resection (2024-08-01) to 2026-08-01.
    let dfi = *pic.dfi_months.value().unwrap();
    assert!((dfi - 24.0).abs() < 0.5, "{dfi}");
}

#[test]
fn recurrence_resected_with_unknown_completeness_leaves_state_unknown() {
    let chart = base()
        .recurrence("2024-06-01")
        .recurrence_resection("2024-08-01", 1, None);
    let pic = picture(&chart);
    assert!(matches!(
        pic.disease_state.unknown_reason(),
        Some(Unknown::Unreadable(_))
    ));
    let chart = base()
        .recurrence("2024-06-01")
        .recurrence_resection("2024-08-01", 1, Some("R2"));
    assert_eq!(
        picture(&chart).disease_state.value(),
        Some(&DiseaseState::LocalRecurrence)
    );
}

#[test]
fn local_progression_observation_opens_one_episode() {
    let chart = base()
        .disease_status("2025-03-01", "worsened", Some("local"))
        .disease_status("2025-05-01", "worsened", Some("local"));
    let pic = picture(&chart);
    assert_eq!(pic.recurrence_number.value(), Some(&1));
    assert_eq!(
        pic.current_recurrence.as_ref().unwrap().source,
        "Observation/status-1"
    );
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::LocalRecurrence)
    );
    // A recurrence Condition covering the interval wins over the observation.
    let chart =
        base()
            .recurrence("2025-02-01")
            .disease_status("2025-03-01", "worsened", Some("local"));
    let pic = picture(&chart);
    assert_eq!(pic.recurrence_number.value(), Some(&1));
    assert_eq!(
        pic.current_recurrence.as_ref().unwrap().source,
        "Condition/recurrence-1"
    );
}

#[test]
fn metastasis_sites_timing_and_distant_status() {
    let chart = base()
        .metastasis("2025-05-01", Site::Lung)
        .metastasis("2025-06-01", Site::Liver);
    let pic = picture(&chart);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::DistantMetastasis)
    );
    assert_eq!(
        pic.metastasis_sites.value(),
        Some(&BTreeSet::from([
            MetastasisSite::Lung,
            MetastasisSite::Liver
        ]))
    );
    assert_eq!(
        pic.metastasis_timing.value(),
        Some(&MetastasisTiming::Metachronous)
    );
    assert_eq!(pic.distant_disease.value(), Some(&true));
    // Two metastasis Conditions: at least two lesions, but the count (and so low volume)
    // is known only from a lesion-count Observation (§4.1).
    assert_eq!(
        pic.metastatic_lesion_count.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    assert_eq!(pic.metastatic_lesions_at_least.value(), Some(&2));
    assert!(pic.low_volume.unknown_reason().is_some());
    assert_eq!(pic.sarcomatosis.value(), Some(&false));
    assert_eq!(pic.metastatic().value(), Some(&true));
    // Synchronous: within 90 days of diagnosis, or before the primary was resected.
    let sync = base().metastasis("2023-03-01", Site::Lung);
    assert_eq!(
        picture(&sync).metastasis_timing.value(),
        Some(&MetastasisTiming::Synchronous)
    );
    let unresected = Chart::new("2026-11-01")
        .diagnosis("2025-01-01", hist::LMS)
        .metastasis("2025-09-01", Site::Liver);
    assert_eq!(
        picture(&unresected).metastasis_timing.value(),
        Some(&MetastasisTiming::Synchronous)
    );
}

#[test]
fn metastasis_icd10_codes_and_body_site() {
    let chart = base()
        .resource(json!({"resourceType": "Condition", "id": "m1",
            "code": cc(ICD10CM, "C78.01", "Secondary malignant neoplasm of right lung"),
            "onsetDateTime": "2025-05-01"}))
        .resource(json!({"resourceType": "Condition", "id": "m2",
            "code": cc(SCT, "128462008", "Metastatic malignant neoplasm"),
            "bodySite": [cc(SCT, "119186007", "Bone")],
            "onsetDateTime": "2025-05-02"}))
        .resource(json!({"resourceType": "Condition", "id": "m3",
            "code": cc(ICD10, "C79.3", "Secondary malignant neoplasm of brain"),
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved", "Resolved"),
            "onsetDateTime": "2025-05-03"}));
    let pic = picture(&chart);
    assert_eq!(
        pic.metastasis_sites.value(),
        Some(&BTreeSet::from([
            MetastasisSite::Lung,
            MetastasisSite::Bone
        ]))
    );
    assert_eq!(pic.metastases.len(), 3);
    assert!(!pic.metastases[2].active, "resolved metastasis is treated");
}

#[test]
fn distant_status_needs_a_recent_ct_chest() {
    let old = picture(&base().recurrence("2026-09-01").ct_chest("2026-08-01"));
    assert!(matches!(
        old.distant_disease.unknown_reason(),
        Some(Unknown::Outdated {
            last: Some(_),
            max_age_days: 30
        })
    ));
    let recent = picture(&base().recurrence("2026-09-01").ct_chest("2026-10-20"));
    assert_eq!(recent.distant_disease.value(), Some(&false));
    assert_eq!(read_from(&recent.distant_disease), ReadFrom::Derived);
}

#[test]
fn local_and_distant_and_synchronous_local_distant() {
    let chart = base()
        .recurrence("2026-06-01")
        .metastasis("2026-07-15", Site::Lung);
    let pic = picture(&chart);
    assert_eq!(
        pic.disease_state.value(),
        Some(&DiseaseState::LocalAndDistant)
    );
    assert_eq!(pic.synchronous_local_distant.value(), Some(&true));
    let apart = base()
        .recurrence("2025-01-01")
        .metastasis("2026-07-15", Site::Lung);
    assert_eq!(
        picture(&apart).synchronous_local_distant.value(),
        Some(&false)
    );
}

#[test]
fn sarcomatosis_from_peritoneal_metastasis_or_morphology() {
    let chart = base().metastasis("2026-01-01", Site::Peritoneum);
    assert_eq!(picture(&chart).sarcomatosis.value(), Some(&true));
    let chart = base().resource(json!({"resourceType": "Condition", "id": "s1",
        "code": cc(ICDO3, "8800/9", "Sarcomatosis, NOS"), "onsetDateTime": "2026-01-01"}));
    let pic = picture(&chart);
    assert_eq!(pic.sarcomatosis.value(), Some(&true));
    assert!(pic.metastatic().value() == Some(&true));
}

#[test]
fn lesion_count_observation_and_low_volume() {
    let chart = base()
        .metastasis("2026-01-01", Site::Lung)
        .lesion_count("2026-01-05", 7);
    let pic = picture(&chart);
    assert_eq!(pic.metastatic_lesion_count.value(), Some(&7));
    assert_eq!(pic.low_volume.value(), Some(&false));
}

#[test]
fn metastasectomy_and_recurrent_metastases() {
    let chart = base()
        .metastasis("2024-05-01", Site::Lung)
        .metastasectomy("2024-07-01", 1, Some("R0"))
        .metastasis("2026-03-01", Site::Lung);
    let pic = picture(&chart);
    assert_eq!(pic.metastasectomies.len(), 1);
    assert!(!pic.metastases[0].active);
    assert!(pic.metastases[1].active);
    assert_eq!(
        pic.recurrent_metastases_after_metastasectomy.value(),
        Some(&true)
    );
    // DFI from the complete metastasectomy to the new metastasis.
    let dfi = *pic.dfi_months.value().unwrap();
    assert!((dfi - 20.0).abs() < 0.6, "{dfi}");
}

#[test]
fn focality_observation_code_and_two_sites() {
    let pic = picture(
        &base()
            .recurrence("2026-09-01")
            .focality("2026-09-10", 1, true),
    );
    assert_eq!(pic.focality.value(), Some(&Focality::Multifocal));
    let pic = picture(
        &base()
            .recurrence("2026-09-01")
            .focality("2026-09-10", 1, false),
    );
    assert_eq!(pic.focality.value(), Some(&Focality::Unifocal));
    let coded = base().recurrence("2026-09-01").tweak(|c| {
        c["evidence"] = json!([{"code": [cc(SCT, "399506006", "Multifocal tumor")]}]);
    });
    assert_eq!(
        picture(&coded).focality.value(),
        Some(&Focality::Multifocal)
    );
    let two = base()
        .recurrence("2026-09-01")
        .recurrence("2026-09-10")
        .tweak(|c| c["bodySite"] = json!([cc(SCT, "15425007", "Peritoneum")]));
    let two = picture(&two);
    assert_eq!(two.focality.value(), Some(&Focality::Multifocal));
    // One multifocal recurrence, not two recurrences.
    assert_eq!(two.recurrence_number.value(), Some(&1));
    assert_eq!(
        picture(&base().recurrence("2026-09-01"))
            .focality
            .unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn critical_structures_and_resectability() {
    let chart = base()
        .recurrence("2026-09-01")
        .critical_structure("2026-09-05", "15825003", true);
    let pic = picture(&chart);
    assert_eq!(
        pic.critical_structures.value(),
        Some(&vec![CriticalStructure::Aorta])
    );
    assert_eq!(
        pic.resectability.value(),
        Some(&Resectability::Unresectable)
    );
    assert_eq!(read_from(&pic.resectability), ReadFrom::Derived);
    let chart = chart.resectability("2026-09-06", "borderline");
    assert_eq!(
        picture(&chart).resectability.value(),
        Some(&Resectability::Borderline)
    );
    let free = base().critical_structure("2026-09-05", "42258001", false);
    let pic = picture(&free);
    assert_eq!(pic.critical_structures.value(), Some(&vec![]));
    assert_eq!(
        pic.resectability.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn symptoms_active_resolved_and_bone() {
    let chart = base().symptom("2026-10-01", cc(SCT, "22253000", "Pain"));
    let pic = picture(&chart);
    assert_eq!(pic.symptomatic.value(), Some(&true));
    assert_eq!(pic.bone_symptoms().value(), Some(&false));
    let resolved = base()
        .symptom("2026-10-01", cc(SCT, "22253000", "Pain"))
        .tweak(|c| {
            c["clinicalStatus"] = cc(
                "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "resolved",
                "Resolved",
            )
        });
    // A resolved symptom is not current, but neither is it an assessment that found none.
    let resolved = picture(&resolved);
    assert_eq!(resolved.symptoms.value(), Some(&Vec::new()));
    assert_eq!(
        resolved.symptomatic.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    let painful = base().symptom("2026-10-01", text("Painful abdominal mass"));
    assert_eq!(
        picture(&painful).has_symptom(&[SymptomKind::Pain]).value(),
        Some(&true)
    );
    let bone = base().symptom("2026-10-01", text("Bone pain, left hip"));
    let pic = picture(&bone);
    assert_eq!(pic.bone_symptoms().value(), Some(&true));
    assert_eq!(read_from(&pic.symptoms), ReadFrom::Text);
    let obs = base().resource(
        json!({"resourceType": "Observation", "id": "sym", "status": "final",
        "code": cc(LOINC, "75325-1", "Symptom"), "effectiveDateTime": "2026-10-01",
        "valueCodeableConcept": cc(SCT, "267036007", "Dyspnea")}),
    );
    assert_eq!(
        picture(&obs).has_symptom(&[SymptomKind::Dyspnoea]).value(),
        Some(&true)
    );
}

// ---- Radiotherapy ------------------------------------------------------------------------

#[test]
fn radiotherapy_timing_and_dose() {
    let chart = Chart::new("2026-11-01")
        .diagnosis("2023-01-10", hist::DDLPS)
        .radiotherapy("2023-02-01", "2023-03-10", Some(5040.0))
        .primary_resection("2023-04-20", Some("R1"));
    let pic = picture(&chart);
    let c = &pic.radiotherapy.value().unwrap()[0];
    assert_eq!(c.timing, RtTiming::PreOperative);
    assert_eq!(c.relative_to.as_deref(), Some("Procedure/resection-1"));
    assert_eq!(c.total_dose_gy.value(), Some(&50.4));
    assert_eq!(pic.prior_rt().value(), Some(&true));
    let post = base().radiotherapy("2023-03-15", "2023-04-20", None);
    let post = picture(&post);
    let c = &post.radiotherapy.value().unwrap()[0];
    assert_eq!(c.timing, RtTiming::PostOperative);
    assert_eq!(
        c.total_dose_gy.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    let iort = base().iort("2023-02-01");
    assert_eq!(
        picture(&iort).radiotherapy.value().unwrap()[0].timing,
        RtTiming::IntraOperative
    );
    let text_rt = base().resource(
        json!({"resourceType": "Procedure", "id": "rt-x", "status": "completed",
        "code": text("Palliative radiation to spine"), "performedDateTime": "2026-01-10"}),
    );
    let text_rt = picture(&text_rt);
    let c = &text_rt.radiotherapy.value().unwrap()[0];
    assert_eq!(c.read_from, ReadFrom::Text);
    assert_eq!(c.timing, RtTiming::WithoutResection);
}

// ---- Systemic therapy --------------------------------------------------------------------

#[test]
fn anthracycline_cumulative_dose_in_mg_m2_and_mg_with_bsa() {
    let chart = base()
        .doxorubicin("2025-01-01", 75.0)
        .doxorubicin("2025-01-22", 75.0)
        .doxorubicin("2025-02-12", 75.0);
    let pic = picture(&chart);
    let h = pic.systemic_history.value().unwrap();
    assert_eq!(pic.anthracycline_dose.total_mg_m2.value(), Some(&225.0));
    assert_eq!(h.lines.len(), 1);
    assert!(h.agents.contains(&Agent::Doxorubicin));
    // Epirubicin in mg over the latest BSA before it, × 0.5.
    let chart = base().bsa("2025-01-01", 1.5).administration(
        "2025-01-02",
        "3995",
        "epirubicin",
        Some((150.0, "mg")),
    );
    let pic = picture(&chart);
    assert_eq!(pic.anthracycline_dose.total_mg_m2.value(), Some(&50.0));
    assert_eq!(pic.body_surface_area_m2.value(), Some(&1.5));
}

#[test]
fn anthracycline_dose_is_a_lower_bound_when_parts_are_unknown() {
    let missing = base().doxorubicin("2025-01-01", 75.0).administration(
        "2025-01-22",
        "3639",
        "doxorubicin",
        None,
    );
    let pic = picture(&missing);
    let dose = &pic.anthracycline_dose;
    assert_eq!(dose.at_least_mg_m2, 75.0);
    assert!(matches!(
        dose.total_mg_m2.unknown_reason(),
        Some(Unknown::Unreadable(_))
    ));
    assert_eq!(dose.without_dose.len(), 1);
    assert_eq!(
        dose.without_dose[0].source,
        "MedicationAdministration/admin-2"
    );
    let mg_without_bsa =
        base().administration("2025-01-01", "3639", "doxorubicin", Some((120.0, "mg")));
    let pic = picture(&mg_without_bsa);
    assert!(!pic.anthracycline_dose.is_exact());
    assert_eq!(pic.anthracycline_dose.at_least_mg_m2, 0.0);
    assert_eq!(pic.prior_anthracycline.value(), Some(&true));
    let statement_only =
        base().medication_statement("2024-01-01", "2024-04-01", "3639", "doxorubicin");
    let pic = picture(&statement_only);
    assert!(!pic.anthracycline_dose.is_exact());
    // Exposure is known even without a dose.
    assert_eq!(pic.prior_anthracycline.value(), Some(&true));
    assert_eq!(pic.prior_systemic().value(), Some(&true));
    let given_elsewhere = base()
        .medication_statement("2020-01-01", "2020-04-01", "3639", "doxorubicin")
        .doxorubicin("2025-01-01", 75.0);
    let pic = picture(&given_elsewhere);
    assert!(!pic.anthracycline_dose.is_exact());
    assert_eq!(pic.anthracycline_dose.at_least_mg_m2, 75.0);
    // Medication records set aside: the valid records still give the lower bound, but the
    // total is unknown — and so is exposure when no valid record shows it.
    let set_aside = base()
        .doxorubicin("2025-01-01", 75.0)
        .set_aside("MedicationAdministration");
    let pic = picture(&set_aside);
    assert_eq!(pic.anthracycline_dose.at_least_mg_m2, 75.0);
    assert!(matches!(
        pic.anthracycline_dose.total_mg_m2.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
    assert_eq!(pic.prior_anthracycline.value(), Some(&true));
    let pic = picture(&base().set_aside("MedicationStatement"));
    assert!(matches!(
        pic.prior_anthracycline.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
}

#[test]
fn lines_responses_favourable_and_progression() {
    let chart = base()
        .metastasis("2024-05-01", Site::Lung)
        .doxorubicin("2024-06-01", 75.0)
        .administration("2024-06-01", "5657", "ifosfamide", Some((3000.0, "mg/m2")))
        .disease_status("2024-08-01", "improved", None)
        .administration("2025-06-01", "12574", "gemcitabine", Some((900.0, "mg/m2")))
        .administration("2025-06-02", "72962", "docetaxel", Some((75.0, "mg/m2")))
        .disease_status("2025-09-01", "worsened", None);
    let pic = picture(&chart);
    let h = pic.systemic_history.value().unwrap();
    assert_eq!(h.lines.len(), 2);
    assert_eq!(
        h.lines[0].agents,
        BTreeSet::from([Agent::Doxorubicin, Agent::Ifosfamide])
    );
    assert_eq!(h.lines[0].best_response, Some(Response::Regression));
    assert_eq!(
        h.lines[1].agents,
        BTreeSet::from([Agent::Gemcitabine, Agent::Docetaxel])
    );
    assert_eq!(pic.favorable_systemic_response.value(), Some(&true));
    assert_eq!(pic.progression_on_systemic.value(), Some(&true));
    assert!(
        pic.systemic_history
            .describe()
            .starts_with("line 1 from 1 Jun 2024: doxorubicin + ifosfamide (regression)")
    );
}

#[test]
fn stable_disease_for_six_months_is_favourable() {
    let stable = |end: &str| {
        base()
            .doxorubicin("2025-01-01", 75.0)
            .disease_status("2025-02-15", "stable", None)
            .disease_status(end, "stable", None)
    };
    assert_eq!(
        picture(&stable("2025-09-01"))
            .favorable_systemic_response
            .value(),
        Some(&true)
    );
    assert_eq!(
        picture(&stable("2025-05-01"))
            .favorable_systemic_response
            .value(),
        Some(&false)
    );
    let no_response = base().doxorubicin("2025-01-01", 75.0);
    assert_eq!(
        picture(&no_response)
            .favorable_systemic_response
            .unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn agents_by_text_and_referenced_medication() {
    let chart = base()
        .resource(json!({"resourceType": "MedicationStatement", "id": "s1", "status": "completed",
            "medicationCodeableConcept": text("Trabectedin 1.5 mg/m2 q3w"), "effectiveDateTime": "2025-01-01"}))
        .resource(json!({"resourceType": "Medication", "id": "med-paz",
            "code": cc(RXNORM, "714438", "pazopanib")}))
        .resource(json!({"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
            "medicationReference": {"reference": "Medication/med-paz"}, "authoredOn": "2025-06-01"}));
    let h = picture(&chart).systemic_history.value().unwrap().clone();
    assert_eq!(
        h.agents,
        BTreeSet::from([Agent::Trabectedin, Agent::Pazopanib])
    );
}

// ---- History, smoking, PFT, imaging, biopsy -----------------------------------------------

#[test]
fn smoking_status() {
    assert_eq!(
        picture(&base().smoking("2026-01-01", "449868002"))
            .current_smoker
            .value(),
        Some(&true)
    );
    assert_eq!(
        picture(&base().smoking("2026-01-01", "8517006"))
            .current_smoker
            .value(),
        Some(&false)
    );
    assert_eq!(
        picture(&base()).current_smoker.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn pulmonary_function_within_validity() {
    let pic = picture(&base().pft("2026-09-01"));
    assert_eq!(pic.pulmonary_function_tested.value(), Some(&true));
    assert_eq!(pic.last_pft.value(), Some(&Some(date("2026-09-01"))));
    let pic = picture(&base().pft("2026-01-01"));
    assert_eq!(pic.pulmonary_function_tested.value(), Some(&false));
    let pic = picture(&base().pft("2026-01-01").set_aside("Observation"));
    assert!(pic.pulmonary_function_tested.unknown_reason().is_some());
}

#[test]
fn imaging_kinds_codes_text_and_study() {
    let chart = base()
        .ct_chest_abdomen_pelvis("2026-10-01")
        .ct_chest("2026-06-01")
        .report("2026-10-15", text("Whole-body PET-CT"))
        .report("2026-10-16", text("Petechiae review"))
        .resource(
            json!({"resourceType": "ImagingStudy", "id": "is1", "status": "available",
            "started": "2026-10-20", "description": "CT thorax without contrast"}),
        );
    let pic = picture(&chart);
    assert_eq!(pic.last_ct_chest.value(), Some(&Some(date("2026-10-20"))));
    assert_eq!(
        pic.last_ct_abdomen_pelvis.value(),
        Some(&Some(date("2026-10-01")))
    );
    assert_eq!(
        pic.last_bone_or_pet.value(),
        Some(&Some(date("2026-10-15")))
    );
    assert_eq!(read_from(&pic.last_bone_or_pet), ReadFrom::Text);
    assert_eq!(pic.last_imaging.value(), Some(&Some(date("2026-10-20"))));
}

#[test]
fn recurrence_biopsied() {
    let pic = picture(&base().recurrence("2026-09-01").biopsy("2026-09-10"));
    assert_eq!(pic.recurrence_biopsied.value(), Some(&true));
    let pic = picture(&base().recurrence("2026-09-01").biopsy("2023-01-05"));
    assert_eq!(pic.recurrence_biopsied.value(), Some(&false));
    assert_eq!(read_from(&pic.recurrence_biopsied), ReadFrom::Absence);
    let pic = picture(&base());
    assert_eq!(
        pic.recurrence_biopsied.unknown_reason(),
        Some(&Unknown::NotApplicable)
    );
}

#[test]
fn li_fraumeni_and_second_malignancy() {
    let pic = picture(&base().li_fraumeni("2010-01-01"));
    assert_eq!(pic.li_fraumeni.value(), Some(&true));
    let icd = base().resource(json!({"resourceType": "Condition", "id": "lfs",
        "code": cc(ICD10CM, "Z15.09", "Genetic susceptibility"), "recordedDate": "2015-01-01"}));
    assert_eq!(picture(&icd).li_fraumeni.value(), Some(&true));
    let breast = base().resource(json!({"resourceType": "Condition", "id": "bc",
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
        "code": cc(ICD10CM, "C50.911", "Breast cancer"), "onsetDateTime": "2021-01-01"}));
    let pic = picture(&breast);
    assert_eq!(pic.second_malignancy.value(), Some(&true));
    assert_eq!(
        pic.second_malignancy.provenance().unwrap().resources,
        vec!["Condition/bc"]
    );
}

// ---- Draft orders ----------------------------------------------------------------------

#[test]
fn draft_recurrence_resection_and_primary_resection() {
    let chart = base()
        .recurrence("2026-09-01")
        .draft_service(
            cc(SCT, "387713003", "Surgical procedure"),
            Some(retroperitoneum()),
            None,
        )
        .draft_service(
            text("Excision of recurrent tumour"),
            None,
            Some("Condition/recurrence-1"),
        );
    assert!(classify(&chart, 0).is(OrderKind::RecurrenceResection));
    let o = classify(&chart, 1);
    assert!(o.is(OrderKind::RecurrenceResection));
    assert_eq!(o.read_from, ReadFrom::Text);
    assert!(o.targets_recurrence);
    let untreated = Chart::new("2026-11-01")
        .diagnosis("2026-09-01", hist::LMS)
        .draft_service(
            cc(SCT, "387713003", "Surgical procedure"),
            None,
            Some("Condition/dx"),
        );
    assert!(classify(&untreated, 0).is(OrderKind::PrimaryResection));
}

#[test]
fn draft_metastasectomy_hipec_debulking() {
    let chart = base()
        .metastasis("2026-01-01", Site::Lung)
        .draft_service(
            cc(SCT, "387713003", "Surgical procedure"),
            None,
            Some("Condition/met-1"),
        )
        .draft_service(cc(SCT, "232632009", "Pulmonary metastasectomy"), None, None)
        .draft_service(text("Cytoreductive surgery with HIPEC"), None, None)
        .draft_service(
            cc(SCT, "387713003", "Surgical procedure"),
            Some(retroperitoneum()),
            None,
        )
        .tweak_draft(|s| s["orderDetail"] = json!([cc(SCT, "255595002", "Debulking")]));
    let o = classify(&chart, 0);
    assert!(o.is(OrderKind::Metastasectomy) && o.is(OrderKind::PulmonaryMetastasectomy));
    assert!(o.targets_metastasis);
    assert!(classify(&chart, 1).is(OrderKind::PulmonaryMetastasectomy));
    assert!(classify(&chart, 2).is(OrderKind::Hipec));
    assert!(classify(&chart, 3).is(OrderKind::Debulking));
}

#[test]
fn draft_radiotherapy_timing_neoadjuvant_before_adjuvant() {
    let chart = base()
        .draft_service(cc(SCT, "1217123003", "Radiotherapy course"), None, None)
        .tweak_draft(|s| s["orderDetail"] = json!([text("Neoadjuvant")]))
        .draft_service(text("Post-operative radiotherapy boost"), None, None)
        .draft_service(cc(SCT, "1217123003", "Radiotherapy course"), None, None);
    assert!(classify(&chart, 0).is(OrderKind::PreoperativeRt));
    assert!(classify(&chart, 1).is(OrderKind::PostoperativeRt));
    assert!(classify(&chart, 2).is(OrderKind::Radiotherapy));
}

#[test]
fn draft_biopsies_and_imaging() {
    let chart = Chart::new("2026-11-01")
        .draft_service(text("CT-guided FNA"), Some(retroperitoneum()), None)
        .draft_service(cc(SCT, "15719007", "Fine needle aspiration"), None, None)
        .draft_service(text("Core needle biopsy, 4 cores, 14G"), None, None)
        .draft_service(text("FDG PET-CT"), None, None)
        .draft_service(cc(SCT, "41747008", "Bone scan"), None, None);
    let fna = classify(&chart, 0);
    assert!(fna.is(OrderKind::FineNeedleAspiration));
    assert!(fna.body_site_retroperitoneum && fna.targets_retroperitoneal_mass);
    assert!(classify(&chart, 1).is(OrderKind::FineNeedleAspiration));
    assert!(classify(&chart, 2).is(OrderKind::CoreBiopsy));
    assert!(classify(&chart, 3).is(OrderKind::Imaging(ImagingKind::FdgPet)));
    assert!(classify(&chart, 4).is(OrderKind::Imaging(ImagingKind::BoneScan)));
}

#[test]
fn draft_fna_of_an_undiagnosed_mass_by_reason_reference() {
    let chart = Chart::new("2026-11-01")
        .diagnosis_coded(
            "2026-10-01",
            cc(SCT, "300848003", "Mass of body structure"),
            Some(retroperitoneum()),
        )
        .draft_service(
            cc(SCT, "15719007", "Fine needle aspiration"),
            None,
            Some("Condition/dx"),
        );
    let o = classify(&chart, 0);
    assert!(o.is(OrderKind::FineNeedleAspiration));
    assert!(!o.body_site_retroperitoneum);
    assert!(o.targets_retroperitoneal_mass);
}

#[test]
fn draft_agents_and_planned_anthracycline_dose() {
    let chart = base()
        .bsa("2026-10-01", 1.8)
        .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), Some(5))
        .draft_medication("3995", "epirubicin", Some((180.0, "mg")), None)
        .draft_medication("714438", "pazopanib", None, None)
        .draft_medication("0", "x", None, None)
        .tweak_draft(|m| m["medicationCodeableConcept"] = text("Olaratumab 15 mg/kg"))
        .draft_medication("3639", "doxorubicin", None, None);
    let dox = classify(&chart, 0);
    assert!(dox.is(OrderKind::Agent(Agent::Doxorubicin)));
    assert_eq!(dox.planned_anthracycline_mg_m2.value(), Some(&450.0));
    let epi = classify(&chart, 1);
    assert_eq!(epi.planned_anthracycline_mg_m2.value(), Some(&50.0));
    let paz = classify(&chart, 2);
    assert_eq!(paz.agents().collect::<Vec<_>>(), vec![Agent::Pazopanib]);
    assert_eq!(
        paz.planned_anthracycline_mg_m2.unknown_reason(),
        Some(&Unknown::NotApplicable)
    );
    assert!(classify(&chart, 3).is(OrderKind::Agent(Agent::Olaratumab)));
    assert_eq!(
        classify(&chart, 4)
            .planned_anthracycline_mg_m2
            .unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
}

#[test]
fn draft_adjuvant_systemic_therapy() {
    let chart = base()
        .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), None)
        .tweak_draft(|m| m["note"] = json!([{"text": "adjuvant after R1 resection"}]))
        .draft_medication("3639", "doxorubicin", Some((75.0, "mg/m2")), None)
        .tweak_draft(|m| m["note"] = json!([{"text": "neoadjuvant"}]));
    assert!(classify(&chart, 0).is(OrderKind::PostoperativeSystemic));
    assert!(!classify(&chart, 1).is(OrderKind::PostoperativeSystemic));
}

// ---- Performance ---------------------------------------------------------------------------

#[test]
fn fifty_resources_build_quickly() {
    let mut chart = base()
        .recurrence("2026-09-01")
        .metastasis("2026-09-15", Site::Lung);
    for i in 0..12 {
        let d = format!("2025-{:02}-01", i + 1);
        chart = chart
            .ecog(&d, 1)
            .doxorubicin(&d, 30.0)
            .ct_chest(&d)
            .disease_status(&d, "stable", None);
    }
    chart = chart
        .grade("2023-02-01", 2)
        .bsa("2025-01-01", 1.7)
        .smoking("2025-01-01", "8517006");
    assert!(chart.resources.len() >= 50);
    let terminology = t();
    let params = p();
    terminology
        .require(VALUE_SETS)
        .expect("every value set the extraction names");
    let refs: Vec<&Value> = chart.resources.iter().collect();
    let input = ClinicalInput {
        as_of: chart.as_of,
        patient: chart.patient.as_ref(),
        resources: &refs,
        set_aside: &[],
        invalid: &[],
        withheld: &[],
    };
    // RPS_PERF_RUNS raises the count for profiling (perf record).
    let runs: u32 = std::env::var("RPS_PERF_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let start = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(build_picture(&input, terminology, &params));
    }
    let per = start.elapsed() / runs;
    println!("build_picture, {} resources: {per:?}", refs.len());
    // Generous for unoptimised test builds; the release target is well under 100 µs.
    assert!(per < std::time::Duration::from_millis(20), "{per:?}");
}

// ---- Version 2 facts (docs/clinical-spec.md §4.1) -------------------------------------------

#[test]
fn negated_symptom_text_is_an_assessment_not_a_symptom() {
    for note in [
        "Denies abdominal pain; no obstructive symptoms",
        "denies pain",
        "no obstruction",
        "pain-free",
        "Asymptomatic",
    ] {
        let pic = picture(&base().symptom_note("2026-10-20", note));
        assert_eq!(pic.symptoms.value(), Some(&Vec::new()), "{note}");
        assert_eq!(pic.symptomatic.value(), Some(&false), "{note}");
        assert_eq!(read_from(&pic.symptomatic), ReadFrom::Text, "{note}");
    }
    // "painless mass" on a Condition: not pain, and it says there is none.
    let pic = picture(&base().symptom("2026-10-20", text("Painless abdominal mass")));
    assert!(!pic.has_symptom(&[SymptomKind::Pain]).is_true());
    assert_eq!(pic.symptomatic.value(), Some(&false));
    // "painful" is pain.
    let pic = picture(&base().symptom("2026-10-20", text("Painful abdominal mass")));
    assert_eq!(pic.symptomatic.value(), Some(&true));
    // Ambiguous text: unknown, never absent; and no symptom for the rules that act on one.
    let pic = picture(&base().symptom_note("2026-10-20", "possible bowel obstruction"));
    assert!(matches!(
        pic.symptomatic.unknown_reason(),
        Some(Unknown::Unreadable(_))
    ));
    assert_eq!(pic.symptoms.value(), Some(&Vec::new()));
}

#[test]
fn absence_of_symptoms_needs_a_current_assessment() {
    // Nothing recorded: presence "none recorded", absence unknown.
    let pic = picture(&base());
    assert_eq!(
        pic.symptomatic.unknown_reason(),
        Some(&Unknown::NotRecorded)
    );
    // An RPS symptom assessment that found none, within symptom_assessment_max_age_days.
    let pic = picture(&base().symptom_assessment("2026-09-01", false));
    assert_eq!(pic.symptomatic.value(), Some(&false));
    assert_eq!(
        pic.symptomatic.provenance().unwrap().resources,
        vec!["Observation/symptom-assessment-1"]
    );
    // Older than that: outdated.
    let pic = picture(&base().symptom_assessment("2026-06-01", false));
    assert!(matches!(
        pic.symptomatic.unknown_reason(),
        Some(Unknown::Outdated {
            max_age_days: 90,
            ..
        })
    ));
    // SCT asymptomatic as a Condition counts as the assessment too.
    let pic = picture(&base().symptom("2026-10-01", cc(SCT, "84387000", "Asymptomatic")));
    assert_eq!(pic.symptomatic.value(), Some(&false));
    // An affirmative record after the assessment wins; one before it is superseded.
    let after = base()
        .symptom_assessment("2026-09-01", false)
        .symptom("2026-10-01", cc(SCT, "22253000", "Pain"));
    assert_eq!(picture(&after).symptomatic.value(), Some(&true));
    let before = base()
        .symptom("2026-08-01", cc(SCT, "22253000", "Pain"))
        .symptom_assessment("2026-09-01", false);
    let pic = picture(&before);
    assert_eq!(pic.symptomatic.value(), Some(&false));
    assert_eq!(pic.symptoms.value(), Some(&Vec::new()));
    // An assessment that found symptoms, of no named kind.
    let pic = picture(&base().symptom_assessment("2026-09-01", true));
    assert_eq!(pic.symptomatic.value(), Some(&true));
    // Records left out could hold a symptom: the absence is unknown.
    let pic = picture(
        &base()
            .symptom_assessment("2026-09-01", false)
            .set_aside("Condition"),
    );
    assert!(matches!(
        pic.symptomatic.unknown_reason(),
        Some(Unknown::SetAside { .. })
    ));
}

#[test]
fn a_resolved_first_recurrence_still_counts() {
    // The first recurrence, resected and later charted resolved, then a new one.
    let chart = base()
        .recurrence("2024-06-01")
        .clinical_status("resolved")
        .recurrence_resection("2024-08-01", 1, Some("R0"))
        .recurrence("2026-08-01");
    let pic = picture(&chart);
    assert_eq!(pic.recurrence_number.value(), Some(&2));
    let cur = pic.current_recurrence.as_ref().expect("current recurrence");
    assert_eq!(cur.source, "Condition/recurrence-2");
    assert_eq!(cur.number, 2);
    // Charted resolved without a recorded resection, and with an active status rather than
    // "recurrence": still two episodes (the resolution ends the first).
    let chart = base()
        .recurrence("2024-06-01")
        .clinical_status("resolved")
        .recurrence("2026-08-01")
        .clinical_status("active");
    assert_eq!(picture(&chart).recurrence_number.value(), Some(&2));
}

#[test]
fn several_conditions_of_one_episode_count_once() {
    // Two lesions of one recurrence, months apart, no complete resection between.
    let chart = base().recurrence("2026-03-01").recurrence("2026-08-15");
    let pic = picture(&chart);
    assert_eq!(pic.recurrence_number.value(), Some(&1));
    assert!(pic.recurrence_episodes.iter().all(|e| e.number == 1));
    // An incomplete (R2) resection does not end the episode; a complete one does.
    let r2 = base()
        .recurrence("2026-03-01")
        .recurrence_resection("2026-04-01", 1, Some("R2"))
        .recurrence("2026-08-15");
    assert_eq!(picture(&r2).recurrence_number.value(), Some(&1));
    let r0 = base()
        .recurrence("2025-03-01")
        .recurrence_resection("2025-04-01", 1, Some("R0"))
        .recurrence("2026-08-15");
    assert_eq!(picture(&r0).recurrence_number.value(), Some(&2));
}

#[test]
fn metastasis_conditions_give_a_lower_bound_of_the_lesion_count() {
    let lungs = |mut chart: Chart, n: usize| {
        for i in 0..n {
            chart = chart.metastasis(&format!("2026-0{}-0{}", 1 + i % 9, 1 + i), Site::Lung);
        }
        chart
    };
    // Six separate metastasis records: more than low_volume_max_lesions (5) → not low volume.
    let pic = picture(&lungs(base(), 6));
    assert_eq!(pic.metastatic_lesions_at_least.value(), Some(&6));
    assert_eq!(pic.low_volume.value(), Some(&false));
    // Three: the bound decides nothing, the count is unknown.
    let pic = picture(&lungs(base(), 3));
    assert_eq!(pic.metastatic_lesions_at_least.value(), Some(&3));
    assert!(pic.low_volume.unknown_reason().is_some());
    // A lesion-count Observation decides; the lower bound can only make it false.
    let pic = picture(&lungs(base(), 3).lesion_count("2026-10-01", 2));
    assert_eq!(pic.low_volume.value(), Some(&true));
    let pic = picture(&lungs(base(), 6).lesion_count("2026-10-01", 2));
    assert_eq!(pic.low_volume.value(), Some(&false));
    // Duplicates of one lesion (same site, date, body site) count once.
    let pic = picture(
        &base()
            .metastasis("2026-05-01", Site::Lung)
            .metastasis("2026-05-01", Site::Lung),
    );
    assert_eq!(pic.metastatic_lesions_at_least.value(), Some(&1));
    // Peritoneal disease and "multiple" lesions give no count.
    let pic = picture(&base().metastasis("2026-05-01", Site::Peritoneum));
    assert_eq!(
        pic.metastatic_lesions_at_least.unknown_reason(),
        Some(&Unknown::NotApplicable)
    );
    let multiple = base()
        .metastasis("2026-05-01", Site::Liver)
        .tweak(|c| c["code"]["text"] = json!("Multiple liver metastases"));
    let pic = picture(&multiple);
    assert!(!pic.metastatic_lesions_at_least.is_known());
}

#[test]
fn anthracycline_lower_bound_from_valid_deduplicated_administrations() {
    // The same administration charted twice counts once; entered-in-error adds nothing.
    let chart = base()
        .doxorubicin("2025-01-01", 75.0)
        .doxorubicin("2025-01-01", 75.0)
        .doxorubicin("2025-01-22", 75.0)
        .doxorubicin("2025-02-12", 75.0)
        .tweak(|m| m["status"] = json!("entered-in-error"));
    let pic = picture(&chart);
    assert_eq!(pic.anthracycline_dose.total_mg_m2.value(), Some(&150.0));
    assert!(pic.anthracycline_dose.is_exact());
    // An mg dose needs the nearest BSA before it; when that one is unusable the dose is
    // unknown — the older usable BSA is not used instead.
    let chart = base()
        .bsa("2024-12-01", 2.0)
        .bsa("2025-01-01", 1.5)
        .tweak(|o| {
            o.as_object_mut().unwrap().remove("valueQuantity");
        })
        .administration("2025-01-02", "3639", "doxorubicin", Some((150.0, "mg")))
        .doxorubicin("2025-01-23", 60.0);
    let pic = picture(&chart);
    assert_eq!(pic.anthracycline_dose.at_least_mg_m2, 60.0);
    assert!(!pic.anthracycline_dose.is_exact());
    assert_eq!(
        pic.anthracycline_dose.without_dose[0].source,
        "MedicationAdministration/admin-1"
    );
    // Exposure is its own fact, known without a dose; unknown (not none) when medication
    // data is withheld.
    let pic =
        picture(&base().medication_statement("2015-01-01", "2015-04-01", "3639", "doxorubicin"));
    assert_eq!(pic.prior_anthracycline.value(), Some(&true));
    let chart = base();
    let refs: Vec<&Value> = chart.resources.iter().collect();
    let withheld = [WithheldData {
        resource_types: vec![
            "MedicationAdministration".to_owned(),
            "MedicationStatement".to_owned(),
        ],
        reason: WithheldReason::Unavailable,
    }];
    let input = ClinicalInput {
        as_of: chart.as_of,
        patient: chart.patient.as_ref(),
        resources: &refs,
        set_aside: &[],
        invalid: &[],
        withheld: &withheld,
    };
    let pic = build_picture(&input, t(), &p());
    assert!(matches!(
        pic.prior_anthracycline.unknown_reason(),
        Some(Unknown::Withheld { .. })
    ));
    assert!(!pic.anthracycline_dose.is_exact());
}

#[test]
fn cardiac_and_renal_sequelae() {
    let pic = picture(&base().condition_coded("2024-01-01", cc(SCT, "85898001", "Cardiomyopathy")));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&true));
    assert_eq!(
        read_from(&pic.cardiomyopathy_or_heart_failure),
        ReadFrom::Code
    );
    // The latest LVEF against lvef_min_percent (50).
    let pic = picture(&base().lvef("2025-01-01", 60.0).lvef("2026-09-01", 40.0));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&true));
    let pic = picture(&base().lvef("2025-01-01", 40.0).lvef("2026-09-01", 62.0));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&false));
    // Text must affirm it.
    let pic = picture(&base().condition_coded("2024-01-01", text("Heart failure, NYHA II")));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&true));
    let pic = picture(&base().condition_coded("2024-01-01", text("No heart failure")));
    assert_eq!(pic.cardiomyopathy_or_heart_failure.value(), Some(&false));
    // Renal: chronic kidney disease, or the latest eGFR below egfr_min (60).
    let pic = picture(
        &base().condition_coded("2024-01-01", cc(SCT, "709044004", "Chronic kidney disease")),
    );
    assert_eq!(pic.renal_impairment.value(), Some(&true));
    let pic = picture(&base().egfr("2026-09-01", 45.0));
    assert_eq!(pic.renal_impairment.value(), Some(&true));
    let pic = picture(&base().egfr("2026-09-01", 85.0));
    assert_eq!(pic.renal_impairment.value(), Some(&false));
    // Closed world, unless the records that could carry it were left out.
    assert_eq!(picture(&base()).renal_impairment.value(), Some(&false));
    assert!(
        picture(&base().set_aside("Condition"))
            .renal_impairment
            .unknown_reason()
            .is_some()
    );
}
