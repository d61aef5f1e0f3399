//! Negation-aware, whole-word reading of symptom text (docs/clinical-spec.md §4.1 "symptom text").
//!
//! A term (a value set's text fallback, e.g. "pain" or "shortness of breath") is found as whole
//! words; its last word may carry a plural or adjective ending ("pains", "painful"), and the
//! privative ending "-less" ("painless") negates it. Each occurrence is then judged within its
//! clause (clauses end at `.` `;` `!` a line break, or "but" / "however" / "although" /
//! "though" / "except"):
//!
//! - **negated** by exactly one cue before it in the same comma-separated part of the clause
//!   ("no", "not", "-n't", "denies", "denied", "deny", "without", "free of", "negative for",
//!   "absence of", "no longer", "resolved"), or right after it (optionally after `-` or `:`:
//!   "free", "absent", "resolved", "none", "denied", "negative"; "pain-free", "pain: none");
//! - **ambiguous** when the clause asks (`?`), when an uncertainty cue precedes it ("possible",
//!   "suspected", "query", "r/o", "history of", "may" …), when two negations meet ("not
//!   pain-free"), when a negation follows it further on ("pain is absent"), or when a negation
//!   stands only in an earlier comma-separated part of the clause ("no nausea, abdominal
//!   pain": the scope of "no" is unclear);
//! - **affirmed** otherwise.
//!
//! Ambiguous text must never be read as an absence (the caller makes it unknown).

/// How a text states a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polarity {
    Affirmed,
    Negated,
    Ambiguous,
}

/// One occurrence of a term in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mention<T> {
    pub(crate) what: T,
    pub(crate) polarity: Polarity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Comma,
    Hyphen,
    Colon,
    Slash,
    Query,
    Boundary,
}

/// Endings a term's last word may carry and still name it ("pains", "painful").
const AFFIRMATIVE_ENDINGS: &[&str] = &["s", "es", "ful", "fully"];
/// The privative ending: "painless" negates pain.
const PRIVATIVE_ENDING: &str = "less";
/// Words that end a clause.
const BOUNDARY_WORDS: &[&str] = &["but", "however", "although", "though", "except"];
/// One-word negation cues before a term.
const NEGATION_BEFORE: &[&str] = &[
    "no", "not", "denies", "denied", "deny", "without", "resolved",
];
/// Two-word negation cues before a term.
const NEGATION_BEFORE_PAIRS: &[(&str, &str)] =
    &[("free", "of"), ("negative", "for"), ("absence", "of")];
/// Negation cues right after a term.
const NEGATION_AFTER: &[&str] = &["free", "absent", "resolved", "none", "denied", "negative"];
/// Uncertainty cues before a term.
const UNCERTAIN_BEFORE: &[&str] = &[
    "possible",
    "possibly",
    "probable",
    "probably",
    "suspected",
    "suspect",
    "suspicion",
    "query",
    "questionable",
    "likely",
    "unlikely",
    "may",
    "might",
    "could",
    "if",
    "unclear",
    "uncertain",
    "history",
    "previous",
    "prior",
    "exclude",
];
/// Uncertainty abbreviations written with a slash: "r/o" (rule out), "h/o" (history of).
const UNCERTAIN_SLASHED: &[(&str, &str)] = &[("r", "o"), ("h", "o")];

fn tokenize(lower: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '\u{2019}';
    for (i, c) in lower.char_indices() {
        if is_word(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            push_word(&mut out, &lower[s..i]);
        }
        match c {
            ',' => out.push(Token::Comma),
            '-' | '\u{2010}' | '\u{2011}' => out.push(Token::Hyphen),
            ':' => out.push(Token::Colon),
            '/' => out.push(Token::Slash),
            '?' => out.push(Token::Query),
            '.' | ';' | '!' | '\n' | '\r' => out.push(Token::Boundary),
            _ => {}
        }
    }
    if let Some(s) = start {
        push_word(&mut out, &lower[s..]);
    }
    out
}

fn push_word<'a>(out: &mut Vec<Token<'a>>, w: &'a str) {
    if BOUNDARY_WORDS.contains(&w) {
        out.push(Token::Boundary);
    } else {
        out.push(Token::Word(w));
    }
}

