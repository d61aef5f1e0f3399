//! §2.7 Order checks: ORD-01..ORD-18 (order-select, order-sign). Each finding is about one
//! draft order (`draft_order`), and its suggestions act on it: a `Delete`, and where the
//! catalogue names a better order, a recommended `Replace`.

use super::local_recurrence::{Verdict, assess};
use super::{Ctx, FactUse, Finding, RuleId, Suggestion, create, fact_use, plain_use};
use crate::cds_hooks::Indicator;
use crate::clinical::{
    Agent, DraftOrder, Histology, ImagingKind, MetastasisTiming, OrderKind, ResectionTarget,
    RtTiming,
};
use crate::knowledge::ParameterId;

/// Dose sums are compared with this slack so that a total exactly at the limit, reached by
/// floating-point addition, is not reported as over it.
const DOSE_EPSILON_MG_M2: f64 = 1e-6;

/// ORD-01 for every draft order: the recurrence verdict is computed once, and only when an
/// order needs it. The other checks run once per order from the registry, in catalogue order.
pub(super) fn ord_01_all(c: &Ctx, orders: &[DraftOrder], out: &mut Vec<Finding>) {
    if !orders.iter().any(|o| o.is(OrderKind::RecurrenceResection)) {
        return;
    }
    if let Some(lr) = assess(c) {
        for o in orders {
            out.extend(ord_01(o, &lr));
        }
    }
}

/// The draft order as a deciding fact.
pub fn order_use(o: &DraftOrder) -> FactUse {
    plain_use(
        "draft_order",
        o.display.clone(),
        Some(format!("{}, {}", o.reference, o.read_from.label())),
    )
}

fn on_order(rule: impl Into<super::RuleId>, indicator: Indicator, o: &DraftOrder) -> Finding {
    let mut f = Finding::new(rule, indicator);
    f.draft_order = Some(o.reference.clone());
    f.decided_by.push(order_use(o));
    f
}

fn delete(o: &DraftOrder) -> Suggestion {
    Suggestion::Delete {
        label: format!("Remove the draft order: {}", o.display),
        resource_id: o.reference.clone(),
    }
}

fn replace(o: &DraftOrder, label: &str, template: &'static str) -> Suggestion {
    Suggestion::Replace {
        label: label.to_owned(),
        resource_id: o.reference.clone(),
        order_template: template,
    }
}

fn histology_use(c: &Ctx, f: &mut Finding) {
    f.decided_by
        .extend(fact_use("histology", &c.p.histology, |h| {
            h.label().to_owned()
        }));
}

/// ORD-01: resection of a recurrence when LR-01 or LR-02 holds.
pub(super) fn ord_01(
    o: &DraftOrder,
    lr: &super::local_recurrence::LrAssessment,
) -> Option<Finding> {
    if !o.is(OrderKind::RecurrenceResection) {
        return None;
    }
    let reasons = match lr.verdict {
        Verdict::Lr01 => &lr.distant_reasons,
        Verdict::Lr02 => &lr.against_reasons,
        _ => return None,
    };
    let mut f = on_order(RuleId::Ord01, Indicator::Warning, o);
    f.statements
        .push(format!("Recurrence assessment: {}", lr.verdict.rule()));
    for r in reasons {
        f.statements.push(format!("Reason: {r}"));
    }
    f.decided_by.extend(lr.decided_by.iter().cloned());
    f.parameters = lr.parameters.clone();
    f.suggestions.push(delete(o));
    f.suggestions.push(replace(
        o,
        "Replace with a medical oncology referral",
        "medical-oncology-referral",
    ));
    Some(f)
}

