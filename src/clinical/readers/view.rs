//! How readers access a resource's elements: every read goes through [`Read`], so what a
//! reader takes from a resource is exactly what it asks for here.

use std::cell::Cell;

use chrono::NaiveDate;
use serde_json::Value;

use super::ReaderSpec;
use crate::clinical::fhir::{self, Concept};

thread_local! {
    /// The reader whose code is running. The picture is built synchronously on one thread,
    /// so a thread-local scope (set by [`Reading::start`]) is exact.
    static READER: Cell<Option<&'static ReaderSpec>> = const { Cell::new(None) };
}

/// While alive, reads are made by `spec`'s reader; restores the previous reader on drop.
pub(crate) struct Reading {
    previous: Option<&'static ReaderSpec>,
}

impl Reading {
    pub(crate) fn start(spec: &'static ReaderSpec) -> Self {
        Reading {
            previous: READER.replace(Some(spec)),
        }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READER.set(self.previous);
    }
}

/// The reader whose code is running, if any.
pub(crate) fn current_reader() -> Option<&'static ReaderSpec> {
    READER.get()
}

/// Read access to the top-level elements of one resource (or draft order).
pub(crate) trait Read<'a> {
    /// The element `key`, if present (and readable).
    fn get(&self, key: &str) -> Option<&'a Value>;

    fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    fn array(&self, key: &str) -> std::iter::Flatten<std::option::IntoIter<&'a Vec<Value>>> {
        self.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    /// The element as one concept (a CodeableConcept, or an array of them).
    fn concept(&self, key: &str) -> Concept<'a> {
        Concept::of(self.get(key))
    }

    /// All CodeableConcepts of an element that may be an array (`bodySite`).
    fn concept_all(&self, key: &str) -> Concept<'a> {
        Concept::of_all(self.get(key))
    }

    /// The first code of the CodeableConcept at `key` (e.g. `clinicalStatus`).
    fn first_code(&self, key: &str) -> Option<&'a str> {
        self.get(key)
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| fhir::str_at(c, "code"))
    }

    /// The references at `key` (a Reference or an array of them), normalised.
    fn references(&self, key: &str) -> Vec<&'a str> {
        fhir::references_in(self.get(key))
    }
}

impl<'a> Read<'a> for &'a Value {
    fn get(&self, key: &str) -> Option<&'a Value> {
        Value::get(self, key)
    }
}

/// A resource kept for extraction.
#[derive(Debug)]
pub(crate) struct Rec<'a> {
    v: &'a Value,
    pub(crate) reference: String,
    date: Option<NaiveDate>,
}

impl<'a> Rec<'a> {
    pub(crate) fn new(v: &'a Value, reference: String, date: Option<NaiveDate>) -> Self {
        Rec { v, reference, date }
    }

    /// The clinical date (`effective[x]`, `onset[x]` … see [`fhir::clinical_date`]).
    pub(crate) fn date(&self) -> Option<NaiveDate> {
        self.date
    }

    pub(crate) fn resource_type(&self) -> &'a str {
        fhir::resource_type(self.v)
    }
}

impl<'a> Read<'a> for Rec<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        // The declaration of each reader is what the taint logic goes by: a read it does not
        // declare is a defect of the reader (caught by the test suite in debug builds).
        #[cfg(debug_assertions)]
        if let Some(spec) = current_reader() {
            assert!(
                spec.declares(self.resource_type(), key),
                "the {} reader reads {}.{key} without declaring it",
                spec.family,
                self.resource_type()
            );
        }
        self.v.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinical::readers::TypeReads;
    use serde_json::json;

    static TEST_SPEC: ReaderSpec = ReaderSpec {
        family: "test",
        reads: &[TypeReads {
            resource_type: "Observation",
            classifying: &["code"],
            values: &["valueQuantity"],
        }],
    };

    #[test]
    fn declared_reads_succeed_and_the_scope_ends_with_its_guard() {
        let v = json!({"resourceType": "Observation", "code": {"text": "x"},
                       "valueQuantity": {"value": 1}});
        let rec = Rec::new(&v, "Observation/o".into(), None);
        {
            let _r = Reading::start(&TEST_SPEC);
            assert!(rec.get("code").is_some());
            assert!(rec.get("valueQuantity").is_some());
            assert_eq!(current_reader().map(|s| s.family), Some("test"));
        }
        assert!(current_reader().is_none());
        // Outside a reader (draft orders, set-up), nothing is checked.
        assert!(rec.get("status").is_none());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "the test reader reads Observation.valueString without declaring it")]
    fn an_undeclared_read_is_a_defect_of_the_reader() {
        let v = json!({"resourceType": "Observation", "valueString": "x"});
        let rec = Rec::new(&v, "Observation/o".into(), None);
        let _r = Reading::start(&TEST_SPEC);
        rec.get("valueString");
    }
}
