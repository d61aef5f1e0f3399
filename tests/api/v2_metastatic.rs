//! Catalogue v2 (issue 12) for the metastatic, systemic-therapy, care-team and history rules,
//! through the real HTTP server: MET-02/03/05/09/11, SYS-01/02, MDT-02/03, SCOPE-01 (changed)
//! and PATH-01, WORK-06, HIST-03 (new). For each: a chart where it fires, a near miss where it
//! does not, and one where a fact it needs is unknown (it stays silent and DATA-01 names the
//! fact; it never acts as if the fact were false). The seed passage is in each test's name or
//! comment (TMC n = TARPSWG metastatic RPS consensus, seed 001; CASE = seed 003).
//!
//! The charts are the repository's metastatic example (metachronous lung metastases of a
//! retroperitoneal leiomyosarcoma, four cycles of doxorubicin with stable disease) and local
//! recurrence example (DD-LPS), each with one change.

use crate::support::chart::{RPS, SCT, hist};
use crate::support::http::{
    EXT, Service, add_to_prefetch, applies, example, prefetch_resource, remove_from_prefetch,
    rule_ids, rules_applied, unknown_facts,
};
use crate::support::request::ago;
use rps_cds::knowledge::Hook;
use rps_cds::knowledge::{Knowledge, Parameters};
use rps_cds::rules::{RuleId, RuleInput, evaluate};
use serde_json::{Value, json};

const MET_PATIENT: &str = "Patient/rps-met-001";

fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn observation(id: &str, code: Value, date: &str, value: Value) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "subject": {"reference": MET_PATIENT}, "code": code,
        "effectiveDateTime": date, "valueCodeableConcept": value})
}

fn condition(id: &str, code: Value, onset: &str) -> Value {
    json!({"resourceType": "Condition", "id": id, "subject": {"reference": MET_PATIENT},
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
        "code": code, "onsetDateTime": onset})
}

/// A symptom assessment that found none, ten days ago (v2 §4.1: absence of symptoms needs a
/// current assessment).
fn symptom_assessment() -> Value {
    observation(
        "v2-symptom-assessment",
        cc(RPS, "symptom-assessment", "Symptom assessment"),
        &ago(10),
        cc(RPS, "none", "None"),
    )
}

/// The metastatic example as shipped.
fn shipped() -> Value {
    example("patient-view-metastatic.json")
}

/// The metastatic example with a current symptom assessment that found none.
fn metastatic() -> Value {
    let mut r = shipped();
    add_to_prefetch(&mut r, "observations", symptom_assessment());
    r
}

/// Resectability assessed (`resectable`): with it every TMC 24 criterion is known.
fn resectable(mut r: Value) -> Value {
    add_to_prefetch(
        &mut r,
        "observations",
        observation(
            "v2-resectability",
            cc(RPS, "resectability", "Resectability"),
            "2026-11-18",
            cc(RPS, "resectable", "Resectable"),
        ),
    );
    r
}

fn disease_status(id: &str, date: &str, code: &str, display: &str) -> Value {
    let mut o = observation(
        id,
        json!({"coding": [{"system": "http://loinc.org", "code": "97509-4"}]}),
        date,
        cc(SCT, code, display),
    );
    o["focus"] = json!([{"reference": "Condition/met-lung"}]);
    o
}

fn worsened(id: &str, date: &str) -> Value {
    disease_status(id, date, "271299001", "Patient's condition worsened")
}

/// A record that fails FHIR validation (`status` is not a code): it is set aside, and every
/// fact it could carry is unknown.
fn invalid(resource_type: &str, id: &str, code: Value) -> Value {
    let mut r = json!({"resourceType": resource_type, "id": id, "status": 12,
        "subject": {"reference": MET_PATIENT}, "code": code});
    match resource_type {
        "DiagnosticReport" => r["effectiveDateTime"] = json!("2026-11-20"),
        _ => r["performedDateTime"] = json!("2026-11-20"),
    }
    r
}

fn ct_report_code() -> Value {
    cc(SCT, "1148700003", "CT chest, abdomen and pelvis")
}

fn li_fraumeni() -> Value {
    condition(
        "v2-lfs",
        cc("http://www.orpha.net", "524", "Li-Fraumeni syndrome"),
        "2010-01-01",
    )
}

fn order_sign(mut r: Value, orders: &[Value]) -> Value {
    r["hook"] = json!("order-sign");
    r["context"]["draftOrders"] = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": orders.iter().map(|o| json!({"resource": o})).collect::<Vec<_>>()
    });
    r
}

fn draft(id: &str, code: Value) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
        "subject": {"reference": MET_PATIENT}, "code": code})
}

fn lung_ablation() -> Value {
    let mut d = draft(
        "abl-1",
        json!({"text": "Microwave ablation of lung metastasis"}),
    );
    d["bodySite"] = json!([cc(SCT, "39607008", "Lung structure")]);
    d["reasonReference"] = json!([{"reference": "Condition/met-lung"}]);
    d
}

/// The card whose rules-applied includes `rule` (its own card or the merged one).
fn card_with<'a>(response: &'a Value, rule: &str) -> &'a Value {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["extension"][format!("{EXT}/rules-applied")]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == rule))
        })
        .unwrap_or_else(|| panic!("no card with {rule}: {:?}", rules_applied(response)))
}

