//! §4.4 What systemic therapy has done since the disease it treats was found: MET-12 (re-review
//! at the tumour board after a favourable response), and the condition MET-01, ORD-06 and
//! ORD-18 share ("no systemic therapy line started on or after the detection of the
//! metastases").
//!
//! MET-12 applies after systemic therapy given for synchronous metastases, unresectable
//! metastases, or a local recurrence that LR-01 or LR-02 advises against resecting because of
//! distant disease, multifocality or unresectability. It needs a line started on or after the
//! detection of that disease with regression or stable disease for ≥ `favorable_stable_months`,
//! and no progression recorded since. The coherence pass lets it replace LR-01, LR-02 and
//! MET-01 (`coherence::PAIRS`).
//!
//! Readings (written down because the catalogue leaves them open):
//! - "since" counts lines that started on or after the detection of the disease they treat
//!   (the latest detection when local and distant disease are both there); a line started
//!   before it was given for something else.
//! - "no progression since": the latest result of the favourable line and of every later line
//!   is not a progression; a later line without any recorded response leaves it unknown (a new
//!   line usually follows progression), and MET-12 stays silent.
//! - An LR-02 reason a tumour response cannot change — rupture or piecemeal resection,
//!   poor performance status — keeps LR-01 / LR-02 and MET-12 silent.
//! - MET-12 is permissive ("resection may now be considered"): it must also hold without the
//!   facts read from records that failed validation (§4.1 asymmetry).

use chrono::NaiveDate;

use super::local_recurrence::{Verdict, assess};
use super::{Ctx, FactUse, Finding, Gaps, RuleId, UnknownFact, create, fact_use, plain_use};
use super::{months_text, provenance_text, unknown_of};
use crate::clinical::{
    DiseaseState, Fact, MetastasisTiming, Resectability, Response, SystemicLine, Unknown,
};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

/// The earliest detection date of the active metastases; `None` when none is dated.
fn metastases_detected(c: &Ctx) -> Option<NaiveDate> {
    c.picture
        .metastases
        .iter()
        .filter(|m| m.active)
        .filter_map(|m| m.detected)
        .min()
}

/// The detection date of the current local recurrence episode (its first record).
fn recurrence_detected(c: &Ctx) -> Option<NaiveDate> {
    let number = c
        .picture
        .current_recurrence
        .as_ref()
        .map(|e| e.number)
        .or_else(|| c.picture.recurrence_episodes.last().map(|e| e.number))?;
    c.picture
        .recurrence_episodes
        .iter()
        .filter(|e| e.number == number)
        .map(|e| e.detected)
        .min()
}

/// Whether a line of systemic therapy started on or after `since`: `None` when the therapy
/// history is unknown, or when lines exist but `since` is unknown.
fn line_started_since(c: &Ctx, since: Option<NaiveDate>) -> Option<bool> {
    let h = c.picture.systemic_history.value()?;
    match since {
        _ if h.lines.is_empty() => Some(false),
        Some(d) => Some(h.lines.iter().any(|l| l.start >= d)),
        None => None,
    }
}

/// MET-01, ORD-06 and ORD-18 (§4.4): whether systemic therapy has started since the
/// metastases were found. `None` when that cannot be read: the rules then still fire and say
/// so (their advice is the cautious one), never as if no therapy had started.
pub(crate) fn systemic_started_for_metastases(c: &Ctx) -> Option<bool> {
    line_started_since(c, metastases_detected(c))
}

/// What the rule says when [`systemic_started_for_metastases`] is `None`.
pub(crate) fn started_unknown(c: &Ctx) -> Option<UnknownFact> {
    let holds = "whether systemic therapy has already started for the metastases (then this advice no longer applies)";
    match &c.picture.systemic_history {
        Fact::Unknown(_) => unknown_of("systemic_history", &c.picture.systemic_history, holds),
        Fact::Known { .. } => unknown_of(
            "metastasis_detected",
            &Fact::<()>::unknown(Unknown::NotRecorded),
            holds,
        ),
    }
}

