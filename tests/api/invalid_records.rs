//! Invalid records withhold only what they touch (issue 11, §4.1 "invalid records"), end to
//! end: the real server on a random port, the shipped example requests with one defective
//! record added or broken, and the cards compared with and without it.

use crate::support::http::{Schemas, Service, example, rule_ids};
use serde_json::{Value, json};

const PV: &str = "/cds-services/rps-patient-view";
const SIGN: &str = "/cds-services/rps-order-sign";
const SELECT: &str = "/cds-services/rps-order-select";

/// The service with room for every card: DATA-02 takes a place among `max_cards`, and these
/// tests compare what the facts decide, not which cards the budget leaves out (coherence.rs
/// tests the budget).
async fn service() -> Service {
    let mut config = rps_cds::config::Config::default();
    config.parameters.insert("max_cards".to_owned(), 50.0);
    Service::start(config).await
}

/// Every card but DATA-02, as (rule, indicator, summary, detail).
fn cards_but_data_02(body: &Value) -> Vec<(String, String, String, String)> {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"]["topic"]["code"] != "DATA-02")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (
                c["source"]["topic"]["code"].as_str().unwrap().to_owned(),
                s("indicator"),
                s("summary"),
                s("detail"),
            )
        })
        .collect()
}

/// The records a card is about (`records` extension: DATA-02's invalid records).
fn records(card: &Value) -> Vec<String> {
    card["extension"]["https://fhir.rps-cds.org/records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect()
}

/// The lines of a card's "Not known" list.
fn not_known(detail: &str) -> Vec<&str> {
    detail
        .split("**Not known**")
        .nth(1)
        .and_then(|s| s.split("\n\n").nth(1))
        .unwrap_or("")
        .lines()
        .collect()
}

fn card<'b>(body: &'b Value, rule: &str) -> &'b Value {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"]["topic"]["code"] == rule)
        .unwrap_or_else(|| panic!("no {rule} card in {:?}", rule_ids(body)))
}

fn patient_id(req: &Value) -> String {
    req["context"]["patientId"].as_str().unwrap().to_owned()
}

/// Adds `resource` (for the request's patient) to the prefetch key `key`.
fn add(req: &mut Value, key: &str, mut resource: Value) {
    let subject = json!({"reference": format!("Patient/{}", patient_id(req))});
    if resource.get("subject").is_none() && resource["resourceType"] != "Medication" {
        resource["subject"] = subject;
    }
    let bundle = &mut req["prefetch"][key];
    if bundle.get("entry").and_then(Value::as_array).is_none() {
        *bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": []});
    }
    bundle["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": resource}));
}

/// The resource with this id in any prefetch key.
fn resource_mut<'r>(req: &'r mut Value, id: &str) -> &'r mut Value {
    req["prefetch"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .filter_map(|b| b.get_mut("entry").and_then(Value::as_array_mut))
        .flatten()
        .map(|e| &mut e["resource"])
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

/// One unrelated record per resource type the service reads, each with one defect outside
/// what the service reads of it (prefetch key, resource, the defective path, the value that
/// must not be echoed).
fn unrelated_invalid_records() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        (
            "conditions",
            json!({"resourceType": "Condition", "id": "bad-hypertension",
                   "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                   "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": "Essential hypertension"}]},
                   "onsetDateTime": "2019-03-01", "note": "on ramipril 5 mg"}),
            "/note",
            "ramipril",
        ),
        (
            "conditions",
            json!({"resourceType": "Condition", "id": "bad-asthma",
                   "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma"}]},
                   "onsetDateTime": "2001-01-01",
                   "extension": [{"url": "http://example.org/fhir/StructureDefinition/severity-note", "valueString": 7}]}),
            "/extension/0/valueString",
            "\"7\"",
        ),
        (
            "observations",
            json!({"resourceType": "Observation", "id": "bad-weight", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
                   "effectiveDateTime": "2026-10-01", "valueQuantity": {"value": "72,5", "unit": "kg"}}),
            "/valueQuantity/value",
            "72,5",
        ),
        (
            "procedures",
            json!({"resourceType": "Procedure", "id": "bad-colonoscopy", "status": "completed",
                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": "73761001", "display": "Colonoscopy"}]},
                   "performedDateTime": "2026-06-01", "note": "poor bowel preparation"}),
            "/note",
            "poor bowel preparation",
        ),
        (
            "medicationAdministrations",
            json!({"resourceType": "MedicationAdministration", "id": "bad-ondansetron", "status": "completed",
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "26225", "display": "ondansetron"}]},
                   "effectiveDateTime": "2026-09-01",
                   "dosage": {"dose": {"value": "8 mg", "unit": "mg"}}}),
            "/dosage/dose/value",
            "8 mg",
        ),
        (
            "medicationStatements",
            json!({"resourceType": "MedicationStatement", "id": "bad-paracetamol", "status": "active",
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "161", "display": "acetaminophen"}]},
                   "effectiveDateTime": "2026-05-01",
                   "dosage": {"text": "1 g as needed"}}),
            "/dosage",
            "1 g as needed",
        ),
        (
            "medicationRequests",
            json!({"resourceType": "MedicationRequest", "id": "bad-paracetamol-order", "status": "active", "intent": "order",
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "161", "display": "acetaminophen"}]},
                   "authoredOn": "2026-05-01",
                   "category": {"text": "outpatient"}}),
            "/category",
            "outpatient",
        ),
        (
            "diagnosticReports",
            json!({"resourceType": "DiagnosticReport", "id": "bad-blood-count", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"}]},
                   "effectiveDateTime": "2026-10-15", "conclusion": 42}),
            "/conclusion",
            "42",
        ),
        (
            "diagnosticReports",
            json!({"resourceType": "ImagingStudy", "id": "bad-knee-xray", "status": "available",
                   "started": "2026-04-01", "description": "XR left knee",
                   "numberOfSeries": "seventeen"}),
            "/numberOfSeries",
            "seventeen",
        ),
        (
            "medicationRequests",
            json!({"resourceType": "Medication", "id": "bad-omeprazole",
                   "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7646", "display": "omeprazole"}]},
                   "batch": {"lotNumber": 987654}}),
            "/batch/lotNumber",
            "987654",
        ),
    ]
}

