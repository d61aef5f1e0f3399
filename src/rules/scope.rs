//! §2.1 Scope and data quality: SCOPE-01, SCOPE-02 (in `evaluate`), DATA-01, DATA-02, and
//! DATA-03 and DATA-04 (catalogue v2 §4.2).

use std::collections::BTreeMap;

use super::{Ctx, Finding, Gaps, RuleId, RuleInput, fact_use};
use crate::clinical::Histology;
use crate::fhir::InvalidUse;
use crate::knowledge::Indicator;

/// SCOPE-01: the histology is a type the RPS recommendations do not cover.
pub(crate) fn scope_01(c: &Ctx) -> Option<Finding> {
    let h = *c.picture.histology.value()?;
    if h.is_in_scope() {
        return None;
    }
    let mut f = Finding::new(RuleId::Scope01, Indicator::Info);
    f.statements.push(format!(
        "Histology: {} (outside the RPS recommendations)",
        h.label()
    ));
    f.decided_by
        .extend(fact_use("histology", &c.picture.histology, |h| {
            h.label().to_owned()
        }));
    // PEComa and IMT stay out of scope, but the consensus gives one line for each (§4.2).
    let line = match h {
        Histology::Pecoma => Some((
            "PEComa: mTOR inhibitors such as sirolimus may be considered (TMC 43h, VB)",
            "PEComa is outside RPS advice: follow its own guideline; mTOR inhibitors such as \
             sirolimus may be considered",
        )),
        Histology::Imt => Some((
            "ALK-rearranged inflammatory myofibroblastic tumour: ALK inhibitors such as \
             crizotinib may be considered, although not approved for this use (TMC 43i, VB)",
            "IMT is outside RPS advice: follow its own guideline; ALK inhibitors may be \
             considered if ALK-rearranged (not approved for this use)",
        )),
        _ => None,
    };
    if let Some((statement, summary)) = line {
        f.statements.push(statement.to_owned());
        f.summary = Some(summary.to_owned());
    }
    Some(f)
}

/// DATA-01: one finding listing every fact a rule needed but found unknown, and what each
/// held back.
pub(crate) fn data_01(gaps: Gaps) -> Option<Finding> {
    if gaps.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Data01, Indicator::Info);
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
pub(crate) const DATA_02_MAX_LISTED: usize = 10;

/// DATA-02: resources or draft orders failed FHIR validation: each listed with the JSON paths
/// and kinds of error (never the value), and how the service still used it.
pub(crate) fn data_02(input: &RuleInput) -> Option<Finding> {
    if input.invalid_resources.is_empty() && input.invalid_draft_orders.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Data02, Indicator::Warning);
    if !input.invalid_resources.is_empty() {
        let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
        for r in input.invalid_resources {
            *per_type.entry(r.resource_type.as_str()).or_default() += 1;
        }
        let list: Vec<String> = per_type.iter().map(|(t, n)| format!("{t} × {n}")).collect();
        f.statements.push(format!(
            "{} failed FHIR validation: {}",
            crate::display::count(input.invalid_resources.len(), "record"),
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
            // The record's id is for the integration team (the card's `records` extension),
            // not for the clinician's words.
            f.records.extend(
                r.id.as_ref()
                    .map(|id| format!("{}/{}", r.resource_type, id)),
            );
            f.statements.push(format!(
                "{} record ({how}): {}",
                r.resource_type,
                r.problems().join("; ")
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
            "{} failed validation and could not be checked",
            crate::display::count(input.invalid_draft_orders.len(), "draft order")
        ));
        f.records.extend(input.invalid_draft_orders.iter().cloned());
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
            "{} failed validation, {left_out} left out: advice may be incomplete",
            crate::display::count(total, "record")
        )
    } else {
        format!(
            "{} failed validation; their defects did not keep them from being read",
            crate::display::count(total, "record")
        )
    });
    Some(f)
}

/// DATA-03: records of another patient were sent (prefetch, fetched data or draft orders)
/// and ignored. Names the kinds of data whose facts are therefore unknown, nothing of the
/// other patient.
pub(crate) fn data_03(input: &RuleInput) -> Option<Finding> {
    let other = input.other_patient;
    if other.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Data03, Indicator::Critical);
    let mut kinds: Vec<&str> = Vec::new();
    for kind in other.resource_types.iter().map(|t| data_kind(t).1) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if !kinds.is_empty() {
        f.statements.push(format!(
            "Not used, because the data sent for them included another patient's records: {}. \
             Nothing they record is known for this patient, so advice that depends on them is \
             missing.",
            kinds.join("; ")
        ));
    }
    if other.draft_orders > 0 {
        f.statements.push(format!(
            "{} draft {} for another patient {} not checked.",
            other.draft_orders,
            if other.draft_orders == 1 {
                "order"
            } else {
                "orders"
            },
            if other.draft_orders == 1 {
                "was"
            } else {
                "were"
            },
        ));
    }
    Some(f)
}

/// DATA-04: prefetch keys that could not be had; the call was answered without them, so
/// every fact they could carry is unknown (the picture was built with them withheld).
pub(crate) fn data_04(input: &RuleInput) -> Option<Finding> {
    if input.unavailable.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Data04, Indicator::Warning);
    let kinds: Vec<&str> = input
        .unavailable
        .iter()
        .map(|u| data_kind(u.resource_type).0)
        .collect();
    for u in input.unavailable {
        f.statements.push(format!(
            "{} could not be read from the EHR ({})",
            capitalised(data_kind(u.resource_type).1),
            u.why
        ));
    }
    f.statements.push(
        "Everything these records could show is treated as unknown, not as absent; advice that \
         depends on them may be missing"
            .to_owned(),
    );
    f.summary = Some(if kinds.len() <= 3 {
        format!(
            "Could not read {} from the EHR: advice may be missing",
            kinds.join(", ")
        )
    } else {
        format!(
            "Could not read {} kinds of data from the EHR: advice may be missing",
            kinds.len()
        )
    });
    Some(f)
}

/// A resource type as the kind of data a clinician knows it by: short (summary) and long.
fn data_kind(resource_type: &str) -> (&str, &str) {
    match resource_type {
        "Patient" => ("patient details", "patient details"),
        "Condition" => ("conditions", "conditions and diagnoses"),
        "Observation" => (
            "observations",
            "observations (e.g. grade, performance status, laboratory results)",
        ),
        "Procedure" => ("procedures", "procedures (e.g. surgery, radiotherapy)"),
        "MedicationAdministration" => (
            "medication administrations",
            "medication administrations (e.g. chemotherapy given)",
        ),
        "MedicationStatement" => ("medication statements", "medication statements"),
        "MedicationRequest" => ("medication orders", "medication orders"),
        "DiagnosticReport" => (
            "diagnostic reports",
            "diagnostic reports (e.g. imaging, pathology)",
        ),
        "ImagingStudy" => ("imaging studies", "imaging studies"),
        "Medication" => ("medications", "medications"),
        other => (other, other),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|first| first.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