/// The card line for "no line started since the metastases were found".
pub(crate) fn none_started_use(c: &Ctx) -> Option<FactUse> {
    fact_use("systemic_history", &c.picture.systemic_history, |_| {
        "no line started since the metastases were found".to_owned()
    })
}

/// A MET-12 decision: the situation, the favourable line and what decided it.
#[derive(Debug, Clone)]
pub(crate) struct Reassessment {
    /// What the therapy was given for, in clinical words.
    pub situation: String,
    pub since: NaiveDate,
    pub decided_by: Vec<FactUse>,
    pub parameters: Vec<ParameterId>,
}

enum Decision {
    NotApplicable,
    Unknown(Vec<UnknownFact>),
    Fires(Reassessment),
}

const HOLDS: &str = "whether resection may now be reconsidered after systemic therapy";

fn favourable(l: &SystemicLine, stable_months: u32) -> bool {
    l.best_response == Some(Response::Regression)
        || l.stable_months
            .is_some_and(|m| m >= f64::from(stable_months))
}

fn decide(c: &Ctx) -> Decision {
    let p = c.picture;
    let Some(state) = c.state() else {
        return Decision::NotApplicable;
    };
    let mut uses: Vec<FactUse> = Vec::new();
    let mut parameters: Vec<ParameterId> = Vec::new();
    // The situation and the date from which a line counts as given for it.
    let (situation, since) = if state.has_local_recurrence() {
        let Some(lr) = assess(c) else {
            return Decision::NotApplicable;
        };
        if !lr.lasting_reasons.is_empty() {
            return Decision::NotApplicable;
        }
        match lr.verdict {
            Verdict::Lr01 => {
                uses.extend(lr.distant_uses);
                parameters.extend(lr.distant_parameters);
                let since = [recurrence_detected(c), metastases_detected(c)]
                    .into_iter()
                    .flatten()
                    .max();
                ("local recurrence with distant disease".to_owned(), since)
            }
            Verdict::Lr02 => {
                uses.extend(lr.against_uses);
                (lr.against_reasons.join(", "), recurrence_detected(c))
            }
            _ => return Decision::NotApplicable,
        }
    } else if state == DiseaseState::DistantMetastasis {
        if p.metastasis_timing.value() == Some(&MetastasisTiming::Synchronous) {
            uses.extend(fact_use("metastasis_timing", &p.metastasis_timing, |_| {
                "synchronous".to_owned()
            }));
            parameters.push(ParameterId::SynchronousWindowDays);
            ("synchronous metastases".to_owned(), metastases_detected(c))
        } else if p.resectability.value() == Some(&Resectability::Unresectable) {
            uses.extend(fact_use("resectability", &p.resectability, |_| {
                "unresectable".to_owned()
            }));
            (
                "unresectable metastatic disease".to_owned(),
                metastases_detected(c),
            )
        } else {
            return Decision::NotApplicable;
        }
    } else {
        return Decision::NotApplicable;
    };

    let history = match &p.systemic_history {
        Fact::Known { value, .. } => value,
        Fact::Unknown(_) => {
            return Decision::Unknown(
                unknown_of("systemic_history", &p.systemic_history, HOLDS)
                    .into_iter()
                    .collect(),
            );
        }
    };
    if history.lines.is_empty() {
        return Decision::NotApplicable;
    }
    let not_recorded = |name: &'static str| {
        Decision::Unknown(
            unknown_of(name, &Fact::<()>::unknown(Unknown::NotRecorded), HOLDS)
                .into_iter()
                .collect(),
        )
    };
    let Some(since) = since else {
        return not_recorded("metastasis_detected");
    };
    let lines: Vec<&SystemicLine> = history.lines.iter().filter(|l| l.start >= since).collect();
    if lines.is_empty() {
        return Decision::NotApplicable;
    }
    let stable_months = c.params.favorable_stable_months;
    let Some(i) = lines.iter().rposition(|l| favourable(l, stable_months)) else {
        return if lines.iter().any(|l| l.best_response.is_none()) {
            not_recorded("favorable_systemic_response")
        } else {
            Decision::NotApplicable
        };
    };
    let line = lines[i];
    // The lines' responses come from the disease-status records, which the lines do not
    // name: on the cautious picture (§4.1) a latest status read from a defective record
    // leaves the response unknown.
    if let Fact::Unknown(Unknown::FromDefective { .. }) = &p.latest_disease_status {
        return Decision::Unknown(
            unknown_of("latest_disease_status", &p.latest_disease_status, HOLDS)
                .into_iter()
                .collect(),
        );
    }
    if line.last_response == Some(Response::Progression) {
        return Decision::NotApplicable;
    }
    for later in &lines[i + 1..] {
        match later.last_response {
            Some(Response::Progression) => return Decision::NotApplicable,
            None => return not_recorded("progression_on_systemic"),
            Some(_) => {}
        }
    }

    let agents: Vec<&str> = line.agents.iter().map(|a| a.label()).collect();
    uses.push(plain_use(
        "systemic_history",
        format!(
            "{} from {} (line {})",
            agents.join(" + "),
            line.start,
            line.number
        ),
        Some(line.resources.join(", ")),
    ));
    // The response is read from the disease-status records of the line: the latest one
    // names where it comes from.
    let provenance = p
        .latest_disease_status
        .provenance()
        .filter(|pv| pv.date.is_some_and(|d| d >= line.start))
        .map(provenance_text);
    let response = if line.best_response == Some(Response::Regression) {
        "regression".to_owned()
    } else {
        parameters.push(ParameterId::FavorableStableMonths);
        format!(
            "stable disease for {} months (≥ {} months)",
            months_text(line.stable_months.unwrap_or_default()),
            c.params.display(ParameterId::FavorableStableMonths)
        )
    };
    uses.push(plain_use(
        "favorable_systemic_response",
        response,
        provenance,
    ));
    Decision::Fires(Reassessment {
        situation,
        since,
        decided_by: uses,
        parameters,
    })
}

