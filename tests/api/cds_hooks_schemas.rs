//! The CDS Hooks 2.0.1 JSON Schemas (`schemas/cds-hooks/`) and the example requests
//! (`examples/`): the schemas compile, the examples pass them, every FHIR resource in the
//! examples passes the official R4 schema, and hand-written bad documents are rejected at the
//! JSON pointer a caller would be told about. No server is needed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{Value, json};

const SCHEMA_NAMES: [&str; 5] = [
    "request",
    "response",
    "feedback",
    "discovery",
    "operation-outcome",
];

/// One hand-written defect: what it is, how to inflict it on a valid document, and the JSON
/// pointer the validator must report.
type Breach = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn load_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn cds_schema(name: &str) -> Value {
    load_json(&repo_path(&format!("schemas/cds-hooks/{name}.schema.json")))
}

/// Formats are only annotations in 2020-12 by default; the schemas back every format with a
/// pattern, but asserting formats too catches a pattern that is looser than its format.
fn compile_cds(name: &str) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&cds_schema(name))
        .unwrap_or_else(|e| panic!("{name}.schema.json does not compile: {e}"))
}

/// Compiled once: the R4 schema has 680 definitions and compiling it dominates this test.
fn fhir_validator() -> &'static Validator {
    static FHIR: OnceLock<Validator> = OnceLock::new();
    FHIR.get_or_init(|| {
        jsonschema::draft6::options()
            .build(&load_json(&repo_path("schemas/fhir.schema.json")))
            .expect("the FHIR R4 schema compiles")
    })
}

/// Removes `key` from an object, failing loudly if it was not there so that a breach can
/// never silently leave the document valid.
fn remove(value: &mut Value, key: &str) {
    let removed = value.as_object_mut().and_then(|o| o.remove(key));
    assert!(removed.is_some(), "test setup: {key} was not present");
}

fn error_paths(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} ({e})", e.instance_path().as_str()))
        .collect()
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = error_paths(validator, instance);
    assert!(errors.is_empty(), "{what} should be valid: {errors:#?}");
}

/// The document must be rejected, and one of the errors must point at `pointer`.
fn assert_rejected_at(validator: &Validator, instance: &Value, pointer: &str, what: &str) {
    let paths: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.instance_path().as_str().to_owned())
        .collect();
    assert!(!paths.is_empty(), "{what}: accepted but should be rejected");
    assert!(
        paths.iter().any(|p| p == pointer),
        "{what}: expected an error at {pointer:?}, got {paths:?}"
    );
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo_path("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn hook_request_files() -> Vec<PathBuf> {
    example_files()
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "feedback.json"))
        .collect()
}

/// Every FHIR resource a hook request carries: prefetch values, the entries of prefetch
/// Bundles, the draftOrders Bundle and its entries. Each comes with a pointer for messages.
fn fhir_resources(request: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    if let Some(prefetch) = request.get("prefetch").and_then(Value::as_object) {
        for (key, value) in prefetch.iter().filter(|(_, v)| !v.is_null()) {
            collect_resource(format!("/prefetch/{key}"), value, &mut out);
        }
    }
    if let Some(draft_orders) = request.pointer("/context/draftOrders") {
        collect_resource("/context/draftOrders".to_owned(), draft_orders, &mut out);
    }
    out
}

fn collect_resource<'a>(pointer: String, resource: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    if let Some(entries) = resource.get("entry").and_then(Value::as_array) {
        for (i, entry) in entries.iter().enumerate() {
            if let Some(inner) = entry.get("resource") {
                out.push((format!("{pointer}/entry/{i}/resource"), inner));
            }
        }
    }
    out.push((pointer, resource));
}