/// The unknown facts whose "holds back" names `what` (e.g. "(HIST-03)").
fn held_back(response: &Value, what: &str) -> Vec<String> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["extension"][format!("{EXT}/unknown")]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|u| u["holdsBack"].as_str().is_some_and(|h| h.contains(what)))
                .filter_map(|u| u["fact"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn text_of(card: &Value) -> String {
    format!(
        "{}\n{}\n{}",
        card["summary"].as_str().unwrap_or(""),
        card["detail"].as_str().unwrap_or(""),
        card["source"]["label"].as_str().unwrap_or("")
    )
}

/// The lines of a card's detail that carry `marker` (its statements, not the rule's general
/// recommendation text).
fn lines_with(card: &Value, marker: &str) -> String {
    card["detail"]
        .as_str()
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains(marker))
        .collect::<Vec<_>>()
        .join("\n")
}

fn silenced_by(response: &Value, rule: &str) -> Option<String> {
    response["extension"][format!("{EXT}/silenced")]
        .as_array()?
        .iter()
        .find(|s| s["rule"] == rule)
        .map(|s| s["by"].as_str().unwrap().to_owned())
}

// MET-03 (v2 §4.4): TMC 23 (VB) "a period of observation without any therapy may be
// considered … provided the resectability of existing disease is unlikely to be compromised",
// with TMC 17 (IVA) symptoms and performance status guiding treatment: only with every
// TMC 24 criterion known and none failed, and symptoms known absent.
#[tokio::test]
async fn met03_tmc23_observation_needs_every_criterion_known_and_symptoms_known_absent() {
    let svc = Service::default().await;
    let fires = svc.call_hook(&resectable(metastatic())).await;
    assert!(applies(&fires, "MET-03"), "{:?}", rules_applied(&fires));
    let label = card_with(&fires, "MET-03")["source"]["label"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        label.contains("st. 23 (VB)") && label.contains("st. 17 (IVA)"),
        "{label}"
    );
    assert!(!label.contains("st. 37"), "{label}");

    // Near miss: resectability not assessed — MET-02 finds no criterion failed, but one is
    // unknown, so no observation advice (v1 gave it).
    let near = svc.call_hook(&metastatic()).await;
    assert!(applies(&near, "MET-02") && !applies(&near, "MET-03"));
    assert!(
        unknown_facts(&near).contains(&"resectability".to_owned()),
        "{:?}",
        unknown_facts(&near)
    );

    // Unknown: every criterion met but no symptom assessment: symptoms are unknown, not
    // absent; MET-03 stays silent and DATA-01 names the missing assessment.
    let unknown = svc.call_hook(&resectable(shipped())).await;
    assert!(!applies(&unknown, "MET-03"));
    assert!(unknown_facts(&unknown).contains(&"symptomatic".to_owned()));
    svc.stop().await;
}

// MET-02 wording (v2 §4.4, TMC 25): "favourable biology … stable disease for ≥ 6 months": a
// shorter stable response is "stable for N of M months", not "no favourable response".
#[tokio::test]
async fn met02_tmc25_short_stable_disease_reads_stable_for_n_of_m_months() {
    let svc = Service::default().await;
    // Stable on 2026-10-01 and 2026-11-17 during the doxorubicin line: 1.5 months.
    let mut r = metastatic();
    add_to_prefetch(
        &mut r,
        "observations",
        disease_status(
            "v2-status-oct",
            "2026-10-01",
            "359746009",
            "Patient's condition stable",
        ),
    );
    let short = svc.call_hook(&r).await;
    let detail = text_of(card_with(&short, "MET-02"));
    assert!(detail.contains("stable for 1.5 of 6 months"), "{detail}");
    assert!(!detail.contains("no favourable response"), "{detail}");

    // One stable assessment measures no duration yet; progression on the line is named.
    let single = text_of(card_with(&svc.call_hook(&metastatic()).await, "MET-02"));
    assert!(single.contains("stable at a single assessment"), "{single}");
    let mut r = metastatic();
    add_to_prefetch(&mut r, "observations", worsened("v2-worse", &ago(3)));
    let worse = text_of(card_with(&svc.call_hook(&r).await, "MET-02"));
    assert!(worse.contains("progression on the last line"), "{worse}");

    // Near miss: a regression on the line is a favourable response.
    let mut r = metastatic();
    *prefetch_resource(&mut r, "observations", "met-disease-status") = disease_status(
        "met-disease-status",
        "2026-11-17",
        "268910001",
        "Patient's condition improved",
    );
    let good = svc.call_hook(&r).await;
    let detail = text_of(card_with(&good, "MET-02"));
    assert!(
        detail.contains("favourable response to systemic therapy"),
        "{detail}"
    );
    assert!(!detail.contains("stable for"), "{detail}");

    // Unknown: no response recorded for the line: the response is listed unknown.
    let mut r = metastatic();
    remove_from_prefetch(&mut r, "observations", "met-disease-status");
    let unknown = svc.call_hook(&r).await;
    assert!(applies(&unknown, "MET-02"));
    assert!(
        unknown_facts(&unknown).contains(&"favorable_systemic_response".to_owned()),
        "{:?}",
        unknown_facts(&unknown)
    );
    svc.stop().await;
}

fn kb() -> Knowledge {
    Knowledge::embedded().expect("embedded knowledge base")
}

/// The first pass's findings for a chart (before coherence), and their MET-02 statements.
fn first_pass(chart: &crate::support::chart::Chart) -> (Vec<RuleId>, Vec<String>) {
    let params = Parameters::default();
    let k = kb();
    let picture = chart.picture(&k.terminology, &params);
    let findings = evaluate(&RuleInput {
        picture: &picture,
        params: &params,
        hook: Hook::PatientView,
        draft_orders: &[],
        invalid_resources: &[],
        invalid_draft_orders: &[],
        other_patient: &Default::default(),
        unavailable: &[],
    });
    let met02 = findings
        .iter()
        .filter(|f| f.rule == RuleId::Met02)
        .flat_map(|f| f.statements.clone())
        .collect();
    (findings.iter().map(|f| f.rule).collect(), met02)
}

// MET-02 (v2 §4.4): TMC 24 (IVA), first criterion "primary/local disease completely resected
// or resectable": an active local recurrence assessed unresectable fails it. With local and
// distant disease LR-01 silences MET-02 in the second pass (§5), so the criterion is checked
// on the first pass's finding (real FHIR chart → picture → rules), where MET-12 (branch
// v2-lr) will let it show after a favourable response.
#[test]
fn met02_tmc24_an_unresectable_local_recurrence_fails_the_first_criterion() {
    use crate::support::chart::{Chart, Site, hist};
    let base = || {
        Chart::new("2026-11-20")
            .patient("1960-01-01")
            .diagnosis("2020-01-10", hist::LMS)
            .primary_resection("2020-02-01", Some("R0"))
            .metastasis("2024-06-01", Site::Lung)
            .recurrence("2024-06-10")
            .ecog("2026-11-01", 1)
            .ct_chest_abdomen_pelvis("2026-11-10")
    };
    let (ids, statements) = first_pass(&base().resectability("2026-11-12", "unresectable"));
    assert!(ids.contains(&RuleId::Met02), "{ids:?}");
    assert!(
        statements
            .iter()
            .any(|s| s.contains("active local recurrence assessed unresectable")),
        "{statements:?}"
    );
    // Listed once, not again as "disease assessed as unresectable".
    assert!(
        !statements
            .iter()
            .any(|s| s.contains("disease assessed as unresectable"))
    );
    // Near miss: the recurrence assessed resectable meets the criterion.
    let (_, statements) = first_pass(&base().resectability("2026-11-12", "resectable"));
    assert!(
        !statements.iter().any(|s| s.contains("Criterion not met")),
        "{statements:?}"
    );
    // Unknown: resectability not assessed: listed unknown, not failed.
    let (_, statements) = first_pass(&base());
    assert!(
        statements
            .iter()
            .any(|s| s.starts_with("Not known: Resectability")),
        "{statements:?}"
    );
    assert!(!statements.iter().any(|s| s.contains("Criterion not met")));
}

// MET-05 (v2 §4.4), TMC 27 (IVA) "extrapulmonary disease should be excluded … CT abdomen and
// bone scan or PET": on the order hooks, silent when the same request already orders the
// staging; a pulmonary ablation counts like a pulmonary metastasectomy.
#[tokio::test]
async fn met05_tmc27_order_hooks_silent_when_the_request_orders_the_staging() {
    let svc = Service::default().await;
    let pulmonary = draft("pm-1", cc(SCT, "232632009", "Pulmonary metastasectomy"));
    let pet = draft("pet-1", cc(SCT, "443271005", "PET/CT FDG"));
    // Fires: the metastasectomy alone (CT abdomen recent, no bone scan or PET).
    let fires = svc
        .call_hook(&order_sign(metastatic(), std::slice::from_ref(&pulmonary)))
        .await;
    let met05 = card_with(&fires, "MET-05");
    assert_eq!(
        met05["extension"][format!("{EXT}/draft-order")],
        "ServiceRequest/pm-1"
    );
    // A lung ablation is definitive treatment too.
    let ablation = svc
        .call_hook(&order_sign(metastatic(), &[lung_ablation()]))
        .await;
    assert!(
        applies(&ablation, "MET-05"),
        "{:?}",
        rules_applied(&ablation)
    );
    // Near miss: the PET ordered in the same request.
    let near = svc
        .call_hook(&order_sign(metastatic(), &[pulmonary.clone(), pet]))
        .await;
    assert!(!applies(&near, "MET-05"), "{:?}", rules_applied(&near));
    // Unknown: the imaging reports could not be read (one set aside): whether staging is
    // missing is unknown, and MET-05 does not claim it is.
    let mut r = metastatic();
    add_to_prefetch(
        &mut r,
        "diagnosticReports",
        invalid("DiagnosticReport", "bad-dr", ct_report_code()),
    );
    let unknown = svc.call_hook(&order_sign(r, &[pulmonary])).await;
    assert!(
        !applies(&unknown, "MET-05"),
        "{:?}",
        rules_applied(&unknown)
    );
    svc.stop().await;
}

/// A pulmonary metastasectomy in 2025 of an earlier lung metastasis; the example's current
/// lung metastases then recur after it (MET-09).
fn after_metastasectomy(mut r: Value) -> Value {
    let mut old = condition(
        "met-lung-2024",
        cc(SCT, "94391008", "Secondary malignant neoplasm of lung"),
        "2024-10-01",
    );
    old["clinicalStatus"] = cc(
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "resolved",
        "Resolved",
    );
    add_to_prefetch(&mut r, "conditions", old);
    add_to_prefetch(
        &mut r,
        "procedures",
        json!({"resourceType": "Procedure", "id": "v2-metastasectomy", "status": "completed",
            "subject": {"reference": MET_PATIENT},
            "code": cc(SCT, "65854006", "Wedge resection of lung metastasis"),
            "performedDateTime": "2025-01-15",
            "reasonReference": [{"reference": "Condition/met-lung-2024"}],
            "bodySite": [cc(SCT, "39607008", "Lung structure")]}),
    );
    r
}

// MET-09 (v2 §4.4): TMC 35 (VB), TMC 36 (IVB), and CASE "long-term survival of 29 years was
// achieved after undergoing over 20 surgical resections": the source adds the case report.
#[tokio::test]
async fn met09_repeat_metastasectomy_cites_tmc35_36_and_the_case_report() {
    let svc = Service::default().await;
    let fires = svc.call_hook(&after_metastasectomy(metastatic())).await;
    let label = card_with(&fires, "MET-09")["source"]["label"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        label.contains("st. 35 (VB)") && label.contains("st. 36 (IVB)"),
        "{label}"
    );
    assert!(
        label.contains("Kitasaki") && label.contains("CASE"),
        "{label}"
    );
    // Near miss: no earlier metastasectomy.
    let near = svc.call_hook(&metastatic()).await;
    assert!(!applies(&near, "MET-09"));
    // (MET-09's condition is unchanged in v2, only its source: its unknown-fact case is
    // tests/clinical/rules.rs::met_09_recurrent_metastases_after_metastasectomy.)
    svc.stop().await;
}

// MET-11 (v2 §4.4): TMC 38 (VB) "for patients with indolent or limited disease, an active
// surveillance policy can be adopted": symptoms known absent, low volume, a disease-status
// record within surveillance_assessment_max_age_days without progression, no line ongoing.
#[tokio::test]
async fn met11_tmc38_surveillance_needs_a_current_assessment_and_no_line_ongoing() {
    let svc = Service::default().await;
    // Fires: the doxorubicin order completed (four of four cycles), stable on 2026-11-17.
    let fires = svc.call_hook(&metastatic()).await;
    let card = card_with(&fires, "MET-11");
    let label = card["source"]["label"].as_str().unwrap();
    assert!(label.ends_with("st. 38 (VB)"), "{label}");
    assert!(
        card["extension"][format!("{EXT}/parameters")]
            .get("surveillance_assessment_max_age_days")
            .is_some(),
        "{card:#}"
    );

    // Near miss: the line is still being given (its order is active).
    let mut r = metastatic();
    prefetch_resource(&mut r, "medicationRequests", "met-doxorubicin-order")["status"] =
        json!("active");
    let ongoing = svc.call_hook(&r).await;
    assert!(
        !applies(&ongoing, "MET-11"),
        "{:?}",
        rules_applied(&ongoing)
    );

    // Near miss: progression since.
    let mut r = metastatic();
    add_to_prefetch(&mut r, "observations", worsened("v2-worse", &ago(3)));
    let progressing = svc.call_hook(&r).await;
    assert!(!applies(&progressing, "MET-11"));

    // Unknown: the last disease-status record is older than 120 days.
    let mut r = metastatic();
    prefetch_resource(&mut r, "observations", "met-disease-status")["effectiveDateTime"] =
        json!(ago(200));
    let stale = svc.call_hook(&r).await;
    assert!(!applies(&stale, "MET-11"));
    assert!(
        unknown_facts(&stale).contains(&"latest_disease_status".to_owned()),
        "{:?}",
        unknown_facts(&stale)
    );

    // Unknown: only administrations recorded (no order or statement): whether the line goes
    // on is unknown, and MET-11 does not assume it ended.
    let mut r = metastatic();
    remove_from_prefetch(&mut r, "medicationRequests", "met-doxorubicin-order");
    let undecided = svc.call_hook(&r).await;
    assert!(!applies(&undecided, "MET-11"));
    assert!(unknown_facts(&undecided).contains(&"systemic_line_ongoing".to_owned()));
    svc.stop().await;
}

/// A peritoneal metastasis: sarcomatosis (MET-07).
fn with_sarcomatosis(mut r: Value) -> Value {
    let mut c = condition(
        "met-peritoneum",
        cc(
            "http://hl7.org/fhir/sid/icd-10-cm",
            "C78.6",
            "Secondary malignant neoplasm of retroperitoneum and peritoneum",
        ),
        "2026-08-20",
    );
    c["meta"] = json!({"profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-secondary-cancer-condition"]});
    add_to_prefetch(&mut r, "conditions", c);
    r
}

