//! §2.2 Referral, work-up and history: MDT-01..03, WORK-01..05, HIST-01..02 (patient-view).

use chrono::NaiveDate;

use super::{Ctx, Finding, Gaps, RuleId, create, date_text, fact_use, unknown_of};
use crate::cds_hooks::Indicator;
use crate::clinical::{DiseaseState, Fact, Histology};
use crate::knowledge::ParameterId;

fn state_use(c: &Ctx, f: &mut Finding) {
    f.decided_by
        .extend(fact_use("disease_state", &c.p.disease_state, |s| {
            state_label(*s).to_owned()
        }));
}

pub fn state_label(s: DiseaseState) -> &'static str {
    crate::display::disease_state(s)
}

/// Local recurrence or metastatic disease; records the gap when the state is unknown.
fn relapsed(c: &Ctx, gaps: &mut Gaps, holds_back: &str) -> bool {
    gaps.need("disease_state", &c.p.disease_state, holds_back)
        .is_some_and(|s| s.has_local_recurrence() || s.is_metastatic())
}

fn metastatic(c: &Ctx, gaps: &mut Gaps, holds_back: &str) -> bool {
    gaps.need("disease_state", &c.p.disease_state, holds_back)
        .is_some_and(|s| s.is_metastatic())
}

/// MDT-01: tumour board review of a relapse.
pub(super) fn mdt_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    if !relapsed(c, gaps, "tumour board referral (MDT-01) not assessed") {
        return None;
    }
    let mut f = Finding::new(RuleId::Mdt01, Indicator::Info);
    state_use(c, &mut f);
    f.suggestions.push(create(
        "Refer to the sarcoma tumour board",
        "tumour-board-referral",
    ));
    Some(f)
}

/// MDT-02: early palliative care in metastatic disease.
pub(super) fn mdt_02(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    if !metastatic(
        c,
        gaps,
        "palliative care and trial advice (MDT-02, MDT-03) not assessed",
    ) {
        return None;
    }
    let mut f = Finding::new(RuleId::Mdt02, Indicator::Info);
    state_use(c, &mut f);
    f.suggestions.push(create(
        "Refer to palliative care",
        "palliative-care-referral",
    ));
    Some(f)
}

/// MDT-03: clinical trials in metastatic disease.
pub(super) fn mdt_03(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    if !metastatic(
        c,
        gaps,
        "palliative care and trial advice (MDT-02, MDT-03) not assessed",
    ) {
        return None;
    }
    let mut f = Finding::new(RuleId::Mdt03, Indicator::Info);
    state_use(c, &mut f);
    Some(f)
}

/// WORK-01 / WORK-02: no staging CT within `staging_ct_max_age_days`.
fn staging_ct(
    c: &Ctx,
    gaps: &mut Gaps,
    rule: impl Into<super::RuleId>,
    fact_name: &'static str,
    fact: &Fact<Option<NaiveDate>>,
    what: &str,
    template: &'static str,
) -> Option<Finding> {
    let rule = rule.into();
    let holds = format!("{what} staging ({rule}) not assessed");
    if !relapsed(c, gaps, &holds) {
        return None;
    }
    let last = *gaps.need(fact_name, fact, &holds)?;
    let max = c.params.staging_ct_max_age_days;
    if last.is_some_and(|d| c.days_since(d) <= i64::from(max)) {
        return None;
    }
    let mut f = Finding::new(rule, Indicator::Warning);
    state_use(c, &mut f);
    f.decided_by
        .extend(fact_use(fact_name, fact, |d| date_text(*d)));
    f.parameters.push(ParameterId::StagingCtMaxAgeDays);
    f.statements.push(format!(
        "Last {what}: {} ({})",
        date_text(last),
        crate::display::param(c.params, ParameterId::StagingCtMaxAgeDays)
    ));
    f.summary = Some(match last {
        Some(d) => format!("No {what} in the last {max} days (last {d}): restage before treatment"),
        None => format!("No {what} recorded: restage before treatment"),
    });
    f.suggestions
        .push(create(&format!("Order {what}"), template));
    Some(f)
}

/// WORK-01: stage the chest.
pub(super) fn work_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    staging_ct(
        c,
        gaps,
        RuleId::Work01,
        "last_ct_chest",
        &c.p.last_ct_chest,
        "CT chest",
        "ct-chest",
    )
}

/// WORK-02: contrast CT abdomen and pelvis.
pub(super) fn work_02(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    staging_ct(
        c,
        gaps,
        RuleId::Work02,
        "last_ct_abdomen_pelvis",
        &c.p.last_ct_abdomen_pelvis,
        "CT abdomen/pelvis",
        "ct-abdomen-pelvis",
    )
}

