//! The OpenAPI 3.1 description served at `GET /openapi.json`.
//!
//! `schemas/openapi.json` is the hand-written source. Its request and response bodies point
//! at the CDS Hooks JSON Schemas (`schemas/cds-hooks/*.schema.json`) through component
//! aliases such as `"CdsHooksRequest": { "$ref": "./cds-hooks/request.schema.json" }`, so
//! those schemas stay the single source of truth. A served document must be self-contained,
//! so `openapi_json` inlines them:
//!
//! - each alias component is replaced by the schema it points at (without `$schema`, `$id`
//!   and `$defs`: a nested `$id` would change the base URI of every `$ref` inside it);
//! - each `$defs/<name>` of that schema becomes the component `<Alias>_<name>`;
//! - `$ref`s are rewritten: `#/$defs/x` inside a schema, and `./cds-hooks/f.json` /
//!   `./cds-hooks/f.json#/$defs/x` anywhere in the document, point at those components.
//!
//! The document's `paths` are derived from the route list ([`ROUTES`]): each route's
//! operation is taken from the source by path and method. A route the
//! source does not document, or a documented operation (or path) that is not a route, is a
//! build error, so the served document describes exactly the routes the server answers.
//!
//! The unit tests prove the result has no dangling `$ref` and that the document's examples
//! validate against the inlined schemas.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::routes::{ROUTES, Verb};

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
    build_document(OPENAPI_SOURCE, &served_operations()).expect(
        "schemas/openapi.json documents exactly the routes and matches the CDS Hooks schemas",
    )
});

/// `(method, path)` of every route, in [`ROUTES`] order.
fn served_operations() -> Vec<(Verb, &'static str)> {
    ROUTES.iter().map(|r| (r.method, r.path)).collect()
}

/// The self-contained OpenAPI 3.1 document (all `$ref`s internal).
pub(crate) fn openapi_json() -> Value {
    DOCUMENT.clone()
}

/// The same document with `servers` set to this deployment's external URL
/// (`public_base_url`), so "try it" tools call the right host.
pub(crate) fn openapi_json_with_server(public_base_url: &str) -> Value {
    let mut doc = openapi_json();
    doc["servers"] = serde_json::json!([{
        "url": public_base_url.trim_end_matches('/'),
        "description": "This deployment (public_base_url)"
    }]);
    doc
}

/// Every `(METHOD, path template)` the document describes, e.g. `("POST",
/// "/cds-services/{id}")`, sorted: the routes of [`ROUTES`], read back from the document.
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
    #[error("route {method} {path} is not documented in schemas/openapi.json")]
    Undocumented {
        method: &'static str,
        path: &'static str,
    },
    #[error("schemas/openapi.json documents {path} {key}, which is not a route of the server")]
    NotServed { path: String, key: String },
}

/// The served document from the OpenAPI `source` and the `(method, path)` of every route.
fn build_document(source: &str, routes: &[(Verb, &'static str)]) -> Result<Value, BuildError> {
    let mut doc: Value = parse("schemas/openapi.json", source)?;
    let paths = derive_paths(doc.get_mut("paths").map(Value::take), routes)?;
    doc["paths"] = paths;
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

/// The `paths` object of the served document: one path item per route path, each route's
/// operation taken from the `documented` path items; their path-level fields (`parameters`,
/// `summary`, …) stay with them. Whatever is documented but not a route is an error.
fn derive_paths(
    documented: Option<Value>,
    routes: &[(Verb, &'static str)],
) -> Result<Value, BuildError> {
    let mut documented = match documented {
        Some(Value::Object(p)) => p,
        _ => return Err(BuildError::NotObject("paths".into())),
    };
    let mut paths = Map::new();
    for &(method, path) in routes {
        let operation = documented
            .get_mut(path)
            .and_then(Value::as_object_mut)
            .and_then(|item| item.remove(method.openapi_key()))
            .ok_or(BuildError::Undocumented {
                method: method.as_str(),
                path,
            })?;
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[method.openapi_key()] = operation;
    }
    for (path, item) in documented {
        let Value::Object(fields) = item else {
            return Err(BuildError::NotObject(format!("paths.{path}")));
        };
        for (key, value) in fields {
            match paths.get_mut(&path) {
                Some(item) if !HTTP_METHODS.contains(&key.as_str()) => item[&key] = value,
                _ => return Err(BuildError::NotServed { path, key }),
            }
        }
    }
    Ok(Value::Object(paths))
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
    fn the_documented_paths_are_the_route_list() {
        // By construction: `paths` is derived from ROUTES.
        let doc = openapi_json();
        let mut paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort();
        let mut listed: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        listed.sort();
        assert_eq!(paths, listed);
        let mut expected: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        expected.sort();
        assert_eq!(documented_routes(), expected);
        // Path-level fields stay with their path, and nothing documented is lost.
        assert!(doc["paths"]["/cds-services/{id}"]["parameters"].is_array());
        let source: Value = serde_json::from_str(OPENAPI_SOURCE).unwrap();
        let derived = derive_paths(Some(source["paths"].clone()), &served_operations()).unwrap();
        assert_eq!(derived, source["paths"]);
    }

    #[test]
    fn an_undocumented_route_or_an_unserved_operation_fails_the_build() {
        let mut routes = served_operations();
        routes.push((Verb::Get, "/not-documented"));
        assert!(matches!(
            build_document(OPENAPI_SOURCE, &routes),
            Err(BuildError::Undocumented {
                method: "GET",
                path: "/not-documented"
            })
        ));
        // A documented operation whose route is gone (here: POST on the service route).
        let routes: Vec<_> = served_operations()
            .into_iter()
            .filter(|&(_, p)| p != "/cds-services/{id}")
            .collect();
        match build_document(OPENAPI_SOURCE, &routes) {
            Err(BuildError::NotServed { path, key }) => {
                assert_eq!(path, "/cds-services/{id}");
                assert!(key == "post" || key == "parameters", "{key}");
            }
            other => panic!("{other:?}"),
        }
        // A method documented on a served path that the route does not take.
        let mut source: Value = serde_json::from_str(OPENAPI_SOURCE).unwrap();
        source["paths"]["/healthz"]["post"] = source["paths"]["/healthz"]["get"].clone();
        assert!(matches!(
            build_document(&source.to_string(), &served_operations()),
            Err(BuildError::NotServed { ref path, ref key }) if path == "/healthz" && key == "post"
        ));
        assert!(build_document(OPENAPI_SOURCE, &served_operations()).is_ok());
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