// §5 pair: "MET-07 (sarcomatosis) → MET-02, MET-03, MET-11 are silent" — TMC 32 (IVB), TMC 33
// (IIIB): surgery in sarcomatosis only palliates; the "1 lesion, low volume".
#[tokio::test]
async fn met07_sarcomatosis_never_appears_with_met02_met03_or_met11() {
    let svc = Service::default().await;
    let near = svc.call_hook(&resectable(metastatic())).await;
    for rule in ["MET-02", "MET-03", "MET-11"] {
        assert!(applies(&near, rule), "{rule}: {:?}", rules_applied(&near));
    }
    assert!(!applies(&near, "MET-07"));
    let both = svc
        .call_hook(&with_sarcomatosis(resectable(metastatic())))
        .await;
    assert!(applies(&both, "MET-07"), "{:?}", rules_applied(&both));
    for rule in ["MET-02", "MET-03", "MET-11"] {
        assert!(
            !applies(&both, rule),
            "{rule} with MET-07: {:?}",
            rules_applied(&both)
        );
        if let Some(by) = silenced_by(&both, rule) {
            assert_eq!(by, "sarcomatosis-silences-local-treatment");
        }
    }
    svc.stop().await;
}

/// The metastatic example without any systemic therapy.
fn untreated(mut r: Value) -> Value {
    r["prefetch"]["medicationAdministrations"] =
        json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
    r["prefetch"]["medicationRequests"] =
        json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
    r
}

