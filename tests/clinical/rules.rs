//! Rule tests over pictures built field by field: for every rule of the catalogue a chart
//! where it fires and a near miss where it must not (boundaries, unknown facts). End-to-end
//! charts from FHIR are in `tests/clinical/rules_fhir.rs`.

// `&[order.clone()]` reads better than `slice::from_ref` in the many one-order checks.
#![allow(clippy::cloned_ref_to_slice_refs)]

use std::collections::BTreeSet;

use crate::support::findings::check_against_knowledge;
use chrono::{DateTime, NaiveDate, Utc};
use rps_cds::clinical::*;
use rps_cds::fhir::{InvalidResource, InvalidUse, SchemaViolation};
use rps_cds::knowledge::{Hook, Indicator};
use rps_cds::knowledge::{ParameterId, Parameters, Section};
use rps_cds::rules::{Finding, IMPLEMENTED_RULES, RuleId, RuleInput, Suggestion, evaluate};

const TODAY: &str = "2026-11-01";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn days_ago(n: i64) -> NaiveDate {
    d(TODAY) - chrono::Duration::days(n)
}

fn months_ago(n: u32) -> NaiveDate {
    d(TODAY).checked_sub_months(chrono::Months::new(n)).unwrap()
}

fn prov() -> Provenance {
    Provenance {
        resources: vec!["Observation/x".to_owned()],
        read_from: ReadFrom::Code,
        date: None,
        note: None,
    }
}

fn k<T>(v: T) -> Fact<T> {
    Fact::known(v, prov())
}

fn unk<T>() -> Fact<T> {
    Fact::unknown(Unknown::NotRecorded)
}

fn resection(
    id: &str,
    date: NaiveDate,
    target: ResectionTarget,
    c: Option<Completeness>,
) -> Resection {
    Resection {
        procedure: format!("Procedure/{id}"),
        date,
        target,
        completeness: c.map_or_else(unk, k),
        rupture_or_piecemeal: k(false),
        organs_resected: unk(),
        read_from: ReadFrom::Code,
    }
}

fn metastasis(site: MetastasisSite, detected: NaiveDate) -> Metastasis {
    Metastasis {
        source: format!("Condition/met-{site:?}"),
        site: Some(site),
        detected: Some(detected),
        active: true,
        intra_abdominal: false,
        read_from: ReadFrom::Code,
    }
}

/// An in-scope RPS patient with no evidence of disease after an R0 primary resection two
/// years ago; events closed-world empty, assessments unknown.
fn base() -> Picture {
    let primary = resection(
        "primary",
        months_ago(24),
        ResectionTarget::Primary,
        Some(Completeness::R0),
    );
    Picture {
        as_of: DateTime::<Utc>::from_naive_utc_and_offset(
            d(TODAY).and_hms_opt(12, 0, 0).unwrap(),
            Utc,
        ),
        patient: Some("Patient/p".to_owned()),
        diagnosis: Some(RpsDiagnosis {
            condition: "Condition/rps".to_owned(),
            date: Some(months_ago(26)),
            read_from: ReadFrom::Code,
            clinical_status: Some("remission".to_owned()),
        }),
        histology: k(Histology::DdLiposarcoma),
        site_retroperitoneal: k(true),
        grade: k(2),
        age_years: k(60),
        resections: vec![primary.clone()],
        primary_resection: k(Some(primary)),
        metastasectomies: vec![],
        radiotherapy: k(vec![]),
        disease_state: k(DiseaseState::NoEvidenceOfDisease),
        recurrence_episodes: vec![],
        recurrence_number: Fact::unknown(Unknown::NotApplicable),
        current_recurrence: None,
        focality: unk(),
        recurrence_biopsied: Fact::unknown(Unknown::NotApplicable),
        metastases: vec![],
        distant_disease: k(false),
        metastasis_sites: k(BTreeSet::new()),
        metastasis_timing: Fact::unknown(Unknown::NotApplicable),
        synchronous_local_distant: k(false),
        sarcomatosis: k(false),
        metastatic_lesion_count: k(0),
        metastatic_lesions_at_least: Fact::unknown(Unknown::NotApplicable),
        low_volume: Fact::unknown(Unknown::NotApplicable),
        dfi_months: Fact::unknown(Unknown::NotApplicable),
        recurrent_metastases_after_metastasectomy: k(false),
        critical_structures: unk(),
        resectability: unk(),
        ecog: unk(),
        symptoms: k(vec![]),
        // A current symptom assessment that found none.
        symptomatic: k(false),
        latest_disease_status: unk(),
        systemic_history: k(SystemicHistory {
            lines: vec![],
            agents: BTreeSet::new(),
        }),
        prior_anthracycline: k(false),
        anthracycline_dose: AnthracyclineDose {
            at_least_mg_m2: 0.0,
            total_mg_m2: k(0.0),
            counted: vec![],
            without_dose: vec![],
        },
        cardiomyopathy_or_heart_failure: k(false),
        renal_impairment: k(false),
        favorable_systemic_response: Fact::unknown(Unknown::NotApplicable),
        progression_on_systemic: k(false),
        body_surface_area_m2: unk(),
        li_fraumeni: k(false),
        second_malignancy: k(false),
        current_smoker: k(false),
        last_pft: k(None),
        pulmonary_function_tested: k(false),
        last_ct_chest: k(Some(days_ago(10))),
        last_ct_abdomen_pelvis: k(Some(days_ago(10))),
        last_bone_or_pet: k(None),
        last_imaging: k(Some(days_ago(10))),
        expert_pathology_review: k(None),
        molecular_test: k(None),
        metastasis_biopsied: unk(),
        undiagnosed_retroperitoneal_masses: vec![],
        set_aside: vec![],
        read_in_part: vec![],
        defects_met: vec![],
    }
}

/// A first local recurrence 24 months after the R0 primary: unifocal, resectable, ECOG 1,
/// no distant disease, no rupture, biopsied, no prior RT → LR-04.
fn recurrence() -> Picture {
    let mut p = base();
    p.disease_state = k(DiseaseState::LocalRecurrence);
    let ep = RecurrenceEpisode {
        source: "Condition/rec-1".to_owned(),
        detected: days_ago(20),
        active: true,
        resected_by: None,
        body_sites: vec![],
        read_from: ReadFrom::Code,
        number: 1,
    };
    p.recurrence_episodes = vec![ep.clone()];
    p.current_recurrence = Some(ep);
    p.recurrence_number = k(1);
    p.focality = k(Focality::Unifocal);
    p.recurrence_biopsied = k(true);
    p.ecog = k(1);
    p.resectability = k(Resectability::Resectable);
    p.critical_structures = k(vec![]);
    p.dfi_months = k(24.0);
    p
}

/// Metachronous lung metastases 30 months after the R0 primary: 2 lesions, resectable, ECOG
/// 0, no systemic therapy, abdomen CT and bone scan current → MET-02 candidate.
fn metastatic() -> Picture {
    let mut p = base();
    p.disease_state = k(DiseaseState::DistantMetastasis);
    p.metastases = vec![
        metastasis(MetastasisSite::Lung, days_ago(15)),
        metastasis(MetastasisSite::Lung, days_ago(15)),
    ];
    p.distant_disease = k(true);
    p.metastasis_sites = k([MetastasisSite::Lung].into_iter().collect());
    p.metastasis_timing = k(MetastasisTiming::Metachronous);
    p.metastatic_lesion_count = k(2);
    p.low_volume = k(true);
    p.dfi_months = k(30.0);
    p.resectability = k(Resectability::Resectable);
    p.ecog = k(0);
    p.last_bone_or_pet = k(Some(days_ago(5)));
    // A current disease-status record (MET-11 v2 needs one within 120 days).
    p.latest_disease_status = Fact::known(
        DiseaseStatus::Stable,
        Provenance {
            date: Some(days_ago(20)),
            ..prov()
        },
    );
    p
}

