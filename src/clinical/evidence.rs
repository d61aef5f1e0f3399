//! The card's view of a fact: a known fact with where it was read ([`FactUse`], [`Origin`]),
//! or an unknown one with what it held back ([`UnknownFact`]). Built from the picture's
//! [`Fact`](super::Fact)s by `describe` and the rules, turned into clinical lines by
//! `crate::cards`; here, below both, so that neither imports the other for them.

use chrono::NaiveDate;

use super::picture::{Provenance, ReadFrom};

/// A known fact as the card shows it: "ECOG 1 (2 Oct 2026)"; its references stay in the card's
/// `decided-by` extension.
#[derive(Debug, Clone, PartialEq)]
pub struct FactUse {
    /// The catalogue's fact name (e.g. "ecog", "dfi_months"); the card shows its clinical
    /// label (`crate::display`).
    pub fact: &'static str,
    /// The value in plain words.
    pub value: String,
    /// Where it was read, as one line for the machine-readable extension
    /// ("Observation/ecog-1, coded, 2026-10-02").
    pub provenance: Option<String>,
    /// The same, structured: what the card prose may show (a date, "from a clinical note")
    /// and what it counts in its footer (the records).
    pub origin: Origin,
}

/// Where a fact was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    /// Relative references of the records read ("Observation/ecog-1").
    pub references: Vec<String>,
    /// Read from a code, from free text, derived, or a closed-world absence.
    pub read_from: Option<ReadFrom>,
    /// The clinical date of the deciding record.
    pub date: Option<NaiveDate>,
    /// A short qualification ("Karnofsky 70 converted").
    pub note: Option<String>,
}

impl Origin {
    /// Reads the one-line provenance the rules write ("Observation/x, coded, 2026-10-02",
    /// "from text", "MedicationAdministration/a, MedicationAdministration/b"): references,
    /// how it was read and the date; anything else is kept as the note.
    pub fn parse(line: &str) -> Self {
        let mut o = Origin::default();
        let mut notes: Vec<&str> = Vec::new();
        for part in line.split(", ").map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(r) = [
                ReadFrom::Code,
                ReadFrom::Text,
                ReadFrom::Derived,
                ReadFrom::Absence,
            ]
            .into_iter()
            .find(|r| r.label() == part)
            {
                o.read_from = Some(r);
            } else if let Ok(d) = NaiveDate::parse_from_str(part, "%Y-%m-%d") {
                o.date = Some(d);
            } else if is_reference(part) {
                o.references.push(part.to_owned());
            } else {
                notes.push(part);
            }
        }
        if !notes.is_empty() {
            o.note = Some(notes.join(", "));
        }
        o
    }
}

/// "Observation/ecog-1": a resource type, a slash and an id without spaces.
pub fn is_reference(s: &str) -> bool {
    match s.split_once('/') {
        Some((t, id)) => {
            t.len() > 1
                && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && t.chars().any(|c| c.is_ascii_lowercase())
                && t.chars().all(|c| c.is_ascii_alphabetic())
                && !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        }
        None => false,
    }
}

/// An unknown fact and what it held back ("ECOG not recorded: surgical candidacy not assessed").
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownFact {
    pub fact: &'static str,
    /// Why it is unknown (not recorded; only invalid resources; not derivable …).
    pub reason: String,
    /// What the missing fact would decide.
    pub holds_back: String,
}

/// The structured origin of a picture fact's provenance.
pub(crate) fn origin_of(p: &Provenance) -> Origin {
    Origin {
        references: p.resources.clone(),
        read_from: Some(p.read_from),
        date: p.date,
        note: p.note.clone(),
    }
}