/// ORD-02: debulking outside WD-LPS.
pub(super) fn ord_02(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Debulking) || *c.p.histology.value()? == Histology::WdLiposarcoma {
        return None;
    }
    let mut f = on_order(RuleId::Ord02, Indicator::Warning, o);
    histology_use(c, &mut f);
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-03: HIPEC.
pub(super) fn ord_03(_: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Hipec) {
        return None;
    }
    let mut f = on_order(RuleId::Ord03, Indicator::Warning, o);
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-04: post-operative RT or systemic therapy after complete resection of a recurrence.
pub(super) fn ord_04(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    let rt = o.is(OrderKind::PostoperativeRt);
    let systemic = o.is(OrderKind::PostoperativeSystemic);
    if !rt && !systemic {
        return None;
    }
    // The latest resection must be a complete resection of a recurrence.
    let last =
        c.p.resections
            .iter()
            .filter(|r| r.date <= c.today)
            .max_by_key(|r| r.date)?;
    if !matches!(last.target, ResectionTarget::Recurrence) {
        return None;
    }
    let completeness = *last.completeness.value()?;
    if !completeness.is_complete() {
        return None;
    }
    // Exception (RT only): R1 margin after pre-operative RT without IORT → a boost may be
    // considered. Unknown RT history cannot establish the exception.
    let boost = rt
        && !systemic
        && completeness == crate::clinical::Completeness::R1
        && c.p.radiotherapy.value().is_some_and(|courses| {
            let for_this = |t: RtTiming| {
                courses.iter().any(|rt| {
                    rt.timing == t
                        && (rt.relative_to.as_deref() == Some(last.procedure.as_str())
                            || (rt.relative_to.is_none() && rt.date <= last.date))
                })
            };
            for_this(RtTiming::PreOperative) && !for_this(RtTiming::IntraOperative)
        });
    let mut f = on_order(
        RuleId::Ord04,
        if boost {
            Indicator::Info
        } else {
            Indicator::Warning
        },
        o,
    );
    f.decided_by.push(plain_use(
        "recurrence_resection",
        format!("{} on {} ({completeness:?})", last.procedure, last.date),
        Some(last.read_from.label().to_owned()),
    ));
    if boost {
        f.statements.push(
            "R1 margin after pre-operative RT without IORT: a 10–16 Gy boost may be considered"
                .to_owned(),
        );
        f.summary = Some(
            "R1 after pre-operative RT, no IORT: a 10–16 Gy boost may be considered".to_owned(),
        );
    }
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-05: pre-operative RT in a previously irradiated patient.
pub(super) fn ord_05(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PreoperativeRt) {
        return None;
    }
    let courses = c.p.radiotherapy.value()?;
    if courses.is_empty() {
        return None;
    }
    let mut f = on_order(RuleId::Ord05, Indicator::Warning, o);
    f.decided_by
        .extend(fact_use("prior_rt", &c.p.radiotherapy, |cs| {
            let d: Vec<String> = cs
                .iter()
                .map(|rt| format!("{} {}", rt.procedure, rt.date))
                .collect();
            d.join(", ")
        }));
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-06: metastasectomy for synchronous metastases.
pub(super) fn ord_06(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Metastasectomy) && !o.is(OrderKind::PulmonaryMetastasectomy) {
        return None;
    }
    if *c.p.metastasis_timing.value()? != MetastasisTiming::Synchronous {
        return None;
    }
    let mut f = on_order(RuleId::Ord06, Indicator::Warning, o);
    f.decided_by.extend(fact_use(
        "metastasis_timing",
        &c.p.metastasis_timing,
        |_| "synchronous".to_owned(),
    ));
    f.parameters.push(ParameterId::SynchronousWindowDays);
    f.suggestions.push(delete(o));
    f.suggestions.push(replace(
        o,
        "Replace with a medical oncology referral",
        "medical-oncology-referral",
    ));
    Some(f)
}

/// ORD-07: pulmonary metastasectomy in a current smoker.
pub(super) fn ord_07(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PulmonaryMetastasectomy) || !c.p.current_smoker.is_true() {
        return None;
    }
    let mut f = on_order(RuleId::Ord07, Indicator::Warning, o);
    f.decided_by
        .extend(fact_use("current_smoker", &c.p.current_smoker, |_| {
            "yes".to_owned()
        }));
    f.suggestions.push(create(
        "Refer to smoking cessation",
        "smoking-cessation-referral",
    ));
    Some(f)
}

/// ORD-08: pulmonary metastasectomy without recent pulmonary function tests.
pub(super) fn ord_08(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PulmonaryMetastasectomy) || !c.p.pulmonary_function_tested.is_false() {
        return None;
    }
    let mut f = on_order(RuleId::Ord08, Indicator::Info, o);
    f.parameters.push(ParameterId::PftValidityDays);
    f.decided_by
        .extend(fact_use("last_pft", &c.p.last_pft, |d| {
            super::date_text(*d)
        }));
    f.statements.push(format!(
        "No pulmonary function tests in the current window ({})",
        crate::display::param(c.params, ParameterId::PftValidityDays)
    ));
    f.suggestions.push(create(
        "Order pulmonary function tests",
        "pulmonary-function-tests",
    ));
    Some(f)
}

