//! Charts for the benchmarks, built from the example requests in `examples/` so that the
//! measured resources are the realistic ones the service is tested with.

// Each bench target uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

/// The example hook requests whose FHIR resources make up the benchmark charts.
pub const EXAMPLE_REQUESTS: &[&str] = &[
    "patient-view-local-recurrence.json",
    "patient-view-metastatic.json",
    "order-select.json",
    "order-sign.json",
];

pub fn example_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

pub fn load_example(name: &str) -> Value {
    let bytes = std::fs::read(example_path(name)).expect("example request is readable");
    serde_json::from_slice(&bytes).expect("example request is JSON")
}

/// The resources of a prefetch value: the entries of a Bundle, or the resource itself.
pub fn resources_of(value: &Value) -> Vec<Value> {
    match value.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => value["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource").cloned())
            .collect(),
        Some(_) => vec![value.clone()],
        None => Vec::new(),
    }
}

/// Every distinct FHIR resource (by type and id) in the example requests: prefetch and draft
/// orders, in file order.
pub fn example_resources() -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in EXAMPLE_REQUESTS {
        let request = load_example(name);
        let mut found: Vec<Value> = Vec::new();
        if let Some(prefetch) = request["prefetch"].as_object() {
            for value in prefetch.values() {
                found.extend(resources_of(value));
            }
        }
        if let Some(drafts) = request.pointer("/context/draftOrders") {
            found.extend(resources_of(drafts));
        }
        for r in found {
            let key = (
                r["resourceType"].as_str().unwrap_or_default().to_owned(),
                r["id"].as_str().unwrap_or_default().to_owned(),
            );
            if seen.insert(key) {
                out.push(r);
            }
        }
    }
    out
}

/// Copy `round` of a resource: the same content under a new id (round 0 keeps the id).
pub fn renamed(resource: &Value, round: usize) -> Value {
    let mut r = resource.clone();
    if round > 0
        && let Some(id) = r.get("id").and_then(Value::as_str)
    {
        r["id"] = json!(format!("{id}-r{round}"));
    }
    r
}

/// Exactly `n` resources cycling through `pool`, ids renamed on every pass after the first so
/// that no (type, id) pair repeats.
pub fn cycle_chart(pool: &[Value], n: usize) -> Vec<Value> {
    assert!(!pool.is_empty(), "resource pool is empty");
    (0..n)
        .map(|i| renamed(&pool[i % pool.len()], i / pool.len()))
        .collect()
}

/// A chart of `n` resources drawn from all example requests.
pub fn mixed_chart(n: usize) -> Vec<Value> {
    cycle_chart(&example_resources(), n)
}

/// The five kinds of invalid resource the issue asks for, one each.
pub const INVALID_KINDS: [&str; 5] = [
    "bad code in Observation.status",
    "bad dateTime",
    "unknown element",
    "wrong JSON type",
    "missing required element",
];

/// Makes five resources of `chart` invalid, one per [`INVALID_KINDS`], each in a different
/// resource. Returns the indices changed.
pub fn make_five_invalid(chart: &mut [Value]) -> Vec<usize> {
    let mut used: Vec<usize> = Vec::new();
    let mut pick = |chart: &[Value], pred: &dyn Fn(&Value) -> bool| -> usize {
        let i = chart
            .iter()
            .enumerate()
            .position(|(i, r)| !used.contains(&i) && pred(r))
            .expect("the chart has a resource to corrupt");
        used.push(i);
        i
    };
    let is = |t: &'static str| move |r: &Value| r["resourceType"] == t;

    let i = pick(chart, &is("Observation"));
    chart[i]["status"] = json!("not-a-status");

    let i = pick(chart, &|r: &Value| r.get("effectiveDateTime").is_some());
    chart[i]["effectiveDateTime"] = json!("2026-13-45T25:61:00Z");

    let i = pick(chart, &is("Procedure"));
    chart[i]["surgeonFavouriteColour"] = json!("blue");

    // A primitive: the official schema gives complex types such as Reference no `"type":
    // "object"`, so a string where a Reference belongs is not caught by the schema.
    let i = pick(chart, &is("Patient"));
    chart[i]["active"] = json!("yes");

    let i = pick(chart, &is("DiagnosticReport"));
    chart[i]
        .as_object_mut()
        .expect("resource is an object")
        .remove("code");

    used
}

/// A patient-view request with exactly `n` resources in its prefetch (the Patient included),
/// built from `patient-view-local-recurrence.json` by repeating its non-Patient resources
/// under new ids, each copy in the prefetch bundle the original came from. Copies carry the
/// same clinical content, so the chart stays clinically consistent.
pub fn patient_view_request(n: usize) -> Value {
    let mut request = load_example("patient-view-local-recurrence.json");
    let prefetch = request["prefetch"]
        .as_object_mut()
        .expect("prefetch is an object");
    let mut originals: Vec<(String, Value)> = Vec::new();
    let mut count = 0;
    for (key, value) in prefetch.iter() {
        let rs = resources_of(value);
        count += rs.len();
        if key != "patient" {
            originals.extend(rs.into_iter().map(|r| (key.clone(), r)));
        }
    }
    assert!(count <= n, "the example already has {count} resources");
    let mut i = 0;
    while count < n {
        let (key, original) = &originals[i % originals.len()];
        let copy = renamed(original, 1 + i / originals.len());
        let bundle = prefetch.get_mut(key).expect("bundle exists");
        let entries = bundle["entry"]
            .as_array_mut()
            .expect("prefetch bundle has entries");
        entries.push(json!({ "resource": copy }));
        let len = entries.len();
        if let Some(total) = bundle.get_mut("total") {
            *total = json!(len);
        }
        count += 1;
        i += 1;
    }
    request
}

/// The patient-view request with five of its prefetch resources made invalid as
/// [`make_five_invalid`] does (the chart of `chart_50_five_invalid`, as a request).
pub fn with_five_invalid(request: &Value) -> Value {
    let mut request = request.clone();
    let prefetch = request["prefetch"]
        .as_object_mut()
        .expect("prefetch is an object");
    // Where each resource sits: (key, entry index; None for a bare resource).
    let mut places: Vec<(String, Option<usize>)> = Vec::new();
    let mut chart: Vec<Value> = Vec::new();
    for (key, value) in prefetch.iter() {
        match value.get("entry").and_then(Value::as_array) {
            Some(entries) => {
                for (i, e) in entries.iter().enumerate() {
                    places.push((key.clone(), Some(i)));
                    chart.push(e["resource"].clone());
                }
            }
            None if value.get("resourceType").is_some() => {
                places.push((key.clone(), None));
                chart.push(value.clone());
            }
            None => {}
        }
    }
    make_five_invalid(&mut chart);
    for ((key, i), r) in places.into_iter().zip(chart) {
        match i {
            Some(i) => prefetch[&key]["entry"][i]["resource"] = r,
            None => prefetch[&key] = r,
        }
    }
    request
}