/// A card that uses every field the profile allows; the negative tests break one thing each.
fn full_card() -> Value {
    json!({
        "uuid": "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c",
        "summary": "Candidate for curative-intent re-resection of the local recurrence",
        "detail": "**Favourable:** unifocal, R0 primary resection, ECOG 1.",
        "indicator": "info",
        "source": {
            "label": "UpToDate: locally recurrent RPS",
            "url": "https://doi.org/10.0000/example",
            "icon": "https://fhir.rps-cds.org/icon-100.png",
            "topic": {
                "system": "https://fhir.rps-cds.org/CodeSystem/rps-rule",
                "code": "LR-04",
                "display": "Re-resection candidate"
            }
        },
        "suggestions": [{
            "label": "Refer to sarcoma surgery",
            "uuid": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
            "isRecommended": true,
            "actions": [{
                "type": "create",
                "description": "Create a referral to the sarcoma surgical team",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "draft",
                    "intent": "proposal",
                    "code": { "text": "Referral to sarcoma surgery" },
                    "subject": { "reference": "Patient/rps-lr-001" }
                }
            }]
        }, {
            "label": "Withdraw the draft order",
            "uuid": "1b2c3d4e-5f6a-4b7c-9d8e-9f0a1b2c3d4e",
            "actions": [{
                "type": "delete",
                "description": "Remove the draft pazopanib order",
                "resourceId": "MedicationRequest/draft-pazopanib"
            }]
        }],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [{
            "system": "https://fhir.rps-cds.org/CodeSystem/rps-override-reason",
            "code": "discussed-at-mdt",
            "display": "Discussed at tumour board"
        }],
        "links": [{
            "label": "Trial finder",
            "url": "https://apps.example.org/launch",
            "type": "smart",
            "appContext": "{\"condition\":\"Condition/lr-local-recurrence\"}"
        }, {
            "label": "Consensus paper",
            "url": "https://doi.org/10.0000/example",
            "type": "absolute"
        }],
        "extension": { "org.rps-cds.knowledge-version": "2026.11" }
    })
}

fn response_with(card: Value) -> Value {
    json!({ "cards": [card] })
}

fn minimal_hook_request() -> Value {
    json!({
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": { "userId": "Practitioner/example", "patientId": "1288992" }
    })
}

#[test]
fn every_cds_hooks_schema_is_a_valid_2020_12_schema_with_its_id() {
    let on_disk: BTreeSet<String> = fs::read_dir(repo_path("schemas/cds-hooks"))
        .expect("schemas/cds-hooks exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    let expected: BTreeSet<String> = SCHEMA_NAMES
        .iter()
        .map(|n| format!("{n}.schema.json"))
        .collect();
    assert_eq!(on_disk, expected, "schema files in schemas/cds-hooks");

    for name in SCHEMA_NAMES {
        let schema = cds_schema(name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}: $schema"
        );
        assert_eq!(
            schema["$id"],
            format!("https://fhir.rps-cds.org/schemas/cds-hooks/{name}.schema.json"),
            "{name}: $id"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{name}.schema.json is not a valid 2020-12 schema: {e}");
        }
        compile_cds(name);
    }
}