/// WORK-03: metastatic SFT without bone scan or FDG-PET since metastatic disease was found.
pub(super) fn work_03(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "bone staging of metastatic SFT (WORK-03) not assessed";
    if !metastatic(c, gaps, holds) {
        return None;
    }
    if *gaps.need("histology", &c.p.histology, holds)? != Histology::SolitaryFibrousTumor {
        return None;
    }
    let last = *gaps.need("last_bone_or_pet", &c.p.last_bone_or_pet, holds)?;
    // A scan before metastatic disease was found does not stage it.
    let first_met =
        c.p.metastases
            .iter()
            .filter(|m| m.active)
            .filter_map(|m| m.detected)
            .min();
    let staged = match (last, first_met) {
        (None, _) => false,
        (Some(scan), Some(met)) => scan >= met,
        (Some(_), None) => true,
    };
    if staged {
        return None;
    }
    let mut f = Finding::new(RuleId::Work03, Indicator::Info);
    state_use(c, &mut f);
    f.decided_by
        .extend(fact_use("histology", &c.p.histology, |h| {
            h.label().to_owned()
        }));
    f.decided_by
        .extend(fact_use("last_bone_or_pet", &c.p.last_bone_or_pet, |d| {
            date_text(*d)
        }));
    if let (Some(scan), Some(met)) = (last, first_met) {
        f.statements.push(format!(
            "Last bone scan / FDG-PET {scan} predates the metastases (first detected {met})"
        ));
    }
    f.suggestions.push(create("Order a bone scan", "bone-scan"));
    f.suggestions.push(create("Order an FDG-PET", "fdg-pet"));
    Some(f)
}

/// WORK-04: a local recurrence without tissue confirmation.
pub(super) fn work_04(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "biopsy of the recurrence (WORK-04) not assessed";
    if !gaps
        .need("disease_state", &c.p.disease_state, holds)?
        .has_local_recurrence()
    {
        return None;
    }
    if *gaps.need("recurrence_biopsied", &c.p.recurrence_biopsied, holds)? {
        return None;
    }
    let mut f = Finding::new(RuleId::Work04, Indicator::Info);
    state_use(c, &mut f);
    f.decided_by.extend(fact_use(
        "recurrence_biopsied",
        &c.p.recurrence_biopsied,
        |b| if *b { "yes" } else { "no biopsy recorded" }.to_owned(),
    ));
    f.suggestions.push(create(
        "Order an image-guided core needle biopsy",
        "core-needle-biopsy",
    ));
    Some(f)
}

/// WORK-05: metastases with Li-Fraumeni syndrome or a second malignancy may not be sarcoma.
pub(super) fn work_05(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "sampling of the metastases before treatment (WORK-05) not assessed";
    if !metastatic(c, gaps, holds) {
        return None;
    }
    let lfs = c.p.li_fraumeni.is_true();
    let second = c.p.second_malignancy.is_true();
    if !lfs && !second {
        gaps.need("li_fraumeni", &c.p.li_fraumeni, holds);
        gaps.need("second_malignancy", &c.p.second_malignancy, holds);
        return None;
    }
    let mut f = Finding::new(RuleId::Work05, Indicator::Warning);
    state_use(c, &mut f);
    if lfs {
        f.decided_by
            .extend(fact_use("li_fraumeni", &c.p.li_fraumeni, |_| {
                "yes".to_owned()
            }));
    }
    if second {
        f.decided_by.extend(fact_use(
            "second_malignancy",
            &c.p.second_malignancy,
            |_| "yes".to_owned(),
        ));
    }
    f.suggestions
        .push(create("Order a biopsy of the lesions", "biopsy"));
    Some(f)
}

/// HIST-01: prior anthracycline exposure is recorded but the cumulative dose cannot be
/// established (records without dose or usable body surface area, a history statement only,
/// or medication records left out).
pub(super) fn hist_01(c: &Ctx) -> Option<Finding> {
    let dose = &c.p.anthracycline_dose;
    if !c.p.prior_anthracycline.is_true() || dose.is_exact() {
        return None;
    }
    let mut f = Finding::new(RuleId::Hist01, Indicator::Info);
    if let Some(h) = c.p.systemic_history.value() {
        let agents: Vec<&str> = h.agents.iter().map(|a| a.label()).collect();
        f.decided_by
            .extend(fact_use("systemic_history", &c.p.systemic_history, |h| {
                format!(
                    "{}: {}",
                    crate::display::count(h.lines.len(), "line"),
                    agents.join(", ")
                )
            }));
    }
    f.decided_by.extend(fact_use(
        "prior_anthracycline",
        &c.p.prior_anthracycline,
        |_| "yes".to_owned(),
    ));
    for g in &dose.without_dose {
        let when = g
            .date
            .map_or_else(|| "undated".to_owned(), |d| d.to_string());
        f.statements.push(format!(
            "{} ({when}): dose not established, {}",
            g.agent.label(),
            g.reason
        ));
    }
    f.unknown.extend(unknown_of(
        "anthracycline_cumulative_dose",
        &dose.total_mg_m2,
        "the cumulative anthracycline limit (ORD-14) is checked against a lower bound only",
    ));
    Some(f)
}

/// HIST-02: prior radiotherapy without a recorded dose.
pub(super) fn hist_02(c: &Ctx) -> Option<Finding> {
    let courses = c.p.radiotherapy.value()?;
    let undosed: Vec<&str> = courses
        .iter()
        .filter(|rt| !rt.total_dose_gy.is_known())
        .map(|rt| rt.procedure.as_str())
        .collect();
    if undosed.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Hist02, Indicator::Info);
    for rt in courses.iter().filter(|rt| !rt.total_dose_gy.is_known()) {
        f.statements.push(format!(
            "Radiotherapy course {} ({}) has no recorded dose",
            rt.procedure, rt.date
        ));
        f.unknown.extend(unknown_of(
            "prior_rt_dose",
            &rt.total_dose_gy,
            "re-irradiation and pre-operative RT planning",
        ));
    }
    Some(f)
}
