//! Whose record is this? Every resource the service reads must belong to the patient in
//! `context.patientId` (catalogue v2 §4.1 "patient identity", DATA-03): a card computed from
//! another patient's data is the most dangerous wrong card there is.
//!
//! A resource is the patient's when its `subject` (or, for the types that have one instead,
//! `patient`) references `Patient/{patientId}`: relative, with a `_history` suffix, or as an
//! absolute URL on the request's `fhirServer`. Which types carry a patient reference, and in
//! which element, is read from the FHIR schema itself, so no hand-written list can fall out
//! of date.

use std::collections::HashMap;

use serde_json::Value;

/// The answer for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Belonging {
    /// Its patient reference names the patient in context (or it is that Patient).
    ThisPatient,
    /// It names another patient (or is another Patient resource).
    OtherPatient,
    /// Its type has no patient reference (Medication, Practitioner …): not patient data.
    NotPatientData,
    /// Its type has a patient reference, but this one is missing or not a readable reference
    /// to a Patient (a Group, a contained or logical reference, another server's URL …). It is
    /// not read, and it is not "another patient" either. The element is named for DATA-02.
    Unreadable(&'static str),
}

/// The patient-reference element of each resource type, from the schema's definitions: a
/// single `Reference` named `subject` or `patient` (no R4 type has both).
#[derive(Debug, Clone, Default)]
pub struct PatientElements(HashMap<String, &'static str>);

impl PatientElements {
    pub fn from_schema(schema: &Value, resource_types: &[String]) -> Self {
        let mut map = HashMap::new();
        for t in resource_types {
            let props = schema.pointer(&format!("/definitions/{t}/properties"));
            for element in ["subject", "patient"] {
                let is_reference = props
                    .and_then(|p| p.get(element))
                    .and_then(|e| e.get("$ref"))
                    .and_then(Value::as_str)
                    == Some("#/definitions/Reference");
                if is_reference {
                    map.insert(t.clone(), element);
                }
            }
        }
        Self(map)
    }

    /// The element that names the patient in resources of `resource_type`, if any.
    pub fn of(&self, resource_type: &str) -> Option<&'static str> {
        self.0.get(resource_type).copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The patient in context, with the server its absolute references may point to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PatientInContext<'a> {
    pub patient_id: &'a str,
    pub fhir_server: Option<&'a url::Url>,
}

impl PatientInContext<'_> {
    /// Whose record `resource` is.
    pub(crate) fn belonging(&self, resource: &Value, elements: &PatientElements) -> Belonging {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if resource_type == "Patient" {
            return match resource.get("id").and_then(Value::as_str) {
                Some(id) if id == self.patient_id => Belonging::ThisPatient,
                Some(_) => Belonging::OtherPatient,
                None => Belonging::Unreadable("id"),
            };
        }
        let Some(element) = elements.of(resource_type) else {
            return Belonging::NotPatientData;
        };
        let Some(reference) = resource
            .get(element)
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
        else {
            return Belonging::Unreadable(element);
        };
        match self.patient_of(reference) {
            Some(id) if id == self.patient_id => Belonging::ThisPatient,
            Some(_) => Belonging::OtherPatient,
            None => Belonging::Unreadable(element),
        }
    }

    /// The patient id a reference names, when it names a Patient in a form that can be
    /// compared: `Patient/x`, `Patient/x/_history/n`, or an absolute URL under `fhirServer`.
    fn patient_of<'r>(&self, reference: &'r str) -> Option<&'r str> {
        let relative = if reference.contains("://") {
            let server = self.fhir_server?;
            let base = server.as_str().trim_end_matches('/');
            let rest = reference.strip_prefix(base)?;
            rest.strip_prefix('/')?
        } else {
            reference
        };
        let mut parts = relative.split('/');
        let (Some("Patient"), Some(id)) = (parts.next(), parts.next()) else {
            return None;
        };
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) | (Some("_history"), Some(_), None) if is_fhir_id(id) => Some(id),
            _ => None,
        }
    }
}

/// FHIR `id`: 1–64 of `[A-Za-z0-9.-]`.
fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn elements() -> PatientElements {
        let schema = json!({"definitions": {
            "Condition": {"properties": {"subject": {"$ref": "#/definitions/Reference"}}},
            "AllergyIntolerance": {"properties": {"patient": {"$ref": "#/definitions/Reference"}}},
            "Account": {"properties": {"subject": {"type": "array"}}},
            "Medication": {"properties": {"code": {}}}
        }});
        let types = ["Condition", "AllergyIntolerance", "Account", "Medication"];
        PatientElements::from_schema(&schema, &types.map(str::to_owned))
    }

    fn condition(subject: Value) -> Value {
        json!({"resourceType": "Condition", "id": "c", "subject": subject})
    }

    #[test]
    fn reference_forms_are_normalised() {
        let server = url::Url::parse("https://ehr.example.org/fhir/r4/").unwrap();
        let ctx = PatientInContext {
            patient_id: "p1",
            fhir_server: Some(&server),
        };
        let e = elements();
        let b = |s: Value| ctx.belonging(&condition(s), &e);
        assert_eq!(
            b(json!({"reference": "Patient/p1"})),
            Belonging::ThisPatient
        );
        assert_eq!(
            b(json!({"reference": "Patient/p1/_history/3"})),
            Belonging::ThisPatient
        );
        assert_eq!(
            b(json!({"reference": "https://ehr.example.org/fhir/r4/Patient/p1"})),
            Belonging::ThisPatient
        );
        assert_eq!(
            b(json!({"reference": "Patient/p2"})),
            Belonging::OtherPatient
        );
        assert_eq!(
            b(json!({"reference": "https://ehr.example.org/fhir/r4/Patient/p2"})),
            Belonging::OtherPatient
        );
        // Not comparable: another server, a sibling path, a Group, contained, logical only.
        for s in [
            json!({"reference": "https://other.example.org/fhir/Patient/p1"}),
            json!({"reference": "https://ehr.example.org/fhir/r4x/Patient/p1"}),
            json!({"reference": "Group/g1"}),
            json!({"reference": "#p1"}),
            json!({"identifier": {"value": "123"}}),
            json!({"reference": "Patient/p1/extra"}),
        ] {
            assert_eq!(b(s.clone()), Belonging::Unreadable("subject"), "{s}");
        }
        let no_subject = json!({"resourceType": "Condition", "id": "c"});
        assert_eq!(
            ctx.belonging(&no_subject, &e),
            Belonging::Unreadable("subject")
        );
    }

    #[test]
    fn the_element_comes_from_the_schema() {
        let ctx = PatientInContext {
            patient_id: "p1",
            fhir_server: None,
        };
        let e = elements();
        let allergy =
            json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p9"}});
        assert_eq!(ctx.belonging(&allergy, &e), Belonging::OtherPatient);
        let medication = json!({"resourceType": "Medication", "id": "m"});
        assert_eq!(ctx.belonging(&medication, &e), Belonging::NotPatientData);
        let account = json!({"resourceType": "Account", "subject": [{"reference": "Patient/p9"}]});
        assert_eq!(ctx.belonging(&account, &e), Belonging::NotPatientData);
        // Without fhirServer an absolute reference cannot be compared.
        let abs = condition(json!({"reference": "https://x.org/Patient/p1"}));
        assert_eq!(ctx.belonging(&abs, &e), Belonging::Unreadable("subject"));
        let patient = json!({"resourceType": "Patient", "id": "p2"});
        assert_eq!(ctx.belonging(&patient, &e), Belonging::OtherPatient);
    }
}
