//! §2.5 Systemic therapy: SYS-01, SYS-02 (patient-view), as amended by catalogue v2 §4.4.

use super::{Ctx, Finding, Gaps, RuleId, fact_use, plain_use};
use crate::clinical::{Agent, Focality, Histology, Resectability, Response};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

/// Why the patient has disease that calls for systemic therapy (SYS-01): metastatic disease,
/// or a local recurrence for which curative resection is not advised because it is multifocal
/// or unresectable (LR-02's reasons that leave systemic therapy as the treatment; §4.4).
/// `None` when undecidable (the gaps are recorded).
fn needs_systemic(c: &Ctx, gaps: &mut Gaps, holds: &str) -> Option<Option<&'static str>> {
    let state = *gaps.need("disease_state", &c.picture.disease_state, holds)?;
    if state.is_metastatic() {
        return Some(Some("metastatic disease"));
    }
    if !state.has_local_recurrence() {
        return Some(None);
    }
    // Any one known reason decides, whatever the other.
    if c.picture.focality.value() == Some(&Focality::Multifocal) {
        return Some(Some("multifocal local recurrence"));
    }
    if c.picture.resectability.value() == Some(&Resectability::Unresectable) {
        return Some(Some("unresectable local recurrence"));
    }
    let focality = gaps.need("focality", &c.picture.focality, holds);
    let resectability = gaps.need("resectability", &c.picture.resectability, holds);
    focality?;
    resectability?;
    Some(None)
}

/// SYS-01: first-line systemic therapy, its summary fitted to the histology (§6).
pub(super) fn sys_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    let holds = "first-line systemic therapy advice (SYS-01) not assessed";
    let history = gaps.need("systemic_history", &p.systemic_history, holds)?;
    if !history.is_empty() {
        return None;
    }
    let why = needs_systemic(c, gaps, holds)??;
    let mut f = Finding::new(RuleId::Sys01, Indicator::Info);
    f.decided_by
        .extend(fact_use("disease_state", &p.disease_state, |s| {
            super::referral::state_label(*s).to_owned()
        }));
    if why != "metastatic disease" {
        f.statements
            .push(format!("{why}: curative resection is not advised"));
        f.decided_by.extend(fact_use("focality", &p.focality, |f| {
            format!("{f:?}").to_lowercase()
        }));
        f.decided_by
            .extend(fact_use("resectability", &p.resectability, |r| {
                format!("{r:?}").to_lowercase()
            }));
    }
    f.decided_by
        .extend(fact_use("systemic_history", &p.systemic_history, |_| {
            "none recorded".to_owned()
        }));
    // The combination when shrinkage is the goal, fitted to the histology (§4.4, §6): a
    // DD-LPS patient's card does not speak of LMS and SFT.
    let (combination, short) = match p.histology.value() {
        Some(h @ (Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor)) => (
            format!(
                "doxorubicin + dacarbazine, preferred in {} because ifosfamide is less active \
                 there (TMC 41, VA)",
                h.label()
            ),
            "doxorubicin + dacarbazine",
        ),
        Some(_) => (
            "doxorubicin + ifosfamide or doxorubicin + dacarbazine (TMC 41, IA)".to_owned(),
            "doxorubicin + ifosfamide or + dacarbazine",
        ),
        None => {
            gaps.need(
                "histology",
                &p.histology,
                "the histology-preferred first-line combination (SYS-01) not shown",
            );
            (
                "doxorubicin + ifosfamide or doxorubicin + dacarbazine (TMC 41, IA); in \
                 leiomyosarcoma and solitary fibrous tumour doxorubicin + dacarbazine is \
                 preferred (VA) — histology not recorded"
                    .to_owned(),
                "doxorubicin + ifosfamide or + dacarbazine",
            )
        }
    };
    f.decided_by
        .extend(fact_use("histology", &p.histology, |h| {
            h.label().to_owned()
        }));
    f.statements.push(
        "For palliation: an anthracycline (doxorubicin or epirubicin) alone (TMC 40, IA)"
            .to_owned(),
    );
    f.statements.push(format!(
        "When shrinkage is the goal (resection, symptom relief): {combination}"
    ));
    f.summary = Some(super::local_recurrence::truncate_summary(format!(
        "No prior systemic therapy: an anthracycline alone to palliate; {short} when shrinkage \
         is the goal"
    )));
    Some(f)
}