#[tokio::test]
async fn one_invalid_unrelated_record_of_each_type_leaves_every_card_unchanged() {
    let svc = service().await;
    let schemas = Schemas::load();
    for name in [
        "patient-view-local-recurrence.json",
        "patient-view-metastatic.json",
    ] {
        let req = example(name);
        let (status, reference) = svc.post_json(PV, &req).await;
        assert_eq!(status, 200);
        let expected = cards_but_data_02(&reference);
        assert!(!expected.is_empty());
        for (key, record, path, value) in unrelated_invalid_records() {
            let id = record["id"].as_str().unwrap().to_owned();
            let ty = record["resourceType"].as_str().unwrap().to_owned();
            let mut broken = req.clone();
            add(&mut broken, key, record);
            let (status, body) = svc.post_json(PV, &broken).await;
            assert_eq!(status, 200, "{body:#}");
            schemas.assert_response(&body);
            assert_eq!(
                cards_but_data_02(&body),
                expected,
                "{name}: an invalid {ty} changed the cards"
            );
            assert!(
                rule_ids(&body).contains(&"DATA-02".to_owned()),
                "{ty}/{id} must fail validation at {path}"
            );
            let data02 = card(&body, "DATA-02");
            let detail = data02["detail"].as_str().unwrap();
            assert!(
                records(data02).contains(&format!("{ty}/{id}")) && detail.contains(path),
                "{name}: DATA-02 names {ty}/{id} and {path}: {data02:#}"
            );
            assert!(
                !detail.contains(value),
                "DATA-02 must not echo the invalid value {value:?}: {detail}"
            );
            let how = "still used: its defects lie outside what the service reads";
            assert!(
                detail.contains(&format!("{ty} record ({how}")),
                "{name}: {ty}/{id} {detail}"
            );
        }
    }
    svc.stop().await;
}

fn unrelated(id: &str) -> (&'static str, Value) {
    let (key, record, ..) = unrelated_invalid_records()
        .into_iter()
        .find(|(_, r, ..)| r["id"] == id)
        .unwrap();
    (key, record)
}

/// An order-sign request for the metastatic example patient with a draft doxorubicin order
/// of `doses` × 75 mg/m².
fn doxorubicin_order_sign(doses: u64) -> Value {
    let mut req = example("patient-view-metastatic.json");
    req["hook"] = json!("order-sign");
    let pid = patient_id(&req);
    req["context"]["draftOrders"] = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "draft-doxorubicin", "status": "draft",
            "intent": "order", "subject": {"reference": format!("Patient/{pid}")},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "3639", "display": "doxorubicin"}]},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 75, "unit": "mg/m2", "system": "http://unitsofmeasure.org", "code": "mg/m2"}}]}],
            "dispenseRequest": {"numberOfRepeatsAllowed": doses - 1}}}
    ]});
    req
}

#[tokio::test]
async fn a_malformed_antiemetic_record_does_not_hide_the_critical_cumulative_dose_card() {
    let svc = service().await;
    // 4 × 75 mg/m² given and 3 × 75 planned: 525 > 450 mg/m².
    let req = doxorubicin_order_sign(3);
    let (status, reference) = svc.post_json(SIGN, &req).await;
    assert_eq!(status, 200, "{reference:#}");
    assert_eq!(card(&reference, "ORD-14")["indicator"], "critical");
    let mut broken = req.clone();
    let (key, record) = unrelated("bad-ondansetron");
    add(&mut broken, key, record);
    let (_, body) = svc.post_json(SIGN, &broken).await;
    assert_eq!(card(&body, "ORD-14")["indicator"], "critical");
    assert_eq!(cards_but_data_02(&body), cards_but_data_02(&reference));
    assert!(rule_ids(&body).contains(&"DATA-02".to_owned()));
    svc.stop().await;
}

