//! The OpenAPI 3.1 description served at `GET /openapi.json`.
//!
//! `schemas/openapi.json` is the hand-written source. Its request and response bodies point
//! at the CDS Hooks JSON Schemas (`schemas/cds-hooks/*.schema.json`) through component
//! aliases such as `"CdsHooksRequest": { "$ref": "./cds-hooks/request.schema.json" }`, so
//! those schemas stay the single source of truth. A served document must be self-contained,
//! so [`openapi_json`] inlines them:
//!
//! - each alias component is replaced by the schema it points at (without `$schema`, `$id`
//!   and `$defs`: a nested `$id` would change the base URI of every `$ref` inside it);
//! - each `$defs/<name>` of that schema becomes the component `<Alias>_<name>`;
//! - `$ref`s are rewritten: `#/$defs/x` inside a schema, and `./cds-hooks/f.json` /
//!   `./cds-hooks/f.json#/$defs/x` anywhere in the document, point at those components.
//!
//! The unit tests prove the result has no dangling `$ref` and that the document's examples
//! validate against the inlined schemas.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

const OPENAPI_SOURCE: &str = include_str!("../../schemas/openapi.json");

/// External schema files the document may reference, as written in its `$ref`s.
const EXTERNAL_SCHEMAS: &[(&str, &str)] = &[
    (
        "./cds-hooks/request.schema.json",
        include_str!("../../schemas/cds-hooks/request.schema.json"),
    ),
    (
        "./cds-hooks/response.schema.json",
        include_str!("../../schemas/cds-hooks/response.schema.json"),
    ),
    (
        "./cds-hooks/feedback.schema.json",
        include_str!("../../schemas/cds-hooks/feedback.schema.json"),
    ),
    (
        "./cds-hooks/discovery.schema.json",
        include_str!("../../schemas/cds-hooks/discovery.schema.json"),
    ),
    (
        "./cds-hooks/operation-outcome.schema.json",
        include_str!("../../schemas/cds-hooks/operation-outcome.schema.json"),
    ),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

// Built once: the inputs are compiled into the binary, so the result never changes. The
// unit tests exercise this exact code path, so a malformed source fails `cargo test`.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    build_document().expect("schemas/openapi.json and the CDS Hooks schemas are consistent")
});

/// The self-contained OpenAPI 3.1 document (all `$ref`s internal).
pub fn openapi_json() -> Value {
    DOCUMENT.clone()
}

/// The same document with `servers` set to this deployment's external URL
/// (`public_base_url`), so "try it" tools call the right host.
pub fn openapi_json_with_server(public_base_url: &str) -> Value {
    let mut doc = openapi_json();
    doc["servers"] = serde_json::json!([{
        "url": public_base_url.trim_end_matches('/'),
        "description": "This deployment (public_base_url)"
    }]);
    doc
}

/// Every `(METHOD, path template)` the document describes, e.g. `("POST",
/// "/cds-services/{id}")`, sorted; for comparing with the routes the server registers.
pub fn documented_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    if let Some(paths) = DOCUMENT.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in HTTP_METHODS {
                if item.get(*method).is_some() {
                    routes.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    routes.sort();
    routes
}

#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("{file}: invalid JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("{0}: not a JSON object")]
    NotObject(String),
    #[error("{file}: unsupported $ref {reference:?} (only #/$defs/<name> and # are inlined)")]
    UnsupportedRef { file: String, reference: String },
    #[error("$ref {0:?} names a schema file that has no alias in components.schemas")]
    NoAlias(String),
}