/// MET-12's decision on the chart (also on the cautious picture, §4.1): `Some` when it fires.
/// The order checks ORD-01 and ORD-06 use it to point to the re-review.
pub(crate) fn reassessment(c: &Ctx) -> Option<Reassessment> {
    let Decision::Fires(r) = decide(c) else {
        return None;
    };
    match c.cautious() {
        Some(strict) => matches!(decide(&strict), Decision::Fires(_)).then_some(r),
        None => Some(r),
    }
}

/// MET-12 (§4.4; TMC 19, systemic-therapy section, Figures 1 and 2).
pub(super) fn met_12(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let r = match decide(c) {
        Decision::NotApplicable => return None,
        Decision::Unknown(us) => {
            gaps.extend(&us);
            return None;
        }
        Decision::Fires(r) => r,
    };
    if let Some(strict) = c.cautious() {
        match decide(&strict) {
            Decision::Fires(_) => {}
            Decision::Unknown(us) => {
                gaps.extend(&us);
                return None;
            }
            Decision::NotApplicable => return None,
        }
    }
    let mut f = Finding::new(RuleId::Met12, Indicator::Info);
    f.statements.push(format!(
        "Systemic therapy given for {} (found {})",
        r.situation, r.since
    ));
    f.statements
        .push("No progression recorded since the response".to_owned());
    f.decided_by = r.decided_by;
    f.parameters = r.parameters;
    f.parameters.sort();
    f.parameters.dedup();
    f.suggestions.push(create(
        "Refer to the sarcoma tumour board",
        "tumour-board-referral",
    ));
    Some(f)
}