#[test]
fn example_hook_requests_pass_the_request_schema() {
    let request = compile_cds("request");
    let files = hook_request_files();
    assert_eq!(files.len(), 4, "hook request examples: {files:?}");
    let patient_view_keys: BTreeSet<&str> = [
        "patient",
        "conditions",
        "observations",
        "procedures",
        "medicationAdministrations",
        "medicationStatements",
        "medicationRequests",
        "diagnosticReports",
    ]
    .into_iter()
    .collect();

    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let doc = load_json(file);
        assert_valid(&request, &doc, name);

        let expected_hook = if name.starts_with("patient-view") {
            "patient-view"
        } else {
            name.trim_end_matches(".json")
        };
        assert_eq!(doc["hook"], expected_hook, "{name}: hook");

        let keys: BTreeSet<&str> = doc["prefetch"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, patient_view_keys, "{name}: prefetch keys");
        assert_eq!(doc["prefetch"]["patient"]["resourceType"], "Patient");
        for key in patient_view_keys.iter().filter(|k| **k != "patient") {
            assert_eq!(doc["prefetch"][key]["type"], "searchset", "{name}: {key}");
        }

        // Order hooks: every draft order is a draft, and every selection names one of them.
        if let Some(entries) = doc
            .pointer("/context/draftOrders/entry")
            .and_then(Value::as_array)
        {
            let drafts: BTreeSet<String> = entries
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    assert_eq!(r["status"], "draft", "{name}: draft order status");
                    format!(
                        "{}/{}",
                        r["resourceType"].as_str().unwrap_or_default(),
                        r["id"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            for selection in doc["context"]["selections"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let selection = selection.as_str().unwrap_or_default();
                assert!(
                    drafts.contains(selection),
                    "{name}: selection {selection} not in draftOrders"
                );
            }
        }
    }
}

#[test]
fn feedback_example_passes_the_feedback_schema() {
    let feedback = compile_cds("feedback");
    let doc = load_json(&repo_path("examples/feedback.json"));
    assert_valid(&feedback, &doc, "examples/feedback.json");
    let outcomes: BTreeSet<&str> = doc["feedback"]
        .as_array()
        .expect("feedback array")
        .iter()
        .filter_map(|f| f["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, BTreeSet::from(["accepted", "overridden"]));
}

#[test]
fn every_fhir_resource_in_the_examples_passes_the_r4_schema() {
    let fhir = fhir_validator();
    let mut checked = 0;
    for file in hook_request_files() {
        let doc = load_json(&file);
        let resources = fhir_resources(&doc);
        assert!(
            resources.len() >= 10,
            "{}: only {} resources",
            file.display(),
            resources.len()
        );
        for (pointer, resource) in resources {
            let errors = error_paths(fhir, resource);
            assert!(
                errors.is_empty(),
                "{}{pointer} is not valid FHIR R4: {errors:#?}",
                file.display()
            );
            checked += 1;
        }
    }
    // 4 requests, each with a Patient, 7 Bundles and their entries (plus draftOrders).
    assert!(checked >= 90, "only {checked} resources checked");

    // The check has teeth: a resource with an unknown element is refused.
    let bad = json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valu": 1 });
    assert!(
        !fhir.is_valid(&bad),
        "an unknown element must fail the R4 schema"
    );
}

#[test]
fn a_full_card_and_an_empty_response_pass_the_response_schema() {
    let response = compile_cds("response");
    assert_valid(&response, &json!({ "cards": [] }), "no decision support");
    assert_valid(&response, &response_with(full_card()), "full card");

    let mut at_limit = full_card();
    at_limit["summary"] = json!("s".repeat(139));
    assert_valid(&response, &response_with(at_limit), "139-character summary");

    let system_actions = json!({
        "cards": [],
        "systemActions": [{
            "type": "update",
            "description": "Record the appropriateness assessment on the order",
            "resource": { "resourceType": "ServiceRequest", "id": "sr-1" }
        }],
        "extension": { "org.rps-cds.knowledge-version": "2026.11" }
    });
    assert_valid(&response, &system_actions, "system actions");
}

#[test]
fn the_response_schema_rejects_each_breach_at_its_location() {
    let response = compile_cds("response");
    let cases: Vec<Breach> = vec![
        (
            "140-character summary",
            Box::new(|c| c["summary"] = json!("s".repeat(140))),
            "/cards/0/summary",
        ),
        (
            "blank summary",
            Box::new(|c| c["summary"] = json!("   ")),
            "/cards/0/summary",
        ),
        (
            "suggestions without selectionBehavior",
            Box::new(|c| remove(c, "selectionBehavior")),
            "/cards/0",
        ),
        (
            "action without description",
            Box::new(|c| remove(&mut c["suggestions"][0]["actions"][0], "description")),
            "/cards/0/suggestions/0/actions/0",
        ),
        (
            "null optional detail",
            Box::new(|c| c["detail"] = Value::Null),
            "/cards/0/detail",
        ),
        (
            "empty optional detail",
            Box::new(|c| c["detail"] = json!("")),
            "/cards/0/detail",
        ),
        (
            "empty links array",
            Box::new(|c| c["links"] = json!([])),
            "/cards/0/links",
        ),
        (
            "empty extension",
            Box::new(|c| c["extension"] = json!({})),
            "/cards/0/extension",
        ),
        (
            "unknown card property",
            Box::new(|c| c["severity"] = json!("high")),
            "/cards/0",
        ),
        (
            "1.0 indicator hard-stop",
            Box::new(|c| c["indicator"] = json!("hard-stop")),
            "/cards/0/indicator",
        ),
        (
            "bad selectionBehavior",
            Box::new(|c| c["selectionBehavior"] = json!("all")),
            "/cards/0/selectionBehavior",
        ),
        (
            "card without uuid",
            Box::new(|c| remove(c, "uuid")),
            "/cards/0",
        ),
        (
            "card uuid not a uuid",
            Box::new(|c| c["uuid"] = json!("card-1")),
            "/cards/0/uuid",
        ),
        (
            "source without label",
            Box::new(|c| remove(&mut c["source"], "label")),
            "/cards/0/source",
        ),
        (
            "relative source url",
            Box::new(|c| c["source"]["url"] = json!("/about")),
            "/cards/0/source/url",
        ),
        (
            "topic without code",
            Box::new(|c| remove(&mut c["source"]["topic"], "code")),
            "/cards/0/source/topic",
        ),
        (
            "override reason without display",
            Box::new(|c| remove(&mut c["overrideReasons"][0], "display")),
            "/cards/0/overrideReasons/0",
        ),
        (
            "two recommended suggestions with at-most-one",
            Box::new(|c| c["suggestions"][1]["isRecommended"] = json!(true)),
            "/cards/0/suggestions",
        ),
        (
            "isRecommended not a boolean",
            Box::new(|c| c["suggestions"][0]["isRecommended"] = json!("yes")),
            "/cards/0/suggestions/0/isRecommended",
        ),
        (
            "suggestion without uuid",
            Box::new(|c| remove(&mut c["suggestions"][0], "uuid")),
            "/cards/0/suggestions/0",
        ),
        (
            "unknown action type",
            Box::new(|c| c["suggestions"][0]["actions"][0]["type"] = json!("patch")),
            "/cards/0/suggestions/0/actions/0/type",
        ),
        (
            "create without resource",
            Box::new(|c| remove(&mut c["suggestions"][0]["actions"][0], "resource")),
            "/cards/0/suggestions/0/actions/0",
        ),
        (
            "delete without resourceId",
            Box::new(|c| remove(&mut c["suggestions"][1]["actions"][0], "resourceId")),
            "/cards/0/suggestions/1/actions/0",
        ),
        (
            "resourceId not a relative reference",
            Box::new(|c| {
                c["suggestions"][1]["actions"][0]["resourceId"] = json!("draft-pazopanib")
            }),
            "/cards/0/suggestions/1/actions/0/resourceId",
        ),
        (
            "appContext on an absolute link",
            Box::new(|c| c["links"][1]["appContext"] = json!("x")),
            "/cards/0/links/1",
        ),
        (
            "bad link type",
            Box::new(|c| c["links"][0]["type"] = json!("relative")),
            "/cards/0/links/0/type",
        ),
    ];
    for (what, breach, pointer) in cases {
        let mut card = full_card();
        breach(&mut card);
        assert_rejected_at(&response, &response_with(card), pointer, what);
    }

    let mut selection_without_suggestions = full_card();
    remove(&mut selection_without_suggestions, "suggestions");
    assert_rejected_at(
        &response,
        &response_with(selection_without_suggestions),
        "/cards/0",
        "selectionBehavior without suggestions",
    );
    assert_rejected_at(&response, &json!({}), "", "response without cards");
    assert_rejected_at(
        &response,
        &json!({ "cards": [], "systemActions": [] }),
        "/systemActions",
        "empty systemActions",
    );
    assert_rejected_at(
        &response,
        &json!({ "cards": [], "note": "x" }),
        "",
        "unknown top-level property",
    );
}

#[test]
fn the_feedback_schema_rejects_each_breach_at_its_location() {
    let feedback = compile_cds("feedback");
    let accepted = || {
        json!({
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "accepted",
            "acceptedSuggestions": [{ "id": "e56e1945-20b3-4393-8503-a1a20fd73152" }],
            "outcomeTimestamp": "2026-11-23T10:05:31Z"
        })
    };
    let overridden_comment_only = json!({ "feedback": [{
        "card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb",
        "outcome": "overridden",
        "overrideReason": { "userComment": "Patient declined surgery." },
        "outcomeTimestamp": "2026-11-23T10:05:31.250+01:00"
    }]});
    assert_valid(
        &feedback,
        &overridden_comment_only,
        "override with a comment only",
    );
    assert_valid(&feedback, &json!({ "feedback": [accepted()] }), "accepted");

    let cases: Vec<Breach> = vec![
        (
            "outcome maybe",
            Box::new(|f| f["outcome"] = json!("maybe")),
            "/feedback/0/outcome",
        ),
        (
            "accepted without acceptedSuggestions",
            Box::new(|f| remove(f, "acceptedSuggestions")),
            "/feedback/0",
        ),
        (
            "empty acceptedSuggestions",
            Box::new(|f| f["acceptedSuggestions"] = json!([])),
            "/feedback/0/acceptedSuggestions",
        ),
        (
            "suggestion without id",
            Box::new(|f| f["acceptedSuggestions"][0] = json!({})),
            "/feedback/0/acceptedSuggestions/0",
        ),
        (
            "card not a uuid",
            Box::new(|f| f["card"] = json!("REPLACE-WITH-CARD-UUID")),
            "/feedback/0/card",
        ),
        (
            "date-only timestamp",
            Box::new(|f| f["outcomeTimestamp"] = json!("2026-11-23")),
            "/feedback/0/outcomeTimestamp",
        ),
        (
            "missing timestamp",
            Box::new(|f| remove(f, "outcomeTimestamp")),
            "/feedback/0",
        ),
        (
            "empty overrideReason",
            Box::new(|f| f["overrideReason"] = json!({})),
            "/feedback/0/overrideReason",
        ),
        (
            "reason coding without system",
            Box::new(|f| f["overrideReason"] = json!({ "reason": { "code": "x" } })),
            "/feedback/0/overrideReason/reason",
        ),
        (
            "null userComment",
            Box::new(|f| f["overrideReason"] = json!({ "userComment": null })),
            "/feedback/0/overrideReason/userComment",
        ),
    ];
    for (what, breach, pointer) in cases {
        let mut entry = accepted();
        breach(&mut entry);
        assert_rejected_at(&feedback, &json!({ "feedback": [entry] }), pointer, what);
    }
    assert_rejected_at(
        &feedback,
        &json!({ "feedback": [] }),
        "/feedback",
        "empty feedback array",
    );
    assert_rejected_at(&feedback, &json!({}), "", "no feedback array");
}

#[test]
fn the_request_schema_accepts_spec_shapes_and_rejects_breaches() {
    let request = compile_cds("request");
    assert_valid(&request, &minimal_hook_request(), "minimal patient-view");

    let mut with_extras = minimal_hook_request();
    with_extras["fhirServer"] = json!("https://ehr.example.org/fhir");
    with_extras["fhirAuthorization"] = json!({
        "access_token": "opaque",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read user/Observation.read",
        "subject": "rps-cds",
        "patient": "1288992"
    });
    with_extras["prefetch"] =
        json!({ "patient": { "resourceType": "Patient", "id": "1288992" }, "conditions": null });
    with_extras["extension"] = json!({ "com.example.timestamp": "2026-11-23T10:00:00Z" });
    with_extras["com.example.vendorField"] = json!(true);
    assert_valid(
        &request,
        &with_extras,
        "token, null prefetch key, extension, vendor field",
    );

    let cases: Vec<Breach> = vec![
        (
            "no hookInstance",
            Box::new(|r| remove(r, "hookInstance")),
            "",
        ),
        (
            "hookInstance not a uuid",
            Box::new(|r| r["hookInstance"] = json!("12345")),
            "/hookInstance",
        ),
        ("blank hook", Box::new(|r| r["hook"] = json!(" ")), "/hook"),
        (
            "fhirAuthorization without fhirServer",
            Box::new(|r| {
                r["fhirAuthorization"] = json!({
                    "access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"
                })
            }),
            "",
        ),
        (
            "token_type not Bearer",
            Box::new(|r| {
                r["fhirServer"] = json!("https://ehr.example.org/fhir");
                r["fhirAuthorization"] = json!({
                    "access_token": "t", "token_type": "MAC", "expires_in": 300, "scope": "s", "subject": "c"
                })
            }),
            "/fhirAuthorization/token_type",
        ),
        (
            "fhirAuthorization without subject",
            Box::new(|r| {
                r["fhirServer"] = json!("https://ehr.example.org/fhir");
                r["fhirAuthorization"] = json!({
                    "access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "s"
                })
            }),
            "/fhirAuthorization",
        ),
        (
            "relative fhirServer",
            Box::new(|r| r["fhirServer"] = json!("fhir/r4")),
            "/fhirServer",
        ),
        (
            "prefetch value a string",
            Box::new(|r| r["prefetch"] = json!({ "patient": "Patient/1" })),
            "/prefetch/patient",
        ),
        (
            "prefetch value without resourceType",
            Box::new(|r| r["prefetch"] = json!({ "patient": { "id": "1" } })),
            "/prefetch/patient",
        ),
        (
            "context not an object",
            Box::new(|r| r["context"] = json!("patient 1")),
            "/context",
        ),
        (
            "patient-view without patientId",
            Box::new(|r| remove(&mut r["context"], "patientId")),
            "/context",
        ),
        (
            "userId not a reference",
            Box::new(|r| r["context"]["userId"] = json!("example")),
            "/context/userId",
        ),
        (
            "order-sign without draftOrders",
            Box::new(|r| r["hook"] = json!("order-sign")),
            "/context",
        ),
        (
            "order-select with empty selections",
            Box::new(|r| {
                r["hook"] = json!("order-select");
                r["context"]["selections"] = json!([]);
                r["context"]["draftOrders"] =
                    json!({ "resourceType": "Bundle", "type": "collection" });
            }),
            "/context/selections",
        ),
        (
            "draftOrders not a Bundle",
            Box::new(|r| {
                r["hook"] = json!("order-sign");
                r["context"]["draftOrders"] = json!({ "resourceType": "MedicationRequest" });
            }),
            "/context/draftOrders/resourceType",
        ),
    ];
    for (what, breach, pointer) in cases {
        let mut doc = minimal_hook_request();
        breach(&mut doc);
        assert_rejected_at(&request, &doc, pointer, what);
    }
}

#[test]
fn the_discovery_schema_accepts_our_services_and_rejects_breaches() {
    let discovery = compile_cds("discovery");
    let services = || {
        json!({ "services": [{
            "hook": "patient-view",
            "title": "RPS recurrence and metastasis advice",
            "description": "Work-up, surgical candidacy and systemic-therapy advice for retroperitoneal sarcoma.",
            "id": "rps-patient-view",
            "prefetch": {
                "patient": "Patient/{{context.patientId}}",
                "conditions": "Condition?patient={{context.patientId}}"
            },
            "usageRequirements": "Needs the patient's oncology history; advice is degraded without it."
        }]})
    };
    assert_valid(&discovery, &services(), "discovery");
    assert_valid(&discovery, &json!({ "services": [] }), "no services");

    let cases: Vec<Breach> = vec![
        (
            "service without description",
            Box::new(|d| remove(&mut d["services"][0], "description")),
            "/services/0",
        ),
        (
            "id with a slash",
            Box::new(|d| d["services"][0]["id"] = json!("rps/pv")),
            "/services/0/id",
        ),
        (
            "prefetch template not a string",
            Box::new(|d| d["services"][0]["prefetch"]["patient"] = json!(1)),
            "/services/0/prefetch/patient",
        ),
        (
            "empty prefetch",
            Box::new(|d| d["services"][0]["prefetch"] = json!({})),
            "/services/0/prefetch",
        ),
        (
            "null title",
            Box::new(|d| d["services"][0]["title"] = Value::Null),
            "/services/0/title",
        ),
        (
            "unknown property",
            Box::new(|d| d["services"][0]["version"] = json!("1")),
            "/services/0",
        ),
    ];
    for (what, breach, pointer) in cases {
        let mut doc = services();
        breach(&mut doc);
        assert_rejected_at(&discovery, &doc, pointer, what);
    }
}

#[test]
fn operation_outcomes_pass_both_our_schema_and_fhir_r4() {
    let outcome_schema = compile_cds("operation-outcome");
    let outcome = json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "error",
            "code": "required",
            "details": { "text": "The request has no hookInstance" },
            "diagnostics": "hookInstance is a required property",
            "expression": ["/hookInstance"]
        }, {
            "severity": "warning",
            "code": "incomplete",
            "diagnostics": "Prefetch key 'procedures' was absent and could not be fetched"
        }]
    });
    assert_valid(&outcome_schema, &outcome, "operation outcome");
    let fhir_errors = error_paths(fhir_validator(), &outcome);
    assert!(
        fhir_errors.is_empty(),
        "not a valid R4 OperationOutcome: {fhir_errors:#?}"
    );

    assert_rejected_at(
        &outcome_schema,
        &json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "bad", "code": "invalid" }] }),
        "/issue/0/severity",
        "unknown severity",
    );
    assert_rejected_at(
        &outcome_schema,
        &json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "error", "code": "oops" }] }),
        "/issue/0/code",
        "unknown issue type",
    );
    assert_rejected_at(
        &outcome_schema,
        &json!({ "resourceType": "OperationOutcome", "issue": [] }),
        "/issue",
        "no issues",
    );
    assert_rejected_at(
        &outcome_schema,
        &json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "error", "code": "invalid", "expression": [] }] }),
        "/issue/0/expression",
        "empty expression",
    );
}