/// A prior anthracycline dose established exactly.
fn exact_dose(mg_m2: f64) -> AnthracyclineDose {
    AnthracyclineDose {
        at_least_mg_m2: mg_m2,
        total_mg_m2: k(mg_m2),
        counted: vec!["MedicationAdministration/a".to_owned()],
        without_dose: vec![],
    }
}

/// A prior anthracycline dose known only as a lower bound (one record without dose).
fn lower_bound(mg_m2: f64) -> AnthracyclineDose {
    AnthracyclineDose {
        at_least_mg_m2: mg_m2,
        total_mg_m2: Fact::unknown(Unknown::Unreadable("1 record without dose".to_owned())),
        counted: vec![],
        without_dose: vec![DoseGap {
            source: "MedicationStatement/s".to_owned(),
            agent: Agent::Doxorubicin,
            date: None,
            reason: "recorded as a statement or order, without administered doses".to_owned(),
        }],
    }
}

fn params() -> Parameters {
    Parameters::default()
}

fn run_with(
    p: &Picture,
    hook: Hook,
    orders: &[DraftOrder],
    invalid: &[InvalidResource],
) -> Vec<Finding> {
    let params = params();
    let fs = evaluate(&RuleInput {
        picture: p,
        params: &params,
        hook,
        draft_orders: orders,
        invalid_resources: invalid,
        invalid_draft_orders: &[],
        other_patient: &Default::default(),
        unavailable: &[],
    });
    check_against_knowledge(&fs, hook);
    fs
}

fn pv(p: &Picture) -> Vec<Finding> {
    run_with(p, Hook::PatientView, &[], &[])
}

fn sign(p: &Picture, orders: &[DraftOrder]) -> Vec<Finding> {
    run_with(p, Hook::OrderSign, orders, &[])
}

fn ids(fs: &[Finding]) -> Vec<RuleId> {
    fs.iter().map(|f| f.rule).collect()
}

fn has(fs: &[Finding], id: impl Into<RuleId>) -> bool {
    let id = id.into();
    fs.iter().any(|f| f.rule == id)
}

fn get(fs: &[Finding], id: impl Into<RuleId>) -> &Finding {
    let id = id.into();
    fs.iter()
        .find(|f| f.rule == id)
        .unwrap_or_else(|| panic!("{id} missing from {:?}", ids(fs)))
}

fn text(f: &Finding) -> String {
    f.statements.join("\n")
}

fn lr_verdicts(fs: &[Finding]) -> Vec<RuleId> {
    ids(fs)
        .into_iter()
        .filter(|id| id.is_verdict() && id.section() == Section::LocalRecurrence)
        .collect()
}

fn order(id: &str, kinds: &[OrderKind]) -> DraftOrder {
    DraftOrder {
        reference: format!("ServiceRequest/{id}"),
        resource_type: "ServiceRequest".to_owned(),
        kinds: kinds.to_vec(),
        read_from: ReadFrom::Code,
        display: id.to_owned(),
        planned_anthracycline_mg_m2: Fact::unknown(Unknown::NotApplicable),
        targets_recurrence: false,
        targets_metastasis: false,
        body_site_retroperitoneum: false,
        reason_conditions: vec![],
        targets_retroperitoneal_mass: false,
    }
}

fn med(id: &str, agents: &[Agent]) -> DraftOrder {
    let mut o = order(
        id,
        &agents
            .iter()
            .map(|a| OrderKind::Agent(*a))
            .collect::<Vec<_>>(),
    );
    o.reference = format!("MedicationRequest/{id}");
    o.resource_type = "MedicationRequest".to_owned();
    o
}

fn deletes(f: &Finding, reference: &str) -> bool {
    f.suggestions
        .iter()
        .any(|s| matches!(s, Suggestion::Delete { resource_id, .. } if resource_id == reference))
}

fn replaces_with(f: &Finding, template: &str) -> bool {
    f.suggestions.iter().any(
        |s| matches!(s, Suggestion::Replace { order_template, .. } if *order_template == template),
    )
}

fn creates(f: &Finding, template: &str) -> bool {
    f.suggestions.iter().any(
        |s| matches!(s, Suggestion::Create { order_template, .. } if *order_template == template),
    )
}

// ---------------------------------------------------------------------------------------
// Catalogue and entry point

#[test]
fn implemented_rules_match_the_knowledge_base_when_it_defines_them() {
    let kb = rps_cds::knowledge::Knowledge::embedded().expect("knowledge base loads");
    let kb_ids: Vec<&str> = kb.rules.iter().map(|r| r.id.as_str()).collect();
    let implemented: Vec<&str> = IMPLEMENTED_RULES.iter().map(|r| r.as_str()).collect();
    assert_eq!(kb_ids, implemented);
    rps_cds::rules::registry::check_knowledge(&kb).expect("registry agrees with rules.json");
}

#[test]
fn findings_come_in_catalogue_order_and_every_id_is_known() {
    let mut p = metastatic();
    p.disease_state = k(DiseaseState::LocalAndDistant);
    p.ecog = unk();
    let fs = pv(&p);
    let pos: Vec<usize> = fs
        .iter()
        .map(|f| {
            IMPLEMENTED_RULES
                .iter()
                .position(|r| *r == f.rule)
                .expect("known id")
        })
        .collect();
    let mut sorted = pos.clone();
    sorted.sort();
    assert_eq!(pos, sorted, "{:?}", ids(&fs));
}