fn build_document() -> Result<Value, BuildError> {
    let mut doc: Value = parse("schemas/openapi.json", OPENAPI_SOURCE)?;
    let components = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| BuildError::NotObject("components.schemas".into()))?;

    // Which component aliases which file: `"Name": {"$ref": "./cds-hooks/x.json"}`.
    let mut alias_of: BTreeMap<&str, String> = BTreeMap::new();
    for (name, schema) in components.iter() {
        let target = schema
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("$ref"))
            .and_then(Value::as_str);
        if let Some(&(file, _)) = EXTERNAL_SCHEMAS.iter().find(|(f, _)| Some(*f) == target) {
            alias_of.insert(file, name.clone());
        }
    }

    for (file, text) in EXTERNAL_SCHEMAS {
        let Some(alias) = alias_of.get(file) else {
            continue;
        };
        let mut schema = match parse(file, text)? {
            Value::Object(o) => o,
            _ => return Err(BuildError::NotObject((*file).to_owned())),
        };
        schema.remove("$schema");
        schema.remove("$id");
        let defs = match schema.remove("$defs") {
            Some(Value::Object(d)) => d,
            Some(_) => return Err(BuildError::NotObject(format!("{file} $defs"))),
            None => Map::new(),
        };
        let mut root = Value::Object(schema);
        rewrite_internal_refs(&mut root, file, alias)?;
        components.insert(alias.clone(), root);
        for (def_name, mut def) in defs {
            rewrite_internal_refs(&mut def, file, alias)?;
            components.insert(format!("{alias}_{def_name}"), def);
        }
    }

    rewrite_external_refs(&mut doc, &alias_of)?;
    Ok(doc)
}

fn parse(file: &str, text: &str) -> Result<Value, BuildError> {
    serde_json::from_str(text).map_err(|source| BuildError::Json {
        file: file.to_owned(),
        source,
    })
}

