//! How readers access a resource's elements: every read goes through [`Read`], so what a
//! reader takes from a resource is exactly what it asks for here.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::Value;

use super::ReaderSpec;
use crate::clinical::concepts::Concept;
use crate::clinical::json;

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
            .find_map(|c| json::str_at(c, "code"))
    }

    /// The references at `key` (a Reference or an array of them), normalised.
    fn references(&self, key: &str) -> Vec<&'a str> {
        json::references_in(self.get(key))
    }
}

impl<'a> Read<'a> for &'a Value {
    fn get(&self, key: &str) -> Option<&'a Value> {
        Value::get(self, key)
    }
}

/// Elements whose defect makes the whole resource unusable (§4.1): the modifiers.
pub(crate) const MODIFIER_ELEMENTS: &[&str] = &[
    "status",
    "clinicalStatus",
    "verificationStatus",
    "intent",
    "doNotPerform",
    "modifierExtension",
    "subject",
    "patient",
];

/// The elements [`json::clinical_date`] takes the clinical date from, which every reader
/// reads through [`Record::date`].
pub(crate) const DATE_ELEMENTS: &[&str] = &[
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "onsetDateTime",
    "onsetPeriod",
    "performedDateTime",
    "performedPeriod",
    "occurrenceDateTime",
    "occurrencePeriod",
    "started",
    "recordedDate",
    "issued",
    "authoredOn",
    "dateAsserted",
];

/// The top-level element a JSON pointer lies in (`/code/coding/0/system` → `code`; the
/// `_x` sibling of a primitive belongs to `x`); `None` for the root.
pub(crate) fn top_element(pointer: &str) -> Option<&str> {
    let first = pointer.strip_prefix('/')?.split('/').next()?;
    let first = first.strip_prefix('_').unwrap_or(first);
    (!first.is_empty() && first != "resourceType").then_some(first)
}

/// A pointer with a primitive's `_x` sibling read as `x` (`/_status` → `/status`).
fn normalised(pointer: &str) -> String {
    pointer
        .split('/')
        .map(|s| s.strip_prefix('_').unwrap_or(s))
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether pointer `p` lies strictly under `ancestor`.
fn is_under(p: &str, ancestor: &str) -> bool {
    p.len() > ancestor.len() && p.starts_with(ancestor) && p.as_bytes()[ancestor.len()] == b'/'
}

/// What a reader asked of an invalid resource: (reader family, element, blocked).
type ReadEntry = (&'static str, String, bool);

/// The defects of an invalid resource, and every non-classifying read a reader made of it.
#[derive(Debug)]
pub(crate) struct Defects {
    /// The defective paths (JSON pointers).
    paths: Vec<String>,
    /// Top-level elements at or under which a defective path lies.
    elements: BTreeSet<String>,
    /// A defect at the root (invariants, `resourceType`): nothing can be read.
    root: bool,
    /// A defect at the root or in a modifier: only classifying elements can be read.
    unusable: bool,
    reads: RefCell<BTreeSet<ReadEntry>>,
}

impl Defects {
    /// From the defective paths (`SchemaViolation::paths`).
    pub(crate) fn new(paths: &[String]) -> Self {
        let mut elements = BTreeSet::new();
        let mut root = false;
        let mut unusable = false;
        for p in paths {
            match top_element(p) {
                Some(e) => {
                    unusable |= MODIFIER_ELEMENTS.contains(&e);
                    elements.insert(e.to_owned());
                }
                None => root = true,
            }
        }
        Defects {
            paths: paths.to_vec(),
            elements,
            root,
            unusable: unusable || root,
            reads: RefCell::new(BTreeSet::new()),
        }
    }

    /// Whether reading the JSON pointer `path` meets a defect: one at, under or above it
    /// (`/extension/-` stands for "the array itself", i.e. only a defect at or above it).
    pub(crate) fn blocks_path(&self, path: &str) -> bool {
        if self.root {
            return true;
        }
        let whole = path.strip_suffix("/-");
        self.paths.iter().any(|p| {
            let p = normalised(p);
            match whole {
                Some(array) => p == array || is_under(array, &p),
                None => p == path || is_under(&p, path) || is_under(path, &p),
            }
        })
    }

    /// Whether reading `element` meets a defect (at, under or above it).
    pub(crate) fn blocks(&self, element: &str) -> bool {
        self.root || self.elements.contains(element)
    }

    pub(crate) fn unusable(&self) -> bool {
        self.unusable
    }

    /// Whether the clinical date cannot be read.
    pub(crate) fn blocks_date(&self) -> bool {
        self.unusable || DATE_ELEMENTS.iter().any(|e| self.blocks(e))
    }

    /// Every defective element (top level).
    pub(crate) fn elements(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().map(String::as_str)
    }

    /// Records that `family` needed `element` and met its defect (a reader that weighs a
    /// defect itself instead of reading the element).
    pub(crate) fn note_blocked(&self, family: &'static str, element: &str) {
        self.record(family, element, true);
    }

    fn record(&self, family: &'static str, element: &str, blocked: bool) {
        self.reads
            .borrow_mut()
            .insert((family, element.to_owned(), blocked));
    }

    /// Whether `family` read a value of this resource: `Some(true)` when a read was blocked.
    pub(crate) fn reads_by(&self, family: &str) -> Option<bool> {
        let reads = self.reads.borrow();
        let mine: Vec<bool> = reads
            .iter()
            .filter(|(f, ..)| *f == family)
            .map(|(_, _, blocked)| *blocked)
            .collect();
        (!mine.is_empty()).then(|| mine.contains(&true))
    }

    /// Whether some reader took a value from this resource (a read that succeeded).
    pub(crate) fn read_in_part(&self) -> bool {
        self.reads.borrow().iter().any(|(_, _, blocked)| !blocked)
    }

    /// Whether some reader met a defect where it read this resource.
    pub(crate) fn met(&self) -> bool {
        self.reads.borrow().iter().any(|(_, _, blocked)| *blocked)
    }
}

/// A resource kept for extraction.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// The resource's JSON.
    resource: &'a Value,
    pub(crate) reference: String,
    date: Option<NaiveDate>,
    /// Set for a resource that failed validation: every read is checked against them.
    defects: Option<Box<Defects>>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(v: &'a Value, reference: String, date: Option<NaiveDate>) -> Self {
        Record {
            resource: v,
            reference,
            date,
            defects: None,
        }
    }

    /// An invalid resource, read element by element (its date only when readable).
    pub(crate) fn with_defects(v: &'a Value, reference: String, defects: Defects) -> Self {
        let date = if defects.blocks_date() {
            None
        } else {
            json::clinical_date(v)
        };
        Record {
            resource: v,
            reference,
            date,
            defects: Some(Box::new(defects)),
        }
    }

    /// The clinical date (`effective[x]`, `onset[x]` … see [`json::clinical_date`]).
    pub(crate) fn date(&self) -> Option<NaiveDate> {
        if let (Some(d), Some(spec)) = (&self.defects, current_reader()) {
            d.record(spec.family, "(date)", d.blocks_date());
        }
        self.date
    }

    pub(crate) fn resource_type(&self) -> &'a str {
        json::resource_type(self.resource)
    }

    pub(crate) fn defects(&self) -> Option<&Defects> {
        self.defects.as_deref()
    }

    /// The element `key` even where it has defects, for a reader that reads it item by item
    /// around them ([`Defects::blocks_path`]) instead of through [`Read::get`].
    pub(crate) fn raw_around_defects(&self, key: &str) -> Option<&'a Value> {
        self.resource.get(key)
    }
}

