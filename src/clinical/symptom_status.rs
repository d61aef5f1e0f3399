//! Symptoms and the symptom assessment (docs/clinical-spec.md §4.1 `symptomatic`, "symptom
//! text"): what one record says ([`read_record`]), and what all of them say together
//! ([`combine`]).
//!
//! Presence stays closed world for the rules that act on a symptom (MET-10, ORD-17): an
//! affirmative record is needed. Absence is open world: "not symptomatic" is known only from
//! a symptom assessment that found none (an asymptomatic record, an RPS `symptom-assessment`
//! Observation with value `none`, or text that negates the symptoms), dated within
//! `symptom_assessment_max_age_days`, with no affirmative record after it. Ambiguous text is
//! never an absence.

use chrono::NaiveDate;

use super::concepts::{Concept, Vocab};
use super::picture::{Fact, Provenance, ReadFrom, Symptom, SymptomKind, Unknown};
use super::symptom_text::{Polarity, mentions};

/// What one record says about the tumour-related symptoms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SymptomReading {
    /// These symptoms are present (kind, bone symptom).
    Present(Vec<(SymptomKind, bool)>),
    /// Symptoms are present, of a kind the record does not name (RPS `present`).
    PresentUnnamed,
    /// An assessment that found none.
    NoneFound,
    /// The text mentions symptoms but neither clearly affirms nor negates them.
    Ambiguous,
}

/// A record's reading with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SymptomRecord {
    pub(crate) source: String,
    pub(crate) date: Option<NaiveDate>,
    pub(crate) read_from: ReadFrom,
    pub(crate) reading: SymptomReading,
}

/// The symptom value sets, most specific first (their text fallbacks are the terms).
const KINDS: &[(&str, SymptomKind, bool)] = &[
    (
        "symptom-cord-compression",
        SymptomKind::CordCompression,
        false,
    ),
    ("symptom-obstruction", SymptomKind::Obstruction, false),
    ("symptom-dyspnoea", SymptomKind::Dyspnoea, false),
    ("bone-symptom", SymptomKind::Pain, true),
    ("symptom-pain", SymptomKind::Pain, false),
];
/// The value set of an assessment that found no symptoms.
pub(crate) const ASYMPTOMATIC: &str = "symptom-asymptomatic";
/// The word "symptom(s)" without a kind: negated it is an assessment ("no symptoms",
/// "symptom-free"); affirmed it names no symptom the rules can act on, so it is ambiguous.
const GENERIC_TERM: &str = "symptom";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Term {
    Kind(SymptomKind, bool),
    Generic,
    Asymptomatic,
}

/// The terms symptom text is read for: the symptom value sets' text fallbacks, the
/// asymptomatic ones and the generic word; built once per request.
pub(crate) struct SymptomTerms<'t>(Vec<(Term, &'t str)>);

