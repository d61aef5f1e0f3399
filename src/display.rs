//! The one display vocabulary (catalogue §6): how a fact, a value, a date, a duration and a
//! parameter read in a card, in `GET /rules` and in the generated docs.
//!
//! Below both [`crate::clinical`] and [`crate::rules`]: the rules write their statements with
//! these helpers, `clinical::describe` formats values with them, and `crate::cards` turns every
//! [`crate::clinical::FactUse`] into a clinical line through `fact_line`. Nothing here names a
//! fact key, a parameter key or a resource id in the words it returns.

use chrono::NaiveDate;

use crate::knowledge::{ParameterId, Parameters};

/// What a closed-world absence reads as, once.
pub(crate) const NONE_RECORDED: &str = "none recorded";

/// How a fact's label and value are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// "ECOG 1", "Grade 3", "Last CT chest 13 Nov 2026".
    Joined,
    /// "Histology: dedifferentiated liposarcoma".
    Labelled,
    /// A number of months: "Disease-free interval 2 years 10 months".
    Months,
}

/// One fact of the catalogue (§1, §4.1) and the values the rules show for it.
#[derive(Debug, Clone, Copy)]
pub struct FactLabel {
    /// The catalogue's fact name, as the rules and the card extension use it.
    pub key: &'static str,
    /// The clinical label.
    pub label: &'static str,
    pub style: Style,
}

const fn fact(key: &'static str, label: &'static str, style: Style) -> FactLabel {
    FactLabel { key, label, style }
}

use Style::{Joined, Labelled, Months};

/// Every fact a rule can show or miss, with its clinical label. A rule that uses a key not in
/// this table fails `every_fact_key_the_rules_use_has_a_label`.
pub const FACTS: &[FactLabel] = &[
    fact("histology", "Histology", Labelled),
    fact("site_retroperitoneal", "Retroperitoneal site", Labelled),
    fact("grade", "Grade", Joined),
    fact("age_years", "Age", Joined),
    fact("primary_resection", "Primary resection", Labelled),
    fact(
        "primary_resection_completeness",
        "Primary resection margin",
        Labelled,
    ),
    fact("prior_rt", "Prior radiotherapy", Labelled),
    fact("prior_rt_dose", "Prior radiotherapy dose", Labelled),
    fact("radiotherapy", "Radiotherapy", Labelled),
    fact("disease_state", "Disease", Labelled),
    fact("recurrence_number", "Recurrence number", Joined),
    fact("focality", "Focality", Labelled),
    fact("recurrence_biopsied", "Biopsy of the recurrence", Labelled),
    fact("distant_disease", "Distant disease", Labelled),
    fact("metastasis_sites", "Metastatic sites", Labelled),
    fact("metastasis_timing", "Timing of metastases", Labelled),
    fact(
        "synchronous_local_distant",
        "Local recurrence and distant metastasis found together",
        Labelled,
    ),
    fact("sarcomatosis", "Sarcomatosis", Labelled),
    fact("metastatic_lesion_count", "Metastatic lesions", Labelled),
    fact("low_volume", "Low-volume disease", Labelled),
    fact("dfi_months", "Disease-free interval", Months),
    fact(
        "recurrent_metastases_after_metastasectomy",
        "New metastases after a metastasectomy",
        Labelled,
    ),
    fact(
        "critical_structure_involved",
        "Critical structures involved",
        Labelled,
    ),
    fact("resectability", "Resectability", Labelled),
    fact("ecog", "ECOG", Joined),
    fact("symptomatic", "Symptoms", Labelled),
    fact("bone_symptoms", "Bone symptoms", Labelled),
    fact("latest_disease_status", "Latest disease status", Labelled),
    fact("systemic_history", "Systemic therapy", Labelled),
    fact("prior_anthracycline", "Prior anthracycline", Labelled),
    fact(
        "anthracycline_cumulative_dose",
        "Cumulative anthracycline dose",
        Labelled,
    ),
    fact(
        "cardiomyopathy_or_heart_failure",
        "Cardiomyopathy or heart failure",
        Labelled,
    ),
    fact("renal_impairment", "Renal impairment", Labelled),
    fact(
        "favorable_systemic_response",
        "Favourable response to systemic therapy",
        Labelled,
    ),
    fact(
        "progression_on_systemic",
        "Progression on systemic therapy",
        Labelled,
    ),
    fact("body_surface_area", "Body surface area", Labelled),
    fact("li_fraumeni", "Li-Fraumeni syndrome", Labelled),
    fact("second_malignancy", "Second malignancy", Labelled),
    fact(
        "expert_pathology_review",
        "Expert sarcoma pathology review",
        Labelled,
    ),
    fact("molecular_test", "Molecular pathology test", Labelled),
    fact(
        "metastasis_biopsied",
        "Tissue diagnosis of the metastases",
        Labelled,
    ),
    fact(
        "systemic_line_ongoing",
        "Systemic therapy line under way",
        Labelled,
    ),
    fact("metastasis_detected", "Metastases detected", Labelled),
    fact(
        "anthracycline_dose_documented",
        "Documented anthracycline dose",
        Labelled,
    ),
    fact("current_smoker", "Current smoker", Labelled),
    fact(
        "pulmonary_function_tested",
        "Pulmonary function tests",
        Labelled,
    ),
    fact("last_pft", "Last pulmonary function tests", Joined),
    fact("last_ct_chest", "Last CT chest", Joined),
    fact(
        "last_ct_abdomen_pelvis",
        "Last CT abdomen and pelvis",
        Joined,
    ),
    fact("last_bone_or_pet", "Last bone scan or FDG-PET", Joined),
    fact("last_imaging", "Last imaging", Joined),
    fact("metastasectomy", "Metastasectomy", Labelled),
    fact("last_resection", "Last resection", Labelled),
    fact(
        "recurrence_resection",
        "Resection of the recurrence",
        Labelled,
    ),
    fact("completeness", "Resection margin", Labelled),
    fact("draft_order", "Order", Labelled),
    fact(
        "rupture_or_piecemeal",
        "Tumour rupture or piecemeal resection",
        Labelled,
    ),
];