impl<'a> Read<'a> for Record<'a> {
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
        if let Some(d) = &self.defects {
            let reader = current_reader();
            // Outside a reader (sorting, exclusion, draft orders) every read classifies.
            let classifying = reader.is_none_or(|spec| {
                spec.reads_of(self.resource_type())
                    .is_some_and(|r| r.classifying.contains(&key))
            });
            let blocked = d.blocks(key) || (d.unusable && !classifying);
            if let (Some(spec), false) = (reader, classifying) {
                d.record(spec.family, key, blocked);
            }
            if blocked {
                return None;
            }
        }
        self.resource.get(key)
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
        let rec = Record::new(&v, "Observation/o".into(), None);
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
        let rec = Record::new(&v, "Observation/o".into(), None);
        let _r = Reading::start(&TEST_SPEC);
        rec.get("valueString");
    }
}

#[cfg(test)]
mod defect_tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_read_at_under_or_above_a_defective_path_is_blocked() {
        let d = Defects::new(&paths(&["/valueQuantity/value", "/_effectiveDateTime"]));
        assert!(d.blocks("valueQuantity"), "above the defect");
        assert!(
            d.blocks("effectiveDateTime"),
            "a primitive's _x sibling is the element"
        );
        assert!(!d.blocks("code") && !d.blocks("valueString"));
        assert!(d.blocks_date() && !d.unusable());
    }

    #[test]
    fn a_root_or_modifier_defect_makes_the_resource_unusable() {
        let root = Defects::new(&paths(&[""]));
        assert!(
            root.unusable() && root.blocks("code"),
            "the root is above every element"
        );
        let rt = Defects::new(&paths(&["/resourceType"]));
        assert!(rt.unusable() && rt.blocks("code"));
        for m in MODIFIER_ELEMENTS {
            let d = Defects::new(&paths(&[&format!("/{m}")]));
            assert!(d.unusable(), "{m}");
            assert!(!d.blocks("code"), "{m}: what it is about stays readable");
        }
    }

    #[test]
    fn an_unusable_record_yields_only_its_classifying_elements_to_a_reader() {
        let v = serde_json::json!({"resourceType": "Observation", "status": "finalised",
            "code": {"text": "x"}, "valueQuantity": {"value": 1}});
        let rec = Record::with_defects(
            &v,
            "Observation/o".into(),
            Defects::new(&paths(&["/status"])),
        );
        static SPEC: ReaderSpec = ReaderSpec {
            family: "unusable test",
            reads: &[crate::clinical::readers::TypeReads {
                resource_type: "Observation",
                classifying: &["code"],
                values: &["valueQuantity"],
            }],
        };
        let _r = Reading::start(&SPEC);
        assert!(rec.get("code").is_some());
        assert!(rec.get("valueQuantity").is_none());
        assert!(rec.date().is_none());
        let d = rec.defects().unwrap();
        assert_eq!(d.reads_by("unusable test"), Some(true));
        assert!(d.met() && !d.read_in_part());
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn a_path_is_blocked_by_a_defect_at_under_or_above_it_only() {
        let d = Defects::new(&["/extension/1/valueString".to_owned()]);
        assert!(d.blocks_path("/extension/1"), "under");
        assert!(d.blocks_path("/extension/1/valueString"), "at");
        assert!(d.blocks_path("/extension/1/valueString/x"), "above");
        assert!(!d.blocks_path("/extension/0"), "a sibling item");
        assert!(!d.blocks_path("/extension/10"), "not a prefix match");
        assert!(!d.blocks_path("/extension/-"), "the array itself is intact");
        assert!(Defects::new(&["/extension".to_owned()]).blocks_path("/extension/-"));
        assert!(Defects::new(&["/meta/_profile/0".to_owned()]).blocks_path("/meta/profile"));
    }
}