fn local_recurrence() -> Value {
    example("patient-view-local-recurrence.json")
}

fn with_focality(mut r: Value, code: &str) -> Value {
    prefetch_resource(&mut r, "observations", "lr-focality")["valueCodeableConcept"] =
        cc(RPS, code, code);
    r
}

// SYS-01 (v2 §4.4): TMC 40 (IA) "an anthracycline-based regimen … alone or in combination",
// TMC 41 (IA; VA) "doxorubicin and DTIC is preferred in LMS and SFT": for metastatic disease
// or a multifocal / unresectable local recurrence; the summary fits the histology.
#[tokio::test]
async fn sys01_tmc40_41_first_line_fits_the_histology_and_covers_multifocal_recurrence() {
    let svc = Service::default().await;
    // Fires: metastatic leiomyosarcoma, no systemic therapy: doxorubicin + dacarbazine.
    let lms = svc.call_hook(&untreated(metastatic())).await;
    let summary = card_with(&lms, "SYS-01")["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(summary.contains("doxorubicin + dacarbazine"), "{summary}");
    assert!(!summary.contains("ifosfamide"), "{summary}");

    // Fires: a multifocal DD-LPS local recurrence (LR-02 multifocal): the summary speaks of
    // ifosfamide or dacarbazine and not of LMS or SFT.
    let ddlps = svc
        .call_hook(&with_focality(local_recurrence(), "multifocal"))
        .await;
    let card = card_with(&ddlps, "SYS-01");
    let summary = card["summary"].as_str().unwrap();
    assert!(summary.contains("ifosfamide"), "{summary}");
    let statements = format!("{summary}\n{}", lines_with(card, "shrinkage"));
    for word in ["leiomyosarcoma", "LMS", "SFT", "solitary fibrous"] {
        assert!(!statements.contains(word), "{word} in {statements}");
    }

    // Near miss: the unifocal resectable recurrence of the example.
    let near = svc.call_hook(&local_recurrence()).await;
    assert!(!applies(&near, "SYS-01"), "{:?}", rules_applied(&near));
    // Near miss: metastatic but already treated.
    assert!(!applies(&svc.call_hook(&metastatic()).await, "SYS-01"));

    // Unknown: focality not recorded (resectable): SYS-01 does not assume unifocal.
    let mut r = local_recurrence();
    remove_from_prefetch(&mut r, "observations", "lr-focality");
    let unknown = svc.call_hook(&r).await;
    assert!(!applies(&unknown, "SYS-01"));
    assert!(unknown_facts(&unknown).contains(&"focality".to_owned()));
    svc.stop().await;
}

// SYS-02 (v2 §4.4): TMC 43 "no clear agent of choice for second-, third- and higher-line
// treatment, or in the event that anthracycline-based therapy is contraindicated" and Figure 1
// (the next line at progression): only when a next line is due; each option with its letter
// and level (43a–f IB, 43g IVB).
#[tokio::test]
async fn sys02_tmc43_next_line_only_at_progression_intolerance_or_contraindication() {
    let svc = Service::default().await;
    // Silent: the doxorubicin line ended with stable disease.
    let silent = svc.call_hook(&metastatic()).await;
    assert!(!applies(&silent, "SYS-02"), "{:?}", rules_applied(&silent));

    // Fires: progression after the line.
    let mut r = metastatic();
    add_to_prefetch(&mut r, "observations", worsened("v2-worse", &ago(3)));
    let progression = svc.call_hook(&r).await;
    let text = lines_with(card_with(&progression, "SYS-02"), "Option:");
    for option in [
        "trabectedin (TMC 43b, IB)",
        "pazopanib (TMC 43d, IB)",
        "(TMC 43e, IB)",
    ] {
        assert!(text.contains(option), "{option} in {text}");
    }
    // Leiomyosarcoma: no ifosfamide (ORD-09) and no SFT-only antiangiogenics (43g).
    assert!(!text.contains("43a") && !text.contains("43g"), "{text}");

    // Fires: anthracycline contraindicated by cardiomyopathy.
    let mut r = metastatic();
    add_to_prefetch(
        &mut r,
        "conditions",
        condition(
            "v2-cmp",
            cc(SCT, "85898001", "Cardiomyopathy"),
            "2026-11-20",
        ),
    );
    let cardiac = svc.call_hook(&r).await;
    assert!(text_of(card_with(&cardiac, "SYS-02")).contains("cardiomyopathy"));

    // Fires: the line stopped for intolerance.
    let mut r = metastatic();
    let order = prefetch_resource(&mut r, "medicationRequests", "met-doxorubicin-order");
    order["status"] = json!("stopped");
    order["statusReason"] = json!({"text": "Stopped for toxicity"});
    let intolerance = svc.call_hook(&r).await;
    assert!(text_of(card_with(&intolerance, "SYS-02")).contains("intolerance"));

    // Near miss: cardiomyopathy, but a line (the doxorubicin order, active) is under way
    // without progression.
    let mut r = metastatic();
    add_to_prefetch(
        &mut r,
        "conditions",
        condition(
            "v2-cmp",
            cc(SCT, "85898001", "Cardiomyopathy"),
            "2026-11-20",
        ),
    );
    prefetch_resource(&mut r, "medicationRequests", "met-doxorubicin-order")["status"] =
        json!("active");
    assert!(!applies(&svc.call_hook(&r).await, "SYS-02"));

    // Unknown: no response recorded for the line: whether it progressed is unknown; SYS-02
    // stays silent and DATA-01 names it.
    let mut r = metastatic();
    remove_from_prefetch(&mut r, "observations", "met-disease-status");
    let unknown = svc.call_hook(&r).await;
    assert!(!applies(&unknown, "SYS-02"));
    assert!(unknown_facts(&unknown).contains(&"progression_on_systemic".to_owned()));
    svc.stop().await;
}

fn with_histology(mut r: Value, icdo3: &str, display: &str) -> Value {
    prefetch_resource(&mut r, "conditions", "met-primary-lms")["extension"][0]["valueCodeableConcept"] = json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/icd-o-3",
            "code": icdo3, "display": display}]});
    r
}

