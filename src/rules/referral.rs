//! §2.2 Referral, work-up and history: MDT-01..03, WORK-01..05, HIST-01..02 (patient-view),
//! and the v2 additions of §4.7: PATH-01, WORK-06 (also on the order hooks), HIST-03.

use chrono::NaiveDate;

use super::{Ctx, Finding, Gaps, RuleId, create, date_text, fact_use, unknown_of};
use crate::clinical::{
    DiseaseState, DraftOrder, Fact, Focality, Histology, MetastasisSite, MetastasisTiming,
    OrderKind, Unknown,
};
use crate::knowledge::Indicator;
use crate::knowledge::ParameterId;

fn state_use(c: &Ctx, f: &mut Finding) {
    f.decided_by
        .extend(fact_use("disease_state", &c.picture.disease_state, |s| {
            state_label(*s).to_owned()
        }));
}

pub(crate) fn state_label(s: DiseaseState) -> &'static str {
    s.label()
}

/// Local recurrence or metastatic disease; records the gap when the state is unknown.
fn relapsed(c: &Ctx, gaps: &mut Gaps, holds_back: &str) -> bool {
    gaps.need("disease_state", &c.picture.disease_state, holds_back)
        .is_some_and(|s| s.has_local_recurrence() || s.is_metastatic())
}