#[test]
fn built_summaries_are_short() {
    let mut charts = vec![recurrence(), metastatic(), base()];
    let mut p = recurrence();
    p.ecog = unk();
    p.resectability = unk();
    p.focality = unk();
    p.distant_disease = unk();
    charts.push(p);
    let mut p = metastatic();
    p.ecog = k(4);
    p.resectability = k(Resectability::Borderline);
    p.primary_resection = k(None);
    p.last_ct_abdomen_pelvis = k(None);
    charts.push(p);
    for p in &charts {
        for f in pv(p) {
            if let Some(s) = &f.summary {
                assert!(s.chars().count() < 140, "{}: {s}", f.rule);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// §2.1 Scope and data quality

#[test]
fn scope_01_out_of_scope_histology_silences_every_other_rule() {
    let mut p = metastatic();
    p.histology = k(Histology::Gist);
    let fs = pv(&p);
    assert_eq!(ids(&fs), [RuleId::Scope01]);
    assert_eq!(get(&fs, RuleId::Scope01).indicator, Indicator::Info);
    let fs = sign(&p, &[med("ola", &[Agent::Olaratumab])]);
    assert_eq!(ids(&fs), [RuleId::Scope01]);
    // DATA-02 still reports resources set aside.
    let invalid = [InvalidResource {
        resource_type: "Observation".into(),
        id: None,
        violations: vec![],
        used: InvalidUse::LeftOut,
    }];
    let fs = run_with(&p, Hook::PatientView, &[], &invalid);
    assert_eq!(ids(&fs), [RuleId::Scope01, RuleId::Data02]);
}

#[test]
fn scope_01_near_miss_in_scope_histology() {
    let fs = pv(&metastatic());
    assert!(!has(&fs, RuleId::Scope01));
    assert!(has(&fs, RuleId::Mdt01));
}

#[test]
fn scope_02_no_diagnosis_means_no_findings() {
    let mut p = metastatic();
    p.diagnosis = None;
    assert!(pv(&p).is_empty());
    assert!(sign(&p, &[med("ola", &[Agent::Olaratumab])]).is_empty());
}

#[test]
fn scope_02_still_reports_set_aside_resources_and_fna_of_an_undiagnosed_mass() {
    let mut p = base();
    p.diagnosis = None;
    p.undiagnosed_retroperitoneal_masses = vec!["Condition/mass".to_owned()];
    let invalid = [InvalidResource {
        resource_type: "Condition".into(),
        id: Some("c1".into()),
        violations: vec![],
        used: InvalidUse::LeftOut,
    }];
    let fs = run_with(&p, Hook::PatientView, &[], &invalid);
    assert_eq!(ids(&fs), [RuleId::Data02]);
    assert!(text(&fs[0]).contains("may be in"));
    let mut fna = order("fna", &[OrderKind::FineNeedleAspiration]);
    fna.reason_conditions = vec!["Condition/mass".to_owned()];
    let fs = sign(&p, &[fna]);
    assert_eq!(ids(&fs), [RuleId::Ord16]);
}

#[test]
fn data_01_aggregates_the_unknowns_rules_needed() {
    let mut p = recurrence();
    p.ecog = unk();
    p.recurrence_biopsied = unk();
    let fs = pv(&p);
    let f = get(&fs, RuleId::Data01);
    assert_eq!(f.indicator, Indicator::Info);
    let facts: Vec<&str> = f.unknown.iter().map(|u| u.fact).collect();
    assert!(facts.contains(&"ecog"), "{facts:?}");
    assert!(facts.contains(&"recurrence_biopsied"), "{facts:?}");
    assert!(text(f).contains("ecog not recorded"), "{}", text(f));
    assert_eq!(fs.iter().filter(|f| f.rule == RuleId::Data01).count(), 1);
    // Not on the order hooks.
    assert!(!has(&sign(&p, &[]), RuleId::Data01));
}

#[test]
fn data_01_near_miss_nothing_needed_is_unknown() {
    let mut p = recurrence();
    p.latest_disease_status = k(DiseaseStatus::Worsened);
    let fs = pv(&p);
    assert!(
        !has(&fs, RuleId::Data01),
        "{:?}",
        get(&fs, RuleId::Data01).unknown
    );
}

#[test]
fn data_02_counts_set_aside_resources_and_failed_draft_orders() {
    let p = base();
    let invalid = [
        InvalidResource {
            resource_type: "Observation".into(),
            id: Some("o1".into()),
            violations: vec![],
            used: InvalidUse::LeftOut,
        },
        InvalidResource {
            resource_type: "Observation".into(),
            id: Some("o2".into()),
            violations: vec![],
            used: InvalidUse::LeftOut,
        },
        InvalidResource {
            resource_type: "Procedure".into(),
            id: None,
            violations: vec![],
            used: InvalidUse::LeftOut,
        },
    ];
    let params = params();
    let bad = ["MedicationRequest/bad".to_owned()];
    let fs = evaluate(&RuleInput {
        picture: &p,
        params: &params,
        hook: Hook::OrderSign,
        draft_orders: &[],
        invalid_resources: &invalid,
        invalid_draft_orders: &bad,
        other_patient: &Default::default(),
        unavailable: &[],
    });
    let f = get(&fs, RuleId::Data02);
    assert_eq!(f.indicator, Indicator::Warning);
    let t = text(f);
    assert!(
        t.contains("Observation × 2") && t.contains("Procedure × 1"),
        "{t}"
    );
    assert!(
        f.records.contains(&"MedicationRequest/bad".to_owned()),
        "{t}"
    );
    assert!(!has(&pv(&p), RuleId::Data02));
}

// ---------------------------------------------------------------------------------------
// §2.2 Referral, work-up, history

#[test]
fn mdt_rules() {
    let fs = pv(&recurrence());
    let f = get(&fs, RuleId::Mdt01);
    assert!(creates(f, "tumour-board-referral"));
    assert!(!has(&fs, RuleId::Mdt02) && !has(&fs, RuleId::Mdt03));
    let fs = pv(&metastatic());
    assert!(has(&fs, RuleId::Mdt01) && has(&fs, RuleId::Mdt03));
    assert!(creates(get(&fs, RuleId::Mdt02), "palliative-care-referral"));
    let fs = pv(&base());
    assert!(!has(&fs, RuleId::Mdt01) && !has(&fs, RuleId::Mdt02));
    // Unknown disease state: silent, reported.
    let mut p = base();
    p.disease_state = unk();
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Mdt01));
    assert!(
        get(&fs, RuleId::Data01)
            .unknown
            .iter()
            .any(|u| u.fact == "disease_state")
    );
}

#[test]
fn work_01_02_staging_ct_boundary() {
    let mut p = recurrence();
    p.last_ct_chest = k(Some(days_ago(31)));
    p.last_ct_abdomen_pelvis = k(Some(days_ago(30)));
    let fs = pv(&p);
    let f = get(&fs, RuleId::Work01);
    assert_eq!(f.indicator, Indicator::Warning);
    assert!(f.parameters.contains(&ParameterId::StagingCtMaxAgeDays));
    assert!(creates(f, "ct-chest"));
    assert!(!has(&fs, RuleId::Work02));
    p.last_ct_abdomen_pelvis = k(None);
    let fs = pv(&p);
    assert!(creates(get(&fs, RuleId::Work02), "ct-abdomen-pelvis"));
    assert!(
        get(&fs, RuleId::Work02)
            .summary
            .as_ref()
            .unwrap()
            .contains("No CT abdomen/pelvis recorded")
    );
    // Not for a patient without evidence of disease.
    let mut p = base();
    p.last_ct_chest = k(None);
    assert!(!has(&pv(&p), RuleId::Work01));
}

#[test]
fn work_03_sft_bone_staging() {
    let mut p = metastatic();
    p.histology = k(Histology::SolitaryFibrousTumor);
    p.last_bone_or_pet = k(Some(days_ago(400)));
    let fs = pv(&p);
    assert!(creates(get(&fs, RuleId::Work03), "bone-scan"));
    p.last_bone_or_pet = k(Some(days_ago(3)));
    assert!(!has(&pv(&p), RuleId::Work03));
    let mut p = metastatic();
    p.last_bone_or_pet = k(None);
    assert!(!has(&pv(&p), RuleId::Work03), "not SFT");
}

#[test]
fn work_04_unbiopsied_recurrence() {
    let mut p = recurrence();
    p.recurrence_biopsied = k(false);
    assert!(creates(get(&pv(&p), RuleId::Work04), "core-needle-biopsy"));
    assert!(!has(&pv(&recurrence()), RuleId::Work04));
    p.recurrence_biopsied = unk();
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Work04));
    assert!(
        get(&fs, RuleId::Data01)
            .unknown
            .iter()
            .any(|u| u.fact == "recurrence_biopsied")
    );
}

#[test]
fn work_05_li_fraumeni_or_second_malignancy() {
    let mut p = metastatic();
    p.li_fraumeni = k(true);
    let f = pv(&p);
    let f = get(&f, RuleId::Work05);
    assert_eq!(f.indicator, Indicator::Warning);
    assert!(creates(f, "biopsy"));
    let mut p = metastatic();
    p.second_malignancy = k(true);
    assert!(has(&pv(&p), RuleId::Work05));
    assert!(!has(&pv(&metastatic()), RuleId::Work05));
    let mut p = recurrence();
    p.li_fraumeni = k(true);
    assert!(!has(&pv(&p), RuleId::Work05), "not metastatic");
}

#[test]
fn hist_01_and_02() {
    let mut p = metastatic();
    p.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin])],
        agents: [Agent::Doxorubicin].into_iter().collect(),
    });
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = lower_bound(0.0);
    assert!(has(&pv(&p), RuleId::Hist01));
    p.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin])],
        agents: [Agent::Doxorubicin].into_iter().collect(),
    });
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = exact_dose(300.0);
    assert!(!has(&pv(&p), RuleId::Hist01));
    // Exposure known from a history statement only (no systemic line read): HIST-01 lists
    // the record without dose.
    let mut p = metastatic();
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = lower_bound(0.0);
    let fs = pv(&p);
    let f = get(&fs, RuleId::Hist01);
    assert!(
        text(f).contains("doxorubicin (undated): dose not established"),
        "{}",
        text(f)
    );
    // Exposure unknown (medication records left out): not HIST-01's case (ORD-19's).
    p.prior_anthracycline = unk();
    assert!(!has(&pv(&p), RuleId::Hist01));

    let mut p = recurrence();
    p.radiotherapy = k(vec![rt(TODAY, RtTiming::PreOperative, None)]);
    let fs = pv(&p);
    assert!(has(&fs, RuleId::Hist02));
    p.radiotherapy = k(vec![rt(TODAY, RtTiming::PreOperative, Some(50.4))]);
    assert!(!has(&pv(&p), RuleId::Hist02));
}

