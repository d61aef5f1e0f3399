//! Validation of every FHIR resource the service reads against the official HL7 FHIR R4
//! 4.0.1 JSON Schema (`schemas/fhir.schema.json`).
//!
//! The official schema dispatches on resource type with a `oneOf` over all 146 resource types
//! (at its root and in `ResourceList`, used by `contained` and `Bundle.entry.resource`). On
//! invalid input a `oneOf` must try every branch, which costs hundreds of milliseconds per
//! resource and explains nothing (one error at `/`). So, once at start-up:
//!
//! 1. the official schema, unmodified, is compiled for the yes/no question: `is_valid` on it
//!    costs ≈ 3 µs per resource, valid or not, because a failing `oneOf` branch stops at its
//!    `resourceType` constant;
//! 2. a second copy with `ResourceList` and the root rewritten from `oneOf` to draft-07
//!    `if resourceType = X then X` (same meaning) is compiled to *explain* a failure: it reports
//!    each error at its own JSON pointer in well under a millisecond. It is only consulted for
//!    resources the fast check rejected, and is compiled on a background thread at start-up so
//!    that it does not delay readiness.
//!
//! (Compiling a validator per resource type instead, with `ValidatorMap`, was measured: it
//! compiles every subschema separately and exhausted 24 GB of memory.)

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The official schema shipped with the service (see `schemas/fhir.schema.PROVENANCE.md`).
pub const OFFICIAL_SCHEMA: &[u8] = include_bytes!("../../schemas/fhir.schema.json");
/// sha256 of the official HL7 FHIR R4 4.0.1 JSON Schema.
pub const OFFICIAL_SCHEMA_SHA256: &str =
    "6bf84aa517f6b4b49f9cbd25cfcd08c810b2c4d2fd4fb92d0a7c57d4ef17beaf";
/// At most this many errors are reported per resource: enough to act on, bounded in cost.
pub const MAX_ERRORS_PER_RESOURCE: usize = 20;

/// One schema violation inside a resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchemaViolation {
    /// JSON pointer inside the resource (e.g. `/status`).
    pub pointer: String,
    /// What was wrong, in words a person can act on. Never contains the offending value when
    /// it could be patient data: only codes (enumerations) and element names are echoed.
    pub message: String,
    /// The kind of error without any value ("invalid code", "wrong JSON type (expected
    /// array)"): what a card may show (DATA-02).
    pub kind: String,
    /// The defective elements as JSON pointers: `pointer`, except that a missing or unknown
    /// element is reported at its own path rather than at its parent's.
    pub paths: Vec<String>,
}

impl SchemaViolation {
    fn new(pointer: String, message: String, kind: String) -> Self {
        SchemaViolation {
            paths: vec![pointer.clone()],
            pointer,
            message,
            kind,
        }
    }
}

/// A resource that failed validation, identified by type and id only (no patient data).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidResource {
    pub resource_type: String,
    pub id: Option<String>,
    pub violations: Vec<SchemaViolation>,
}

impl InvalidResource {
    /// The JSON pointers of every defective element (`SchemaViolation::paths`).
    pub fn defect_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .violations
            .iter()
            .flat_map(|v| v.paths.iter().cloned())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    /// "Observation/ecog-1" (or "Observation/(no id)").
    pub fn reference(&self) -> String {
        format!(
            "{}/{}",
            self.resource_type,
            self.id.as_deref().unwrap_or("(no id)")
        )
    }
}

impl fmt::Display for InvalidResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reference = self.reference();
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{reference} {}: {}",
                display_pointer(&v.pointer),
                v.message
            )?;
        }
        Ok(())
    }
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaLoadError {
    #[error("FHIR schema digest is {actual}, expected the official R4 4.0.1 schema {expected}")]
    Digest {
        actual: String,
        expected: &'static str,
    },
    #[error("FHIR schema is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("FHIR schema has an unexpected shape: {0}")]
    Shape(&'static str),
    #[error("FHIR schema does not compile: {0}")]
    Compile(String),
}

/// The compiled FHIR R4 schema, shared read-only by all workers.
pub struct FhirValidator {
    /// The official schema as published: fast yes/no.
    fast: jsonschema::Validator,
    /// The `if/then` rewrite: precise errors. Shared with the background thread compiling it.
    precise: Arc<PreciseValidator>,
    resource_types: HashSet<String>,
}

impl fmt::Debug for FhirValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FhirValidator")
            .field("resource_types", &self.resource_types.len())
            .finish()
    }
}