/// Inside one inlined schema: `#` → the alias, `#/$defs/x` → `<alias>_x`.
fn rewrite_internal_refs(value: &mut Value, file: &str, alias: &str) -> Result<(), BuildError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "$ref" {
                    if let Value::String(r) = child {
                        *r = match r.as_str() {
                            "#" => format!("#/components/schemas/{alias}"),
                            other => match other.strip_prefix("#/$defs/") {
                                Some(def) if !def.contains('/') => {
                                    format!("#/components/schemas/{alias}_{def}")
                                }
                                _ => {
                                    return Err(BuildError::UnsupportedRef {
                                        file: file.to_owned(),
                                        reference: other.to_owned(),
                                    });
                                }
                            },
                        };
                    }
                } else {
                    rewrite_internal_refs(child, file, alias)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_internal_refs(item, file, alias)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Anywhere in the OpenAPI document: `./cds-hooks/f.json[#/$defs/x]` → component refs.
/// Fragment-only refs (`#/…`) are left alone.
fn rewrite_external_refs(
    value: &mut Value,
    alias_of: &BTreeMap<&str, String>,
) -> Result<(), BuildError> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(r) if key == "$ref" && !r.starts_with('#') => {
                        let (file, fragment) = r.split_once('#').unwrap_or((r.as_str(), ""));
                        let alias = alias_of
                            .get(file)
                            .ok_or_else(|| BuildError::NoAlias(r.clone()))?;
                        *r = match fragment.strip_prefix("/$defs/") {
                            Some(def) => format!("#/components/schemas/{alias}_{def}"),
                            None if fragment.is_empty() => {
                                format!("#/components/schemas/{alias}")
                            }
                            None => return Err(BuildError::NoAlias(r.clone())),
                        };
                    }
                    _ => rewrite_external_refs(child, alias_of)?,
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_external_refs(item, alias_of)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(s) if k == "$ref" => out.push(s),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn document_is_openapi_3_1_and_self_contained() {
        let doc = openapi_json();
        let version = doc["openapi"].as_str().expect("openapi version string");
        assert!(version.starts_with("3.1."), "{version}");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(
            refs.len() > 20,
            "expected the inlined schemas' refs, got {refs:?}"
        );
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref left in the document: {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        let text = doc.to_string();
        assert!(
            !text.contains("$defs"),
            "a $defs block or ref survived inlining"
        );
        assert!(!text.contains("\"$id\""), "a nested $id would re-base refs");
    }

    #[test]
    fn every_route_of_the_service_is_documented() {
        let expected = [
            ("GET", "/cds-services"),
            ("POST", "/cds-services/{id}"),
            ("POST", "/cds-services/{id}/feedback"),
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("GET", "/admin/rules/stats"),
            ("GET", "/admin"),
            ("GET", "/rules"),
        ];
        let mut expected: Vec<(String, String)> = expected
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        expected.sort();
        assert_eq!(documented_routes(), expected);
    }

    #[test]
    fn service_route_documents_every_status_code() {
        let doc = openapi_json();
        let codes = |path: &str| -> Vec<String> {
            let mut c: Vec<String> = doc["paths"][path]["post"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            c.sort();
            c
        };
        assert_eq!(
            codes("/cds-services/{id}"),
            [
                "200", "400", "401", "404", "405", "408", "412", "413", "415", "503"
            ]
        );
        assert_eq!(
            codes("/cds-services/{id}/feedback"),
            ["200", "400", "401", "404", "408", "413", "415", "503"]
        );
        // Each CDS Hooks schema is inlined under its alias, with its definitions.
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for alias in [
            "CdsHooksRequest",
            "CdsHooksResponse",
            "CdsHooksFeedback",
            "CdsHooksDiscovery",
            "OperationOutcome",
        ] {
            assert!(
                schemas[alias].get("$ref").is_none() && schemas[alias]["type"] == "object",
                "{alias} not inlined"
            );
        }
        assert!(schemas.contains_key("CdsHooksResponse_card"));
    }

    /// Validates `instance` against component `name` of the inlined document.
    fn validate(doc: &Value, name: &str, instance: &Value) -> Result<(), String> {
        let schema = serde_json::json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        let validator = jsonschema::draft202012::new(&schema).map_err(|e| e.to_string())?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    #[test]
    fn examples_validate_against_the_inlined_schemas() {
        let doc = openapi_json();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let mut bodies: Vec<(&str, &Value)> = Vec::new();
                if let Some(b) = op.pointer("/requestBody/content/application~1json") {
                    bodies.push(("request", b));
                }
                for (code, resp) in op["responses"].as_object().into_iter().flatten() {
                    let resp = match resp.get("$ref").and_then(Value::as_str) {
                        Some(r) => doc.pointer(&r[1..]).unwrap(),
                        None => resp,
                    };
                    for (media, body) in resp["content"].as_object().into_iter().flatten() {
                        if media.contains("json") {
                            bodies.push((code.as_str(), body));
                        }
                    }
                }
                for (what, body) in bodies {
                    let Some(name) = body["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    else {
                        continue;
                    };
                    for (ex_name, ex) in body["examples"].as_object().into_iter().flatten() {
                        let ex = match ex.get("$ref").and_then(Value::as_str) {
                            Some(r) => doc.pointer(&r[1..]).unwrap(),
                            None => ex,
                        };
                        validate(&doc, name, &ex["value"]).unwrap_or_else(|e| {
                            panic!("{method} {path} {what} example {ex_name}: {e}")
                        });
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 8, "only {checked} examples checked");
    }

    #[test]
    fn a_broken_example_is_caught() {
        // The validation helper above must be able to fail, or the example test proves nothing.
        let doc = openapi_json();
        let bad = serde_json::json!({ "cards": [{ "summary": "no uuid, indicator or source" }] });
        assert!(validate(&doc, "CdsHooksResponse", &bad).is_err());
        let good = serde_json::json!({ "cards": [] });
        assert!(validate(&doc, "CdsHooksResponse", &good).is_ok());
    }

    #[test]
    fn server_url_comes_from_public_base_url() {
        let doc = openapi_json_with_server("https://cds.example.org/");
        assert_eq!(doc["servers"][0]["url"], "https://cds.example.org");
        assert_eq!(doc["paths"], openapi_json()["paths"]);
    }

    #[test]
    fn unsupported_refs_in_a_schema_are_rejected() {
        let mut v = serde_json::json!({ "a": { "$ref": "other.json#/x" } });
        assert!(matches!(
            rewrite_internal_refs(&mut v, "f", "A"),
            Err(BuildError::UnsupportedRef { .. })
        ));
        let mut v = serde_json::json!({ "items": [{ "$ref": "#/$defs/x" }, { "$ref": "#" }] });
        rewrite_internal_refs(&mut v, "f", "A").unwrap();
        assert_eq!(v["items"][0]["$ref"], "#/components/schemas/A_x");
        assert_eq!(v["items"][1]["$ref"], "#/components/schemas/A");
    }
}