/// The entry of a fact key; `None` for a key the table lacks (a defect the tests catch).
pub(crate) fn fact_label(key: &str) -> Option<&'static FactLabel> {
    FACTS.iter().find(|f| f.key == key)
}

/// The clinical label of a fact ("ECOG", "Disease-free interval"). An unknown key still reads
/// as words, never as snake_case.
pub(crate) fn label(key: &str) -> String {
    match fact_label(key) {
        Some(f) => f.label.to_owned(),
        None => upper_first(&key.replace('_', " ")),
    }
}

/// Labels of several facts, in clinical words: "ECOG, focality and resectability".
pub(crate) fn labels(keys: &[&str]) -> String {
    let words: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let l = label(k);
            if i == 0 { l } else { lower_first(&l) }
        })
        .collect();
    join_and(&words)
}

/// "a, b and c".
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A rule's raw value in clinical words: durations in months or years and months, dates as
/// "13 Nov 2026", resectability in full.
pub(crate) fn value(key: &str, raw: &str) -> String {
    let style = fact_label(key).map(|f| f.style);
    if style == Some(Months)
        && let Ok(m) = raw.trim().parse::<f64>()
    {
        return months(m);
    }
    let raw = dates_in(raw);
    if key == "resectability" {
        return match raw.as_str() {
            "borderline" => "borderline resectable".to_owned(),
            other => other.to_owned(),
        };
    }
    raw
}

/// One fact as the card shows it: "ECOG 1", "Disease-free interval 2 years 10 months",
/// "Histology: dedifferentiated liposarcoma".
pub(crate) fn fact_line(key: &str, raw: &str) -> String {
    let v = value(key, raw);
    match fact_label(key).map(|f| f.style) {
        Some(Joined) | Some(Months) if v != NONE_RECORDED => format!("{} {v}", label(key)),
        _ => format!("{}: {v}", label(key)),
    }
}

/// Where a fact read from free text was read ("from a clinical note"), so the statement to
/// verify is named; the caller shows it only next to a fact read from text.
pub(crate) fn read_from_note(references: &[String]) -> &'static str {
    let kind = references
        .first()
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    match kind {
        "DiagnosticReport" => "from the text of a report",
        "DocumentReference" => "from a clinical note",
        "Condition" => "from the text of a diagnosis",
        "Procedure" => "from the text of a procedure record",
        _ => "from free text",
    }
}

/// A duration in months: "8 months", "14.5 months"; over 24 months in years and months ("2 years
/// 10 months").
pub(crate) fn months(m: f64) -> String {
    if m > 24.0 {
        let total = m.round() as i64;
        let (y, mo) = (total / 12, total % 12);
        let years = if y == 1 {
            "1 year".to_owned()
        } else {
            format!("{y} years")
        };
        return match mo {
            0 => years,
            1 => format!("{years} 1 month"),
            _ => format!("{years} {mo} months"),
        };
    }
    let n = if (m - m.round()).abs() < 0.05 {
        format!("{}", m.round() as i64)
    } else {
        format!("{m:.1}")
    };
    if n == "1" {
        "1 month".to_owned()
    } else {
        format!("{n} months")
    }
}

/// "13 Nov 2026".
pub(crate) fn date(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// A date that may be absent ("none recorded").
pub(crate) fn date_or_none(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| NONE_RECORDED.to_owned(), date)
}