impl FhirValidator {
    /// Loads and compiles the schema shipped in the binary.
    pub fn official() -> Result<Self, SchemaLoadError> {
        Self::from_bytes(OFFICIAL_SCHEMA)
    }

    /// Checks the digest and compiles the fast validator now and the explaining one on a
    /// background thread.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SchemaLoadError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != OFFICIAL_SCHEMA_SHA256 {
            return Err(SchemaLoadError::Digest {
                actual,
                expected: OFFICIAL_SCHEMA_SHA256,
            });
        }
        let schema: Value = serde_json::from_slice(bytes)?;
        let types = resource_types(&schema)?;
        let precise_schema = rewrite_dispatch(schema.clone(), &types)?;
        let precise = Arc::new(PreciseValidator {
            compiled: OnceLock::new(),
        });
        let background = Arc::clone(&precise);
        std::thread::Builder::new()
            .name("fhir-schema-compile".to_owned())
            .spawn(move || {
                let compiled = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft7)
                    .build(&precise_schema)
                    .map_err(|e| e.to_string());
                let _ = background.compiled.set(compiled);
            })
            .map_err(|e| SchemaLoadError::Compile(e.to_string()))?;
        let fast = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft6)
            .build(&schema)
            .map_err(|e| SchemaLoadError::Compile(e.to_string()))?;
        Ok(Self {
            fast,
            precise,
            resource_types: types.into_iter().collect(),
        })
    }

    /// Blocks until the explaining validator is compiled (start-up calls this before
    /// reporting ready, so that the first invalid resource is not slow).
    pub fn wait_until_ready(&self) -> Result<(), SchemaLoadError> {
        self.precise
            .get()
            .as_ref()
            .map(|_| ())
            .map_err(|e| SchemaLoadError::Compile(e.clone()))
    }

    /// Number of resource types the schema defines (146 in R4).
    pub fn resource_type_count(&self) -> usize {
        self.resource_types.len()
    }

    /// Validates one resource against the definition of its own `resourceType`.
    pub fn validate_resource(&self, resource: &Value) -> Result<(), InvalidResource> {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(rt) = resource.get("resourceType") else {
            return Err(InvalidResource {
                resource_type: "(missing resourceType)".to_owned(),
                id,
                violations: vec![SchemaViolation::new(
                    "/resourceType".to_owned(),
                    "required element is missing".to_owned(),
                    "required element missing".to_owned(),
                )],
            });
        };
        let Some(rt_str) = rt.as_str().filter(|t| self.resource_types.contains(*t)) else {
            return Err(InvalidResource {
                resource_type: rt
                    .as_str()
                    .map_or("(invalid resourceType)", |_| "(unknown resourceType)")
                    .to_owned(),
                id,
                violations: vec![SchemaViolation::new(
                    "/resourceType".to_owned(),
                    match rt.as_str() {
                        Some(t) => format!("{} is not a FHIR R4 resource type", quote_code(t)),
                        None => "must be a string naming a FHIR R4 resource type".to_owned(),
                    },
                    "not a FHIR R4 resource type".to_owned(),
                )],
            });
        };
        if self.fast.is_valid(resource) {
            return Ok(());
        }
        let violations = match self.precise.get() {
            Ok(precise) => precise
                .iter_errors(resource)
                .take(MAX_ERRORS_PER_RESOURCE)
                .map(|e| {
                    let pointer = e.instance_path().to_string();
                    SchemaViolation {
                        paths: defective_paths(&pointer, e.kind()),
                        message: describe(e.kind(), e.instance()),
                        kind: kind_of(e.kind()),
                        pointer,
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        // Both validators encode the same schema; should they ever disagree, the resource is
        // still set aside (the fast check is the official schema) and says so.
        let violations = if violations.is_empty() {
            vec![SchemaViolation::new(
                String::new(),
                "does not conform to the FHIR R4 schema".to_owned(),
                "does not conform to the FHIR R4 schema".to_owned(),
            )]
        } else {
            violations
        };
        Err(InvalidResource {
            resource_type: rt_str.to_owned(),
            id,
            violations,
        })
    }
}

/// The explaining validator, set by the start-up thread that compiles it.
struct PreciseValidator {
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

impl PreciseValidator {
    /// Waits for the background compile if it has not finished yet.
    fn get(&self) -> &Result<jsonschema::Validator, String> {
        self.compiled.wait()
    }
}

/// Replaces the `oneOf` dispatch of the root and of `ResourceList` by `if/then` branches.
fn rewrite_dispatch(mut schema: Value, types: &[String]) -> Result<Value, SchemaLoadError> {
    let dispatch = if_then_dispatch(types);
    let definitions = schema
        .get_mut("definitions")
        .and_then(Value::as_object_mut)
        .ok_or(SchemaLoadError::Shape("no definitions"))?;
    definitions.insert("ResourceList".to_owned(), dispatch.clone());
    let root = schema
        .as_object_mut()
        .ok_or(SchemaLoadError::Shape("root is not an object"))?;
    root.remove("oneOf");
    root.remove("discriminator");
    // if/then is draft-07; the rest of the draft-06 schema means the same under draft-07.
    root.insert(
        "$schema".to_owned(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    if let Value::Object(d) = dispatch {
        root.extend(d);
    }
    Ok(schema)
}

fn resource_types(schema: &Value) -> Result<Vec<String>, SchemaLoadError> {
    let mapping = schema
        .pointer("/discriminator/mapping")
        .and_then(Value::as_object)
        .ok_or(SchemaLoadError::Shape("no discriminator mapping"))?;
    Ok(mapping.keys().cloned().collect())
}

/// `{"required": ["resourceType"], "properties": {"resourceType": {"enum": [...]}}, "allOf":
/// [{"if": {"properties": {"resourceType": {"const": T}}}, "then": {"$ref": ...}}]}`
fn if_then_dispatch(types: &[String]) -> Value {
    let branches: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "if": {"properties": {"resourceType": {"const": t}}},
                "then": {"$ref": format!("#/definitions/{t}")}
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("type".to_owned(), json!("object"));
    m.insert("required".to_owned(), json!(["resourceType"]));
    m.insert(
        "properties".to_owned(),
        json!({"resourceType": {"enum": types}}),
    );
    m.insert("allOf".to_owned(), Value::Array(branches));
    Value::Object(m)
}

/// Codes are short tokens and safe to echo; anything else could be patient data.
fn quote_code(s: &str) -> String {
    let is_code = s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:/".contains(c));
    if is_code {
        format!("\"{s}\"")
    } else {
        "the value".to_owned()
    }
}

/// The paths of the elements a violation concerns: a missing (`required`) or unknown
/// (`additionalProperties`) element at its own path, anything else at the reported one.
fn defective_paths(pointer: &str, kind: &ValidationErrorKind) -> Vec<String> {
    let child = |name: &str| format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
    match kind {
        ValidationErrorKind::Required { property } => match property.as_str() {
            Some(name) => vec![child(name)],
            None => vec![pointer.to_owned()],
        },
        ValidationErrorKind::AdditionalProperties { unexpected } if !unexpected.is_empty() => {
            unexpected.iter().map(|n| child(n)).collect()
        }
        _ => vec![pointer.to_owned()],
    }
}

/// The kind of a violation in words, never with the value (it may be patient data).
fn kind_of(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Enum { .. } => "invalid code".to_owned(),
        ValidationErrorKind::Constant { .. } => "value not allowed here".to_owned(),
        ValidationErrorKind::Required { .. } => "required element missing".to_owned(),
        ValidationErrorKind::AdditionalProperties { .. } => "unknown element".to_owned(),
        ValidationErrorKind::Pattern { .. } => "wrong format for its FHIR type".to_owned(),
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("wrong JSON type (expected {expected})")
        }
        other => format!("violates the `{}` constraint", other.keyword()),
    }
}

fn describe(kind: &ValidationErrorKind, instance: &Value) -> String {
    let shown = || match instance {
        Value::String(s) => quote_code(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    match kind {
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<&str> = options
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if allowed.len() <= 12 {
                format!(
                    "{} is not a valid code (allowed: {})",
                    shown(),
                    allowed.join(", ")
                )
            } else {
                format!("{} is not a valid code", shown())
            }
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!(
                "{} is not allowed here (expected {expected_value})",
                shown()
            )
        }
        ValidationErrorKind::Required { property } => {
            format!("required element {property} is missing")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("unknown element(s): {}", unexpected.join(", "))
        }
        ValidationErrorKind::Pattern { .. } => {
            format!(
                "{} does not have the format this FHIR type requires",
                shown()
            )
        }
        ValidationErrorKind::Type { kind } => {
            format!("{} has the wrong JSON type (expected {kind:?})", shown())
        }
        other => format!("violates the `{}` constraint", other.keyword()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_echoes_free_text() {
        assert_eq!(quote_code("final"), "\"final\"");
        assert_eq!(quote_code("John Smith, 1970"), "the value");
    }
}
