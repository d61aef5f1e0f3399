//! The three services this CDS Service offers, and the discovery document.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::knowledge::Hook;

/// One prefetch key of the public contract with EHRs: its name, its template, and whether the
/// call can go on without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrefetchKey {
    pub key: &'static str,
    /// Searches are on the patient and not narrowed further: the input profile reads many
    /// codes from each resource type, and an EHR filtering by code would drop the text-coded
    /// records the profile accepts.
    pub template: &'static str,
    /// Without it there is nothing to advise on: when it cannot be had, the call is refused
    /// with 412 whatever `prefetch.on_failure` says (catalogue v2 §4.2, DATA-04).
    pub required: bool,
}

/// The prefetch keys every service declares, in discovery order: the one list from which the
/// key names, templates, resource types and required keys are all derived.
pub(crate) const PREFETCH: [PrefetchKey; 8] = [
    PrefetchKey {
        key: "patient",
        template: "Patient/{{context.patientId}}",
        required: true,
    },
    PrefetchKey {
        key: "conditions",
        template: "Condition?patient={{context.patientId}}",
        required: true,
    },
    PrefetchKey {
        key: "observations",
        template: "Observation?patient={{context.patientId}}",
        required: false,
    },
    PrefetchKey {
        key: "procedures",
        template: "Procedure?patient={{context.patientId}}",
        required: false,
    },
    PrefetchKey {
        key: "medicationAdministrations",
        template: "MedicationAdministration?patient={{context.patientId}}",
        required: false,
    },
    PrefetchKey {
        key: "medicationStatements",
        template: "MedicationStatement?patient={{context.patientId}}",
        required: false,
    },
    PrefetchKey {
        key: "medicationRequests",
        template: "MedicationRequest?patient={{context.patientId}}",
        required: false,
    },
    PrefetchKey {
        key: "diagnosticReports",
        template: "DiagnosticReport?patient={{context.patientId}}",
        required: false,
    },
];

/// The key names of [`PREFETCH`].
pub(crate) fn prefetch_keys() -> impl Iterator<Item = &'static str> {
    PREFETCH.iter().map(|k| k.key)
}

/// The prefetch template of a key.
pub(crate) fn prefetch_template(key: &str) -> Option<&'static str> {
    PREFETCH.iter().find(|k| k.key == key).map(|k| k.template)
}

/// Whether the call is refused when this key cannot be had.
pub(crate) fn prefetch_is_required(key: &str) -> bool {
    PREFETCH.iter().any(|k| k.key == key && k.required)
}

/// The FHIR resource type a key's template reads or searches ("Condition" for
/// `Condition?patient=…`), from the template itself so that the two cannot disagree.
pub(crate) fn prefetch_resource_type(key: &str) -> Option<&'static str> {
    prefetch_template(key)?.split(['?', '/']).next()
}

/// Whether a key's template is a search (answered by a searchset Bundle) rather than a read.
pub(crate) fn prefetch_is_search(key: &str) -> bool {
    prefetch_template(key).is_some_and(|t| t.contains('?'))
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceDefinition {
    pub id: &'static str,
    pub hook: Hook,
    pub title: &'static str,
    pub description: &'static str,
    #[serde(rename = "usageRequirements")]
    pub usage_requirements: &'static str,
    pub prefetch: Map<String, Value>,
}

const USAGE: &str = "For adults with retroperitoneal sarcoma. Send the eight prefetch keys (or a fhirServer with \
fhirAuthorization so the service can fetch them). Every card informs a clinician; none blocks an order.";

/// The services, in discovery order.
pub fn services() -> Vec<ServiceDefinition> {
    let prefetch: Map<String, Value> = PREFETCH
        .iter()
        .map(|k| (k.key.to_owned(), json!(k.template)))
        .collect();
    vec![
        ServiceDefinition {
            id: "rps-patient-view",
            hook: Hook::PatientView,
            title: "Retroperitoneal sarcoma: recurrence and metastasis decision support",
            description: "On opening the chart of a patient with retroperitoneal sarcoma that has recurred locally or \
metastasised: verdict on re-resection or metastasectomy, missing work-up, histology-matched systemic therapy, \
surveillance that is overdue, and the facts that are missing.",
            usage_requirements: USAGE,
            prefetch: prefetch.clone(),
        },
        ServiceDefinition {
            id: "rps-order-select",
            hook: Hook::OrderSelect,
            title: "Retroperitoneal sarcoma: checks on selected orders",
            description: "When orders are selected for a patient with retroperitoneal sarcoma: warns about orders the \
guidelines advise against (e.g. HIPEC, olaratumab, anthracycline over the lifetime limit) and offers better ones.",
            usage_requirements: USAGE,
            prefetch: prefetch.clone(),
        },
        ServiceDefinition {
            id: "rps-order-sign",
            hook: Hook::OrderSign,
            title: "Retroperitoneal sarcoma: checks before orders are signed",
            description: "Before draft orders are signed for a patient with retroperitoneal sarcoma: the same order checks \
over every draft order.",
            usage_requirements: USAGE,
            prefetch,
        },
    ]
}

/// The service with this id.
pub fn service(id: &str) -> Option<ServiceDefinition> {
    services().into_iter().find(|s| s.id == id)
}

/// `GET /cds-services`.
pub(crate) fn discovery_document() -> Value {
    json!({ "services": services() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_resource_type_and_kind() {
        assert_eq!(prefetch_resource_type("patient"), Some("Patient"));
        assert!(!prefetch_is_search("patient"));
        assert_eq!(prefetch_resource_type("conditions"), Some("Condition"));
        assert_eq!(
            prefetch_resource_type("medicationAdministrations"),
            Some("MedicationAdministration")
        );
        for key in prefetch_keys().filter(|k| *k != "patient") {
            assert!(prefetch_is_search(key), "{key}");
        }
        assert_eq!(prefetch_resource_type("nope"), None);
        let required: Vec<&str> = prefetch_keys()
            .filter(|k| prefetch_is_required(k))
            .collect();
        assert_eq!(required, ["patient", "conditions"]);
    }
}
