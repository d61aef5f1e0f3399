//! CodeableConcepts prepared for matching, and the value-set matcher the extraction uses:
//! codes first, then the value sets' text fallbacks (whole-word where a substring would be
//! unsafe).

use std::cell::RefCell;

use serde_json::Value;

use crate::knowledge::{MatchedBy, Terminology, ValueSet};

use super::json::str_at;
use super::picture::ReadFrom;

/// A CodeableConcept (or several, e.g. all `bodySite`s) prepared once for matching against
/// many value sets: the codings borrowed, the texts lower-cased once.
#[derive(Debug, Default)]
pub(crate) struct Concept<'a> {
    codings: Vec<(&'a str, &'a str)>,
    texts: Vec<String>,
}

impl<'a> Concept<'a> {
    pub(crate) fn of(v: Option<&'a Value>) -> Self {
        let mut c = Concept::default();
        if let Some(v) = v {
            c.add(v);
        }
        c
    }

    /// All CodeableConcepts of an element that may be an array (`bodySite`, `orderDetail`).
    pub(crate) fn of_all(v: Option<&'a Value>) -> Self {
        let mut c = Concept::default();
        match v {
            Some(Value::Array(a)) => a.iter().for_each(|x| c.add(x)),
            Some(x) => c.add(x),
            None => {}
        }
        c
    }

    pub(crate) fn add(&mut self, v: &'a Value) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| self.add(x)),
            Value::String(s) => self.texts.push(s.to_lowercase()),
            Value::Object(_) => {
                let codings: Vec<&Value> = match v.get("coding") {
                    Some(Value::Array(c)) => c.iter().collect(),
                    _ if v.get("code").is_some() => vec![v],
                    _ => Vec::new(),
                };
                for coding in codings {
                    if let (Some(s), Some(c)) = (str_at(coding, "system"), str_at(coding, "code")) {
                        self.codings.push((s, c));
                    }
                    if let Some(d) = str_at(coding, "display") {
                        self.texts.push(d.to_lowercase());
                    }
                }
                if let Some(t) = str_at(v, "text") {
                    self.texts.push(t.to_lowercase());
                }
            }
            _ => {}
        }
    }

    /// Codings and texts as one key, for classifying a repeated concept once per request.
    pub(crate) fn signature(&self) -> String {
        let mut key = String::new();
        for (s, c) in &self.codings {
            key.push_str(s);
            key.push('|');
            key.push_str(c);
            key.push('\u{1f}');
        }
        for t in &self.texts {
            key.push_str(t);
            key.push('\u{1e}');
        }
        key
    }

    pub(crate) fn add_text(&mut self, s: &str) {
        self.texts.push(s.to_lowercase());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.codings.is_empty() && self.texts.is_empty()
    }

    /// The lower-cased texts and displays.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> + '_ {
        self.texts.iter().map(String::as_str)
    }

    pub(crate) fn has_code(&self, system: &str, code: &str) -> bool {
        self.codings.iter().any(|&(s, c)| s == system && c == code)
    }

    pub(crate) fn codings(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.codings.iter().copied()
    }

    /// Case-insensitive substring match on any text (`needle` lower-case).
    pub(crate) fn text_contains(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.contains(needle))
    }

    /// Whole-word match on any text (`word` lower-case).
    pub(crate) fn text_has_word(&self, word: &str) -> bool {
        self.texts.iter().any(|t| has_word(t, word))
    }

    /// Word-start match on any text (`word` lower-case).
    pub(crate) fn text_has_word_start(&self, word: &str) -> bool {
        self.texts.iter().any(|t| has_word_start(t, word))
    }
}

/// `word` occurs in `text` bounded by non-alphanumeric characters (both lower-case).
pub(crate) fn has_word(text: &str, word: &str) -> bool {
    find_bounded(text, word, true)
}

/// `word` occurs in `text` at the start of a word (it may go on: "pain" in "painful").
pub(crate) fn has_word_start(text: &str, word: &str) -> bool {
    find_bounded(text, word, false)
}

fn find_bounded(text: &str, word: &str, end_bounded: bool) -> bool {
    if word.is_empty() {
        return false;
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let start = from + i;
        let end = start + word.len();
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after_ok = !end_bounded || end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// Abbreviations the value sets deliberately leave out because a substring match would be
/// unsafe; matched here as whole words only (the value-set table in
/// `knowledge/tools/build_valuesets.py` notes each one it leaves to the extractor).
fn whole_word_extras(value_set: &str) -> &'static [&'static str] {
    match value_set {
        "histology-ups" => &["ups"],
        "histology-mpnst" => &["mpnst"],
        "imaging-fdg-pet" => &["pet", "pet-ct", "pet/ct"],
        "biopsy-fna" => &["fna"],
        "residual-r0" => &["r0"],
        "residual-r1" => &["r1"],
        "residual-r2" => &["r2"],
        "grade-low" => &["g1"],
        "grade-intermediate" => &["g2"],
        "grade-high" => &["g3"],
        "iort" => &["iort"],
        _ => &[],
    }
}

/// Text fallbacks this short must start a word ("core" must not match "score"); those of
/// three characters or fewer, or ending in a digit, must also end one ("pet" not
/// "petechiae", "r1" not "r10"), while "pain" may go on to "painful". Longer fallbacks are
/// case-insensitive substrings, as the value sets define.
const WHOLE_WORD_MAX_LEN: usize = 4;

fn short_fallback_matches(c: &Concept, fb: &str) -> bool {
    if fb.len() <= 3 || fb.ends_with(|ch: char| ch.is_ascii_digit()) {
        c.text_has_word(fb)
    } else {
        c.text_has_word_start(fb)
    }
}

/// Slots of the per-request value-set cache (more than the value sets the code names).
const CACHE_SLOTS: usize = 256;

/// (id address, id length, the value set).
type CacheSlot<'t> = (usize, usize, Option<&'t ValueSet>);