/// One later-line option of TMC 43 and the histologies it fits.
struct LaterLineOption {
    text: &'static str,
    /// The statement's letter and level ("43a, IB").
    cite: &'static str,
    fits: fn(Histology) -> bool,
    /// Already given when any of these agents was.
    given_if: &'static [Agent],
}

const SECOND_LINE: &[LaterLineOption] = &[
    LaterLineOption {
        text: "ifosfamide (infusional for DD-LPS, synovial sarcoma, MPNST; high-dose for synovial sarcoma)",
        cite: "43a, IB",
        // ORD-09: limited activity in leiomyosarcoma and SFT.
        fits: |h| {
            !matches!(
                h,
                Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor
            )
        },
        given_if: &[Agent::Ifosfamide],
    },
    LaterLineOption {
        text: "trabectedin",
        cite: "43b, IB",
        fits: |h| h == Histology::Leiomyosarcoma || h.is_liposarcoma(),
        given_if: &[Agent::Trabectedin],
    },
    LaterLineOption {
        text: "eribulin",
        cite: "43c, IB",
        fits: Histology::is_liposarcoma,
        given_if: &[Agent::Eribulin],
    },
    LaterLineOption {
        text: "pazopanib",
        cite: "43d, IB",
        fits: |h| !h.is_liposarcoma(),
        given_if: &[Agent::Pazopanib],
    },
    LaterLineOption {
        text: "gemcitabine alone or with docetaxel or dacarbazine",
        cite: "43e, IB",
        fits: |_| true,
        given_if: &[Agent::Gemcitabine],
    },
    LaterLineOption {
        text: "dacarbazine",
        cite: "43f, IB",
        fits: |h| {
            matches!(
                h,
                Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor
            )
        },
        given_if: &[Agent::Dacarbazine],
    },
    LaterLineOption {
        text: "antiangiogenic agents (sunitinib, pazopanib, temozolomide)",
        cite: "43g, IVB",
        fits: |h| h == Histology::SolitaryFibrousTumor,
        given_if: &[Agent::Pazopanib],
    },
];