fn ifosfamide_line(mut r: Value, response: (&str, &str)) -> Value {
    for (i, date) in ["2025-03-01", "2025-03-22"].iter().enumerate() {
        add_to_prefetch(
            &mut r,
            "medicationAdministrations",
            json!({"resourceType": "MedicationAdministration", "id": format!("v2-ifo-{i}"),
                "status": "completed", "subject": {"reference": MET_PATIENT},
                "medicationCodeableConcept": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "5657", "ifosfamide"),
                "effectiveDateTime": date}),
        );
    }
    add_to_prefetch(
        &mut r,
        "observations",
        disease_status("v2-ifo-response", "2025-05-01", response.0, response.1),
    );
    r
}

// SYS-02 (v2 §4.4), TMC 43a (IB) "infusional … ifosfamide … for dedifferentiated LPS" and
// Figure 1 (high-dose ifosfamide again after an earlier response): ifosfamide stays an option
// after earlier ifosfamide only if that line did not progress.
#[tokio::test]
async fn sys02_tmc43a_ifosfamide_again_only_after_a_line_that_did_not_progress() {
    let svc = Service::default().await;
    let ddlps = |response| {
        let mut r = ifosfamide_line(
            with_histology(metastatic(), "8858/3", "Dedifferentiated liposarcoma"),
            response,
        );
        add_to_prefetch(&mut r, "observations", worsened("v2-worse", &ago(3)));
        r
    };
    let responded = svc
        .call_hook(&ddlps(("268910001", "Patient's condition improved")))
        .await;
    let text = lines_with(card_with(&responded, "SYS-02"), "Option:");
    assert!(
        text.contains("ifosfamide") && text.contains("43a"),
        "{text}"
    );
    assert!(text.contains("eribulin (TMC 43c, IB)"), "{text}");
    let progressed = svc
        .call_hook(&ddlps(("271299001", "Patient's condition worsened")))
        .await;
    let text = lines_with(card_with(&progressed, "SYS-02"), "Option:");
    assert!(text.contains("eribulin") && !text.contains("43a"), "{text}");
    svc.stop().await;
}

