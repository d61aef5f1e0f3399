//! §2.1 Scope and data quality: SCOPE-01, SCOPE-02 (in `evaluate`), DATA-01, DATA-02.

use std::collections::BTreeMap;

use super::{Ctx, Finding, Gaps, RuleInput, fact_use};
use crate::cds_hooks::Indicator;
use crate::clinical::InvalidUse;

/// SCOPE-01: the histology is a type the RPS recommendations do not cover.
pub fn scope_01(c: &Ctx) -> Option<Finding> {
    let h = *c.p.histology.value()?;
    if h.is_in_scope() {
        return None;
    }
    let mut f = Finding::new("SCOPE-01", Indicator::Info);
    f.statements.push(format!(
        "Histology: {} (outside the RPS recommendations)",
        h.label()
    ));
    f.decided_by
        .extend(fact_use("histology", &c.p.histology, |h| {
            h.label().to_owned()
        }));
    Some(f)
}

/// DATA-01: one finding listing every fact a rule needed but found unknown, and what each
/// held back.
pub fn data_01(gaps: Gaps) -> Option<Finding> {
    if gaps.is_empty() {
        return None;
    }
    let mut f = Finding::new("DATA-01", Indicator::Info);
    // One statement per fact, with everything it holds back.
    let items = gaps.into_items();
    let mut by_fact: Vec<(&'static str, String, Vec<&str>)> = Vec::new();
    for u in &items {
        match by_fact.iter_mut().find(|(fact, _, _)| *fact == u.fact) {
            Some((_, _, held)) => {
                if !held.contains(&u.holds_back.as_str()) {
                    held.push(&u.holds_back);
                }
            }
            None => by_fact.push((u.fact, u.reason.clone(), vec![&u.holds_back])),
        }
    }
    for (fact, reason, held) in &by_fact {
        f.statements
            .push(format!("{fact} {reason}: {}", held.join("; ")));
    }
    f.unknown = items;
    Some(f)
}

/// At most this many invalid resources are listed one by one in DATA-02.
pub const DATA_02_MAX_LISTED: usize = 10;

/// DATA-02: resources or draft orders failed FHIR validation: each listed with the JSON paths
/// and kinds of error (never the value), and how the service still used it.
pub fn data_02(input: &RuleInput) -> Option<Finding> {
    if input.invalid_resources.is_empty() && input.invalid_draft_orders.is_empty() {
        return None;
    }
    let mut f = Finding::new("DATA-02", Indicator::Warning);
    if !input.invalid_resources.is_empty() {
        let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
        for r in input.invalid_resources {
            *per_type.entry(r.resource_type.as_str()).or_default() += 1;
        }
        let list: Vec<String> = per_type.iter().map(|(t, n)| format!("{t} × {n}")).collect();
        f.statements.push(format!(
            "{} resource(s) failed FHIR validation: {}",
            input.invalid_resources.len(),
            list.join(", ")
        ));
        // Each resource by type and id with the paths that failed (capped so that a chart of
        // broken resources cannot make the card unreadable).
        for r in input.invalid_resources.iter().take(DATA_02_MAX_LISTED) {
            let how = match r.used {
                InvalidUse::NotRead => "not needed: the service does not read this kind of record",
                InvalidUse::LeftOut => "left out: what it records is unknown",
                InvalidUse::ReadInPart => {
                    "read in part: its defective elements were not used, and nothing read from \
                     it supports favourable advice"
                }
                InvalidUse::Used => "still used: its defects lie outside what the service reads",
            };
            f.statements.push(format!(
                "`{}/{}` ({how}): {}",
                r.resource_type,
                r.id.as_deref().unwrap_or("(no id)"),
                r.problems.join("; ")
            ));
        }
        if input.invalid_resources.len() > DATA_02_MAX_LISTED {
            f.statements.push(format!(
                "… and {} more",
                input.invalid_resources.len() - DATA_02_MAX_LISTED
            ));
        }
        if input.picture.diagnosis.is_none() {
            f.statements.push(
                "No retroperitoneal sarcoma diagnosis was found in the valid data; it may be in \
                 the resources left out, so no RPS advice was given"
                    .to_owned(),
            );
        }
    }
    if !input.invalid_draft_orders.is_empty() {
        f.statements.push(format!(
            "{} draft order(s) failed validation and could not be checked: {}",
            input.invalid_draft_orders.len(),
            input.invalid_draft_orders.join(", ")
        ));
    }
    let left_out = input
        .invalid_resources
        .iter()
        .filter(|r| r.used == InvalidUse::LeftOut)
        .count()
        + input.invalid_draft_orders.len();
    let total = input.invalid_resources.len() + input.invalid_draft_orders.len();
    f.summary = Some(if left_out > 0 {
        format!(
            "{total} record(s) failed validation, {left_out} left out: advice may be incomplete"
        )
    } else {
        format!(
            "{total} record(s) failed validation; their defects did not keep them from being read"
        )
    });
    Some(f)
}