/// SYS-02 (v2, §4.4): later-line options matched to the histology, only when a next line is
/// due: progression on or after the last line, intolerance recorded, or the anthracycline
/// contraindicated (cumulative dose at the limit, cardiomyopathy or heart failure). Silent
/// during a line still given without progression, and after a line completed with response
/// or stable disease.
pub(super) fn sys_02(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let p = c.picture;
    let holds = "later-line options (SYS-02) not assessed";
    let history = gaps.need("systemic_history", &p.systemic_history, holds)?;
    let last = history.lines.last()?;
    // Options are for disease that is there to treat.
    let state = *gaps.need("disease_state", &p.disease_state, holds)?;
    if !state.is_metastatic() && !state.has_local_recurrence() {
        return None;
    }
    // Why a next line is due: each reason known true decides on its own.
    let mut reasons: Vec<String> = Vec::new();
    let mut uses = Vec::new();
    let progression = p.progression_on_systemic.is_true()
        || p.latest_disease_status.value() == Some(&crate::clinical::DiseaseStatus::Worsened)
            && p.latest_disease_status
                .provenance()
                .and_then(|pr| pr.date)
                .is_some_and(|d| d >= last.start);
    if progression {
        reasons.push(format!("progression on or after line {}", last.number));
        uses.extend(fact_use(
            "progression_on_systemic",
            &p.progression_on_systemic,
            |b| if *b { "yes" } else { "no" }.to_owned(),
        ));
        uses.extend(fact_use(
            "latest_disease_status",
            &p.latest_disease_status,
            |s| format!("{s:?}").to_lowercase(),
        ));
    }
    if last.intolerance {
        reasons.push(format!("line {} stopped for intolerance", last.number));
        uses.push(plain_use(
            "systemic_history",
            format!("line {} stopped for intolerance", last.number),
            Some(last.resources.join(", ")),
        ));
    }
    let limit = c.params.doxorubicin_lifetime_max_mg_m2;
    let at_least = p.anthracycline_dose.at_least_mg_m2;
    if at_least >= limit {
        reasons.push(format!(
            "anthracycline contraindicated: cumulative dose at least {at_least:.0} mg/m² \
             (limit {} mg/m²)",
            c.params.display(ParameterId::DoxorubicinLifetimeMaxMgM2)
        ));
        uses.push(plain_use(
            "anthracycline_cumulative_dose",
            format!("at least {at_least:.0} mg/m²"),
            Some(p.anthracycline_dose.counted.join(", ")),
        ));
    }
    if p.cardiomyopathy_or_heart_failure.is_true() {
        reasons.push("anthracycline contraindicated: cardiomyopathy or heart failure".to_owned());
        uses.extend(fact_use(
            "cardiomyopathy_or_heart_failure",
            &p.cardiomyopathy_or_heart_failure,
            |_| "yes".to_owned(),
        ));
    }
    // A line still given without progression runs its course.
    if last.ongoing == Some(true) && !progression {
        return None;
    }
    if reasons.is_empty() {
        // Silent during a line still given without progression, and after a completed line
        // with response or stable disease. Progression unknown: say what is missing.
        let responded = matches!(
            last.last_response,
            Some(Response::Regression | Response::Stable)
        );
        if !responded {
            gaps.need("progression_on_systemic", &p.progression_on_systemic, holds);
        }
        return None;
    }
    let histology = p.histology.value().copied();
    if histology.is_none() {
        gaps.need(
            "histology",
            &p.histology,
            "later-line options (SYS-02) not matched to histology",
        );
    }
    let mut f = Finding::new(RuleId::Sys02, Indicator::Info);
    let given: Vec<&str> = history.agents.iter().map(|a| a.label()).collect();
    f.decided_by
        .extend(fact_use("systemic_history", &p.systemic_history, |h| {
            lines_text(h.lines.len(), &given)
        }));
    f.decided_by.extend(uses);
    f.decided_by
        .extend(fact_use("histology", &p.histology, |h| {
            h.label().to_owned()
        }));
    if at_least >= limit {
        f.parameters.push(ParameterId::DoxorubicinLifetimeMaxMgM2);
    }
    f.statements
        .push(format!("Next line due: {}", reasons.join("; ")));
    // Ifosfamide again only after an earlier ifosfamide line that did not progress (§4.4).
    let ifosfamide_lines: Vec<_> = history
        .lines
        .iter()
        .filter(|l| l.agents.contains(&Agent::Ifosfamide))
        .collect();
    let ifosfamide_again = !ifosfamide_lines.is_empty()
        && ifosfamide_lines
            .iter()
            .all(|l| l.last_response.is_some() && l.last_response != Some(Response::Progression));
    let mut listed = Vec::new();
    for o in SECOND_LINE {
        if histology.is_some_and(|h| !(o.fits)(h)) {
            continue;
        }
        let given = o.given_if.iter().any(|a| history.agents.contains(a));
        if given && !(o.given_if == [Agent::Ifosfamide] && ifosfamide_again) {
            continue;
        }
        let again = if given {
            " again (no progression on it)"
        } else {
            ""
        };
        f.statements
            .push(format!("Option: {}{again} (TMC {})", o.text, o.cite));
        listed.push(o.text.split(' ').next().unwrap_or(o.text));
    }
    if histology.is_none() {
        f.statements
            .push("Histology unknown: options not filtered by histology".to_owned());
    }
    if listed.is_empty() {
        f.statements.push(
            "Every histology-matched option has already been given: discuss at the tumour board or consider a trial"
                .to_owned(),
        );
    }
    f.summary = Some(super::local_recurrence::truncate_summary(
        if listed.is_empty() {
            format!(
                "Next systemic line due ({}): no histology-matched option left",
                reasons[0]
            )
        } else {
            format!(
                "Next systemic line due ({}): options {}",
                reasons[0],
                listed.join(", ")
            )
        },
    ));
    Some(f)
}

/// "1 line: doxorubicin", "2 lines: doxorubicin, ifosfamide" (§6: no "line(s)").
pub(super) fn lines_text(n: usize, agents: &[&str]) -> String {
    format!(
        "{}: {}",
        crate::display::count(n, "line"),
        agents.join(", ")
    )
}