// MDT-02, MDT-03 (v2 §4.4): TMC 21 (IA), 22 (VB), 39 (VA) — the consensus covers "multifocal
// recurrent or metastatic RPS": also for a multifocal local recurrence.
#[tokio::test]
async fn mdt02_mdt03_tmc21_22_39_also_for_a_multifocal_local_recurrence() {
    let svc = Service::default().await;
    let fires = svc
        .call_hook(&with_focality(local_recurrence(), "multifocal"))
        .await;
    let care = card_with(&fires, "MDT-02");
    let applied = care["extension"][format!("{EXT}/rules-applied")].clone();
    assert!(
        applied.as_array().unwrap().iter().any(|x| x == "MDT-03"),
        "{applied}"
    );
    assert_eq!(care["source"]["topic"]["code"], "MDT-01");
    // Near miss: the unifocal recurrence.
    let near = svc.call_hook(&local_recurrence()).await;
    assert!(!applies(&near, "MDT-02") && !applies(&near, "MDT-03"));
    // Unknown: focality not recorded.
    let mut r = local_recurrence();
    remove_from_prefetch(&mut r, "observations", "lr-focality");
    let unknown = svc.call_hook(&r).await;
    assert!(!applies(&unknown, "MDT-02"));
    assert!(unknown_facts(&unknown).contains(&"focality".to_owned()));
    svc.stop().await;
}