#[tokio::test]
async fn a_malformed_paracetamol_statement_does_not_withhold_first_line_systemic_advice() {
    let svc = service().await;
    let mut req = example("patient-view-metastatic.json");
    // No systemic therapy yet.
    for key in ["medicationAdministrations", "medicationRequests"] {
        req["prefetch"][key] = json!({"resourceType": "Bundle", "type": "searchset", "entry": []});
    }
    let (_, reference) = svc.post_json(PV, &req).await;
    assert!(
        rule_ids(&reference).contains(&"SYS-01".to_owned()),
        "{:?}",
        rule_ids(&reference)
    );
    let mut broken = req.clone();
    let (key, record) = unrelated("bad-paracetamol");
    add(&mut broken, key, record);
    let (_, body) = svc.post_json(PV, &broken).await;
    assert_eq!(cards_but_data_02(&body), cards_but_data_02(&reference));
    svc.stop().await;
}

#[tokio::test]
async fn an_invalid_ecog_value_taints_only_performance_status() {
    let svc = service().await;
    // Local recurrence: ECOG decides LR-02/LR-04, so without it the verdict is LR-00.
    let req = example("patient-view-local-recurrence.json");
    let (_, reference) = svc.post_json(PV, &req).await;
    assert!(rule_ids(&reference).contains(&"LR-04".to_owned()));
    let mut broken = req.clone();
    resource_mut(&mut broken, "lr-ecog")["valueInteger"] = json!("1");
    let (status, body) = svc.post_json(PV, &broken).await;
    assert_eq!(status, 200);
    let rules = rule_ids(&body);
    assert!(rules.contains(&"LR-00".to_owned()), "{rules:?}");
    assert!(!rules.contains(&"LR-04".to_owned()), "{rules:?}");
    // What does not depend on ECOG is unchanged.
    let unchanged = |b: &Value| {
        cards_but_data_02(b)
            .into_iter()
            .filter(|c| ["MDT-01", "WORK-04"].contains(&c.0.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(unchanged(&body), unchanged(&reference));
    let lr00 = card(&body, "LR-00")["detail"].as_str().unwrap();
    assert!(lr00.contains("ECOG"), "{lr00}");
    // Only ECOG is unknown (the older, valid ECOG of 2025 does not stand in for it).
    let unknown = not_known(lr00);
    assert!(
        unknown.len() == 1 && unknown[0].starts_with("- ECOG:"),
        "only ECOG is unknown: {lr00}"
    );
    let data02 = card(&body, "DATA-02");
    let detail = data02["detail"].as_str().unwrap();
    assert!(
        detail.contains("Observation record (read in part")
            && records(data02).contains(&"Observation/lr-ecog".to_owned()),
        "{data02:#}"
    );
    assert!(detail.contains("/valueInteger"), "{detail}");

    // Metastatic: an invalid ECOG leaves sarcomatosis and symptoms known, so the
    // metastasectomy assessment (MET-02) is still made, with ECOG unknown.
    let req = example("patient-view-metastatic.json");
    let (_, reference) = svc.post_json(PV, &req).await;
    assert!(rule_ids(&reference).contains(&"MET-02".to_owned()));
    let mut broken = req.clone();
    resource_mut(&mut broken, "met-ecog")["valueInteger"] = json!("1");
    let (_, body) = svc.post_json(PV, &broken).await;
    let met02 = card(&body, "MET-02")["detail"].as_str().unwrap();
    assert!(
        not_known(met02).iter().any(|l| l.starts_with("- ECOG:")),
        "{met02}"
    );
    assert!(
        !rule_ids(&body).contains(&"MET-07".to_owned()),
        "sarcomatosis stays known absent"
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_modifier_or_root_error_makes_the_record_unusable() {
    let svc = service().await;
    let req = example("patient-view-local-recurrence.json");
    let (_, reference) = svc.post_json(PV, &req).await;

    // A modifier (status) defect in an unrelated record: unusable, but what it is about is
    // readable, so it taints nothing the service reads.
    let mut broken = req.clone();
    let (key, mut weight) = unrelated("bad-weight");
    weight["valueQuantity"]["value"] = json!(72.5);
    weight["status"] = json!("finalised");
    add(&mut broken, key, weight);
    let (_, body) = svc.post_json(PV, &broken).await;
    assert_eq!(cards_but_data_02(&body), cards_but_data_02(&reference));
    let data02 = card(&body, "DATA-02");
    let detail = data02["detail"].as_str().unwrap();
    assert!(
        detail.contains("Observation record (left out")
            && records(data02).contains(&"Observation/bad-weight".to_owned()),
        "{data02:#}"
    );

    // A modifier defect in the ECOG record: the facts it carries (ECOG) are unknown.
    let mut broken = req.clone();
    resource_mut(&mut broken, "lr-ecog")["status"] = json!("finalised");
    let (_, body) = svc.post_json(PV, &broken).await;
    let rules = rule_ids(&body);
    assert!(rules.contains(&"LR-00".to_owned()), "{rules:?}");

    // What it is about cannot be read (code missing): every fact of its type is unknown,
    // as when a record is set aside as a whole.
    let mut broken = req.clone();
    resource_mut(&mut broken, "lr-recurrence-size")
        .as_object_mut()
        .unwrap()
        .remove("code");
    let (_, body) = svc.post_json(PV, &broken).await;
    let rules = rule_ids(&body);
    assert!(!rules.contains(&"LR-04".to_owned()), "{rules:?}");
    let data02 = card(&body, "DATA-02");
    let detail = data02["detail"].as_str().unwrap();
    assert!(
        detail.contains("Observation record (left out")
            && detail.contains("/code")
            && records(data02).contains(&"Observation/lr-recurrence-size".to_owned()),
        "{data02:#}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_fact_from_an_invalid_record_is_not_the_basis_of_a_re_resection_candidacy() {
    let svc = service().await;
    let req = example("patient-view-local-recurrence.json");
    // The ECOG value is readable, but the record is defective elsewhere: ECOG 1 may not
    // make the recurrence a candidate for re-resection (LR-04).
    let mut broken = req.clone();
    resource_mut(&mut broken, "lr-ecog")["note"] = json!("patient walks 2 km daily");
    let (_, body) = svc.post_json(PV, &broken).await;
    let rules = rule_ids(&body);
    assert!(!rules.contains(&"LR-04".to_owned()), "{rules:?}");
    assert!(rules.contains(&"LR-00".to_owned()), "{rules:?}");
    let lr00 = card(&body, "LR-00")["detail"].as_str().unwrap();
    assert!(lr00.contains("ECOG"), "{lr00}");
    let detail = card(&body, "DATA-02")["detail"].as_str().unwrap();
    assert!(!detail.contains("2 km"), "{detail}");
    svc.stop().await;
}

#[tokio::test]
async fn a_record_read_from_an_invalid_statement_is_not_the_basis_of_no_prior_anthracycline() {
    let svc = service().await;
    let mut req = example("patient-view-metastatic.json");
    for key in ["medicationAdministrations", "medicationRequests"] {
        req["prefetch"][key] = json!({"resourceType": "Bundle", "type": "searchset", "entry": []});
    }
    // A doxorubicin statement whose status is readable but says it was not taken, defective
    // elsewhere: "no prior systemic therapy" cannot rest on it.
    add(
        &mut req,
        "medicationStatements",
        json!({"resourceType": "MedicationStatement", "id": "bad-doxorubicin", "status": "not-taken",
               "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "3639", "display": "doxorubicin"}]},
               "effectiveDateTime": "2025-05-01", "dosage": {"text": "as in the outside records"}}),
    );
    let (_, body) = svc.post_json(PV, &req).await;
    let rules = rule_ids(&body);
    assert!(!rules.contains(&"SYS-01".to_owned()), "{rules:?}");
    let data01 = card(&body, "DATA-01")["detail"].as_str().unwrap();
    assert!(data01.contains("Systemic therapy:"), "{data01}");
    svc.stop().await;
}

#[tokio::test]
async fn a_draft_order_with_category_as_an_object_is_still_checked() {
    let svc = service().await;
    let mut req = example("order-select.json");
    let order = req["context"]["draftOrders"]["entry"][0]["resource"]
        .as_object_mut()
        .unwrap();
    // As the CDS Hooks Sandbox sends it.
    order.insert(
        "category".to_owned(),
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "outpatient"}]}),
    );
    let (status, body) = svc.post_json(SELECT, &req).await;
    assert_eq!(status, 200, "{body:#}");
    Schemas::load().assert_response(&body);
    let ord10 = card(&body, "ORD-10");
    assert_eq!(
        ord10["suggestions"][0]["actions"][0]["resourceId"],
        "MedicationRequest/draft-pazopanib"
    );
    let data02 = card(&body, "DATA-02");
    let detail = data02["detail"].as_str().unwrap();
    assert!(
        records(data02).contains(&"MedicationRequest/draft-pazopanib".to_owned())
            && detail.contains("/category"),
        "{data02:#}"
    );
    assert!(!detail.contains("could not be checked"), "{detail}");
    svc.stop().await;
}
