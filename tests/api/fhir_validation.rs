//! FHIR R4 validation (issue: validation of everything the service reads): the shipped schema
//! is the official one, valid mCODE-style resources pass, and each kind of defect is reported
//! at the right JSON pointer with words a person can act on.

use rps_cds::fhir::FhirValidator;
use rps_cds::fhir::validation::{OFFICIAL_SCHEMA, OFFICIAL_SCHEMA_SHA256};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

static VALIDATOR: LazyLock<FhirValidator> = LazyLock::new(|| {
    let v = FhirValidator::official().expect("official schema compiles");
    v.wait_until_ready().expect("explaining validator compiles");
    v
});

#[test]
fn the_shipped_schema_is_the_official_r4_4_0_1_schema() {
    let on_disk = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/fhir.schema.json"
    ))
    .unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&on_disk)),
        OFFICIAL_SCHEMA_SHA256
    );
    assert_eq!(
        on_disk, OFFICIAL_SCHEMA,
        "the embedded copy is the file in schemas/"
    );
    let provenance = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/fhir.schema.PROVENANCE.md"
    ))
    .unwrap();
    assert!(provenance.contains(OFFICIAL_SCHEMA_SHA256));
    assert_eq!(VALIDATOR.resource_type_count(), 146);
    // Any other schema is refused at start-up.
    let mut tampered = on_disk.clone();
    tampered.push(b'\n');
    assert!(FhirValidator::from_bytes(&tampered).is_err());
}

fn ecog() -> Value {
    json!({"resourceType": "Observation", "id": "ecog-1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1", "display": "ECOG Performance Status score"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-10-01", "valueInteger": 1})
}

fn mcode_primary() -> Value {
    json!({"resourceType": "Condition", "id": "primary",
        "meta": {"profile": ["http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition"]},
        "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
            "valueCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/icd-o-3", "code": "8858/3"}]}}],
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C48.0"}]},
        "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "82849001"}]}],
        "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2023-10-02"})
}

fn violations(resource: &Value) -> Vec<(String, String)> {
    let err = VALIDATOR
        .validate_resource(resource)
        .expect_err("resource must be invalid");
    err.violations
        .into_iter()
        .map(|v| (v.pointer, v.message))
        .collect()
}

#[test]
fn valid_mcode_style_resources_pass() {
    assert!(VALIDATOR.validate_resource(&ecog()).is_ok());
    assert!(VALIDATOR.validate_resource(&mcode_primary()).is_ok());
    let rt = json!({"resourceType": "Procedure", "id": "rt", "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1217123003"}]},
        "subject": {"reference": "Patient/p1"}, "performedPeriod": {"start": "2024-01-02", "end": "2024-02-10"}});
    assert!(VALIDATOR.validate_resource(&rt).is_ok());
}

#[test]
fn a_bad_code_in_a_required_binding_is_reported_with_the_allowed_codes() {
    let mut r = ecog();
    r["status"] = json!("finalised");
    let v = violations(&r);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "/status");
    assert!(
        v[0].1.contains("\"finalised\" is not a valid code"),
        "{v:?}"
    );
    assert!(v[0].1.contains("final"));
    let err = VALIDATOR.validate_resource(&r).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Observation/ecog-1 /status: \"finalised\" is not a valid code"),
        "{err}"
    );
}

#[test]
fn each_kind_of_defect_is_reported_at_its_path() {
    // wrong JSON type
    let mut r = ecog();
    r["valueInteger"] = json!("1");
    assert_eq!(violations(&r)[0].0, "/valueInteger");
    // bad date/dateTime pattern
    let mut r = ecog();
    r["effectiveDateTime"] = json!("01/10/2026");
    let v = violations(&r);
    assert_eq!(v[0].0, "/effectiveDateTime");
    assert!(v[0].1.contains("format"), "{v:?}");
    // unknown element
    let mut r = ecog();
    r["performer_name"] = json!("x");
    let v = violations(&r);
    assert_eq!(v[0].0, "");
    assert!(
        v[0].1.contains("unknown element(s): performer_name"),
        "{v:?}"
    );
    // missing required element
    let mut r = ecog();
    r.as_object_mut().unwrap().remove("code");
    let v = violations(&r);
    assert!(
        v.iter()
            .any(|(p, m)| p.is_empty() && m.contains("\"code\"")),
        "{v:?}"
    );
    // nested: a coding's system of the wrong type inside an extension
    let mut r = mcode_primary();
    r["extension"][0]["valueCodeableConcept"]["coding"][0]["system"] = json!(42);
    assert_eq!(
        violations(&r)[0].0,
        "/extension/0/valueCodeableConcept/coding/0/system"
    );
    // wrong resourceType
    let mut r = ecog();
    r["resourceType"] = json!("Observaton");
    let err = VALIDATOR.validate_resource(&r).unwrap_err();
    assert_eq!(err.violations[0].pointer, "/resourceType");
    assert!(
        err.violations[0]
            .message
            .contains("not a FHIR R4 resource type")
    );
    // missing resourceType
    let mut r = ecog();
    r.as_object_mut().unwrap().remove("resourceType");
    assert_eq!(
        VALIDATOR.validate_resource(&r).unwrap_err().violations[0].pointer,
        "/resourceType"
    );
}

#[test]
fn errors_inside_contained_resources_keep_their_exact_path() {
    let order = json!({"resourceType": "MedicationRequest", "id": "mr", "status": "draft", "intent": "order",
        "contained": [{"resourceType": "Medication", "id": "med", "form": {"text": 7}}],
        "medicationReference": {"reference": "#med"}, "subject": {"reference": "Patient/p1"}});
    let v = violations(&order);
    // (The R4 schema has no enum for Medication.status, so a wrong type is used here.)
    assert!(
        v.iter().any(|(p, _)| p == "/contained/0/form/text"),
        "{v:?}"
    );
}