// SCOPE-01 (v2 §4.2): TMC 43h (VB) "sirolimus and other mTOR inhibitors can be considered in
// PEComa"; 43i (VB) "crizotinib and other ALK inhibitors … for inflammatory myofibroblastic
// tumor, although they are not yet approved for this application".
#[tokio::test]
async fn scope01_tmc43h_43i_pecoma_and_imt_get_their_one_line() {
    let svc = Service::default().await;
    let pecoma = svc
        .call_hook(&with_histology(metastatic(), "8714/3", "PEComa"))
        .await;
    assert_eq!(rule_ids(&pecoma), ["SCOPE-01"]);
    let text = text_of(&pecoma["cards"][0]);
    assert!(
        text.contains("sirolimus") && text.contains("43h, VB"),
        "{text}"
    );
    let imt = svc
        .call_hook(&with_histology(
            metastatic(),
            "8825/1",
            "Inflammatory myofibroblastic tumour",
        ))
        .await;
    assert_eq!(rule_ids(&imt), ["SCOPE-01"]);
    let text = text_of(&imt["cards"][0]);
    assert!(
        text.contains("crizotinib") && text.contains("not approved") && text.contains("43i, VB"),
        "{text}"
    );
    // Near miss: GIST is out of scope without such a line.
    let gist = svc
        .call_hook(&with_histology(metastatic(), hist::GIST.0, "GIST"))
        .await;
    assert_eq!(rule_ids(&gist), ["SCOPE-01"]);
    let text = text_of(&gist["cards"][0]);
    assert!(
        !text.contains("sirolimus") && !text.contains("crizotinib"),
        "{text}"
    );
    svc.stop().await;
}

fn pathology_review() -> Value {
    json!({"resourceType": "DiagnosticReport", "id": "v2-path-review", "status": "final",
        "subject": {"reference": MET_PATIENT},
        "code": {"text": "Sarcoma pathology review (second opinion)"},
        "effectiveDateTime": "2026-09-01"})
}

// PATH-01 (new, §4.7): TMC 11 (VA) "pathology review of the primary tumor should be carried
// out, including those cases where the original diagnosis was made at a sarcoma center";
// molecular confirmation (IVA). One line of the Care team card.
#[tokio::test]
async fn path01_tmc11_expert_pathology_review_joins_the_care_team_card() {
    let svc = Service::default().await;
    let fires = svc.call_hook(&metastatic()).await;
    let care = card_with(&fires, "PATH-01");
    assert_eq!(care["source"]["topic"]["code"], "MDT-01");
    assert!(
        care["summary"].as_str().unwrap().starts_with("Care team: "),
        "{care:#}"
    );
    assert!(!rule_ids(&fires).contains(&"PATH-01".to_owned()));
    // Also for a local recurrence.
    assert!(applies(
        &svc.call_hook(&local_recurrence()).await,
        "PATH-01"
    ));
    // Near miss: a review is recorded.
    let mut r = metastatic();
    add_to_prefetch(&mut r, "diagnosticReports", pathology_review());
    assert!(!applies(&svc.call_hook(&r).await, "PATH-01"));
    // Unknown: the pathology review report failed validation where its status is: whether a
    // review was done is unknown.
    let mut r = metastatic();
    add_to_prefetch(
        &mut r,
        "diagnosticReports",
        invalid(
            "DiagnosticReport",
            "bad-dr",
            json!({"text": "Sarcoma pathology review"}),
        ),
    );
    let unknown = svc.call_hook(&r).await;
    assert!(!applies(&unknown, "PATH-01"));
    assert!(unknown_facts(&unknown).contains(&"expert_pathology_review".to_owned()));
    svc.stop().await;
}

fn biopsy_of_lung_metastasis() -> Value {
    json!({"resourceType": "Procedure", "id": "v2-biopsy", "status": "completed",
        "subject": {"reference": MET_PATIENT},
        "code": cc(SCT, "129249002", "Core needle biopsy"),
        "performedDateTime": "2026-08-25",
        "reasonReference": [{"reference": "Condition/met-lung"}]})
}

