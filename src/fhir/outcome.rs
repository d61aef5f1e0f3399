//! FHIR `OperationOutcome`: the body of every error response, one issue per problem, with the
//! JSON path of the offending element in `expression`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// The subset of the FHIR `issue-type` codes this service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    TooLong,
    NotFound,
    NotSupported,
    Security,
    Login,
    Incomplete,
    Timeout,
    Exception,
    Duplicate,
    TooCostly,
    Transient,
    Processing,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    pub diagnostics: String,
    /// FHIRPath-like / JSON paths of the offending element(s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

impl Issue {
    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.expression.push(path.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "resourceType", rename = "OperationOutcome")]
pub struct OperationOutcome {
    pub issue: Vec<Issue>,
}

impl OperationOutcome {
    pub fn new(issue: Vec<Issue>) -> Self {
        Self { issue }
    }

    pub fn single(issue: Issue) -> Self {
        Self { issue: vec![issue] }
    }
}

/// Turns a JSON pointer (`/context/draftOrders/entry/0`) into the dotted JSON path used in
/// `expression` (`context.draftOrders.entry[0]`).
pub(crate) fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() { "$".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_paths() {
        assert_eq!(
            pointer_to_path("/context/draftOrders/entry/0/resource"),
            "context.draftOrders.entry[0].resource"
        );
        assert_eq!(pointer_to_path(""), "$");
        assert_eq!(pointer_to_path("/a~1b"), "a/b");
    }
}