#[test]
fn free_text_values_are_never_echoed_in_messages() {
    let mut r = ecog();
    r["status"] = json!("Jane Doe, born 1970-01-01");
    let v = violations(&r);
    assert!(!v[0].1.contains("Jane"), "{v:?}");
}

// ---- The schema as HL7 reads it (issue 11 item 5) --------------------------------------

/// Real FHIR data nobody here wrote: `shared/realdata/` beside the checkout (its README).
fn realdata(path: &str) -> Value {
    let file = format!("{}/../shared/realdata/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Every resource of a hook request's prefetch (Bundles unpacked).
fn prefetch_resources(request: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for v in request["prefetch"].as_object().unwrap().values() {
        match v["resourceType"].as_str() {
            Some("Bundle") => out.extend(
                v["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["resource"].clone()),
            ),
            Some(_) => out.push(v.clone()),
            None => {}
        }
    }
    out
}

fn set_aside_in(path: &str) -> Vec<String> {
    prefetch_resources(&realdata(path))
        .iter()
        .filter_map(|r| VALIDATOR.validate_resource(r).err())
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn unicode_spaces_in_strings_are_valid_as_in_hl7s_validator() {
    // uni-00 … uni-13: tab, NEL, NBSP, U+1680, en/thin/zero-width/narrow spaces, line
    // separator, U+205F, ideographic space, BOM, é, U+001F — all valid FHIR strings.
    for n in 0..=13 {
        let file = format!("unicode-probe/uni-{n:02}.json");
        assert_eq!(set_aside_in(&file), Vec::<String>::new(), "{file}");
    }
    // Vertical tab and form feed stay invalid, as in HL7's validator (Java's \s is ASCII).
    for n in [14, 15] {
        let file = format!("unicode-probe/uni-{n:02}.json");
        let errors = set_aside_in(&file);
        assert_eq!(errors.len(), 1, "{file}: {errors:?}");
        assert!(errors[0].contains("/code/text"), "{file}: {errors:?}");
    }
}

#[test]
fn every_primitive_may_carry_its_underscore_sibling() {
    for file in [
        "canonical-probe/meta-_profile.json",
        "canonical-probe/control-_status.json",
        "canonical-probe/medicationrequest-_instantiatesCanonical.json",
    ] {
        assert_eq!(set_aside_in(file), Vec::<String>::new(), "{file}");
    }
    // The sibling is an Element: anything else there is still an error.
    let mut r = ecog();
    r["meta"] = json!({"profile": ["http://example.org/p"], "_profile": [{"id": 7}]});
    assert!(
        violations(&r)
            .iter()
            .any(|(p, _)| p.starts_with("/meta/_profile"))
    );
}

#[test]
fn the_hl7_reading_patch_is_checksummed_and_complete() {
    use rps_cds::fhir::validation::{
        HL7_READING_PATCH, HL7_READING_PATCH_SHA256, hl7_reading_schema,
    };
    let on_disk = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/fhir.schema.hl7-reading.patch.json"
    ))
    .unwrap();
    assert_eq!(on_disk, HL7_READING_PATCH);
    assert_eq!(
        hex::encode(Sha256::digest(&on_disk)),
        HL7_READING_PATCH_SHA256
    );
    let provenance = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/fhir.schema.PROVENANCE.md"
    ))
    .unwrap();
    assert!(provenance.contains(HL7_READING_PATCH_SHA256));

    let schema = hl7_reading_schema(OFFICIAL_SCHEMA).unwrap();
    // No Unicode-reading whitespace class is left in any pattern.
    let mut stack = vec![&schema];
    let mut patterns = 0;
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(p)) = m.get("pattern") {
                    patterns += 1;
                    assert!(!p.contains("\\s") && !p.contains("\\S"), "{p}");
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    assert!(patterns > 100);
    // Every primitive property has its `_x` sibling (element and resource ids excepted).
    let defs = schema["definitions"].as_object().unwrap();
    let primitive = |r: &str| {
        let name = r.rsplit('/').next().unwrap();
        name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "xhtml"
    };
    for (name, def) in defs {
        let Some(props) = def["properties"].as_object() else {
            continue;
        };
        for (prop, spec) in props {
            if prop.starts_with('_') || prop == "id" || prop == "resourceType" {
                continue;
            }
            let r = spec["$ref"].as_str().or(spec["items"]["$ref"].as_str());
            if r.is_some_and(primitive) {
                assert!(
                    props.contains_key(&format!("_{prop}")),
                    "{name}.{prop} has no _{prop}"
                );
            }
        }
    }
}

#[test]
fn violations_name_the_defective_element_and_the_kind_of_error_without_the_value() {
    let v = &*VALIDATOR;
    let r = json!({"resourceType": "Observation", "id": "o", "status": "final",
        "valueQuantity": {"value": "72,5 kg"}, "colour": "blue"});
    let e = v.validate_resource(&r).unwrap_err();
    let paths = e.defect_paths();
    // A missing element is reported at its own path, an unknown one too.
    assert!(paths.contains(&"/code".to_owned()), "{paths:?}");
    assert!(paths.contains(&"/colour".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"/valueQuantity/value".to_owned()),
        "{paths:?}"
    );
    for violation in &e.violations {
        assert!(!violation.kind.contains("72,5"), "{violation:?}");
        assert!(!violation.kind.contains("blue"), "{violation:?}");
    }
    assert!(
        e.violations
            .iter()
            .any(|x| x.kind == "wrong JSON type (expected number)"),
        "{:?}",
        e.violations
    );
}