// WORK-06 (new, §4.7): TMC 12 (VB) "lesions … in the context of a known second malignancy or a
// hereditary syndrome (e.g. Li–Fraumeni) should be sampled … If ablative therapies are
// planned where tissue destruction will preclude pathologic diagnosis, biopsy should be
// considered", TMC 14 (VB).
#[tokio::test]
async fn work06_tmc12_14_biopsy_before_ablation_of_an_undiagnosed_lesion() {
    let svc = Service::default().await;
    // Patient-view: ablation considered (MET-04, lung metastases), Li-Fraumeni, no biopsy.
    let mut r = metastatic();
    add_to_prefetch(&mut r, "conditions", li_fraumeni());
    let fires = svc.call_hook(&r).await;
    let card = card_with(&fires, "WORK-06");
    assert!(
        card["source"]["label"]
            .as_str()
            .unwrap()
            .contains("st. 12 (VB), st. 14 (VB)")
    );
    // Order-sign: the ablation order itself.
    let sign = svc
        .call_hook(&order_sign(r.clone(), &[lung_ablation()]))
        .await;
    let card = card_with(&sign, "WORK-06");
    assert_eq!(
        card["extension"][format!("{EXT}/draft-order")],
        "ServiceRequest/abl-1"
    );

    // Near miss: the lung metastasis was biopsied.
    let mut biopsied = r.clone();
    add_to_prefetch(&mut biopsied, "procedures", biopsy_of_lung_metastasis());
    assert!(!applies(&svc.call_hook(&biopsied).await, "WORK-06"));
    let sign = svc
        .call_hook(&order_sign(biopsied, &[lung_ablation()]))
        .await;
    assert!(!applies(&sign, "WORK-06"));
    // Near miss: no hereditary syndrome or second cancer.
    assert!(!applies(&svc.call_hook(&metastatic()).await, "WORK-06"));

    // Unknown: a histology (pathology) Observation failed validation where its status is: the
    // lesion may have a tissue diagnosis, and WORK-06 does not claim it has none.
    let mut unknown = r;
    let mut bad = invalid(
        "Observation",
        "bad-histology",
        json!({"coding": [{"system": "http://loinc.org", "code": "31206-6"}],
            "text": "Histology"}),
    );
    bad["effectiveDateTime"] = json!("2026-09-01");
    bad.as_object_mut().unwrap().remove("performedDateTime");
    add_to_prefetch(&mut unknown, "observations", bad);
    let unknown = svc.call_hook(&unknown).await;
    assert!(!applies(&unknown, "WORK-06"));
    assert!(unknown_facts(&unknown).contains(&"metastasis_biopsied".to_owned()));
    svc.stop().await;
}

// HIST-03 (new, §4.7): TMC 2 (VA) "operative reports from all prior procedures should be
// obtained and details of resection(s) undertaken to date understood". Joins the Missing
// information card.
#[tokio::test]
async fn hist03_tmc2_primary_resection_known_only_from_history() {
    let svc = Service::default().await;
    // Fires: the primary resection without its completeness (R0/R1/R2).
    let mut r = metastatic();
    remove_from_prefetch(&mut r, "observations", "met-residual-tumour");
    let fires = svc.call_hook(&r).await;
    let card = card_with(&fires, "HIST-03");
    assert!(
        card["summary"]
            .as_str()
            .unwrap()
            .starts_with("Missing information: "),
        "{card:#}"
    );
    assert_eq!(card["source"]["topic"]["code"], "DATA-01");
    // Near miss: the resection with date and completeness.
    assert!(!applies(&svc.call_hook(&metastatic()).await, "HIST-03"));
    // Fires: the resection recorded without its date.
    let mut r = metastatic();
    prefetch_resource(&mut r, "procedures", "met-primary-resection")
        .as_object_mut()
        .unwrap()
        .remove("performedDateTime");
    assert!(applies(&svc.call_hook(&r).await, "HIST-03"));
    // Unknown: the resection Procedure failed validation: what it recorded (the primary's
    // resection, and with it the disease state) is unknown; HIST-03 does not claim it is
    // missing, and DATA-01 names what held it back.
    let mut r = metastatic();
    remove_from_prefetch(&mut r, "procedures", "met-primary-resection");
    add_to_prefetch(
        &mut r,
        "procedures",
        invalid(
            "Procedure",
            "bad-proc",
            json!({"coding": [{"system": SCT, "code": "65854006"}],
                "text": "En bloc resection of retroperitoneal tumour"}),
        ),
    );
    let unknown = svc.call_hook(&r).await;
    assert!(!applies(&unknown, "HIST-03"));
    assert!(
        !held_back(&unknown, "(HIST-03)").is_empty(),
        "{:?}",
        unknown_facts(&unknown)
    );
    svc.stop().await;
}

// Issue 12 target: a metastatic patient-view has ≤ 6 cards. The counts are printed for the
// report (`cargo test --test api v2_metastatic::card_counts -- --nocapture`).
#[tokio::test]
async fn card_counts_metastatic_example_within_six() {
    let svc = Service::default().await;
    for (name, request) in [
        ("patient-view-metastatic.json as shipped", shipped()),
        ("with a current symptom assessment", metastatic()),
        (
            "with symptoms assessed and resectable",
            resectable(metastatic()),
        ),
    ] {
        let r = svc.call_hook(&request).await;
        let n = r["cards"].as_array().unwrap().len();
        println!("{name}: {n} cards {:?}", rule_ids(&r));
        assert!(n <= 6, "{name}: {n} cards {:?}", rule_ids(&r));
    }
    svc.stop().await;
}
