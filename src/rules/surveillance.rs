//! §2.6 Surveillance: SURV-01..SURV-03 (patient-view).

use chrono::{Days, Months, NaiveDate};

use super::{Ctx, Finding, Gaps, RuleId, create, date_text, fact_use, plain_use};
use crate::clinical::{DiseaseState, Fact, Histology, Resection};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

/// Catalogue §2.6 schedule: imaging every 3–6 months to year 3 (overdue after 6 months) and
/// every 6 months in years 3–5 …
pub(crate) const INTERVAL_TO_YEAR_5_MONTHS: u32 = 6;
/// … then yearly after year 5 (for at least 10 years: the schedule does not stop).
pub(crate) const INTERVAL_AFTER_YEAR_5_MONTHS: u32 = 12;
/// Where the yearly interval begins (catalogue §2.6: "after year 5").
pub(crate) const YEARLY_FROM_MONTHS: u32 = 60;
/// SURV-03: follow-up beyond this (catalogue §2.6: "more than 10 years after resection").
pub(crate) const LATE_RECURRENCE_MONTHS: u32 = 120;

pub(crate) fn evaluate(c: &Ctx, gaps: &mut Gaps, out: &mut Vec<Finding>) {
    let Some(last) = ned_after_resection(c, gaps) else {
        return;
    };
    out.extend(surv_01(c, gaps, last));
    out.extend(surv_02(c, gaps, last));
    out.extend(surv_03(c, gaps, last));
}

/// The last resection of a patient with no evidence of disease; `None` otherwise.
fn ned_after_resection<'p>(c: &Ctx<'p>, gaps: &mut Gaps) -> Option<&'p Resection> {
    let state = *gaps.need(
        "disease_state",
        &c.picture.disease_state,
        "surveillance schedule (SURV-01..SURV-03) not assessed",
    )?;
    if state != DiseaseState::NoEvidenceOfDisease {
        return None;
    }
    c.picture
        .resections
        .iter()
        .filter(|r| r.date <= c.today)
        .max_by_key(|r| r.date)
}

/// When imaging after `reference` is due, by the time since the last resection.
fn due_date(resection: NaiveDate, reference: NaiveDate) -> Option<NaiveDate> {
    let yearly_from = resection.checked_add_months(Months::new(YEARLY_FROM_MONTHS))?;
    let months = if reference >= yearly_from {
        INTERVAL_AFTER_YEAR_5_MONTHS
    } else {
        INTERVAL_TO_YEAR_5_MONTHS
    };
    reference.checked_add_months(Months::new(months))
}

fn overdue(
    c: &Ctx,
    rule: impl Into<super::RuleId>,
    what: &str,
    fact_name: &'static str,
    fact: &Fact<Option<NaiveDate>>,
    last_resection: &Resection,
    gaps: &mut Gaps,
) -> Option<Finding> {
    let rule = rule.into();
    let last = *gaps.need(
        fact_name,
        fact,
        &format!("surveillance {what} ({rule}) not assessed"),
    )?;
    // Imaging before the resection does not count as follow-up.
    let reference = match last {
        Some(d) if d >= last_resection.date => d,
        _ => last_resection.date,
    };
    let due = due_date(last_resection.date, reference)?;
    let grace = c.params.surveillance_grace_days;
    let limit = due.checked_add_days(Days::new(u64::from(grace)))?;
    if c.today <= limit {
        return None;
    }
    let mut f = Finding::new(rule, Indicator::Warning);
    f.parameters.push(ParameterId::SurveillanceGraceDays);
    f.decided_by.push(plain_use(
        "last_resection",
        crate::display::date(last_resection.date),
        Some(format!(
            "{}, {}",
            last_resection.procedure,
            last_resection.read_from.label()
        )),
    ));
    f.decided_by
        .extend(fact_use(fact_name, fact, |d| date_text(*d)));
    f.statements.push(format!(
        "Last {what}: {}; due by {due}; {}",
        date_text(last),
        crate::display::param(c.params, ParameterId::SurveillanceGraceDays)
    ));
    f.summary = Some(format!(
        "Surveillance {what} overdue: due by {due}, last {}",
        date_text(last)
    ));
    Some(f)
}

/// SURV-01: abdomen/pelvis imaging overdue.
fn surv_01(c: &Ctx, gaps: &mut Gaps, last: &Resection) -> Option<Finding> {
    let mut f = overdue(
        c,
        RuleId::Surv01,
        "CT abdomen/pelvis",
        "last_ct_abdomen_pelvis",
        &c.picture.last_ct_abdomen_pelvis,
        last,
        gaps,
    )?;
    f.suggestions
        .push(create("Order CT abdomen/pelvis", "ct-abdomen-pelvis"));
    Some(f)
}

/// SURV-02: chest imaging overdue for leiomyosarcoma, UPS and grade 3 tumours.
fn surv_02(c: &Ctx, gaps: &mut Gaps, last: &Resection) -> Option<Finding> {
    let p = c.picture;
    let by_histology = p
        .histology
        .value()
        .is_some_and(|h| matches!(h, Histology::Leiomyosarcoma | Histology::Ups));
    let by_grade = p.grade.value() == Some(&3);
    if !by_histology && !by_grade {
        // Either unknown could still call for chest surveillance.
        let holds = "chest surveillance (SURV-02) not assessed";
        gaps.need("histology", &p.histology, holds);
        gaps.need("grade", &p.grade, holds);
        return None;
    }
    let mut f = overdue(
        c,
        RuleId::Surv02,
        "CT chest",
        "last_ct_chest",
        &p.last_ct_chest,
        last,
        gaps,
    )?;
    if by_histology {
        f.decided_by
            .extend(fact_use("histology", &p.histology, |h| {
                h.label().to_owned()
            }));
    }
    if by_grade {
        f.decided_by
            .extend(fact_use("grade", &p.grade, |g| g.to_string()));
    }
    f.suggestions.push(create("Order CT chest", "ct-chest"));
    Some(f)
}

/// SURV-03: WD-LPS more than 10 years after resection: keep following.
fn surv_03(c: &Ctx, gaps: &mut Gaps, last: &Resection) -> Option<Finding> {
    let h = *gaps.need(
        "histology",
        &c.picture.histology,
        "late-recurrence follow-up (SURV-03) not assessed",
    )?;
    if h != Histology::WdLiposarcoma {
        return None;
    }
    let ten_years = last
        .date
        .checked_add_months(Months::new(LATE_RECURRENCE_MONTHS))?;
    if c.today <= ten_years {
        return None;
    }
    let mut f = Finding::new(RuleId::Surv03, Indicator::Info);
    f.decided_by
        .extend(fact_use("histology", &c.picture.histology, |h| {
            h.label().to_owned()
        }));
    f.decided_by.push(plain_use(
        "last_resection",
        crate::display::date(last.date),
        Some(format!("{}, {}", last.procedure, last.read_from.label())),
    ));
    Some(f)
}