fn line(n: u32, agents: &[Agent]) -> SystemicLine {
    SystemicLine {
        number: n,
        start: months_ago(8),
        end: months_ago(4),
        agents: agents.iter().copied().collect(),
        resources: vec![],
        best_response: None,
        stable_months: None,
        last_response: None,
        ongoing: None,
        intolerance: false,
    }
}

fn rt(date: &str, timing: RtTiming, dose: Option<f64>) -> RadiotherapyCourse {
    RadiotherapyCourse {
        procedure: "Procedure/rt".to_owned(),
        date: d(date),
        timing,
        relative_to: None,
        total_dose_gy: dose.map_or_else(unk, k),
        read_from: ReadFrom::Code,
    }
}

// ---------------------------------------------------------------------------------------
// §2.3 Local recurrence

#[test]
fn lr_04_candidate_lists_factors_and_dfi_boundary() {
    let mut p = recurrence();
    p.dfi_months = k(12.0);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr04]);
    let f = get(&fs, RuleId::Lr04);
    assert!(creates(f, "sarcoma-surgery-referral"));
    let t = text(f);
    assert!(
        t.contains("Favourable: disease-free interval 12 months (≥ 12 months)"),
        "{t}"
    );
    assert!(t.contains("57 %"), "{t}");
    assert!(f.parameters.contains(&ParameterId::FavorableDfiMonths));
    assert!(f.parameters.contains(&ParameterId::PoorEcogMin));
    p.dfi_months = k(11.0);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr04]);
    assert!(
        text(get(&fs, RuleId::Lr04))
            .contains("Unfavourable: disease-free interval 11 months (< 12 months)")
    );
}

#[test]
fn lr_00_when_a_deciding_factor_is_unknown() {
    for which in ["ecog", "focality", "rupture", "resectability", "distant"] {
        let mut p = recurrence();
        match which {
            "ecog" => p.ecog = unk(),
            "focality" => p.focality = unk(),
            "rupture" => {
                let mut r = p.primary_resection.value().unwrap().clone().unwrap();
                r.rupture_or_piecemeal = unk();
                p.primary_resection = k(Some(r));
            }
            "resectability" => p.resectability = unk(),
            _ => {
                p.distant_disease = Fact::unknown(Unknown::Outdated {
                    last: None,
                    max_age_days: 30,
                })
            }
        }
        let fs = pv(&p);
        assert_eq!(lr_verdicts(&fs), [RuleId::Lr00], "{which}");
        let f = get(&fs, RuleId::Lr00);
        assert_eq!(f.indicator, Indicator::Info);
        assert!(!f.unknown.is_empty(), "{which}");
        assert!(
            !has(&fs, RuleId::Lr05),
            "no pre-operative advice before the verdict"
        );
        assert!(has(&fs, RuleId::Data01));
    }
}

#[test]
fn lr_01_local_and_distant_whatever_is_unknown() {
    let mut p = recurrence();
    p.disease_state = k(DiseaseState::LocalAndDistant);
    p.ecog = unk();
    p.focality = unk();
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr01]);
    let f = get(&fs, RuleId::Lr01);
    assert_eq!(f.indicator, Indicator::Warning);
    assert!(creates(f, "medical-oncology-referral"));
    // v2 (§4.3): only the deciding reasons; no unknown can change LR-01.
    assert!(f.unknown.is_empty(), "{:?}", f.unknown);
    let mut p = recurrence();
    p.synchronous_local_distant = k(true);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr01]);
}

#[test]
fn lr_02_on_any_known_unfavourable_factor() {
    // Multifocal with ECOG unknown: still LR-02.
    let mut p = recurrence();
    p.focality = k(Focality::Multifocal);
    p.ecog = unk();
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr02]);
    assert!(text(get(&fs, RuleId::Lr02)).contains("Reason: multifocal recurrence"));
    // ECOG boundary at poor_ecog_min = 3.
    let mut p = recurrence();
    p.ecog = k(3);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr02]);
    p.ecog = k(2);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr04]);
    // Rupture at primary surgery; unresectable.
    let mut p = recurrence();
    let mut r = p.primary_resection.value().unwrap().clone().unwrap();
    r.rupture_or_piecemeal = k(true);
    p.primary_resection = k(Some(r));
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr02]);
    let mut p = recurrence();
    p.resectability = k(Resectability::Unresectable);
    p.critical_structures = k(vec![CriticalStructure::Aorta]);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr02]);
    let t = text(get(&fs, RuleId::Lr02));
    assert!(t.contains("aorta") && t.contains("carbon-ion"), "{t}");
}

#[test]
fn lr_03_wd_liposarcoma_unifocal_asymptomatic() {
    let mut p = recurrence();
    p.histology = k(Histology::WdLiposarcoma);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr03]);
    assert!(creates(get(&fs, RuleId::Lr03), "ct-abdomen-pelvis"));
    // v2 (§4.3): LR-05/LR-06 accompany LR-04 or LR-09 only; observation comes first.
    assert!(!has(&fs, RuleId::Lr05));
    p.symptoms = k(vec![Symptom {
        kind: SymptomKind::Pain,
        bone: false,
        source: "Condition/pain".into(),
        date: None,
        read_from: ReadFrom::Code,
    }]);
    p.symptomatic = k(true);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr04]);
}

#[test]
fn lr_00_for_wd_liposarcoma_without_a_symptom_assessment() {
    // No symptom recorded is not "asymptomatic" (§4.1): observation (LR-03) and
    // re-resection (LR-04) both need the symptoms known, so LR-00 names the assessment.
    let mut p = recurrence();
    p.histology = k(Histology::WdLiposarcoma);
    p.symptomatic = unk();
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr00]);
    let f = get(&fs, RuleId::Lr00);
    let u = f
        .unknown
        .iter()
        .find(|u| u.fact == "symptomatic")
        .expect("LR-00 names the missing symptom assessment");
    assert!(u.holds_back.contains("symptom assessment"), "{u:?}");
    assert!(
        f.parameters
            .contains(&ParameterId::SymptomAssessmentMaxAgeDays)
    );
    // For other histologies symptoms do not decide the verdict.
    let mut p = recurrence();
    p.symptomatic = unk();
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr04]);
}

#[test]
fn lr_05_06_follow_the_verdict() {
    let fs = pv(&recurrence());
    assert!(has(&fs, RuleId::Lr05) && !has(&fs, RuleId::Lr06));
    let mut p = recurrence();
    p.radiotherapy = k(vec![rt("2024-10-01", RtTiming::PreOperative, Some(50.4))]);
    let fs = pv(&p);
    assert!(has(&fs, RuleId::Lr06) && !has(&fs, RuleId::Lr05));
    p.focality = k(Focality::Multifocal);
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Lr05) && !has(&fs, RuleId::Lr06));
}

#[test]
fn lr_07_high_grade_short_dfi() {
    let mut p = recurrence();
    p.grade = k(3);
    p.dfi_months = k(11.0);
    let fs = pv(&p);
    let f = get(&fs, RuleId::Lr07);
    assert!(f.parameters.contains(&ParameterId::FavorableDfiMonths));
    p.dfi_months = k(12.0);
    assert!(!has(&pv(&p), RuleId::Lr07));
    p.dfi_months = k(11.0);
    p.histology = k(Histology::WdLiposarcoma);
    assert!(!has(&pv(&p), RuleId::Lr07));
    let mut p = recurrence();
    p.grade = unk();
    p.dfi_months = k(6.0);
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Lr07));
    assert!(
        get(&fs, RuleId::Data01)
            .unknown
            .iter()
            .any(|u| u.fact == "grade")
    );
}