/// ORD-09: ifosfamide for leiomyosarcoma or SFT.
pub(super) fn ord_09(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Ifosfamide)) {
        return None;
    }
    if !matches!(
        c.p.histology.value()?,
        Histology::Leiomyosarcoma | Histology::SolitaryFibrousTumor
    ) {
        return None;
    }
    let mut f = on_order(RuleId::Ord09, Indicator::Info, o);
    histology_use(c, &mut f);
    f.suggestions.push(delete(o));
    f.suggestions
        .push(replace(o, "Replace with dacarbazine", "dacarbazine"));
    Some(f)
}

/// ORD-10: pazopanib for a liposarcoma.
pub(super) fn ord_10(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Pazopanib)) || !c.p.histology.value()?.is_liposarcoma() {
        return None;
    }
    let mut f = on_order(RuleId::Ord10, Indicator::Warning, o);
    histology_use(c, &mut f);
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-11: eribulin outside liposarcoma.
pub(super) fn ord_11(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Eribulin)) || c.p.histology.value()?.is_liposarcoma() {
        return None;
    }
    let mut f = on_order(RuleId::Ord11, Indicator::Info, o);
    histology_use(c, &mut f);
    Some(f)
}

/// ORD-12: trabectedin outside the L-sarcomas.
pub(super) fn ord_12(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Trabectedin)) {
        return None;
    }
    let h = *c.p.histology.value()?;
    if h == Histology::Leiomyosarcoma || h.is_liposarcoma() {
        return None;
    }
    let mut f = on_order(RuleId::Ord12, Indicator::Info, o);
    histology_use(c, &mut f);
    Some(f)
}

/// ORD-13: first-line gemcitabine + docetaxel (in one order or in two orders together); the
/// finding is attached to the gemcitabine order.
pub(super) fn ord_13(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Gemcitabine)) {
        return None;
    }
    if !all.iter().any(|d| d.is(OrderKind::Agent(Agent::Docetaxel))) {
        return None;
    }
    if !c.p.systemic_history.value()?.is_empty() {
        return None;
    }
    let mut f = on_order(RuleId::Ord13, Indicator::Info, o);
    f.decided_by
        .extend(fact_use("systemic_history", &c.p.systemic_history, |_| {
            "none recorded".to_owned()
        }));
    f.suggestions
        .push(create("Order doxorubicin", "doxorubicin"));
    Some(f)
}

/// ORD-14: anthracycline order that takes the cumulative dose over the lifetime limit. The
/// other anthracycline orders of the same request count too.
pub(super) fn ord_14(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Finding> {
    if !o.agents().any(Agent::is_anthracycline) {
        return None;
    }
    // The prior dose is a lower bound (§4.1): what valid records prove.
    let dose = &c.p.anthracycline_dose;
    let prior = dose.at_least_mg_m2;
    let limit = c.params.doxorubicin_lifetime_max_mg_m2;
    let this = o.planned_anthracycline_mg_m2.value().copied();
    let others: f64 = all
        .iter()
        .filter(|d| d.reference != o.reference && d.agents().any(Agent::is_anthracycline))
        .filter_map(|d| d.planned_anthracycline_mg_m2.value())
        .sum();
    // Unknown parts count as zero: the sum is then a lower bound, and a lower bound over the
    // limit is over it whatever the unknown parts are. Below the limit it decides nothing.
    let total = prior + others + this.unwrap_or(0.0);
    if total <= limit + DOSE_EPSILON_MG_M2 {
        return None;
    }
    let mut f = on_order(RuleId::Ord14, Indicator::Critical, o);
    f.parameters.push(ParameterId::DoxorubicinLifetimeMaxMgM2);
    f.parameters
        .push(ParameterId::EpirubicinToDoxorubicinFactor);
    let prior_text = if dose.is_exact() {
        f.decided_by.extend(fact_use(
            "anthracycline_cumulative_dose",
            &dose.total_mg_m2,
            |d| format!("{d:.0} mg/m² doxorubicin-equivalent"),
        ));
        format!("{prior:.0}")
    } else {
        f.decided_by.push(super::plain_use(
            "anthracycline_cumulative_dose",
            format!("at least {prior:.0} mg/m² doxorubicin-equivalent"),
            (!dose.counted.is_empty()).then(|| dose.counted.join(", ")),
        ));
        f.unknown.push(super::UnknownFact {
            fact: "anthracycline_cumulative_dose",
            reason: dose
                .total_mg_m2
                .unknown_reason()
                .map_or_else(|| "not recorded".to_owned(), |u| u.reason()),
            holds_back: "the total may be higher still".to_owned(),
        });
        format!("at least {prior:.0}")
    };
    let this_text = this.map_or_else(|| "not stated".to_owned(), |d| format!("{d:.0}"));
    let mut line = format!("Prior {prior_text} + this order {this_text}");
    if others > 0.0 {
        line.push_str(&format!(" + other draft orders {others:.0}"));
    }
    let at_least = if !dose.is_exact() || this.is_none() {
        "at least "
    } else {
        ""
    };
    line.push_str(&format!(
        " = {at_least}{total:.0} mg/m² doxorubicin-equivalent (over the {}; {})",
        crate::display::param(c.params, ParameterId::DoxorubicinLifetimeMaxMgM2),
        crate::display::param(c.params, ParameterId::EpirubicinToDoxorubicinFactor)
    ));
    f.statements.push(line);
    f.summary = Some(format!(
        "Cumulative anthracycline {at_least}{total:.0} mg/m² would exceed the {} mg/m² limit",
        c.params.display(ParameterId::DoxorubicinLifetimeMaxMgM2)
    ));
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-15: olaratumab (withdrawn).
pub(super) fn ord_15(_: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Olaratumab)) {
        return None;
    }
    let mut f = on_order(RuleId::Ord15, Indicator::Critical, o);
    f.suggestions.push(delete(o));
    f.suggestions
        .push(replace(o, "Replace with doxorubicin", "doxorubicin"));
    Some(f)
}

