//! §2.5 Systemic therapy: SYS-01, SYS-02 (patient-view).

use super::{Ctx, Finding, Gaps, RuleId, fact_use};
use crate::cds_hooks::Indicator;
use crate::clinical::{Agent, Histology, Resectability};

/// Metastatic, or a local recurrence assessed unresectable; `None` when undecidable.
fn needs_systemic(c: &Ctx, gaps: &mut Gaps, holds: &str) -> Option<bool> {
    let state = *gaps.need("disease_state", &c.p.disease_state, holds)?;
    if state.is_metastatic() {
        return Some(true);
    }
    if !state.has_local_recurrence() {
        return Some(false);
    }
    Some(*gaps.need("resectability", &c.p.resectability, holds)? == Resectability::Unresectable)
}

/// SYS-01: first-line systemic therapy.
pub(super) fn sys_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.p;
    let holds = "first-line systemic therapy advice (SYS-01) not assessed";
    let history = gaps.need("systemic_history", &p.systemic_history, holds)?;
    if !history.is_empty() || !needs_systemic(c, gaps, holds)? {
        return None;
    }
    let mut f = Finding::new(RuleId::Sys01, Indicator::Info);
    f.decided_by
        .extend(fact_use("disease_state", &p.disease_state, |s| {
            super::referral::state_label(*s).to_owned()
        }));
    f.decided_by
        .extend(fact_use("systemic_history", &p.systemic_history, |_| {
            "none recorded".to_owned()
        }));
    match p.histology.value() {
        Some(h @ (Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor)) => {
            f.statements.push(format!(
                "{}: doxorubicin + dacarbazine is the preferred combination",
                h.label()
            ));
            f.decided_by
                .extend(fact_use("histology", &p.histology, |h| {
                    h.label().to_owned()
                }));
        }
        Some(_) => {}
        None => {
            gaps.need(
                "histology",
                &p.histology,
                "the histology-preferred first-line combination (SYS-01) not shown",
            );
        }
    }
    Some(f)
}

/// One second-line option and the histologies it fits.
struct Option2 {
    text: &'static str,
    fits: fn(Histology) -> bool,
    /// Already given when any of these agents was.
    given_if: &'static [Agent],
}

const SECOND_LINE: &[Option2] = &[
    Option2 {
        text: "ifosfamide (infusional for DD-LPS, synovial sarcoma, MPNST; high-dose for synovial sarcoma)",
        // ORD-09: limited activity in leiomyosarcoma and SFT.
        fits: |h| {
            !matches!(
                h,
                Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor
            )
        },
        given_if: &[Agent::Ifosfamide],
    },
    Option2 {
        text: "trabectedin",
        fits: |h| h == Histology::Leiomyosarcoma || h.is_liposarcoma(),
        given_if: &[Agent::Trabectedin],
    },
    Option2 {
        text: "eribulin",
        fits: Histology::is_liposarcoma,
        given_if: &[Agent::Eribulin],
    },
    Option2 {
        text: "pazopanib",
        fits: |h| !h.is_liposarcoma(),
        given_if: &[Agent::Pazopanib],
    },
    Option2 {
        text: "gemcitabine ± docetaxel or dacarbazine",
        fits: |_| true,
        given_if: &[Agent::Gemcitabine],
    },
    Option2 {
        text: "dacarbazine",
        fits: |h| {
            matches!(
                h,
                Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor
            )
        },
        given_if: &[Agent::Dacarbazine],
    },
    Option2 {
        text: "antiangiogenic agents",
        fits: |h| h == Histology::SolitaryFibrousTumor,
        given_if: &[Agent::Pazopanib],
    },
];

/// SYS-02: second-line options matched to histology, excluding agents already given.
pub(super) fn sys_02(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.p;
    let holds = "second-line options (SYS-02) not assessed";
    let history = gaps.need("systemic_history", &p.systemic_history, holds)?;
    if history.is_empty() {
        return None;
    }
    // Options are for disease that is there to treat.
    let state = *gaps.need("disease_state", &p.disease_state, holds)?;
    if !state.is_metastatic() && !state.has_local_recurrence() {
        return None;
    }
    let histology = p.histology.value().copied();
    if histology.is_none() {
        gaps.need(
            "histology",
            &p.histology,
            "second-line options (SYS-02) not matched to histology",
        );
    }
    let mut f = Finding::new(RuleId::Sys02, Indicator::Info);
    let given: Vec<&str> = history.agents.iter().map(|a| a.label()).collect();
    f.decided_by
        .extend(fact_use("systemic_history", &p.systemic_history, |h| {
            format!(
                "{}: {}",
                crate::display::count(h.lines.len(), "line"),
                given.join(", ")
            )
        }));
    f.decided_by
        .extend(fact_use("histology", &p.histology, |h| {
            h.label().to_owned()
        }));
    let mut listed = 0;
    for o in SECOND_LINE {
        if histology.is_some_and(|h| !(o.fits)(h)) {
            continue;
        }
        if o.given_if.iter().any(|a| history.agents.contains(a)) {
            continue;
        }
        f.statements.push(format!("Option: {}", o.text));
        listed += 1;
    }
    if histology.is_none() {
        f.statements
            .push("Histology unknown: options not filtered by histology".to_owned());
    }
    if listed == 0 {
        f.statements.push(
            "Every histology-matched option has already been given: discuss at the tumour board or consider a trial"
                .to_owned(),
        );
    }
    Some(f)
}