impl<'t> SymptomTerms<'t> {
    pub(crate) fn new(vocab: &Vocab<'t>) -> Self {
        let mut terms: Vec<(Term, &'t str)> = vec![(Term::Generic, GENERIC_TERM)];
        for (id, kind, bone) in KINDS {
            if let Some(vs) = vocab.terminology.get(id) {
                terms.extend(
                    vs.text_fallbacks()
                        .iter()
                        .map(|t| (Term::Kind(*kind, *bone), t.as_str())),
                );
            }
        }
        if let Some(vs) = vocab.terminology.get(ASYMPTOMATIC) {
            terms.extend(
                vs.text_fallbacks()
                    .iter()
                    .map(|t| (Term::Asymptomatic, t.as_str())),
            );
        }
        SymptomTerms(terms)
    }
}

/// What a text says: `None` when it does not mention symptoms.
fn read_texts(terms: &SymptomTerms, texts: &[&str]) -> Option<SymptomReading> {
    let terms = &terms.0;
    let mut present: Vec<(SymptomKind, bool)> = Vec::new();
    let mut ambiguous = false;
    let mut none_found = false;
    for text in texts {
        for m in mentions(text, terms) {
            match (m.what, m.polarity) {
                (Term::Kind(k, bone), Polarity::Affirmed) => {
                    if let Some(p) = present.iter_mut().find(|(x, _)| *x == k) {
                        p.1 |= bone;
                    } else {
                        present.push((k, bone));
                    }
                }
                (Term::Asymptomatic, Polarity::Affirmed)
                | (Term::Kind(..) | Term::Generic, Polarity::Negated) => none_found = true,
                // "symptoms" of no named kind, "not asymptomatic", anything unclear.
                (Term::Generic, Polarity::Affirmed)
                | (Term::Asymptomatic, Polarity::Negated)
                | (_, Polarity::Ambiguous) => ambiguous = true,
            }
        }
    }
    // "bone pain" also mentions "pain": one symptom.
    if present.iter().any(|&(k, b)| k == SymptomKind::Pain && b) {
        present.retain(|&(k, b)| k != SymptomKind::Pain || b);
    }
    if !present.is_empty() {
        Some(SymptomReading::Present(present))
    } else if ambiguous {
        Some(SymptomReading::Ambiguous)
    } else if none_found {
        Some(SymptomReading::NoneFound)
    } else {
        None
    }
}

/// What a record's coded concept and texts say. `negated` is an Observation's
/// `valueBoolean` false (the coded symptom is absent); `bone_site` a bone `bodySite` (pain
/// there is bone pain). Codes decide before text; a coded record is not re-read from its
/// display.
pub(crate) fn read_record(
    vocab: &Vocab,
    terms: &SymptomTerms,
    concept: &Concept,
    texts: &[&str],
    negated: bool,
    bone_site: bool,
) -> Option<(SymptomReading, ReadFrom)> {
    if vocab.by_code(ASYMPTOMATIC, concept) {
        let r = if negated {
            SymptomReading::Ambiguous
        } else {
            SymptomReading::NoneFound
        };
        return Some((r, ReadFrom::Code));
    }
    let mut coded: Vec<(SymptomKind, bool)> = Vec::new();
    for (id, kind, bone) in KINDS {
        if vocab.by_code(id, concept) && !coded.iter().any(|(k, _)| k == kind) {
            coded.push((*kind, *bone || (*kind == SymptomKind::Pain && bone_site)));
        }
    }
    if !coded.is_empty() {
        let r = if negated {
            SymptomReading::NoneFound
        } else {
            SymptomReading::Present(coded)
        };
        return Some((r, ReadFrom::Code));
    }
    let reading = match read_texts(terms, texts)? {
        // "Abdominal pain: false" records an absence of what the text names.
        SymptomReading::Present(_) if negated => SymptomReading::NoneFound,
        SymptomReading::NoneFound if negated => SymptomReading::Ambiguous,
        SymptomReading::Present(kinds) => SymptomReading::Present(
            kinds
                .into_iter()
                .map(|(k, b)| (k, b || (k == SymptomKind::Pain && bone_site)))
                .collect(),
        ),
        r => r,
    };
    Some((reading, ReadFrom::Text))
}

/// The presence list and the `symptomatic` fact from every record's reading.
/// `max_age_days` is `symptom_assessment_max_age_days`; `missing` says records that could
/// carry symptoms were left out (an absence then cannot be known).
pub(crate) fn combine(
    records: &[SymptomRecord],
    today: NaiveDate,
    max_age_days: u32,
    missing: Option<Unknown>,
) -> (Vec<Symptom>, Fact<bool>) {
    // The latest assessment that found none (undated records rank oldest, as elsewhere).
    let assessment = records
        .iter()
        .filter(|r| r.reading == SymptomReading::NoneFound && r.date.is_some())
        .max_by_key(|r| r.date);
    let after = |r: &SymptomRecord| match assessment {
        None => true,
        Some(a) => r.date >= a.date,
    };
    let current: Vec<&SymptomRecord> = records.iter().filter(|r| after(r)).collect();
    let mut present: Vec<Symptom> = Vec::new();
    for r in &current {
        if let SymptomReading::Present(kinds) = &r.reading {
            for &(kind, bone) in kinds {
                present.push(Symptom {
                    kind,
                    bone,
                    source: r.source.clone(),
                    date: r.date,
                    read_from: r.read_from,
                });
            }
        }
    }
    let affirmative: Vec<&&SymptomRecord> = current
        .iter()
        .filter(|r| {
            matches!(
                r.reading,
                SymptomReading::Present(_) | SymptomReading::PresentUnnamed
            )
        })
        .collect();
    let symptomatic = if !affirmative.is_empty() {
        match assessment {
            Some(a) if affirmative.iter().all(|r| r.date == a.date) => {
                Fact::Unknown(Unknown::Conflicting(format!(
                    "a symptom assessment found none and another record of the same day ({}) records a symptom",
                    a.date.map_or_else(String::new, |d| d.to_string())
                )))
            }
            _ => Fact::known(
                true,
                Provenance {
                    resources: affirmative.iter().map(|r| r.source.clone()).collect(),
                    read_from: if affirmative.iter().all(|r| r.read_from == ReadFrom::Text) {
                        ReadFrom::Text
                    } else {
                        ReadFrom::Code
                    },
                    date: affirmative.iter().filter_map(|r| r.date).max(),
                    note: None,
                },
            ),
        }
    } else if let Some(r) = current.iter().find(|r| {
        r.reading == SymptomReading::Ambiguous && assessment.is_none_or(|a| r.date > a.date)
    }) {
        Fact::Unknown(Unknown::Unreadable(format!(
            "a symptom note{} neither clearly states nor rules out a symptom",
            r.date.map_or_else(String::new, |d| format!(" of {d}"))
        )))
    } else if let Some(u) = missing {
        Fact::Unknown(u)
    } else {
        match assessment {
            None => Fact::Unknown(Unknown::NotRecorded),
            Some(a) => {
                let d = a.date.expect("dated");
                if (today - d).num_days() > i64::from(max_age_days) {
                    Fact::Unknown(Unknown::Outdated {
                        last: Some(d),
                        max_age_days,
                    })
                } else {
                    Fact::known(
                        false,
                        Provenance {
                            resources: vec![a.source.clone()],
                            read_from: a.read_from,
                            date: a.date,
                            note: Some("symptom assessment found none".to_owned()),
                        },
                    )
                }
            }
        }
    };
    (present, symptomatic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<NaiveDate> {
        Some(s.parse().unwrap())
    }

    fn rec(id: &str, date: &str, reading: SymptomReading) -> SymptomRecord {
        SymptomRecord {
            source: id.to_owned(),
            date: d(date),
            read_from: ReadFrom::Text,
            reading,
        }
    }

    fn today() -> NaiveDate {
        "2026-11-01".parse().unwrap()
    }

    #[test]
    fn absence_needs_a_recent_assessment() {
        let (list, s) = combine(&[], today(), 90, None);
        assert!(list.is_empty());
        assert_eq!(s.unknown_reason(), Some(&Unknown::NotRecorded));
        let none = rec("Observation/a", "2026-10-01", SymptomReading::NoneFound);
        let (_, s) = combine(std::slice::from_ref(&none), today(), 90, None);
        assert_eq!(s.value(), Some(&false));
        let old = rec("Observation/a", "2026-01-01", SymptomReading::NoneFound);
        let (_, s) = combine(&[old], today(), 90, None);
        assert!(matches!(s.unknown_reason(), Some(Unknown::Outdated { .. })));
        // Records left out could hold a symptom.
        let missing = Unknown::SetAside {
            resource_types: vec!["Condition".to_owned()],
        };
        let (_, s) = combine(&[none], today(), 90, Some(missing.clone()));
        assert_eq!(s.unknown_reason(), Some(&missing));
    }

    #[test]
    fn an_affirmative_record_after_the_assessment_wins_and_one_before_it_is_superseded() {
        let pain = SymptomReading::Present(vec![(SymptomKind::Pain, false)]);
        let records = [
            rec("Condition/pain", "2026-06-01", pain.clone()),
            rec("Observation/none", "2026-10-01", SymptomReading::NoneFound),
        ];
        let (list, s) = combine(&records, today(), 90, None);
        assert!(list.is_empty());
        assert_eq!(s.value(), Some(&false));
        let records = [
            rec("Observation/none", "2026-09-01", SymptomReading::NoneFound),
            rec("Condition/pain", "2026-10-01", pain),
        ];
        let (list, s) = combine(&records, today(), 90, None);
        assert_eq!(list.len(), 1);
        assert_eq!(s.value(), Some(&true));
    }

    #[test]
    fn ambiguous_text_is_unknown_never_absent() {
        let records = [
            rec("Observation/none", "2026-09-01", SymptomReading::NoneFound),
            rec(
                "Observation/unclear",
                "2026-10-01",
                SymptomReading::Ambiguous,
            ),
        ];
        let (_, s) = combine(&records, today(), 90, None);
        assert!(matches!(s.unknown_reason(), Some(Unknown::Unreadable(_))));
    }
}