pub(super) fn ord_16_check(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    ord_16(c, o)
}

/// ORD-16: FNA of a retroperitoneal mass with no sarcoma diagnosis yet. Also runs for
/// patients out of scope (SCOPE-02): it is the one check that does.
pub fn ord_16(c: &Ctx, o: &DraftOrder) -> Option<Finding> {
    if !o.is(OrderKind::FineNeedleAspiration) || c.p.diagnosis.is_some() {
        return None;
    }
    let mass = o
        .reason_conditions
        .iter()
        .find(|r| c.p.undiagnosed_retroperitoneal_masses.contains(r));
    if !o.targets_retroperitoneal_mass && !o.body_site_retroperitoneum && mass.is_none() {
        return None;
    }
    let mut f = on_order(RuleId::Ord16, Indicator::Warning, o);
    f.statements.push(match mass {
        Some(m) => format!("Target: retroperitoneal mass {m} without a sarcoma diagnosis"),
        None => "Target: a retroperitoneal mass, no sarcoma diagnosis recorded".to_owned(),
    });
    f.suggestions.push(delete(o));
    f.suggestions.push(replace(
        o,
        "Replace with a core needle biopsy",
        "core-needle-biopsy",
    ));
    Some(f)
}

/// ORD-17: routine bone imaging in metastatic RPS other than SFT, without bone symptoms.
pub(super) fn ord_17(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Imaging(ImagingKind::BoneScan))
        && !o.is(OrderKind::Imaging(ImagingKind::FdgPet))
    {
        return None;
    }
    if !c.metastatic()? || *c.p.histology.value()? == Histology::SolitaryFibrousTumor {
        return None;
    }
    if c.p.symptoms.value()?.iter().any(|s| s.bone) {
        return None;
    }
    let mut f = on_order(RuleId::Ord17, Indicator::Info, o);
    histology_use(c, &mut f);
    f.decided_by
        .extend(fact_use("bone_symptoms", &c.p.symptoms, |_| {
            "none recorded".to_owned()
        }));
    Some(f)
}

/// ORD-18: curative resection of the primary with synchronous metastases.
pub(super) fn ord_18(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PrimaryResection) && !untargeted_primary_resection(c, o) {
        return None;
    }
    if *c.p.metastasis_timing.value()? != MetastasisTiming::Synchronous {
        return None;
    }
    let mut f = on_order(RuleId::Ord18, Indicator::Info, o);
    f.decided_by.extend(fact_use(
        "metastasis_timing",
        &c.p.metastasis_timing,
        |_| "synchronous".to_owned(),
    ));
    f.parameters.push(ParameterId::SynchronousWindowDays);
    Some(f)
}

/// A resection order the classifier left untargeted (it names a primary resection only while
/// the state is "primary untreated") that can only be of the primary: the primary is known
/// not to be resected yet, no recurrence is active, and the order points at the diagnosis or
/// the retroperitoneum.
fn untargeted_primary_resection(c: &Ctx, o: &DraftOrder) -> bool {
    let unresected = matches!(c.p.primary_resection.value(), Some(None));
    let at_primary = o.body_site_retroperitoneum
        || c.p
            .diagnosis
            .as_ref()
            .is_some_and(|d| o.reason_conditions.contains(&d.condition));
    o.is(OrderKind::Resection) && unresected && c.p.current_recurrence.is_none() && at_primary
}