#[test]
fn lr_08_recent_complete_resection_of_a_recurrence() {
    let mut p = base();
    p.resections.push(resection(
        "rec",
        months_ago(6),
        ResectionTarget::Recurrence,
        Some(Completeness::R1),
    ));
    assert!(has(&pv(&p), RuleId::Lr08));
    let mut p = base();
    p.resections.push(resection(
        "rec",
        months_ago(13),
        ResectionTarget::Recurrence,
        Some(Completeness::R0),
    ));
    assert!(!has(&pv(&p), RuleId::Lr08));
    let mut p = base();
    p.resections.push(resection(
        "rec",
        months_ago(2),
        ResectionTarget::Recurrence,
        Some(Completeness::R2),
    ));
    assert!(!has(&pv(&p), RuleId::Lr08));
}

// ---------------------------------------------------------------------------------------
// §2.4 Metastatic

#[test]
fn met_01_synchronous() {
    let mut p = metastatic();
    p.metastasis_timing = k(MetastasisTiming::Synchronous);
    let fs = pv(&p);
    assert!(creates(
        get(&fs, RuleId::Met01),
        "medical-oncology-referral"
    ));
    assert!(!has(&fs, RuleId::Met02));
    assert!(!has(&pv(&metastatic()), RuleId::Met01));
}

#[test]
fn met_02_03_candidate_and_failures() {
    let fs = pv(&metastatic());
    let f = get(&fs, RuleId::Met02);
    assert_eq!(f.indicator, Indicator::Info);
    assert!(text(f).contains("Favourable biology: disease-free interval 2 years 6 months"));
    assert!(has(&fs, RuleId::Met03));
    // A failed criterion: warning, no MET-03.
    let mut p = metastatic();
    p.ecog = k(3);
    let fs = pv(&p);
    let f = get(&fs, RuleId::Met02);
    assert_eq!(f.indicator, Indicator::Warning);
    assert!(text(f).contains("Criterion not met: ECOG 3"));
    assert!(!has(&fs, RuleId::Met03));
    // Unknown criterion: info, listed, still a candidate, but no observation advice (v2
    // §4.4: MET-03 needs every criterion known).
    let mut p = metastatic();
    p.resectability = unk();
    let fs = pv(&p);
    let f = get(&fs, RuleId::Met02);
    assert_eq!(f.indicator, Indicator::Info);
    assert!(f.unknown.iter().any(|u| u.fact == "resectability"));
    assert!(!has(&fs, RuleId::Met03));
    // Sarcomatosis: no MET-02.
    let mut p = metastatic();
    p.sarcomatosis = k(true);
    assert!(!has(&pv(&p), RuleId::Met02));
    // DFI boundary shown against the parameter.
    let mut p = metastatic();
    p.dfi_months = k(11.0);
    assert!(
        text(get(&pv(&p), RuleId::Met02))
            .contains("Unfavourable biology: disease-free interval 11 months (favourable")
    );
}

#[test]
fn met_04_lung_or_liver() {
    assert!(has(&pv(&metastatic()), RuleId::Met04));
    let mut p = metastatic();
    p.metastasis_sites = k([MetastasisSite::Bone].into_iter().collect());
    assert!(!has(&pv(&p), RuleId::Met04));
}

#[test]
fn met_05_patient_view_and_order_variants() {
    assert!(!has(&pv(&metastatic()), RuleId::Met05));
    let mut p = metastatic();
    p.last_bone_or_pet = k(None);
    let fs = pv(&p);
    let f = get(&fs, RuleId::Met05);
    assert!(creates(f, "bone-scan") && !creates(f, "ct-abdomen-pelvis"));
    assert!(f.parameters.contains(&ParameterId::StagingCtMaxAgeDays));
    // Not for a patient who fails a criterion.
    p.ecog = k(4);
    assert!(!has(&pv(&p), RuleId::Met05));
    // Order hooks: a pulmonary metastasectomy without abdominal CT.
    let mut p = metastatic();
    p.last_ct_abdomen_pelvis = k(Some(days_ago(31)));
    let o = order("wedge", &[OrderKind::PulmonaryMetastasectomy]);
    let fs = run_with(&p, Hook::OrderSelect, &[o.clone()], &[]);
    let f = get(&fs, RuleId::Met05);
    assert_eq!(f.draft_order.as_deref(), Some("ServiceRequest/wedge"));
    assert!(creates(f, "ct-abdomen-pelvis"));
    assert!(!has(&sign(&metastatic(), &[o]), RuleId::Met05));
}

#[test]
fn met_06_liver_predominant_unresectable() {
    let mut p = metastatic();
    p.metastases = vec![
        metastasis(MetastasisSite::Liver, days_ago(15)),
        metastasis(MetastasisSite::Liver, days_ago(15)),
    ];
    p.metastasis_sites = k([MetastasisSite::Liver].into_iter().collect());
    p.resectability = k(Resectability::Unresectable);
    assert!(has(&pv(&p), RuleId::Met06));
    p.resectability = k(Resectability::Resectable);
    assert!(!has(&pv(&p), RuleId::Met06));
}

#[test]
fn met_07_sarcomatosis() {
    let mut p = metastatic();
    p.sarcomatosis = k(true);
    assert_eq!(get(&pv(&p), RuleId::Met07).indicator, Indicator::Warning);
    assert!(!has(&pv(&metastatic()), RuleId::Met07));
}

#[test]
fn met_08_surveillance_after_metastasectomy() {
    let mut p = base();
    let site = ResectionTarget::Metastasis {
        site: Some(MetastasisSite::Lung),
        condition: None,
    };
    p.metastasectomies = vec![resection(
        "met",
        months_ago(12),
        site.clone(),
        Some(Completeness::R0),
    )];
    p.last_imaging = k(Some(days_ago(200)));
    let fs = pv(&p);
    assert!(creates(get(&fs, RuleId::Met08), "ct-chest-abdomen-pelvis"));
    p.last_imaging = k(Some(days_ago(150)));
    assert!(!has(&pv(&p), RuleId::Met08));
    p.metastasectomies = vec![resection(
        "met",
        months_ago(40),
        site,
        Some(Completeness::R0),
    )];
    p.last_imaging = k(Some(days_ago(400)));
    assert!(!has(&pv(&p), RuleId::Met08));
}

#[test]
fn met_09_recurrent_metastases_after_metastasectomy() {
    let mut p = metastatic();
    p.recurrent_metastases_after_metastasectomy = k(true);
    p.grade = k(3);
    p.dfi_months = k(8.0);
    let t = text(get(&pv(&p), RuleId::Met09));
    assert!(
        t.contains("Against: grade 3") && t.contains("Against: disease-free interval 8 months"),
        "{t}"
    );
    assert!(!has(&pv(&metastatic()), RuleId::Met09));
    // Unknown whether metastases recurred: silent, and DATA-01 names it.
    let mut p = metastatic();
    p.recurrent_metastases_after_metastasectomy = unk();
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Met09));
    assert!(
        get(&fs, RuleId::Data01)
            .unknown
            .iter()
            .any(|u| u.fact == "recurrent_metastases_after_metastasectomy")
    );
}

#[test]
fn met_10_11_symptoms_and_surveillance() {
    let mut p = metastatic();
    let sym = |kind| Symptom {
        kind,
        bone: false,
        source: "Condition/s".into(),
        date: None,
        read_from: ReadFrom::Code,
    };
    p.symptoms = k(vec![sym(SymptomKind::Dyspnoea)]);
    p.symptomatic = k(true);
    let fs = pv(&p);
    assert!(has(&fs, RuleId::Met10) && !has(&fs, RuleId::Met11));
    p.symptoms = k(vec![sym(SymptomKind::Obstruction)]);
    assert!(!has(&pv(&p), RuleId::Met10));
    assert!(has(&pv(&metastatic()), RuleId::Met11));
    let mut p = metastatic();
    p.progression_on_systemic = k(true);
    assert!(!has(&pv(&p), RuleId::Met11));
    let mut p = metastatic();
    p.low_volume = k(false);
    assert!(!has(&pv(&p), RuleId::Met11));
    let mut p = metastatic();
    p.symptoms = unk();
    p.symptomatic = unk();
    assert!(!has(&pv(&p), RuleId::Met11));
    // No symptom recorded, but no assessment either: symptoms are not known absent.
    let mut p = metastatic();
    p.symptomatic = unk();
    let fs = pv(&p);
    assert!(
        !has(&fs, RuleId::Met11) && !has(&fs, RuleId::Met03),
        "{:?}",
        ids(&fs)
    );
    assert!(has(&fs, RuleId::Met02));
}

