//! Order checks (docs/clinical-spec.md §2.7, §4.5): ORD-01..ORD-20 (order-select,
//! order-sign). Each finding is about one draft order (`draft_order`), and its suggestions act
//! on it: a `Delete`, and where the catalogue names a better order, a recommended `Replace`.

use super::local_recurrence::{Verdict, assess};
use super::systemic_response::{
    Reassessment, none_started_use, reassessment, started_unknown, systemic_started_for_metastases,
};
use super::{Ctx, FactUse, Finding, RuleId, Suggestion, create, fact_use, plain_use};
use crate::clinical::{
    Agent, DraftOrder, Histology, ImagingKind, MetastasisTiming, OrderKind, ResectionTarget,
    RtTiming,
};
use crate::knowledge::Indicator;
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
        let review = reassessment(c);
        for o in orders {
            out.extend(ord_01(o, &lr, review.as_ref()));
        }
    }
}

/// The draft order as a deciding fact.
pub(crate) fn order_use(o: &DraftOrder) -> FactUse {
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

/// The radiotherapy courses as a deciding fact, in clinical words ("pre-operative 2026-07-04
/// (50.4 Gy)").
fn prior_rt_use(c: &Ctx) -> Option<FactUse> {
    use crate::clinical::Describe;
    fact_use("prior_rt", &c.picture.radiotherapy, |cs| cs.describe())
}

fn histology_use(c: &Ctx, f: &mut Finding) {
    f.decided_by
        .extend(fact_use("histology", &c.picture.histology, |h| {
            h.label().to_owned()
        }));
}

/// ORD-01: resection of a recurrence when LR-01 or LR-02 holds.
pub(super) fn ord_01(
    o: &DraftOrder,
    lr: &super::local_recurrence::LrAssessment,
    review: Option<&Reassessment>,
) -> Option<Finding> {
    if !o.is(OrderKind::RecurrenceResection) {
        return None;
    }
    let reasons = match lr.verdict {
        Verdict::Lr01 => &lr.distant_reasons,
        Verdict::Lr02 => &lr.against_reasons,
        _ => return None,
    };
    // After a favourable response MET-12 replaces LR-01 / LR-02: the order is not advised
    // against but pointed to the tumour board re-review (§4.4).
    if let Some(r) = review {
        return Some(re_review(
            RuleId::Ord01,
            o,
            r,
            "this resection of the recurrence",
        ));
    }
    let mut f = on_order(RuleId::Ord01, Indicator::Warning, o);
    for r in reasons {
        f.statements.push(format!("Reason: {r}"));
    }
    if lr.verdict == Verdict::Lr01 {
        f.decided_by.extend(lr.distant_uses.iter().cloned());
        f.parameters = lr.distant_parameters.clone();
    } else {
        f.decided_by.extend(lr.against_uses.iter().cloned());
        f.parameters = lr.against_parameters.clone();
    }
    f.suggestions.push(delete(o));
    f.suggestions.push(replace(
        o,
        "Replace with a medical oncology referral",
        "medical-oncology-referral",
    ));
    Some(f)
}

/// ORD-01 / ORD-06 after a favourable response to systemic therapy (MET-12): info, pointing
/// to the re-review at the tumour board; no delete action.
fn re_review(rule: RuleId, o: &DraftOrder, r: &Reassessment, what: &str) -> Finding {
    let mut f = on_order(rule, Indicator::Info, o);
    f.summary = Some(format!(
        "Favourable response to systemic therapy: present again at the tumour board before {what}."
    ));
    f.statements.push(format!(
        "Systemic therapy given for {} (found {}); no progression recorded since the response",
        r.situation, r.since
    ));
    f.decided_by.extend(r.decided_by.iter().cloned());
    f.parameters = r.parameters.clone();
    f.suggestions.push(create(
        "Refer to the sarcoma tumour board",
        "tumour-board-referral",
    ));
    f
}

/// ORD-02: debulking outside WD-LPS.
pub(super) fn ord_02(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Debulking) || *c.picture.histology.value()? == Histology::WdLiposarcoma {
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
/// A warning with a delete action; for an RT draft after an R1 resection with pre-operative RT
/// and no IORT, an info card of its own, without a delete action, that a boost may be
/// considered (catalogue §4.5; UTD summarising NCCN).
pub(super) fn ord_04(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    let rt = o.is(OrderKind::PostoperativeRt);
    let systemic = o.is(OrderKind::PostoperativeSystemic);
    if !rt && !systemic {
        return None;
    }
    // The latest resection must be a complete resection of a recurrence.
    let last = c
        .picture
        .resections
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
    // The exception is for RT drafts only: R1 margin after pre-operative RT without IORT.
    let boost_possible = rt && !systemic && completeness == crate::clinical::Completeness::R1;
    let for_this = |courses: &[crate::clinical::RadiotherapyCourse], t: RtTiming| {
        courses.iter().any(|rt| {
            rt.timing == t
                && (rt.relative_to.as_deref() == Some(last.procedure.as_str())
                    || (rt.relative_to.is_none() && rt.date <= last.date))
        })
    };
    // Unknown RT history cannot establish the exception (the card says it is missing).
    let boost = boost_possible
        && c.picture.radiotherapy.value().is_some_and(|courses| {
            for_this(courses, RtTiming::PreOperative)
                && !for_this(courses, RtTiming::IntraOperative)
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
        format!("{} ({completeness:?})", crate::display::date(last.date)),
        Some(format!("{}, {}", last.procedure, last.read_from.label())),
    ));
    if boost {
        f.decided_by.extend(prior_rt_use(c));
        f.statements.push(
            "The exception applies: R1 margin, pre-operative radiotherapy given and no \
             intra-operative radiotherapy. A boost of 10–16 Gy may be considered if the \
             normal-tissue dose constraints can still be met."
                .to_owned(),
        );
        f.summary = Some(
            "R1 after pre-operative RT, no IORT: a 10–16 Gy boost may be considered if \
             normal-tissue constraints allow"
                .to_owned(),
        );
        // No delete action: the boost is an option, not an order to remove.
        return Some(f);
    }
    if boost_possible {
        f.unknown.extend(super::unknown_of(
            "prior_rt",
            &c.picture.radiotherapy,
            "whether an R1 boost after pre-operative radiotherapy may be considered",
        ));
    }
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-05: pre-operative RT in a previously irradiated patient.
pub(super) fn ord_05(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PreoperativeRt) {
        return None;
    }
    let courses = c.picture.radiotherapy.value()?;
    if courses.is_empty() {
        return None;
    }
    let mut f = on_order(RuleId::Ord05, Indicator::Warning, o);
    f.decided_by.extend(prior_rt_use(c));
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-06: metastasectomy for synchronous metastases.
pub(super) fn ord_06(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Metastasectomy) && !o.is(OrderKind::PulmonaryMetastasectomy) {
        return None;
    }
    if *c.picture.metastasis_timing.value()? != MetastasisTiming::Synchronous {
        return None;
    }
    // MET-01's condition (§4.4): silent once systemic therapy has started, except that after
    // a favourable response the order is pointed to the re-review (MET-12).
    let started = systemic_started_for_metastases(c);
    if started == Some(true) {
        return reassessment(c).map(|r| re_review(RuleId::Ord06, o, &r, "this metastasectomy"));
    }
    let mut f = on_order(RuleId::Ord06, Indicator::Warning, o);
    f.decided_by.extend(fact_use(
        "metastasis_timing",
        &c.picture.metastasis_timing,
        |_| "synchronous".to_owned(),
    ));
    match started {
        Some(_) => f.decided_by.extend(none_started_use(c)),
        None => f.unknown.extend(started_unknown(c)),
    }
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
    if !o.is(OrderKind::PulmonaryMetastasectomy) || !c.picture.current_smoker.is_true() {
        return None;
    }
    let mut f = on_order(RuleId::Ord07, Indicator::Warning, o);
    f.decided_by.extend(fact_use(
        "current_smoker",
        &c.picture.current_smoker,
        |_| "yes".to_owned(),
    ));
    f.suggestions.push(create(
        "Refer to smoking cessation",
        "smoking-cessation-referral",
    ));
    Some(f)
}

/// ORD-08: pulmonary metastasectomy without recent pulmonary function tests.
pub(super) fn ord_08(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PulmonaryMetastasectomy) || !c.picture.pulmonary_function_tested.is_false()
    {
        return None;
    }
    let mut f = on_order(RuleId::Ord08, Indicator::Info, o);
    f.parameters.push(ParameterId::PftValidityDays);
    f.decided_by
        .extend(fact_use("last_pft", &c.picture.last_pft, |d| {
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
        c.picture.histology.value()?,
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
    if !o.is(OrderKind::Agent(Agent::Pazopanib)) || !c.picture.histology.value()?.is_liposarcoma() {
        return None;
    }
    let mut f = on_order(RuleId::Ord10, Indicator::Warning, o);
    histology_use(c, &mut f);
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-11: eribulin outside liposarcoma.
pub(super) fn ord_11(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Eribulin)) || c.picture.histology.value()?.is_liposarcoma() {
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
    let h = *c.picture.histology.value()?;
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
    if !c.picture.systemic_history.value()?.is_empty() {
        return None;
    }
    let mut f = on_order(RuleId::Ord13, Indicator::Info, o);
    f.decided_by.extend(fact_use(
        "systemic_history",
        &c.picture.systemic_history,
        |_| "none recorded".to_owned(),
    ));
    match doxorubicin_withheld(c, o, all) {
        None => f
            .suggestions
            .push(create("Order doxorubicin", "doxorubicin")),
        Some(why) => withhold_doxorubicin(c, o, &mut f, why),
    }
    Some(f)
}

/// Why doxorubicin must not be suggested in place of a draft order (ORD-13, ORD-15; catalogue
/// §4.5): it is offered only when no prior anthracycline exposure is recorded (for any
/// cancer), exposure is known, no cardiomyopathy or heart failure is known to be present, and
/// ORD-14, ORD-19 and ORD-20 would not fire for it. `None` when it may be suggested.
///
/// With exposure known to be none, ORD-19 cannot fire and the prior dose is zero; without
/// cardiomyopathy, ORD-20 cannot fire for an anthracycline; the suggested order carries no
/// dose, so ORD-14 could fire only through another anthracycline among the draft orders, and
/// then doxorubicin is not suggested either (it would be ordered twice).
fn doxorubicin_withheld(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Withheld> {
    // Permissive advice: facts read from records that failed validation do not count (§4.1).
    let cautious = c.cautious();
    let c = cautious.as_ref().unwrap_or(c);
    match c.picture.prior_anthracycline.value() {
        Some(true) => return Some(Withheld::PriorExposure),
        None => return Some(Withheld::ExposureUnknown),
        Some(false) => {}
    }
    match c.picture.cardiomyopathy_or_heart_failure.value() {
        Some(true) => return Some(Withheld::Cardiac),
        // Unknown is not "none": the suggestion needs it known absent.
        None => return Some(Withheld::CardiacUnknown),
        Some(false) => {}
    }
    // Another draft order with an anthracycline (the order itself may combine one with the
    // agent it replaces: doxorubicin then stays).
    all.iter()
        .any(|d| d.reference != o.reference && d.agents().any(Agent::is_anthracycline))
        .then_some(Withheld::AlreadyOrdered)
}

/// Why doxorubicin is not suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withheld {
    PriorExposure,
    ExposureUnknown,
    Cardiac,
    CardiacUnknown,
    AlreadyOrdered,
}

impl Withheld {
    fn text(self) -> &'static str {
        match self {
            Withheld::PriorExposure => "earlier anthracycline treatment is recorded",
            Withheld::ExposureUnknown => {
                "whether anthracyclines were given before is unknown (medication records \
                 could not all be read)"
            }
            Withheld::Cardiac => "cardiomyopathy or heart failure is recorded",
            Withheld::CardiacUnknown => {
                "whether there is cardiomyopathy or heart failure is unknown (the records \
                 could not all be read)"
            }
            Withheld::AlreadyOrdered => "another draft order already contains an anthracycline",
        }
    }
}

/// The card when doxorubicin is not suggested: delete only, and the reason.
fn withhold_doxorubicin(c: &Ctx, o: &DraftOrder, f: &mut Finding, why: Withheld) {
    const HOLDS_BACK: &str = "whether doxorubicin is an option";
    let (known, unknown) = match why {
        Withheld::PriorExposure | Withheld::ExposureUnknown => (
            exposure_use(c),
            super::unknown_of(
                "prior_anthracycline",
                &c.picture.prior_anthracycline,
                HOLDS_BACK,
            ),
        ),
        Withheld::Cardiac | Withheld::CardiacUnknown => (
            cardiac_use(c),
            super::unknown_of(
                "cardiomyopathy_or_heart_failure",
                &c.picture.cardiomyopathy_or_heart_failure,
                HOLDS_BACK,
            ),
        ),
        Withheld::AlreadyOrdered => (None, None),
    };
    f.decided_by.extend(known);
    f.unknown.extend(unknown);
    let prior = c.picture.anthracycline_dose.at_least_mg_m2;
    let documented = if why == Withheld::PriorExposure && prior > 0.0 {
        format!(" (at least {prior:.0} mg/m² doxorubicin-equivalent documented)")
    } else {
        String::new()
    };
    f.statements.push(format!(
        "Doxorubicin is not suggested instead: {}{documented}. Choose the regimen for the next \
         line from the options for later lines (TARPSWG st. 43).",
        why.text()
    ));
    f.suggestions.push(delete(o));
}

fn exposure_use(c: &Ctx) -> Option<FactUse> {
    fact_use("prior_anthracycline", &c.picture.prior_anthracycline, |e| {
        if *e { "recorded" } else { "none recorded" }.to_owned()
    })
}

fn cardiac_use(c: &Ctx) -> Option<FactUse> {
    fact_use(
        "cardiomyopathy_or_heart_failure",
        &c.picture.cardiomyopathy_or_heart_failure,
        |v| if *v { "recorded" } else { "none recorded" }.to_owned(),
    )
}

/// The cumulative anthracycline dose an order would reach (ORD-14, ORD-19): the prior dose's
/// lower bound (§4.1: what valid records prove, whatever else was set aside), the other
/// anthracycline draft orders of the request, and this order's planned dose. Unknown parts
/// count as zero: the total is then a lower bound, and a lower bound over the limit is over it
/// whatever the unknown parts are. Below the limit it decides nothing.
struct CumulativeDose {
    prior: f64,
    others: f64,
    this: Option<f64>,
    total: f64,
    /// Prior dose and this order's dose both established: the total is exact.
    exact: bool,
    over: bool,
}

fn cumulative_dose(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<CumulativeDose> {
    if !o.agents().any(Agent::is_anthracycline) {
        return None;
    }
    let prior = c.picture.anthracycline_dose.at_least_mg_m2;
    let this = o.planned_anthracycline_mg_m2.value().copied();
    let other_orders: Vec<&DraftOrder> = all
        .iter()
        .filter(|d| d.reference != o.reference && d.agents().any(Agent::is_anthracycline))
        .collect();
    let others: f64 = other_orders
        .iter()
        .filter_map(|d| d.planned_anthracycline_mg_m2.value())
        .sum();
    let others_known = other_orders
        .iter()
        .all(|d| d.planned_anthracycline_mg_m2.is_known());
    let total = prior + others + this.unwrap_or(0.0);
    Some(CumulativeDose {
        prior,
        others,
        this,
        total,
        exact: c.picture.anthracycline_dose.is_exact() && this.is_some() && others_known,
        over: total > c.params.doxorubicin_lifetime_max_mg_m2 + DOSE_EPSILON_MG_M2,
    })
}

/// Whether an epirubicin record or draft order is involved (the conversion factor is used).
fn epirubicin_involved(c: &Ctx, all: &[DraftOrder]) -> bool {
    c.picture
        .anthracycline_dose
        .without_dose
        .iter()
        .any(|g| g.agent == Agent::Epirubicin)
        || c.picture
            .anthracycline_dose
            .total_mg_m2
            .provenance()
            .and_then(|p| p.note.as_deref())
            .is_some_and(|n| n.contains("epirubicin"))
        || all
            .iter()
            .any(|d| d.is(OrderKind::Agent(Agent::Epirubicin)))
}

/// ORD-14: anthracycline order that takes the cumulative dose over the lifetime limit. The
/// other anthracycline orders of the same request count too. The limit is EXT; the dose record
/// itself is TMC 3 (VA).
pub(super) fn ord_14(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Finding> {
    let n = cumulative_dose(c, o, all)?;
    if !n.over {
        return None;
    }
    let dose = &c.picture.anthracycline_dose;
    let mut f = on_order(RuleId::Ord14, Indicator::Critical, o);
    f.parameters.push(ParameterId::DoxorubicinLifetimeMaxMgM2);
    if epirubicin_involved(c, all) {
        f.parameters
            .push(ParameterId::EpirubicinToDoxorubicinFactor);
    }
    let prior = n.prior;
    let prior_text = if dose.is_exact() {
        f.decided_by.extend(fact_use(
            "anthracycline_cumulative_dose",
            &dose.total_mg_m2,
            |d| format!("{d:.0} mg/m² doxorubicin-equivalent"),
        ));
        format!("{prior:.0}")
    } else {
        f.decided_by.push(plain_use(
            "anthracycline_dose_documented",
            format!("at least {prior:.0} mg/m² doxorubicin-equivalent"),
            (!dose.counted.is_empty()).then(|| dose.counted.join(", ")),
        ));
        f.unknown.extend(super::unknown_of(
            "anthracycline_cumulative_dose",
            &dose.total_mg_m2,
            "the total may be higher still",
        ));
        format!("at least {prior:.0}")
    };
    let this_text = n
        .this
        .map_or_else(|| "not stated".to_owned(), |d| format!("{d:.0}"));
    let mut line = format!("Prior {prior_text} + this order {this_text}");
    if n.others > 0.0 {
        line.push_str(&format!(" + other draft orders {:.0}", n.others));
    }
    let at_least = if n.exact { "" } else { "at least " };
    line.push_str(&format!(
        " = {at_least}{:.0} mg/m² doxorubicin-equivalent, over the lifetime limit",
        n.total,
    ));
    if epirubicin_involved(c, all) {
        line.push_str(&format!(
            " (epirubicin counted × {})",
            c.params.display(ParameterId::EpirubicinToDoxorubicinFactor)
        ));
    }
    f.statements.push(line);
    f.summary = Some(format!(
        "Cumulative anthracycline {at_least}{:.0} mg/m² would exceed the {} mg/m² limit",
        n.total,
        c.params.display(ParameterId::DoxorubicinLifetimeMaxMgM2)
    ));
    f.suggestions.push(delete(o));
    Some(f)
}

/// ORD-14 when no RPS diagnosis could be read but the diagnosis may be among the records that
/// were set aside or withheld (§4.5: the dose alert fires whatever other records were set
/// aside). Without any such record the patient is out of the service's scope (SCOPE-02).
pub(super) fn ord_14_without_diagnosis(c: &Ctx, input: &super::RuleInput, out: &mut Vec<Finding>) {
    let conditions_missing = c
        .picture
        .set_aside
        .iter()
        .any(|s| s.resource_type == "Condition")
        || input.other_patient.resource_types.contains("Condition")
        || input
            .unavailable
            .iter()
            .any(|u| u.resource_type == "Condition");
    if !conditions_missing {
        return;
    }
    for o in input.draft_orders {
        out.extend(ord_14(c, o, input.draft_orders));
    }
}

/// ORD-15: olaratumab (withdrawn).
pub(super) fn ord_15(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Agent(Agent::Olaratumab)) {
        return None;
    }
    let mut f = on_order(RuleId::Ord15, Indicator::Critical, o);
    match doxorubicin_withheld(c, o, all) {
        None => {
            f.suggestions.push(delete(o));
            f.suggestions
                .push(replace(o, "Replace with doxorubicin", "doxorubicin"));
        }
        Some(why) => withhold_doxorubicin(c, o, &mut f, why),
    }
    Some(f)
}

pub(super) fn ord_16_check(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    ord_16(c, o)
}

/// ORD-16: FNA of a retroperitoneal mass with no sarcoma diagnosis yet. Also runs for
/// patients out of scope (SCOPE-02): it is the one check that does.
pub(crate) fn ord_16(c: &Ctx, o: &DraftOrder) -> Option<Finding> {
    if !o.is(OrderKind::FineNeedleAspiration) || c.picture.diagnosis.is_some() {
        return None;
    }
    let mass = o
        .reason_conditions
        .iter()
        .find(|r| c.picture.undiagnosed_retroperitoneal_masses.contains(r));
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
/// Silent when the order's reason is equivocal lesions or response assessment (TMC 10, IVB:
/// PET for those is not routine imaging). Silence while lung metastases are considered for
/// definitive treatment is the coherence pair `ord17-never-contradicts-met05`.
pub(super) fn ord_17(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Imaging(ImagingKind::BoneScan))
        && !o.is(OrderKind::Imaging(ImagingKind::FdgPet))
    {
        return None;
    }
    if o.is(OrderKind::ImagingForEquivocalOrResponse) {
        return None;
    }
    if !c.metastatic()? || *c.picture.histology.value()? == Histology::SolitaryFibrousTumor {
        return None;
    }
    if c.picture.symptoms.value()?.iter().any(|s| s.bone) {
        return None;
    }
    let mut f = on_order(RuleId::Ord17, Indicator::Info, o);
    histology_use(c, &mut f);
    f.decided_by
        .extend(fact_use("bone_symptoms", &c.picture.symptoms, |_| {
            "none recorded".to_owned()
        }));
    Some(f)
}

/// ORD-18: curative resection of the primary with synchronous metastases.
pub(super) fn ord_18(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::PrimaryResection) && !untargeted_primary_resection(c, o) {
        return None;
    }
    if *c.picture.metastasis_timing.value()? != MetastasisTiming::Synchronous {
        return None;
    }
    // MET-01's condition (§4.4): silent once systemic therapy has started.
    let started = systemic_started_for_metastases(c);
    if started == Some(true) {
        return None;
    }
    let mut f = on_order(RuleId::Ord18, Indicator::Info, o);
    f.decided_by.extend(fact_use(
        "metastasis_timing",
        &c.picture.metastasis_timing,
        |_| "synchronous".to_owned(),
    ));
    match started {
        Some(_) => f.decided_by.extend(none_started_use(c)),
        None => f.unknown.extend(started_unknown(c)),
    }
    f.parameters.push(ParameterId::SynchronousWindowDays);
    Some(f)
}

/// A resection order the classifier left untargeted (it names a primary resection only while
/// the state is "primary untreated") that can only be of the primary: the primary is known
/// not to be resected yet, no recurrence is active, and the order points at the diagnosis or
/// the retroperitoneum.
fn untargeted_primary_resection(c: &Ctx, o: &DraftOrder) -> bool {
    let unresected = matches!(c.picture.primary_resection.value(), Some(None));
    let at_primary = o.body_site_retroperitoneum
        || c.picture
            .diagnosis
            .as_ref()
            .is_some_and(|d| o.reason_conditions.contains(&d.condition));
    o.is(OrderKind::Resection) && unresected && c.picture.current_recurrence.is_none() && at_primary
}

/// At most this many dates are listed per agent and reason (then "and N more").
const MAX_DATES_LISTED: usize = 10;

/// ORD-19: an anthracycline order while the cumulative dose cannot be established: prior
/// exposure is recorded but a record has no usable dose (no dose, no usable body-surface
/// area, only a statement of therapy) or medication records were set aside; or prior exposure
/// itself is unknown. Silent when ORD-14 fires (its lower bound is already over the limit).
/// TMC 3 (VA): the cumulative anthracycline dose is to be ascertained.
pub(super) fn ord_19(c: &Ctx, o: &DraftOrder, all: &[DraftOrder]) -> Option<Finding> {
    let n = cumulative_dose(c, o, all)?;
    if n.over {
        return None;
    }
    let dose = &c.picture.anthracycline_dose;
    let exposure = c.picture.prior_anthracycline.value().copied();
    let exposure_unknown = exposure.is_none();
    let dose_unknown = exposure == Some(true) && !dose.is_exact();
    if !(exposure_unknown || dose_unknown) {
        return None;
    }
    let mut f = on_order(RuleId::Ord19, Indicator::Warning, o);
    f.parameters.push(ParameterId::DoxorubicinLifetimeMaxMgM2);
    if epirubicin_involved(c, all) {
        f.parameters
            .push(ParameterId::EpirubicinToDoxorubicinFactor);
    }
    f.decided_by.extend(exposure_use(c));
    f.unknown.extend(super::unknown_of(
        "prior_anthracycline",
        &c.picture.prior_anthracycline,
        "earlier doses toward the lifetime limit",
    ));
    f.unknown.extend(super::unknown_of(
        "anthracycline_cumulative_dose",
        &dose.total_mg_m2,
        "the total against the lifetime limit",
    ));
    // The records without an established dose, by agent and reason, with their dates.
    let mut groups: Vec<(Agent, &str, Vec<String>)> = Vec::new();
    for g in &dose.without_dose {
        let date = g
            .date
            .map_or_else(|| "undated".to_owned(), |d| d.to_string());
        match groups
            .iter_mut()
            .find(|(a, r, _)| *a == g.agent && *r == g.reason.as_str())
        {
            Some((_, _, dates)) => dates.push(date),
            None => groups.push((g.agent, g.reason.as_str(), vec![date])),
        }
    }
    for (agent, reason, mut dates) in groups {
        dates.sort();
        let count = dates.len();
        let more = count.saturating_sub(MAX_DATES_LISTED);
        dates.truncate(MAX_DATES_LISTED);
        let mut listed = dates.join(", ");
        if more > 0 {
            listed.push_str(&format!(" and {more} more"));
        }
        let records = if count == 1 { "record" } else { "records" };
        f.statements.push(format!(
            "{} {records} without an established dose ({reason}): {listed}",
            capitalised(agent.label())
        ));
    }
    if n.prior > 0.0 {
        f.decided_by.push(plain_use(
            "anthracycline_cumulative_dose",
            format!("at least {:.0} mg/m² doxorubicin-equivalent", n.prior),
            (!dose.counted.is_empty()).then(|| dose.counted.join(", ")),
        ));
    }
    let mut this_text = n.this.map_or_else(
        || "this order's dose is not stated".to_owned(),
        |d| format!("this order adds {d:.0} mg/m²"),
    );
    if n.others > 0.0 {
        this_text.push_str(&format!(", other draft orders {:.0} mg/m²", n.others));
    }
    let before = if n.prior > 0.0 {
        format!("At least {:.0} mg/m² is documented before", n.prior)
    } else {
        "No earlier dose is established".to_owned()
    };
    f.statements.push(format!(
        "{before}; {this_text}; the total is not known until the earlier doses are."
    ));
    f.summary = Some(if exposure_unknown {
        "Earlier anthracycline treatment unknown: establish the cumulative dose before ordering"
            .to_owned()
    } else {
        "Cumulative anthracycline dose not established: establish it before ordering".to_owned()
    });
    Some(f)
}

/// "Doxorubicin".
fn capitalised(s: &str) -> String {
    let mut cs = s.chars();
    cs.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(cs).collect()
    })
}

/// ORD-20: sequelae of earlier treatment that affect this agent's safety (TMC 17, IVA): an
/// anthracycline order with cardiomyopathy or heart failure; an ifosfamide order with renal
/// impairment. The thresholds (LVEF, eGFR) are shown when a measurement decided the sequela.
/// Silent when the sequela is unknown or known absent.
pub(super) fn ord_20(c: &Ctx, o: &DraftOrder, _: &[DraftOrder]) -> Option<Finding> {
    let cardiac = o.agents().any(Agent::is_anthracycline)
        && c.picture.cardiomyopathy_or_heart_failure.is_true();
    let renal = o.is(OrderKind::Agent(Agent::Ifosfamide)) && c.picture.renal_impairment.is_true();
    if !cardiac && !renal {
        return None;
    }
    let mut f = on_order(RuleId::Ord20, Indicator::Warning, o);
    let measured = |fact: &crate::clinical::Fact<bool>| {
        fact.provenance()
            .is_some_and(|p| p.resources.iter().any(|r| r.starts_with("Observation/")))
    };
    let mut what = Vec::new();
    if cardiac {
        f.decided_by.extend(cardiac_use(c));
        if measured(&c.picture.cardiomyopathy_or_heart_failure) {
            f.parameters.push(ParameterId::LvefMinPercent);
        }
        f.statements.push(
            "Cardiomyopathy or heart failure is recorded: it affects the safety of an \
             anthracycline. Assess cardiac function before ordering."
                .to_owned(),
        );
        what.push(("Heart failure or cardiomyopathy", "this anthracycline"));
    }
    if renal {
        f.decided_by.extend(fact_use(
            "renal_impairment",
            &c.picture.renal_impairment,
            |_| "recorded".to_owned(),
        ));
        if measured(&c.picture.renal_impairment) {
            f.parameters.push(ParameterId::EgfrMin);
        }
        f.statements.push(
            "Impaired kidney function is recorded: it affects the safety of ifosfamide. \
             Assess kidney function before ordering."
                .to_owned(),
        );
        what.push(("Impaired kidney function", "ifosfamide"));
    }
    f.summary = Some(match what.as_slice() {
        [(sequela, agent)] => format!("{sequela} recorded: assess it before ordering {agent}"),
        _ => "Heart failure or cardiomyopathy and impaired kidney function recorded: assess \
              them before ordering"
            .to_owned(),
    });
    Some(f)
}