/// Value-set matching for the extraction: codes first, then text fallbacks.
pub(crate) struct Vocab<'t> {
    pub(crate) terminology: &'t Terminology,
    /// Value sets already looked up in this request, open-addressed by the id's address
    /// (ids are `'static` literals): a lookup by id would hash the id's bytes on every one
    /// of several hundred probes per request.
    resolved: RefCell<Vec<Option<CacheSlot<'t>>>>,
}

impl<'t> Vocab<'t> {
    pub(crate) fn new(terminology: &'t Terminology) -> Self {
        Self {
            terminology,
            resolved: RefCell::new(vec![None; CACHE_SLOTS]),
        }
    }

    fn set(&self, id: &'static str) -> Option<&'t ValueSet> {
        let key = (id.as_ptr() as usize, id.len());
        let mut slots = self.resolved.borrow_mut();
        let mut i = (key.0 >> 3).wrapping_add(key.1) % CACHE_SLOTS;
        for _ in 0..CACHE_SLOTS {
            match slots[i] {
                // Ids are `'static`: the same address and length is the same text.
                Some((p, l, vs)) if (p, l) == key => return vs,
                Some(_) => i = (i + 1) % CACHE_SLOTS,
                None => {
                    let vs = self.terminology.get(id);
                    slots[i] = Some((key.0, key.1, vs));
                    return vs;
                }
            }
        }
        // Table full (more distinct ids than slots): look up directly.
        self.terminology.get(id)
    }

    pub(crate) fn by_code(&self, id: &'static str, c: &Concept) -> bool {
        if c.codings.is_empty() {
            return false;
        }
        self.set(id)
            .is_some_and(|vs| c.codings.iter().any(|&(s, code)| vs.contains(s, code)))
    }

    pub(crate) fn by_text(&self, id: &'static str, c: &Concept) -> bool {
        if c.texts.is_empty() {
            return false;
        }
        let extras = whole_word_extras(id);
        if extras.iter().any(|w| c.text_has_word(w)) {
            return true;
        }
        self.set(id).is_some_and(|vs| {
            vs.text_fallbacks().iter().any(|fb| {
                if fb.len() <= WHOLE_WORD_MAX_LEN {
                    short_fallback_matches(c, fb)
                } else {
                    c.text_contains(fb)
                }
            })
        })
    }

    /// How `c` matches value set `id`, if it does.
    pub(crate) fn matches(&self, id: &'static str, c: &Concept) -> Option<MatchedBy> {
        if self.by_code(id, c) {
            Some(MatchedBy::Code)
        } else if self.by_text(id, c) {
            Some(MatchedBy::Text)
        } else {
            None
        }
    }

    /// The first of `ids` that `c` matches, codes over all sets before any text (so a coded
    /// concept is never re-read from its display); texts in the order given, so list the more
    /// specific sets first.
    pub(crate) fn first<T: Copy>(
        &self,
        ids: &[(&'static str, T)],
        c: &Concept,
    ) -> Option<(T, ReadFrom)> {
        if c.is_empty() {
            return None;
        }
        ids.iter()
            .find(|(id, _)| self.by_code(id, c))
            .map(|(_, t)| (*t, ReadFrom::Code))
            .or_else(|| {
                ids.iter()
                    .find(|(id, _)| self.by_text(id, c))
                    .map(|(_, t)| (*t, ReadFrom::Text))
            })
    }
}

pub(crate) fn read_from(m: MatchedBy) -> ReadFrom {
    match m {
        MatchedBy::Code => ReadFrom::Code,
        MatchedBy::Text => ReadFrom::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_respect_boundaries() {
        assert!(has_word("r1 resection", "r1"));
        assert!(has_word("margin (r1)", "r1"));
        assert!(!has_word("r10", "r1"));
        assert!(!has_word("groups", "ups"));
        assert!(has_word("ups, grade 3", "ups"));
        assert!(has_word("pet-ct", "pet"));
        assert!(!has_word("petechiae", "pet"));
        assert!(!has_word("score", "core"));
        assert!(has_word_start("painful mass", "pain"));
        assert!(has_word_start("4 cores", "core"));
        assert!(!has_word_start("score", "core"));
    }
}