// ---------------------------------------------------------------------------------------
// §2.5 Systemic

#[test]
fn sys_01_first_line() {
    let mut p = metastatic();
    p.histology = k(Histology::Leiomyosarcoma);
    let t = text(get(&pv(&p), RuleId::Sys01));
    assert!(t.contains("doxorubicin + dacarbazine"), "{t}");
    let mut p = recurrence();
    assert!(!has(&pv(&p), RuleId::Sys01), "resectable recurrence");
    p.resectability = k(Resectability::Unresectable);
    assert!(has(&pv(&p), RuleId::Sys01));
}

#[test]
fn sys_02_histology_matched_options_not_already_given() {
    let mut p = metastatic();
    p.histology = k(Histology::Leiomyosarcoma);
    p.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin, Agent::Dacarbazine])],
        agents: [Agent::Doxorubicin, Agent::Dacarbazine]
            .into_iter()
            .collect(),
    });
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = exact_dose(300.0);
    // v2 §4.4: only with a next line due (here progression on the line).
    assert!(!has(&pv(&p), RuleId::Sys02));
    p.progression_on_systemic = k(true);
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Sys01));
    let t = text(get(&fs, RuleId::Sys02));
    assert!(
        t.contains("trabectedin") && t.contains("pazopanib") && t.contains("gemcitabine"),
        "{t}"
    );
    assert!(
        !t.contains("eribulin") && !t.contains("ifosfamide") && !t.contains("Option: dacarbazine"),
        "{t}"
    );
    assert!(!has(&pv(&metastatic()), RuleId::Sys02));
}

// ---------------------------------------------------------------------------------------
// §2.6 Surveillance

#[test]
fn surv_01_schedule_and_grace() {
    // Two years after resection: 6-monthly, + 30 days grace.
    let mut p = base();
    p.last_ct_abdomen_pelvis = k(Some(months_ago(7) - chrono::Duration::days(1)));
    let f = pv(&p);
    let f = get(&f, RuleId::Surv01);
    assert!(f.parameters.contains(&ParameterId::SurveillanceGraceDays));
    assert!(creates(f, "ct-abdomen-pelvis"));
    p.last_ct_abdomen_pelvis = k(Some(months_ago(6) - chrono::Duration::days(20)));
    assert!(!has(&pv(&p), RuleId::Surv01));
    // Seven years after resection: yearly.
    let mut p = base();
    p.resections[0].date = months_ago(84);
    p.last_ct_abdomen_pelvis = k(Some(months_ago(11)));
    assert!(!has(&pv(&p), RuleId::Surv01));
    p.last_ct_abdomen_pelvis = k(Some(months_ago(14)));
    assert!(has(&pv(&p), RuleId::Surv01));
    // Not while disease is present.
    let mut p = recurrence();
    p.last_ct_abdomen_pelvis = k(None);
    assert!(!has(&pv(&p), RuleId::Surv01));
}

#[test]
fn surv_02_chest_for_lms_ups_grade_3() {
    let mut p = base();
    p.last_ct_chest = k(Some(months_ago(9)));
    assert!(!has(&pv(&p), RuleId::Surv02), "DD-LPS grade 2");
    p.grade = k(3);
    assert!(creates(get(&pv(&p), RuleId::Surv02), "ct-chest"));
    p.grade = k(2);
    p.histology = k(Histology::Leiomyosarcoma);
    assert!(has(&pv(&p), RuleId::Surv02));
}

#[test]
fn surv_03_late_follow_up_of_wd_liposarcoma() {
    let mut p = base();
    p.histology = k(Histology::WdLiposarcoma);
    p.resections[0].date = months_ago(132);
    p.last_ct_abdomen_pelvis = k(Some(months_ago(3)));
    assert!(has(&pv(&p), RuleId::Surv03));
    p.resections[0].date = months_ago(108);
    assert!(!has(&pv(&p), RuleId::Surv03));
}

// ---------------------------------------------------------------------------------------
// §2.7 Order checks

#[test]
fn ord_rules_only_on_order_hooks() {
    let mut p = metastatic();
    p.metastasis_timing = k(MetastasisTiming::Synchronous);
    let o = order("met", &[OrderKind::Metastasectomy]);
    let fs = run_with(&p, Hook::PatientView, &[o.clone()], &[]);
    assert!(!fs.iter().any(|f| f.rule.section() == Section::OrderChecks));
    let fs = run_with(&p, Hook::OrderSelect, &[o], &[]);
    assert!(has(&fs, RuleId::Ord06));
    assert!(
        !has(&fs, RuleId::Mdt01),
        "patient-view rules stay off the order hooks"
    );
}

#[test]
fn ord_01_recurrence_resection_when_lr_01_or_02() {
    let o = order("rr", &[OrderKind::RecurrenceResection]);
    let mut p = recurrence();
    p.focality = k(Focality::Multifocal);
    let fs = sign(&p, std::slice::from_ref(&o));
    let f = get(&fs, RuleId::Ord01);
    assert_eq!(f.draft_order.as_deref(), Some("ServiceRequest/rr"));
    assert!(deletes(f, "ServiceRequest/rr"));
    assert!(replaces_with(f, "medical-oncology-referral"));
    assert!(text(f).contains("multifocal"));
    assert!(!has(&sign(&recurrence(), &[o.clone()]), RuleId::Ord01));
    let mut p = recurrence();
    p.ecog = unk();
    assert!(
        !has(&sign(&p, &[o]), RuleId::Ord01),
        "LR-00 is not a reason to stop"
    );
}

#[test]
fn ord_02_debulking_outside_wd_lps() {
    let o = order("deb", &[OrderKind::Debulking]);
    assert!(deletes(
        get(&sign(&recurrence(), &[o.clone()]), RuleId::Ord02),
        "ServiceRequest/deb"
    ));
    let mut p = recurrence();
    p.histology = k(Histology::WdLiposarcoma);
    assert!(!has(&sign(&p, &[o.clone()]), RuleId::Ord02));
    p.histology = unk();
    assert!(!has(&sign(&p, &[o]), RuleId::Ord02));
}

#[test]
fn ord_03_hipec() {
    let fs = sign(&metastatic(), &[order("hipec", &[OrderKind::Hipec])]);
    assert_eq!(get(&fs, RuleId::Ord03).indicator, Indicator::Warning);
    assert!(!has(
        &sign(&metastatic(), &[order("deb", &[OrderKind::Debulking])]),
        RuleId::Ord03
    ));
}

#[test]
fn ord_04_postoperative_therapy_after_recurrence_resection() {
    let mut p = base();
    p.resections.push(resection(
        "rec",
        months_ago(1),
        ResectionTarget::Recurrence,
        Some(Completeness::R0),
    ));
    let rt_order = order("adj-rt", &[OrderKind::PostoperativeRt]);
    let f = sign(&p, &[rt_order.clone()]);
    let f = get(&f, RuleId::Ord04);
    assert_eq!(f.indicator, Indicator::Warning);
    assert!(deletes(f, "ServiceRequest/adj-rt"));
    // Exception: R1 after pre-operative RT, no IORT → info.
    p.resections[1].completeness = k(Completeness::R1);
    let mut course = rt("2026-08-01", RtTiming::PreOperative, Some(50.4));
    course.relative_to = Some("Procedure/rec".into());
    p.radiotherapy = k(vec![course.clone()]);
    let fs = sign(&p, &[rt_order.clone()]);
    assert_eq!(get(&fs, RuleId::Ord04).indicator, Indicator::Info);
    // With IORT the exception does not apply.
    let mut iort = course.clone();
    iort.timing = RtTiming::IntraOperative;
    p.radiotherapy = k(vec![course, iort]);
    assert_eq!(
        get(&sign(&p, &[rt_order.clone()]), RuleId::Ord04).indicator,
        Indicator::Warning
    );
    // After a primary resection: not this rule.
    assert!(!has(&sign(&base(), &[rt_order]), RuleId::Ord04));
}

