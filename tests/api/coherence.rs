//! One response, one plan (docs/clinical-spec.md §5) through the real HTTP server: each coherence
//! pair built as a chart (the repository's example charts with one change) never shows both
//! rules, with the near miss where the first rule does not fire and the second does; the
//! merged cards' shape and `rules-applied`; `max_cards`; one card per rule per draft order;
//! `selectionBehavior`; the card counts of the example charts.

use crate::support::http::{Service, example, rule_ids};
use rps_cds::config::Config;
use serde_json::{Value, json};

const EXT: &str = "https://fhir.rps-cds.org";
const SCT: &str = "http://snomed.info/sct";
const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const PATIENT: &str = "Patient/rps-met-001";

fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn condition(id: &str, code: Value, onset: &str, status: &str) -> Value {
    json!({
        "resourceType": "Condition", "id": id, "subject": {"reference": PATIENT},
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", status, status),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
        "code": code, "onsetDateTime": onset
    })
}

fn add(request: &mut Value, key: &str, resource: Value) {
    request["prefetch"][key]["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "resource": resource }));
}

/// The metastatic example: metachronous lung metastases (2 lesions) of a retroperitoneal
/// leiomyosarcoma, with a current symptom assessment that found none (v2 §4.1: absence of
/// symptoms needs one); MET-02 finds no failed criterion, MET-03, MET-05 and MET-11 fire.
fn metastatic() -> Value {
    let mut r = example("patient-view-metastatic.json");
    let patient = r["context"]["patientId"].as_str().unwrap().to_owned();
    let assessed = (chrono::Utc::now() - chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    add(
        &mut r,
        "observations",
        json!({"resourceType": "Observation", "id": "coherence-symptom-assessment",
            "status": "final",
            "code": {"coding": [{"system": "https://fhir.rps-cds.org/CodeSystem/rps-observation",
                "code": "symptom-assessment"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": assessed,
            "valueCodeableConcept": {"coding": [{"system": "https://fhir.rps-cds.org/CodeSystem/rps-observation",
                "code": "none"}]}}),
    );
    r
}

/// The metastatic chart with its resectability assessed (resectable): every metastasectomy
/// criterion is then known and met, so MET-03 fires too (v2 §4.4).
fn resectable(mut r: Value) -> Value {
    let patient = r["context"]["patientId"].as_str().unwrap().to_owned();
    let rps = "https://fhir.rps-cds.org/CodeSystem/rps-observation";
    add(
        &mut r,
        "observations",
        json!({"resourceType": "Observation", "id": "coherence-resectability",
            "status": "final",
            "code": {"coding": [{"system": rps, "code": "resectability"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": "2026-11-18",
            "valueCodeableConcept": {"coding": [{"system": rps, "code": "resectable"}]}}),
    );
    r
}

/// A local recurrence detected with the lung metastases: synchronous local and distant
/// recurrence (LR-01).
fn with_local_recurrence(mut r: Value) -> Value {
    let mut c = condition(
        "lr-1",
        cc(ICD10CM, "C48.0", "Malignant neoplasm of retroperitoneum"),
        "2026-08-20",
        "recurrence",
    );
    c["bodySite"] = json!([cc(SCT, "82849001", "Retroperitoneal structure")]);
    add(&mut r, "conditions", c);
    r
}

/// The lung metastases dated nine days after the primary's diagnosis: synchronous (MET-01),
/// before treatment: v2 MET-01 is silent once a systemic line has started since the
/// metastases were found (§4.4), so the example's doxorubicin is left out.
fn synchronous(mut r: Value) -> Value {
    for e in r["prefetch"]["conditions"]["entry"].as_array_mut().unwrap() {
        if e["resource"]["id"] == "met-lung" {
            e["resource"]["onsetDateTime"] = json!("2022-10-20");
        }
    }
    for key in ["medicationAdministrations", "medicationRequests"] {
        r["prefetch"][key]["entry"] = json!([]);
        r["prefetch"][key]["total"] = json!(0);
    }
    r
}

/// A peritoneal metastasis: sarcomatosis (MET-07).
fn with_sarcomatosis(mut r: Value) -> Value {
    let mut c = condition(
        "met-peritoneum",
        cc(
            ICD10CM,
            "C78.6",
            "Secondary malignant neoplasm of retroperitoneum and peritoneum",
        ),
        "2026-08-20",
        "active",
    );
    c["meta"] = json!({"profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-secondary-cancer-condition"]});
    add(&mut r, "conditions", c);
    r
}

/// Pre-operative radiotherapy without a recorded dose (HIST-02).
fn with_undosed_radiotherapy(mut r: Value) -> Value {
    add(
        &mut r,
        "procedures",
        json!({
            "resourceType": "Procedure", "id": "rt-1", "status": "completed",
            "subject": {"reference": PATIENT},
            "code": cc(SCT, "1217123003", "Radiotherapy course of treatment"),
            "performedPeriod": {"start": "2022-09-01", "end": "2022-10-05"}
        }),
    );
    r
}

fn draft(id: &str, code: &str, display: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
        "subject": {"reference": PATIENT}, "code": cc(SCT, code, display)
    })
}

fn fdg_pet() -> Value {
    draft("pet-1", "443271005", "PET/CT FDG")
}

fn pulmonary_metastasectomy() -> Value {
    draft("pm-1", "232632009", "Pulmonary metastasectomy")
}

/// The chart as an order-sign call with `orders` as draft orders.
fn order_sign(mut r: Value, orders: &[Value]) -> Value {
    r["hook"] = json!("order-sign");
    r["context"]["draftOrders"] = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": orders.iter().map(|o| json!({"resource": o})).collect::<Vec<_>>()
    });
    r
}

/// Posts the call to its service; checks status and schema; returns the response.
async fn call(svc: &Service, request: &Value) -> Value {
    svc.call_hook(request).await
}

/// Every rule id that applied (merged members included).
fn applied(response: &Value) -> Vec<String> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["extension"][format!("{EXT}/rules-applied")]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn silenced_by(response: &Value, rule: &str) -> Option<String> {
    response["extension"][format!("{EXT}/silenced")]
        .as_array()?
        .iter()
        .find(|s| s["rule"] == rule)
        .map(|s| s["by"].as_str().unwrap().to_owned())
}

fn card<'a>(response: &'a Value, rule: &str) -> &'a Value {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == rule)
        .unwrap_or_else(|| panic!("no {rule} card in {:?}", rule_ids(response)))
}

/// Asserts that `first` applied and none of `silenced` did (each named in the response's
/// `silenced` extension with `pair` when it fired in the first pass).
fn assert_pair(response: &Value, first: &str, silenced: &[&str], pair: &str) {
    let ids = applied(response);
    assert!(ids.contains(&first.to_owned()), "{first} missing: {ids:?}");
    for s in silenced {
        assert!(
            !ids.contains(&(*s).to_owned()),
            "{s} shown with {first}: {ids:?}"
        );
        if let Some(by) = silenced_by(response, s) {
            assert_eq!(by, pair, "{s}");
        }
    }
}

// §5: "LR-01 fires → MET-02, MET-03, MET-05 (pv), MET-11 are silent; SYS-01 (or SYS-02)
// carries the systemic plan." The issue's example: synchronous local and distant recurrence
// with "metastasectomy: no criterion failed", "a period of observation", "considered for
// definitive treatment" and "active surveillance is acceptable" in the same response.
#[tokio::test]
async fn lr01_never_appears_with_met02_met03_met05_or_met11() {
    let svc = Service::default().await;
    // Near miss: no local recurrence, no LR-01: the metastatic plan is shown.
    let near = call(&svc, &resectable(metastatic())).await;
    let ids = applied(&near);
    assert!(!ids.contains(&"LR-01".to_owned()), "{ids:?}");
    for rule in ["MET-02", "MET-03", "MET-05", "MET-11"] {
        assert!(
            ids.contains(&rule.to_owned()),
            "{rule} in the near miss: {ids:?}"
        );
    }
    let both = call(&svc, &with_local_recurrence(resectable(metastatic()))).await;
    assert_pair(
        &both,
        "LR-01",
        &["MET-02", "MET-03", "MET-05", "MET-11"],
        "lr01-silences-metastasectomy-plan",
    );
    assert_eq!(
        silenced_by(&both, "MET-02").as_deref(),
        Some("lr01-silences-metastasectomy-plan")
    );
    // The systemic plan stays with LR-01 (its medical oncology referral). SYS-02 (v2 §4.4)
    // is silent: the doxorubicin line ended with stable disease, no next line is due.
    let lr01 = card(&both, "LR-01");
    assert!(
        lr01["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["label"] == "Refer to medical oncology"),
        "{lr01:#}"
    );
    assert!(!applied(&both).contains(&"SYS-02".to_owned()));
    svc.stop().await;
}

// §5: "A 'systemic therapy first' verdict (MET-01, LR-01) never appears with 'active
// surveillance' (MET-11) or 'period of observation' (MET-03); MET-01 wins." The issue's
// example: "active surveillance is acceptable" next to "systemic therapy first" for
// synchronous lung metastases.
#[tokio::test]
async fn systemic_first_never_appears_with_surveillance_or_observation() {
    let svc = Service::default().await;
    let near = call(&svc, &metastatic()).await;
    let ids = applied(&near);
    assert!(!ids.contains(&"MET-01".to_owned()) && ids.contains(&"MET-11".to_owned()));
    let both = call(&svc, &synchronous(metastatic())).await;
    assert_pair(
        &both,
        "MET-01",
        &["MET-11", "MET-03"],
        "systemic-first-over-observation",
    );
    assert_eq!(
        silenced_by(&both, "MET-11").as_deref(),
        Some("systemic-first-over-observation")
    );
    // LR-01 is the other "systemic first" verdict.
    let lr01 = call(&svc, &with_local_recurrence(metastatic())).await;
    assert_pair(
        &lr01,
        "LR-01",
        &["MET-11", "MET-03"],
        "lr01-silences-metastasectomy-plan",
    );
    svc.stop().await;
}

// §5: "MET-07 (sarcomatosis) → MET-02, MET-03, MET-11 are silent." The example: in
// sarcomatosis one peritoneal Condition is counted as "1 lesion, low volume".
#[tokio::test]
async fn sarcomatosis_never_appears_with_metastasectomy_observation_or_surveillance() {
    let svc = Service::default().await;
    let near = call(&svc, &metastatic()).await;
    assert!(!applied(&near).contains(&"MET-07".to_owned()));
    let both = call(&svc, &with_sarcomatosis(metastatic())).await;
    assert_pair(
        &both,
        "MET-07",
        &["MET-02", "MET-03", "MET-11"],
        "sarcomatosis-silences-local-treatment",
    );
    // MET-11 (v2 §4.4) itself excludes sarcomatosis, so the pair has nothing left to
    // silence there; assert_pair checks any silencing names this pair.
    svc.stop().await;
}

// §5 / §4.5: "ORD-17 never contradicts MET-05": silent when lung metastases are being
// considered for definitive treatment (a pulmonary metastasectomy order in the same request,
// or MET-02 with no failed criterion). The issue's example: "routine bone imaging is
// unnecessary" on the FDG-PET ordered to stage a pulmonary metastasectomy (TMC 27).
#[tokio::test]
async fn ord17_never_contradicts_met05() {
    let svc = Service::default().await;
    // Near miss: synchronous metastases (no MET-02 assessment), the PET alone: ORD-17 fires.
    let near = call(&svc, &order_sign(synchronous(metastatic()), &[fdg_pet()])).await;
    assert_eq!(rule_ids(&near), ["ORD-17"]);
    // The PET staging a pulmonary metastasectomy ordered with it: no ORD-17. MET-05 is silent
    // too (v2 §4.4): the request itself orders the bone imaging, and the CT abdomen is recent.
    let staged = call(
        &svc,
        &order_sign(
            synchronous(metastatic()),
            &[fdg_pet(), pulmonary_metastasectomy()],
        ),
    )
    .await;
    assert!(!applied(&staged).contains(&"ORD-17".to_owned()));
    assert!(!applied(&staged).contains(&"MET-05".to_owned()));
    assert_eq!(
        silenced_by(&staged, "ORD-17").as_deref(),
        Some("ord17-never-contradicts-met05")
    );
    // MET-02 finds no failed criterion (metachronous lung metastases): the PET alone is not
    // "routine" bone imaging either.
    let candidate = call(&svc, &order_sign(metastatic(), &[fdg_pet()])).await;
    assert!(!applied(&candidate).contains(&"ORD-17".to_owned()));
    assert_eq!(
        silenced_by(&candidate, "ORD-17").as_deref(),
        Some("ord17-never-contradicts-met05")
    );
    svc.stop().await;
}

// §5: "At most one card per rule per draft order."
#[tokio::test]
async fn a_draft_order_sent_twice_gives_one_card_per_rule() {
    let svc = Service::default().await;
    let r = call(
        &svc,
        &order_sign(synchronous(metastatic()), &[fdg_pet(), fdg_pet()]),
    )
    .await;
    assert_eq!(rule_ids(&r), ["ORD-17"]);
    svc.stop().await;
}

// §5: MDT-01/02/03 are one "Care team" card and DATA-01/HIST-01/02 one "Missing
// information" card: each recommendation its own line with its own statement, level and
// suggestion, `any`, rule id the first that applied, `rules-applied` every id; the audit
// trail keeps each id.
#[tokio::test]
async fn care_team_and_missing_information_are_one_card_each_listing_every_rule() {
    let svc = Service::default().await;
    let r = call(&svc, &with_undosed_radiotherapy(metastatic())).await;
    let care = card(&r, "MDT-01");
    assert_eq!(
        care["extension"][format!("{EXT}/rules-applied")],
        json!(["MDT-01", "MDT-02", "MDT-03", "PATH-01"])
    );
    assert!(
        care["summary"].as_str().unwrap().starts_with("Care team: "),
        "{care:#}"
    );
    assert_eq!(care["selectionBehavior"], "any");
    let detail = care["detail"].as_str().unwrap();
    // One bullet per recommendation, each with its own level; the titles are the summary.
    for (title, level) in [
        ("sarcoma tumour board review", "VA"),
        ("palliative care and goals of care", "IA; VB"),
        ("clinical trial enrolment", "VA"),
        ("expert sarcoma pathology review", "VA; IVA"),
    ] {
        assert!(
            care["summary"].as_str().unwrap().contains(title),
            "{care:#}"
        );
        assert!(
            detail
                .lines()
                .any(|l| l.starts_with("- ") && l.contains(&format!("({level})"))),
            "{detail}"
        );
    }
    let lines = care["extension"][format!("{EXT}/recommendations")]
        .as_array()
        .unwrap();
    assert_eq!(lines.len(), 4);
    let suggested: usize = lines
        .iter()
        .map(|l| l["suggestions"].as_array().unwrap().len())
        .sum();
    assert_eq!(suggested, care["suggestions"].as_array().unwrap().len());
    assert!(suggested >= 1, "{care:#}");
    for id in ["MDT-02", "MDT-03", "PATH-01"] {
        assert!(
            !rule_ids(&r).contains(&id.to_owned()),
            "{id} has no card of its own"
        );
    }

    let missing = card(&r, "DATA-01");
    assert_eq!(
        missing["extension"][format!("{EXT}/rules-applied")],
        json!(["DATA-01", "HIST-02"])
    );
    assert!(
        missing["summary"]
            .as_str()
            .unwrap()
            .starts_with("Missing information: ")
    );
    assert_eq!(missing["indicator"], "info");

    // The audit trail counts each rule that applied, merged members included.
    let stats: Value = svc
        .client
        .get(svc.url("/admin/rules/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for id in ["MDT-01", "MDT-02", "MDT-03", "DATA-01", "HIST-02"] {
        let row = stats["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["rule_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {stats:#}"));
        assert_eq!(row["fired"], 1, "{row:#}");
    }
    svc.stop().await;
}

async fn with_max_cards(n: f64) -> Service {
    let mut config = Config::default();
    config.parameters.insert("max_cards".to_owned(), n);
    Service::start(config).await
}

// §5: at most `max_cards` cards, but critical cards, the verdict card and cards tied to a
// draft order are never left out; the rest kept in catalogue priority; the last card names
// each one left out, and the Missing information card, when present, is that last card.
#[tokio::test]
async fn max_cards_keeps_the_verdict_and_names_each_card_left_out_on_the_last_card() {
    let svc = with_max_cards(4.0).await;
    let r = call(&svc, &with_undosed_radiotherapy(resectable(metastatic()))).await;
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 4, "{:?}", rule_ids(&r));
    let ids = rule_ids(&r);
    // The verdict (MET-02) is kept; the warning (MET-05) before the info cards.
    assert!(ids.contains(&"MET-02".to_owned()), "{ids:?}");
    assert_eq!(ids[0], "MET-05", "{ids:?}");
    // The Missing information card is last and names each card left out by its summary.
    let last = cards.last().unwrap();
    // (Nothing is unknown in this chart, so the group's card is HIST-02's.)
    assert_eq!(last["source"]["topic"]["code"], "HIST-02");
    let left_out = last["extension"][format!("{EXT}/left-out")]
        .as_array()
        .unwrap();
    let left_ids: Vec<&str> = left_out
        .iter()
        .map(|l| l["rule"].as_str().unwrap())
        .collect();
    assert_eq!(left_ids, ["MET-03", "MET-04", "MET-11"]);
    let detail = last["detail"].as_str().unwrap();
    for l in left_out {
        assert!(detail.contains(l["summary"].as_str().unwrap()), "{detail}");
    }
    assert_eq!(
        last["extension"][format!("{EXT}/parameters")]["max_cards"],
        "4 (site configuration)"
    );
    // Left out is not silenced.
    assert!(silenced_by(&r, "MET-03").is_none());
    svc.stop().await;

    // Order hooks: every card is tied to a draft order (ORD-15 is also critical): none is
    // left out, whatever max_cards says.
    let svc = with_max_cards(1.0).await;
    let r = call(&svc, &example("order-sign.json")).await;
    assert_eq!(rule_ids(&r), ["ORD-15", "ORD-03"]);
    assert!(
        r["cards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["extension"][format!("{EXT}/left-out")].is_null())
    );
    svc.stop().await;
}

// §4.5: "a card whose suggestions are alternatives (delete vs delete + create; bone scan vs
// PET) has selectionBehavior at-most-one; a card whose suggestions are independent (the merged
// care-team card) has any".
#[tokio::test]
async fn alternatives_are_at_most_one_and_independent_suggestions_any() {
    let svc = Service::default().await;
    let sign = call(&svc, &example("order-sign.json")).await;
    // ORD-15: remove the olaratumab order, or replace it with doxorubicin.
    let ord15 = card(&sign, "ORD-15");
    assert_eq!(ord15["suggestions"].as_array().unwrap().len(), 2);
    assert_eq!(ord15["selectionBehavior"], "at-most-one");
    // MET-05 of the metastatic example asks for bone imaging only: a bone scan or an FDG-PET.
    let pv = call(&svc, &metastatic()).await;
    let met05 = card(&pv, "MET-05");
    let labels: Vec<&str> = met05["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Order a bone scan", "Order an FDG-PET"]);
    assert_eq!(met05["selectionBehavior"], "at-most-one");
    assert_eq!(card(&pv, "MDT-01")["selectionBehavior"], "any");
    svc.stop().await;
}

// Issue 12 targets: a metastatic patient-view ≤ 6 cards, a local recurrence ≤ 4, with the v2
// rules of §4.4 (MET-03 needs every criterion known, SYS-02 a next line due), the coherence
// pass and the merged cards.
#[tokio::test]
async fn card_counts_of_the_example_charts() {
    let svc = Service::default().await;
    let counts = [
        (
            "patient-view-local-recurrence.json",
            example("patient-view-local-recurrence.json"),
        ),
        (
            "patient-view-metastatic.json as shipped",
            example("patient-view-metastatic.json"),
        ),
        ("metastatic with a current symptom assessment", metastatic()),
        (
            "metastatic + local recurrence (LR-01)",
            with_local_recurrence(metastatic()),
        ),
        (
            "metastatic, synchronous (MET-01)",
            synchronous(metastatic()),
        ),
        (
            "metastatic + sarcomatosis (MET-07)",
            with_sarcomatosis(metastatic()),
        ),
    ];
    let mut measured = Vec::new();
    for (name, request) in counts {
        let r = call(&svc, &request).await;
        let n = r["cards"].as_array().unwrap().len();
        println!("{name}: {n} cards {:?}", rule_ids(&r));
        measured.push((name, n));
    }
    assert!(measured[0].1 <= 4, "local recurrence: {measured:?}");
    assert!(measured[1].1 <= 6, "metastatic example: {measured:?}");
    // With symptoms known absent MET-11 fires too; MET-03 needs every criterion known and
    // SYS-02 a next line due (v2 §4.4), which brings this chart within the target.
    assert!(
        measured[2].1 <= 6,
        "metastatic with symptoms assessed: {measured:?}"
    );
    for (name, n) in &measured[3..] {
        assert!(*n <= 6, "{name}: {measured:?}");
    }
    svc.stop().await;
}