fn word<'a>(t: Option<&Token<'a>>) -> Option<&'a str> {
    match t {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

/// A negation word (before-cue, after-cue, or a "-n't" contraction).
fn is_negation_word(w: &str) -> bool {
    NEGATION_BEFORE.contains(&w)
        || NEGATION_AFTER.contains(&w)
        || w.ends_with("n't")
        || w.ends_with("n\u{2019}t")
}

/// Negation cues in `toks` (one per cue; "no longer" counts once).
fn negations_in(toks: &[Token]) -> usize {
    let mut n = 0;
    for (i, t) in toks.iter().enumerate() {
        let Token::Word(w) = t else { continue };
        if NEGATION_BEFORE.contains(w) || w.ends_with("n't") || w.ends_with("n\u{2019}t") {
            n += 1;
        } else if let Some(next) = word(toks.get(i + 1))
            && NEGATION_BEFORE_PAIRS.contains(&(w, next))
        {
            n += 1;
        }
    }
    n
}

fn uncertain_in(toks: &[Token]) -> bool {
    toks.iter().enumerate().any(|(i, t)| {
        let Token::Word(w) = t else { return false };
        UNCERTAIN_BEFORE.contains(w)
            || (toks.get(i + 1) == Some(&Token::Slash)
                && word(toks.get(i + 2)).is_some_and(|o| UNCERTAIN_SLASHED.contains(&(w, o))))
    })
}

/// How the last word of a term matches `w`: `Some(false)` as the word or an affirmative
/// form, `Some(true)` in its privative form, `None` not at all.
fn last_word_match(w: &str, term: &str) -> Option<bool> {
    let rest = w.strip_prefix(term)?;
    if rest.is_empty() || AFFIRMATIVE_ENDINGS.contains(&rest) {
        Some(false)
    } else if rest == PRIVATIVE_ENDING {
        Some(true)
    } else {
        None
    }
}

/// Where the phrase `words` starts at `toks[i]`: the index after its last token and whether
/// its last word was privative. Words of the phrase may be joined by one hyphen in the text.
fn match_at(toks: &[Token], i: usize, words: &[&str]) -> Option<(usize, bool)> {
    let mut at = i;
    for (k, pw) in words.iter().enumerate() {
        if k > 0 && toks.get(at) == Some(&Token::Hyphen) {
            at += 1;
        }
        let w = word(toks.get(at))?;
        if k + 1 == words.len() {
            let privative = last_word_match(w, pw)?;
            return Some((at + 1, privative));
        }
        if w != *pw {
            return None;
        }
        at += 1;
    }
    None
}

fn judge(clause: &[Token], start: usize, end: usize, privative: bool) -> Polarity {
    let seg_start = clause[..start]
        .iter()
        .rposition(|t| *t == Token::Comma)
        .map_or(0, |p| p + 1);
    let seg_end = clause[end..]
        .iter()
        .position(|t| *t == Token::Comma)
        .map_or(clause.len(), |p| end + p);
    let before = &clause[seg_start..start];
    // A cue right after the term, optionally after "-" or ":".
    let mut after = end;
    if matches!(clause.get(after), Some(Token::Hyphen | Token::Colon)) {
        after += 1;
    }
    let neg_after = word(clause.get(after)).is_some_and(|w| NEGATION_AFTER.contains(&w));
    let rest_from = if neg_after { after + 1 } else { end };
    let later_negation = clause[rest_from.min(seg_end)..seg_end]
        .iter()
        .any(|t| matches!(t, Token::Word(w) if is_negation_word(w)));
    let negations = negations_in(before) + usize::from(neg_after) + usize::from(privative);
    if clause.contains(&Token::Query) || uncertain_in(before) || later_negation || negations >= 2 {
        Polarity::Ambiguous
    } else if negations == 1 {
        Polarity::Negated
    } else if negations_in(&clause[..seg_start]) > 0 {
        Polarity::Ambiguous
    } else {
        Polarity::Affirmed
    }
}

/// The words of a term ("shortness of breath", "pain-free").
fn phrase_words(p: &str) -> impl Iterator<Item = &str> {
    p.split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
}

/// Every occurrence of the `terms` (lower-case phrases) in `text`, with how it is stated.
pub(crate) fn mentions<T: Copy>(text: &str, terms: &[(T, &str)]) -> Vec<Mention<T>> {
    // Most texts name no symptom: look for the terms' first words before tokenising (the
    // texts of a Concept are lower-case already).
    let lower: std::borrow::Cow<str> = if text.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let present = |p: &str| phrase_words(p).next().is_some_and(|w| lower.contains(w));
    if !terms.iter().any(|(_, p)| present(p)) {
        return Vec::new();
    }
    let toks = tokenize(&lower);
    let mut out = Vec::new();
    let phrases: Vec<(T, Vec<&str>)> = terms
        .iter()
        .filter(|(_, p)| present(p))
        .map(|(t, p)| (*t, phrase_words(p).collect()))
        .collect();
    for clause in toks.split(|t| *t == Token::Boundary) {
        for i in 0..clause.len() {
            if !matches!(clause[i], Token::Word(_)) {
                continue;
            }
            for (what, words) in &phrases {
                if let Some((end, privative)) = match_at(clause, i, words) {
                    out.push(Mention {
                        what: *what,
                        polarity: judge(clause, i, end, privative),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum S {
        Pain,
        Obstruction,
        Dyspnoea,
        Cord,
        Generic,
    }

    const TERMS: &[(S, &str)] = &[
        (S::Pain, "pain"),
        (S::Obstruction, "obstruction"),
        (S::Dyspnoea, "shortness of breath"),
        (S::Dyspnoea, "dyspnoea"),
        (S::Cord, "cord compression"),
        (S::Generic, "symptom"),
    ];

    fn read(t: &str) -> Vec<(S, Polarity)> {
        mentions(t, TERMS)
            .into_iter()
            .map(|m| (m.what, m.polarity))
            .collect()
    }

    use Polarity::{Affirmed, Ambiguous, Negated};

    #[test]
    fn negations_before_the_term() {
        assert_eq!(read("Denies pain"), [(S::Pain, Negated)]);
        assert_eq!(read("No obstruction."), [(S::Obstruction, Negated)]);
        assert_eq!(read("no longer any pain"), [(S::Pain, Negated)]);
        assert_eq!(read("free of pain"), [(S::Pain, Negated)]);
        assert_eq!(read("negative for cord compression"), [(S::Cord, Negated)]);
        assert_eq!(read("Patient doesn't report pain"), [(S::Pain, Negated)]);
        assert_eq!(read("resolved abdominal pain"), [(S::Pain, Negated)]);
        assert_eq!(read("no shortness of breath"), [(S::Dyspnoea, Negated)]);
    }

    #[test]
    fn negations_after_the_term_and_privative_forms() {
        assert_eq!(read("pain-free since surgery"), [(S::Pain, Negated)]);
        assert_eq!(read("pain free"), [(S::Pain, Negated)]);
        assert_eq!(read("Pain: none"), [(S::Pain, Negated)]);
        assert_eq!(read("pain resolved"), [(S::Pain, Negated)]);
        assert_eq!(read("Painless abdominal mass"), [(S::Pain, Negated)]);
    }

    #[test]
    fn whole_words_with_inflections() {
        assert_eq!(read("Painful abdominal mass"), [(S::Pain, Affirmed)]);
        assert_eq!(read("back pains"), [(S::Pain, Affirmed)]);
        assert!(read("on painkillers").is_empty());
        assert!(read("spain").is_empty());
        assert_eq!(read("spinal cord compression"), [(S::Cord, Affirmed)]);
    }

    #[test]
    fn the_catalogue_example_is_an_assessment_that_found_none() {
        assert_eq!(
            read("Denies abdominal pain; no obstructive symptoms"),
            [(S::Pain, Negated), (S::Generic, Negated)]
        );
    }

    #[test]
    fn clauses_end_at_but_and_semicolons() {
        assert_eq!(
            read("No pain but obstruction since May"),
            [(S::Pain, Negated), (S::Obstruction, Affirmed)]
        );
        assert_eq!(
            read("no pain; obstruction"),
            [(S::Pain, Negated), (S::Obstruction, Affirmed)]
        );
    }

    #[test]
    fn unclear_statements_are_ambiguous() {
        assert_eq!(
            read("possible bowel obstruction"),
            [(S::Obstruction, Ambiguous)]
        );
        assert_eq!(read("pain?"), [(S::Pain, Ambiguous)]);
        assert_eq!(read("r/o obstruction"), [(S::Obstruction, Ambiguous)]);
        assert_eq!(read("history of pain"), [(S::Pain, Ambiguous)]);
        // The scope of "no" across a comma is unclear.
        assert_eq!(read("no nausea, abdominal pain"), [(S::Pain, Ambiguous)]);
        // Two negations, or one further on.
        assert_eq!(read("not pain-free"), [(S::Pain, Ambiguous)]);
        assert_eq!(read("pain is absent"), [(S::Pain, Ambiguous)]);
    }

    #[test]
    fn plain_mentions_are_affirmed() {
        assert_eq!(read("Abdominal pain"), [(S::Pain, Affirmed)]);
        assert_eq!(read("obstructive symptoms"), [(S::Generic, Affirmed)]);
        assert!(read("").is_empty());
        assert!(read("Essential hypertension").is_empty());
    }
}