fn metastatic(c: &Ctx, gaps: &mut Gaps, holds_back: &str) -> bool {
    gaps.need("disease_state", &c.picture.disease_state, holds_back)
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

/// Metastatic disease, or a multifocal local recurrence (LR-02 multifocal: the consensus
/// covers multifocally recurrent RPS; MDT-02, MDT-03 v2, §4.4). Adds the focality it used.
fn metastatic_or_multifocal(c: &Ctx, gaps: &mut Gaps, f: &mut Finding) -> bool {
    let holds = "palliative care and trial advice (MDT-02, MDT-03) not assessed";
    let Some(state) = gaps.need("disease_state", &c.picture.disease_state, holds) else {
        return false;
    };
    if state.is_metastatic() {
        return true;
    }
    if !state.has_local_recurrence() {
        return false;
    }
    let multifocal =
        gaps.need("focality", &c.picture.focality, holds) == Some(&Focality::Multifocal);
    if multifocal {
        f.decided_by
            .extend(fact_use("focality", &c.picture.focality, |_| {
                "multifocal".to_owned()
            }));
    }
    multifocal
}

/// MDT-02: early palliative care in metastatic disease or a multifocal local recurrence.
pub(super) fn mdt_02(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let mut f = Finding::new(RuleId::Mdt02, Indicator::Info);
    if !metastatic_or_multifocal(c, gaps, &mut f) {
        return None;
    }
    state_use(c, &mut f);
    f.suggestions.push(create(
        "Refer to palliative care",
        "palliative-care-referral",
    ));
    Some(f)
}

/// MDT-03: clinical trials in metastatic disease or a multifocal local recurrence.
pub(super) fn mdt_03(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let mut f = Finding::new(RuleId::Mdt03, Indicator::Info);
    if !metastatic_or_multifocal(c, gaps, &mut f) {
        return None;
    }
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
        &c.picture.last_ct_chest,
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
        &c.picture.last_ct_abdomen_pelvis,
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
    if *gaps.need("histology", &c.picture.histology, holds)? != Histology::SolitaryFibrousTumor {
        return None;
    }
    let last = *gaps.need("last_bone_or_pet", &c.picture.last_bone_or_pet, holds)?;
    // A scan before metastatic disease was found does not stage it.
    let first_met = c
        .picture
        .metastases
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
        .extend(fact_use("histology", &c.picture.histology, |h| {
            h.label().to_owned()
        }));
    f.decided_by.extend(fact_use(
        "last_bone_or_pet",
        &c.picture.last_bone_or_pet,
        |d| date_text(*d),
    ));
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
        .need("disease_state", &c.picture.disease_state, holds)?
        .has_local_recurrence()
    {
        return None;
    }
    if *gaps.need("recurrence_biopsied", &c.picture.recurrence_biopsied, holds)? {
        return None;
    }
    let mut f = Finding::new(RuleId::Work04, Indicator::Info);
    state_use(c, &mut f);
    f.decided_by.extend(fact_use(
        "recurrence_biopsied",
        &c.picture.recurrence_biopsied,
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
    let mut f = Finding::new(RuleId::Work05, Indicator::Warning);
    state_use(c, &mut f);
    if !lesion_may_not_be_sarcoma(c, gaps, &mut f, holds) {
        return None;
    }
    f.suggestions
        .push(create("Order a biopsy of the lesions", "biopsy"));
    Some(f)
}

/// HIST-01: prior anthracycline exposure is recorded but the cumulative dose cannot be
/// established (records without dose or usable body surface area, a history statement only,
/// or medication records left out).
pub(super) fn hist_01(c: &Ctx) -> Option<Finding> {
    let dose = &c.picture.anthracycline_dose;
    if !c.picture.prior_anthracycline.is_true() || dose.is_exact() {
        return None;
    }
    let mut f = Finding::new(RuleId::Hist01, Indicator::Info);
    if let Some(h) = c.picture.systemic_history.value() {
        let agents: Vec<&str> = h.agents.iter().map(|a| a.label()).collect();
        f.decided_by.extend(fact_use(
            "systemic_history",
            &c.picture.systemic_history,
            |h| super::systemic::lines_text(h.lines.len(), &agents),
        ));
    }
    f.decided_by.extend(fact_use(
        "prior_anthracycline",
        &c.picture.prior_anthracycline,
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
    let courses = c.picture.radiotherapy.value()?;
    let mut dates: Vec<String> = Vec::new();
    for rt in courses.iter().filter(|rt| !rt.total_dose_gy.is_known()) {
        let d = crate::display::date(rt.date);
        if !dates.contains(&d) {
            dates.push(d);
        }
    }
    if dates.is_empty() {
        return None;
    }
    let mut f = Finding::new(RuleId::Hist02, Indicator::Info);
    // One statement for every course without a dose: the missing dose is what the card is
    // about, so it is not listed again as an unknown (that pushed the card over its limit).
    f.statements.push(if dates.len() == 1 {
        format!(
            "The radiotherapy course of {} has no recorded dose",
            dates[0]
        )
    } else {
        format!(
            "The radiotherapy courses of {} have no recorded dose",
            dates.join(", ")
        )
    });
    Some(f)
}

/// PATH-01 (§4.7): recurrent or metastatic RPS with no record of an expert sarcoma pathology
/// review: have the primary's pathology reviewed, and subtypes defined by a molecular
/// alteration confirmed by molecular testing (TMC 11).
pub(super) fn path_01(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "expert sarcoma pathology review (PATH-01) not assessed";
    if !relapsed(c, gaps, holds) {
        return None;
    }
    if gaps
        .need(
            "expert_pathology_review",
            &c.picture.expert_pathology_review,
            holds,
        )?
        .is_some()
    {
        return None;
    }
    let mut f = Finding::new(RuleId::Path01, Indicator::Info);
    state_use(c, &mut f);
    f.decided_by.extend(fact_use(
        "expert_pathology_review",
        &c.picture.expert_pathology_review,
        |d| date_text(*d),
    ));
    let lps = c
        .picture
        .histology
        .value()
        .is_some_and(|h| matches!(h, Histology::WdLiposarcoma | Histology::DdLiposarcoma));
    match c.picture.molecular_test.value() {
        Some(Some(d)) => f
            .statements
            .push(format!("A molecular pathology test is recorded ({d})")),
        Some(None) if lps => f
            .statements
            .push("No molecular test recorded: confirm by MDM2 amplification (IVA)".to_owned()),
        _ => {}
    }
    // The statement above says what the molecular test record shows; listed as a deciding
    // fact only when no statement does.
    if f.statements.is_empty() {
        f.decided_by
            .extend(fact_use("molecular_test", &c.picture.molecular_test, |d| {
                date_text(*d)
            }));
    }
    Some(f)
}

/// Why WORK-05 and WORK-06 apply to the patient: Li-Fraumeni syndrome or a second malignancy
/// (TMC 12), each added to the finding; false when neither is known true (the unknowns
/// recorded).
fn lesion_may_not_be_sarcoma(c: &Ctx, gaps: &mut Gaps, f: &mut Finding, holds: &str) -> bool {
    let lfs = c.picture.li_fraumeni.is_true();
    let second = c.picture.second_malignancy.is_true();
    if lfs {
        f.decided_by
            .extend(fact_use("li_fraumeni", &c.picture.li_fraumeni, |_| {
                "yes".to_owned()
            }));
    }
    if second {
        f.decided_by.extend(fact_use(
            "second_malignancy",
            &c.picture.second_malignancy,
            |_| "yes".to_owned(),
        ));
    }
    if !lfs && !second {
        gaps.need("li_fraumeni", &c.picture.li_fraumeni, holds);
        gaps.need("second_malignancy", &c.picture.second_malignancy, holds);
    }
    lfs || second
}

/// WORK-06 (§4.7), patient-view: ablation is considered for lung or liver metastases (MET-04)
/// that have no tissue diagnosis, in a patient with Li-Fraumeni syndrome or a second
/// malignancy: ablation destroys the tissue, so consider a biopsy first (TMC 12, TMC 14).
pub(super) fn work_06(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "biopsy before ablation (WORK-06) not assessed";
    if !metastatic(c, gaps, holds) {
        return None;
    }
    let sites = gaps.need("metastasis_sites", &c.picture.metastasis_sites, holds)?;
    if !sites.contains(&MetastasisSite::Lung) && !sites.contains(&MetastasisSite::Liver) {
        return None;
    }
    let mut f = Finding::new(RuleId::Work06, Indicator::Info);
    state_use(c, &mut f);
    if !lesion_may_not_be_sarcoma(c, gaps, &mut f, holds) {
        return None;
    }
    if *gaps.need("metastasis_biopsied", &c.picture.metastasis_biopsied, holds)? {
        return None;
    }
    f.decided_by.extend(fact_use(
        "metastasis_biopsied",
        &c.picture.metastasis_biopsied,
        |_| "no biopsy or pathology of the metastases recorded".to_owned(),
    ));
    f.statements.push(
        "Ablation of lung or liver metastases is an option (MET-04); it leaves no tissue for \
         diagnosis"
            .to_owned(),
    );
    f.suggestions
        .push(create("Order a biopsy of the lesion", "biopsy"));
    Some(f)
}

/// WORK-06 on the order hooks: an ablation order for a lesion without tissue diagnosis, in a
/// patient with Li-Fraumeni syndrome or a second malignancy.
pub(super) fn work_06_order(c: &Ctx, o: &DraftOrder, _all: &[DraftOrder]) -> Option<Finding> {
    if !o.is(OrderKind::Ablation) {
        return None;
    }
    let mut scratch = Gaps::default();
    let mut f = Finding::new(RuleId::Work06, Indicator::Info);
    if !lesion_may_not_be_sarcoma(c, &mut scratch, &mut f, "") {
        return None;
    }
    // The lesion: a local recurrence the order names (or in the retroperitoneum while one is
    // active), else the metastases.
    let (name, biopsied) = if o.targets_recurrence {
        ("recurrence_biopsied", &c.picture.recurrence_biopsied)
    } else {
        ("metastasis_biopsied", &c.picture.metastasis_biopsied)
    };
    if *biopsied.value()? {
        return None;
    }
    f.decided_by.extend(fact_use(name, biopsied, |_| {
        "no biopsy or pathology of the lesion recorded".to_owned()
    }));
    f.decided_by.push(super::order_checks::order_use(o));
    f.draft_order = Some(o.reference.clone());
    f.suggestions
        .push(create("Order a biopsy of the lesion", "biopsy"));
    Some(f)
}

/// HIST-03 (§4.7): recurrent or metastatic RPS whose primary resection is known only from
/// history — no Procedure with its date and completeness: obtain the operative and
/// pathology reports of all earlier resections (TMC 2).
pub(super) fn hist_03(c: &Ctx, gaps: &mut Gaps) -> Option<Finding> {
    let holds = "the operative and pathology reports of earlier resections (HIST-03) not assessed";
    if !relapsed(c, gaps, holds) {
        return None;
    }
    let why = match &c.picture.primary_resection {
        Fact::Known { value: Some(r), .. } => {
            if r.completeness.is_known() {
                return None;
            }
            format!(
                "The resection of the primary ({}) is recorded without its completeness (R0/R1/R2)",
                r.date
            )
        }
        Fact::Known { value: None, .. } => {
            // A local recurrence implies an earlier resection; metastases alone do not (the
            // primary may still be in place).
            if c.local_recurrence() != Some(true) {
                return None;
            }
            "No resection of the primary is recorded, though a local recurrence implies one"
                .to_owned()
        }
        Fact::Unknown(Unknown::Unreadable(_)) => {
            "A resection is recorded without its date or without what it resected".to_owned()
        }
        Fact::Unknown(_) => {
            gaps.need("primary_resection", &c.picture.primary_resection, holds);
            return None;
        }
    };
    let mut f = Finding::new(RuleId::Hist03, Indicator::Info);
    state_use(c, &mut f);
    f.statements.push(why);
    if let Some(t) = c.picture.metastasis_timing.value()
        && *t == MetastasisTiming::Metachronous
    {
        f.statements
            .push("Metastases are metachronous: the primary was treated earlier".to_owned());
    }
    Some(f)
}
