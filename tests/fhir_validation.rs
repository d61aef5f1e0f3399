use rps_cds::fhir::FhirValidator;
use serde_json::json;
use std::time::Instant;

#[test]
fn measure() {
    let t = Instant::now();
    let v = FhirValidator::official().unwrap();
    eprintln!(
        "compile {:?} types {}",
        t.elapsed(),
        v.resource_type_count()
    );
    let obs = json!({"resourceType":"Observation","id":"ecog-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"89247-1"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-10-01","valueInteger":1});
    let bad = json!({"resourceType":"Observation","id":"ecog-1","status":"finalised","code":{"coding":[{"system":"http://loinc.org","code":"89247-1"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-13-01","valueInteger":"1", "foo": 1});
    let t = Instant::now();
    for _ in 0..1000 {
        assert!(v.validate_resource(&obs).is_ok());
    }
    eprintln!("valid per resource {:?}", t.elapsed() / 1000);
    let t = Instant::now();
    for _ in 0..100 {
        assert!(v.validate_resource(&bad).is_err());
    }
    eprintln!("invalid per resource {:?}", t.elapsed() / 100);
    eprintln!("{}", v.validate_resource(&bad).unwrap_err());
}

#[test]
fn measure_original() {
    let schema: serde_json::Value =
        serde_json::from_slice(rps_cds::fhir::validation::OFFICIAL_SCHEMA).unwrap();
    let t = Instant::now();
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft6)
        .build(&schema)
        .unwrap();
    eprintln!("orig compile {:?}", t.elapsed());
    let obs = json!({"resourceType":"Observation","id":"ecog-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"89247-1"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-10-01","valueInteger":1});
    let bad = json!({"resourceType":"Observation","id":"ecog-1","status":"finalised","code":{"coding":[{"system":"http://loinc.org","code":"89247-1"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-13-01","valueInteger":"1", "foo": 1});
    let t = Instant::now();
    for _ in 0..1000 {
        assert!(v.is_valid(&obs));
    }
    eprintln!("orig valid per resource {:?}", t.elapsed() / 1000);
    let t = Instant::now();
    for _ in 0..100 {
        assert!(!v.is_valid(&bad));
    }
    eprintln!("orig invalid is_valid per resource {:?}", t.elapsed() / 100);
}