#[test]
fn ord_05_preoperative_rt_after_prior_rt() {
    let o = order("prt", &[OrderKind::PreoperativeRt]);
    let mut p = recurrence();
    p.radiotherapy = k(vec![rt("2024-10-01", RtTiming::PreOperative, Some(50.4))]);
    assert!(has(&sign(&p, &[o.clone()]), RuleId::Ord05));
    assert!(!has(&sign(&recurrence(), &[o]), RuleId::Ord05));
}

#[test]
fn ord_06_07_08_metastasectomy_checks() {
    let o = order("wedge", &[OrderKind::PulmonaryMetastasectomy]);
    let mut p = metastatic();
    p.metastasis_timing = k(MetastasisTiming::Synchronous);
    p.current_smoker = k(true);
    let fs = sign(&p, &[o.clone()]);
    assert!(replaces_with(
        get(&fs, RuleId::Ord06),
        "medical-oncology-referral"
    ));
    assert!(creates(
        get(&fs, RuleId::Ord07),
        "smoking-cessation-referral"
    ));
    let f = get(&fs, RuleId::Ord08);
    assert!(creates(f, "pulmonary-function-tests"));
    assert!(f.parameters.contains(&ParameterId::PftValidityDays));
    let mut p = metastatic();
    p.pulmonary_function_tested = k(true);
    let fs = sign(&p, &[o.clone()]);
    assert!(!has(&fs, RuleId::Ord06) && !has(&fs, RuleId::Ord07) && !has(&fs, RuleId::Ord08));
    p.current_smoker = unk();
    assert!(!has(&sign(&p, &[o]), RuleId::Ord07));
}

#[test]
fn ord_09_to_12_histology_matched_agents() {
    let mut lms = metastatic();
    lms.histology = k(Histology::Leiomyosarcoma);
    let dd = metastatic();
    let ifo = med("ifo", &[Agent::Ifosfamide, Agent::Doxorubicin]);
    let f = sign(&lms, &[ifo.clone()]);
    let f = get(&f, RuleId::Ord09);
    assert!(replaces_with(f, "dacarbazine") && deletes(f, "MedicationRequest/ifo"));
    assert!(!has(&sign(&dd, &[ifo]), RuleId::Ord09));
    let paz = med("paz", &[Agent::Pazopanib]);
    assert_eq!(
        get(&sign(&dd, &[paz.clone()]), RuleId::Ord10).indicator,
        Indicator::Warning
    );
    assert!(!has(&sign(&lms, &[paz]), RuleId::Ord10));
    let eri = med("eri", &[Agent::Eribulin]);
    assert!(has(&sign(&lms, &[eri.clone()]), RuleId::Ord11));
    assert!(!has(&sign(&dd, &[eri]), RuleId::Ord11));
    let tra = med("tra", &[Agent::Trabectedin]);
    let mut ups = metastatic();
    ups.histology = k(Histology::Ups);
    assert!(has(&sign(&ups, &[tra.clone()]), RuleId::Ord12));
    assert!(!has(&sign(&lms, &[tra.clone()]), RuleId::Ord12));
    assert!(!has(&sign(&dd, &[tra]), RuleId::Ord12));
}

#[test]
fn ord_13_first_line_gemcitabine_docetaxel() {
    let gem = med("gem", &[Agent::Gemcitabine]);
    let doc = med("doc", &[Agent::Docetaxel]);
    let fs = sign(&metastatic(), &[gem.clone(), doc.clone()]);
    let f = get(&fs, RuleId::Ord13);
    assert_eq!(f.draft_order.as_deref(), Some("MedicationRequest/gem"));
    assert!(creates(f, "doxorubicin"));
    assert!(!has(&sign(&metastatic(), &[gem.clone()]), RuleId::Ord13));
    let mut p = metastatic();
    p.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin])],
        agents: [Agent::Doxorubicin].into_iter().collect(),
    });
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = exact_dose(300.0);
    assert!(!has(&sign(&p, &[gem, doc]), RuleId::Ord13));
}

#[test]
fn ord_14_cumulative_anthracycline_limit() {
    let mut p = metastatic();
    p.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin])],
        agents: [Agent::Doxorubicin].into_iter().collect(),
    });
    p.prior_anthracycline = k(true);
    p.anthracycline_dose = exact_dose(375.0);
    let mut dox = med("dox", &[Agent::Doxorubicin]);
    dox.planned_anthracycline_mg_m2 = k(75.0);
    // Exactly at the limit: silent.
    assert!(!has(&sign(&p, &[dox.clone()]), RuleId::Ord14));
    dox.planned_anthracycline_mg_m2 = k(75.5);
    let fs = sign(&p, &[dox.clone()]);
    let f = get(&fs, RuleId::Ord14);
    assert_eq!(f.indicator, Indicator::Critical);
    assert!(deletes(f, "MedicationRequest/dox"));
    assert!(
        f.parameters
            .contains(&ParameterId::DoxorubicinLifetimeMaxMgM2)
    );
    // Doxorubicin only: the epirubicin conversion factor is not used, so not shown.
    assert!(
        !f.parameters
            .contains(&ParameterId::EpirubicinToDoxorubicinFactor)
    );
    assert!(text(f).contains("Prior 375 + this order 76"), "{}", text(f));
    // Unknown prior dose: silent (HIST-01 asks for it on patient-view).
    let mut q = p.clone();
    q.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Doxorubicin])],
        agents: [Agent::Doxorubicin].into_iter().collect(),
    });
    q.prior_anthracycline = k(true);
    q.anthracycline_dose = lower_bound(0.0);
    assert!(!has(&sign(&q, &[dox.clone()]), RuleId::Ord14));
    // … unless this order alone is over the limit.
    let mut big = dox.clone();
    big.planned_anthracycline_mg_m2 = k(480.0);
    let fs = sign(&q, &[big]);
    let f = get(&fs, RuleId::Ord14);
    assert!(
        f.unknown
            .iter()
            .any(|u| u.fact == "anthracycline_cumulative_dose")
    );
    assert!(text(f).contains("at least 480"), "{}", text(f));
    // Prior already over the limit: fires even with the planned dose unknown.
    let mut q = p.clone();
    q.systemic_history = k(SystemicHistory {
        lines: vec![line(1, &[Agent::Epirubicin])],
        agents: [Agent::Epirubicin].into_iter().collect(),
    });
    q.prior_anthracycline = k(true);
    q.anthracycline_dose = exact_dose(460.0);
    let mut epi = med("epi", &[Agent::Epirubicin, Agent::Ifosfamide]);
    epi.planned_anthracycline_mg_m2 = unk();
    assert!(has(&sign(&q, &[epi]), RuleId::Ord14));
}

#[test]
fn ord_15_olaratumab() {
    let fs = sign(
        &metastatic(),
        &[med("ola", &[Agent::Olaratumab, Agent::Doxorubicin])],
    );
    let f = get(&fs, RuleId::Ord15);
    assert_eq!(f.indicator, Indicator::Critical);
    assert!(replaces_with(f, "doxorubicin") && deletes(f, "MedicationRequest/ola"));
    assert!(!has(
        &sign(&metastatic(), &[med("dox", &[Agent::Doxorubicin])]),
        RuleId::Ord15
    ));
}

