//! The clinician-text lint of issue 13 (catalogue §6), applied to **every** CDS Hooks response
//! the HTTP tests receive (`Service::post_json`), so each chart of the test suite is checked,
//! and by `tests/api/card_text.rs` to the example charts: no snake_case word, backticked name,
//! parameter key, rule id or `Type/id` reference in a `summary` or `detail` (the footer line
//! aside); `detail` within 700 characters for info cards and 1,500 for verdict cards; no
//! sentence twice in a card; no fact listed twice in a card; no unknown on two cards; the
//! first source's URL; the "Rule and evidence" link.

use std::collections::BTreeSet;

use rps_cds::cards::{MAX_INFO_DETAIL_CHARS, MAX_VERDICT_DETAIL_CHARS, RULE_LINK_LABEL};
use rps_cds::clinical::is_reference;
use rps_cds::display;
use rps_cds::knowledge::ParameterId;
use rps_cds::rules::RuleId;
use serde_json::Value;

const NS: &str = "https://fhir.rps-cds.org";

pub fn is_verdict(card: &Value) -> bool {
    card["extension"][format!("{NS}/rules-applied")]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|id| {
            RuleId::ALL
                .iter()
                .any(|r| r.as_str() == id && r.is_verdict())
        })
}

/// The words of a text, split on anything but letters, digits, `_`, `/`, `-` and `.`.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '.')))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
}

/// Everything §6 forbids in a text a clinician reads (rule ids only in the footer line).
pub fn identifiers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if text.contains('`') {
        found.push("a backticked name".to_owned());
    }
    for t in tokens(text) {
        if t.contains('_') && t.chars().any(|c| c.is_ascii_lowercase()) {
            found.push(format!("snake_case {t}"));
        } else if is_reference(t) {
            found.push(format!("reference {t}"));
        } else if RuleId::ALL.iter().any(|r| r.as_str() == t) {
            found.push(format!("rule id {t}"));
        }
    }
    for p in ParameterId::ALL {
        if text.contains(p.name()) {
            found.push(format!("parameter {}", p.name()));
        }
    }
    for w in ["fact(s)", "resource(s)", "none recorded (none recorded)"] {
        if text.contains(w) {
            found.push(w.to_owned());
        }
    }
    found
}

/// The detail without its footer line ("From the chart: … · Rule LR-04 · knowledge …").
pub fn without_footer(detail: &str) -> &str {
    match detail.rfind("\n\n") {
        Some(i) if detail[i..].contains("knowledge ") => &detail[..i],
        _ => detail,
    }
}

/// Sentences of a detail, list items and lines taken one by one.
pub fn sentences(detail: &str) -> Vec<String> {
    detail
        .lines()
        .map(|l| l.trim_start_matches("- ").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("**"))
        .flat_map(split_sentences)
        .filter(|s| s.len() > 20)
        .collect()
}

/// A line's sentences: a full stop and a space end one, except after "st" ("st. 24") or
/// "e.g".
pub fn split_sentences(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in line.match_indices(". ") {
        let word = line[start..i].rsplit(' ').next().unwrap_or("");
        if matches!(word, "st" | "e.g" | "i.e" | "vs") {
            continue;
        }
        out.push(line[start..i].to_owned());
        start = i + 2;
    }
    out.push(line[start..].trim_end_matches('.').to_owned());
    out
}

/// The fact lines of a card: the list items under "Decided by" and "Not known", by label.
pub fn fact_labels(detail: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_facts = false;
    for line in detail.lines() {
        if line.starts_with("**Decided by**") || line.starts_with("**Not known**") {
            in_facts = true;
            continue;
        }
        if line.starts_with("**") || line.starts_with("###") || line.starts_with("Source:") {
            in_facts = false;
        }
        if in_facts && let Some(item) = line.strip_prefix("- ") {
            let label = display::FACTS
                .iter()
                .filter(|f| item.starts_with(f.label))
                .max_by_key(|f| f.label.len())
                .map_or_else(|| item.to_owned(), |f| f.label.to_owned());
            out.push(label);
        }
    }
    out
}

/// The URL of a label's first source, for the catalogue's two publications.
pub fn first_source_url(label: &str) -> Option<&'static str> {
    let first = label.split(';').next().unwrap_or("");
    if first.starts_with("UpToDate") {
        Some(
            "https://www.uptodate.com/contents/management-of-locally-recurrent-retroperitoneal-sarcoma",
        )
    } else if first.starts_with("TARPSWG") {
        Some("https://doi.org/10.1093/annonc/mdy052")
    } else {
        None
    }
}

/// Everything wrong with one response's cards, one line per problem.
pub fn problems(name: &str, response: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut unknown_on: Vec<(String, String)> = Vec::new();
    for card in response["cards"].as_array().unwrap() {
        let summary = card["summary"].as_str().unwrap();
        let detail = card["detail"].as_str().unwrap();
        let rule = card["source"]["topic"]["code"].as_str().unwrap_or("?");
        let at = format!("{name}: {rule}");
        for t in identifiers(summary) {
            out.push(format!("{at}: summary has {t}"));
        }
        for t in identifiers(without_footer(detail)) {
            out.push(format!("{at}: detail has {t}"));
        }
        let max = if is_verdict(card) {
            MAX_VERDICT_DETAIL_CHARS
        } else {
            MAX_INFO_DETAIL_CHARS
        };
        let len = detail.chars().count();
        if len > max {
            out.push(format!("{at}: detail is {len} characters (at most {max})"));
        }
        let mut seen = BTreeSet::new();
        for s in sentences(detail) {
            if !seen.insert(s.clone()) {
                out.push(format!("{at}: sentence twice: {s}"));
            }
        }
        let mut facts = BTreeSet::new();
        for f in fact_labels(detail) {
            if !facts.insert(f.clone()) {
                out.push(format!("{at}: fact listed twice: {f}"));
            }
        }
        // §4.6: `source.url` is the URL of the first source in the label.
        let label = card["source"]["label"].as_str().unwrap_or("");
        let url = card["source"]["url"].as_str().unwrap_or("");
        if let Some(expected) = first_source_url(label)
            && url != expected
        {
            out.push(format!(
                "{at}: source url {url} is not the first source's ({expected})"
            ));
        }
        let links = card["links"].as_array().cloned().unwrap_or_default();
        if !links.iter().any(|l| {
            l["label"] == RULE_LINK_LABEL
                && l["type"] == "absolute"
                && l["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("/rules#{rule}")))
        }) {
            out.push(format!("{at}: no Rule and evidence link"));
        }
        // Unknowns: once per response.
        let mut in_unknowns = false;
        for line in detail.lines() {
            if line.starts_with("**Not known**") {
                in_unknowns = true;
                continue;
            }
            if !line.starts_with("- ") && !line.is_empty() {
                in_unknowns = false;
            }
            if in_unknowns && let Some(item) = line.strip_prefix("- ") {
                let label = item.split(':').next().unwrap_or(item).to_owned();
                if let Some((_, other)) = unknown_on.iter().find(|(l, _)| *l == label) {
                    out.push(format!(
                        "{at}: unknown {label} listed again (also on {other})"
                    ));
                } else {
                    unknown_on.push((label, rule.to_owned()));
                }
            }
        }
    }
    out
}