/// Every ISO date ("2026-11-13") in a text as "13 Nov 2026".
pub(crate) fn dates_in(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if i + 10 <= b.len()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && (i + 10 == b.len() || !b[i + 10].is_ascii_alphanumeric())
            && text.is_char_boundary(i + 10)
            && let Ok(d) = NaiveDate::parse_from_str(&text[i..i + 10], "%Y-%m-%d")
        {
            out.push_str(&date(d));
            i += 10;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// "1 line", "2 lines" (never "line(s)").
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A text without the rule ids it cites in parentheses ("observation (LR-03) not assessed" →
/// "observation not assessed"): rule ids belong to the card's footer line only (§6).
pub(crate) fn without_rule_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(" (") {
        let after = &rest[open + 2..];
        match after.find(')') {
            Some(close) if is_rule_id_list(&after[..close]) => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..open + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// "LR-02", "MET-02, MET-03", "LR-03/LR-04".
fn is_rule_id_list(s: &str) -> bool {
    !s.is_empty()
        && s.split([',', '/']).map(str::trim).all(|id| {
            let (prefix, number) = id.split_once('-').unwrap_or(("", ""));
            (2..=5).contains(&prefix.len())
                && prefix.chars().all(|c| c.is_ascii_uppercase())
                && number.len() == 2
                && number.chars().all(|c| c.is_ascii_digit())
        })
}

/// What every text a clinician reads goes through: dates as "13 Nov 2026", no rule ids.
pub fn clinical(text: &str) -> String {
    without_rule_ids(&dates_in(text))
}

/// "50.4 Gy".
pub(crate) fn dose_gy(gy: f64) -> String {
    format!("{gy:.1} Gy")
}

/// A parameter as a clinical threshold with where its value comes from: "poor performance
/// status from ECOG 3 — catalogue default" ("— site setting" when configured).
pub(crate) fn param(params: &Parameters, id: ParameterId) -> String {
    params.threshold(id)
}

/// A parameter as a clinical threshold without its origin ("poor performance status from
/// ECOG 3"), for a sentence that names the origin elsewhere.
pub(crate) fn param_short(params: &Parameters, id: ParameterId) -> String {
    params.threshold_text(id)
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Lower-cases the first letter unless the word is an acronym ("ECOG", "CT").
pub(crate) fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_over_24_months_are_years_and_months() {
        assert_eq!(months(8.0), "8 months");
        assert_eq!(months(1.0), "1 month");
        assert_eq!(months(14.46), "14.5 months");
        assert_eq!(months(24.0), "24 months");
        assert_eq!(months(34.0), "2 years 10 months");
        assert_eq!(months(286.6), "23 years 11 months");
        assert_eq!(months(36.2), "3 years");
    }

    #[test]
    fn dates_read_as_day_month_year() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 13).unwrap();
        assert_eq!(date(d), "13 Nov 2026");
        assert_eq!(
            dates_in("Resection on 2020-01-03 (R0), 2021-02-30, x2026-11-13"),
            "Resection on 3 Jan 2020 (R0), 2021-02-30, x2026-11-13"
        );
        assert_eq!(date_or_none(None), "none recorded");
    }

    #[test]
    fn rule_ids_leave_the_prose() {
        assert_eq!(
            without_rule_ids("observation (LR-03) not assessed (TMC 24)"),
            "observation not assessed (TMC 24)"
        );
        assert_eq!(
            without_rule_ids("x (MET-02, MET-03) y (LR-03/LR-04)"),
            "x y"
        );
        assert_eq!(count(1, "line"), "1 line");
        assert_eq!(count(3, "record"), "3 records");
    }

    #[test]
    fn facts_read_in_clinical_words() {
        assert_eq!(fact_line("ecog", "1"), "ECOG 1");
        assert_eq!(
            fact_line("dfi_months", "34.4"),
            "Disease-free interval 2 years 10 months"
        );
        assert_eq!(
            fact_line("last_ct_chest", "2026-11-13"),
            "Last CT chest 13 Nov 2026"
        );
        assert_eq!(
            fact_line("resectability", "borderline"),
            "Resectability: borderline resectable"
        );
        assert_eq!(label("not_in_the_table"), "Not in the table");
        assert_eq!(
            labels(&["distant_disease", "focality", "ecog"]),
            "Distant disease, focality and ECOG"
        );
    }

    #[test]
    fn every_fact_key_has_one_label() {
        for (i, f) in FACTS.iter().enumerate() {
            assert!(FACTS[..i].iter().all(|g| g.key != f.key), "{} twice", f.key);
            assert!(!f.label.contains('_'), "{}", f.label);
        }
    }

    /// Every fact key a rule names (in `fact_use`, `plain_use`, `unknown_of`, `need` or an
    /// `UnknownFact`) has a clinical label: scans the rule sources, so a new rule's key is
    /// caught too.
    #[test]
    fn every_fact_key_the_rules_use_has_a_label() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for marker in [
                "fact_use(",
                "plain_use(",
                "unknown_of(",
                ".need(",
                "fact: ",
                "unknown_fact(",
            ] {
                for (at, _) in text.match_indices(marker) {
                    let rest = text[at + marker.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else {
                        continue;
                    };
                    let key: String = rest.chars().take_while(|c| *c != '"').collect();
                    if fact_label(&key).is_none() && !missing.contains(&key) {
                        missing.push(key);
                    }
                }
            }
        }
        assert!(missing.is_empty(), "facts without a label: {missing:?}");
    }
}