#[test]
fn ord_16_fna_only_before_a_diagnosis() {
    let mut fna = order("fna", &[OrderKind::FineNeedleAspiration]);
    fna.body_site_retroperitoneum = true;
    let mut p = base();
    p.diagnosis = None;
    let fs = sign(&p, &[fna.clone()]);
    let f = get(&fs, RuleId::Ord16);
    assert!(replaces_with(f, "core-needle-biopsy"));
    // A known sarcoma's recurrence: fine.
    assert!(!has(&sign(&recurrence(), &[fna.clone()]), RuleId::Ord16));
    // FNA elsewhere: silent.
    fna.body_site_retroperitoneum = false;
    assert!(!has(&sign(&p, &[fna.clone()]), RuleId::Ord16));
    // The classifier's own flag (reason → a retroperitoneal Condition) is enough.
    fna.targets_retroperitoneal_mass = true;
    assert!(has(&sign(&p, &[fna]), RuleId::Ord16));
}

#[test]
fn ord_17_routine_bone_imaging() {
    let scan = order("bone", &[OrderKind::Imaging(ImagingKind::BoneScan)]);
    assert!(has(&sign(&metastatic(), &[scan.clone()]), RuleId::Ord17));
    let mut p = metastatic();
    p.histology = k(Histology::SolitaryFibrousTumor);
    assert!(!has(&sign(&p, &[scan.clone()]), RuleId::Ord17));
    let mut p = metastatic();
    p.symptoms = k(vec![Symptom {
        kind: SymptomKind::Pain,
        bone: true,
        source: "Condition/b".into(),
        date: None,
        read_from: ReadFrom::Code,
    }]);
    assert!(!has(&sign(&p, &[scan.clone()]), RuleId::Ord17));
    assert!(
        !has(&sign(&recurrence(), &[scan]), RuleId::Ord17),
        "not metastatic"
    );
}

#[test]
fn ord_18_primary_resection_with_synchronous_metastases() {
    let o = order("primary", &[OrderKind::PrimaryResection]);
    let mut p = metastatic();
    p.metastasis_timing = k(MetastasisTiming::Synchronous);
    assert_eq!(
        get(&sign(&p, &[o.clone()]), RuleId::Ord18).indicator,
        Indicator::Info
    );
    assert!(!has(&sign(&metastatic(), &[o]), RuleId::Ord18));
}

#[test]
fn evaluate_is_fast_for_a_typical_chart() {
    let mut p = metastatic();
    p.disease_state = k(DiseaseState::LocalAndDistant);
    let orders = [
        med("dox", &[Agent::Doxorubicin]),
        order("wedge", &[OrderKind::PulmonaryMetastasectomy]),
    ];
    let params = params();
    let n = 2000;
    let start = std::time::Instant::now();
    for hook in [Hook::PatientView, Hook::OrderSign] {
        for _ in 0..n {
            let fs = evaluate(&RuleInput {
                picture: &p,
                params: &params,
                hook,
                draft_orders: &orders,
                invalid_resources: &[],
                invalid_draft_orders: &[],
                other_patient: &Default::default(),
                unavailable: &[],
            });
            std::hint::black_box(fs);
        }
    }
    let per = start.elapsed() / (2 * n);
    eprintln!("evaluate: {per:?} per call");
    // Debug builds are ~10× slower than release; 100 µs in release ≈ well under 1 ms here.
    assert!(
        per < std::time::Duration::from_millis(1),
        "{per:?} per evaluation"
    );
}

// ---------------------------------------------------------------------------------------
// §4.1 asymmetry: a fact read from a record that failed validation may make advice more
// cautious, never favourable or permissive.

/// A fact read from the invalid record `Observation/defective` (named in `read_in_part`).
fn from_defective<T>(p: &mut Picture, v: T) -> Fact<T> {
    p.read_in_part = vec!["Observation/defective".to_owned()];
    Fact::known(
        v,
        Provenance {
            resources: vec!["Observation/defective".to_owned()],
            read_from: ReadFrom::Code,
            date: None,
            note: None,
        },
    )
}

#[test]
fn lr_03_never_rests_on_a_fact_from_an_invalid_record() {
    let mut p = recurrence();
    p.histology = k(Histology::WdLiposarcoma);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr03]);
    p.histology = from_defective(&mut p, Histology::WdLiposarcoma);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr00]);
    assert!(
        get(&fs, RuleId::Lr00)
            .unknown
            .iter()
            .any(|u| u.fact == "histology"),
        "{:?}",
        get(&fs, RuleId::Lr00).unknown
    );
}

#[test]
fn lr_04_never_rests_on_a_fact_from_an_invalid_record() {
    let mut p = recurrence();
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr04]);
    p.ecog = from_defective(&mut p, 1);
    let fs = pv(&p);
    assert_eq!(lr_verdicts(&fs), [RuleId::Lr00]);
    assert!(
        get(&fs, RuleId::Lr00)
            .unknown
            .iter()
            .any(|u| u.fact == "ecog")
    );
    // The cautious direction still acts: ECOG 3 from the same record gives LR-02.
    let mut p = recurrence();
    p.ecog = from_defective(&mut p, 3);
    assert_eq!(lr_verdicts(&pv(&p)), [RuleId::Lr02]);
}

#[test]
fn met_02_all_criteria_met_never_rests_on_a_fact_from_an_invalid_record() {
    let mut p = metastatic();
    p.ecog = from_defective(&mut p, 1);
    let fs = pv(&p);
    let f = get(&fs, RuleId::Met02);
    assert!(
        f.unknown.iter().any(|u| u.fact == "ecog"),
        "ECOG from a defective record is unknown for MET-02: {}",
        text(f)
    );
    assert!(!text(f).contains("Criterion met: ECOG"), "{}", text(f));
    // ECOG 3 from the same record still fails the criterion.
    let mut p = metastatic();
    p.ecog = from_defective(&mut p, 3);
    let fs = pv(&p);
    assert!(text(get(&fs, RuleId::Met02)).contains("Criterion not met: ECOG 3"));
}

#[test]
fn met_03_never_rests_on_a_fact_from_an_invalid_record() {
    assert!(has(&pv(&metastatic()), RuleId::Met03));
    let mut p = metastatic();
    p.ecog = from_defective(&mut p, 1);
    assert!(!has(&pv(&p), RuleId::Met03));
}

#[test]
fn met_11_never_rests_on_a_fact_from_an_invalid_record() {
    assert!(has(&pv(&metastatic()), RuleId::Met11));
    let mut p = metastatic();
    p.low_volume = from_defective(&mut p, true);
    let fs = pv(&p);
    assert!(!has(&fs, RuleId::Met11));
    assert!(
        get(&fs, RuleId::Data01)
            .unknown
            .iter()
            .any(|u| u.fact == "low_volume"),
        "the reason is listed"
    );
}

#[test]
fn data_02_lists_ten_records_then_how_many_more_with_paths_and_kinds_only() {
    let p = base();
    let invalid: Vec<InvalidResource> = (0..13)
        .map(|i| InvalidResource {
            resource_type: "Observation".into(),
            id: Some(format!("o{i}")),
            violations: vec![SchemaViolation {
                pointer: "/valueQuantity/value".into(),
                message: "\"12 mg\" is not of type \"number\"".into(),
                kind: "wrong JSON type (expected number)".into(),
                paths: vec!["/valueQuantity/value".into()],
            }],
            used: if i == 0 {
                InvalidUse::Used
            } else {
                InvalidUse::ReadInPart
            },
        })
        .collect();
    let fs = run_with(&p, Hook::PatientView, &[], &invalid);
    let f = get(&fs, RuleId::Data02);
    let t = text(f);
    assert!(
        f.records.contains(&"Observation/o9".to_owned())
            && !f.records.contains(&"Observation/o10".to_owned()),
        "{:?}",
        f.records
    );
    assert!(t.contains("… and 3 more"), "{t}");
    // The path and the kind of error, never the message that quotes the invalid value.
    assert!(
        t.contains("/valueQuantity/value: wrong JSON type (expected number)"),
        "{t}"
    );
    assert!(!t.contains("12 mg"), "{t}");
    assert!(
        t.contains(
            "Observation record (still used: its defects lie outside what the service reads)"
        ),
        "{t}"
    );
    assert!(t.contains("read in part"), "{t}");
}
